"""The engine's event wake-ups skipped while nobody waits (issue 10, item 7): a start held by
backpressure still goes on once a slot is left or space is freed, and the virtual clock still
jumps once the work in flight is done."""

from __future__ import annotations

import asyncio

import pytest

from runtime.core.limits import DEFAULT_LIMITS
from runtime.engine.admission import Admission
from runtime.engine.clock import ManualClock
from runtime.engine.idle import Idleness
from runtime.engine.live import Live

pytestmark = pytest.mark.anyio


def _admission(*, owed: list[bool]) -> Admission:
    live: dict[str, Live] = {}
    return Admission(
        live,
        {},
        timers_owed=lambda: owed[0],
        queued=lambda: 0,
        limits=DEFAULT_LIMITS,
        max_live=100,
        max_starting=1,
        max_ready=100,
    )


async def test_a_start_held_by_max_starting_goes_on_when_the_slot_is_left() -> None:
    admission = _admission(owed=[False])
    assert admission.try_enter()
    admission.leave()  # nobody waits: nothing to wake
    assert admission.try_enter()
    waiting = asyncio.ensure_future(admission.enter())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()  # the one slot is taken
    admission.leave()
    await asyncio.wait_for(waiting, timeout=5)
    assert admission.open_count() == 1


async def test_a_start_held_by_owed_timers_goes_on_when_space_is_freed() -> None:
    owed = [True]
    admission = _admission(owed=owed)
    waiting = asyncio.ensure_future(admission.admit())
    for _ in range(5):
        await asyncio.sleep(0)
    assert not waiting.done()
    owed[0] = False
    admission.space_freed()
    await asyncio.wait_for(waiting, timeout=5)


async def test_a_cancelled_wait_leaves_no_waiter_behind() -> None:
    admission = _admission(owed=[True])
    waiting = asyncio.ensure_future(admission.admit())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert admission._waiting == 0


async def test_the_autojump_moves_time_once_the_work_in_flight_is_done() -> None:
    clock = ManualClock(start=1_000.0)
    idle = Idleness()
    idle.add(+1)  # before the autojump watches: counted, no event set
    jumper = asyncio.ensure_future(idle.autojump(clock))
    try:
        slept = asyncio.ensure_future(clock.sleep_until(1_030.0))
        for _ in range(20):
            await asyncio.sleep(0)
        assert clock.now() == 1_000.0  # work in flight: time stands still
        idle.add(-1)
        await asyncio.wait_for(slept, timeout=5)
        assert clock.now() == 1_030.0
    finally:
        jumper.cancel()
        with pytest.raises(asyncio.CancelledError):
            await jumper
