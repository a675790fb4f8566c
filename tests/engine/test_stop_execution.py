"""StopExecution: ABORTED, handlers cancelled, Map iterations and Parallel branches aborted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime import ExecutionDoesNotExist, TaskContext
from runtime.testing import history_types, virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any


class Slow:
    """A handler that takes an hour (virtual) and records whether it was cancelled."""

    def __init__(self) -> None:
        self.started = 0
        self.cancelled = 0
        self.all_started = asyncio.Event()
        self.expected = 1

    async def __call__(self, event: JSON, context: TaskContext) -> JSON:
        self.started += 1
        if self.started >= self.expected:
            self.all_started.set()
        try:
            await asyncio.Event().wait()  # never returns on its own
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return event


async def test_stop_in_the_middle_of_a_map_of_running_handlers() -> None:
    slow = Slow()
    slow.expected = 3
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Work",
                    "States": {"Work": {"Type": "Task", "Resource": "Slow", "End": True}},
                },
                "End": True,
            }
        },
    }
    async with virtual_runtime({"Slow": slow}) as rt:
        machine = await rt.create_state_machine("Fanout", definition)
        started = await rt.start_execution(machine.arn, {"items": [1, 2, 3]})
        await slow.all_started.wait()
        stopped = await rt.stop_execution(started.execution_arn, error="Operator", cause="runaway")
        history = await rt.get_execution_history(started.execution_arn)
        for _ in range(10):
            await asyncio.sleep(0)
    assert stopped.status == "ABORTED"
    assert (stopped.error, stopped.cause) == ("Operator", "runaway")
    types = history_types(history)
    assert types[-5:] == [
        "MapIterationAborted",
        "MapIterationAborted",
        "MapIterationAborted",
        "MapStateAborted",
        "ExecutionAborted",
    ]
    assert sorted(e.details["index"] for e in history if e.type == "MapIterationAborted") == [
        0,
        1,
        2,
    ]
    assert history[-1].to_aws()["executionAbortedEventDetails"] == {
        "error": "Operator",
        "cause": "runaway",
    }
    assert slow.cancelled == 3


async def test_stop_aborts_parallel_branches_innermost_first() -> None:
    slow = Slow()
    slow.expected = 2
    inner = {
        "StartAt": "Inner",
        "States": {
            "Inner": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "A",
                        "States": {"A": {"Type": "Task", "Resource": "Slow", "End": True}},
                    }
                ],
                "End": True,
            }
        },
    }
    definition = {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    inner,
                    {
                        "StartAt": "B",
                        "States": {"B": {"Type": "Task", "Resource": "Slow", "End": True}},
                    },
                ],
                "End": True,
            }
        },
    }
    async with virtual_runtime({"Slow": slow}) as rt:
        machine = await rt.create_state_machine("Branches", definition)
        started = await rt.start_execution(machine.arn, {})
        await slow.all_started.wait()
        stopped = await rt.stop_execution(started.execution_arn)
        history = await rt.get_execution_history(started.execution_arn)
    assert stopped.status == "ABORTED"
    assert history_types(history)[-3:] == [
        "ParallelStateAborted",
        "ParallelStateAborted",
        "ExecutionAborted",
    ]
    # The inner Parallel (in a branch frame) is aborted before the outer one.
    assert history[-3].frame != ""
    assert history[-2].frame == ""
    assert history[-1].details == {}


async def test_stop_a_parked_execution() -> None:
    definition = {
        "StartAt": "Nap",
        "States": {"Nap": {"Type": "Wait", "Seconds": 86_400, "End": True}},
    }
    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine("Napper", definition)
        started = await rt.start_execution(machine.arn, {})
        await rt.clock.sleep_until(rt.clock.now() + 60)
        assert started.execution_arn in rt.engine.parked
        stopped = await rt.stop_execution(started.execution_arn, cause="not needed")
        history = await rt.get_execution_history(started.execution_arn)
    assert stopped.status == "ABORTED"
    assert history_types(history) == ["ExecutionStarted", "WaitStateEntered", "ExecutionAborted"]


async def test_stop_an_unknown_execution() -> None:
    async with virtual_runtime() as rt:
        with pytest.raises(ExecutionDoesNotExist, match="Does Not Exist"):
            await rt.stop_execution("arn:aws:states:us-east-1:123456789012:execution:X:nope")


async def test_stopping_twice_keeps_the_first_stop() -> None:
    definition = {
        "StartAt": "Nap",
        "States": {"Nap": {"Type": "Wait", "Seconds": 60, "End": True}},
    }
    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine("Napper", definition)
        started = await rt.start_execution(machine.arn, {})
        first = await rt.stop_execution(started.execution_arn, error="First")
        second = await rt.stop_execution(started.execution_arn, error="Second")
        history = await rt.get_execution_history(started.execution_arn)
    assert first.error == second.error == "First"
    assert history_types(history).count("ExecutionAborted") == 1
