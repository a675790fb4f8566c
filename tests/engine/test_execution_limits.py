"""Executions bounded as on AWS (issue 11 part 3): open executions, nesting depth of child
executions, and fairness so that a zero-time loop never holds up other executions."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from runtime import ExecutionDescription, Runtime
from runtime.core.limits import ExecutionLimits
from runtime.errors import ExecutionLimitExceeded
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
ACCOUNT_PREFIX = "arn:aws:states:us-east-1:123456789012"
AWS_LIMIT_MESSAGE = "The maximum number of running executions has been reached"

NAP = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}}
CANARY = {
    "StartAt": "P0",
    "States": {
        **{f"P{i}": {"Type": "Pass", "Next": f"P{i + 1}"} for i in range(9)},
        "P9": {"Type": "Pass", "End": True},
    },
}
RUNAWAY = {
    "StartAt": "Spin",
    "States": {
        "Spin": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.go", "BooleanEquals": True, "Next": "Spin"}],
            "Default": "Out",
        },
        "Out": {"Type": "Succeed"},
    },
}


def ouroboros(pattern: str) -> dict[str, JSON]:
    """A state machine named Ouroboros that starts itself."""
    return {
        "StartAt": "Again",
        "States": {
            "Again": {
                "Type": "Task",
                "Resource": f"arn:aws:states:::states:startExecution{pattern}",
                "Parameters": {
                    "StateMachineArn": f"{ACCOUNT_PREFIX}:stateMachine:Ouroboros",
                    "Input": {},
                },
                "End": True,
            }
        },
    }


# -- open executions ---------------------------------------------------------------------------


async def test_start_beyond_max_open_executions_raises_execution_limit_exceeded() -> None:
    async with virtual_runtime(limits=ExecutionLimits(max_open_executions=3)) as rt:
        machine = await rt.create_state_machine("Napper", NAP)
        started = [await rt.start_execution(machine.arn, {}) for _ in range(3)]
        with pytest.raises(ExecutionLimitExceeded, match=AWS_LIMIT_MESSAGE):
            await rt.start_execution(machine.arn, {})
        # Idempotent start of a running one is not a new execution: still allowed.
        again = await rt.start_execution(machine.arn, {}, name=started[0].execution_arn[-36:])
        assert again.execution_arn == started[0].execution_arn
        await rt.stop_execution(started[0].execution_arn)
        fourth = await rt.start_execution(machine.arn, {})  # one ended: room again
        assert (await rt.describe_execution(fourth.execution_arn)).status == "RUNNING"
        running = await rt.list_executions(machine.arn, status_filter="RUNNING")
        assert len(running) == 3


async def test_the_open_limit_counts_executions_recovered_on_open() -> None:
    store: Any = None
    async with virtual_runtime() as rt:
        store = rt.store
        machine = await rt.create_state_machine("Napper", NAP)
        for _ in range(2):
            await rt.start_execution(machine.arn, {})
    limits = ExecutionLimits(max_open_executions=2)
    async with Runtime(store, virtual_time=True, limits=limits) as rt:
        with pytest.raises(ExecutionLimitExceeded):
            await rt.start_execution(machine.arn, {})


async def test_none_lifts_the_open_limit() -> None:
    async with virtual_runtime(limits=ExecutionLimits(max_open_executions=None)) as rt:
        machine = await rt.create_state_machine("Napper", NAP)
        for _ in range(5):
            await rt.start_execution(machine.arn, {})
        assert len(await rt.list_executions(machine.arn, status_filter="RUNNING")) == 5


# -- nesting depth -----------------------------------------------------------------------------


async def nested_tree(rt: Runtime) -> list[ExecutionDescription]:
    machine = await rt.create_state_machine("Ouroboros", ouroboros(".sync:2"))
    root = await rt.start_execution(machine.arn, {})
    done = await rt.wait_for_execution(root.execution_arn, timeout=30)
    assert done.status == "FAILED"
    return await rt.list_executions(machine.arn, max_results=10_000)


@pytest.mark.parametrize("depth", [0, 1, 5])
async def test_a_machine_that_starts_itself_stops_at_max_nesting_depth(depth: int) -> None:
    async with virtual_runtime(limits=ExecutionLimits(max_nesting_depth=depth)) as rt:
        executions = await nested_tree(rt)
        assert len(executions) == depth + 1  # the root and `depth` nested children
        assert {e.status for e in executions} == {"FAILED"}
        deepest = next(e for e in executions if e.error != "States.TaskFailed")
        assert deepest.error == "StepFunctions.ExecutionLimitExceeded"
        assert deepest.cause is not None
        assert AWS_LIMIT_MESSAGE in deepest.cause
        assert f"nested at most {depth} deep" in deepest.cause
        # The process stays healthy: later executions run.
        assert (await rt.run(CANARY, {"ok": 1})).output_value == {"ok": 1}


async def test_the_default_nesting_depth_is_100() -> None:
    async with virtual_runtime() as rt:
        executions = await nested_tree(rt)
        assert len(executions) == 101
        # Each level's cause holds its child's, escaped again: AWS's 32,768-character bound
        # keeps it from growing ~3x per level (46 MB at depth 20 before the bound).
        assert max(len(e.cause or "") for e in executions) <= 32_768
        assert (await rt.run(CANARY, {})).status == "SUCCEEDED"


async def test_request_response_children_are_bounded_even_after_their_parents_ended() -> None:
    # Fire-and-forget: each parent ends at once, so the chain is found through the store.
    async with virtual_runtime(limits=ExecutionLimits(max_nesting_depth=4)) as rt:
        machine = await rt.create_state_machine("Ouroboros", ouroboros(""))
        await rt.start_execution(machine.arn, {})
        with anyio.fail_after(10):
            while True:
                executions = await rt.list_executions(machine.arn)
                if len(executions) == 5 and all(e.status != "RUNNING" for e in executions):
                    break
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)
        executions = await rt.list_executions(machine.arn)
        assert len(executions) == 5
        assert sorted(e.status for e in executions) == ["FAILED"] + ["SUCCEEDED"] * 4
        failed = next(e for e in executions if e.status == "FAILED")
        assert failed.error == "StepFunctions.ExecutionLimitExceeded"


# -- fairness ----------------------------------------------------------------------------------


async def canary_latencies(rt: Runtime, count: int) -> list[float]:
    """Run ``count`` canaries one after another, a little apart; their wall-clock latencies."""
    canary = await rt.create_state_machine("Canary", CANARY)
    latencies = []
    for _ in range(count):
        before = time.perf_counter()
        with anyio.fail_after(10):
            done = await rt.start_sync_execution(canary.arn, {})
        latencies.append(time.perf_counter() - before)
        assert done.status == "SUCCEEDED"
        await anyio.sleep(0.005)
    return sorted(latencies)


@pytest.mark.parametrize("runaways", [1, 2])
async def test_a_canary_beside_runaway_zero_time_loops_finishes_fast(runaways: int) -> None:
    """The decision event budget (``Decision.more``) cuts a runaway loop; the engine lets cut
    executions go on one at a time, after a pause as long as their last decision, so other
    executions are decided meanwhile. Before: a canary's median latency was 535 ms beside
    one loop (one ~150 ms decision in the way at each of its hops)."""
    limits = ExecutionLimits(max_history_events=None)  # run away for good
    async with virtual_runtime(limits=limits) as rt:
        loop = await rt.create_state_machine("Runaway", RUNAWAY)
        started = [await rt.start_execution(loop.arn, {"go": True}) for _ in range(runaways)]
        await anyio.sleep(0.05)
        latencies = await canary_latencies(rt, 30)
        for runaway in started:
            history = await rt.get_execution_history(runaway.execution_arn)
            assert len(history) > 10_000  # the loops did run meanwhile, and still do
            assert (await rt.stop_execution(runaway.execution_arn)).status == "ABORTED"
    assert latencies[len(latencies) // 2] < 0.05
    assert latencies[int(len(latencies) * 0.9)] < 0.1
