"""EXPRESS executions: an in-memory log unless ``express_history="durable"``; STANDARD keeps all."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runtime import ExecutionDoesNotExist, Runtime, TaskContext
from runtime.errors import InvalidArn
from runtime.store.express import ExpressStore

pytestmark = pytest.mark.anyio

JSON = Any


async def double(event: JSON, context: TaskContext) -> JSON:
    return {"n": event["n"] * 2}


MACHINE = {
    "StartAt": "Double",
    "States": {
        "Double": {"Type": "Task", "Resource": "Double", "Next": "Wait"},
        "Wait": {"Type": "Wait", "Seconds": 30, "End": True},
    },
}


def stored_event_rows(path: str) -> int:
    with sqlite3.connect(path) as conn:
        # A row holds the events of one append: first_seq (NULL for one event) to seq.
        count: int = conn.execute(
            "SELECT COALESCE(SUM(seq - COALESCE(first_seq, seq) + 1), 0) FROM events"
        ).fetchone()[0]
    return count


async def test_express_runs_on_an_in_memory_log_by_default(tmp_path: Path) -> None:
    path = str(tmp_path / "statemill.db")
    async with Runtime(path, handlers={"Double": double}, virtual_time=True) as rt:
        express = await rt.create_state_machine("Fast", MACHINE, type="EXPRESS")
        result = await rt.start_sync_execution(express.arn, {"n": 5})
        arn = result.execution_arn
        assert stored_event_rows(path) == 0  # nothing of it reached the file
        assert await rt.store.get_execution(arn) is None
        assert (await rt.describe_execution(arn)).output_value == {"n": 10}
        with pytest.raises(InvalidArn, match="EXPRESS executions keep no history"):
            await rt.get_execution_history(arn)
        log = rt.engine.store
        assert isinstance(log, ExpressStore)
        assert not log.memory.holds_any()  # the ended execution's log is released

        standard = await rt.create_state_machine("Kept", MACHINE)
        started = await rt.start_execution(standard.arn, {"n": 1})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        assert len(await rt.get_execution_history(started.execution_arn)) > 0
        assert stored_event_rows(path) == len(await rt.store.read(started.execution_arn))

    assert result.status == "SUCCEEDED"
    assert result.output_value == {"n": 10}
    assert ":express:" in arn
    assert done.output_value == {"n": 2}
    async with Runtime(path, handlers={"Double": double}, virtual_time=True) as reopened:
        with pytest.raises(ExecutionDoesNotExist):
            await reopened.describe_execution(arn)  # an EXPRESS execution is not kept
        assert [e.execution_arn for e in await reopened.list_executions()] == [
            started.execution_arn
        ]


async def test_a_running_express_execution_is_listed_and_can_be_stopped(tmp_path: Path) -> None:
    path = str(tmp_path / "statemill.db")
    waiting = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 60, "End": True}}}
    async with Runtime(path, handlers={"Double": double}) as rt:
        express = await rt.create_state_machine("Slow", waiting, type="EXPRESS")
        started = await rt.start_execution(express.arn, {})
        listed = await rt.list_executions(express.arn, status_filter="RUNNING")
        stopped = await rt.stop_execution(started.execution_arn, error="Enough")
        assert stored_event_rows(path) == 0
    assert [e.execution_arn for e in listed] == [started.execution_arn]
    assert (stopped.status, stopped.error) == ("ABORTED", "Enough")


async def test_express_history_durable_keeps_the_log(tmp_path: Path) -> None:
    path = str(tmp_path / "statemill.db")
    async with Runtime(
        path, handlers={"Double": double}, virtual_time=True, express_history="durable"
    ) as rt:
        express = await rt.create_state_machine("Logged", MACHINE, type="EXPRESS")
        result = await rt.start_sync_execution(express.arn, {"n": 3})
        history = await rt.get_execution_history(result.execution_arn)
        assert not isinstance(rt.engine.store, ExpressStore)
    assert result.output_value == {"n": 6}
    assert history[0].type == "ExecutionStarted"
    assert history[-1].type == "ExecutionSucceeded"
    assert stored_event_rows(path) == len(history)


async def test_a_standard_parent_runs_an_express_child_in_memory(tmp_path: Path) -> None:
    path = str(tmp_path / "statemill.db")
    async with Runtime(path, handlers={"Double": double}, virtual_time=True) as rt:
        child = await rt.create_state_machine("Child", MACHINE, type="EXPRESS")
        task = {
            "Type": "Task",
            "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": child.arn, "Input": {"n.$": "$.n"}},
            "OutputPath": "$.Output",
            "End": True,
        }
        parent = await rt.create_state_machine(
            "Parent", {"StartAt": "Child", "States": {"Child": task}}
        )
        started = await rt.start_execution(parent.arn, {"n": 21})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        parent_rows = len(await rt.store.read(started.execution_arn))
        assert stored_event_rows(path) == parent_rows  # only the parent's log is stored
    assert done.output_value == {"n": 42}


def test_express_history_must_be_memory_or_durable() -> None:
    with pytest.raises(ValueError, match="express_history"):
        Runtime("memory", express_history="cloudwatch")  # type: ignore[arg-type]
