"""``statemill machines delete ARN`` (DeleteStateMachine on a store file, issue 13): running
executions get a stop request, applied by the next runtime on the file; the machine is gone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime import Runtime, StateMachineDoesNotExist, TaskContext
from runtime.cli import main

JSON = Any
ASK = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "ask.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token"},
            "End": True,
        }
    },
}


def test_machines_delete_stops_running_executions_and_deletes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "cli.db")
    tokens: list[str] = []

    async def ask(value: JSON, context: TaskContext) -> JSON:
        tokens.append(value["token"])
        return None

    async def start() -> tuple[str, str]:
        async with Runtime(db, handlers={"ask": ask}) as rt:
            machine = await rt.create_state_machine("Asker", ASK)
            started = await rt.start_execution(machine.arn, {})
            while not tokens:
                await rt.clock.sleep_until(rt.clock.now() + 0.01)
        return machine.arn, started.execution_arn

    machine_arn, execution_arn = anyio.run(start)

    assert main(["machines", "delete", machine_arn, "--store", db]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"stateMachineArn": machine_arn, "deleted": True, "stopRequests": 1}
    assert main(["machines", "delete", machine_arn, "--store", db]) == 0  # not an error
    assert json.loads(capsys.readouterr().out)["deleted"] is False

    async def reopen() -> None:
        async with Runtime(db, handlers={"ask": ask}) as rt:
            with pytest.raises(StateMachineDoesNotExist):
                await rt.describe_state_machine(machine_arn)
            done = await rt.wait_for_execution(execution_arn, timeout=10)
            assert done.status == "ABORTED"
            assert done.cause == f"State machine deleted: '{machine_arn}'"

    anyio.run(reopen)
