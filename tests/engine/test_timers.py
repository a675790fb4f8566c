"""Timers across frames: a decision that only looked at one Map iteration (a Task result) must
not push back a timer another iteration is waiting on."""

from __future__ import annotations

from typing import Any

import pytest

from runtime import TaskContext, TaskFailed
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
