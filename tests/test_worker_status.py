"""The worker's status line is read from the runtime's memory (issue 16, the first night in
production): it folded every running execution's log and listed every ended execution of the
store at each line (every 10 s, and at every poll with ``--exit-when-idle``), which a store of a
million executions cannot afford. These tests pin what it counts and that it reads no log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime import Runtime, TaskContext
from runtime.tools.operations import ended_counts, worker_status

pytestmark = pytest.mark.anyio

NAP = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}}
APPROVAL = {
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
OUTCOME = {
    "StartAt": "Check",
    "States": {
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": True, "Next": "Done"}],
            "Default": "Broken",
        },
        "Done": {"Type": "Succeed"},
        "Broken": {"Type": "Fail", "Error": "Broken"},
    },
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def ask(payload: Any, context: TaskContext) -> Any:
    return None


async def test_the_status_counts_from_memory_and_reads_no_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with Runtime(tmp_path / "s.db", handlers={"ask": ask}) as rt:
        at_start = ended_counts(rt)
        nap = await rt.create_state_machine("Nap", NAP)
        approval = await rt.create_state_machine("Approval", APPROVAL)
        outcome = await rt.create_state_machine("Outcome", OUTCOME)
        for i in range(40):
            await rt.start_execution(nap.arn, {}, name=f"nap{i}")
        asks = [(await rt.start_execution(approval.arn, {})).execution_arn for _ in range(3)]
        for i in range(7):
            done = await rt.wait_for_execution(
                (await rt.start_execution(outcome.arn, {"ok": i % 7 != 0})).execution_arn
            )
            assert done.status == ("FAILED" if i % 7 == 0 else "SUCCEEDED")
        with anyio.fail_after(20):
            # Every Wait parked (its state evicted): the engine parks after a commit, no event.
            while rt.engine.parked_on_timers() < 40:  # noqa: ASYNC110 - see above
                await anyio.sleep(0.05)

        reads: list[str] = []
        original = rt.store.read

        async def counted(execution_arn: str, after_seq: int = 0) -> Any:
            reads.append(execution_arn)
            return await original(execution_arn, after_seq)

        monkeypatch.setattr(rt.store, "read", counted)
        monkeypatch.setattr(rt, "list_executions", None)  # the old status listed them all
        status = await worker_status(rt, at_start)

    assert reads == []
    assert status.running == 43
    assert status.on_timers == 40
    assert status.in_handlers == 0
    assert sorted(arn for arn, _ in status.waiting) == sorted(asks)
    assert {what for _, what in status.waiting} == {"task token in 'Ask'"}
    assert (status.succeeded, status.failed) == (6, 1)
    assert not status.is_idle
    assert status.line().startswith(
        "43 running (0 in a handler, 40 on a timer, 3 waiting for a task token or activity)"
    )
