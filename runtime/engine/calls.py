"""Handler calls: running a decision's ``RunTask`` effects, within their limits.

A Task that names a registered handler runs it (``engine.tasks.call_handler``: TimeoutSeconds,
HeartbeatSeconds, the result turned into an outcome); a ``states:startExecution`` Task runs a
child execution (``engine.nested``); an activity Task waits in the :class:`ActivityQueue` for a
worker's GetActivityTask. Each call is an asyncio task held in ``Live.running`` (cancelled
when the execution ends or is stopped, and when the runtime closes): raw, as a measured hot
path. Its outcome goes back to the engine through ``report``.

Concurrency: a per-handler ``CapacityLimiter`` (``max_concurrency`` at registration) and the
runtime's global one (``max_handler_concurrency``). A call waiting on a limiter, sleeping on the
runtime clock or waiting for a child execution is not busy (virtual time may jump meanwhile).

Interface: :meth:`HandlerCalls.start`, :class:`ActivityQueue`. Imports ``engine.handlers``,
``engine.tasks``, ``engine.nested``, ``engine.live`` and the core's effects.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import Any, Protocol, final

import anyio
import structlog
from anyio.abc import TaskGroup

from runtime.core.decide import is_activity
from runtime.core.effects import (
    ITEM_READER,
    MAP_RUN_CHILD,
    RESULT_WRITER,
    MapRunChild,
    RunTask,
    TaskOutcome,
)
from runtime.core.state import Phase
from runtime.engine.clock import Clock
from runtime.engine.handlers import HandlerRegistry
from runtime.engine.live import Live
from runtime.engine.maprun import (
    STARTS_AT_ONCE,
    FifoBudget,
    MapRunHost,
    StartSlots,
    run_map_child,
)
from runtime.engine.nested import is_nested, run_nested
from runtime.engine.tasks import Outcome, call_handler, within_timeout
from runtime.errors import InternalError

log = structlog.get_logger("statemill.engine")


class ActivityHost(Protocol):
    """What handing out activity tasks needs from the engine."""

    @property
    def live(self) -> dict[str, Live]: ...

    @property
    def parked(self) -> dict[str, tuple[float, str]]: ...

    async def revive(self, arn: str) -> None: ...

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
    ) -> None: ...


@final
class ActivityQueue:
    """Activity ARN -> scheduled activity tasks not yet handed to a worker, oldest first."""

    __slots__ = ("_ready", "published", "tasks")

    def __init__(self) -> None:
        self.tasks: dict[str, collections.deque[tuple[str, RunTask]]] = {}
        self._ready: dict[str, asyncio.Event] = {}
        self.published: Callable[[str, RunTask], None] | None = None
        """Told of every task queued (a cluster publishes them for workers of any member)."""

    def put(self, execution_arn: str, task: RunTask) -> None:
        """Queue ``task`` of ``execution_arn`` for a worker of its activity."""
        self.tasks.setdefault(task.resource, collections.deque()).append((execution_arn, task))
        self._ready.setdefault(task.resource, asyncio.Event()).set()
        if self.published is not None:
            self.published(execution_arn, task)

    async def take_token(
        self, host: ActivityHost, activity_arn: str, task_token: str, worker_name: str
    ) -> RunTask | None:
        """Hand the queued task of ``task_token`` to a worker (once), or None if it is not
        waiting for one (handed out, timed out, stopped: a stale claim)."""
        queue = self.tasks.get(activity_arn, collections.deque())
        for queued in list(queue):
            arn, task = queued
            if task.task_token != task_token:
                continue
            queue.remove(queued)
            if arn in host.parked:
                await host.revive(arn)
            return task if self._hand(host, arn, task, worker_name) else None
        return None

    def _hand(self, host: ActivityHost, arn: str, task: RunTask, worker_name: str) -> bool:
        """Hand ``task`` of execution ``arn`` to a worker if it still waits for one, and tell
        the engine it started; False for a stale entry."""
        live = host.live.get(arn)
        frame = None if live is None else live.state.frames.get(task.frame)
        if (
            live is None
            or frame is None
            or frame.phase != Phase.SCHEDULED
            or frame.task_token is None
            or frame.task_token != task.task_token
            or frame.task_token in live.handed
        ):
            return False  # timed out, stopped, redone or handed out meanwhile
        live.handed.add(frame.task_token)
        started = {"workerName": worker_name}
        host.report(
            arn, task.frame, task.scheduled_id, "started", started, task_token=task.task_token
        )
        return True

    def pop(self, activity_arn: str) -> tuple[str, RunTask] | None:
        """The oldest queued task of ``activity_arn`` (maybe stale: the caller checks)."""
        queue = self.tasks.get(activity_arn)
        return queue.popleft() if queue else None

    async def take(
        self, host: ActivityHost, activity_arn: str, worker_name: str, timeout: float
    ) -> RunTask | None:
        """Hand the oldest pending task of ``activity_arn`` to a worker (once), waiting up to
        ``timeout`` wall-clock seconds for one (GetActivityTask's long poll); ``host`` (the
        engine) revives a parked execution and is told the task has started."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while (queued := self.pop(activity_arn)) is not None:
                arn, task = queued
                if arn in host.parked:
                    try:
                        await host.revive(arn)
                    except BaseException:
                        # The long poll was cancelled (the worker went away) or the read
                        # failed: the task goes back to the front, for the next worker.
                        self.tasks[activity_arn].appendleft(queued)
                        raise
                if self._hand(host, arn, task, worker_name):
                    return task
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await self.wait(activity_arn, remaining)

    async def wait(self, activity_arn: str, seconds: float) -> None:
        """Wait up to ``seconds`` of wall-clock time for a task of ``activity_arn``."""
        ready = self._ready.setdefault(activity_arn, asyncio.Event())
        ready.clear()
        with anyio.move_on_after(seconds):
            await ready.wait()


