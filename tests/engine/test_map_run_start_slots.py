"""The gate of a Map Run's child starts (``engine.maprun.StartSlots``, issue 11).

A group commit ends ``STARTS_AT_ONCE`` child starts in one turn of the event loop; each gives
its slot back. An ``asyncio.Semaphore`` scanned its woken-but-not-yet-run waiters at every
release (quadratic in the starts a commit ends); the gate pops the next waiter instead. Here:
first come first served, a slot handed over (never lost) when a waiter is cancelled, and the
releases of one turn costing O(1) each.
"""

from __future__ import annotations

import asyncio

import pytest

from runtime.engine.maprun import StartSlots

pytestmark = pytest.mark.anyio


async def test_waiters_get_slots_in_arrival_order() -> None:
    slots = StartSlots(2)
    order: list[int] = []
    release = asyncio.Event()

    async def start(index: int) -> None:
        async with slots:
            order.append(index)
            await release.wait()

    tasks = [asyncio.ensure_future(start(i)) for i in range(6)]
    await asyncio.sleep(0)
    assert order == [0, 1]
    assert slots.free == 0
    release.set()
    await asyncio.gather(*tasks)
    assert order == list(range(6))
    assert slots.free == 2


async def test_a_cancelled_waiter_never_loses_a_slot() -> None:
    slots = StartSlots(1)
    async with slots:
        waiting = asyncio.ensure_future(slots.__aenter__())
        other = asyncio.ensure_future(slots.__aenter__())
        await asyncio.sleep(0)
        waiting.cancel()  # cancelled while it waits: it leaves the queue
    await asyncio.sleep(0)
    assert waiting.cancelled()
    assert other.done()  # the slot went to the next waiter
    await slots.__aexit__(None, None, None)
    assert slots.free == 1


async def test_a_waiter_cancelled_after_it_was_handed_a_slot_passes_it_on() -> None:
    slots = StartSlots(1)
    await slots.__aenter__()
    first = asyncio.ensure_future(slots.__aenter__())
    second = asyncio.ensure_future(slots.__aenter__())
    await asyncio.sleep(0)
    await slots.__aexit__(None, None, None)  # handed to ``first``, which has not run yet
    first.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert first.cancelled()
    assert second.done()
    assert not second.cancelled()
    await slots.__aexit__(None, None, None)
    assert slots.free == 1


async def test_releases_of_one_turn_do_not_scan_the_woken_waiters() -> None:
    # 256 releases in one turn with thousands waiting: each must touch one waiter. A future
    # that counts ``done()`` calls tells how many were looked at (a Semaphore's release looked
    # at every waiter it had woken earlier in the turn: 32,896 calls for 256 releases).
    calls = 0

    class Counting(asyncio.Future[None]):
        def done(self) -> bool:
            nonlocal calls
            calls += 1
            return super().done()

    loop = asyncio.get_running_loop()
    slots = StartSlots(256)
    for _ in range(256):
        await slots.__aenter__()
    waiters = [Counting(loop=loop) for _ in range(5_000)]
    slots._budget._waiters.extend((1, w) for w in waiters)  # 5,000 starts waiting
    for _ in range(256):
        await slots.__aexit__(None, None, None)
    assert all(w.done() for w in waiters[:256])
    assert not any(w.done() for w in waiters[256:])
    calls = 0
    for _ in range(256):
        await slots.__aexit__(None, None, None)
    assert calls <= 256 * 2
