"""ExecutionState: what an execution is at a point of its history, rebuilt by folding events.

An execution is a tree of *frames*: the top level (frame ``""``), and one frame per Parallel
branch or Map iteration in flight. A frame is a cursor into one (sub)machine of the definition
plus the data the next step needs. Each frame is in one ``Phase``; ``decide`` advances a frame by
looking only at its phase and fields, so any state folded from a log can be continued.

Ownership: an ``ExecutionState`` belongs to one writer, and ``core.evolve`` is the only code that
changes it. Frames are mutable Structs on purpose: a Map over 10,000 items would otherwise copy
its bookkeeping on every event (measured by ``benchmarks``); ``snapshot()`` gives a deep copy.

Imports only the standard library and msgspec.
"""

from __future__ import annotations

import enum
from typing import Any, Final, final

import msgspec

JSON = Any


#: The statuses of an execution that has not ended (``ExecutionState.is_terminal`` is false):
#: the hot loops test ``status in ACTIVE_STATUSES`` rather than call the property.
ACTIVE_STATUSES: Final = frozenset({"RUNNING", "PENDING"})


class Phase(enum.IntEnum):
    """Where a frame is in its current state's life."""

    START = 11
    """The frame's machine has not begun: enter its ``StartAt`` with ``data`` as input."""
    TRANSITION = 0
    """About to enter ``next`` with ``data`` as input (or finish, when ``next`` is None)."""
    ENTERED = 1
    """``state`` entered with ``data`` as its raw input; nothing else happened yet."""
    SCHEDULED = 2
    """A Task attempt was scheduled (``task_*`` fields hold it)."""
    STARTED = 3
    """A Task attempt is running in a handler: the shell owes a result."""
    TASK_SUCCEEDED = 4
    """The attempt returned ``result``; output processing comes next."""
    TASK_FAILED = 5
    """The attempt failed with ``error``/``cause`` and no retry applies: Catch or fail."""
    RETRY_WAIT = 6
    """Waiting until ``fire_at`` before the next attempt."""
    CHILDREN = 7
    """A Parallel or Map state waits for its child frames."""
    CHILDREN_FAILED = 8
    """A Parallel or Map state failed with ``error``/``cause``: Catch or fail."""
    DONE = 9
    """The frame's machine ended: ``data`` is its output, or ``error``/``cause`` are set."""
    REPORTED = 10
    """A finished child whose end was recorded by the parent (MapIterationSucceeded...)."""
    EVALUATION_FAILED = 12
    """A JSONata evaluation failed (EvaluationFailed logged, ``error``/``cause`` set): the state
    fails next (a Map through MapStateFailed), and Retry/Catch apply."""
    CATCH_FAILED = 13
    """A Catcher's JSONata ``Output``/``Assign`` failed: the frame fails, nothing catches it."""
    CHILD_RUN = 14
    """A distributed Map's iteration runs as a child execution of the Map Run (logic version
    3): the shell owes its outcome, reported like a Task's (``scheduled_id`` is the id of its
    MapIterationStarted)."""


@final
class Phases:
    """``Phase``'s members as plain class attributes (``Phases.DONE is Phase.DONE``), for the
    hot paths: on CPython 3.11 reading a member off the Enum class goes through
    ``EnumType.__getattr__``'s slot hook, ~0.5 us a read, against ~0.05 us off a plain class
    (``peers`` a: about 30 reads per execution of 10 Pass states)."""

    START: Final = Phase.START
    TRANSITION: Final = Phase.TRANSITION
    ENTERED: Final = Phase.ENTERED
    SCHEDULED: Final = Phase.SCHEDULED
    STARTED: Final = Phase.STARTED
    TASK_SUCCEEDED: Final = Phase.TASK_SUCCEEDED
    TASK_FAILED: Final = Phase.TASK_FAILED
    RETRY_WAIT: Final = Phase.RETRY_WAIT
    CHILDREN: Final = Phase.CHILDREN
    CHILDREN_FAILED: Final = Phase.CHILDREN_FAILED
    DONE: Final = Phase.DONE
    REPORTED: Final = Phase.REPORTED
    EVALUATION_FAILED: Final = Phase.EVALUATION_FAILED
    CATCH_FAILED: Final = Phase.CATCH_FAILED
    CHILD_RUN: Final = Phase.CHILD_RUN


