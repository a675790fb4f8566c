"""The ready queue and its workers: one decision at a time per execution, fairly.

An execution with something in its inbox is pushed once (``Live.queued``); a fixed pool of
workers takes executions in turn and hands each to the engine's ``decide`` step.

Turns go round the *families* of ready executions: the children of a parent's Map Runs are one
family (in order among themselves), every other execution is its own. A distributed Map of
40,000 children then takes one turn in each round, not the whole queue: the ``fuzz`` canary (10
Pass states) waited behind thousands of children's decisions (issue 11; a separate lane for
the children, tried in session 5, did not help). A family is one entry of the round, so a push
and a take stay O(1); an execution that is no Map Run child is put in the round itself, as
before families were kept (``benchmarks peers`` a is sensitive to this path's cost).
:meth:`ReadyQueue.qsize` counts every ready execution, whatever its family (admission's
``max_ready``).

Executions whose decision stopped at its event budget (a zero-time loop, a huge inline Map) go
through a separate lane instead, one at a time, each after a pause proportional to the previous
such decision's wall-clock time (``cut_pause``), so that the event loop serves everyone else
meanwhile (issue 11); released, each goes into the round on its own.

Interface: :meth:`ReadyQueue.push`, :meth:`ReadyQueue.cut_short`, :meth:`ReadyQueue.leave_cut`,
:meth:`ReadyQueue.worker` (run ``workers`` of them in the engine's task group). Imports
``engine.live`` only.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from typing import Final, final

from runtime.engine.live import Live

#: Wall-clock seconds a worker decides for before it lets the event loop run the rest (the
#: ``fuzz`` canary's p99 bound is 100 ms, shared by every worker of a turn).
_TURN_SECONDS: Final = 0.01


@final
class ReadyQueue:
    """Executions ready to decide, and the lane of those cut at their event budget."""

    __slots__ = (
        "_busy",
        "_cut",
        "_cut_release",
        "_cut_running",
        "_extra",
        "_families",
        "_idle",
        "_queue",
        "_space",
        "cut_pause",
        "max_ready",
    )

    def __init__(
        self, busy: Callable[[int], None], space: Callable[[], None], *, max_ready: int
    ) -> None:
        self._busy = busy
        self._space = space
        """Called when the queue has drained to half of ``max_ready`` (admission may go on)."""
        self.max_ready = max_ready
        """New executions wait while the workers' queue is this long (wakes never do)."""
        self._queue: collections.deque[str | _Family] = collections.deque()
        """The round: ready executions that are no Map Run's children, and the families of
        those that are (each while it has some ready), in turn (a plain deque:
        ``asyncio.Queue`` cost a future and three calls per hand-over, measured on ``peers``
        a)."""
        self._families: dict[str, _Family] = {}
        """Parent execution arn -> its Map Run children that are ready, in order (while
        any is; the family is in the round then)."""
        self._extra = 0
        """Ready executions in families beyond one each: the queue holds ``len(_queue) +
        _extra`` (kept so that :meth:`qsize` is O(1))."""
        self._idle: collections.deque[asyncio.Future[None]] = collections.deque()
        """Workers waiting for work: each pushed execution wakes at most one."""
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

    def qsize(self) -> int:
        """Executions waiting for a worker."""
        return len(self._queue) + self._extra

    def push(self, live: Live) -> None:
        """Make ``live`` ready (counted busy until a worker has decided it): a Map Run's
        child joins its parent's family, any other execution the round."""
        live.queued = True
        self._busy(+1)
        record = live.record
        if record.map_run_arn is None or record.parent_execution_arn is None:
            self._put(record.execution_arn)
            return
        parent = record.parent_execution_arn
        family = self._families.get(parent)
        if family is None:
            family = self._families[parent] = _Family(parent)
            self._queue.append(family)
        else:
            self._extra += 1
        family.append(record.execution_arn)
        self._wake_one()  # one more to decide: one more worker may take part

    def _put(self, arn: str) -> None:
        self._queue.append(arn)
        self._wake_one()

    def cut_short(self, live: Live) -> None:
        """Queue ``live``, whose decision stopped at its event budget, to go on in its turn
        (``cut_pause``): still busy meanwhile, so virtual time does not jump past it."""
        live.queued = True
        self._busy(+1)
        self._cut.append(live.record.execution_arn)
        if self._cut_running is None:
            self._release_cut_after(live.cut_after)

    def leave_cut(self, arn: str) -> None:
        """Take ``arn`` out of the cut lane if it waits there (it is rebuilt and queued
        afresh)."""
        if arn in self._cut:
            self._cut.remove(arn)
            self._busy(-1)

    async def worker(self, decide: Callable[[str], Awaitable[None]]) -> None:
        """Take ready executions and ``decide`` each, until cancelled."""
        queue = self._queue
        idle = self._idle
        loop = asyncio.get_running_loop()
        turn_began = time.perf_counter()
        while True:
            if queue and time.perf_counter() - turn_began > _TURN_SECONDS:
                # Decisions that never wait (an in-memory store) would hold the event loop
                # for as long as executions are ready: 10,000 children of a Map Run retrying
                # their Tasks held it for 0.3 s at a time. Give it back between decisions.
                await asyncio.sleep(0)
                turn_began = time.perf_counter()
            while not queue:
                waiter = loop.create_future()
                idle.append(waiter)
                try:
                    await waiter
                    turn_began = time.perf_counter()
                except BaseException:
                    if waiter.done() and not waiter.cancelled() and queue:
                        self._wake_one()  # pass the wake-up on: the work must not sit
                    raise
            taken = queue.popleft()
            arn = taken if isinstance(taken, str) else self._take_from(taken)
            if len(queue) + self._extra == self.max_ready // 2:
                self._space()
            began = time.perf_counter()
            try:
                await decide(arn)
            finally:
                self._busy(-1)
                if arn == self._cut_running:
                    self._cut_running = None
                    self._release_cut_after(time.perf_counter() - began)

    def _take_from(self, family: _Family) -> str:
        """The next ready execution of ``family``, which goes to the back of the round if
        more of it are ready (one turn per round, however many are)."""
        arn = family.popleft()
        if family:
            self._extra -= 1
            self._queue.append(family)
        else:
            del self._families[family.parent]
        return arn

    def _release_cut_after(self, elapsed: float) -> None:
        # A loop timer handle, not a task: the pause is wall-clock time by design (it gives
        # the event loop to others), and there is nothing to own or cancel but the handle.
        if self._cut and self._cut_release is None:
            loop = asyncio.get_running_loop()
            self._cut_release = loop.call_later(elapsed * self.cut_pause, self._release_cut)

    def _release_cut(self) -> None:
        """Hand the next cut execution to the workers (the next goes once it is decided)."""
        self._cut_release = None
        if self._cut and self._cut_running is None:
            arn = self._cut.popleft()
            self._cut_running = arn
            self._put(arn)

    def _wake_one(self) -> None:
        """Wake one idle worker (a cancelled worker's future is skipped)."""
        idle = self._idle
        while idle:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


@final
class _Family(collections.deque[str]):
    """The ready Map Run children of one parent execution, in order."""

    __slots__ = ("parent",)

    def __init__(self, parent: str) -> None:
        super().__init__()
        self.parent = parent
