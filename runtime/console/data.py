"""What the console's pages show, gathered from a running ``Runtime``: pure views of its data.

- :func:`executions_page`: one page of executions, newest first, filtered by state machine,
  status, name prefix and start time, with a keyset cursor (the start date and ARN of the last
  row shown) so a page never repeats or skips a row while new executions start.
- :func:`waiting_tasks`: the Tasks that wait for a task token or an activity worker.
- :func:`visits` and :func:`event_rows`: an execution's history as state visits (input,
  output, variables, error and cause, the retry and catch story) and as AWS's console's event
  table (id, type, step, resource, elapsed time, timestamp, details).

Imports the public ``runtime`` API, ``runtime.core`` (folding a history) and the tools.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from runtime import ExecutionDescription, HistoryEvent, Runtime
from runtime.core.evolve import TASK_FAILED_TYPES, evolve
from runtime.core.state import ExecutionState, Frame, Phase
from runtime.tools.aws_history import loads_text

__all__ = [
    "EXECUTION_STATUSES",
    "EventRow",
    "ExecutionFilter",
    "ExecutionsPage",
    "Visit",
    "WaitingTask",
    "decode_cursor",
    "encode_cursor",
    "event_rows",
    "executions_page",
    "visits",
    "waiting_task",
    "waiting_tasks",
]

JSON = Any

#: The statuses ListExecutions filters by.
EXECUTION_STATUSES: Final = (
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "ABORTED",
    "PENDING_REDRIVE",
)

#: Most rows one read of the executions page asks the store for.
_MAX_SCAN: Final = 10_000
#: Most running executions of other members of a cluster the waiting-tasks page looks into
#: (each is folded from its log; this member's are read from memory).
MAX_SCANNED_RUNNING: Final = 500

#: Events that say a state failed: a Task attempt's failures (as evolve knows them) and the
#: failures of the states themselves.
_FAILURE_TYPES: Final = TASK_FAILED_TYPES | {
    "EvaluationFailed",
    "MapStateFailed",
    "ParallelStateFailed",
    "FailStateEntered",
}


# -- executions -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ExecutionFilter:
    """What the executions page shows: all fields optional."""

    state_machine_arn: str | None = None
    status: str | None = None
    name_prefix: str | None = None
    started_after: float | None = None
    """Epoch seconds, inclusive."""
    started_before: float | None = None
    """Epoch seconds, exclusive."""

    def matches(self, execution: ExecutionDescription) -> bool:
        if self.name_prefix and not execution.name.startswith(self.name_prefix):
            return False
        if self.started_after is not None and execution.start_date < self.started_after:
            return False
        return self.started_before is None or execution.start_date < self.started_before


@dataclass(frozen=True, kw_only=True)
class ExecutionsPage:
    executions: list[ExecutionDescription]
    next_cursor: str | None


def encode_cursor(execution: ExecutionDescription, offset: int) -> str:
    """The cursor after ``execution``: its sort key (start date, ARN), and an offset that
    cursors of earlier versions used (written as 0, ignored)."""
    raw = json.dumps([execution.start_date, execution.execution_arn, offset])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str, int] | None:
    """The (start date, ARN, offset) of a cursor, or None for a cursor this console did not
    write (a bad cursor shows the first page, never an error page)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], int | float)
        and isinstance(value[1], str)
        and isinstance(value[2], int)
        and value[2] >= 0
    ):
        return float(value[0]), value[1], value[2]
    return None


