"""Garbage-collector tuning is opt-in and scoped (issue 10 part 4): opening a Runtime used to
retune the process-wide collector whether the caller wanted it or not."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import anyio
import pytest

from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

CALLERS = (700, 10, 10)
"""Thresholds a caller of the runtime chose for its own process (CPython's defaults)."""


@pytest.fixture(autouse=True)
def callers_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*CALLERS)
    yield
    gc.set_threshold(*before)


async def test_a_runtime_leaves_the_garbage_collector_alone_by_default() -> None:
    async with virtual_runtime():
        assert gc.get_threshold() == CALLERS
    assert gc.get_threshold() == CALLERS


async def test_tune_gc_raises_the_thresholds_while_open_and_restores_them() -> None:
    async with virtual_runtime(tune_gc=True):
        assert gc.get_threshold()[0] > CALLERS[0]
    assert gc.get_threshold() == CALLERS


async def test_tuning_ends_when_the_last_tuning_runtime_closes() -> None:
    first_open, second_open, first_closed = anyio.Event(), anyio.Event(), anyio.Event()
    seen: dict[str, tuple[int, int, int]] = {}

    async def first() -> None:
        async with virtual_runtime(tune_gc=True):
            first_open.set()
            await second_open.wait()
        seen["after first closed"] = gc.get_threshold()
        first_closed.set()

    async def second() -> None:
        await first_open.wait()
        async with virtual_runtime(tune_gc=True):
            seen["both open"] = gc.get_threshold()
            second_open.set()
            await first_closed.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        tg.start_soon(second)
    assert seen["both open"][0] > CALLERS[0]
    assert seen["after first closed"] == seen["both open"]  # the second is still open
    assert gc.get_threshold() == CALLERS
