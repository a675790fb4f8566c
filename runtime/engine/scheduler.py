"""The async shell: ready queue, group commit, timers, handler calls, virtual-time autojump.

How work flows (DESIGN.md "The shell"):

1. An incoming fact (start, timer, handler result, stop) goes into its execution's inbox and the
   execution onto the ready queue, once: one decision at a time per execution.
2. A fixed pool of workers takes ready executions and runs ``decide`` over the inbox.
3. The events go to the committer, which appends many executions' events in one transaction
   (group commit). Only after the commit do effects run: handler calls start, timers are armed.
4. Handler outcomes come back as ``TaskResult``s; timers as ``Wake``s.

Append before acting: a decision's events are durable before its effects run, and after a
restart ``recover`` re-derives pending effects from the folded logs (handler calls are
at-least-once; each carries a stable idempotency key).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Final, TypeVar, final

import anyio
import msgspec
import structlog
from anyio.abc import TaskGroup

from runtime.core.decide import decide, dumps, in_flight, is_activity
from runtime.core.effects import (
    Incoming,
    RunTask,
    StopRequested,
    TaskOutcome,
    TaskResult,
    Wake,
)
from runtime.core.events import HistoryEvent
from runtime.core.evolve import evolve, fold
from runtime.core.limits import DEFAULT_LIMITS, ExecutionLimits
from runtime.core.state import ExecutionState, Phase
from runtime.definition.model import StateMachine
from runtime.engine.clock import MAX_VIRTUAL_TIME, Clock, ManualClock
from runtime.engine.handlers import HandlerRegistry
from runtime.engine.nested import NestedHost, is_nested, run_nested
from runtime.engine.tasks import call_handler, within_timeout
from runtime.errors import (
    ConcurrencyConflict,
    ExecutionAlreadyExists,
    ExecutionLimitExceeded,
    InternalError,
)
from runtime.store.base import Append, EventStore, ExecutionRecord

JSON = Any
log = structlog.get_logger("statemill.engine")

#: Most events appended in one group-commit transaction.
MAX_BATCH_EVENTS: Final = 4096


@final
class Live:
    """An execution held in memory: its folded state and its scheduling bookkeeping."""

    __slots__ = (
        "answered",
        "committing",
        "cut_after",
        "handed",
        "inbox",
        "machine",
        "queued",
        "record",
        "running",
        "seq",
        "state",
        "timer_at",
    )

    def __init__(self, record: ExecutionRecord, machine: StateMachine, state: ExecutionState):
        self.record = record
        self.machine = machine
        self.state = state
        self.seq = state.last_event_id
        self.inbox: collections.deque[Incoming] = collections.deque()
        self.queued = False
        self.committing = False
        self.timer_at: float | None = None
        self.cut_after = 0.0
        """Wall-clock seconds the last decision took when it stopped at its event budget
        (``Decision.more``); 0 otherwise."""
        self.running: dict[int, asyncio.Task[None]] = {}
        self.handed: set[str] = set()
        """Activity task tokens handed to a worker (a task is handed out once)."""
        self.answered: set[str] = set()
        """Task tokens answered but maybe not applied yet (a second answer is refused)."""


@final
class _AfterCommit:
    """Completion of a decision's commit: runs its effects, or rebuilds it on failure."""

    __slots__ = ("engine", "live", "tasks", "wake_at")

    def __init__(
        self, engine: Engine, live: Live, tasks: list[RunTask], wake_at: float | None
    ) -> None:
        self.engine = engine
        self.live = live
        self.tasks = tasks
        self.wake_at = wake_at

    def done(self) -> bool:
        return False

    def set_result(self, _: None) -> None:
        self.live.committing = False
        self.engine._after_commit(self.live, self.tasks, self.wake_at)

    def set_exception(self, exc: BaseException) -> None:
        log.error("engine.commit_failed", execution=self.live.record.execution_arn, error=str(exc))
        self.live.committing = False
        self.engine._spawn_rebuild(self.live)


_Completion = asyncio.Future[None] | _AfterCommit


@final
class _Create:
    """A new execution waiting for the group commit."""

    __slots__ = ("events", "record")

    def __init__(self, record: ExecutionRecord, events: list[HistoryEvent]) -> None:
        self.record = record
        self.events = events


