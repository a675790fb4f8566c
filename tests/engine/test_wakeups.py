"""Wake-ups without polling (issue 10, the shell's per-execution cost).

The ready queue hands each ready execution to one idle worker, the committer sleeps on a bare
future while nothing is pending, and ``wait_for_execution`` waits on a future of its own that the
execution's end resolves. These tests hold those hand-overs to their promises: nothing ready is
left sitting, every waiter is told, and a waiter that gives up leaves the others untouched.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from runtime import Runtime

pytestmark = pytest.mark.anyio

JSON = Any
CHAIN = {
    "StartAt": "P0",
    "States": {
        "P0": {"Type": "Pass", "Next": "P1"},
        "P1": {"Type": "Pass", "Next": "P2"},
        "P2": {"Type": "Pass", "End": True},
    },
}
BLOCK = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "block", "End": True}}}


async def test_many_more_ready_executions_than_workers_all_finish() -> None:
    async with Runtime("memory", workers=3) as rt:
        sm = await rt.create_state_machine("chain", CHAIN)
        outputs: dict[int, JSON] = {}

        async def one(i: int) -> None:
            started = await rt.start_execution(sm.arn, {"i": i})
            with anyio.fail_after(10):
                described = await rt.wait_for_execution(started.execution_arn)
            assert described.status == "SUCCEEDED"
            outputs[i] = described.output_value

        async with anyio.create_task_group() as tg:
            for i in range(300):
                tg.start_soon(one, i)
        assert outputs == {i: {"i": i} for i in range(300)}


async def test_every_waiter_is_told_and_one_that_gave_up_does_not_matter() -> None:
    release = anyio.Event()

    async def block(payload: JSON, context: object) -> JSON:
        await release.wait()
        return payload

    async with Runtime("memory", handlers={"block": block}) as rt:
        sm = await rt.create_state_machine("block", BLOCK)
        started = await rt.start_execution(sm.arn, {"x": 1})
        arn = started.execution_arn
        with pytest.raises(TimeoutError):
            await rt.wait_for_execution(arn, timeout=0.05)
        statuses: list[str] = []

        scopes: list[anyio.CancelScope] = []

        async def wait() -> None:
            statuses.append((await rt.wait_for_execution(arn, timeout=10)).status)

        async def wait_then_give_up() -> None:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                await rt.wait_for_execution(arn)
            statuses.append("gave up")

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            tg.start_soon(wait_then_give_up)
            tg.start_soon(wait)
            await anyio.sleep(0.05)
            with pytest.raises(TimeoutError):
                await rt.wait_for_execution(arn, timeout=0.01)
            scopes[0].cancel()
            await anyio.sleep(0.01)
            release.set()
        assert statuses == ["gave up", "SUCCEEDED", "SUCCEEDED"]
        # A wait for an execution that has ended returns at once.
        with anyio.fail_after(1):
            assert (await rt.wait_for_execution(arn)).status == "SUCCEEDED"


async def test_work_queued_while_the_committer_writes_is_written_too() -> None:
    # Starts arriving in bursts while a transaction is in flight are taken by the next one.
    async with Runtime("memory", workers=1) as rt:
        sm = await rt.create_state_machine("chain", CHAIN)
        for burst in range(5):
            async with anyio.create_task_group() as tg:
                for i in range(40):
                    tg.start_soon(rt.start_execution, sm.arn, {"b": burst, "i": i})
        with anyio.fail_after(10):
            for described in await rt.list_executions(sm.arn):
                done = await rt.wait_for_execution(described.execution_arn)
                assert done.status == "SUCCEEDED"
        assert len(await rt.list_executions(sm.arn, status_filter="SUCCEEDED")) == 200