class Frame(msgspec.Struct, kw_only=True):
    """One branch of control: the top level, a Parallel branch or a Map iteration."""

    id: str
    machine: tuple[tuple[str, int], ...] = ()
    """Path from the top-level machine to this frame's machine: (state name, branch index);
    index ``-1`` is a Map's ItemProcessor."""
    parent: str | None = None
    index: int = 0
    phase: Phase = Phase.TRANSITION
    state: str | None = None
    next: str | None = None
    data: JSON = None
    entered_id: int = 0
    entered_at: float = 0.0
    retry_counts: dict[int, int] = msgspec.field(default_factory=dict)
    retry_total: int = 0
    scheduled_id: int = 0
    task_input: JSON = None
    task_timeout: float | None = None
    task_heartbeat: float | None = None
    task_token: str | None = None
    """The ``.waitForTaskToken`` pattern: the current attempt's token (``statemillTaskToken``)."""
    task_token_activity: bool = False
    """The token belongs to an activity task (ActivityScheduled)."""
    task_submitted: bool = False
    """The token Task's handler returned (TaskSubmitted): nothing is owed but a callback."""
    task_scheduled_at: float = 0.0
    task_beat_at: float = 0.0
    """When the attempt started or was submitted: the base of its HeartbeatSeconds."""
    result: JSON = None
    error: str | None = None
    cause: str | None = None
    fire_at: float | None = None
    failed: bool = False
    # Parallel / Map bookkeeping (the parent frame's side)
    items: list[JSON] | None = None
    results: list[JSON] | None = None
    child_total: int = 0
    child_started: int = 0
    child_running: int = 0
    child_input_bytes: int = 0
    """A distributed Map's side: the JSON bytes of the inputs of its Map Run children in
    flight (``input_bytes`` of each), which ``ExecutionLimits.max_map_run_input_bytes``
    bounds (issue 11)."""
    input_bytes: int = 0
    """A Map Run child's side (``Phases.CHILD_RUN``): the JSON bytes of its input."""
    child_succeeded: int = 0
    child_failed: int = 0
    max_concurrency: int = 0
    tolerated_count: int | None = None
    tolerated_percentage: float | None = None
    children: dict[str, int] = msgspec.field(default_factory=dict)
    """Child frames in flight, in start order: frame id -> branch or iteration index (a dict,
    so that ending one of 10,000 iterations is O(1))."""
    succeeded: set[int] = msgspec.field(default_factory=set)
    """Indices of the Map iterations that succeeded in the current run (their outputs are in
    ``results``; an output may be ``null``, so success is kept apart)."""
    kept: dict[int, JSON] | None = None
    """The outputs of the branches or iterations that succeeded in a run of this Parallel or
    Map that then failed, was stopped or timed out: a redrive of the execution runs only the
    others again (RedriveExecution)."""
    pending: list[int] | None = None
    """A redriven Map's iterations still to start, in order (``None``: every index from
    ``child_started`` on)."""
    map_run: bool = False
    map_run_ended: bool = False
    map_run_arn: str | None = None
    """The Map Run's ARN (MapRunStarted's ``mapRunArn``) while a distributed Map runs."""
    map_run_redriven: bool = False
    """The current Map Run was redriven (MapRunRedriven): its children that did not succeed
    are redriven, not started anew."""
    redrive_map_run: str | None = None
    """A redrive of the execution enters this frame's distributed Map again: the Map Run it
    goes on (MapRunRedriven rather than a new MapRunStarted; logic version 3)."""
    reader: JSON = None
    """A distributed Map's ItemReader, resolved when it started (MapStateStarted's
    ``statemillItemReader``): the shell reads its items as iterations start (logic 3)."""
    batch_size: int = 0
    """Items per child of a Map that reads its items and batches them (0: one per child)."""
    run_id: int = 0
    """Event id of the ParallelStateStarted/MapStateStarted that created the current children."""
    variables: dict[str, JSON] = msgspec.field(default_factory=dict)
    """The workflow variables in scope (ASL "Assign"): the parent's when the frame was created,
    plus those assigned by this frame's states (``assignedVariables`` of a StateExited event).
    Replaced, never mutated in place, so a child may share its parent's dict."""
    detached: bool = False
    """The frame runs inside a distributed Map's child workflow: AWS records its events in the
    child execution's history, so they do not count toward this execution's history quota."""


class ExecutionState(msgspec.Struct, kw_only=True):
    """The whole execution: identity, status and the frame tree."""

    execution_arn: str = ""
    state_machine_arn: str = ""
    name: str = ""
    role_arn: str = ""
    input: JSON = None
    start_time: float = 0.0
    redrive_count: int = 0
    status: str = "PENDING"
    output: JSON = None
    error: str | None = None
    cause: str | None = None
    stop_time: float | None = None
    last_event_id: int = 0
    frames: dict[str, Frame] = msgspec.field(default_factory=dict)
    logic_version: int = 1
    redrive_time: float | None = None
    """When the execution was last redriven (its TimeoutSeconds counts from then)."""
    detached_events: int = 0
    """Events of distributed Map child workflows (their iterations' events and the
    MapIteration* events of the map run): not part of the history AWS counts toward its
    25,000-event quota (``ExecutionLimits.max_history_events``)."""
    redrive_from: Frame | None = None
    """The top-level frame where an unsuccessful execution stopped: a redrive enters its
    state again with the same input and variables (RedriveExecution)."""

    @property
    def is_terminal(self) -> bool:
        """True once the execution has ended (any status but RUNNING/PENDING)."""
        return self.status not in ACTIVE_STATUSES

    def snapshot(self) -> ExecutionState:
        """A deep copy, safe to keep while this state goes on evolving."""
        return msgspec.convert(msgspec.to_builtins(self), ExecutionState)
