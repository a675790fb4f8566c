"""Debugging by replay: step through a log, check a new definition, diagnose a failure.

Three pure functions over a recorded history (a list of ``HistoryEvent``):

- :func:`replay` folds the log event by event and yields a :class:`Step` per event: the event, the
  ASL state it belongs to, that state's input/output, the error and retries, and the whole
  ``ExecutionState`` after the event (every frame of Parallel branches and Map iterations).
- :func:`check` re-decides every recorded step with a (changed) definition and reports either
  "compatible" or the first event where the new definition would have done something else.
- :func:`diagnose` names the state behind a failed execution, its input, error and retries.

How ``check`` rebuilds the incomings (the log does not record them): the events are cut into
decisions. At each decision boundary, if the next recorded event is a Task/Lambda/Activity
``Succeeded``/``Failed``/``TimedOut`` event, the incoming is the ``TaskResult`` it records (its
frame, the frame's scheduled event, the output or error/cause); an ``ExecutionAborted`` is a
``StopRequested`` (as are the ``*Aborted`` events of Map/Parallel children logged before it);
anything else is a ``Wake`` at the event's timestamp. The new decision's events
are compared *structurally* with the recorded ones (type, frame, state name, chosen next state,
error, whether a retry was chosen), never the values drawn from the unrecorded seed (jitter delays,
``States.UUID``, request ids). Recorded events no decision emits (written by the shell: callbacks,
child executions ...) are applied as they are. The state that the next decision starts from is
always the fold of the *recorded* prefix, so one divergence does not cascade.

AWS's history JSON (``from_aws``, ``load_history``, ``to_aws_history``) is
:mod:`runtime.tools.aws_history`'s.

Pure: imports only the standard library, msgspec, ``core``, ``definition.model`` (the compiled
definition it re-decides with) and ``tools.aws_history``; ``runtime/__init__.py`` re-exports
``replay``, ``check``, ``diagnose`` and their result types, so this module never imports the
public ``runtime`` package (that would be a cycle).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import msgspec

from runtime.core.decide import decide
from runtime.core.effects import Incoming, MapRunUpdate, StopRequested, TaskResult, Wake
from runtime.core.events import PRIVATE_PREFIX, HistoryEvent
from runtime.core.evolve import evolve, fold
from runtime.core.state import ExecutionState, Frame, Phase
from runtime.definition.model import StateMachine
from runtime.tools.aws_history import loads_text

__all__ = [
    "CheckResult",
    "Divergence",
    "Failure",
    "Step",
    "check",
    "diagnose",
    "replay",
]

JSON = Any

_SUCCEEDED: Final = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded"})
_FAILED: Final = frozenset({"TaskFailed", "LambdaFunctionFailed", "ActivityFailed"})
_TIMED_OUT: Final = frozenset({"TaskTimedOut", "LambdaFunctionTimedOut", "ActivityTimedOut"})
_SCHEDULED: Final = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"})
_RESULT_TYPES: Final = _SUCCEEDED | _FAILED | _TIMED_OUT

#: Event types ``decide`` writes; any other recorded event came from the shell and is applied as is.
_DECIDED_TYPES: Final = frozenset(
    {
        "EvaluationFailed",
        "ExecutionAborted",
        "ExecutionFailed",
        "ExecutionSucceeded",
        "ExecutionTimedOut",
        "MapIterationAborted",
        "MapIterationFailed",
        "MapIterationStarted",
        "MapIterationSucceeded",
        "MapRunAborted",
        "MapRunFailed",
        "MapRunRedriven",
        "MapRunStarted",
        "MapRunSucceeded",
        "MapRunUpdated",
        "MapStateAborted",
        "MapStateFailed",
        "MapStateStarted",
        "MapStateSucceeded",
        "ParallelStateAborted",
        "ParallelStateFailed",
        "ParallelStateStarted",
        "ParallelStateSucceeded",
        *_SCHEDULED,
        "TaskStarted",
        "LambdaFunctionStarted",
        *_RESULT_TYPES,
    }
)


def _is_decided(kind: str) -> bool:
    return kind in _DECIDED_TYPES or kind.endswith(("StateEntered", "StateExited"))


# -- replay ---------------------------------------------------------------------------------------


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One event of a replayed execution and what it tells.

    ``state`` is a deep copy of the execution after the event (``ExecutionState.snapshot``).
    """

    index: int
    """Position in the history (0-based); ``event.id`` is the AWS event id."""
    event: HistoryEvent
    state_name: str | None
    """The ASL state the event belongs to (``None`` for execution-level events)."""
    input: JSON = None
    """The state's raw input (``*StateEntered``) or the Task's effective input (``*Scheduled``)."""
    output: JSON = None
    """The state's output (``*StateExited``), a Task's result or the execution's output."""
    error: str | None = None
    cause: str | None = None
    attempt: int = 0
    """For a Task event: the attempt number (0 = first; a retry is attempt 1, 2 ...)."""
    retry_delay: float | None = None
    """For a failure a retrier applies to: the recorded delay before the next attempt."""
    variables: dict[str, JSON] = msgspec.field(default_factory=dict)
    """The workflow variables in scope in the event's frame after the event."""
    state: ExecutionState

    def summary(self) -> dict[str, JSON]:
        """A JSON-friendly view of the step (without the full state)."""
        out: dict[str, JSON] = {
            "id": self.event.id,
            "type": self.event.type,
            "timestamp": _iso(self.event.timestamp),
            "frame": self.event.frame,
            "state": self.state_name,
        }
        for key in ("input", "output", "error", "cause", "retry_delay"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.attempt:
            out["attempt"] = self.attempt
        if self.variables:
            out["variables"] = self.variables
        return out


def replay(events: Sequence[HistoryEvent]) -> Iterator[Step]:
    """Fold ``events`` one at a time, yielding the :class:`Step` after each.

    Args:
        events: a whole history, from ``ExecutionStarted`` (ours, or :func:`from_aws`'s).
    """
    state = ExecutionState()
    names: dict[str, str] = {}
    for index, event in enumerate(events):
        frame_before = state.frames.get(event.frame)
        attempt = frame_before.retry_total if frame_before is not None else 0
        evolve(state, event)
        details = event.details
        kind = event.type
        if kind.endswith("StateEntered"):
            names[event.frame] = str(details.get("name", ""))
        name = None if kind.startswith("Execution") else names.get(event.frame)
        frame_after = state.frames.get(event.frame)
        delay = details.get("statemillRetryDelay")
        yield Step(
            index=index,
            event=event,
            state_name=name,
            input=_event_input(event),
            output=_event_output(event),
            error=details.get("error", details.get("statemillError")),
            cause=details.get("cause", details.get("statemillCause")),
            attempt=attempt,
            retry_delay=None if delay is None else float(delay),
            variables=dict(frame_after.variables) if frame_after is not None else {},
            state=state.snapshot(),
        )


def _event_input(event: HistoryEvent) -> JSON:
    details = event.details
    if event.type.endswith("StateEntered") or event.type == "ExecutionStarted":
        return loads_text(details.get("input"))
    if event.type in _SCHEDULED:
        return loads_text(details.get("parameters", details.get("input")))
    return None


def _event_output(event: HistoryEvent) -> JSON:
    details = event.details
    if event.type.endswith("StateExited") or event.type in _SUCCEEDED:
        return loads_text(details.get("output"))
    if event.type == "ExecutionSucceeded":
        return loads_text(details.get("output"))
    return None


def _iso(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).isoformat()


# -- check ----------------------------------------------------------------------------------------


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    """Where a new definition would have done something else than the recorded execution."""

    event_id: int
    """The recorded event that the new definition would not have written."""
    frame: str
    state_name: str | None
    recorded: dict[str, JSON]
    """The recorded event (type, state, next, error ...)."""
    now: dict[str, JSON] | None
    """What the new definition writes instead (``None``: nothing happens at that point)."""
    message: str
    cause: str | None = None
    """The cause of the error the new definition raises instead (e.g. a ``States.Runtime``)."""


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of :func:`check` for one execution."""

    execution_arn: str
    compatible: bool
    events_checked: int
    divergence: Divergence | None = None
    error: str | None = None
    """Set when the new definition could not be evaluated at all (e.g. it raised)."""

    def to_json(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "executionArn": self.execution_arn,
            "result": "compatible" if self.compatible else "divergent",
            "eventsChecked": self.events_checked,
        }
        if self.divergence is not None:
            out["divergence"] = msgspec.to_builtins(self.divergence)
        if self.error is not None:
            out["error"] = self.error
        return out


def _shape(event: HistoryEvent) -> dict[str, JSON]:
    """What ``check`` compares (never values drawn from the seed): type, frame, state name, next
    state, error, Map index, Task resource, and whether a retrier applied."""
    details = event.details
    out: dict[str, JSON] = {"type": event.type, "frame": event.frame}
    for key in ("name", "error", "statemillNext", "index", "resource", "resourceType"):
        if key in details:
            out[
                key.removeprefix(PRIVATE_PREFIX).lower() if key.startswith("statemill") else key
            ] = details[key]
    if event.type in _RESULT_TYPES or event.type in ("MapIterationFailed",):
        out["retried"] = "statemillRetryDelay" in details
    return out


_ABORTED: Final = frozenset(
    {
        "ExecutionAborted",
        "MapIterationAborted",
        "MapRunAborted",
        "MapStateAborted",
        "ParallelStateAborted",
    }
)


def _incoming(
    event: HistoryEvent, state: ExecutionState, following: Sequence[HistoryEvent] = ()
) -> Incoming:
    details = event.details
    if event.type in _RESULT_TYPES:
        frame = state.frames.get(event.frame)
        scheduled = frame.scheduled_id if frame is not None else 0
        if event.type in _SUCCEEDED:
            output = loads_text(details.get("output"))
            if frame is not None and _is_lambda_invoke(frame.task_input, details):
                output = output.get("Payload") if isinstance(output, dict) else output
            return TaskResult(
                now=event.timestamp,
                frame=event.frame,
                scheduled_id=scheduled,
                outcome="succeeded",
                output=output,
            )
        return TaskResult(
            now=event.timestamp,
            frame=event.frame,
            scheduled_id=scheduled,
            outcome="timed_out" if event.type in _TIMED_OUT else "failed",
            error=details.get("error"),
            cause=details.get("cause"),
        )
    if event.type in ("MapIterationSucceeded", "MapIterationFailed"):
        child = _child_run(event, state)
        if child is not None:  # a Map Run's child execution ended (logic version 3)
            succeeded = event.type == "MapIterationSucceeded"
            return TaskResult(
                now=event.timestamp,
                frame=child.id,
                scheduled_id=child.scheduled_id,
                outcome="succeeded" if succeeded else "failed",
                output=details.get("statemillOutput"),
                error=details.get("statemillError"),
                cause=details.get("statemillCause"),
            )
    if event.type == "MapRunUpdated":
        return MapRunUpdate(
            now=event.timestamp,
            map_run_arn=str(details.get("mapRunArn", "")),
            max_concurrency=details.get("statemillMaxConcurrency"),
            tolerated_failure_count=details.get("statemillToleratedFailureCount"),
            tolerated_failure_percentage=details.get("statemillToleratedFailurePercentage"),
        )
    if event.type in _ABORTED:
        # A stop: the decision aborts Map/Parallel children first, then the execution; the
        # operator's error/cause are on the ExecutionAborted that ends it.
        end = next((e for e in following if e.type == "ExecutionAborted"), event)
        return StopRequested(
            now=event.timestamp, error=end.details.get("error"), cause=end.details.get("cause")
        )
    return Wake(now=event.timestamp)


def _child_run(event: HistoryEvent, state: ExecutionState) -> Frame | None:
    """The iteration a MapIterationSucceeded/Failed ends, if it ran as a child execution."""
    owner = state.frames.get(event.frame)
    if owner is None:
        return None
    step = f"{owner.run_id}:{event.details.get('index')}"
    child = state.frames.get(f"{owner.id}/{step}" if owner.id else step)
    return child if child is not None and child.phase == Phase.CHILD_RUN else None


def _is_lambda_invoke(task_input: JSON, details: Mapping[str, JSON]) -> bool:
    return (
        details.get("resourceType") == "lambda"
        and str(details.get("resource", "")).startswith("invoke")
        and isinstance(task_input, dict)
        and "FunctionName" in task_input
    )


def check(
    definition: StateMachine, events: Sequence[HistoryEvent], execution_arn: str = ""
) -> CheckResult:
    """Re-decide every recorded step of ``events`` with ``definition``.

    Returns "compatible" when every event ``decide`` writes under ``definition`` matches the
    recorded one structurally, else the first :class:`Divergence`. A history that ends while
    running is compatible if its recorded prefix is.
    """
    arn = execution_arn
    if not events or events[0].type != "ExecutionStarted":
        return CheckResult(
            execution_arn=arn, compatible=False, events_checked=0, error="no ExecutionStarted"
        )
    state = fold(events[:1])
    arn = arn or state.execution_arn
    names: dict[str, str] = {}
    position = 1
    while position < len(events):
        event = events[position]
        if not _is_decided(event.type):
            evolve(state, event)  # written by the shell (callback, child ...): apply as is
            position += 1
            continue
        work = state.snapshot()
        try:
            decision = decide(definition, work, _incoming(event, state, events[position:]))
        except Exception as exc:  # the new definition broke evaluation: report, don't crash
            return CheckResult(
                execution_arn=arn,
                compatible=False,
                events_checked=position,
                error=f"{type(exc).__name__}: {exc}",
                divergence=_divergence(event, None, names, "deciding raised " + repr(exc)),
            )
        produced = decision.events
        if not produced:
            return CheckResult(
                execution_arn=arn,
                compatible=False,
                events_checked=position,
                divergence=_divergence(
                    event, None, names, "the new definition writes nothing at this point"
                ),
            )
        for offset, new in enumerate(produced):
            if position + offset >= len(events):
                break  # the recording ends here (a running execution)
            recorded = events[position + offset]
            if _shape(recorded) != _shape(new):
                return CheckResult(
                    execution_arn=arn,
                    compatible=False,
                    events_checked=position + offset,
                    divergence=_divergence(recorded, new, names, None),
                )
            if recorded.type.endswith("StateEntered"):
                names[recorded.frame] = str(recorded.details.get("name", ""))
            evolve(state, recorded)
        position += len(produced)
    return CheckResult(execution_arn=arn, compatible=True, events_checked=len(events))


def _divergence(
    recorded: HistoryEvent,
    new: HistoryEvent | None,
    names: Mapping[str, str],
    note: str | None,
) -> Divergence:
    name = recorded.details.get("name") if recorded.type.endswith("StateEntered") else None
    name = name or names.get(recorded.frame)
    was = _shape(recorded)
    now = _shape(new) if new is not None else None
    if note is None:
        note = f"recorded {_describe(was)}, the new definition writes {_describe(now)}"
    else:
        note = f"recorded {_describe(was)}; {note}"
    cause = None if new is None else new.details.get("cause")
    if isinstance(cause, str) and cause:
        note += f" (cause: {cause})"
    else:
        cause = None
    where = f"event {recorded.id}" + (f" (state {name!r})" if name else "")
    return Divergence(
        event_id=recorded.id,
        frame=recorded.frame,
        state_name=name,
        recorded=was,
        now=now,
        message=f"{where}: {note}",
        cause=cause,
    )


def _describe(shape: Mapping[str, JSON] | None) -> str:
    if shape is None:
        return "nothing"
    parts = [str(shape["type"])]
    if "name" in shape:
        parts.append(repr(shape["name"]))
    if "next" in shape:
        parts.append(f"-> {shape['next']!r}")
    if shape.get("error"):
        parts.append(f"error {shape['error']}")
    if shape.get("retried"):
        parts.append("(retried)")
    return " ".join(parts)


# -- diagnosis ------------------------------------------------------------------------------------


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    """Where a failed execution failed: the state that raised the error first, and its retries."""

    event_id: int
    """The failure event of the failing state (e.g. ``LambdaFunctionFailed``)."""
    state_name: str | None
    frame: str
    input: JSON
    """The failing state's input (its ``StateEntered``)."""
    error: str | None
    cause: str | None
    attempts: int
    """How many attempts the failing state made (1 = no retry)."""
    retries: tuple[tuple[int, str | None, float], ...] = ()
    """The failures a retrier handled before: (event id, error, delay before the next attempt)."""

    def lines(self) -> list[str]:
        """A human-readable summary."""
        where = f"state {self.state_name!r}" + (f" (frame {self.frame})" if self.frame else "")
        out = [
            f"FAILED in {where} at event {self.event_id}",
            f"    error:    {self.error}",
            f"    cause:    {self.cause}",
            f"    input:    {json.dumps(self.input, ensure_ascii=False)}",
            f"    attempts: {self.attempts}",
        ]
        out.extend(
            f"    retry after event {event_id}: {error} (next attempt after {delay:.3f}s)"
            for event_id, error, delay in self.retries
        )
        return out


def diagnose(events: Sequence[HistoryEvent]) -> Failure | None:
    """The failure behind a ``FAILED``/``TIMED_OUT`` execution, or ``None`` if it did not fail.

    The failing state is the first state whose unretried failure carries the execution's error
    (a Task's ``*Failed``/``*TimedOut``, a Fail state, an ``EvaluationFailed``); caught failures
    that the execution survived are skipped because their error differs or they were retried.
    """
    end = events[-1] if events else None
    if end is None or end.type not in ("ExecutionFailed", "ExecutionTimedOut"):
        return None
    error = end.details.get("error")
    entered: dict[str, HistoryEvent] = {}
    retries: dict[str, list[tuple[int, str | None, float]]] = {}
    for event in events:
        kind = event.type
        if kind.endswith("StateEntered"):
            entered[event.frame] = event
            retries[event.frame] = []
        elif kind in _FAILED | _TIMED_OUT | {"EvaluationFailed"}:
            delay = event.details.get("statemillRetryDelay")
            if delay is not None:
                retries.setdefault(event.frame, []).append(
                    (event.id, event.details.get("error"), float(delay))
                )
                continue
            if event.details.get("error") == error:
                start = entered.get(event.frame)
                done = retries.get(event.frame, [])
                return Failure(
                    event_id=event.id,
                    state_name=str(start.details.get("name")) if start else None,
                    frame=event.frame,
                    input=loads_text(start.details.get("input")) if start else None,
                    error=event.details.get("error"),
                    cause=event.details.get("cause"),
                    attempts=len(done) + 1,
                    retries=tuple(done),
                )
    start = next(
        (e for e in reversed(events) if e.type.endswith("StateEntered")), None
    )  # a Fail state, a timeout ...: the last state entered
    return Failure(
        event_id=end.id,
        state_name=str(start.details.get("name")) if start else None,
        frame=start.frame if start else "",
        input=loads_text(start.details.get("input")) if start else None,
        error=error,
        cause=end.details.get("cause"),
        attempts=1,
    )
