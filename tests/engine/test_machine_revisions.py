"""UpdateStateMachine and DeleteStateMachine as AWS does them (issue 13).

A running execution keeps the definition it started with (in memory, parked on a timer, after
a restart on SQLite, and when redriven); new ones run the new definition. Deleting a state
machine stops its running executions; describing it afterwards raises StateMachineDoesNotExist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runtime import Runtime, StateMachineDoesNotExist, TaskContext, TaskFailed
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any


def asking(tag: str) -> dict[str, JSON]:
    """Waits for a task token, then outputs ``tag``."""
    return {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "ask.waitForTaskToken",
                "Parameters": {"token.$": "$$.Task.Token"},
                "Next": "Tag",
            },
            "Tag": {"Type": "Pass", "Result": tag, "End": True},
        },
    }


def waiting(tag: str) -> dict[str, JSON]:
    """Waits 100 seconds (parked on a timer meanwhile), then outputs ``tag``."""
    return {
        "StartAt": "Nap",
        "States": {
            "Nap": {"Type": "Wait", "Seconds": 100, "Next": "Tag"},
            "Tag": {"Type": "Pass", "Result": tag, "End": True},
        },
    }


class Tokens:
    """The ``ask`` handler: keeps the task tokens it is given."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def __call__(self, value: JSON, context: TaskContext) -> JSON:
        self.tokens.append(value["token"])
        return None

    async def next(self, rt: Runtime, count: int) -> str:
        while len(self.tokens) < count:
            await rt.clock.sleep_until(rt.clock.now() + 1)
        return self.tokens[count - 1]


async def test_a_running_execution_keeps_its_definition_after_an_update() -> None:
    ask = Tokens()
    async with virtual_runtime({"ask": ask}) as rt:
        machine = await rt.create_state_machine("Orders", asking("v1"))
        old = await rt.start_execution(machine.arn, {})
        old_token = await ask.next(rt, 1)
        updated = await rt.update_state_machine(machine.arn, definition=asking("v2"))
        assert updated.revision_id != machine.revision_id
        assert (await rt.describe_state_machine(machine.arn)).revision_id == updated.revision_id
        new = await rt.start_execution(machine.arn, {})
        new_token = await ask.next(rt, 2)
        await rt.send_task_success(old_token, {})
        await rt.send_task_success(new_token, {})
        assert (await rt.wait_for_execution(old.execution_arn)).output_value == "v1"
        assert (await rt.wait_for_execution(new.execution_arn)).output_value == "v2"
        ran = await rt.describe_state_machine_for_execution(old.execution_arn)
        assert (ran.revision_id, ran.definition) == (machine.revision_id, machine.definition)
        runs = await rt.describe_state_machine_for_execution(new.execution_arn)
        assert runs.revision_id == updated.revision_id


async def test_a_parked_execution_is_rebuilt_with_its_own_revision() -> None:
    """Evicted while it waits on a timer, it is replayed with the definition it started on."""
    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine("Naps", waiting("v1"))
        old = await rt.start_execution(machine.arn, {})
        await rt.update_state_machine(machine.arn, definition=waiting("v2"))
        new = await rt.start_execution(machine.arn, {})
        assert (await rt.wait_for_execution(old.execution_arn)).output_value == "v1"
        assert (await rt.wait_for_execution(new.execution_arn)).output_value == "v2"


async def test_a_recovered_execution_runs_its_own_revision_on_sqlite(tmp_path: Path) -> None:
    path = str(tmp_path / "revisions.db")
    ask = Tokens()
    async with Runtime(path, handlers={"ask": ask}) as rt:
        machine = await rt.create_state_machine("Orders", asking("v1"))
        old = await rt.start_execution(machine.arn, {})
        old_token = await ask.next(rt, 1)
        await rt.update_state_machine(machine.arn, definition=asking("v2"))
    async with Runtime(path, handlers={"ask": ask}) as rt:
        await rt.send_task_success(old_token, {})
        done = await rt.wait_for_execution(old.execution_arn, timeout=10)
        assert (done.status, done.output_value) == ("SUCCEEDED", "v1")
        new = await rt.start_execution(machine.arn, {})
        await rt.send_task_success(await ask.next(rt, len(ask.tokens) + 1), {})
        assert (await rt.wait_for_execution(new.execution_arn, timeout=10)).output_value == "v2"


async def test_a_redriven_execution_runs_its_original_definition() -> None:
    """AWS: redriven executions use the state machine definition of the original attempt."""
    calls: list[int] = []

    async def flaky(value: JSON, context: TaskContext) -> JSON:
        calls.append(1)
        if len(calls) == 1:
            raise TaskFailed("Flaky", "first call")
        return value

    def flaking(tag: str) -> dict[str, JSON]:
        return {
            "StartAt": "Work",
            "States": {
                "Work": {"Type": "Task", "Resource": "flaky", "Next": "Tag"},
                "Tag": {"Type": "Pass", "Result": tag, "End": True},
            },
        }

    async with virtual_runtime({"flaky": flaky}) as rt:
        machine = await rt.create_state_machine("Flaky", flaking("v1"))
        started = await rt.start_execution(machine.arn, {})
        assert (await rt.wait_for_execution(started.execution_arn)).status == "FAILED"
        await rt.update_state_machine(machine.arn, definition=flaking("v2"))
        await rt.redrive_execution(started.execution_arn)
        done = await rt.wait_for_execution(started.execution_arn)
        assert (done.status, done.output_value) == ("SUCCEEDED", "v1")


async def test_update_without_a_definition_makes_a_revision_of_the_same_definition() -> None:
    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine("Naps", waiting("v1"))
        updated = await rt.update_state_machine(machine.arn)
        assert updated.definition == machine.definition
        assert updated.revision_id != machine.revision_id
        with pytest.raises(StateMachineDoesNotExist):
            await rt.update_state_machine(machine.arn.replace("Naps", "Nope"))


async def test_delete_stops_running_executions_and_the_machine_is_gone() -> None:
    ask = Tokens()
    async with virtual_runtime({"ask": ask}) as rt:
        machine = await rt.create_state_machine("Orders", asking("v1"))
        started = await rt.start_execution(machine.arn, {})
        await ask.next(rt, 1)
        await rt.delete_state_machine(machine.arn)
        stopped = await rt.describe_execution(started.execution_arn)
        assert stopped.status == "ABORTED"
        assert stopped.cause == f"State machine deleted: '{machine.arn}'"
        with pytest.raises(StateMachineDoesNotExist):
            await rt.describe_state_machine(machine.arn)
        with pytest.raises(StateMachineDoesNotExist):
            await rt.start_execution(machine.arn, {})
        assert await rt.list_state_machines() == []
        await rt.delete_state_machine(machine.arn)  # again, or unknown: not an error
        # The name can be used again, for a new machine.
        again = await rt.create_state_machine("Orders", waiting("v2"))
        assert (await rt.run(waiting("v2"), name="Orders")).output_value == "v2"
        assert again.arn == machine.arn


async def test_delete_on_sqlite_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "deleted.db")
    async with Runtime(path) as rt:
        machine = await rt.create_state_machine("Naps", waiting("v1"))
        await rt.delete_state_machine(machine.arn)
    async with Runtime(path) as rt:
        with pytest.raises(StateMachineDoesNotExist):
            await rt.describe_state_machine(machine.arn)
