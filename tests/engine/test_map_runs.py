"""Distributed Map as AWS runs it: each iteration a child execution of a Map Run (issue 14)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from runtime import InvalidArn, ResourceNotFound, Runtime, TaskContext, TaskFailed
from runtime.testing import history_types, virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any


def billing(processor_states: dict[str, JSON], **map_fields: JSON) -> dict[str, JSON]:
    """A distributed Map labelled ``Bill`` over ``$.customers``."""
    return {
        "StartAt": "Invoices",
        "States": {
            "Invoices": {
                "Type": "Map",
                "Label": "Bill",
                "ItemsPath": "$.customers",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": next(iter(processor_states)),
                    "States": processor_states,
                },
                "End": True,
                **map_fields,
            }
        },
    }


INVOICE = {"Invoice": {"Type": "Task", "Resource": "Invoice", "End": True}}


async def invoice(payload: JSON, context: TaskContext) -> JSON:
    return {"customer": payload, "amount": 10 * payload}


async def until_all(rt: Runtime, map_run_arn: str, status: str, count: int) -> list[Any]:
    for _ in range(500):
        children = await rt.list_executions(map_run_arn=map_run_arn)
        if len(children) == count and all(c.status == status for c in children):
            return children
        await asyncio.sleep(0.01)
    raise AssertionError(f"children not all {status}: {[c.status for c in children]}")


async def test_each_iteration_is_a_child_execution_of_the_map_run() -> None:
    async with virtual_runtime(handlers={"Invoice": invoice}) as rt:
        machine = await rt.create_state_machine("Billing", billing(INVOICE, MaxConcurrency=2))
        started = await rt.start_execution(machine.arn, {"customers": [1, 2, 3, 4, 5]})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)

        assert done.status == "SUCCEEDED"
        assert done.output_value == [{"customer": n, "amount": 10 * n} for n in range(1, 6)]
        # The parent's history is AWS's: the iterations are in the children's histories.
        assert history_types(await rt.get_execution_history(started.execution_arn)) == [
            "ExecutionStarted",
            "MapStateEntered",
            "MapStateStarted",
            "MapRunStarted",
            "MapRunSucceeded",
            "MapStateSucceeded",
            "MapStateExited",
            "ExecutionSucceeded",
        ]
        (run,) = await rt.list_map_runs(started.execution_arn)
        assert ":mapRun:Billing/Bill:" in run.map_run_arn
        assert run.state_machine_arn.endswith(":stateMachine:Billing/Bill")
        children = await rt.list_executions(map_run_arn=run.map_run_arn)
        assert len(children) == 5
        assert {c.status for c in children} == {"SUCCEEDED"}
        assert {c.map_run_arn for c in children} == {run.map_run_arn}
        assert all(":execution:Billing/Bill:" in c.execution_arn for c in children)
        assert sorted(c.input for c in children) == ["1", "2", "3", "4", "5"]
        child = children[0]
        assert history_types(await rt.get_execution_history(child.execution_arn)) == [
            "ExecutionStarted",
            "TaskStateEntered",
            "TaskScheduled",
            "TaskStarted",
            "TaskSucceeded",
            "TaskStateExited",
            "ExecutionSucceeded",
        ]
        described = await rt.describe_execution(child.execution_arn)
        assert described.map_run_arn == run.map_run_arn
        # The child workflows' state machine is not listed, as on AWS.
        assert [m.name for m in await rt.list_state_machines()] == ["Billing"]

        summary = await rt.describe_map_run(run.map_run_arn)
        assert summary.status == "SUCCEEDED"
        assert summary.execution_arn == started.execution_arn
        assert summary.max_concurrency == 2
        assert summary.stop_date is not None
        counts = summary.execution_counts
        assert (counts.total, counts.succeeded, counts.pending, counts.running) == (5, 5, 0, 0)


async def test_max_concurrency_bounds_the_children_in_flight() -> None:
    in_flight = peak = 0

    async def slow(payload: JSON, context: TaskContext) -> JSON:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return payload

    async with Runtime("memory", handlers={"Invoice": slow}) as rt:
        machine = await rt.create_state_machine("Billing", billing(INVOICE, MaxConcurrency=3))
        started = await rt.start_execution(machine.arn, {"customers": list(range(20))})
        done = await rt.wait_for_execution(started.execution_arn, timeout=20)

    assert done.status == "SUCCEEDED"
    assert done.output_value == list(range(20))
    assert peak == 3


async def test_a_failed_child_fails_the_map_with_its_error_and_catch_applies() -> None:
    async def picky(payload: JSON, context: TaskContext) -> JSON:
        if payload == 3:
            raise TaskFailed("Billing.Refused", "customer 3 has no address")
        return payload

    definition = billing(INVOICE, MaxConcurrency=1)
    definition["States"]["Invoices"]["Catch"] = [
        {"ErrorEquals": ["Billing.Refused"], "ResultPath": "$.error", "Next": "Report"}
    ]
    definition["States"]["Invoices"].pop("End")
    definition["States"]["Invoices"]["Next"] = "Report"
    definition["States"]["Report"] = {"Type": "Pass", "End": True}
    async with virtual_runtime(handlers={"Invoice": picky}) as rt:
        machine = await rt.create_state_machine("Billing", definition)
        started = await rt.start_execution(machine.arn, {"customers": [1, 2, 3, 4]})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        (run,) = await rt.list_map_runs(started.execution_arn)
        summary = await rt.describe_map_run(run.map_run_arn)

    assert done.status == "SUCCEEDED"
    assert done.output_value["error"] == {
        "Error": "Billing.Refused",
        "Cause": "customer 3 has no address",
    }
    assert summary.status == "FAILED"
    counts = summary.execution_counts
    # MaxConcurrency 1: the fourth child never started.
    assert (counts.succeeded, counts.failed, counts.pending, counts.total) == (2, 1, 0, 4)


async def test_beyond_the_tolerated_failures_the_running_children_are_stopped() -> None:
    release = asyncio.Event()

    async def handler(payload: JSON, context: TaskContext) -> JSON:
        if payload == 0:
            raise TaskFailed("Billing.Refused", "no")
        await release.wait()  # never set: these children run until they are stopped
        return payload

    definition = billing(INVOICE, ToleratedFailureCount=0)
    async with Runtime("memory", handlers={"Invoice": handler}) as rt:
        machine = await rt.create_state_machine("Billing", definition)
        started = await rt.start_execution(machine.arn, {"customers": [0, 1, 2, 3]})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        (run,) = await rt.list_map_runs(started.execution_arn)
        statuses = sorted(c.status for c in await rt.list_executions(map_run_arn=run.map_run_arn))
        for _ in range(500):
            if statuses.count("ABORTED") == 3:
                break
            await asyncio.sleep(0.01)
            children = await rt.list_executions(map_run_arn=run.map_run_arn)
            statuses = sorted(c.status for c in children)

    assert done.status == "FAILED"
    assert done.error == "States.ExceedToleratedFailureThreshold"
    assert statuses == ["ABORTED", "ABORTED", "ABORTED", "FAILED"]


async def test_stopping_the_parent_stops_its_children() -> None:
    async def wait_forever(payload: JSON, context: TaskContext) -> JSON:
        await asyncio.Event().wait()
        return payload

    async with Runtime("memory", handlers={"Invoice": wait_forever}) as rt:
        machine = await rt.create_state_machine("Billing", billing(INVOICE))
        started = await rt.start_execution(machine.arn, {"customers": [1, 2, 3]})
        for _ in range(500):
            runs = await rt.list_map_runs(started.execution_arn)
            if runs and len(await rt.list_executions(map_run_arn=runs[0].map_run_arn)) == 3:
                break
            await asyncio.sleep(0.01)
        await rt.stop_execution(started.execution_arn)
        children = await until_all(rt, runs[0].map_run_arn, "ABORTED", 3)
        summary = await rt.describe_map_run(runs[0].map_run_arn)

    assert len(children) == 3
    assert summary.status == "ABORTED"


async def test_a_restart_finds_the_same_children_and_the_run_completes(tmp_path: Path) -> None:
    """Children waiting for task tokens when the runtime closes: after a restart the parent
    re-derives its owed iterations, finds the same children (names derive from the Map Run
    and the index) and ends once their tokens are answered; no child is started twice."""
    tokens: list[str] = []

    async def ask(payload: JSON, context: TaskContext) -> None:
        assert context.task_token is not None
        if context.task_token not in tokens:  # a handler may be called again after a restart
            tokens.append(context.task_token)

    processor = {
        "Ask": {
            "Type": "Task",
            "Resource": "Ask.waitForTaskToken",
            "Parameters": {"customer.$": "$"},
            "End": True,
        }
    }
    db = tmp_path / "billing.db"
    async with Runtime(db, handlers={"Ask": ask}) as rt:
        machine = await rt.create_state_machine("Billing", billing(processor))
        started = await rt.start_execution(machine.arn, {"customers": [1, 2, 3]})
        for _ in range(500):
            if len(tokens) == 3:
                break
            await asyncio.sleep(0.01)
    assert len(tokens) == 3
    async with Runtime(db, handlers={"Ask": ask}) as rt:
        for n, token in enumerate(tokens):
            await rt.send_task_success(token, {"paid": n})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        (run,) = await rt.list_map_runs(started.execution_arn)
        children = await rt.list_executions(map_run_arn=run.map_run_arn)

    assert done.status == "SUCCEEDED"
    assert sorted(item["paid"] for item in done.output_value) == [0, 1, 2]
    assert len(children) == 3
    assert {c.status for c in children} == {"SUCCEEDED"}


async def test_describing_an_unknown_map_run_is_refused() -> None:
    async with virtual_runtime() as rt:
        with pytest.raises(InvalidArn):
            await rt.describe_map_run("arn:aws:states:us-east-1:123456789012:execution:x:y")
        with pytest.raises(ResourceNotFound):
            await rt.describe_map_run(
                "arn:aws:states:us-east-1:123456789012:mapRun:x/y:0e6d52a1-7c0e-4b8f-9d1e-1f2a3b4c5d6e"
            )


async def test_a_redrive_goes_on_with_the_map_run_and_reruns_only_the_failed_children() -> None:
    """RedriveExecution of an execution whose distributed Map failed: the Map Run goes on
    (MapRunRedriven, the same ARN), its failed children are redriven (their own
    ExecutionRedriven) and the ones that succeeded are not run again."""
    calls: list[JSON] = []
    broken = {3}

    async def flaky(payload: JSON, context: TaskContext) -> JSON:
        calls.append(payload)
        if payload in broken:
            raise TaskFailed("Billing.Down", f"customer {payload}")
        return payload * 10

    async with virtual_runtime(handlers={"Invoice": flaky}) as rt:
        machine = await rt.create_state_machine("Billing", billing(INVOICE, MaxConcurrency=2))
        started = await rt.start_execution(machine.arn, {"customers": [1, 2, 3, 4, 5]})
        failed = await rt.wait_for_execution(started.execution_arn, timeout=10)
        assert failed.status == "FAILED"
        (run,) = await rt.list_map_runs(started.execution_arn)
        first_calls = list(calls)
        broken.clear()  # the outage is over

        await rt.redrive_execution(started.execution_arn)
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        runs = await rt.list_map_runs(started.execution_arn)
        children = await rt.list_executions(map_run_arn=run.map_run_arn)
        summary = await rt.describe_map_run(run.map_run_arn)
        history = history_types(await rt.get_execution_history(started.execution_arn))
        redriven = [c for c in children if c.redrive_count]

    assert done.status == "SUCCEEDED"
    assert done.output_value == [10, 20, 30, 40, 50]
    assert [r.map_run_arn for r in runs] == [run.map_run_arn]  # the same Map Run
    assert history.count("MapRunStarted") == 1
    assert history.count("MapRunRedriven") == 1
    assert history.index("MapRunRedriven") > history.index("ExecutionRedriven")
    # Only the failed child ran again (as a redrive of itself); the rest were not re-run.
    assert len(children) == 5
    assert [json.loads(c.input) for c in redriven] == [3]
    succeeded_first = [p for p in first_calls if p != 3]
    assert sorted(calls[len(first_calls) :]) == sorted([3, *(set(range(1, 6)) - set(first_calls))])
    assert all(p not in calls[len(first_calls) :] for p in succeeded_first)
    assert summary.status == "SUCCEEDED"
    assert summary.redrive_count == 1
    assert summary.execution_counts.succeeded == 5


async def test_update_map_run_widens_the_running_map_run() -> None:
    """UpdateMapRun: MaxConcurrency 1 -> 3 while the run waits; three children then run at
    once, and describe_map_run shows the new settings. AWS logs no event for it: the
    history does not show Statemill's record of it."""
    in_flight = peak = 0
    gate = asyncio.Event()

    async def held(payload: JSON, context: TaskContext) -> JSON:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await gate.wait()
        in_flight -= 1
        return payload

    async with Runtime("memory", handlers={"Invoice": held}) as rt:
        machine = await rt.create_state_machine("Billing", billing(INVOICE, MaxConcurrency=1))
        started = await rt.start_execution(machine.arn, {"customers": [1, 2, 3, 4, 5, 6]})
        for _ in range(500):
            runs = await rt.list_map_runs(started.execution_arn)
            if runs and in_flight == 1:
                break
            await asyncio.sleep(0.01)
        await rt.update_map_run(runs[0].map_run_arn, max_concurrency=3, tolerated_failure_count=2)
        for _ in range(500):
            if in_flight == 3:
                break
            await asyncio.sleep(0.01)
        updated = await rt.describe_map_run(runs[0].map_run_arn)
        gate.set()
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        history = history_types(await rt.get_execution_history(started.execution_arn))
        with pytest.raises(ValueError, match="toleratedFailurePercentage"):
            await rt.update_map_run(runs[0].map_run_arn, tolerated_failure_percentage=101)

    assert peak == 3
    assert (updated.max_concurrency, updated.tolerated_failure_count) == (3, 2)
    assert done.status == "SUCCEEDED"
    assert done.output_value == [1, 2, 3, 4, 5, 6]
    assert "MapRunUpdated" not in history


async def test_item_counts_count_the_items_of_batched_children() -> None:
    async def size(payload: JSON, context: TaskContext) -> JSON:
        if 7 in payload["Items"]:
            raise TaskFailed("Billing.Refused", "batch with customer 7")
        return len(payload["Items"])

    definition = billing(INVOICE, ItemBatcher={"MaxItemsPerBatch": 3}, ToleratedFailureCount=1)
    async with virtual_runtime(handlers={"Invoice": size}) as rt:
        machine = await rt.create_state_machine("Billing", definition)
        started = await rt.start_execution(machine.arn, {"customers": list(range(1, 9))})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        (run,) = await rt.list_map_runs(started.execution_arn)
        summary = await rt.describe_map_run(run.map_run_arn)

    assert done.status == "SUCCEEDED"
    items, executions = summary.item_counts, summary.execution_counts
    assert (items.total, items.succeeded, items.failed) == (8, 6, 2)  # [1,2,3] [4,5,6] | [7,8]
    assert (executions.total, executions.succeeded, executions.failed) == (3, 2, 1)
