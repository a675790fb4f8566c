"""The engine: composes the shell's parts and moves executions through them.

How work flows (DESIGN.md "The shell"):

1. An incoming fact (start, timer, handler result, stop) goes into its execution's inbox and the
   execution onto the ready queue (``engine.ready``), once: one decision at a time per execution.
2. A fixed pool of workers takes ready executions and runs ``decide`` over the inbox
   (``engine.deciding``).
3. The events go to the group commit (``engine.commit``), which appends many executions' events
   in one transaction. Only after the commit do effects run: handler calls start
   (``engine.calls``), timers are armed (``engine.timers``).
4. Handler outcomes come back as ``TaskResult``s (:meth:`Engine.report`); timers as ``Wake``s.

New executions pass ``engine.admission`` (backpressure, the open-executions quota); ended ones
leave their record in ``engine.recent``; ``engine.idle`` counts the work in flight and drives
virtual time. Every task belongs to the task group of :meth:`Engine.run`.

Append before acting: a decision's events are durable before its effects run, and after a
restart ``recover`` re-derives pending effects from the folded logs (handler calls are
at-least-once; each carries a stable idempotency key).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, final

import anyio
import structlog
from anyio.abc import TaskGroup

from runtime.core.decide import in_flight
from runtime.core.effects import (
    Incoming,
    RunTask,
    StopRequested,
    TaskOutcome,
    TaskResult,
    Wake,
)
from runtime.core.events import HistoryEvent
from runtime.core.evolve import fold
from runtime.core.limits import DEFAULT_LIMITS, ExecutionLimits
from runtime.core.state import ExecutionState, Phase
from runtime.definition.model import StateMachine
from runtime.engine.admission import Admission
from runtime.engine.calls import HandlerCalls
from runtime.engine.clock import Clock, ManualClock
from runtime.engine.commit import Create, GroupCommit
from runtime.engine.deciding import Decider
from runtime.engine.entropy import Entropy
from runtime.engine.handlers import HandlerRegistry
from runtime.engine.heartbeats import Heartbeats
from runtime.engine.idle import Idleness
from runtime.engine.live import Live
from runtime.engine.maprun import MapRunHost
from runtime.engine.ready import ReadyQueue
from runtime.engine.recent import RecentRecords
from runtime.engine.timers import Timers
from runtime.errors import InternalError
from runtime.store.base import Append, EventStore, ExecutionRecord

__all__ = ["Engine", "Live"]

JSON = Any
log = structlog.get_logger("statemill.engine")


@final
class _Adopting:
    """Completion of a new (or redriven) execution's commit: the committer adopts it, then
    tells the caller, who may have stopped waiting."""

    __slots__ = ("engine", "live", "waiter")

    def __init__(self, engine: Engine, live: Live, waiter: asyncio.Future[None]) -> None:
        self.engine = engine
        self.live = live
        self.waiter = waiter

    def done(self) -> bool:
        return False  # resolved by the committer even when the caller gave up

    def set_result(self, _: None, /) -> None:
        self.engine.adopt(self.live)
        if not self.waiter.done():
            self.waiter.set_result(None)

    def set_exception(self, exc: BaseException, /) -> None:
        if not self.waiter.done():
            self.waiter.set_exception(exc)


@final
class _AdoptNow:
    """Completion of a new execution's creation written in its caller's task
    (``GroupCommit.write_now``): adopts it, or keeps the error for the caller to raise (no
    future: nobody waits on it)."""

    __slots__ = ("engine", "error", "live")

    def __init__(self, engine: Engine, live: Live) -> None:
        self.engine = engine
        self.live = live
        self.error: BaseException | None = None

    def done(self) -> bool:
        return False

    def set_result(self, _: None, /) -> None:
        self.engine.adopt(self.live)

    def set_exception(self, exc: BaseException, /) -> None:
        self.error = exc


@final
class Engine:
    """Owns the live executions and composes the parts that move them."""

    def __init__(
        self,
        store: EventStore,
        handlers: HandlerRegistry,
        clock: Clock,
        *,
        workers: int = 4,
        max_handler_concurrency: int | None = None,
        evict_parked: bool = True,
        max_live: int = 200_000,
        prefetch_seconds: float = 2.0,
        max_starting: int = 10_000,
        max_ready: int = 4_096,
        limits: ExecutionLimits = DEFAULT_LIMITS,
        nested_host: MapRunHost | None = None,
    ) -> None:
        self.store = store
        self.limits = limits
        """The runtime's quotas: handed to every ``decide``; ``max_open_executions`` is
        enforced by :meth:`admission`."""
        self.handlers = handlers
        self.clock = clock
        self.workers = workers
        self.evict_parked = evict_parked
        self.max_live = max_live
        self.live: dict[str, Live] = {}
        self.parked: dict[str, tuple[float, str]] = {}
        """Executions evicted while they wait on a timer: arn -> (fire_at, state machine arn)."""
        self.parked_answers: set[str] = set()
        """The parked executions that also wait for an answer (a task token's, an activity
        worker's): their timer is the Task's timeout or heartbeat."""
        self._waking: dict[str, asyncio.Future[None]] = {}
        """Parked executions being read back now -> done when they are live again: a second
        wake of one waits for the first (two reads raced; the later one found the execution
        live, was logged as lost, and could have put a stale fold in memory)."""
        self.machines: dict[str, StateMachine] = {}
        self.recent = RecentRecords()
        """The records of recently ended executions (so describe needs no store read)."""
        self.ended: collections.Counter[str] = collections.Counter()
        """Executions that ended in this engine since it started, by status (what a worker's
        status line reports, without reading the store)."""
        self.idle = Idleness()
        self.timers: Timers  # set below: admission asks it whether timers are owed
        busy = self.idle.add
        self._commit = GroupCommit(store, busy)
        self.admission_control = Admission(
            self.live,
            self.parked,
            timers_owed=lambda: self.timers.is_owed(),
            queued=lambda: self.ready.qsize(),
            limits=limits,
            max_live=max_live,
            max_starting=max_starting,
            max_ready=max_ready,
        )
        space = self.admission_control.space_freed
        self.ready = ReadyQueue(busy, space, max_ready=max_ready)
        self.timers = Timers(self, clock, busy, space, prefetch_seconds=prefetch_seconds)
        self.calls = HandlerCalls(
            handlers,
            clock,
            busy,
            self.report,
            max_handler_concurrency=max_handler_concurrency,
            nested_host=nested_host,
            max_map_run_input_bytes=limits.max_map_run_input_bytes,
            finished=self._park_if_idle,
        )
        self._entropy = Entropy()
        self.seed = self._entropy.seed
        """A fresh decision seed (``Entropy``: 128 bits from the OS; task tokens come from it)."""
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        """Callers of :meth:`wait`, per execution: resolved when it ends (a future each, not
        an ``asyncio.Event``: one object and one call fewer per waited execution)."""
        self._settle_waiters: dict[str, asyncio.Event] = {}
        self._tg: TaskGroup | None = None
        self._hops: set[asyncio.Task[None]] = set()
        """Tasks of :meth:`spawn` called outside a task, each until it has handed its work to
        the task group (a reference, so that none is collected before it ran)."""
        self.owns: Callable[[str], bool] = _everything
        """Whether this engine may run an execution (scale-out: its partition is leased to
        this process; ``runtime.cluster``). Always true for a single process."""
        self.beats = Heartbeats()
        """The last SendTaskHeartbeat of each waiting token Task (not an AWS history event)."""
        self.decider = Decider(self, self._commit)
        """The workers' step: decide over an inbox and hand the events to the group commit."""

    @property
    def prefetch_seconds(self) -> float:
        """How long before its timer a parked execution is revived (``Timers``)."""
        return self.timers.prefetch_seconds

    @prefetch_seconds.setter
    def prefetch_seconds(self, seconds: float) -> None:
        self.timers.prefetch_seconds = seconds

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(
        self, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the engine's tasks until cancelled; they all belong to one task group."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self.calls.tg = tg
                for _ in range(self.workers):
                    tg.start_soon(self.ready.worker, self.decider.decide)
                tg.start_soon(self._commit.run)
                tg.start_soon(self.timers.run)
                if isinstance(self.clock, ManualClock):
                    tg.start_soon(self.idle.autojump, self.clock)
                task_status.started()
        finally:
            with anyio.CancelScope(shield=True):
                await self.decider.aclose()

    # -- submitting work ----------------------------------------------------------------------

    def submit(self, arn: str, incoming: Incoming) -> None:
        """Queue ``incoming`` for execution ``arn`` and make it ready."""
        live = self.live.get(arn)
        if live is None:
            return
        live.inbox.append(incoming)
        if not live.queued and not live.committing:
            self.ready.push(live)

    async def admit(self) -> None:
        """Backpressure for new executions (``Admission.admit``)."""
        await self.admission_control.admit()

    def admission(self) -> AbstractAsyncContextManager[None]:
        """Hold one of the ``max_starting`` slots of a new execution from :meth:`admit` until
        it has been created and handed to the workers (:meth:`adopt`)."""
        return self.admission_control.admission()

    def try_admit_start(self) -> bool:
        """Take a start slot at once if no backpressure applies; False: await
        :meth:`admit_start`. Either way :meth:`release_start` gives it back once the new
        execution is adopted (or failed). Raises ``ExecutionLimitExceeded`` past the quota."""
        return self.admission_control.try_enter()

    async def admit_start(self) -> None:
        """Wait for a start slot (backpressure), then take it; see :meth:`try_admit_start`."""
        await self.admission_control.enter()

    def release_start(self) -> None:
        """Give back the start slot taken by :meth:`try_admit_start` or :meth:`admit_start`."""
        self.admission_control.leave()

    def new_name(self) -> str:
        """A fresh execution name shaped as AWS makes them: a random (version 4) UUID."""
        return self._entropy.uuid4()

    def open_count(self) -> int:
        """Open executions of this engine, counted in O(1) (``Admission.open_count``)."""
        return self.admission_control.open_count()

    def check_open_limit(self) -> None:
        """Raise ``ExecutionLimitExceeded`` if one more open execution would pass
        ``limits.max_open_executions`` (StartExecution's and RedriveExecution's quota)."""
        self.admission_control.check_open_limit()

    def adopt(self, live: Live) -> None:
        """Hold ``live`` in memory and start it moving (a redriven execution too: it is no
        longer among the recently ended)."""
        arn = live.record.execution_arn
        if not self.owns(arn):
            return  # its partition moved on while it was created: the new owner loads it
        self.recent.forget(arn)
        self.live[arn] = live
        self.submit(arn, Wake(now=self.clock.now(), seed=self.seed()))

    async def recover(
        self, records: list[ExecutionRecord], machines: dict[str, StateMachine]
    ) -> list[str]:
        """Load open executions: fold their logs and re-run owed handler calls. Returns the
        arns loaded; :meth:`wake` then lets them decide (time out, re-arm timers), so that
        answers recorded while no runtime ran can be applied first."""
        resumed: list[str] = []
        loaded: list[tuple[ExecutionRecord, list[HistoryEvent]]] = []
        for start in range(0, len(records), 2000):
            chunk = [r.execution_arn for r in records[start : start + 2000]]
            loaded.extend(await self.store.load_executions(chunk))
        for record, events in loaded:
            machine = machines.get(record.machine_key)  # the revision it started on
            if machine is None:
                log.warning("recover.no_state_machine", execution=record.execution_arn)
                continue
            state = fold(events)
            live = Live(record, machine, state)
            self.live[record.execution_arn] = live
            self.beats.grant_window(live, self.clock.now())
            for task in in_flight(state, machine):
                self.calls.start(live, task)
            resumed.append(record.execution_arn)
        return resumed

    def wake(self, arns: list[str]) -> None:
        """Let each of ``arns`` decide now (after :meth:`recover`)."""
        for arn in arns:
            self.submit(arn, Wake(now=self.clock.now(), seed=self.seed()))

    # -- what the Runtime asks (issue 10: it calls these, never the dicts behind them) --------

    def add_machine(self, arn: str, machine: StateMachine) -> None:
        """Know the definition ``machine`` by ``arn``, a state machine ARN or a revision's key
        (``store.base.revision_key``): parked executions are rebuilt with the one of their
        ``ExecutionRecord.machine_key``."""
        self.machines[arn] = machine

    def holds(self, arn: str) -> bool:
        """True while execution ``arn`` is open in this engine (in memory or parked)."""
        return arn in self.live or arn in self.parked

    @property
    def events_written(self) -> int:
        """Events handed to the store since the engine started (a commit rate's numerator)."""
        return self._commit.events_written

    def handler_calls(self) -> int:
        """Handler calls in flight now (O(executions in memory))."""
        return sum(len(live.running) for live in self.live.values())

    def holds_live(self, live: Live) -> bool:
        """True while ``live`` is the execution this engine holds in memory for its arn."""
        return self.live.get(live.record.execution_arn) is live

    def release(self, arns: list[str]) -> None:
        """Let go of executions ``arns`` without a write (their partition moved to another
        member, which folds them from the store): their handler calls are cancelled, their
        timers and answers dropped, and whoever waits on them here is woken to look again."""
        for arn in arns:
            live = self.live.pop(arn, None)
            self.parked.pop(arn, None)
            self.parked_answers.discard(arn)
            if live is not None:
                live.inbox.clear()
                for running in live.running.values():
                    running.cancel()
                live.timer_at = None
                self.ready.leave_cut(arn)
            self.beats.forget(arn)
            for waiter in self._waiters.pop(arn, ()):
                if not waiter.done():
                    waiter.set_result(None)
            settle = self._settle_waiters.pop(arn, None)
            if settle is not None:
                settle.set()
        if arns:
            self.admission_control.space_freed()

    def held_states(self) -> list[tuple[ExecutionRecord, ExecutionState]]:
        """The executions held in memory, with their current states (not the parked ones:
        :attr:`parked_answers` names those of them that wait for an answer)."""
        return [(live.record, live.state) for live in self.live.values()]

    def parked_on_timers(self) -> int:
        """Parked executions that wait only for their timer (not for an answer as well)."""
        return len(self.parked) - len(self.parked_answers)

    def timer_armed(self, arn: str) -> bool:
        """True while execution ``arn`` is in memory with a durable timer armed (a Wait, a
        retry's backoff, a Task's timeout)."""
        live = self.live.get(arn)
        return live is not None and live.timer_at is not None

    def record_of(self, arn: str) -> ExecutionRecord | None:
        """The record of execution ``arn`` if it is in memory or ended recently (no store
        read); None otherwise (parked, older, or unknown)."""
        live = self.live.get(arn)
        return live.record if live is not None else self.recent.get(arn)

    def recent_record(self, arn: str) -> ExecutionRecord | None:
        """The final record of execution ``arn`` if it ended recently in this engine."""
        return self.recent.get(arn)

    async def live_execution(self, arn: str) -> Live | None:
        """Execution ``arn`` in memory (revived first if parked), or None if not open here."""
        if arn in self.parked:
            await self.revive(arn)
        return self.live.get(arn)

    async def stop_execution(self, arn: str, error: str | None, cause: str | None) -> None:
        """StopExecution: ask execution ``arn`` to stop (reviving it if parked) and wait until
        it has ended; nothing happens if it is not open here."""
        if arn in self.parked:
            await self.revive(arn)
        if arn in self.live:
            self.stop(arn, error, cause)
            await self.wait(arn)

    def restore_heartbeats(self, stored: dict[str, dict[str, float]]) -> None:
        """After :meth:`recover`: a waiting token Task's HeartbeatSeconds counts from its last
        stored heartbeat, or from its start if it had none (not from the restart).

        Synchronous on purpose: it runs before any worker decides a recovered execution.
        """
        self.beats.restore(stored)

    def last_heartbeat(self, arn: str, frame: str) -> float | None:
        """When the token Task of ``frame`` last sent a heartbeat to this engine, if it did."""
        return self.beats.last(arn, frame)

    def cancel_handlers(self) -> None:
        """Cancel every handler call in flight (the runtime is closing)."""
        for live in self.live.values():
            for running in live.running.values():
                running.cancel()

    # -- deciding -----------------------------------------------------------------------------

    async def settle(self, arn: str, timeout: float = 30.0) -> None:
        """Return once everything queued for execution ``arn`` so far is decided and durable
        (e.g. a task-token answer: SendTaskSuccess returns after the answer is in the log)."""
        live = self.live.get(arn)
        if live is None or not (live.inbox or live.queued or live.committing):
            return
        waiter = self._settle_waiters.setdefault(arn, asyncio.Event())
        with anyio.move_on_after(timeout):  # a failed commit is rebuilt; never hang a caller
            await waiter.wait()

    def _settled(self, live: Live) -> None:
        arn = live.record.execution_arn
        if arn in self._settle_waiters and (
            live.state.is_terminal or not (live.inbox or live.queued or live.committing)
        ):
            self._settle_waiters.pop(arn).set()

    def after_commit(
        self,
        live: Live,
        tasks: list[RunTask],
        wake_at: float | None,
        stopped: list[str],
        opened: list[str] | None = None,
    ) -> None:
        """Run a decision's effects, now that its events are durable (append before acting)."""
        for map_run_arn in opened or ():
            self.calls.open_map_run(live.record.execution_arn, map_run_arn)
        if not live.state.is_terminal:  # a Task scheduled by the decision that ended it: moot
            for task in tasks:
                self.calls.start(live, task)
        for map_run_arn in stopped:
            self.calls.stop_map_run(map_run_arn)
        arn = live.record.execution_arn
        self._settled(live)
        if live.state.is_terminal:
            for running in live.running.values():
                running.cancel()
            live.timer_at = None
            self._finished(arn)
            return
        if wake_at is not None and wake_at != live.timer_at:
            live.timer_at = wake_at
            self.timers.arm(arn, wake_at)
        if live.inbox:
            if live.queued:
                pass
            elif live.cut_after > 0:
                self.ready.cut_short(live)
            else:
                self.ready.push(live)
            return
        self._park_if_idle(live)

    def _park_if_idle(self, live: Live) -> None:
        """Evict ``live`` if it waits on a timer only: keep the timer entry, not the state
        (rebuilt by replay). Asked after each commit and when a handler call is over: the call's
        end may come after the commit of the decision that took its result (no hand-over to the
        committer when it is idle), and an execution left in memory then was never parked."""
        if (
            not self.evict_parked
            or live.timer_at is None
            or live.running
            or live.awaited
            or live.queued
            or live.committing
            or live.inbox
        ):
            return
        arn = live.record.execution_arn
        if self.live.get(arn) is not live or live.state.is_terminal:
            return
        del self.live[arn]
        self.parked[arn] = (live.timer_at, live.record.state_machine_arn)
        if any(
            frame.task_token is not None and frame.phase in (Phase.SCHEDULED, Phase.STARTED)
            for frame in live.state.frames.values()
        ):
            self.parked_answers.add(arn)
        self.timers.park(arn, live.timer_at)

    def heartbeat(self, arn: str, frame: str) -> None:
        """Record a SendTaskHeartbeat for the token Task of ``frame``."""
        self.beats.beat(arn, frame, self.clock.now())

    def _finished(self, arn: str) -> None:
        live = self.live.pop(arn, None)
        self.beats.forget(arn)
        waiters = self._waiters.pop(arn, None)
        if waiters is not None:
            for waiter in waiters:
                if not waiter.done():  # a caller that gave up (timeout) left it cancelled
                    waiter.set_result(None)
        if live is not None:
            self.recent.add(live.record)
            self.ended[live.record.status] += 1
        self.admission_control.space_freed()

    def when_ended(self, arn: str, then: Callable[[], None]) -> bool:
        """Call ``then`` once execution ``arn`` (run by this engine) has ended or been
        released (:meth:`release`), without a task waiting for it; False (and ``then`` is
        never called) if this engine does not hold it."""
        if arn not in self.live and arn not in self.parked:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(lambda done: None if done.cancelled() else then())
        self._waiters.setdefault(arn, []).append(waiter)
        return True

    async def wait(self, arn: str) -> None:
        """Return once execution ``arn`` (run by this engine) has ended or been released
        (:meth:`release`); at once if this engine does not hold it."""
        if arn in self.live or arn in self.parked:
            waiter = asyncio.get_running_loop().create_future()
            waiters = self._waiters.get(arn)
            if waiters is None:
                self._waiters[arn] = [waiter]
            else:
                waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter.cancelled():
                    waiters = self._waiters.get(arn)
                    if waiters is not None and waiter in waiters:
                        waiters.remove(waiter)  # a timed-out caller leaves nothing behind

    # -- parked executions --------------------------------------------------------------------

    async def revive(self, arn: str) -> None:
        """Bring a parked execution back into memory (e.g. to stop it)."""
        self.idle.add(+1)
        try:
            if await self._wake_parked(arn) is not None:
                # The parked timer entry is gone with the eviction: a Wake re-arms it.
                self.submit(arn, Wake(now=self.clock.now(), seed=self.seed()))
        finally:
            self.idle.add(-1)

    async def wake_many(self, arns: list[str]) -> list[str]:
        """Rebuild many parked executions with one batched read; returns those revived."""
        revived: list[str] = []
        waking = self._waking
        # Once each (a list of due timers may name one twice).
        wanted = [arn for arn in dict.fromkeys(arns) if arn in self.parked and arn not in waking]
        if not wanted:
            return revived
        done = asyncio.get_running_loop().create_future()
        for arn in wanted:
            waking[arn] = done
        try:
            for record, events in await self.store.load_executions(wanted):
                arn = record.execution_arn
                entry = self.parked.pop(arn, None)
                self.parked_answers.discard(arn)
                machine = self.machines.get(record.machine_key)  # the revision it started on
                if entry is None or machine is None:
                    continue
                self.live[arn] = Live(record, machine, fold(events))
                revived.append(arn)
        finally:
            for arn in wanted:
                del waking[arn]
            done.set_result(None)
        return revived

    async def _wake_parked(self, arn: str) -> Live | None:
        """Rebuild one parked execution from its log (replay) and hold it in memory again
        (or wait for the wake of it already under way)."""
        under_way = self._waking.get(arn)
        if under_way is not None:
            # Shielded: a cancelled waiter must not cancel the shared future, whose owner
            # resolves it (set_result on a cancelled future raises).
            await asyncio.shield(under_way)
        elif arn in self.parked and not await self.wake_many([arn]):
            log.error("engine.parked_execution_lost", execution=arn)
        return self.live.get(arn)

    # -- failures -----------------------------------------------------------------------------

    def rebuild_soon(self, live: Live, taken: Sequence[Incoming] = ()) -> None:
        """:meth:`rebuild` in the background (counted busy meanwhile), e.g. from the
        committer, which must not wait for it."""
        self.idle.add(+1)

        async def rebuild() -> None:
            try:
                await self.rebuild(live, taken)
            finally:
                self.idle.add(-1)

        self.spawn(rebuild())

    async def rebuild(self, live: Live, taken: Sequence[Incoming] = ()) -> None:
        """After a failed decision or commit, the memory may be ahead of the log: replay the
        log (the truth) and try again. ``taken``: the incoming facts the lost decision had
        consumed (a handler's result, a task-token answer, a stop), decided again rather than
        lost; their handler calls are not made again."""
        arn = live.record.execution_arn
        delay = 0.05
        while True:
            try:
                state = fold(await self.store.read(arn))
                break
            except Exception:
                # The store is out too (a lost connection, a locked file): giving up here left
                # the execution in memory ahead of its log with nothing to move it, for good.
                # Try again, backing off up to a few seconds of wall time (review).
                log.exception("engine.rebuild_failed", execution=arn, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if not self.holds_live(live):
            return  # released while it was read back: the new owner runs it
        if not self.owns(arn):
            self.release([arn])
            return
        live.state = state
        live.seq = state.last_event_id
        self.ready.leave_cut(arn)  # rare (a failed decision): leave the cut lane, queue afresh
        live.queued = False
        if not state.is_terminal:
            again = [incoming for incoming in taken if not isinstance(incoming, Wake)]
            answered = {i.scheduled_id for i in again if isinstance(i, TaskResult)}
            for task in in_flight(state, live.machine):
                owed = task.scheduled_id
                if owed not in live.running and owed not in live.awaited and owed not in answered:
                    self.calls.start(live, task)
            live.inbox.extendleft(reversed(again))
            self.submit(arn, Wake(now=self.clock.now(), seed=self.seed()))

    # -- writes for the Runtime ---------------------------------------------------------------

    async def append(self, append: Append, *, adopt: Live | None = None) -> None:
        """Durably append events to an execution this engine does not hold (group-committed);
        ``adopt``: the execution to run once they are durable (see :meth:`create`)."""
        await self._committed(append, adopt)

    async def create(
        self, record: ExecutionRecord, events: list[HistoryEvent], *, adopt: Live | None = None
    ) -> None:
        """Durably create an execution (group-committed with other work); ``adopt``: the
        execution to run once it is durable. The committer adopts it, so a caller that gives up
        while the commit is under way (a client gone, a nested start's TimeoutSeconds) leaves
        an execution that runs, never one that is stored RUNNING and held by nobody."""
        commit = self._commit
        if adopt is not None and commit.can_write_now():
            # Nothing to group it with, on a store that writes in memory (without suspending:
            # no cancellation half-way): written and adopted in this task, without the hop to
            # the committer and back (``peers`` a: a loop turn and a future per start).
            done = _AdoptNow(self, adopt)
            await commit.write_now(Create(record, events), done)
            if done.error is not None:
                raise done.error
            # One turn of the loop: the worker woken by the adoption decides first, as after
            # the committer's hop, so a start on an idle engine still returns with its first
            # decision made (and a client that then waits for a short execution finds it
            # ended, without a future).
            await asyncio.sleep(0)
            return
        await self._committed(Create(record, events), adopt)

    async def _committed(self, work: Create | Append, adopt: Live | None) -> None:
        if adopt is None:
            await self._commit.commit(work)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._commit.enqueue(work, _Adopting(self, adopt, waiter))
        await waiter

    # -- handler calls and activities ---------------------------------------------------------

    def report(
        self,
        arn: str,
        frame: str,
        scheduled_id: int,
        outcome: TaskOutcome,
        output: Any = None,
        error: str | None = None,
        cause: str | None = None,
        task_token: str | None = None,
    ) -> None:
        """Hand the outcome of the Task attempt ``(frame, scheduled_id)`` of execution ``arn``
        to the workers: a handler's return, a task-token answer, an activity worker's pick-up."""
        self.submit(
            arn,
            TaskResult(
                now=self.clock.now(),
                frame=frame,
                scheduled_id=scheduled_id,
                outcome=outcome,
                output=output,
                error=error,
                cause=cause,
                seed=self.seed(),
                task_token=task_token,
            ),
        )

    async def take_activity_task(
        self, activity_arn: str, worker_name: str, timeout: float
    ) -> RunTask | None:
        """Hand the oldest pending task of ``activity_arn`` to a worker (once), waiting up to
        ``timeout`` wall-clock seconds for one (GetActivityTask's long poll)."""
        return await self.calls.activities.take(self, activity_arn, worker_name, timeout)

    async def take_activity_token(
        self, activity_arn: str, task_token: str, worker_name: str
    ) -> RunTask | None:
        """Hand the queued activity task of ``task_token`` to a worker (a claim made through
        the store by a worker of any member), or None if it no longer waits for one."""
        return await self.calls.activities.take_token(self, activity_arn, task_token, worker_name)

    def busy(self, delta: int) -> None:
        """Count ``delta`` more (or fewer) pieces of work in flight (``Idleness.add``)."""
        self.idle.add(delta)

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run the coroutine ``work`` in the background, in the engine's task group (its
        failure is logged, never taken for the engine's)."""
        if self._tg is None:
            work.close()
            raise InternalError("engine is not running")
        if asyncio.current_task() is None:
            # Called from a plain event-loop callback (the one ``when_ended`` runs, when a Map
            # Run's child is released to another member): anyio cannot tell its backend
            # outside a task and raised NoEventLoopError, so the work was lost. A raw task
            # hops into one; it only hands the work to the task group, which owns it.
            hop = asyncio.get_running_loop().create_task(self._spawn_in_task(work))
            self._hops.add(hop)
            hop.add_done_callback(self._hops.discard)
            return
        self._tg.start_soon(_logged, work)

    async def _spawn_in_task(self, work: Coroutine[Any, Any, Any]) -> None:
        """:meth:`spawn` from inside a task; dropped if the engine has stopped meanwhile."""
        try:
            self.spawn(work)
        except (InternalError, RuntimeError):  # not running, or its task group has closed
            work.close()

    def stop(self, arn: str, error: str | None, cause: str | None) -> None:
        """Ask execution ``arn`` to stop; its running handler calls are cancelled. The stop
        goes ahead of whatever else waits in its inbox: behind 40,000 queued Task results of a
        distributed Map it took seconds (issue 11), and an aborted execution takes no more."""
        live = self.live.get(arn)
        if live is None:
            return
        stop = StopRequested(now=self.clock.now(), error=error, cause=cause, seed=self.seed())
        live.inbox.appendleft(stop)
        if not live.queued and not live.committing:
            self.ready.push(live)


def _everything(_: str) -> bool:
    return True


async def _logged(work: Coroutine[Any, Any, Any]) -> None:
    """Await background ``work``; an exception is logged (as a lost asyncio task's was)."""
    try:
        await work
    except Exception:
        log.exception("engine.background_failed")
