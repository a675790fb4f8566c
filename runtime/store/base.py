"""The storage port: records, the ``EventStore`` Protocol and the shared codec.

Every store (memory, sqlite, later postgres) implements :class:`EventStore` and passes the one
contract suite in ``tests/store``. The contract, in short:

* An execution's history is append-only and dense: event ids are ``1..last_seq`` with no gaps.
* :meth:`EventStore.append` takes a *batch* of :class:`Append` (the engine's group commit) and
  applies it in ONE transaction, all or nothing. Each ``Append`` carries the ``expected_seq`` its
  writer last saw (optimistic concurrency); a mismatch, or an ``(execution_arn, seq)`` that is
  already taken, raises :class:`~runtime.errors.ConcurrencyConflict` naming the execution and
  writes nothing. Two ``Append`` for the same execution in one batch chain: the second expects
  the seq the first ends at.
* ``ExecutionRecord.last_seq`` is owned by the store: whatever a caller passes is ignored and
  the stored value (the id of the last event) is returned.
* Timers are durable rows keyed by ``(execution_arn, timer_id)``; putting an existing key moves
  it. ``due_timers`` does not consume them: the engine deletes a timer once its firing event has
  been appended.
* Activities (``CreateActivity``) are rows keyed by ARN; putting an existing ARN keeps the stored
  row (creating an activity twice returns the first), and the stored row is returned.
* Heartbeats (``SendTaskHeartbeat`` of a task-token Task) are rows keyed by ``(execution_arn,
  frame)`` holding the time of the last one: not an AWS history event, but kept so that a
  restarted runtime counts HeartbeatSeconds from the last heartbeat, not from the restart.
* State machines are rows keyed by ARN; ``put_state_machine`` also stores the record as the
  row of its revision ``(arn, revision_id)`` (replacing one of the same revision: the Runtime
  makes a new revision id for each new definition), so that an execution runs the definition
  it started with to its end (``ExecutionRecord.revision_id``), after an UpdateStateMachine
  and after a restart alike.

State machine revisions and deletion are the additive port :class:`StateMachineRevisions`
(every store here implements it; a wrapper such as ``ExpressStore`` need not). Its contract:

* ``get_state_machine_revision(arn, revision_id)`` returns the record as it was stored with
  that revision, or ``None``.
* ``delete_state_machine(arn)`` deletes the state machine's row and says whether it existed
  (deleting an unknown ARN is not an error). Its executions and revisions stay: an execution
  still running on a revision can finish or be stopped, after a restart too. In a store that
  also implements the version and tag ports (``runtime.store.versions``), the same
  transaction deletes the machine's versions (their numbers too), aliases and tags.

Versions, aliases and tags (issue 13) are the additive ports of :mod:`runtime.store.versions`.
An execution started from a version or an alias names them (``ExecutionRecord``'s
``state_machine_version_arn`` and ``state_machine_alias_arn``): written when the execution is
created and never changed by an append's record (as ``revision_id``), and filters of
``list_executions`` (``version_arn=``, ``alias_arn=``).

Schedules (issue 14) are a separate, additive port, :class:`ScheduleStore`, so that a store
without them still satisfies ``EventStore``. Its contract:

* A schedule is a row keyed by its ARN holding the Schedule's JSON (``ScheduleRecord.schedule``,
  the store does not read it) plus its ``fire_mark``: the time of the latest fire handled
  (started or recorded as missed), owned by the store like ``last_seq``.
* ``put_schedule`` inserts or replaces a schedule but never its ``fire_mark`` nor
  ``missed_fires`` (a new row takes the record's); with ``if_absent=True`` it writes only a new
  ARN and says whether it did (CreateSchedule's ConflictException is the caller's).
* ``advance_schedule_mark(arn, expected, new)`` is a compare-and-set: it moves the mark from
  ``expected`` (``None``: no fire handled yet) to ``new`` and adds ``missed`` to
  ``missed_fires`` in one step, and returns ``False`` (changing nothing) when the stored mark is
  not ``expected`` or the schedule is gone, so two processes never both handle one fire.

Map Runs (issue 14: each iteration of a distributed Map is a child execution) are the additive
port :class:`MapRunStore`. Its contract:

* An execution's ``map_run_arn`` (``ExecutionRecord``) names the Map Run it is a child of; it
  is written when the execution is created and an append's record does not change it (as
  ``revision_id``). ``list_executions(map_run_arn=...)`` lists the children, and
  ``count_map_run_children`` counts them per status, both from an index on ``(map_run_arn,
  start_date, execution_arn)`` (a range scan, not a scan of every execution).
* A Map Run is a row keyed by its ARN holding its identity only (``MapRunRecord``): its item
  counts are its children's, its status and settings are in the parent execution's log.
  ``put_map_run`` inserts a new ARN only (the first write wins, as for activities) and says
  whether it wrote, so a decision re-applied after a restart does not move its start date.

Imports only ``core.events``, ``runtime.errors``, ``store.versions`` (its records) and msgspec
(no I/O here).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import msgspec

from runtime.core.events import HistoryEvent, ext_hook
from runtime.errors import ConcurrencyConflict
from runtime.store.versions import AliasRecord, VersionRecord

__all__ = [
    "EXECUTION_STATUSES",
    "MAP_RUN_PAGE",
    "ActivityRecord",
    "Append",
    "EventStore",
    "ExecutionRecord",
    "MapRunRecord",
    "MapRunStore",
    "ScheduleRecord",
    "ScheduleStore",
    "StateMachineRecord",
    "StateMachineRevisions",
    "Timer",
    "check_dense",
    "check_mark",
    "decode_events",
    "map_run_children",
    "revision_key",
]

#: ``DescribeExecution`` statuses.
EXECUTION_STATUSES: Final = frozenset(
    {"RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"}
)


class StateMachineRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A state machine as ``DescribeStateMachine`` knows it."""

    arn: str
    name: str
    definition: str
    """The ASL JSON text, verbatim."""
    type: str
    """``"STANDARD"`` or ``"EXPRESS"``."""
    creation_date: float
    revision_id: str = ""
    quarantined: str | None = None
    """Why the stored definition failed to load when the store was opened (the machine is
    quarantined: its executions cannot run). Set by the Runtime on what it returns; never
    stored."""


class ActivityRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An activity as ``DescribeActivity`` knows it."""

    arn: str
    name: str
    creation_date: float


class ExecutionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """The summary row of one execution (what ``DescribeExecution`` and listing need)."""

    execution_arn: str
    state_machine_arn: str
    name: str
    status: str
    """One of :data:`EXECUTION_STATUSES`."""
    start_date: float
    input: str
    """JSON text."""
    stop_date: float | None = None
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    machine_type: str = "STANDARD"
    redrive_count: int = 0
    parent_execution_arn: str | None = None
    last_seq: int = 0
    """Id of the last stored event; maintained by the store, ignored on write."""
    revision_id: str = ""
    """The revision of the state machine the execution started on: it runs that definition to
    its end (AWS: running executions keep the definition they started with). ``""`` for an
    execution stored before revisions were kept: it runs the current definition. Written
    when the execution is created; an append's record does not change it."""
    map_run_arn: str | None = None
    """The Map Run this execution is a child workflow of (DescribeExecution's ``mapRunArn``),
    ``None`` for any other execution. Written when the execution is created; an append's
    record does not change it."""
    state_machine_version_arn: str | None = None
    """The version of the state machine the execution was started on (DescribeExecution's
    ``stateMachineVersionArn``: started with a version ARN, or with an alias ARN routing to
    it), ``None`` when started with the unqualified ARN. Written when the execution is
    created; an append's record does not change it."""
    state_machine_alias_arn: str | None = None
    """The alias the execution was started with (DescribeExecution's
    ``stateMachineAliasArn``), else ``None``. Written when the execution is created; an
    append's record does not change it."""

    @property
    def machine_key(self) -> str:
        """The key of the definition this execution runs (:func:`revision_key`)."""
        return revision_key(self.state_machine_arn, self.revision_id)


def revision_key(state_machine_arn: str, revision_id: str) -> str:
    """The key under which the runtime and the engine hold the definition of a state machine
    revision: ``arn#revision`` (``#`` is in no ARN), or the bare ARN for ``""``, the current
    definition of an execution stored before revisions were kept."""
    return f"{state_machine_arn}#{revision_id}" if revision_id else state_machine_arn


class Append(msgspec.Struct, frozen=True, kw_only=True):
    """Events for one execution, to be appended after ``expected_seq``.

    ``events`` must have ids ``expected_seq + 1, expected_seq + 2, ...``. ``record``, if given,
    replaces the execution's summary row in the same transaction (status, output...).
    """

    execution_arn: str
    expected_seq: int
    events: tuple[HistoryEvent, ...]
    record: ExecutionRecord | None = None