async def executions_page(
    runtime: Runtime, query: ExecutionFilter, cursor: str | None, size: int
) -> ExecutionsPage:
    """One page of the executions ``query`` selects, newest first, after ``cursor``.

    Read from the store by keyset (``list_executions(after=(start date, ARN))``), so a deep
    page costs what the first does and executions started meanwhile never shift a page. Status
    and state machine are filtered by the store (its indexes); name prefix and time here, the
    read growing (from where it stopped) until the page is full.
    """
    after = decode_cursor(cursor) if cursor else None
    key = None if after is None else (after[0], after[1])
    rows: list[ExecutionDescription] = []
    scan = size + 1
    while True:
        listed = await runtime.list_executions(
            query.state_machine_arn, status_filter=query.status, after=key, max_results=scan
        )
        for execution in listed:
            if query.matches(execution):
                rows.append(execution)
                if len(rows) > size:
                    break
        if len(rows) > size or len(listed) < scan:
            break
        key = (listed[-1].start_date, listed[-1].execution_arn)
        scan = min(scan * 2, _MAX_SCAN)
    page = rows[:size]
    more = len(rows) > size
    next_cursor = encode_cursor(page[-1], 0) if more and page else None
    return ExecutionsPage(executions=page, next_cursor=next_cursor)


# -- waiting tasks --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WaitingTask:
    """A Task waiting for a task token's answer or an activity worker."""

    execution_arn: str
    execution_name: str
    state_machine_arn: str
    frame: str
    state_name: str
    kind: str
    """``"task token"`` or ``"activity"``."""
    input: JSON
    since: float
    task_token: str
    """Never shown: the Approve and Reject forms name the execution and frame instead."""


def _waiting(frame: Frame) -> str | None:
    if frame.task_token is None or frame.phase not in (Phase.SCHEDULED, Phase.STARTED):
        return None
    if frame.task_token_activity:
        return "activity"
    return "task token" if frame.task_submitted else None


def _tasks_of(execution: ExecutionDescription, state: ExecutionState) -> list[WaitingTask]:
    out = []
    for frame in state.frames.values():
        kind = _waiting(frame)
        if kind is not None and frame.task_token is not None:
            out.append(
                WaitingTask(
                    execution_arn=execution.execution_arn,
                    execution_name=execution.name,
                    state_machine_arn=execution.state_machine_arn,
                    frame=frame.id,
                    state_name=frame.state or "",
                    kind=kind,
                    input=frame.task_input,
                    since=frame.task_scheduled_at,
                    task_token=frame.task_token,
                )
            )
    return out


async def waiting_tasks(runtime: Runtime, execution_arn: str | None = None) -> list[WaitingTask]:
    """The Tasks that wait for an answer, oldest wait first: of one execution, or of every
    running execution this runtime holds (``Runtime.held_states``: from memory, or folded
    for the few parked on a waiting Task's timeout; the executions parked on a Wait are not
    read, however many there are). In a cluster, the other members' executions are not this
    one's: the newest running ones (at most :data:`MAX_SCANNED_RUNNING`) are folded from
    their logs."""
    found: list[WaitingTask] = []
    if execution_arn is not None:
        execution = await runtime.describe_execution(execution_arn)
        if execution.status == "RUNNING":
            found = _tasks_of(execution, await runtime.state_of(execution_arn))
        return found
    held = await runtime.held_states()
    for execution, state in held:
        found.extend(_tasks_of(execution, state))
    if runtime.cluster is not None:
        mine = {execution.execution_arn for execution, _ in held}
        listed = await runtime.list_executions(
            status_filter="RUNNING", max_results=MAX_SCANNED_RUNNING
        )
        for execution in listed:
            if execution.execution_arn not in mine:
                state = await runtime.state_of(execution.execution_arn)
                found.extend(_tasks_of(execution, state))
    found.sort(key=lambda task: (task.since, task.execution_arn, task.frame))
    return found


async def waiting_task(runtime: Runtime, execution_arn: str, frame: str) -> WaitingTask | None:
    """The Task of ``frame`` in the execution if it waits for an answer now."""
    for task in await waiting_tasks(runtime, execution_arn):
        if task.frame == frame:
            return task
    return None


# -- an execution's history -----------------------------------------------------------------------


@dataclass
class Attempt:
    """A failure of a state visit and what came of it."""

    event_id: int
    type: str
    error: str | None
    cause: str | None
    outcome: str
    """``"retried"`` (with ``delay``), ``"caught"`` (with ``next``) or ``"failed"``."""
    delay: float | None = None
    next: str | None = None


