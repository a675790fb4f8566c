"""Clocks: all waiting in the runtime goes through one, so tests can make time virtual.

``SystemClock`` reads wall time and sleeps for real. ``ManualClock`` holds a virtual ``now`` that
only moves when told to (``advance``/``jump_to_next``); the runtime's autojump moves it to the
next deadline when nothing else can make progress, so a 30-day Wait takes no real time. It never
jumps across ``MAX_VIRTUAL_TIME``: a deadline beyond it (a Wait of 1e30 seconds) is never reached
by jumping, so one execution cannot push the runtime's time where later executions' timestamps
cannot be written (issue 11).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Final, Protocol, final

#: 3000-01-01T00:00:00Z: virtual time is never jumped past it (a deadline beyond it waits).
MAX_VIRTUAL_TIME: Final = 32_503_680_000.0


class Clock(Protocol):
    """What the shell needs from time."""

    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (cancellable)."""
        ...

    @property
    def is_virtual(self) -> bool:
        """True when time only moves on request."""
        ...


@final
class SystemClock:
    """Wall-clock time."""

    is_virtual = False

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


@final
class ManualClock:
    """Virtual time: sleepers wake only when ``advance`` passes their deadline."""

    is_virtual = True

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()
        self.sleeper_added = asyncio.Event()
        """Set whenever someone starts sleeping (the autojump waits on it)."""

    def now(self) -> float:
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._counter), future))
        self.sleeper_added.set()
        await future

    def next_deadline(self) -> float | None:
        """The earliest deadline anyone is sleeping until, or None."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake every sleeper now due."""
        self.advance_to(self._now + seconds)

    def advance_to(self, moment: float) -> None:
        """Move time forward to ``moment`` (never backwards) and wake every sleeper now due."""
        self._now = max(self._now, moment)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
