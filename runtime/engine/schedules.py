"""The schedule runner: fires EventBridge Scheduler schedules, durably and exactly once.

One loop, owned by the runtime's task group (issue 14). Each pass lists the stored schedules
(``ScheduleStore``), and for each one this process fires (in a cluster: the member holding the
schedule's partition) handles its fires in order, from the one after its ``fire_mark``:

* ``next_fire`` after the mark, its ``due_time`` (the FlexibleTimeWindow offset added); not
  due yet: the pass sleeps on the runtime's ``Clock`` until the soonest due time of all
  schedules, so virtual time jumps to it;
* due: ``fire_fate``. A :class:`~runtime.schedules.Start` starts the target execution with the
  name derived from the schedule and the fire time (``execution_name``); an
  ``ExecutionAlreadyExists`` (or StartExecution's idempotent answer) means this fire was started
  before (a crash between the start and the mark, or another process) and counts as started.
  Then the mark moves to the fire with the store's compare-and-set: the loser of a race reads
  the schedule again and goes on from the winner's mark. A fire that is never started twice
  follows: the execution name is the fire's, and the mark only moves forward.
* The input started carries Scheduler's context attributes (``with_context_attributes``): the
  schedule's ARN, the fire's time, the attempt number (1 + the failed attempts of this fire)
  and an execution id derived from the three, so the same attempt after a restart gives the
  same input (StartExecution's idempotent answer, or ``ExecutionAlreadyExists``).
* A :class:`~runtime.schedules.Missed` fire (older than ``MaximumEventAgeInSeconds``, or out of
  retry attempts) is counted into ``missed_fires`` with the mark, in batches.
* A start that fails (the target state machine is gone, the open-execution limit, ...) is
  tried again with exponential backoff, 1 s doubling up to 5 min, until ``fire_fate`` says it
  is missed. The count of attempts is kept in memory: a restart tries a fire afresh, still
  within its maximum event age.
* With ``ActionAfterCompletion`` ``DELETE``, a schedule with no fire left is deleted.

The loop wakes at the soonest due time, when this process changes a schedule
(:meth:`ScheduleRunner.changed`), and, on a durable store, every ``poll_seconds`` of wall
time (another process, or the CLI, may have changed one). With no schedule due it registers no
deadline on the clock, so an idle virtual-time runtime does not jump. While it works it counts
itself busy in the engine's idleness, so virtual time does not jump past a fire being started.

Imports ``runtime.schedules`` (pure), the store's protocol, ``engine.clock`` and ``engine.idle``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Final, Protocol, final

import anyio
import structlog

from runtime.engine.clock import Clock
from runtime.engine.idle import first
from runtime.errors import ExecutionAlreadyExists
from runtime.schedules import (
    Missed,
    Schedule,
    Start,
    decode_schedule,
    due_time,
    fire_fate,
    with_context_attributes,
)
from runtime.schedules.expressions import next_fire
from runtime.store.base import ScheduleRecord, ScheduleStore

__all__ = ["RETRY_CAP_SECONDS", "ScheduleHost", "ScheduleRunner"]

log = structlog.get_logger("statemill.schedules")

#: The longest pause between two attempts to start one fire (the backoff doubles from 1 s).
RETRY_CAP_SECONDS: Final = 300.0
#: Missed fires recorded with one compare-and-set at most (a long downtime of a frequent
#: schedule is recorded in a few writes, not one per fire).
_MISSED_BATCH: Final = 10_000
#: Wall-clock pause after a pass failed (the store could not be read).
_FAILED_PASS_SECONDS: Final = 1.0


class ScheduleHost(Protocol):
    """What the runner needs from the runtime."""

    def fires_here(self, schedule_arn: str) -> bool:
        """True if this process fires the schedule (in a cluster: one member only)."""
        ...

    async def start_fire(self, fire: Start) -> None:
        """StartExecution for the fire (raises what StartExecution raises)."""
        ...


def _instant(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@final
class _Lost:
    """A compare-and-set of the fire mark lost to another process."""


LOST: Final = _Lost()


@final
class ScheduleRunner:
    """The firing loop (see the module docstring). ``run`` until cancelled."""

    def __init__(
        self,
        store: ScheduleStore,
        host: ScheduleHost,
        clock: Clock,
        busy: Callable[[int], None],
        *,
        poll_seconds: float | None,
    ) -> None:
        self._store = store
        self._host = host
        self._clock = clock
        self._busy = busy
        self._poll_seconds = poll_seconds
        self._changed = asyncio.Event()
        self._poked = False
        """``changed`` was called and the loop has not taken it up yet (counted busy)."""
        self._retries: dict[tuple[str, float], tuple[int, float]] = {}
        """(schedule arn, fire time) -> (failed attempts, when to try again)."""
        self.started = 0
        """Fires this runner started (or found started) and marked."""
        self.missed = 0
        """Fires this runner recorded as missed."""
        self.lost = 0
        """Marks another process moved first (compare-and-set lost)."""

    def changed(self) -> None:
        """Say a schedule was created, updated or deleted: the loop looks again now.

        Counted busy at once (until the loop takes it up), so that virtual time does not jump
        over a fire of the schedule just created."""
        if not self._poked:
            self._poked = True
            self._busy(+1)
        self._changed.set()

    async def run(self) -> None:
        """Pass after pass, until cancelled."""
        try:
            while True:
                await self._turn()
        finally:
            if self._poked:
                self._poked = False
                self._busy(-1)

    async def _turn(self) -> None:
        """One pass, then the wait for the next: busy from the pass's start until the
        clock holds the wait's deadline (virtual time must not jump past it meanwhile)."""
        self._busy(+1)
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._busy(-1)

        try:
            if self._poked:
                self._poked = False
                self._busy(-1)
            self._changed.clear()
            retry: float | None = self._poll_seconds
            try:
                soonest = await self.run_pass()
            except Exception:
                log.exception("schedules.pass_failed")
                soonest, retry = None, _FAILED_PASS_SECONDS
            waits: list[Coroutine[Any, Any, Any]] = [self._changed.wait()]
            if soonest is not None:
                waits.append(self._sleep_until(soonest, release))
            else:
                release()
            if retry is not None:
                waits.append(anyio.sleep(retry))
            await first(*waits)
        finally:
            release()

    async def _sleep_until(self, deadline: float, registered: Callable[[], None]) -> None:
        """Sleep on the clock until ``deadline``; ``registered()`` once the clock holds it."""
        sleeping = asyncio.ensure_future(self._clock.sleep_until(deadline))
        try:
            await asyncio.sleep(0)  # the sleep's first step ran (FIFO): its deadline is held
            registered()
            await sleeping
        finally:
            sleeping.cancel()

    async def run_pass(self) -> float | None:
        """Handle every due fire of the schedules fired here; the soonest next due time."""
        soonest: float | None = None
        for rec in await self._store.list_schedules():
            if not self._host.fires_here(rec.arn):
                continue
            try:
                due = await self._handle(rec)
            except Exception:  # one bad schedule never stops the others
                log.exception("schedules.schedule_failed", schedule=rec.arn)
                continue
            if due is not None and (soonest is None or due < soonest):
                soonest = due
        return soonest

    async def _handle(self, rec: ScheduleRecord) -> float | None:
        """Handle the due fires of one schedule; when its next fire is due (``None``: no
        fire left, or disabled). A compare-and-set lost to another process reads the
        schedule again and goes on from the winner's mark."""
        current: ScheduleRecord | None = rec
        while current is not None:
            outcome = await self._handle_once(current)
            if not isinstance(outcome, _Lost):
                return outcome
            self.lost += 1
            current = await self._store.get_schedule(rec.arn)
        return None

    async def _handle_once(self, rec: ScheduleRecord) -> float | _Lost | None:
        schedule = decode_schedule(rec.schedule)
        mark = rec.fire_mark
        cursor = mark  # the fires up to the cursor are handled; the missed ones since the mark
        missed = 0  # are recorded (the mark moved to the cursor) before anything else
        while schedule.state == "ENABLED":
            if missed >= _MISSED_BATCH:
                if not await self._record_missed(rec.arn, mark, cursor, missed):
                    return LOST
                mark, missed = cursor, 0
            fire = next_fire(schedule, None if cursor is None else _instant(cursor))
            if fire is None:
                break
            fire_at = fire.timestamp()
            now = self._clock.now()
            if due_time(schedule, fire).timestamp() > now:
                break
            attempts, retry_at = self._retries.get((rec.arn, fire_at), (0, 0.0))
            if retry_at > now:
                if missed and not await self._record_missed(rec.arn, mark, cursor, missed):
                    return LOST
                return retry_at
            fate = fire_fate(schedule, fire, _instant(now), attempts=attempts)
            if isinstance(fate, Missed):
                self._retries.pop((rec.arn, fire_at), None)
                log.warning(
                    "schedules.fire_missed", schedule=rec.arn, fire=fire_at, why=fate.reason
                )
                cursor, missed = fire_at, missed + 1
                continue
            if missed:  # recorded before this fire's start moves the mark past them
                if not await self._record_missed(rec.arn, mark, cursor, missed):
                    return LOST
                mark, missed = cursor, 0
            if not await self._start(rec.arn, fate, attempts, now):
                return self._retries[(rec.arn, fire_at)][1]
            if not await self._store.advance_schedule_mark(rec.arn, mark, fire_at):
                return LOST
            self.started += 1
            mark = cursor = fire_at
        if missed:
            if not await self._record_missed(rec.arn, mark, cursor, missed):
                return LOST
            mark = cursor
        return await self._after(rec.arn, schedule, mark)

    async def _after(self, arn: str, schedule: Schedule, mark: float | None) -> float | None:
        """The due time of the schedule's next fire; with none left, the schedule deleted if
        its ``ActionAfterCompletion`` is ``DELETE``."""
        if schedule.state != "ENABLED":
            return None
        fire = next_fire(schedule, None if mark is None else _instant(mark))
        if fire is not None:
            return due_time(schedule, fire).timestamp()  # if already due: at once
        if schedule.action_after_completion == "DELETE" and mark is not None:
            await self._store.delete_schedule(arn)
            log.info("schedules.deleted_after_completion", schedule=arn)
        return None

    async def _start(self, arn: str, fate: Start, attempts: int, now: float) -> bool:
        """Start the fire's execution; False (a retry planned) if it could not start."""
        key = (arn, fate.fire_time.timestamp())
        # Scheduler's context attributes: this attempt's number (1 for the first) and an
        # execution id derived from it, so a restart's attempt gives the same input again.
        fate = with_context_attributes(fate, schedule_arn=arn, attempt_number=attempts + 1)
        try:
            await self._host.start_fire(fate)
        except ExecutionAlreadyExists:
            log.info("schedules.fire_already_started", schedule=arn, execution=fate.name)
        except Exception as exc:
            delay = min(2.0**attempts, RETRY_CAP_SECONDS)
            self._retries[key] = (attempts + 1, now + delay)
            log.warning(
                "schedules.start_failed",
                schedule=arn,
                execution=fate.name,
                attempts=attempts + 1,
                error=type(exc).__name__,
                cause=str(exc),
            )
            return False
        self._retries.pop(key, None)
        return True

    async def _record_missed(
        self, arn: str, mark: float | None, cursor: float | None, missed: int
    ) -> bool:
        """Move the mark over ``missed`` missed fires (False: another process moved it)."""
        assert cursor is not None
        if not await self._store.advance_schedule_mark(arn, mark, cursor, missed=missed):
            return False
        self.missed += missed
        return True
