"""Idleness and virtual time: the engine's busy count and the autojump of a ``ManualClock``.

Each part of the engine that holds work (a queued decision, a commit in flight, a handler call,
a revival from the store) counts itself busy while it does; when the count is zero and stays so
for a few event-loop turns, nothing can progress without time passing, so the autojump moves the
virtual clock to the next deadline. Never across ``MAX_VIRTUAL_TIME`` (issue 11).

Imports the clock only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, final

from runtime.engine.clock import MAX_VIRTUAL_TIME, ManualClock


@final
class Idleness:
    """The count of work in flight across the engine's parts, and the autojump driven by it."""

    __slots__ = ("_activity", "_watched", "busy")

    def __init__(self) -> None:
        self.busy = 0
        """Pieces of work in flight (each part adds +1 when it takes work, -1 when done)."""
        self._activity = asyncio.Event()
        self._watched = False
        """The autojump waits on ``_activity`` (it clears the event before each wait, so a
        ``set`` while nobody waits changes nothing: ``add`` skips it, a Python-level call six
        times per execution on the system clock, where no autojump runs; ``peers`` a)."""

    def add(self, delta: int) -> None:
        """Count ``delta`` more (or fewer) pieces of work in flight."""
        self.busy += delta
        if self._watched:
            self._activity.set()

    async def autojump(self, clock: ManualClock) -> None:
        """Virtual time: when nothing can progress, jump to the next deadline."""
        while True:
            if self.busy > 0:
                self._activity.clear()
                self._watched = True
                try:
                    await self._activity.wait()
                finally:
                    self._watched = False
                continue
            for _ in range(8):  # let just-woken coroutines register work or sleeps
                await asyncio.sleep(0)
            if self.busy > 0:
                continue
            deadline = clock.next_deadline()
            if deadline is not None and deadline > MAX_VIRTUAL_TIME >= clock.now():
                # Never jump across the horizon: that deadline is treated as never (issue 11:
                # a Wait of 1e30 s put the clock where no later timestamp could be written).
                deadline = None
            if deadline is None:
                self._activity.clear()
                clock.sleeper_added.clear()
                self._watched = True
                try:
                    await first(self._activity.wait(), clock.sleeper_added.wait())
                finally:
                    self._watched = False
                continue
            clock.advance_to(deadline)


async def first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Return when the first of ``waits`` is done; cancel the others.

    Raw asyncio tasks, left raw on purpose: they are owned by this call (awaited, and cancelled
    before it returns, so none outlives it); it runs once per timer-loop turn and once per
    virtual-time jump. A task group per call would do the same with more machinery (not
    measured; issue 10 part 4 leaves it).
    """
    futures = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()
