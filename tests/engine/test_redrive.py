"""RedriveExecution: which executions may be redriven, what runs again, RedriveCount."""

from __future__ import annotations

from typing import Any

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

    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {"Type": "Pass", "Result": {"ready": True}, "Next": "Both"},
            "Both": {
                "Type": "Parallel",
                "Branches": [branch("Good", "Good"), branch("Bad", "Flaky")],
                "End": True,
            },
        },
    }


async def good(event: JSON, context: TaskContext) -> JSON:
    return {"good": event["redrives"]}


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
    assert done.output_value == [{"good": 1}, {"fixed": True, "redrives": 1}]
    types = history_types(history)
    redriven = types.index("ExecutionRedriven")
    assert types[redriven - 1] == "ExecutionFailed"
    assert history[redriven].to_aws()["executionRedrivenEventDetails"] == {"redriveCount": 1}
    # It restarts from the failed state, not from the beginning.
    assert types[redriven + 1] == "ParallelStateEntered"
    assert types.count("PassStateEntered") == 1
    assert types[-1] == "ExecutionSucceeded"


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