@final
class HandlerCalls:
    """Starts handler calls in the engine's task group, within their concurrency limits."""

    def __init__(
        self,
        handlers: HandlerRegistry,
        clock: Clock,
        busy: Callable[[int], None],
        report: Callable[..., None],
        *,
        max_handler_concurrency: int | None,
        nested_host: MapRunHost | None,
        max_map_run_input_bytes: int | None = None,
        finished: Callable[[Live], None] = lambda live: None,
    ) -> None:
        self.handlers = handlers
        self.clock = clock
        self._busy = busy
        self._report = report
        self._finished = finished
        """Told when a call of an execution is over (it may now be idle: parked on a timer)."""
        self.nested_host = nested_host
        """Runs ``states:startExecution`` Tasks and Map Runs' child executions (the Runtime's;
        None: they find no handler)."""
        self.activities = ActivityQueue()
        self._global_limit = (
            anyio.CapacityLimiter(max_handler_concurrency) if max_handler_concurrency else None
        )
        self._handler_limits: dict[str, anyio.CapacityLimiter] = {}
        self._child_starts = StartSlots(STARTS_AT_ONCE)
        self._max_map_run_input_bytes = max_map_run_input_bytes
        self.child_inputs: dict[str, FifoBudget] = {}
        """Map Run ARN -> the bytes of the inputs of its children started and not ended
        (while any is held)."""
        self.tg: TaskGroup | None = None
        """The engine's task group, set while the engine runs (calls start only then)."""

    def start(self, live: Live, task: RunTask) -> None:
        """Run ``task`` of ``live`` (counted busy until it is done)."""
        if is_activity(task.resource):
            # No handler: the task waits for a worker's GetActivityTask.
            self.activities.put(live.record.execution_arn, task)
            return
        if self.tg is None:
            raise InternalError("engine is not running")
        if task.resource in (ITEM_READER, RESULT_WRITER) and task.scheduled_id in live.running:
            return  # asked again by a later decision while it is under way
        self._busy(+1)
        # A raw asyncio task, not ``tg.start_soon``: this is the hot path of every handler
        # call (``benchmarks handlers``), and an anyio task with its own cancel scope cost ~25%
        # more CPU per execution of two instant Tasks (issue 10, measured 1,980 vs 2,990
        # executions per CPU-second). Owned all the same: ``Live.running`` holds it; it is
        # cancelled when its execution ends or is stopped and when the runtime closes.
        running = asyncio.ensure_future(self._run(live, task))
        live.running[task.scheduled_id] = running

        def done(_: asyncio.Task[None]) -> None:
            # In a done callback, not in ``_run``'s ``finally``: a call cancelled before its
            # first step never runs that ``finally`` (issue 11: a decision that scheduled a
            # Task and ended the execution left the busy count at 1, so virtual time froze).
            live.running.pop(task.scheduled_id, None)
            self._busy(-1)
            self._finished(live)

        running.add_done_callback(done)

    async def _run(self, live: Live, task: RunTask) -> None:
        """One handler call; a failure of the shell around it (a store error while a nested
        execution starts, a bug here) fails the Task with ``States.Runtime`` rather than leave
        the execution waiting for a result that never comes (review)."""
        try:
            await self._call(live, task)
        except Exception as exc:
            log.exception("engine.task_call_failed", execution=live.record.execution_arn)
            cause = f"Statemill could not run the task: {type(exc).__name__}: {exc}"
            self._report(
                live.record.execution_arn,
                task.frame,
                task.scheduled_id,
                "failed",
                None,
                "States.Runtime",
                cause,
            )

    async def _call(self, live: Live, task: RunTask) -> None:
        arn = live.record.execution_arn
        host = self.nested_host
        if host is not None and task.resource == ITEM_READER:
            # A Map's next items: I/O on the object store, not a handler.
            outcome, output, error, cause = await host.read_items(arn, task)
        elif host is not None and task.resource == RESULT_WRITER:
            outcome, output, error, cause = await host.write_results(arn, task)
        elif host is not None and task.resource == MAP_RUN_CHILD:
            # A Map Run's child execution: waiting on it is not busy either.
            self._busy(-1)
            try:
                ran = await run_map_child(
                    task,
                    host,
                    parent=arn,
                    starts=self._child_starts,
                    budget=self._input_budget(task),
                    report=lambda ended: self._child_ended(live, task, ended),
                )
            finally:
                self._busy(+1)
            if ran is None:  # reported when the child ends
                live.awaited.add(task.scheduled_id)
                return
            outcome, output, error, cause = ran
        elif host is not None and is_nested(task.resource):
            # A built-in resource: waiting on a child is not busy (the child's work is).
            self._busy(-1)
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
                self._busy(+1)
        else:
            limiter = self._limiter_for(task.handler_name)
            async with _Limits(self._busy, limiter, self._global_limit):
                outcome, output, error, cause = await call_handler(
                    task,
                    self.handlers,
                    self.clock,
                    execution_arn=arn,
                    state_machine_arn=live.record.state_machine_arn,
                    sleep=self._idle_sleep,
                )
        self._report(arn, task.frame, task.scheduled_id, outcome, output, error, cause)

    def _input_budget(self, task: RunTask) -> FifoBudget:
        """The input budget of the Map Run ``task`` starts a child of."""
        assert isinstance(task.input, MapRunChild)
        map_run_arn = task.input.map_run_arn
        budget = self.child_inputs.get(map_run_arn)
        if budget is None:

            def forget() -> None:
                self.child_inputs.pop(map_run_arn, None)

            budget = FifoBudget(self._max_map_run_input_bytes, on_idle=forget)
            self.child_inputs[map_run_arn] = budget
        return budget

    def _child_ended(self, live: Live, task: RunTask, ended: Outcome) -> None:
        """A Map Run's child execution ended: its outcome is the iteration's."""
        live.awaited.discard(task.scheduled_id)
        arn = live.record.execution_arn
        self._report(arn, task.frame, task.scheduled_id, *ended)
        self._finished(live)

    def open_map_run(self, execution_arn: str, map_run_arn: str) -> None:
        """A Map Run started: record it (DescribeMapRun and ListMapRuns find it)."""
        if self.nested_host is not None:
            self.nested_host.open_map_run(execution_arn, map_run_arn)

    def stop_map_run(self, map_run_arn: str) -> None:
        """A Map Run ended before its children (failed, aborted, its execution ended): stop
        those still running, as AWS aborts them."""
        if self.nested_host is not None:
            self.nested_host.stop_map_run(map_run_arn)

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
        self._busy(-1)
        try:
            await self.clock.sleep_until(self.clock.now() + seconds)
        finally:
            self._busy(+1)


class _Limits:
    """Hold a handler call's limiters (per handler, then global).

    A call queued on a limiter is not busy: it waits for another call to finish, so on virtual
    time the clock may jump meanwhile.
    """

    def __init__(
        self, busy: Callable[[int], None], *limiters: anyio.CapacityLimiter | None
    ) -> None:
        self.busy = busy
        self.limiters = [limiter for limiter in limiters if limiter is not None]
        self.held: list[anyio.CapacityLimiter] = []

    async def __aenter__(self) -> None:
        try:
            for limiter in self.limiters:
                try:
                    limiter.acquire_nowait()
                except anyio.WouldBlock:
                    self.busy(-1)
                    try:
                        await limiter.acquire()
                    finally:
                        self.busy(+1)
                self.held.append(limiter)
        except BaseException:
            # Cancelled while queued on the second limiter (a stop, the execution ending):
            # ``__aexit__`` never runs, so give back what is held, or that handler's slot is
            # gone for good (review: with max_concurrency=1 it never ran again).
            await self.__aexit__()
            raise

    async def __aexit__(self, *exc: object) -> None:
        for limiter in reversed(self.held):
            limiter.release()
        self.held.clear()
