"""The bytes a Map Run's children hold in flight (``engine.maprun.FifoBudget``, issue 11).

``MaxConcurrency`` counts children; ten thousand of them whose ItemSelector copies a 230 KB
input each held 2.3 GiB in one process. ``ExecutionLimits.max_map_run_input_bytes`` bounds the
JSON bytes of the inputs of one Map Run's children started and not yet ended: further starts
wait (first come first served), none fails, and the Map Run's output is the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from runtime import ExecutionLimits, TaskContext
from runtime.engine.maprun import FifoBudget
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any


async def test_a_start_past_the_budget_waits_for_bytes_given_back_in_arrival_order() -> None:
    idle: list[bool] = []
    budget = FifoBudget(100, on_idle=lambda: idle.append(True))
    await budget.acquire(60)
    order: list[int] = []

    async def start(index: int, size: int) -> None:
        await budget.acquire(size)
        order.append(index)

    second = asyncio.ensure_future(start(1, 50))  # 60 + 50 > 100: waits
    third = asyncio.ensure_future(start(2, 10))  # would fit, but comes after ``second``
    await asyncio.sleep(0)
    assert order == []
    assert budget.held == 60
    budget.release(60)
    await asyncio.gather(second, third)
    assert order == [1, 2]
    assert budget.held == 60
    budget.release(50)
    budget.release(10)
    assert budget.held == 0
    assert idle == [True]


async def test_an_input_larger_than_the_budget_starts_alone() -> None:
    budget = FifoBudget(100)
    await budget.acquire(500)  # nothing held: it starts
    waiting = asyncio.ensure_future(budget.acquire(1))
    await asyncio.sleep(0)
    assert not waiting.done()
    budget.release(500)
    await waiting
    assert budget.held == 1


async def test_a_cancelled_start_gives_its_place_to_the_next() -> None:
    budget = FifoBudget(10)
    await budget.acquire(10)
    first = asyncio.ensure_future(budget.acquire(5))
    second = asyncio.ensure_future(budget.acquire(5))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    budget.release(10)
    await second
    assert first.cancelled()
    assert budget.held == 5


async def test_many_waiters_cancelled_at_once_leave_the_budget_idle_and_usable() -> None:
    """A Map Run that ends with thousands of child starts waiting cancels them in one turn:
    each cancellation must be O(1) (a removal from the queue was O(n): the map fuzz saw the
    event loop frozen for seconds), and the budget must still report idle and grant."""
    idle: list[bool] = []
    budget = FifoBudget(1, on_idle=lambda: idle.append(True))
    await budget.acquire(1)
    waiting = [asyncio.ensure_future(budget.acquire(1)) for _ in range(40_000)]
    await asyncio.sleep(0)
    with anyio.fail_after(10):  # O(n^2): about 30 s here; O(n): one or two
        for future in waiting:
            future.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
    assert all(future.cancelled() for future in waiting)
    budget.release(1)
    assert budget.held == 0
    assert idle == [True]
    await budget.acquire(1)  # the queue is clear: granted at once
    assert budget.held == 1


def distributed(max_concurrency: int) -> dict[str, JSON]:
    """A distributed Map whose every child gets a copy of the whole input's ``blob``."""
    return {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"n.$": "$$.Map.Item.Value", "blob.$": "$.blob"},
                "MaxConcurrency": max_concurrency,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Work",
                    "States": {"Work": {"Type": "Task", "Resource": "Work", "End": True}},
                },
                "ResultSelector": {"count.$": "States.ArrayLength($)"},
                "End": True,
            }
        },
    }


async def _most_children_at_once(limits: ExecutionLimits) -> tuple[int, JSON]:
    running = most = 0

    async def work(payload: JSON, context: TaskContext) -> JSON:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(1)  # virtual time: the others start meanwhile if they may
        running -= 1
        return payload["n"]

    async with virtual_runtime(handlers={"Work": work}, limits=limits) as rt:
        machine = await rt.create_state_machine("Copies", distributed(max_concurrency=20))
        data = {"items": list(range(20)), "blob": "x" * 100_000}
        started = await rt.start_execution(machine.arn, data)
        done = await rt.wait_for_execution(started.execution_arn, timeout=60)
        assert done.status == "SUCCEEDED", (done.error, done.cause)
        return most, done.output_value


async def test_children_holding_the_budget_keep_the_next_ones_waiting() -> None:
    # Each child's input is about 100 KB: a budget of 250,000 bytes lets two run at once.
    bounded = await _most_children_at_once(ExecutionLimits(max_map_run_input_bytes=250_000))
    unbounded = await _most_children_at_once(ExecutionLimits(max_map_run_input_bytes=None))
    assert bounded == (2, {"count": 20})
    assert unbounded == (20, {"count": 20})
