"""Activities: create/list/describe/delete, GetActivityTask, answers by token, dead workers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from runtime import ActivityDoesNotExist, Runtime, TaskFailed, TaskTimedOut
from runtime.activities import ActivityContext, run_activity_worker
from runtime.testing import history_types, virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any


def activity_machine(activity_arn: str, **fields: JSON) -> dict[str, JSON]:
    task = {"Type": "Task", "Resource": activity_arn, "End": True, **fields}
    return {"StartAt": "Work", "States": {"Work": task}}


async def test_activity_lifecycle_verbs() -> None:
    async with virtual_runtime() as rt:
        first = await rt.create_activity("resize")
        assert await rt.create_activity("resize") == first
        second = await rt.create_activity("crop")
        assert first.activity_arn == "arn:aws:states:us-east-1:123456789012:activity:resize"
        assert await rt.describe_activity(first.activity_arn) == first
        assert {a.name for a in await rt.list_activities()} == {"resize", "crop"}
        await rt.delete_activity(second.activity_arn)
        with pytest.raises(ActivityDoesNotExist, match="crop"):
            await rt.describe_activity(second.activity_arn)
        with pytest.raises(ActivityDoesNotExist):
            await rt.get_activity_task(second.activity_arn, "w", timeout=0.01)


async def test_a_worker_takes_each_task_once_and_answers_it() -> None:
    async with virtual_runtime() as rt:
        activity = await rt.create_activity("double")
        machine = await rt.create_state_machine("M", activity_machine(activity.activity_arn))
        arns = [(await rt.start_execution(machine.arn, {"n": n})).execution_arn for n in range(3)]

        async def double(value: JSON, context: ActivityContext) -> JSON:
            await context.heartbeat()
            return {"n": value["n"] * 2}

        ran = await run_activity_worker(
            rt, activity.activity_arn, double, worker_name="w-1", max_tasks=3
        )
        results = [await rt.wait_for_execution(arn, timeout=10) for arn in arns]
        history = await rt.get_execution_history(arns[0])
        nothing = await rt.get_activity_task(activity.activity_arn, "w-2", timeout=0.05)
    assert ran == 3
    assert sorted(r.output_value["n"] for r in results) == [0, 2, 4]
    assert nothing is None
    assert history_types(history) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "ActivityScheduled",
        "ActivityStarted",
        "ActivitySucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    assert history[3].to_aws()["activityStartedEventDetails"] == {"workerName": "w-1"}
    assert "statemillTaskToken" not in history[2].to_aws()["activityScheduledEventDetails"]


async def test_a_failing_worker_fails_the_task_and_catch_sees_it() -> None:
    async with virtual_runtime() as rt:
        activity = await rt.create_activity("charge")
        definition = activity_machine(
            activity.activity_arn,
            Catch=[{"ErrorEquals": ["Card.Declined"], "Next": "Declined"}],
        )
        del definition["States"]["Work"]["End"]
        definition["States"]["Work"]["Next"] = "Done"
        definition["States"]["Done"] = {"Type": "Succeed"}
        definition["States"]["Declined"] = {"Type": "Pass", "End": True}
        machine = await rt.create_state_machine("M", definition)
        started = await rt.start_execution(machine.arn, {})

        async def charge(value: JSON, context: ActivityContext) -> JSON:
            raise TaskFailed("Card.Declined", "insufficient funds")

        await run_activity_worker(rt, activity.activity_arn, charge, max_tasks=1)
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        history = await rt.get_execution_history(started.execution_arn)
    assert done.output_value == {"Error": "Card.Declined", "Cause": "insufficient funds"}
    assert "ActivityFailed" in history_types(history)


async def test_a_worker_that_dies_holding_a_task_times_out_by_heartbeat() -> None:
    async with virtual_runtime() as rt:
        activity = await rt.create_activity("fragile")
        definition = activity_machine(
            activity.activity_arn,
            HeartbeatSeconds=30,
            Retry=[{"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 1}],
        )
        machine = await rt.create_state_machine("M", definition)
        started = await rt.start_execution(machine.arn, {"job": 1})
        dead = await rt.get_activity_task(activity.activity_arn, "dies", timeout=5)
        assert dead is not None  # ... and the worker dies: no answer, no heartbeat
        retried = await rt.get_activity_task(activity.activity_arn, "survivor", timeout=5)
        assert retried is not None
        assert retried.task_token != dead.task_token
        with pytest.raises(TaskTimedOut):
            await rt.send_task_success(dead.task_token, {})
        await rt.send_task_success(retried.task_token, {"done": True})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        history = await rt.get_execution_history(started.execution_arn)
    assert done.output_value == {"done": True}
    assert retried.input_value == {"job": 1}
    timed_out = next(e for e in history if e.type == "ActivityTimedOut")
    assert timed_out.details["error"] == "States.HeartbeatTimeout"


async def test_an_unclaimed_activity_task_times_out() -> None:
    async with virtual_runtime() as rt:
        activity = await rt.create_activity("nobody")
        machine = await rt.create_state_machine(
            "M", activity_machine(activity.activity_arn, TimeoutSeconds=300)
        )
        started = await rt.start_execution(machine.arn, {})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        late = await rt.get_activity_task(activity.activity_arn, "late", timeout=0.05)
    assert done.error == "States.Timeout"
    assert late is None  # a timed-out task is never handed out


async def test_activities_and_their_scheduled_tasks_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "statemill.db")
    async with Runtime(path) as rt:
        activity = await rt.create_activity("later")
        machine = await rt.create_state_machine("M", activity_machine(activity.activity_arn))
        started = await rt.start_execution(machine.arn, {"x": 1})
        for _ in range(1000):
            history = await rt.get_execution_history(started.execution_arn)
            if "ActivityScheduled" in history_types(history):
                break
            await asyncio.sleep(0.001)

    async with Runtime(path) as reopened:
        # The activity was stored: no need to create it again after the restart.
        assert await reopened.describe_activity(activity.activity_arn) == activity
        assert await reopened.list_activities() == [activity]
        task = await reopened.get_activity_task(activity.activity_arn, "w", timeout=5)
        assert task is not None
        await reopened.send_task_success(task.task_token, {"y": 2})
        done = await reopened.wait_for_execution(started.execution_arn, timeout=10)
    assert task.input_value == {"x": 1}
    assert done.output_value == {"y": 2}


async def test_a_poll_that_fails_while_reviving_leaves_the_task_for_the_next_worker() -> None:
    """GetActivityTask took the task off its queue, then revived the parked execution: a long
    poll cancelled there (the worker went away) or a failed read lost the task for good."""
    async with virtual_runtime() as rt:
        activity = await rt.create_activity("later")
        machine = await rt.create_state_machine(
            "M", activity_machine(activity.activity_arn, TimeoutSeconds=3600)
        )
        arn = (await rt.start_execution(machine.arn, {"n": 1})).execution_arn
        for _ in range(50):
            if arn in rt.engine.parked:
                break
            await asyncio.sleep(0.01)
        assert arn in rt.engine.parked  # waits on its timeout only: evicted
        real = rt.engine.revive

        async def broken(execution_arn: str) -> None:
            raise OSError("database is locked")

        rt.engine.revive = broken  # type: ignore[method-assign]
        with pytest.raises(OSError, match="locked"):
            await rt.get_activity_task(activity.activity_arn, "first", timeout=1)
        rt.engine.revive = real  # type: ignore[method-assign]
        task = await rt.get_activity_task(activity.activity_arn, "second", timeout=1)
        assert task is not None
        await rt.send_task_success(task.task_token, {"done": True})
        done = await rt.wait_for_execution(arn, timeout=10)
    assert done.status == "SUCCEEDED"