@dataclass
class Visit:
    """One entry into a state: what it got, gave and what went wrong on the way."""

    name: str
    frame: str
    entered_id: int
    type: str
    input: JSON = None
    output: JSON = None
    exited: bool = False
    variables: dict[str, JSON] = field(default_factory=dict)
    failures: list[Attempt] = field(default_factory=list)


def visits(events: Sequence[HistoryEvent]) -> list[Visit]:
    """Every state visit in entry order: input, output, the variables in scope after it, and
    each failure with its fate (retried after a delay, caught into the next state, or the
    execution's end)."""
    state = ExecutionState()
    out: list[Visit] = []
    current: dict[str, Visit] = {}
    for event in events:
        evolve(state, event)
        kind = event.type
        details = event.details
        frame = event.frame
        if kind.endswith("StateEntered"):
            previous = current.get(frame)
            name = str(details.get("name", ""))
            if previous is not None and previous.failures:
                last = previous.failures[-1]
                if last.outcome == "caught" and last.next is None:
                    last.next = name
            visit = Visit(
                name=name,
                frame=frame,
                entered_id=event.id,
                type=kind.removesuffix("StateEntered"),
                input=loads_text(details.get("input")),
            )
            out.append(visit)
            current[frame] = visit
            if kind == "FailStateEntered":
                continue
        visit_now = current.get(frame)
        if visit_now is None:
            continue
        if kind.endswith("StateExited"):
            visit_now.output = loads_text(details.get("output"))
            visit_now.exited = True
            state_frame = state.frames.get(frame)
            visit_now.variables = dict(state_frame.variables) if state_frame is not None else {}
            for attempt in visit_now.failures:
                if attempt.outcome == "failed":
                    attempt.outcome = "caught"
        elif kind in _FAILURE_TYPES and kind != "FailStateEntered":
            delay = details.get("statemillRetryDelay")
            visit_now.failures.append(
                Attempt(
                    event_id=event.id,
                    type=kind,
                    error=_text(details.get("error", details.get("statemillError"))),
                    cause=_text(details.get("cause", details.get("statemillCause"))),
                    outcome="failed" if delay is None else "retried",
                    delay=None if delay is None else float(delay),
                )
            )
    return out


def _text(value: JSON) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, kw_only=True)
class EventRow:
    """One row of the event table, as AWS's console shows it."""

    id: int
    type: str
    step: str
    resource: str
    elapsed_ms: float
    timestamp: float
    details: dict[str, JSON]
    is_error: bool


def event_rows(events: Sequence[HistoryEvent]) -> list[EventRow]:
    """The event table: the step is the state the event belongs to, elapsed time counts from
    the execution's start, details are the public ``<type>EventDetails`` (JSON text decoded)."""
    names: dict[str, str] = {}
    start = events[0].timestamp if events else 0.0
    rows = []
    for event in events:
        details = event.details
        if event.type.endswith("StateEntered"):
            names[event.frame] = str(details.get("name", ""))
        step = "" if event.type.startswith("Execution") else names.get(event.frame, "")
        public = {
            key: loads_text(value) if key in ("input", "output", "parameters") else value
            for key, value in details.items()
            if not key.startswith("statemill")
        }
        resource = details.get("resource", details.get("resourceType", ""))
        rows.append(
            EventRow(
                id=event.id,
                type=event.type,
                step=step,
                resource=str(resource or ""),
                elapsed_ms=(event.timestamp - start) * 1000.0,
                timestamp=event.timestamp,
                details=public,
                is_error="error" in details
                or event.type.endswith(("Failed", "TimedOut", "Aborted")),
            )
        )
    return rows


def iso(timestamp: float | None) -> str:
    """UTC ISO time to the millisecond (empty for None)."""
    if timestamp is None:
        return ""
    moment = _dt.datetime.fromtimestamp(timestamp, _dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
