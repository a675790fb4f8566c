"""Running a store: one execution run to its end (``statemill run``), and a worker
(``statemill worker``) with its status line.

:func:`run_execution` and :func:`serve` run a ``Runtime`` on the store (they create a SQLite
file that does not exist). What only reads or records in a store is
:mod:`runtime.tools.store_ops`.

Imports the public ``runtime`` API and the standard library (plus anyio).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final, final

import anyio

from runtime import HandlerRegistry, Runtime, StatemillError
from runtime.core.state import ExecutionState, Phase
from runtime.items import ObjectStore
from runtime.tools.stores import runtime_store

__all__ = [
    "FAILED_STATUSES",
    "WorkerStatus",
    "ended_counts",
    "run_execution",
    "serve",
    "waits_for",
    "worker_status",
]

JSON = Any


async def run_execution(
    definition: str,
    execution_input: JSON,
    *,
    store: str,
    handlers: HandlerRegistry,
    machine_type: str = "STANDARD",
    name: str | None = None,
    history: bool = False,
    virtual_time: bool = False,
) -> dict[str, JSON]:
    """Create the state machine, run one execution to its end; returns what ``statemill run``
    prints: ``executionArn``, ``status``, ``output``, ``error``, ``cause`` (and ``history``).

    Raises:
        StatemillError: e.g. ``InvalidDefinition``, ``InvalidExecutionInput``.
    """
    failure: StatemillError
    async with (
        runtime_store(store, memory=True) as opened,
        Runtime(
            store=opened,
            handlers=handlers,
            virtual_time=virtual_time,
            # A history of an EXPRESS run: keep its log (EXPRESS logs are in memory by default).
            express_history="durable" if history else "memory",
        ) as runtime,
    ):
        # Caught inside the block: leaving it with an exception would wrap it in the runtime's
        # task group's ExceptionGroup.
        try:
            done = await runtime.run(definition, execution_input, type=machine_type, name=name)
            result: dict[str, JSON] = {
                "executionArn": done.execution_arn,
                "status": done.status,
                "output": done.output_value,
                "error": done.error,
                "cause": done.cause,
            }
            if history:
                events = await runtime.get_execution_history(done.execution_arn)
                result["history"] = [event.to_aws() for event in events]
            return result
        except StatemillError as exc:
            failure = exc
    raise failure


async def serve(
    path: str,
    handlers: HandlerRegistry,
    *,
    poll: float,
    exit_when_idle: bool = False,
    status_interval: float = 0.0,
    report: Callable[[str], None] | None = None,
    lease_ttl: float = 10.0,
    object_store: ObjectStore | None = None,
) -> dict[str, JSON]:
    """Run a runtime on the store: resume its executions, apply requests every ``poll`` seconds
    (``object_store``: where distributed Maps read items and write results).

    Every ``status_interval`` seconds (0: never) ``report`` gets a :class:`WorkerStatus` line.
    With ``exit_when_idle``, return ``{"status": "idle"}`` once nothing can move without outside
    input: no request is pending and every running execution waits only for a task token or an
    activity worker (those are listed under ``"waiting"``: ARN and what it waits for), on two
    checks in a row (a request applied in between could still be on its way to the log). Else
    run until cancelled.
    """
    async with (
        runtime_store(path) as store,
        Runtime(
            store,
            handlers=handlers,
            request_poll_interval=poll,
            lease_ttl=lease_ttl,
            object_store=object_store,
        ) as runtime,
    ):
        ended = ended_counts(runtime)
        next_status = time.monotonic() + status_interval
        written, written_at = runtime.engine.events_written, time.monotonic()
        idle_checks = 0
        while True:
            await anyio.sleep(poll)
            if report is not None and status_interval > 0 and time.monotonic() >= next_status:
                status = await worker_status(runtime, ended)
                now, total = time.monotonic(), runtime.engine.events_written
                rate = (total - written) / max(now - written_at, 1e-9)
                written, written_at = total, now
                report(replace(status, events_per_second=rate).line())
                next_status = time.monotonic() + status_interval
            if not exit_when_idle:
                continue
            if await runtime.apply_requests() > 0:
                idle_checks = 0
                continue
            status = await worker_status(runtime, ended)
            idle_checks = idle_checks + 1 if status.is_idle else 0
            if idle_checks >= 2:
                done: dict[str, JSON] = {"status": "idle"}
                if status.waiting:
                    done["waiting"] = [
                        {"executionArn": arn, "waitsFor": what} for arn, what in status.waiting
                    ]
                return done


#: Statuses counted as failed in the worker's status line.
FAILED_STATUSES: Final = ("FAILED", "TIMED_OUT", "ABORTED")


@final
@dataclass(frozen=True, kw_only=True)
class WorkerStatus:
    """What the executions a worker holds wait for, and how many ended since it started."""

    running: int = 0
    in_handlers: int = 0
    """Running executions with a handler call in flight."""
    on_timers: int = 0
    """Running executions with only a durable timer ahead (a Wait state, a retry backoff)."""
    waiting: tuple[tuple[str, str], ...] = ()
    """(ARN, what it waits for) of the executions that wait only for outside input."""
    succeeded: int = 0
    failed: int = 0
    """Executions that ended since the worker started (failed: FAILED, TIMED_OUT, ABORTED)."""
    calls: int = 0
    """Handler calls in flight."""
    events_per_second: float = 0.0
    """History events committed per second since the last status line."""

    @property
    def is_idle(self) -> bool:
        """Nothing can move without outside input (a task token answered, an activity taken)."""
        return self.running == len(self.waiting)

    def line(self) -> str:
        """The status line: ``3 running (1 in a handler, 1 on a timer, 1 waiting for input),
        5 succeeded, 1 failed since start``."""
        moving = self.running - self.in_handlers - self.on_timers - len(self.waiting)
        parts = [
            f"{self.in_handlers} in a handler",
            f"{self.on_timers} on a timer",
            f"{len(self.waiting)} waiting for a task token or activity",
        ]
        if moving:
            parts.append(f"{moving} moving")
        return (
            f"{self.running} running ({', '.join(parts)}), {self.succeeded} succeeded, "
            f"{self.failed} failed since start; {self.calls} handler calls in flight, "
            f"{self.events_per_second:,.0f} events/s committed"
        )


def waits_for(state: ExecutionState) -> tuple[str, ...] | None:
    """What a running execution waits for that only outside input gives: one entry per
    waiting Task (``task token in 'State'``, ``activity in 'State'``); ``None`` when it can
    move by itself (a handler runs, a timer is armed, a transition is due)."""
    outside: list[str] = []
    for frame in state.frames.values():
        if frame.phase in (Phase.DONE, Phase.REPORTED, Phase.CHILDREN):
            continue
        waiting_task = frame.phase in (Phase.SCHEDULED, Phase.STARTED)
        if waiting_task and frame.task_token_activity:
            outside.append(f"activity in {frame.state!r}")
        elif waiting_task and frame.task_token is not None and frame.task_submitted:
            outside.append(f"task token in {frame.state!r}")
        else:
            return None
    return tuple(outside) or None


def _in_handler(state: ExecutionState) -> bool:
    return any(
        frame.phase is Phase.STARTED and not frame.task_submitted and not frame.task_token_activity
        for frame in state.frames.values()
    )


def _on_timer(runtime: Runtime, arn: str, state: ExecutionState) -> bool:
    """A frame waits for a retry's backoff, or in a Wait state (entered, with a timer armed:
    a frame stays entered between decisions only there)."""
    frames = state.frames.values()
    if any(frame.phase is Phase.RETRY_WAIT for frame in frames):
        return True
    return runtime.engine.timer_armed(arn) and any(frame.phase is Phase.ENTERED for frame in frames)


def ended_counts(runtime: Runtime) -> tuple[int, int]:
    """(succeeded, failed) executions that ended in this runtime since it opened."""
    ended = runtime.engine.ended
    return ended["SUCCEEDED"], sum(ended[status] for status in FAILED_STATUSES)


async def worker_status(runtime: Runtime, ended_at_start: tuple[int, int]) -> WorkerStatus:
    """The :class:`WorkerStatus` of the executions this runtime holds, from its memory: the
    executions held there, those parked on a timer counted (a million parked executions are
    not read), the few parked on a waiting Task's timeout folded (``Runtime.held_states``).
    In a cluster: this member's executions."""
    engine = runtime.engine
    in_handlers = on_timers = 0
    waiting: list[tuple[str, str]] = []
    for execution, state in await runtime.held_states():
        outside = waits_for(state)
        if outside is not None:
            waiting.append((execution.execution_arn, ", ".join(outside)))
        elif _in_handler(state):
            in_handlers += 1
        elif _on_timer(runtime, execution.execution_arn, state):
            on_timers += 1
    succeeded, failed = ended_counts(runtime)
    return WorkerStatus(
        running=engine.open_count(),
        in_handlers=in_handlers,
        on_timers=on_timers + engine.parked_on_timers(),
        waiting=tuple(sorted(waiting)),
        succeeded=succeeded - ended_at_start[0],
        failed=failed - ended_at_start[1],
        calls=engine.handler_calls(),
    )
