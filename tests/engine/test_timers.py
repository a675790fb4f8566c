"""Timers across frames: a decision that only looked at one Map iteration (a Task result) must
not push back a timer another iteration is waiting on."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import structlog

from runtime import Runtime, TaskContext, TaskFailed
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

DEFINITION = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Map",
            "ItemProcessor": {
                "StartAt": "Route",
                "States": {
                    "Route": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$", "NumericEquals": 0, "Next": "Pause"}],
                        "Default": "Work",
                    },
                    "Pause": {"Type": "Wait", "Seconds": 100, "End": True},
                    "Work": {
                        "Type": "Task",
                        "Resource": "flaky",
                        "Retry": [{"ErrorEquals": ["Busy"], "IntervalSeconds": 200}],
                        "End": True,
                    },
                },
            },
            "End": True,
        }
    },
}


async def test_a_retry_in_one_iteration_does_not_delay_a_wait_in_another() -> None:
    async def flaky(value: Any, context: TaskContext) -> Any:
        await context.sleep(1)  # the result arrives after the Wait was armed
        if context.attempt == 0:
            raise TaskFailed("Busy", "try later")
        return value

    async with virtual_runtime({"flaky": flaky}) as rt:
        result = await rt.run(DEFINITION, [0, 1])
        history = await rt.get_execution_history(result.execution_arn)

    assert result.status == "SUCCEEDED"
    assert result.output_value == [0, 1]
    entered = next(e for e in history if e.type == "WaitStateEntered")
    exited = next(e for e in history if e.type == "WaitStateExited")
    assert exited.timestamp - entered.timestamp == 100
    retried = [e for e in history if e.type == "TaskScheduled"]
    assert retried[1].timestamp - retried[0].timestamp == 201


NAP = {
    "StartAt": "Nap",
    "States": {
        "Nap": {"Type": "Wait", "Seconds": 60, "Next": "Up"},
        "Up": {"Type": "Pass", "End": True},
    },
}


async def test_a_parked_execution_is_revived_ahead_of_its_timer_which_fires_on_time() -> None:
    async with virtual_runtime() as rt:
        rt.engine.prefetch_seconds = 2.0
        machine = await rt.create_state_machine("Napper", NAP)
        started = await rt.start_execution(machine.arn, {})
        arn = started.execution_arn
        t0 = rt.clock.now()
        await rt.clock.sleep_until(t0 + 30)
        assert arn in rt.engine.parked  # evicted while it waits
        await rt.clock.sleep_until(t0 + 59)
        # Within the prefetch window: replayed into memory, not yet woken.
        assert arn not in rt.engine.parked
        assert arn in rt.engine.live
        assert (await rt.describe_execution(arn)).status == "RUNNING"
        done = await rt.wait_for_execution(arn, timeout=10)
        history = await rt.get_execution_history(arn)
    assert done.status == "SUCCEEDED"
    entered = next(e for e in history if e.type == "WaitStateEntered")
    exited = next(e for e in history if e.type == "WaitStateExited")
    assert exited.timestamp == pytest.approx(entered.timestamp + 60)


async def test_without_prefetch_a_parked_execution_stays_evicted_until_its_timer() -> None:
    async with virtual_runtime() as rt:
        rt.engine.prefetch_seconds = 0.0
        machine = await rt.create_state_machine("Napper", NAP)
        started = await rt.start_execution(machine.arn, {})
        t0 = rt.clock.now()
        await rt.clock.sleep_until(t0 + 59.9)
        assert started.execution_arn in rt.engine.parked
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert done.status == "SUCCEEDED"


async def test_two_stops_of_a_parked_execution_read_it_back_once(tmp_path: Any) -> None:
    """Two requests that revived one parked execution at once read its log twice: the later
    read found it live and logged ``engine.parked_execution_lost`` (the long fuzz, a Map Run's
    children stopped while their timers fired); it waits for the first read now."""
    async with Runtime(str(tmp_path / "s.db"), virtual_time=True) as rt:
        rt.engine.prefetch_seconds = 0.0
        machine = await rt.create_state_machine("Napper", NAP)
        arns = [(await rt.start_execution(machine.arn, {})).execution_arn for _ in range(20)]
        await rt.clock.sleep_until(rt.clock.now() + 30)
        assert all(arn in rt.engine.parked for arn in arns)
        with structlog.testing.capture_logs() as logs:
            async with anyio.create_task_group() as tg:
                for arn in arns:
                    tg.start_soon(rt.stop_execution, arn)
                    tg.start_soon(rt.stop_execution, arn)
        described = [await rt.describe_execution(arn) for arn in arns]
        histories = [await rt.get_execution_history(arn) for arn in arns]
    assert [log["event"] for log in logs if log["log_level"] == "error"] == []
    assert {d.status for d in described} == {"ABORTED"}
    assert all([e.type for e in h].count("ExecutionAborted") == 1 for h in histories)


async def test_a_wake_that_names_a_parked_execution_twice_revives_it_once() -> None:
    """The first version of the wait above failed on a list naming one execution twice (a
    ``KeyError`` that stopped the timer loop: the long fuzz, retry family, 13 hangs)."""
    async with virtual_runtime() as rt:
        rt.engine.prefetch_seconds = 0.0
        machine = await rt.create_state_machine("Napper", NAP)
        arn = (await rt.start_execution(machine.arn, {})).execution_arn
        await rt.clock.sleep_until(rt.clock.now() + 30)
        assert arn in rt.engine.parked
        assert await rt.engine.wake_many([arn, arn]) == [arn]
        assert arn in rt.engine.live
        assert arn not in rt.engine.parked
        await rt.stop_execution(arn)
        done = await rt.describe_execution(arn)
    assert done.status == "ABORTED"
