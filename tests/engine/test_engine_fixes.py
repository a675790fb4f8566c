"""Engine bugs that broke every later execution of a runtime (issue 11 part 6): each test ran
one execution that triggered the bug, then showed that the next one still runs."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from runtime import ManualClock, Runtime, TaskContext
from runtime.engine.clock import MAX_VIRTUAL_TIME
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any

NAP = {
    "StartAt": "Nap",
    "States": {
        "Nap": {"Type": "Wait", "Seconds": 10, "Next": "When"},
        "When": {
            "Type": "Pass",
            "Parameters": {"entered.$": "$$.State.EnteredTime"},
            "End": True,
        },
    },
}

SHORT_NAP = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 10, "End": True}}}
TASK = {"Type": "Task", "Resource": "work", "End": True}
# One decision schedules the Task of the first branch and, as the second branch fails at once,
# fails the Parallel and ends the execution.
SCHEDULE_AND_END = {
    "StartAt": "Both",
    "States": {
        "Both": {
            "Type": "Parallel",
            "End": True,
            "Branches": [
                {"StartAt": "Work", "States": {"Work": TASK}},
                {"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "Boom"}}},
            ],
        }
    },
}


async def work(value: JSON, context: TaskContext) -> JSON:
    return value


async def test_a_task_scheduled_by_the_decision_that_ended_the_execution_leaves_time_running() -> (
    None
):
    async with virtual_runtime({"work": work}) as rt:
        ended = await rt.run(SCHEDULE_AND_END, {})
        assert ended.status == "FAILED"
        assert ended.error == "Boom"
        # Before the fix the Task was cancelled before it started, its busy count was never
        # given back, and virtual time never moved again: this Wait hung.
        with anyio.fail_after(5):
            later = await rt.run(NAP, {})
        assert later.status == "SUCCEEDED"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("start", [2.0**54 - 6, 2.0**53 + 1, 2.0**55 - 12])
async def test_timers_past_2_to_the_53_seconds_fire(start: float) -> None:
    # Up there ``fire_at - 2`` and ``now + 2`` round differently: the timer loop found a
    # parked execution due for its prefetch yet nothing to prefetch, and spun without ever
    # yielding (the event loop froze; only pytest-timeout's signal ended the test).
    async with Runtime("memory", clock=ManualClock(start)) as rt:
        machine = await rt.create_state_machine("Napper", SHORT_NAP)
        with anyio.fail_after(5):
            started = await rt.start_execution(machine.arn, {})
            done = await rt.wait_for_execution(started.execution_arn)
        assert done.status == "SUCCEEDED"
        assert rt.clock.now() >= start + 10


async def test_a_sleep_past_year_3000_does_not_move_virtual_time_there() -> None:
    """A handler sleeping 1e30 s (a Wait of 1e30 s in the shell's terms) waits for good; the
    autojump never carries the clock past ``MAX_VIRTUAL_TIME``, so the runtime's later
    executions still get timestamps that can be written."""
    slept = anyio.Event()

    async def forever(value: JSON, context: TaskContext) -> JSON:
        slept.set()
        await context.sleep(1e30)
        return value

    sleep = {"Type": "Task", "Resource": "forever", "End": True}
    sleeper = {"StartAt": "Sleep", "States": {"Sleep": sleep}}
    async with virtual_runtime({"forever": forever}) as rt:
        machine = await rt.create_state_machine("Sleeper", sleeper)
        stuck = await rt.start_execution(machine.arn, {})
        await slept.wait()
        for _ in range(50):  # let the autojump look at the lone deadline
            await anyio.lowlevel.checkpoint()
        assert rt.clock.now() < MAX_VIRTUAL_TIME
        with anyio.fail_after(5):
            later = await rt.run(NAP, {})
        assert later.status == "SUCCEEDED"
        assert later.output_value["entered"].startswith("2023-")
        assert (await rt.describe_execution(stuck.execution_arn)).status == "RUNNING"


async def test_a_seconds_path_of_1e30_never_breaks_later_executions() -> None:
    huge = {
        "StartAt": "Nap",
        "States": {"Nap": {"Type": "Wait", "SecondsPath": "$.s", "End": True}},
    }
    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine("Huge", huge)
        first = await rt.start_execution(machine.arn, {"s": 1e30})
        for _ in range(50):
            await anyio.lowlevel.checkpoint()
        assert rt.clock.now() < MAX_VIRTUAL_TIME
        with anyio.fail_after(5):
            later = await rt.run(NAP, {})
        assert later.status == "SUCCEEDED"
        assert later.output_value["entered"][:4] < "3000"
        assert (await rt.describe_execution(first.execution_arn)).status in (
            "RUNNING",
            "FAILED",
            "TIMED_OUT",
        )
