"""What flows into and out of ``decide``: incoming facts and the effects the shell must run.

Incoming facts carry everything non-deterministic (the clock reading ``now`` and a random
``seed``), so ``decide`` stays a pure function. Effects are instructions, run by the shell only
after the decision's events are durable ("append before acting").

Imports only the standard library, msgspec and ``core.events``.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

from runtime.core.events import HistoryEvent

JSON = Any


class Wake(msgspec.Struct, frozen=True, kw_only=True):
    """Advance whatever can advance at ``now`` (start, timers due, ...)."""

    now: float
    seed: int = 0
    beats: dict[str, float] = msgspec.field(default_factory=dict)
    """Frame id -> when its task-token Task last got ``SendTaskHeartbeat`` (kept by the shell;
    a heartbeat is not an AWS history event)."""


TaskOutcome = Literal["succeeded", "failed", "timed_out", "started"]
"""How a Task attempt ended, or that an activity worker took it (``started``)."""


class TaskResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one Task attempt, identified by its frame and scheduled event id."""

    now: float
    frame: str
    scheduled_id: int
    outcome: TaskOutcome
    """``started``: an activity worker took the task (``output`` is ``{"workerName": ...}``)."""
    output: JSON = None
    error: str | None = None
    cause: str | None = None
    seed: int = 0
    task_token: str | None = None
    """Set when the result is a task-token callback (``SendTaskSuccess``/``Failure``); a
    ``.waitForTaskToken`` handler's own return has none and only submits the task."""


class StopRequested(msgspec.Struct, frozen=True, kw_only=True):
    """An operator asked to stop the execution (StopExecution)."""

    now: float
    error: str | None = None
    cause: str | None = None
    seed: int = 0


class MapRunUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """An operator changed a running Map Run's settings (UpdateMapRun); ``None``: unchanged."""

    now: float
    map_run_arn: str
    max_concurrency: int | None = None
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: float | None = None
    seed: int = 0


Incoming = Wake | TaskResult | StopRequested | MapRunUpdate


class RunTask(msgspec.Struct, frozen=True, kw_only=True):
    """Call the handler for a Task attempt and report a ``TaskResult``."""

    frame: str
    scheduled_id: int
    state_name: str
    resource: str
    handler_name: str
    input: JSON
    attempt: int
    timeout_seconds: float | None = None
    heartbeat_seconds: float | None = None
    lambda_invoke: bool = False
    """True for ``arn:aws:states:::lambda:invoke``: wrap the result as AWS does."""
    lambda_function: bool = False
    """True for a Lambda resource: format failures as AWS Lambda's Python runtime does."""
    task_token: str | None = None
    """The ``.waitForTaskToken`` pattern: the token the handler hands on; its return only
    submits the task, which then waits for a task-token callback."""


#: The resource of a ``RunTask`` that runs a distributed Map's iteration as a child execution
#: of its Map Run (logic version 3); its ``input`` is a :class:`MapRunChild`.
MAP_RUN_CHILD: Final = "statemill:mapRunChild"


class MapRunChild(msgspec.Struct, frozen=True, kw_only=True):
    """What the shell needs to run one child execution of a Map Run."""

    map_run_arn: str
    label: str
    """The Map Run's label (the Map's ``Label``, else its state name): the child workflows'
    state machine is ``<parent state machine>/<label>``."""
    index: int
    input: JSON
    """The iteration's input (its item, selected by ItemSelector, or its batch)."""
    execution_type: str
    """``ProcessorConfig.ExecutionType``: STANDARD or EXPRESS."""
    processor: Any
    """The ItemProcessor (a ``runtime.definition.model.StateMachine``): the child workflows'
    definition is its ``source``."""
    redrive: bool = False
    """The Map Run was redriven: a child that exists and did not succeed is redriven."""

    def definition(self) -> dict[str, JSON]:
        """The child workflows' definition: the ItemProcessor as a state machine of its own,
        in the query language the Map's states use (``ProcessorConfig`` stays with the Map)."""
        processor = self.processor
        source = processor.source if isinstance(processor.source, dict) else {}
        definition = {key: value for key, value in source.items() if key != "ProcessorConfig"}
        definition["QueryLanguage"] = processor.query_language
        return definition


#: The resource of a ``RunTask`` that reads a distributed Map's next items from its
#: ItemReader (logic version 3); its ``input`` is an :class:`ItemRead`, its result
#: ``{"items": [...], "total": n}`` (``total``: the items of the whole data set, within
#: ``MaxItems``; given on the read from 0).
ITEM_READER: Final = "statemill:itemReader"


class ItemRead(msgspec.Struct, frozen=True, kw_only=True):
    """Read ``count`` items of a Map's data set from item ``start``."""

    reader: JSON
    """The ItemReader with its ``Parameters``/``Arguments`` and ``MaxItemsPath`` resolved."""
    start: int
    count: int


#: The resource of a ``RunTask`` that writes a finished Map Run's results (``ResultWriter``,
#: logic version 3): its ``input`` is a :class:`ResultWrite`, its result the Map's output
#: (``{"MapRunArn": ..., "ResultWriterDetails": {"Bucket": ..., "Key": ...}}``).
RESULT_WRITER: Final = "statemill:resultWriter"

_WRITES: Final = -(2**62)


def read_id(run_id: int, start: int) -> int:
    """The ``scheduled_id`` of an ``ItemRead`` from item ``start`` of the Map run opened by
    event ``run_id`` (MapStateStarted): negative, so it is no event's, and unique per Map of an
    execution (the shell runs one call per id at a time)."""
    return -(run_id * 2**32 + start + 1)


def write_id(run_id: int) -> int:
    """The ``scheduled_id`` of the ``ResultWrite`` of the Map run opened by event ``run_id``."""
    return _WRITES - run_id


def is_write_id(scheduled_id: int) -> bool:
    """Whether ``scheduled_id`` is a :func:`write_id` (else a negative one is a read's)."""
    return scheduled_id <= _WRITES


class ResultWrite(msgspec.Struct, frozen=True, kw_only=True):
    """Write the results of Map Run ``map_run_arn`` as ``writer`` says."""

    writer: JSON
    """The ResultWriter with its ``Parameters``/``Arguments`` resolved."""
    map_run_arn: str


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The result of one ``decide`` call."""

    events: tuple[HistoryEvent, ...] = ()
    tasks: tuple[RunTask, ...] = ()
    wake_at: float | None = None
    """When ``decide`` wants a ``Wake`` next (earliest timer), or None."""
    partial: bool = False
    """``wake_at`` only covers the frames this decision visited (a Task result's frame and its
    ancestors): the shell must keep any earlier timer it already holds."""
    more: bool = False
    """The decision stopped at its event budget: call ``decide`` again with a ``Wake`` now."""
    opened_map_runs: tuple[str, ...] = ()
    """Map Runs this decision opened (MapRunStarted, logic version 3): the shell records each
    (``MapRunStore.put_map_run``) so that its ARN finds its execution."""
    stopped_map_runs: tuple[str, ...] = ()
    """Map Runs that ended before their children (MapRunFailed/Aborted, or the execution
    ended while they ran): the shell stops their children still running."""