class Timer(msgspec.Struct, frozen=True, kw_only=True):
    """A durable timer: at ``fire_at`` (epoch seconds) ``timer_id`` of the execution is due."""

    execution_arn: str
    timer_id: str
    fire_at: float


class ScheduleRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A schedule as the stores keep it (EventBridge Scheduler's schedules, issue 14)."""

    arn: str
    """``arn:aws:scheduler:<region>:<account>:schedule/<group>/<name>``."""
    group_name: str
    name: str
    schedule: str
    """The Schedule's JSON text (``runtime.schedules.encode_schedule``), opaque to the store."""
    creation_date: float
    fire_mark: float | None = None
    """Epoch seconds of the latest fire handled (``None``: none yet); maintained by
    :meth:`ScheduleStore.advance_schedule_mark`, ignored when replacing a row."""
    missed_fires: int = 0
    """How many fires were recorded as missed; maintained like ``fire_mark``."""


class ScheduleStore(Protocol):
    """The schedule port (see the module docstring), implemented beside ``EventStore``."""

    async def put_schedule(self, rec: ScheduleRecord, *, if_absent: bool = False) -> bool:
        """Insert ``rec``, or replace the stored row of its ARN keeping its ``fire_mark`` and
        ``missed_fires``; with ``if_absent`` only insert. Returns whether it wrote."""
        ...

    async def get_schedule(self, arn: str) -> ScheduleRecord | None:
        """The schedule with this ARN, or ``None``."""
        ...

    async def list_schedules(self, group_name: str | None = None) -> list[ScheduleRecord]:
        """All schedules (of one group), ordered by group name then name."""
        ...

    async def delete_schedule(self, arn: str) -> bool:
        """Delete a schedule; returns whether it existed."""
        ...

    async def advance_schedule_mark(
        self, arn: str, expected: float | None, new: float, *, missed: int = 0
    ) -> bool:
        """Compare-and-set the ``fire_mark`` from ``expected`` to ``new`` and add ``missed`` to
        ``missed_fires``; ``False`` (nothing changed) if the mark is not ``expected`` or the
        schedule does not exist.

        Raises:
            ValueError: ``new`` is not after ``expected``, or ``missed`` is negative.
        """
        ...


class MapRunRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A Map Run as the stores keep it (DescribeMapRun's identity; its counts come from its
    children, its status and settings from the parent execution's log)."""

    map_run_arn: str
    execution_arn: str
    """The parent execution (DescribeMapRun ``executionArn``)."""
    state_machine_arn: str
    """The child workflows' state machine ARN."""
    start_date: float


@runtime_checkable
class MapRunStore(Protocol):
    """The Map Run port (see the module docstring), implemented beside ``EventStore`` by the
    memory, SQLite and PostgreSQL stores."""

    async def put_map_run(self, rec: MapRunRecord) -> bool:
        """Insert ``rec`` unless a Map Run with its ARN is stored; returns whether it wrote."""
        ...

    async def get_map_run(self, map_run_arn: str) -> MapRunRecord | None:
        """The Map Run with this ARN, or ``None``."""
        ...

    async def list_map_runs(self, execution_arn: str) -> list[MapRunRecord]:
        """The Map Runs of one parent execution, oldest start_date first (ties: ARN)."""
        ...

    async def count_map_run_children(self, map_run_arn: str) -> dict[str, int]:
        """How many child executions of the Map Run are stored, per status (only statuses
        with at least one child appear)."""
        ...


@runtime_checkable
class StateMachineRevisions(Protocol):
    """The port of state machine revisions and deletion (see the module docstring),
    implemented beside ``EventStore`` by the memory, SQLite and PostgreSQL stores."""

    async def get_state_machine_revision(
        self, arn: str, revision_id: str
    ) -> StateMachineRecord | None:
        """The record of state machine ``arn`` as stored with ``revision_id``, or ``None``."""
        ...

    async def delete_state_machine(self, arn: str) -> bool:
        """Delete the state machine's row (its revisions and executions stay) with its
        versions, aliases and tags; returns whether it existed."""
        ...


def check_mark(expected: float | None, new: float, missed: int) -> None:
    """Raise ``ValueError`` unless the mark moves forward and ``missed`` is not negative."""
    if expected is not None and new <= expected:
        raise ValueError(f"a fire mark only moves forward: {expected} -> {new}")
    if missed < 0:
        raise ValueError(f"missed must not be negative, not {missed}")


class EventStore(Protocol):
    """The port every store implements (see the module docstring for the contract)."""

    @property
    def durable(self) -> bool:
        """Whether committed data survives the process."""
        ...

    async def put_state_machine(self, rec: StateMachineRecord) -> None:
        """Insert or replace a state machine (the API layer decides on conflicts)."""
        ...

    async def get_state_machine(self, arn: str) -> StateMachineRecord | None:
        """The state machine with this ARN, or ``None``."""
        ...

    async def list_state_machines(self) -> list[StateMachineRecord]:
        """All state machines, oldest first."""
        ...

    async def create_execution(
        self, record: ExecutionRecord, events: Sequence[HistoryEvent]
    ) -> None:
        """Store a new execution and its first events (ids from 1) in one transaction.

        Raises:
            ExecutionAlreadyExists: an execution with this ARN is stored.
            ValueError: the event ids are not ``1..n``.
        """
        ...

    async def create_executions(
        self, items: Sequence[tuple[ExecutionRecord, Sequence[HistoryEvent]]]
    ) -> None:
        """Create many executions in one transaction (group commit of StartExecution calls).

        All or nothing: raises ``ExecutionAlreadyExists`` if any of them exists.
        """
        ...

    async def append(self, batch: Sequence[Append]) -> None:
        """Append every item of ``batch`` in one transaction (all or nothing).

        Raises:
            ConcurrencyConflict: an ``expected_seq`` is not the stored last seq, or a seq is taken.
            ExecutionDoesNotExist: an item names an execution that is not stored.
            ValueError: an item's event ids are not dense after ``expected_seq``, or its
                ``record`` names another execution.
        """
        ...

    async def read(self, execution_arn: str, after_seq: int = 0) -> list[HistoryEvent]:
        """The events of an execution with id > ``after_seq``, in order (``[]`` if unknown)."""
        ...

    async def load_executions(
        self, arns: Sequence[str]
    ) -> list[tuple[ExecutionRecord, list[HistoryEvent]]]:
        """The records and full histories of many executions (unknown ARNs are left out):
        the batched read that recovery and timer wake-ups use."""
        ...

    async def get_execution(self, arn: str) -> ExecutionRecord | None:
        """The execution's summary row, or ``None``."""
        ...

    async def list_executions(
        self,
        state_machine_arn: str | None = None,
        status: str | None = None,
        limit: int = 1000,
        *,
        after: tuple[float, str] | None = None,
        redriven: bool | None = None,
        map_run_arn: str | None = None,
        version_arn: str | None = None,
        alias_arn: str | None = None,
    ) -> list[ExecutionRecord]:
        """Executions, newest ``start_date`` first (ties: ARN descending), optionally filtered.

        ``after`` is a cursor (keyset pagination, issue 13): only the executions that sort
        after ``(start_date, execution_arn)`` in this order. ``redriven``: only those redriven
        at least once (``True``) or never (``False``). ``map_run_arn``: only the child
        executions of that Map Run (issue 14). ``version_arn`` / ``alias_arn``: only those
        whose ``state_machine_version_arn`` / ``state_machine_alias_arn`` is it (ListExecutions
        of a version or an alias ARN, issue 13). The filters combine (all must hold)."""
        ...

    async def open_executions(self) -> list[ExecutionRecord]:
        """Every ``RUNNING`` execution, oldest first (crash recovery re-derives their work)."""
        ...

    async def put_timers(self, timers: Sequence[Timer]) -> None:
        """Insert timers; an existing ``(execution_arn, timer_id)`` is moved to the new time."""
        ...

    async def delete_timers(self, keys: Sequence[tuple[str, str]]) -> None:
        """Delete timers by ``(execution_arn, timer_id)``; unknown keys are ignored."""
        ...

    async def due_timers(self, until: float, limit: int) -> list[Timer]:
        """Up to ``limit`` timers with ``fire_at <= until``, earliest first (not consumed)."""
        ...

    async def put_activity(self, rec: ActivityRecord) -> ActivityRecord:
        """Insert an activity unless its ARN is stored; return the stored row."""
        ...

    async def get_activity(self, arn: str) -> ActivityRecord | None:
        """The activity with this ARN, or ``None``."""
        ...

    async def list_activities(self) -> list[ActivityRecord]:
        """All activities, oldest first."""
        ...

    async def delete_activity(self, arn: str) -> None:
        """Delete an activity (and its tags, in a store with the ``TagStore`` port); an
        unknown ARN is ignored."""
        ...

    async def put_heartbeat(self, execution_arn: str, frame: str, at: float) -> None:
        """Record the last heartbeat time of the token Task of ``frame`` (replaces)."""
        ...

    async def heartbeats(self, execution_arns: Sequence[str]) -> dict[str, dict[str, float]]:
        """The recorded heartbeats of these executions: arn -> frame -> time."""
        ...

    async def delete_heartbeats(self, keys: Sequence[tuple[str, str]]) -> None:
        """Forget heartbeats by ``(execution_arn, frame)`` (answered Tasks); unknown keys are
        ignored."""
        ...

    async def close(self) -> None:
        """Release resources; idempotent."""
        ...


def check_dense(execution_arn: str, after_seq: int, events: Sequence[HistoryEvent]) -> None:
    """Raise ``ValueError`` unless the event ids are ``after_seq + 1, after_seq + 2, ...``."""
    for offset, event in enumerate(events, start=after_seq + 1):
        if event.id != offset:
            raise ValueError(
                f"execution {execution_arn}: event ids must be dense after {after_seq}; "
                f"expected id {offset}, got {event.id}"
            )


def merge_appends(batch: Sequence[Append]) -> dict[str, tuple[int, int, ExecutionRecord | None]]:
    """Fold the items of each execution in ``batch`` into one ``(expected seq, end seq, last
    record)``, for stores that check and update each execution row once per batch (SQLite,
    PostgreSQL). Each item's events must be dense from its expected seq, its record must be its
    own execution's, and chained items of one execution must meet end to end.

    Raises:
        ConcurrencyConflict: an item does not start where the previous one of its execution ends.
        ValueError: events that are not dense, or a record of another execution.
    """
    merged: dict[str, tuple[int, int, ExecutionRecord | None]] = {}
    for item in batch:
        arn = item.execution_arn
        check_dense(arn, item.expected_seq, item.events)
        rec = item.record
        if rec is not None and rec.execution_arn != arn:
            raise ValueError(f"append to {arn} carries the record of {rec.execution_arn}")
        end = item.expected_seq + len(item.events)
        prior = merged.get(arn)
        if prior is None:
            merged[arn] = (item.expected_seq, end, rec)
        elif item.expected_seq != prior[1]:
            raise ConcurrencyConflict(
                f"execution {arn}: expected seq {item.expected_seq}, but an earlier item "
                f"of the same batch ends at seq {prior[1]}"
            )
        else:
            merged[arn] = (prior[0], end, rec if rec is not None else prior[2])
    return merged


#: The columns of a ``state_machines`` row, in the order of :func:`state_machine_from_row`.
STATE_MACHINE_COLUMNS: Final = "arn, name, definition, type, creation_date, revision_id"


def state_machine_from_row(row: Iterable[Any]) -> StateMachineRecord:
    """The record of a row of :data:`STATE_MACHINE_COLUMNS`."""
    arn, name, definition, machine_type, created, revision = row
    return StateMachineRecord(
        arn=arn,
        name=name,
        definition=definition,
        type=machine_type,
        creation_date=created,
        revision_id=revision,
    )


#: The columns of a ``state_machine_versions`` row, in the order of :func:`version_from_row`
#: (the SQL stores; ``deleted`` is a tombstone flag, not a column of the record).
VERSION_COLUMNS: Final = "state_machine_arn, version, revision_id, description, creation_date"


def version_from_row(row: Iterable[Any]) -> VersionRecord:
    """The record of a row of :data:`VERSION_COLUMNS`."""
    machine, version, revision, description, created = row
    return VersionRecord(
        state_machine_arn=machine,
        version=int(version),
        revision_id=revision,
        description=description,
        creation_date=created,
    )


#: The columns of a ``state_machine_aliases`` row, in the order of :func:`alias_row` and
#: :func:`alias_from_row`; ``routing`` is JSON text, ``[[version, weight], ...]``.
ALIAS_COLUMNS: Final = "state_machine_arn, name, description, routing, creation_date, update_date"

_routing_decoder: Final = msgspec.json.Decoder(tuple[tuple[int, int], ...])


def alias_row(record: AliasRecord) -> tuple[Any, ...]:
    """The :data:`ALIAS_COLUMNS` values of ``record``."""
    return (
        record.state_machine_arn,
        record.name,
        record.description,
        msgspec.json.encode(record.routing).decode(),
        record.creation_date,
        record.update_date,
    )


def alias_from_row(row: Iterable[Any]) -> AliasRecord:
    """The record of a row of :data:`ALIAS_COLUMNS`."""
    machine, name, description, routing, created, updated = row
    return AliasRecord(
        state_machine_arn=machine,
        name=name,
        description=description,
        routing=_routing_decoder.decode(routing),
        creation_date=created,
        update_date=updated,
    )


#: The columns of an ``executions`` row that hold an :class:`ExecutionRecord` (and its
#: ``last_seq``), in the order of :func:`execution_row` and :func:`execution_from_row`: one
#: mapping for the SQL stores (SQLite, PostgreSQL).
EXECUTION_COLUMNS: Final = (
    "execution_arn, state_machine_arn, name, status, start_date, input, stop_date, output, "
    "error, cause, machine_type, redrive_count, parent_execution_arn, last_seq, revision_id, "
    "map_run_arn, state_machine_version_arn, state_machine_alias_arn"
)


def execution_row(record: ExecutionRecord, last_seq: int) -> tuple[Any, ...]:
    """The :data:`EXECUTION_COLUMNS` values of ``record`` whose log ends at ``last_seq``."""
    return (
        record.execution_arn,
        record.state_machine_arn,
        record.name,
        record.status,
        record.start_date,
        record.input,
        record.stop_date,
        record.output,
        record.error,
        record.cause,
        record.machine_type,
        record.redrive_count,
        record.parent_execution_arn,
        last_seq,
        record.revision_id,
        record.map_run_arn,
        record.state_machine_version_arn,
        record.state_machine_alias_arn,
    )


def execution_from_row(row: Iterable[Any]) -> ExecutionRecord:
    """The record of a row of :data:`EXECUTION_COLUMNS`."""
    (
        arn,
        machine,
        name,
        status,
        start,
        inp,
        stop,
        out,
        err,
        cause,
        mtype,
        redrives,
        parent,
        seq,
        revision,
        map_run,
        version,
        alias,
    ) = row
    return ExecutionRecord(
        execution_arn=arn,
        state_machine_arn=machine,
        name=name,
        status=status,
        start_date=start,
        input=inp,
        stop_date=stop,
        output=out,
        error=err,
        cause=cause,
        machine_type=mtype,
        redrive_count=redrives,
        parent_execution_arn=parent,
        last_seq=seq,
        revision_id=revision,
        map_run_arn=map_run,
        state_machine_version_arn=version,
        state_machine_alias_arn=alias,
    )


# One reused decoder for whole histories: stored rows hold single MessagePack events, so a
# history is decoded in one call by prefixing the concatenated rows with an array header.
_history_decoder: Final = msgspec.msgpack.Decoder(list[HistoryEvent], ext_hook=ext_hook)


def decode_events(payloads: Sequence[bytes], count: int | None = None) -> list[HistoryEvent]:
    """Decode ``encode_event`` payloads (in order) with one decoder call; ``count`` is how many
    events they hold when a payload may hold several (``encode_events``), else one each."""
    n = len(payloads) if count is None else count
    if n < 16:
        header = bytes((0x90 | n,))
    elif n < 0x10000:
        header = b"\xdc" + n.to_bytes(2, "big")
    else:
        header = b"\xdd" + n.to_bytes(4, "big")
    return _history_decoder.decode(header + b"".join(payloads))


#: Children of a Map Run read per store call by :func:`map_run_children`.
MAP_RUN_PAGE: Final = 1000


async def map_run_children(
    store: EventStore, map_run_arn: str, *, status: str | None = None
) -> AsyncIterator[ExecutionRecord]:
    """Every child execution of Map Run ``map_run_arn`` (of ``status``, if given), newest
    first, read a page at a time by keyset (``list_executions(after=...)``), never all at
    once: a Map Run may have a million."""
    after: tuple[float, str] | None = None
    while True:
        page = await store.list_executions(
            status=status, limit=MAP_RUN_PAGE, after=after, map_run_arn=map_run_arn
        )
        for child in page:
            yield child
        if len(page) < MAP_RUN_PAGE:
            return
        after = (page[-1].start_date, page[-1].execution_arn)
