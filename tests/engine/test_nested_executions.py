"""Nested state machines: ``arn:aws:states:::states:startExecution`` in its three patterns."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from runtime import ExecutionAlreadyExists, Runtime, TaskContext
from runtime.testing import history_types, virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
START = "arn:aws:states:::states:startExecution"
STARTED_BY = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"


def parent_machine(resource: str, child_arn: str, **fields: JSON) -> dict[str, JSON]:
    parameters = {"StateMachineArn": child_arn, "Input": {"n.$": "$.n"}, **fields}
    return {
        "StartAt": "Child",
        "States": {
            "Child": {"Type": "Task", "Resource": resource, "Parameters": parameters, "End": True}
        },
    }


CHILD = {
    "StartAt": "Double",
    "States": {
        "Double": {
            "Type": "Pass",
            "Parameters": {"n.$": "States.MathAdd($.n, $.n)", "parent.$": f"$.{STARTED_BY}"},
            "End": True,
        }
    },
}

FAILING_CHILD = {
    "StartAt": "Boom",
    "States": {"Boom": {"Type": "Fail", "Error": "Child.Broke", "Cause": "on purpose"}},
}


async def setup(rt: Runtime, resource: str, child: dict[str, JSON] = CHILD) -> tuple[str, str]:
    child_machine = await rt.create_state_machine("Child", child)
    parent = await rt.create_state_machine("Parent", parent_machine(resource, child_machine.arn))
    return parent.arn, child_machine.arn


async def test_sync_returns_the_child_output_as_json_text() -> None:
    async with virtual_runtime() as rt:
        parent_arn, child_arn = await setup(rt, START + ".sync")
        started = await rt.start_execution(parent_arn, {"n": 21})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        children = await rt.list_executions(child_arn)
    assert done.status == "SUCCEEDED"
    result = done.output_value
    assert result["Status"] == "SUCCEEDED"
    assert isinstance(result["Output"], str)
    assert json.loads(result["Output"]) == {"n": 42, "parent": started.execution_arn}
    assert result["ExecutionArn"] == children[0].execution_arn
    assert result["StateMachineArn"] == child_arn
    assert json.loads(result["Input"])[STARTED_BY] == started.execution_arn


async def test_sync2_returns_the_child_output_as_json() -> None:
    async with virtual_runtime() as rt:
        parent_arn, _ = await setup(rt, START + ".sync:2")
        started = await rt.start_execution(parent_arn, {"n": 5})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert done.output_value["Output"] == {"n": 10, "parent": started.execution_arn}
    assert done.output_value["Input"] == {"n": 5, STARTED_BY: started.execution_arn}


async def test_request_response_returns_the_arn_and_start_date() -> None:
    async with virtual_runtime() as rt:
        parent_arn, child_arn = await setup(rt, START)
        started = await rt.start_execution(parent_arn, {"n": 1})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        child = done.output_value["ExecutionArn"]
        child_done = await rt.wait_for_execution(child, timeout=10)
        listed = await rt.list_executions(child_arn)
    assert set(done.output_value) == {"ExecutionArn", "StartDate"}
    assert isinstance(done.output_value["StartDate"], int)
    assert child_done.status == "SUCCEEDED"
    assert [e.execution_arn for e in listed] == [child]


async def test_a_failed_child_fails_the_sync_task_with_its_description() -> None:
    async with virtual_runtime() as rt:
        parent_arn, _ = await setup(rt, START + ".sync", FAILING_CHILD)
        started = await rt.start_execution(parent_arn, {"n": 1})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        history = await rt.get_execution_history(started.execution_arn)
    assert done.status == "FAILED"
    assert done.error == "States.TaskFailed"
    assert done.cause is not None
    cause = json.loads(done.cause)
    assert (cause["Status"], cause["Error"], cause["Cause"]) == (
        "FAILED",
        "Child.Broke",
        "on purpose",
    )
    assert "TaskFailed" in history_types(history)


async def test_an_unknown_child_state_machine_fails_the_task() -> None:
    async with virtual_runtime() as rt:
        parent = await rt.create_state_machine(
            "Parent",
            parent_machine(START + ".sync", "arn:aws:states:us-east-1:123456789012:stateMachine:X"),
        )
        started = await rt.start_execution(parent.arn, {"n": 1})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert done.error == "StepFunctions.StateMachineDoesNotExistException"


async def test_stopping_the_parent_stops_its_sync_child() -> None:
    gate = asyncio.Event()

    async def hold(event: JSON, context: TaskContext) -> JSON:
        gate.set()
        await asyncio.Event().wait()
        return event

    child_definition = {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Task", "Resource": "Hold", "End": True}},
    }
    async with virtual_runtime({"Hold": hold}) as rt:
        parent_arn, child_arn = await setup(rt, START + ".sync", child_definition)
        started = await rt.start_execution(parent_arn, {"n": 1})
        await gate.wait()
        child = (await rt.list_executions(child_arn))[0]
        stopped = await rt.stop_execution(started.execution_arn)
        child_done = await rt.wait_for_execution(child.execution_arn, timeout=10)
    assert stopped.status == "ABORTED"
    assert child_done.status == "ABORTED"


async def test_wait_for_task_token_child_answers_its_parent() -> None:
    async with virtual_runtime() as rt:
        rt.register_handler("Answer", rt_answer(rt))
        child = await rt.create_state_machine(
            "Child",
            {
                "StartAt": "Answer",
                "States": {"Answer": {"Type": "Task", "Resource": "Answer", "End": True}},
            },
        )
        parent = await rt.create_state_machine(
            "Parent",
            {
                "StartAt": "Child",
                "States": {
                    "Child": {
                        "Type": "Task",
                        "Resource": START + ".waitForTaskToken",
                        "Parameters": {
                            "StateMachineArn": child.arn,
                            "Input": {"token.$": "$$.Task.Token"},
                        },
                        "End": True,
                    }
                },
            },
        )
        started = await rt.start_execution(parent.arn, {})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        history = await rt.get_execution_history(started.execution_arn)
    assert done.output_value == {"answered": True}
    assert "TaskSubmitted" in history_types(history)


def rt_answer(rt: Runtime) -> Any:
    async def answer(event: JSON, context: TaskContext) -> JSON:
        await rt.send_task_success(event["token"], {"answered": True})
        return {}

    return answer


async def test_start_is_idempotent_for_the_same_name_and_input() -> None:
    definition = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 60, "End": True}}}
    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine("Napper", definition)
        first = await rt.start_execution(machine.arn, {"a": 1}, name="same")
        again = await rt.start_execution(machine.arn, {"a": 1}, name="same")
        done = await rt.wait_for_execution(first.execution_arn, timeout=10)
        with pytest.raises(ExecutionAlreadyExists, match="same"):
            await rt.start_execution(machine.arn, {"a": 1}, name="same")  # no longer RUNNING
    assert again == first
    assert done.status == "SUCCEEDED"


async def test_a_restart_resumes_a_parent_waiting_on_a_sync_child(tmp_path: Path) -> None:
    path = str(tmp_path / "statemill.db")
    tokens: list[str] = []
    arrived = asyncio.Event()

    async def ask(event: JSON, context: TaskContext) -> JSON:
        assert context.task_token is not None
        tokens.append(context.task_token)
        arrived.set()
        return {}

    child_definition = {
        "StartAt": "Ask",
        "States": {"Ask": {"Type": "Task", "Resource": "Ask.waitForTaskToken", "End": True}},
    }
    async with Runtime(path, handlers={"Ask": ask}) as rt:
        parent_arn, child_arn = await setup(rt, START + ".sync:2", child_definition)
        started = await rt.start_execution(parent_arn, {"n": 1})
        await arrived.wait()
        child = (await rt.list_executions(child_arn))[0]
        for _ in range(1000):  # let TaskSubmitted commit
            if "TaskSubmitted" in history_types(
                await rt.get_execution_history(child.execution_arn)
            ):
                break
            await asyncio.sleep(0.001)

    async with Runtime(path, handlers={"Ask": ask}) as reopened:
        await reopened.send_task_success(tokens[0], {"from": "outside"})
        done = await reopened.wait_for_execution(started.execution_arn, timeout=10)
        children = await reopened.list_executions(child_arn)
    assert len(tokens) == 1
    assert len(children) == 1  # the re-run start found the same child
    assert done.status == "SUCCEEDED"
    assert done.output_value["Output"] == {"from": "outside"}


async def test_sync_task_timeout_seconds_applies_to_the_wait() -> None:
    slow_child = {
        "StartAt": "Nap",
        "States": {"Nap": {"Type": "Wait", "Seconds": 86_400, "End": True}},
    }
    async with virtual_runtime() as rt:
        child = await rt.create_state_machine("Child", slow_child)
        definition = parent_machine(START + ".sync", child.arn)
        definition["States"]["Child"]["TimeoutSeconds"] = 60
        parent = await rt.create_state_machine("Parent", definition)
        started = await rt.start_execution(parent.arn, {"n": 1})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        history = await rt.get_execution_history(started.execution_arn)
    assert done.error == "States.Timeout"
    timed_out = next(e for e in history if e.type == "TaskTimedOut")
    assert timed_out.timestamp - history[0].timestamp == pytest.approx(60)
