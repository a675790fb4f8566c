"""Admission of new executions: backpressure and the open-executions quota.

A start (or redrive) holds one of ``max_starting`` slots from its admission until the engine has
adopted it. It waits while too many executions are held in memory, while due timers are not yet
handed to the workers, while ``max_starting`` starts are already on their way in, and while the
workers' queue is long; and it is refused with ``ExecutionLimitExceeded`` when one more open
execution would pass ``ExecutionLimits.max_open_executions`` (counted in O(1): in memory, parked
and starting; each open execution is in exactly one of those places).

Interface: :meth:`Admission.try_enter` or :meth:`Admission.enter`, then :meth:`Admission.leave`
(or the ``admission()`` context), :meth:`Admission.check_open_limit`,
:meth:`Admission.open_count`, :meth:`Admission.space_freed`.
Imports the core's limits, the errors and ``engine.live`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import final

from runtime.core.limits import ExecutionLimits
from runtime.engine.live import Live
from runtime.errors import ExecutionLimitExceeded


@final
class Admission:
    """Backpressure and the open-executions quota for new executions."""

    __slots__ = (
        "_live",
        "_parked",
        "_queued",
        "_space",
        "_starting",
        "_timers_owed",
        "_waiting",
        "limits",
        "max_live",
        "max_ready",
        "max_starting",
    )

    def __init__(
        self,
        live: dict[str, Live],
        parked: dict[str, tuple[float, str]],
        *,
        timers_owed: Callable[[], bool],
        queued: Callable[[], int],
        limits: ExecutionLimits,
        max_live: int,
        max_starting: int,
        max_ready: int,
    ) -> None:
        self._live = live
        self._parked = parked
        self._timers_owed = timers_owed
        self._queued = queued
        self.limits = limits
        self.max_live = max_live
        self.max_starting = max_starting
        """New executions admitted but not yet handed to the workers, at most."""
        self.max_ready = max_ready
        """New executions wait while the workers' queue is this long (wakes never do)."""
        self._starting = 0
        self._space = asyncio.Event()
        self._waiting = 0
        """Starts waiting on ``_space`` (each clears it first, so a ``set`` while none waits
        changes nothing and is skipped: twice per execution; ``peers`` a)."""

    def space_freed(self) -> None:
        """Something a waiting start depends on changed: let it look again."""
        if self._waiting:
            self._space.set()

    def _must_wait(self) -> bool:
        return (
            len(self._live) >= self.max_live
            or self._timers_owed()
            or self._starting >= self.max_starting
            or self._queued() >= self.max_ready
        )

    async def admit(self) -> None:
        """Backpressure for new executions: wait while too many are held in memory, while
        timers that are due are not yet handed to the workers (a due timer goes before a new
        execution: ``benchmarks parked``, with starts still arriving when the first Waits end),
        while ``max_starting`` starts are already on their way in, and while the workers'
        queue is long (so a woken execution never waits behind a flood of new ones)."""
        while self._must_wait():
            self._space.clear()
            self._waiting += 1
            try:
                await self._space.wait()
            finally:
                self._waiting -= 1

    def try_enter(self) -> bool:
        """Take a slot at once if no backpressure applies (the common case, without a
        coroutine: ``benchmarks chain``); False: call :meth:`enter`. Raises
        ``ExecutionLimitExceeded`` past the open-executions quota."""
        if self._must_wait():
            return False
        self.check_open_limit()
        self._starting += 1
        return True

    async def enter(self) -> None:
        """Admit one new execution and hold its slot until :meth:`leave`; raises
        ``ExecutionLimitExceeded`` past the open-executions quota."""
        await self.admit()
        self.check_open_limit()
        self._starting += 1

    def leave(self) -> None:
        """Release the slot taken by :meth:`enter` (the execution is adopted, or failed)."""
        self._starting -= 1
        if self._waiting:
            self._space.set()

    @contextlib.asynccontextmanager
    async def admission(self) -> AsyncIterator[None]:
        """Hold one slot from :meth:`enter` to :meth:`leave`."""
        await self.enter()
        try:
            yield
        finally:
            self.leave()

    def open_count(self) -> int:
        """Open executions, counted in O(1): held in memory, parked on a timer, starting."""
        return len(self._live) + len(self._parked) + self._starting

    def check_open_limit(self) -> None:
        """Raise ``ExecutionLimitExceeded`` if one more open execution would pass
        ``limits.max_open_executions`` (StartExecution's and RedriveExecution's quota)."""
        limit = self.limits.max_open_executions
        if limit is not None and self.open_count() >= limit:
            raise ExecutionLimitExceeded()