@final
class Engine:
    """Owns the live executions and the tasks that move them."""

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
        nested_host: NestedHost | None = None,
    ) -> None:
        self.store = store
        self.limits = limits
        """The runtime's quotas: handed to every ``decide``; ``max_open_executions`` is
        enforced by :meth:`admission`."""
        self.handlers = handlers
        self.clock = clock
        self.workers = workers
        self.live: dict[str, Live] = {}
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        self._pending: list[tuple[Append | _Create, _Completion]] = []
        self._pending_event = asyncio.Event()
        self._timers: list[tuple[float, str]] = []
        self._timers_changed = asyncio.Event()
        self._parked_timers: list[tuple[float, str]] = []
        """The timers of evicted executions, soonest first (entries whose execution was revived
        since are stale and skipped)."""
        self.prefetch_seconds = prefetch_seconds
        """Revive a parked execution this long before its timer is due, so that the replay is
        done when it fires (``benchmarks parked``: with the replay on the firing path, waking
        cost more than starting, and timers came due faster than they could be woken)."""
        self.max_starting = max_starting
        """New executions admitted but not yet handed to the workers, at most."""
        self.max_ready = max_ready
        """New executions wait while the workers' queue is this long (wakes never do)."""
        self.cut_pause = 1.0
        """Executions whose decision stopped at its event budget (a zero-time loop, a huge
        inline Map) go on one at a time, each after a pause of this many times the previous
        such decision's wall-clock time: meanwhile the event loop serves everyone else
        (issue 11: a canary of 10 Pass states beside a runaway Choice loop waited for one
        ~150 ms decision at each of its ~5 hops, 535 ms at the median). 0: no pause."""
        self._cut: collections.deque[str] = collections.deque()
        """Executions cut at their event budget, waiting for their turn to go on."""
        self._cut_running: str | None = None
        """The cut execution released to the workers and not yet decided."""
        self._cut_release: asyncio.TimerHandle | None = None
        self._starting = 0
        self._waking = False
        """The timer loop is handing due timers to the workers (``admit`` waits meanwhile)."""
        self._busy = 0
        self._activity = asyncio.Event()
        self._tg: TaskGroup | None = None
        self._global_limit = (
            anyio.CapacityLimiter(max_handler_concurrency) if max_handler_concurrency else None
        )
        self._handler_limits: dict[str, anyio.CapacityLimiter] = {}
        self.machines: dict[str, StateMachine] = {}
        self.parked: dict[str, tuple[float, str]] = {}
        """Executions evicted while they wait on a timer: arn -> (fire_at, state machine arn)."""
        # An OrderedDict: dropping the oldest of a plain dict that is always deleted from the
        # front makes ``next(iter(...))`` skip ever more dead slots (``benchmarks parked``).
        self.recent: collections.OrderedDict[str, ExecutionRecord] = collections.OrderedDict()
        """The records of recently ended executions (so describe needs no store read)."""
        self._seeds: list[int] = []
        self.evict_parked = evict_parked
        self.max_live = max_live
        self._waiters: dict[str, asyncio.Event] = {}
        self._space = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self.activity_tasks: dict[str, collections.deque[tuple[str, RunTask]]] = {}
        """Activity ARN -> scheduled activity tasks not yet handed to a worker."""
        self._activity_ready: dict[str, asyncio.Event] = {}
        self._settle_waiters: dict[str, asyncio.Event] = {}
        self.nested_host = nested_host
        """Runs ``states:startExecution`` Tasks (the Runtime's; None: they find no handler)."""
        self.beats: dict[str, dict[str, float]] = {}
        """Execution arn -> frame -> last SendTaskHeartbeat of its token Task (not an AWS
        history event, so kept here; after a restart the window counts from the restart)."""

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(
        self, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the engine's tasks until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for _ in range(self.workers):
                tg.start_soon(self._worker)
            tg.start_soon(self._committer)
            tg.start_soon(self._timer_loop)
            if isinstance(self.clock, ManualClock):
                tg.start_soon(self._autojump, self.clock)
            task_status.started()

    def _set_busy(self, delta: int) -> None:
        self._busy += delta
        self._activity.set()

    # -- submitting work ----------------------------------------------------------------------

    def submit(self, arn: str, incoming: Incoming) -> None:
        """Queue ``incoming`` for execution ``arn`` and make it ready."""
        live = self.live.get(arn)
        if live is None:
            return
        live.inbox.append(incoming)
        if not live.queued and not live.committing:
            live.queued = True
            self._set_busy(+1)
            self._ready.put_nowait(arn)

    def seed(self) -> int:
        """A fresh decision seed. Task tokens are drawn from it, so it comes from the OS's
        cryptographic source and is wide (128 bits), not from a predictable PRNG."""
        seeds = self._seeds
        if not seeds:
            # One OS read for many seeds (``os.urandom`` per seed was ~1.5 us, measured in
            # ``benchmarks parked``); the bytes are as unpredictable either way.
            pool = os.urandom(16 * 1024)
            seeds.extend(int.from_bytes(pool[i : i + 16], "big") for i in range(0, len(pool), 16))
        return seeds.pop()

    async def admit(self) -> None:
        """Backpressure for new executions: wait while too many are held in memory, while
        timers that are due are not yet handed to the workers (a due timer goes before a new
        execution: ``benchmarks parked``, with starts still arriving when the first Waits end),
        while ``max_starting`` starts are already on their way in, and while the workers'
        queue is long (so a woken execution never waits behind a flood of new ones)."""
        while (
            len(self.live) >= self.max_live
            or self._timers_owed()
            or self._starting >= self.max_starting
            or self._ready.qsize() >= self.max_ready
        ):
            self._space.clear()
            await self._space.wait()

    @contextlib.asynccontextmanager
    async def admission(self) -> AsyncIterator[None]:
        """Hold one of the ``max_starting`` slots of a new execution from :meth:`admit` until
        it has been created and handed to the workers (:meth:`adopt`)."""
        await self.admit()
        self.check_open_limit()
        self._starting += 1
        try:
            yield
        finally:
            self._starting -= 1
            self._space.set()

    def open_count(self) -> int:
        """Open executions of this engine, counted in O(1): those held in memory, those parked
        on a timer, and those being started (each open execution is in exactly one place)."""
        return len(self.live) + len(self.parked) + self._starting

    def check_open_limit(self) -> None:
        """Raise ``ExecutionLimitExceeded`` if one more open execution would pass
        ``limits.max_open_executions`` (StartExecution's and RedriveExecution's quota)."""
        limit = self.limits.max_open_executions
        if limit is not None and self.open_count() >= limit:
            raise ExecutionLimitExceeded()

    def _timers_owed(self) -> bool:
        """True while the timer loop is waking executions or a timer in its heap is due."""
        if self._waking:
            return True
        timers = self._timers
        return bool(timers) and timers[0][0] <= self.clock.now()

    def adopt(self, live: Live) -> None:
        """Hold ``live`` in memory and start it moving (a redriven execution too: it is no
        longer among the recently ended)."""
        self.recent.pop(live.record.execution_arn, None)
        self.live[live.record.execution_arn] = live
        self.submit(live.record.execution_arn, Wake(now=self.clock.now(), seed=self.seed()))

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
            machine = machines.get(record.state_machine_arn)
            if machine is None:
                log.warning("recover.no_state_machine", execution=record.execution_arn)
                continue
            state = fold(events)
            live = Live(record, machine, state)
            self.live[record.execution_arn] = live
            self._grant_heartbeat_window(live)
            for task in in_flight(state, machine):
                self._start_task(live, task)
            resumed.append(record.execution_arn)
        return resumed

    def wake(self, arns: list[str]) -> None:
        """Let each of ``arns`` decide now (after :meth:`recover`)."""
        for arn in arns:
            self.submit(arn, Wake(now=self.clock.now(), seed=self.seed()))

    # -- what the Runtime asks (issue 10: it calls these, never the dicts behind them) --------

    def add_machine(self, arn: str, machine: StateMachine) -> None:
        """Know state machine ``arn`` (parked executions of it are rebuilt with ``machine``)."""
        self.machines[arn] = machine

    def holds(self, arn: str) -> bool:
        """True while execution ``arn`` is open in this engine (in memory or parked)."""
        return arn in self.live or arn in self.parked

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
        for arn, frames in self.beats.items():
            recorded = stored.get(arn, {})
            for frame in list(frames):
                if frame in recorded:
                    frames[frame] = recorded[frame]
                else:
                    del frames[frame]  # decide falls back on the Task's start time

    def last_heartbeat(self, arn: str, frame: str) -> float | None:
        """When the token Task of ``frame`` last sent a heartbeat to this engine, if it did."""
        return self.beats.get(arn, {}).get(frame)

    def cancel_handlers(self) -> None:
        """Cancel every handler call in flight (the runtime is closing)."""
        for live in self.live.values():
            for running in live.running.values():
                running.cancel()

    # -- workers and group commit -------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            arn = await self._ready.get()
            if self._ready.qsize() == self.max_ready // 2:
                self._space.set()  # admit() may go on
            live = self.live.get(arn)
            began = time.perf_counter()
            try:
                if live is not None:
                    await self._process(live)
            except Exception:  # a store failure or an engine bug must not kill the worker pool
                log.exception("engine.decision_failed", execution=arn)
                if live is not None:
                    await self._rebuild(live)
            finally:
                self._set_busy(-1)
                if arn == self._cut_running:
                    self._cut_running = None
                    self._release_cut_after(time.perf_counter() - began)

    def _cut_short(self, live: Live) -> None:
        """Queue ``live``, whose decision stopped at its event budget, to go on in its turn
        (``cut_pause``): still busy meanwhile, so virtual time does not jump past it."""
        live.queued = True
        self._set_busy(+1)
        self._cut.append(live.record.execution_arn)
        if self._cut_running is None:
            self._release_cut_after(live.cut_after)

    def _release_cut_after(self, elapsed: float) -> None:
        if self._cut and self._cut_release is None:
            loop = asyncio.get_running_loop()
            self._cut_release = loop.call_later(elapsed * self.cut_pause, self._release_cut)

    def _release_cut(self) -> None:
        """Hand the next cut execution to the workers (the next goes once it is decided)."""
        self._cut_release = None
        if self._cut and self._cut_running is None:
            arn = self._cut.popleft()
            self._cut_running = arn
            self._ready.put_nowait(arn)

    async def _process(self, live: Live) -> None:
        """Decide over the inbox, then hand the events to the group commit and move on.

        The worker does not wait for the commit: it would cap a group commit at one execution
        per worker (benchmarks/handlers saw 143 of 1,000 handler slots used). The execution
        itself is not decided again until its commit is done (``live.committing``).
        """
        events: list[HistoryEvent] = []
        tasks: list[RunTask] = []
        wake_at: float | None = live.timer_at
        beats = self.beats.get(live.record.execution_arn)
        began = time.perf_counter()
        live.cut_after = 0.0
        while live.inbox:
            incoming = live.inbox.popleft()
            if beats and isinstance(incoming, Wake):
                incoming = msgspec.structs.replace(incoming, beats=dict(beats))
            try:
                decision = decide(live.machine, live.state, incoming, limits=self.limits)
            except Exception as exc:  # a bug in the core: fail the execution, never hang it
                log.exception("engine.decide_failed", execution=live.record.execution_arn)
                events.append(await self._internal_failure(live, events, exc))
                live.inbox.clear()
                tasks.clear()
                break
            events.extend(decision.events)
            tasks.extend(decision.tasks)
            if decision.partial and wake_at is not None:
                # Keep the earlier timer: this decision did not look at every waiting frame. A
                # timer that turns out stale only causes a Wake that recomputes them all.
                if decision.wake_at is not None:
                    wake_at = min(wake_at, decision.wake_at)
            else:
                wake_at = decision.wake_at
            if decision.more:
                # Cut at the decision's event budget: commit this much, then go on (after a
                # pause, ``cut_pause``).
                live.inbox.append(Wake(now=self.clock.now(), seed=self.seed()))
                live.cut_after = time.perf_counter() - began
                break
        live.queued = False
        if not events:
            self._after_commit(live, tasks, wake_at)
            return
        record = self._final_record(live) if live.state.is_terminal else None
        append = Append(
            execution_arn=live.record.execution_arn,
            expected_seq=live.seq,
            events=tuple(events),
            record=record,
        )
        live.committing = True
        live.seq = events[-1].id
        if record is not None:
            live.record = record
        self._enqueue(append, _AfterCommit(self, live, tasks, wake_at))

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

    def _after_commit(self, live: Live, tasks: list[RunTask], wake_at: float | None) -> None:
        """Run a decision's effects, now that its events are durable (append before acting)."""
        if not live.state.is_terminal:  # a Task scheduled by the decision that ended it: moot
            for task in tasks:
                self._start_task(live, task)
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
            heapq.heappush(self._timers, (wake_at, arn))
            self._timers_changed.set()
        if live.inbox:
            if live.queued:
                pass
            elif live.cut_after > 0:
                self._cut_short(live)
            else:
                live.queued = True
                self._set_busy(+1)
                self._ready.put_nowait(arn)
            return
        idle = not live.running and not live.queued
        if self.evict_parked and idle and live.timer_at is not None:
            # Parked on a timer only: keep the timer entry, not the state (rebuilt by replay).
            del self.live[arn]
            self.parked[arn] = (live.timer_at, live.record.state_machine_arn)
            heapq.heappush(self._parked_timers, (live.timer_at, arn))

    def _grant_heartbeat_window(self, live: Live) -> None:
        """Heartbeats are kept in memory only: after a restart, a token Task waiting with
        HeartbeatSeconds gets a full window from now rather than timing out at once."""
        now = self.clock.now()
        for frame in live.state.frames.values():
            if frame.task_token is not None and frame.task_heartbeat is not None:
                self.beats.setdefault(live.record.execution_arn, {})[frame.id] = now

    def heartbeat(self, arn: str, frame: str) -> None:
        """Record a SendTaskHeartbeat for the token Task of ``frame``."""
        self.beats.setdefault(arn, {})[frame] = self.clock.now()

    def _finished(self, arn: str) -> None:
        live = self.live.pop(arn, None)
        self.beats.pop(arn, None)
        waiter = self._waiters.pop(arn, None)
        if waiter is not None:
            waiter.set()
        if live is not None:
            self.recent[arn] = live.record
            if len(self.recent) > 10_000:
                self.recent.popitem(last=False)
        self._space.set()

    async def wait(self, arn: str) -> None:
        """Return once execution ``arn`` (run by this engine) has ended."""
        if arn in self.live or arn in self.parked:
            waiter = self._waiters.setdefault(arn, asyncio.Event())
            await waiter.wait()

    async def revive(self, arn: str) -> None:
        """Bring a parked execution back into memory (e.g. to stop it)."""
        self._set_busy(+1)
        try:
            if await self._wake_parked(arn) is not None:
                # The parked timer entry is gone with the eviction: a Wake re-arms it.
                self.submit(arn, Wake(now=self.clock.now(), seed=self.seed()))
        finally:
            self._set_busy(-1)

    async def _wake_many(self, arns: list[str]) -> list[str]:
        """Rebuild many parked executions with one batched read; returns those revived."""
        revived: list[str] = []
        wanted = [arn for arn in arns if arn in self.parked]
        for record, events in await self.store.load_executions(wanted):
            arn = record.execution_arn
            entry = self.parked.pop(arn, None)
            machine = self.machines.get(record.state_machine_arn)
            if entry is None or machine is None:
                continue
            self.live[arn] = Live(record, machine, fold(events))
            revived.append(arn)
        return revived

    async def _wake_parked(self, arn: str) -> Live | None:
        """Rebuild one parked execution from its log (replay) and hold it in memory again."""
        if arn in self.parked and not await self._wake_many([arn]):
            log.error("engine.parked_execution_lost", execution=arn)
        return self.live.get(arn)

    async def _internal_failure(
        self, live: Live, pending: list[HistoryEvent], exc: Exception
    ) -> HistoryEvent:
        """Replace the state a failed ``decide`` left half-evolved by the log's own fold, and
        end the execution with ``States.Runtime`` naming the internal error."""
        state = fold([*await self.store.read(live.record.execution_arn), *pending])
        event = HistoryEvent(
            id=state.last_event_id + 1,
            type="ExecutionFailed",
            timestamp=self.clock.now(),
            previous_event_id=state.last_event_id,
            details={
                "error": "States.Runtime",
                "cause": f"Statemill internal error: {type(exc).__name__}: {exc}",
            },
        )
        live.state = evolve(state, event)
        return event

    def _spawn_rebuild(self, live: Live) -> None:
        self._set_busy(+1)

        async def rebuild() -> None:
            try:
                await self._rebuild(live)
            finally:
                self._set_busy(-1)

        task = asyncio.ensure_future(rebuild())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _rebuild(self, live: Live) -> None:
        """After a failed decision or commit, the memory may be ahead of the log: replay the
        log (the truth) and try again."""
        arn = live.record.execution_arn
        try:
            state = fold(await self.store.read(arn))
        except Exception:
            log.exception("engine.rebuild_failed", execution=arn)
            return
        live.state = state
        live.seq = state.last_event_id
        if arn in self._cut:  # rare (a failed decision): leave the cut lane, queue afresh
            self._cut.remove(arn)
            self._set_busy(-1)
        live.queued = False
        if not state.is_terminal:
            for task in in_flight(state, live.machine):
                if task.scheduled_id not in live.running:
                    self._start_task(live, task)
            self.submit(arn, Wake(now=self.clock.now(), seed=self.seed()))

    def _final_record(self, live: Live) -> ExecutionRecord:
        state = live.state
        return msgspec.structs.replace(
            live.record,
            status=state.status,
            stop_date=state.stop_time,
            output=dumps(state.output) if state.status == "SUCCEEDED" else None,
            error=state.error,
            cause=state.cause,
        )

    def _enqueue(self, work: Append | _Create, future: asyncio.Future[None] | _AfterCommit) -> None:
        self._pending.append((work, future))
        self._pending_event.set()
        self._set_busy(+1)

    async def _commit(self, work: Append | _Create) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(work, future)
        await future

    async def append(self, append: Append) -> None:
        """Durably append events to an execution this engine does not hold (group-committed)."""
        await self._commit(append)

    async def create(self, record: ExecutionRecord, events: list[HistoryEvent]) -> None:
        """Durably create an execution (group-committed with other work)."""
        await self._commit(_Create(record, events))

    async def _committer(self) -> None:
        while True:
            await self._pending_event.wait()
            self._pending_event.clear()
            while self._pending:
                count = 0
                taken = 0
                for work, _ in self._pending:
                    taken += 1
                    count += len(work.events)
                    if count >= MAX_BATCH_EVENTS:
                        break
                batch, self._pending = self._pending[:taken], self._pending[taken:]
                creates = [(w, f) for w, f in batch if isinstance(w, _Create)]
                appends = [(w, f) for w, f in batch if isinstance(w, Append)]
                try:
                    if creates:
                        await self._create_batch(creates)
                    if appends:
                        await self._append(appends)
                finally:
                    self._set_busy(-len(batch))

    async def _create_batch(self, batch: list[tuple[_Create, _Completion]]) -> None:
        async def create(works: list[_Create]) -> None:
            await self.store.create_executions([(w.record, w.events) for w in works])

        # A duplicate name fails the whole transaction: the others are then created alone.
        await _write_batch(batch, create, ExecutionAlreadyExists)

    async def _append(self, batch: list[tuple[Append, _Completion]]) -> None:
        # One execution that lost a race fails the whole transaction: the others commit alone.
        await _write_batch(batch, self.store.append, ConcurrencyConflict)

    # -- timers -------------------------------------------------------------------------------

    async def _timer_loop(self) -> None:
        while True:
            if not self._timers:
                self._timers_changed.clear()
                await self._timers_changed.wait()
                continue
            fire_at, _ = self._timers[0]
            now = self.clock.now()
            if fire_at > now:
                prefetch_at = self._prefetch_at()
                if prefetch_at <= now:
                    await self._prefetch(now)
                    # Yield even when nothing was revived: this loop must never spin.
                    await asyncio.sleep(0)
                    continue
                self._timers_changed.clear()
                wake_up = min(fire_at, prefetch_at)
                await _first(self.clock.sleep_until(wake_up), self._timers_changed.wait())
                continue
            self._waking = True
            try:
                await self._fire_due(self.clock.now())
            finally:
                self._waking = False
                self._space.set()  # admit() may go on

    def _prefetch_at(self) -> float:
        """When the soonest parked execution should be revived (``inf``: none, or memory is
        already half full: then it is revived when its timer fires)."""
        parked = self._parked_timers
        while parked and self.parked.get(parked[0][1], (None,))[0] != parked[0][0]:
            heapq.heappop(parked)  # revived or ended since it was parked
        if not parked or len(self.live) >= self.max_live // 2:
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
        lead = self.prefetch_seconds
        while parked and parked[0][0] - lead <= now and len(due) < 2000:
            at, arn = heapq.heappop(parked)
            if self.parked.get(arn, (None,))[0] == at:
                due[arn] = at
        if not due:
            return
        self._set_busy(+1)
        try:
            for arn in await self._wake_many(list(due)):
                live = self.live.get(arn)
                if live is not None:
                    live.timer_at = due[arn]  # its entry in ``_timers`` fires it
        finally:
            self._set_busy(-1)

    async def _fire_due(self, now: float) -> None:
        """Hand the timers due at ``now`` to the workers, reviving parked executions."""
        woken: list[str] = []
        while self._timers and self._timers[0][0] <= now:
            at, arn = heapq.heappop(self._timers)
            live = self.live.get(arn)
            if live is not None and live.timer_at == at:
                live.timer_at = None
                self.submit(arn, Wake(now=now, seed=self.seed()))
            elif live is None and self.parked.get(arn, (None,))[0] == at:
                woken.append(arn)
        if woken:
            self._set_busy(+1)
            try:
                for start in range(0, len(woken), 2000):
                    chunk = woken[start : start + 2000]
                    for arn in await self._wake_many(chunk):
                        self.submit(arn, Wake(now=now, seed=self.seed()))
            finally:
                self._set_busy(-1)

    async def _autojump(self, clock: ManualClock) -> None:
        """Virtual time: when nothing can progress, jump to the next deadline."""
        while True:
            if self._busy > 0:
                self._activity.clear()
                await self._activity.wait()
                continue
            for _ in range(8):  # let just-woken coroutines register work or sleeps
                await asyncio.sleep(0)
            if self._busy > 0:
                continue
            deadline = clock.next_deadline()
            if deadline is not None and deadline > MAX_VIRTUAL_TIME >= clock.now():
                # Never jump across the horizon: that deadline is treated as never (issue 11:
                # a Wait of 1e30 s put the clock where no later timestamp could be written).
                deadline = None
            if deadline is None:
                self._activity.clear()
                clock.sleeper_added.clear()
                await _first(self._activity.wait(), clock.sleeper_added.wait())
                continue
            clock.advance_to(deadline)

    # -- handler calls ------------------------------------------------------------------------

    def _start_task(self, live: Live, task: RunTask) -> None:
        if is_activity(task.resource):
            # No handler: the task waits for a worker's GetActivityTask.
            arn = live.record.execution_arn
            self.activity_tasks.setdefault(task.resource, collections.deque()).append((arn, task))
            self._activity_ready.setdefault(task.resource, asyncio.Event()).set()
            return
        if self._tg is None:
            raise InternalError("engine is not running")
        self._set_busy(+1)
        running = asyncio.ensure_future(self._run_task(live, task))
        live.running[task.scheduled_id] = running

        def done(_: asyncio.Task[None]) -> None:
            # In a done callback, not in ``_run_task``'s ``finally``: a call cancelled before
            # its first step never runs that ``finally`` (issue 11: a decision that scheduled
            # a Task and ended the execution left the busy count at 1, so virtual time froze).
            live.running.pop(task.scheduled_id, None)
            self._set_busy(-1)

        running.add_done_callback(done)

    async def _run_task(self, live: Live, task: RunTask) -> None:
        """One handler call (counted busy by :meth:`_start_task` until it is done)."""
        arn = live.record.execution_arn
        host = self.nested_host
        if host is not None and is_nested(task.resource):
            # A built-in resource: waiting on a child is not busy (the child's work is).
            self._set_busy(-1)
            try:
                nested = run_nested(
                    task,
                    host,
                    parent=arn,
                    parent_aborted=lambda: live.state.status == "ABORTED",
                )
                if task.timeout_seconds is not None:
                    nested = within_timeout(nested, self.clock, task.timeout_seconds)
                outcome, output, error, cause = await nested
            finally:
                self._set_busy(+1)
        else:
            limiter = self._limiter_for(task.handler_name)
            async with _Limits(self, limiter, self._global_limit):
                outcome, output, error, cause = await call_handler(
                    task,
                    self.handlers,
                    self.clock,
                    execution_arn=arn,
                    state_machine_arn=live.record.state_machine_arn,
                    sleep=self._idle_sleep,
                )
        self.report(arn, task.frame, task.scheduled_id, outcome, output, error, cause)

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

    def _limiter_for(self, handler_name: str) -> anyio.CapacityLimiter | None:
        spec = self.handlers.resolve(handler_name)
        if spec is None or spec.max_concurrency is None:
            return None
        limiter = self._handler_limits.get(spec.name)
        if limiter is None:
            limiter = anyio.CapacityLimiter(spec.max_concurrency)
            self._handler_limits[spec.name] = limiter
        return limiter

    async def _idle_sleep(self, seconds: float) -> None:
        """A handler's sleep on the runtime clock; it does not count as busy meanwhile."""
        self._set_busy(-1)
        try:
            await self.clock.sleep_until(self.clock.now() + seconds)
        finally:
            self._set_busy(+1)

    async def take_activity_task(
        self, activity_arn: str, worker_name: str, timeout: float
    ) -> RunTask | None:
        """Hand the oldest pending task of ``activity_arn`` to a worker (once), waiting up to
        ``timeout`` wall-clock seconds for one (GetActivityTask's long poll)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            queue = self.activity_tasks.get(activity_arn)
            while queue:
                arn, task = queue.popleft()
                if arn in self.parked:
                    await self.revive(arn)
                live = self.live.get(arn)
                frame = None if live is None else live.state.frames.get(task.frame)
                if (
                    live is None
                    or frame is None
                    or frame.phase != Phase.SCHEDULED
                    or frame.task_token is None
                    or frame.task_token != task.task_token
                    or frame.task_token in live.handed
                ):
                    continue  # timed out, stopped, redone or handed out meanwhile
                live.handed.add(frame.task_token)
                started = {"workerName": worker_name}
                self.report(
                    arn, task.frame, task.scheduled_id, "started", started,
                    task_token=task.task_token,
                )  # fmt: skip
                return task
            ready = self._activity_ready.setdefault(activity_arn, asyncio.Event())
            ready.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            with anyio.move_on_after(remaining):
                await ready.wait()

    def spawn(self, work: Any) -> None:
        """Run the coroutine ``work`` in the background, owned by the engine."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def stop(self, arn: str, error: str | None, cause: str | None) -> None:
        """Ask execution ``arn`` to stop; its running handler calls are cancelled."""
        self.submit(
            arn, StopRequested(now=self.clock.now(), error=error, cause=cause, seed=self.seed())
        )


class _Limits:
    """Hold a handler call's limiters (per handler, then global).

    A call queued on a limiter is not busy: it waits for another call to finish, so on virtual
    time the clock may jump meanwhile.
    """

    def __init__(self, engine: Engine, *limiters: anyio.CapacityLimiter | None) -> None:
        self.engine = engine
        self.limiters = [limiter for limiter in limiters if limiter is not None]
        self.held: list[anyio.CapacityLimiter] = []

    async def __aenter__(self) -> None:
        for limiter in self.limiters:
            try:
                limiter.acquire_nowait()
            except anyio.WouldBlock:
                self.engine._set_busy(-1)
                try:
                    await limiter.acquire()
                finally:
                    self.engine._set_busy(+1)
            self.held.append(limiter)

    async def __aexit__(self, *exc: object) -> None:
        for limiter in reversed(self.held):
            limiter.release()
        self.held.clear()


_W = TypeVar("_W")


async def _write_batch(
    batch: list[tuple[_W, _Completion]],
    write: Callable[[list[_W]], Awaitable[None]],
    one_item_fails: type[Exception],
) -> None:
    """Group commit of ``batch`` with ``write`` (one transaction), resolving each item's
    completion. When ``one_item_fails`` sinks the transaction, the items are written one by one
    so that only the guilty one fails; any other error fails them all."""
    try:
        await write([work for work, _ in batch])
    except one_item_fails:
        for work, done in batch:
            try:
                await write([work])
            except Exception as exc:
                done.set_exception(exc)
            else:
                done.set_result(None)
        return
    except Exception as exc:
        for _, done in batch:
            done.set_exception(exc)
        return
    for _, done in batch:
        done.set_result(None)


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Return when the first of ``waits`` is done; cancel the others."""
    futures = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()
