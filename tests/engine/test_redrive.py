"""RedriveExecution: which executions may be redriven, what runs again, RedriveCount."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from runtime import ExecutionDoesNotExist, ExecutionNotRedrivable, TaskContext, TaskFailed
from runtime.testing import history_types, virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
DAY = 24 * 3600


class Flaky:
    """Fails until ``fixed`` is set; records the RedriveCount it was given."""

    def __init__(self) -> None:
        self.fixed = False
        self.calls: list[JSON] = []

    async def __call__(self, event: JSON, context: TaskContext) -> JSON:
        self.calls.append(event)
        if not self.fixed:
            raise TaskFailed("Downstream.Unavailable", "try again after the fix")
        return {"fixed": True, "redrives": event["redrives"]}


def parallel_machine() -> dict[str, JSON]:
    def branch(name: str, resource: str) -> dict[str, JSON]:
        task = {
            "Type": "Task",
            "Resource": resource,
            "Parameters": {"redrives.$": "$$.Execution.RedriveCount"},
            "End": True,
        }
        return {"StartAt": name, "States": {name: task}}

    late = branch("Bad", "Flaky")
    # The failing branch waits first, so the good branch has finished when it fails.
    late["StartAt"] = "Later"
    late["States"]["Later"] = {"Type": "Wait", "Seconds": 5, "Next": "Bad"}
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": {"ready": True}, "Next": "Both"},
            "Both": {
                "Type": "Parallel",
                "Branches": [branch("Good", "Good"), late],
                "End": True,
            },
        },
    }


async def good(event: JSON, context: TaskContext) -> JSON:
    return {"good": event["redrives"]}


def map_machine(max_concurrency: int = 0) -> dict[str, JSON]:
    return {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": max_concurrency,
                "ItemProcessor": {
                    "StartAt": "Work",
                    "States": {
                        "Work": {
                            "Type": "Task",
                            "Resource": "Work",
                            "Parameters": {
                                "item.$": "$",
                                "redrives.$": "$$.Execution.RedriveCount",
                            },
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }


class Picky:
    """Fails the items in ``broken``; records every call."""

    def __init__(self, broken: set[int]) -> None:
        self.broken = broken
        self.calls: list[tuple[int, int]] = []

    async def __call__(self, event: JSON, context: TaskContext) -> JSON:
        self.calls.append((event["item"], event["redrives"]))
        if event["item"] in self.broken:
            raise TaskFailed("Item.Broken", f"item {event['item']}")
        return None if event["item"] == 0 else {"item": event["item"], "run": event["redrives"]}


async def test_redrive_after_a_failure_inside_a_parallel_branch() -> None:
    flaky = Flaky()
    async with virtual_runtime({"Flaky": flaky, "Good": good}) as rt:
        machine = await rt.create_state_machine("Fanout", parallel_machine())
        started = await rt.start_execution(machine.arn, {"order": 1})
        failed = await rt.wait_for_execution(started.execution_arn, timeout=10)
        flaky.fixed = True
        await rt.redrive_execution(started.execution_arn)
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        history = await rt.get_execution_history(started.execution_arn)
    assert failed.status == "FAILED"
    assert failed.error == "Downstream.Unavailable"
    assert done.status == "SUCCEEDED"
    assert done.redrive_count == 1
    # The branch that succeeded keeps its first output; only the failed one ran again.
    assert done.output_value == [{"good": 0}, {"fixed": True, "redrives": 1}]
    types = history_types(history)
    redriven = types.index("ExecutionRedriven")
    assert types[redriven - 1] == "ExecutionFailed"
    assert history[redriven].to_aws()["executionRedrivenEventDetails"] == {"redriveCount": 1}
    # It restarts from the failed state, not from the beginning.
    assert types[redriven + 1] == "ParallelStateEntered"
    assert types.count("PassStateEntered") == 1
    assert types[redriven:].count("TaskScheduled") == 1
    assert types[-1] == "ExecutionSucceeded"
    assert len(flaky.calls) == 2


async def test_redrive_reruns_only_the_failed_iterations_of_an_inline_map() -> None:
    picky = Picky(broken={2, 4})
    definition = map_machine(max_concurrency=1)  # one at a time: a deterministic order
    definition["States"]["Each"]["ToleratedFailureCount"] = 1
    async with virtual_runtime({"Work": picky}) as rt:
        machine = await rt.create_state_machine("Items", definition)
        started = await rt.start_execution(machine.arn, {"items": [0, 1, 2, 3, 4, 5]})
        failed = await rt.wait_for_execution(started.execution_arn, timeout=10)
        first_calls = sorted(item for item, _ in picky.calls)
        picky.broken = set()
        await rt.redrive_execution(started.execution_arn)
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        history = await rt.get_execution_history(started.execution_arn)
    assert failed.status == "FAILED"
    # Item 2 is tolerated, item 4 is one failure too many: item 5 never starts.
    assert failed.error == "States.ExceedToleratedFailureThreshold"
    assert first_calls == [0, 1, 2, 3, 4]
    redriven_calls = [item for item, redrives in picky.calls if redrives == 1]
    assert redriven_calls == [2, 4, 5]
    assert done.status == "SUCCEEDED"
    # Outputs in item order: kept ones (including a null output) and rerun ones together.
    assert done.output_value == [
        None,
        {"item": 1, "run": 0},
        {"item": 2, "run": 1},
        {"item": 3, "run": 0},
        {"item": 4, "run": 1},
        {"item": 5, "run": 1},
    ]
    after = history[history_types(history).index("ExecutionRedriven") :]
    started_again = [e.details["index"] for e in after if e.type == "MapIterationStarted"]
    assert started_again == [2, 4, 5]


async def test_redrive_of_a_stopped_map_reruns_the_aborted_iterations_only() -> None:
    gate = anyio.Event()
    four_called = anyio.Event()
    calls: list[int] = []

    async def slow(event: JSON, context: TaskContext) -> JSON:
        calls.append(event["item"])
        if len(calls) == 4:
            four_called.set()
        if event["item"] >= 2 and event["redrives"] == 0:
            await gate.wait()  # still running when the execution is stopped
        return event["item"] * 10

    async with virtual_runtime({"Work": slow}) as rt:
        machine = await rt.create_state_machine("Items", map_machine(max_concurrency=2))
        started = await rt.start_execution(machine.arn, {"items": [0, 1, 2, 3, 4]})
        with anyio.fail_after(10):
            await four_called.wait()
        await rt.stop_execution(started.execution_arn)
        stopped = await rt.describe_execution(started.execution_arn)
        await rt.redrive_execution(started.execution_arn)
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert stopped.status == "ABORTED"
    assert done.status == "SUCCEEDED"
    assert done.output_value == [0, 10, 20, 30, 40]
    # Items 0 and 1 finished before the stop; 2 and 3 were aborted; 4 never started.
    assert sorted(calls[:4]) == [0, 1, 2, 3]
    assert sorted(calls[4:]) == [2, 3, 4]


async def test_a_retry_after_a_redrive_runs_every_iteration_again() -> None:
    """What a redrive keeps is for its first attempt at the state; a Retry starts afresh."""
    attempts: list[tuple[int, int]] = []

    async def work(event: JSON, context: TaskContext) -> JSON:
        attempts.append((event["item"], event["redrives"]))
        failures = sum(1 for item, r in attempts if item == 1 and r == 1)
        if event["item"] == 1 and (event["redrives"] == 0 or failures == 1):
            raise TaskFailed("Item.Broken", "once more")
        return event["item"]

    definition = map_machine(max_concurrency=1)
    definition["States"]["Each"]["Retry"] = [
        {"ErrorEquals": ["Item.Broken"], "MaxAttempts": 1, "IntervalSeconds": 1}
    ]
    async with virtual_runtime({"Work": work}) as rt:
        machine = await rt.create_state_machine("Items", definition)
        started = await rt.start_execution(machine.arn, {"items": [0, 1, 2]})
        failed = await rt.wait_for_execution(started.execution_arn, timeout=10)
        await rt.redrive_execution(started.execution_arn)
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert failed.status == "FAILED"
    assert done.status == "SUCCEEDED"
    assert done.output_value == [0, 1, 2]
    after_redrive = sorted(item for item, redrives in attempts if redrives == 1)
    # Redrive: item 1 only (item 0 succeeded before; it fails); then the Map's retry: all three.
    assert after_redrive == [0, 1, 1, 2]
    assert attempts[-4][0] == 1


async def test_an_aborted_execution_can_be_redriven_and_counts_redrives() -> None:
    definition = {
        "StartAt": "Nap",
        "States": {
            "Nap": {"Type": "Wait", "Seconds": 60, "Next": "Count"},
            "Count": {
                "Type": "Pass",
                "Parameters": {"redrives.$": "$$.Execution.RedriveCount"},
                "End": True,
            },
        },
    }
    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine("Napper", definition)
        started = await rt.start_execution(machine.arn, {})
        await rt.stop_execution(started.execution_arn)
        await rt.redrive_execution(started.execution_arn)
        await rt.stop_execution(started.execution_arn)
        await rt.redrive_execution(started.execution_arn)
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert done.status == "SUCCEEDED"
    assert done.output_value == {"redrives": 2}
    assert done.redrive_count == 2


async def test_only_unsuccessful_recent_standard_executions_are_redrivable() -> None:
    flaky = Flaky()
    pass_machine = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    wait_machine = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}
    async with virtual_runtime({"Flaky": flaky, "Good": good}) as rt:
        ok = await rt.create_state_machine("Ok", pass_machine)
        done = await rt.start_execution(ok.arn, {})
        await rt.wait_for_execution(done.execution_arn, timeout=10)
        with pytest.raises(ExecutionNotRedrivable, match="SUCCEEDED"):
            await rt.redrive_execution(done.execution_arn)

        waiting = await rt.create_state_machine("Waiting", wait_machine)
        running = await rt.start_execution(waiting.arn, {})
        with pytest.raises(ExecutionNotRedrivable, match="RUNNING"):
            await rt.redrive_execution(running.execution_arn)

        with pytest.raises(ExecutionDoesNotExist):
            await rt.redrive_execution(ok.arn.replace("stateMachine", "execution") + ":nope")

        fanout = await rt.create_state_machine("Fanout", parallel_machine())
        old = await rt.start_execution(fanout.arn, {})
        await rt.wait_for_execution(old.execution_arn, timeout=10)
        await rt.clock.sleep_until(rt.clock.now() + 15 * DAY)
        with pytest.raises(ExecutionNotRedrivable, match="14 days"):
            await rt.redrive_execution(old.execution_arn)

        express = await rt.create_state_machine("Fast", parallel_machine(), type="EXPRESS")
        quick = await rt.start_execution(express.arn, {})
        await rt.wait_for_execution(quick.execution_arn, timeout=10)
        with pytest.raises(ExecutionNotRedrivable, match="EXPRESS"):
            await rt.redrive_execution(quick.execution_arn)
