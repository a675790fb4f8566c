"""The values the Python API takes and returns: Step Functions' response shapes, snake_case.

Also the checks every verb shares on what it is given: names (``NAME``), JSON values turned into
text (``json_text``: bounded, never recursive) and the 256 KiB payload quota. Imports the store's
records, the definition's JSON limits and msgspec only.
"""

from __future__ import annotations

import re
from typing import Any, Final

import msgspec

from runtime.core.decide import dumps
from runtime.core.events import HistoryEvent
from runtime.definition.limits import JSONLimitError, check_json
from runtime.errors import InvalidExecutionInput
from runtime.store.base import ActivityRecord, ExecutionRecord

JSON = Any

#: A name of a state machine, execution or activity, matched whole (``NAME.fullmatch``): AWS's
#: rule, 1-80 characters with no white space, brackets ``< > { } [ ]``, wildcards ``? *``,
#: special characters ``" # % \ ^ | ~ ` $ & , ; : /``, control characters (U+0000-001F,
#: U+007F-009F, U+FFFE-FFFF) or surrogates (U+D800-DFFF). ``.`` and non-ASCII letters are valid.
NAME: Final = re.compile(
    r"[^\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]{1,80}"
)
_UNQUALIFIED_PARTS: Final = 7  # arn:aws:states:<region>:<account>:stateMachine:<name>
#: AWS's quota on an execution's input and a task's output (256 KiB of UTF-8).
MAX_INPUT_BYTES: Final = 256 * 1024


def is_qualified(arn: str) -> bool:
    """True for a version's or an alias's ARN (a state machine ARN with a qualifier)."""
    return arn.count(":") >= _UNQUALIFIED_PARTS


def split_qualified(arn: str) -> tuple[str, str | None]:
    """A state machine ARN's unqualified ARN and its qualifier (a version number or an alias
    name; ``None`` for an unqualified ARN)."""
    parts = arn.split(":")
    if len(parts) <= _UNQUALIFIED_PARTS:
        return arn, None
    return ":".join(parts[:_UNQUALIFIED_PARTS]), ":".join(parts[_UNQUALIFIED_PARTS:])


class ActivityDescription(msgspec.Struct, frozen=True, kw_only=True):
    """What ``describe_activity`` / ``list_activities`` return."""

    activity_arn: str
    name: str
    creation_date: float

    @classmethod
    def of(cls, record: ActivityRecord) -> ActivityDescription:
        return cls(activity_arn=record.arn, name=record.name, creation_date=record.creation_date)


class ActivityTask(msgspec.Struct, frozen=True, kw_only=True):
    """A task handed to an activity worker (GetActivityTask): answer with its token."""

    task_token: str
    input: str
    """JSON text, as AWS hands it."""

    @property
    def input_value(self) -> JSON:
        """The input parsed from its JSON text."""
        return msgspec.json.decode(self.input)


class StartExecutionOutput(msgspec.Struct, frozen=True, kw_only=True):
    """What ``start_execution`` returns."""

    execution_arn: str
    start_date: float


class ExecutionDescription(msgspec.Struct, frozen=True, kw_only=True):
    """What ``describe_execution`` returns (DescribeExecution's fields, snake_case)."""

    execution_arn: str
    state_machine_arn: str
    name: str
    status: str
    start_date: float
    input: str
    stop_date: float | None = None
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    redrive_count: int = 0
    map_run_arn: str | None = None
    """The Map Run the execution is a child workflow of (DescribeExecution's ``mapRunArn``)."""
    state_machine_version_arn: str | None = None
    """The version it runs, when started from a version's or an alias's ARN."""
    state_machine_alias_arn: str | None = None
    """The alias it was started through, if any."""
    quarantined: str | None = None
    """Set while the execution's state machine is quarantined (its stored definition failed
    to load on open): why the execution cannot run. Not a DescribeExecution field."""

    @property
    def output_value(self) -> JSON:
        """The output parsed from its JSON text (None when there is none)."""
        return None if self.output is None else msgspec.json.decode(self.output)

    @classmethod
    def of(cls, record: ExecutionRecord) -> ExecutionDescription:
        return cls(
            execution_arn=record.execution_arn,
            state_machine_arn=record.state_machine_arn,
            name=record.name,
            status=record.status,
            start_date=record.start_date,
            input=record.input,
            stop_date=record.stop_date,
            output=record.output,
            error=record.error,
            cause=record.cause,
            redrive_count=record.redrive_count,
            map_run_arn=record.map_run_arn,
            state_machine_version_arn=record.state_machine_version_arn,
            state_machine_alias_arn=record.state_machine_alias_arn,
        )


def json_text(value: JSON, what: str) -> str:
    """``value`` as JSON text, or ``InvalidExecutionInput`` saying why it cannot be: nested
    too deep, a non-string key, a lone surrogate (no UTF-8 form), a number beyond a double, a
    type JSON does not have (issue 11: these escaped as RecursionError, UnicodeEncodeError, or
    were silently changed). Checked without recursion before the encoder sees the value."""
    try:
        check_json(value, what="the value")
        return dumps(value)
    except (JSONLimitError, TypeError, ValueError, msgspec.EncodeError, RecursionError) as exc:
        raise InvalidExecutionInput(f"{what}: {exc}") from None


def hide_map_runs(events: list[HistoryEvent]) -> list[HistoryEvent]:
    """Drop the events of distributed-Map iterations (they belong to the map run) and the
    record of an UpdateMapRun (``MapRunUpdated``)."""
    hidden_prefixes: set[str] = set()
    run_frames: set[str] = set()
    map_started: dict[str, int] = {}
    out: list[HistoryEvent] = []
    for event in events:
        frame = event.frame
        if any(frame.startswith(prefix) for prefix in hidden_prefixes):
            continue
        kind = event.type
        if kind == "MapStateStarted":
            map_started[frame] = event.id
        elif kind in ("MapRunStarted", "MapRunRedriven") and frame in map_started:
            base = f"{frame}/" if frame else ""
            hidden_prefixes.add(f"{base}{map_started[frame]}:")
            run_frames.add(frame)
        elif kind.startswith("MapIteration") and frame in run_frames:
            continue
        elif kind == "MapRunUpdated":
            continue  # Statemill's record of an UpdateMapRun: AWS logs none
        elif kind in ("MapStateSucceeded", "MapStateFailed", "MapStateAborted"):
            run_frames.discard(frame)
        out.append(event)
    return out
