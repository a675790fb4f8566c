"""``runtime.batches.GroupWriter``: items queued during a write go in the next batch, each gets
its own result or its batch's error, and nothing waits forever."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.lowlevel
import pytest

from runtime.batches import GroupWriter
from runtime.errors import StatemillError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Log:
    """A write that takes a while and records its batches; items ``"bad"`` fail theirs."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    async def write(self, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        await anyio.sleep(0.05)
        if "bad" in items:
            raise ValueError("a bad batch")
        return [item.upper() for item in items]


async def test_items_queued_during_a_write_are_written_together() -> None:
    log = Log()
    writer = GroupWriter(log.write)
    results: dict[str, str] = {}

    async def submit(item: str) -> None:
        results[item] = await writer.submit(item)

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        await anyio.lowlevel.checkpoint()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as submits:
                submits.start_soon(submit, "a")
                await anyio.sleep(0.01)  # "a" is being written: these wait for the next batch
                for item in ("b", "c", "d"):
                    submits.start_soon(submit, item)
        tg.cancel_scope.cancel()
    assert results == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert log.batches == [["a"], ["b", "c", "d"]]


async def test_a_failed_write_fails_its_batch_only() -> None:
    log = Log()
    writer = GroupWriter(log.write)
    outcomes: dict[str, object] = {}

    async def submit(item: str) -> None:
        try:
            outcomes[item] = await writer.submit(item)
        except ValueError as exc:
            outcomes[item] = exc

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer.run)
        await anyio.lowlevel.checkpoint()
        with anyio.fail_after(5):
            async with anyio.create_task_group() as submits:
                submits.start_soon(submit, "bad")
                submits.start_soon(submit, "x")  # the same batch as "bad"
                await anyio.sleep(0.01)
                submits.start_soon(submit, "y")  # the next one
        tg.cancel_scope.cancel()
    assert isinstance(outcomes["bad"], ValueError)
    assert isinstance(outcomes["x"], ValueError)
    assert outcomes["y"] == "Y"


async def test_without_its_loop_an_item_is_written_alone_and_at_once() -> None:
    log = Log()
    writer = GroupWriter(log.write)
    assert await writer.submit("a") == "A"
    assert log.batches == [["a"]]


async def test_items_queued_when_the_loop_stops_fail_instead_of_waiting() -> None:
    log = Log()
    writer = GroupWriter(log.write)
    outcomes: list[BaseException] = []

    async def submit(item: str) -> None:
        try:
            await writer.submit(item)
        except StatemillError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        runner = anyio.CancelScope()

        async def run() -> None:
            with runner:
                await writer.run()

        tg.start_soon(run)
        await anyio.lowlevel.checkpoint()
        tg.start_soon(submit, "a")
        await anyio.sleep(0.01)
        tg.start_soon(submit, "b")
        await anyio.sleep(0.01)
        runner.cancel()  # while "a" is written and "b" waits
    assert len(outcomes) == 2
    assert all("stopped" in str(exc) for exc in outcomes)
