"""The console's waiting tasks (issue 13): every Task that waits for a task token or an
activity worker is listed, however many executions run, without folding the executions that
wait on a timer only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime import Runtime, TaskContext
from runtime.console import data

pytestmark = pytest.mark.anyio

ASK = {
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
# A token Task with a heartbeat: its timer lets the engine park it while it waits.
ASK_WITH_HEARTBEAT = {
    "StartAt": "Ask",
    "States": {**ASK["States"], "Ask": {**ASK["States"]["Ask"], "HeartbeatSeconds": 3600}},
}
NAP = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def ask(payload: Any, context: TaskContext) -> None:
    return None


async def settled(rt: Runtime, arns: list[str], want: int) -> list[data.WaitingTask]:
    with anyio.fail_after(30):
        while True:
            found = await data.waiting_tasks(rt)
            if len(found) >= want:
                return found
            await anyio.sleep(0.05)


async def test_every_waiting_task_is_listed_beyond_the_old_scan_of_500(tmp_path: Path) -> None:
    async with Runtime(tmp_path / "w.db", handlers={"Ask": ask}) as rt:
        asking = await rt.create_state_machine("Asking", ASK)
        napping = await rt.create_state_machine("Napping", NAP)
        arns = [
            (await rt.start_execution(asking.arn, name=f"ask-{i}")).execution_arn
            for i in range(600)
        ]
        # Newer than every waiting one: the former scan of the 500 newest running executions
        # saw none of the tasks.
        for i in range(600):
            await rt.start_execution(napping.arn, name=f"nap-{i}")
        found = await settled(rt, arns, 600)
        assert sorted(task.execution_arn for task in found) == sorted(arns)
        assert {task.kind for task in found} == {"task token"}


async def test_a_task_parked_on_its_heartbeat_timer_is_listed(tmp_path: Path) -> None:
    async with Runtime(tmp_path / "p.db", handlers={"Ask": ask}) as rt:
        machine = await rt.create_state_machine("Beating", ASK_WITH_HEARTBEAT)
        started = await rt.start_execution(machine.arn, name="beating")
        arn = started.execution_arn
        with anyio.fail_after(30):
            while True:
                if arn in rt.engine.parked:  # evicted: it waits on the heartbeat's timer
                    break
                await anyio.sleep(0.02)
        found = await data.waiting_tasks(rt)
        assert [(task.execution_arn, task.state_name) for task in found] == [(arn, "Ask")]
        # And it is answered from there as any other.
        await rt.send_task_success(found[0].task_token, {"ok": True})
        done = await rt.wait_for_execution(arn, timeout=30)
        assert done.output_value == {"ok": True}
