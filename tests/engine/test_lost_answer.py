"""A task-token answer whose commit fails is given again, never lost (found by the chaos run
of issue 12: a commit failed, the execution was rebuilt from its log without the answer, and
SendTaskSuccess had already returned)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from runtime import MemoryStore, Runtime, TaskContext
from runtime.store.base import Append

pytestmark = pytest.mark.anyio

MACHINE = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "Ask.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token"},
            "End": True,
        }
    },
}


class FailsOnce(MemoryStore):
    """A memory store whose first append of a ``TaskSucceeded`` fails (a lost connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = 0

    async def append(self, batch: Sequence[Append]) -> None:
        if not self.failed and any(e.type == "TaskSucceeded" for a in batch for e in a.events):
            self.failed += 1
            raise ConnectionError("the store went away")
        await super().append(batch)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_an_answer_lost_with_its_commit_is_given_again() -> None:
    tokens: list[str] = []
    asked = anyio.Event()

    async def ask(payload: Any, context: TaskContext) -> Any:
        tokens.append(payload["token"])
        asked.set()
        return None

    store = FailsOnce()
    async with Runtime(store, handlers={"Ask": ask}) as rt:
        machine = await rt.create_state_machine("Asks", MACHINE)
        started = await rt.start_execution(machine.arn, {})
        with anyio.fail_after(10):
            await asked.wait()
        await rt.send_task_success(tokens[0], {"ok": True})
        assert store.failed == 1
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert done.status == "SUCCEEDED"
    assert done.output_value == {"ok": True}


async def test_a_handler_result_lost_with_its_commit_is_decided_again_without_a_second_call() -> (
    None
):
    calls: list[int] = []

    async def double(payload: Any, context: TaskContext) -> Any:
        calls.append(payload["n"])
        return {"n": payload["n"] * 2}

    machine = {"StartAt": "D", "States": {"D": {"Type": "Task", "Resource": "Double", "End": True}}}
    store = FailsOnce()
    async with Runtime(store, handlers={"Double": double}) as rt:
        created = await rt.create_state_machine("Doubles", machine)
        done = await rt.start_sync_execution(created.arn, {"n": 4})
    assert store.failed == 1
    assert done.output_value == {"n": 8}
    assert calls == [4]  # the result was decided again; the handler was not called again
