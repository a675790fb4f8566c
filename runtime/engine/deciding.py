"""Deciding: a worker's step over one ready execution, up to its hand-over to the group commit.

A worker (``engine.ready``) gives each ready execution to :meth:`Decider.decide`, which runs the
core's ``decide`` over the execution's inbox (for at most ``PROCESS_SECONDS`` of wall time, and
to the event budget of a decision), evolving the state in memory, and hands the events to the
group commit (``engine.commit``) without waiting for it. The commit's completion
(:class:`_AfterCommit`) then asks the engine to run the decision's effects (append before
acting), or to rebuild the execution from its log if the commit failed. A bug in the core fails
the execution with ``States.Runtime`` rather than hanging it; any other failure of the step
rebuilds the execution. Each ``decide`` runs within the event loop's JSONata slice
(``ExecutionLimits.evaluation_slice_ms``); a step that outlasts it is decided again in the slow
lane (``engine.slowlane``), whose decision is folded into the live state the same way.

Interface: :meth:`Decider.decide` (the workers' step), :meth:`Decider.process`; the host is
the engine (:class:`DecisionHost`). Imports the core, ``runtime.lang.jsonata_slice``, the
store's protocol and records, ``engine.clock``, ``engine.commit``, ``engine.heartbeats``,
``engine.live`` and ``engine.slowlane`` only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, Protocol, final

import msgspec
import structlog

from runtime.core.decide import decide
from runtime.core.effects import Decision, Incoming, RunTask, Wake
from runtime.core.events import HistoryEvent
from runtime.core.evolve import evolve, fold
from runtime.core.limits import ExecutionLimits
from runtime.engine.clock import Clock
from runtime.engine.commit import GroupCommit
from runtime.engine.heartbeats import Heartbeats
from runtime.engine.live import Live
from runtime.engine.slowlane import SlowLane
from runtime.lang.jsonata_slice import SliceExceeded, close_slice, open_slice
from runtime.store.base import Append, EventStore

__all__ = ["PROCESS_SECONDS", "Decider", "DecisionHost"]

log = structlog.get_logger("statemill.engine")

#: Wall-clock seconds one worker's turn decides an execution's inbox for, at most (then the
#: execution is queued again behind the others).
PROCESS_SECONDS: Final = 0.02


class DecisionHost(Protocol):
    """What deciding needs from the engine."""

    @property
    def live(self) -> dict[str, Live]:
        """The executions held in memory, by arn."""

    @property
    def store(self) -> EventStore: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def limits(self) -> ExecutionLimits: ...

    @property
    def beats(self) -> Heartbeats: ...

    @property
    def seed(self) -> Callable[[], int]:
        """A fresh decision seed."""

    @property
    def owns(self) -> Callable[[str], bool]:
        """Whether this engine may run an execution (its partition is leased here)."""

    def holds_live(self, live: Live) -> bool:
        """True while ``live`` is the execution held in memory for its arn."""

    def release(self, arns: list[str]) -> None:
        """Let go of executions without a write (their partition moved on)."""

    def after_commit(
        self,
        live: Live,
        tasks: list[RunTask],
        wake_at: float | None,
        stopped: list[str],
        opened: list[str] | None = None,
    ) -> None:
        """Run a decision's effects, now that its events are durable."""

    def rebuild(self, live: Live, taken: Sequence[Incoming] = ()) -> Awaitable[None]:
        """Replay ``live``'s log (the truth) and decide again (``taken``: given again)."""

    def rebuild_soon(self, live: Live, taken: Sequence[Incoming] = ()) -> None:
        """:meth:`rebuild` in the background."""

    def busy(self, delta: int) -> None:
        """Count work in flight (virtual time does not jump past it)."""

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` in the background, in the engine's task group."""


@final
class _AfterCommit:
    """Completion of a decision's commit: runs its effects, or rebuilds it on failure.

    Not a future: resolved by the committer directly, so a commit costs no extra task wake-up
    per execution (``benchmarks chain``)."""

    __slots__ = ("engine", "live", "opened", "stopped", "taken", "tasks", "wake_at")

    def __init__(
        self,
        engine: DecisionHost,
        live: Live,
        tasks: list[RunTask],
        wake_at: float | None,
        taken: list[Incoming],
        stopped: list[str],
        opened: list[str],
    ) -> None:
        self.engine = engine
        self.live = live
        self.tasks = tasks
        self.wake_at = wake_at
        self.taken = taken
        """The incoming facts the decision consumed: given again if its commit fails."""
        self.stopped = stopped
        """Map Runs the decision ended before their children (their children are stopped)."""
        self.opened = opened
        """Map Runs the decision opened (recorded in the store)."""

    def done(self) -> bool:
        return False  # nobody waits on it who could give up: always resolved

    def set_result(self, _: None, /) -> None:
        self.live.committing = False
        if not self.engine.holds_live(self.live):
            return  # released while its commit was under way: the new owner acts on it
        try:
            self.engine.after_commit(self.live, self.tasks, self.wake_at, self.stopped, self.opened)
        except Exception:
            # Run by the committer: a failure here must neither stop it nor leave this
            # execution without its effects; its log is durable, so rebuild from it (review).
            log.exception("engine.after_commit_failed", execution=self.live.record.execution_arn)
            self.engine.rebuild_soon(self.live)

    def set_exception(self, exc: BaseException, /) -> None:
        self.live.committing = False
        engine, arn = self.engine, self.live.record.execution_arn
        if not engine.holds_live(self.live):
            return  # released meanwhile (its partition moved to another member): not ours
        if not engine.owns(arn):
            engine.release([arn])  # fenced (PartitionLost): the new owner runs it
            return
        log.error("engine.commit_failed", execution=self.live.record.execution_arn, error=str(exc))
        self.engine.rebuild_soon(self.live, self.taken)


@final
class Decider:
    """A worker's step: decide over a ready execution's inbox and hand the events on."""

    __slots__ = ("_commit", "_host", "_slow")

    def __init__(self, host: DecisionHost, commit: GroupCommit) -> None:
        self._host = host
        self._commit = commit
        self._slow = SlowLane(host.limits.slow_lane_memory_bytes)

    async def decide(self, arn: str) -> None:
        """A worker's step for ready execution ``arn``."""
        live = self._host.live.get(arn)
        if live is None:
            return
        try:
            await self.process(live)
        except Exception:  # a store failure or an engine bug must not kill the worker pool
            log.exception("engine.decision_failed", execution=arn)
            await self._host.rebuild(live)

    async def process(self, live: Live, *, slowly: bool = False) -> None:
        """Decide over the inbox, then hand the events to the group commit and move on.

        A step whose JSONata outlasts the loop's slice is not decided on this worker: the
        execution stays taken (``live.queued``) and a background turn decides that step in
        the slow lane (``slowly``) and hands it on the same way, so that heavy steps queued
        for the lane never hold the workers the other executions need.

        The worker does not wait for the commit: it would cap a group commit at one execution
        per worker (benchmarks/handlers saw 143 of 1,000 handler slots used). The execution
        itself is not decided again until its commit is done (``live.committing``). Only when
        the pipeline is idle (nothing pending, nothing being written) on a store that writes in
        memory does the worker write the events itself (``GroupCommit.write_now``): there is
        nothing to group them with, and the hand-over to the committer and back was a fifth of
        the loop's turns per execution.
        """
        events: list[HistoryEvent] = []
        tasks: list[RunTask] = []
        stopped: list[str] = []
        opened: list[str] = []
        wake_at: float | None = live.timer_at
        host = self._host
        beats = host.beats.of(live.record.execution_arn)
        began = time.perf_counter()
        live.cut_after = 0.0
        taken: list[Incoming] = []
        while live.inbox:
            if taken and time.perf_counter() - began > PROCESS_SECONDS:
                # The rest of the inbox in a later turn (the execution is queued again): a
                # Map Run's parent with 6,000 children's ends waiting decided them for seconds
                # at once, holding the event loop.
                break
            decided_at = time.perf_counter()
            incoming = live.inbox.popleft()
            taken.append(incoming)
            if beats and isinstance(incoming, Wake):
                incoming = msgspec.structs.replace(incoming, beats=dict(beats))
            try:
                if slowly:
                    slowly = False
                    decision = await self._decide_slowly(live, incoming)
                else:
                    try:
                        decision = self._decide_on_loop(live, incoming)
                    except SliceExceeded:
                        # ``decide`` stopped half-way through evolving the state: back to the
                        # fold of the log and of this turn's decisions, the step given back.
                        arn = live.record.execution_arn
                        live.state = fold([*await host.store.read(arn), *events])
                        live.inbox.appendleft(incoming)
                        taken.pop()
                        if events:
                            break  # this turn's decisions first; the step comes next turn
                        self._slow_turn_soon(live)
                        return
            except Exception as exc:  # a bug in the core: fail the execution, never hang it
                log.exception("engine.decide_failed", execution=live.record.execution_arn)
                events.append(await self._internal_failure(live, events, exc))
                live.inbox.clear()
                tasks.clear()
                break
            events.extend(decision.events)
            tasks.extend(decision.tasks)
            stopped.extend(decision.stopped_map_runs)
            opened.extend(decision.opened_map_runs)
            if decision.partial and wake_at is not None:
                # Keep the earlier timer: this decision did not look at every waiting frame. A
                # timer that turns out stale only causes a Wake that recomputes them all.
                if decision.wake_at is not None:
                    wake_at = min(wake_at, decision.wake_at)
            else:
                wake_at = decision.wake_at
            if decision.more:
                # Cut at the decision's event budget: commit this much, then go on (after a
                # pause, ``ReadyQueue.cut_pause``).
                live.inbox.append(Wake(now=host.clock.now(), seed=host.seed()))
                # The pause is that decision's time, not the inbox's before it: measured from
                # the start of the inbox, a parent's pauses grew with its children's ends
                # until it seemed to hang (the fuzz: no event for 3 s).
                live.cut_after = time.perf_counter() - decided_at
                break
        live.queued = False
        if not events:
            host.after_commit(live, tasks, wake_at, stopped, opened)
            return
        record = live.final_record() if live.state.is_terminal else None
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
        done = _AfterCommit(host, live, tasks, wake_at, taken, stopped, opened)
        if self._commit.can_write_now():
            await self._commit.write_now(append, done)  # nothing to group it with: no hop
        else:
            self._commit.enqueue(append, done)

    def _decide_on_loop(self, live: Live, incoming: Incoming) -> Decision:
        """``decide`` within the event loop's JSONata slice.

        Raises:
            SliceExceeded: its JSONata outlasted the slice (``live.state`` is half-evolved).
        """
        limits = self._host.limits
        token = open_slice(limits.evaluation_slice_ms)
        try:
            return decide(live.machine, live.state, incoming, limits=limits)
        finally:
            close_slice(token)

    def _slow_turn_soon(self, live: Live) -> None:
        """A turn of ``live`` (taken, its inbox's first step past the slice) in the background:
        counted busy until it has handed its events on; a failure rebuilds the execution, as
        a worker's would."""
        host = self._host
        host.busy(+1)

        async def turn() -> None:
            try:
                await self.process(live, slowly=True)
            except Exception:
                log.exception("engine.decision_failed", execution=live.record.execution_arn)
                live.queued = False
                await host.rebuild(live)
            finally:
                host.busy(-1)

        host.spawn(turn())

    async def _decide_slowly(self, live: Live, incoming: Incoming) -> Decision:
        """The step whose JSONata outlasted the loop's slice, decided in the slow lane over
        ``live.state`` (the fold of the log), its events folded into it as ``decide`` would
        have."""
        state = live.state
        decision = await self._slow.decide(
            live.machine, live.record.machine_type, state, incoming, self._host.limits
        )
        for event in decision.events:
            state = evolve(state, event)
        live.state = state
        return decision

    @property
    def slow_decisions(self) -> int:
        """Steps decided in the slow lane so far."""
        return self._slow.decisions

    @property
    def slow_lane_busy(self) -> bool:
        """Whether a step is in the slow lane now."""
        return self._slow.busy

    async def aclose(self) -> None:
        """Stop the slow lane's worker, if it was started."""
        await self._slow.aclose()

    async def _internal_failure(
        self, live: Live, pending: list[HistoryEvent], exc: Exception
    ) -> HistoryEvent:
        """Replace the state a failed ``decide`` left half-evolved by the log's own fold, and
        end the execution with ``States.Runtime`` naming the internal error."""
        state = fold([*await self._host.store.read(live.record.execution_arn), *pending])
        event = HistoryEvent(
            id=state.last_event_id + 1,
            type="ExecutionFailed",
            timestamp=self._host.clock.now(),
            previous_event_id=state.last_event_id,
            details={
                "error": "States.Runtime",
                "cause": f"Statemill internal error: {type(exc).__name__}: {exc}",
            },
        )
        live.state = evolve(state, event)
        return event
