"""Durable timers: one sleeper over the armed timers, and the prefetch of parked executions.

A decision that waits (a Wait state, a Retry backoff, a Task's deadline) leaves a ``wake_at``;
after its commit the engine arms it here. The timer loop sleeps on the runtime's ``Clock`` until
the soonest is due, then hands a ``Wake`` to each due execution. An execution evicted while it
waits ("parked": a store row and a heap entry, no state in memory) is revived in batches
``prefetch_seconds`` before its timer, so that the replay is done when the timer fires. The
timers themselves are durable because the log is: after a restart every open execution decides
once and re-arms its timers.

Interface: :meth:`Timers.arm`, :meth:`Timers.park`, :meth:`Timers.is_owed`, :meth:`Timers.run`
(owned by the engine's task group); the host is the engine (:class:`TimerHost`). Imports
``engine.clock``, ``engine.idle`` and ``engine.live``.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable
from typing import Final, Protocol, final

import structlog

from runtime.core.effects import Incoming, Wake
from runtime.engine.clock import Clock
from runtime.engine.idle import first
from runtime.engine.live import Live

log = structlog.get_logger("statemill.engine")

#: Wall-clock pause before timers whose executions could not be read are tried again.
WAKE_RETRY_SECONDS: Final = 0.5


class TimerHost(Protocol):
    """What the timers need from the engine."""

    @property
    def live(self) -> dict[str, Live]: ...

    @property
    def parked(self) -> dict[str, tuple[float, str]]: ...

    @property
    def max_live(self) -> int: ...

    def submit(self, arn: str, incoming: Incoming) -> None: ...

    def seed(self) -> int: ...

    async def wake_many(self, arns: list[str]) -> list[str]: ...


@final
class Timers:
    """The armed timers (a heap), the timers of parked executions (a heap), and their loop."""

    __slots__ = (
        "_busy",
        "_changed",
        "_clock",
        "_host",
        "_parked_timers",
        "_space",
        "_timers",
        "_waking",
        "prefetch_seconds",
    )

    def __init__(
        self,
        host: TimerHost,
        clock: Clock,
        busy: Callable[[int], None],
        space: Callable[[], None],
        *,
        prefetch_seconds: float,
    ) -> None:
        self._host = host
        self._clock = clock
        self._busy = busy
        self._space = space
        """Called when due timers have been handed out (admission may go on)."""
        self._timers: list[tuple[float, str]] = []
        self._changed = asyncio.Event()
        self._parked_timers: list[tuple[float, str]] = []
        """The timers of evicted executions, soonest first (entries whose execution was revived
        since are stale and skipped)."""
        self.prefetch_seconds = prefetch_seconds
        """Revive a parked execution this long before its timer is due, so that the replay is
        done when it fires (``benchmarks parked``: with the replay on the firing path, waking
        cost more than starting, and timers came due faster than they could be woken)."""
        self._waking = False
        """The timer loop is handing due timers to the workers (``admit`` waits meanwhile)."""

    def arm(self, arn: str, at: float) -> None:
        """Wake execution ``arn`` at ``at`` (an entry whose ``Live.timer_at`` moved on since is
        stale and skipped)."""
        heapq.heappush(self._timers, (at, arn))
        self._changed.set()

    def park(self, arn: str, at: float) -> None:
        """Remember the timer of ``arn``, evicted while it waits (prefetched before ``at``)."""
        heapq.heappush(self._parked_timers, (at, arn))

    def is_owed(self) -> bool:
        """True while the timer loop is waking executions or a timer in its heap is due."""
        if self._waking:
            return True
        timers = self._timers
        return bool(timers) and timers[0][0] <= self._clock.now()

    async def run(self) -> None:
        """The timer loop, until cancelled."""
        while True:
            if not self._timers:
                self._changed.clear()
                await self._changed.wait()
                continue
            fire_at, _ = self._timers[0]
            now = self._clock.now()
            if fire_at > now:
                prefetch_at = self._prefetch_at()
                if prefetch_at <= now:
                    await self._prefetch(now)
                    # Yield even when nothing was revived: this loop must never spin.
                    await asyncio.sleep(0)
                    continue
                self._changed.clear()
                wake_up = min(fire_at, prefetch_at)
                await first(self._clock.sleep_until(wake_up), self._changed.wait())
                continue
            self._waking = True
            try:
                await self._fire_due(self._clock.now())
            finally:
                self._waking = False
                self._space()  # admit() may go on

    def _prefetch_at(self) -> float:
        """When the soonest parked execution should be revived (``inf``: none, or memory is
        already half full: then it is revived when its timer fires)."""
        parked = self._parked_timers
        held = self._host.parked
        while parked and held.get(parked[0][1], (None,))[0] != parked[0][0]:
            heapq.heappop(parked)  # revived or ended since it was parked
        if not parked or len(self._host.live) >= self._host.max_live // 2:
            return math.inf
        return parked[0][0] - self.prefetch_seconds

    async def _prefetch(self, now: float) -> None:
        """Revive parked executions whose prefetch time (timer minus ``prefetch_seconds``) has
        come by ``now`` (batched reads); they wait in memory for their timers, which then fire
        without a replay.

        The test is the same float expression as :meth:`_prefetch_at`'s: past about 2**53 s,
        ``fire_at - 2`` and ``now + 2`` round differently, and a test written the other way
        round found nothing to revive while ``_prefetch_at`` said it was due (issue 11: the
        timer loop spun without yielding).
        """
        due: dict[str, float] = {}
        parked = self._parked_timers
        held = self._host.parked
        lead = self.prefetch_seconds
        while parked and parked[0][0] - lead <= now and len(due) < 2000:
            at, arn = heapq.heappop(parked)
            if held.get(arn, (None,))[0] == at:
                due[arn] = at
        if not due:
            return
        self._busy(+1)
        try:
            revived = await self._host.wake_many(list(due))
        except Exception:
            # Only the head start is lost: their timers are still in ``_timers`` and revive
            # them when they fire (review: a failed read ended the timer loop).
            log.exception("engine.prefetch_failed", executions=len(due))
            return
        finally:
            self._busy(-1)
        for arn in revived:
            live = self._host.live.get(arn)
            if live is not None:
                live.timer_at = due[arn]  # its entry in ``_timers`` fires it

    async def _fire_due(self, now: float) -> None:
        """Hand the timers due at ``now`` to the workers, reviving parked executions."""
        host = self._host
        woken: list[tuple[float, str]] = []
        while self._timers and self._timers[0][0] <= now:
            at, arn = heapq.heappop(self._timers)
            live = host.live.get(arn)
            if live is not None and live.timer_at == at:
                live.timer_at = None
                host.submit(arn, Wake(now=now, seed=host.seed()))
            elif live is None and host.parked.get(arn, (None,))[0] == at:
                woken.append((at, arn))
        if woken:
            self._busy(+1)
            try:
                for start in range(0, len(woken), 2000):
                    chunk = [arn for _, arn in woken[start : start + 2000]]
                    try:
                        revived = await host.wake_many(chunk)
                    except Exception:
                        # A store that cannot be read right now (locked, connection lost) must
                        # not end the timer loop, and with it the engine: the timers go back
                        # and are tried again (review).
                        log.exception("engine.wake_failed", executions=len(woken) - start)
                        for entry in woken[start:]:
                            heapq.heappush(self._timers, entry)
                        await asyncio.sleep(WAKE_RETRY_SECONDS)
                        return
                    for arn in revived:
                        host.submit(arn, Wake(now=now, seed=host.seed()))
            finally:
                self._busy(-1)
