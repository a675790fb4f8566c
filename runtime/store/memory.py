"""In-memory reference store: plain dicts, no I/O, nothing survives the process.

Used by unit tests, the no-durability mode, and as the benchmark baseline, so the hot paths
(``append``, ``read``) do as little as possible. It honours the whole ``EventStore`` contract,
including all-or-nothing batches: a batch is validated completely before anything is mutated.

Invariant: ``len(self._events[arn])`` is the execution's last seq (ids are dense from 1), so the
stored ``ExecutionRecord.last_seq`` is filled in on the way out rather than kept up to date.

State machine revisions (the additive ``StateMachineRevisions`` port) are a dict keyed by
``(arn, revision_id)``, filled by ``put_state_machine``.

Schedules (the additive ``ScheduleStore`` port) are a dict keyed by ARN; the fire mark's
compare-and-set is atomic because nothing awaits between its check and its write.

Map Runs (the additive ``MapRunStore`` port) are a dict keyed by ARN. The children of each Map
Run, as a list of ``(start_date, execution_arn)`` kept sorted, and their count per status are
kept up to date by creation, append and ``forget``: the in-memory counterpart of the SQL stores'
index, so a page of children (``after=``) is a bisection and a walk of that page, and a count
is a dict copy, however many children and other executions there are.

Versions, aliases and tags (the additive ``VersionStore`` and ``TagStore`` ports) are dicts:
a machine's live versions by number, the highest number it ever had (so a deleted version's
number is not given again; dropped with the machine), its aliases by name, and each resource's
tags. Publishing is atomic because nothing awaits between the look-up and the write.

Imports only ``store.base``, ``store.versions``, ``core.events``, ``errors`` and msgspec.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Mapping, Sequence
from typing import final

import msgspec

from runtime.core.events import HistoryEvent
from runtime.errors import ConcurrencyConflict, ExecutionAlreadyExists, ExecutionDoesNotExist
from runtime.store.base import (
    ActivityRecord,
    Append,
    EventStore,
    ExecutionRecord,
    MapRunRecord,
    MapRunStore,
    ScheduleRecord,
    ScheduleStore,
    StateMachineRecord,
    StateMachineRevisions,
    Timer,
    check_dense,
    check_mark,
)
from runtime.store.versions import AliasRecord, TagStore, VersionRecord, VersionStore

__all__ = ["MemoryStore"]


def _check_dense(execution_arn: str, after_seq: int, events: Sequence[HistoryEvent]) -> None:
    """``check_dense`` (its message when the ids are not dense), with a plain counter rather
    than ``enumerate``: half the cost for a decision's 20 events (``peers`` a)."""
    expected = after_seq
    for event in events:
        expected += 1
        if event.id != expected:
            check_dense(execution_arn, after_seq, events)


@final
class MemoryStore:
    """An ``EventStore`` in dicts (see :mod:`runtime.store.base` for the contract)."""

    durable = False

    def __init__(self) -> None:
        self._machines: dict[str, StateMachineRecord] = {}
        self._revisions: dict[tuple[str, str], StateMachineRecord] = {}
        self._records: dict[str, ExecutionRecord] = {}
        self._events: dict[str, list[HistoryEvent]] = {}
        self._timers: dict[tuple[str, str], float] = {}
        # Min-heap of (fire_at, arn, timer_id); entries whose key was deleted or moved are stale
        # and skipped lazily (a timer's current time is the one in ``_timers``).
        self._heap: list[tuple[float, str, str]] = []
        self._activities: dict[str, ActivityRecord] = {}
        self._beats: dict[str, dict[str, float]] = {}
        self._schedules: dict[str, ScheduleRecord] = {}
        self._map_runs: dict[str, MapRunRecord] = {}
        # Map Run ARN -> its children's sort keys, ascending / their count per status.
        self._children: dict[str, list[tuple[float, str]]] = {}
        self._child_counts: dict[str, dict[str, int]] = {}
        # State machine ARN -> live versions by number / the highest number it ever had.
        self._versions: dict[str, dict[int, VersionRecord]] = {}
        self._version_marks: dict[str, int] = {}
        self._aliases: dict[str, dict[str, AliasRecord]] = {}
        self._tags: dict[str, dict[str, str]] = {}

    # -- state machines ---------------------------------------------------------------------

    async def put_state_machine(self, rec: StateMachineRecord) -> None:
        self._machines[rec.arn] = rec
        self._revisions[rec.arn, rec.revision_id] = rec

    async def get_state_machine_revision(
        self, arn: str, revision_id: str
    ) -> StateMachineRecord | None:
        return self._revisions.get((arn, revision_id))

    async def delete_state_machine(self, arn: str) -> bool:
        self._versions.pop(arn, None)
        self._version_marks.pop(arn, None)
        self._aliases.pop(arn, None)
        self._tags.pop(arn, None)
        return self._machines.pop(arn, None) is not None

    async def get_state_machine(self, arn: str) -> StateMachineRecord | None:
        return self._machines.get(arn)

    async def list_state_machines(self) -> list[StateMachineRecord]:
        return sorted(self._machines.values(), key=lambda r: (r.creation_date, r.arn))

    # -- executions and events --------------------------------------------------------------

    async def create_execution(
        self, record: ExecutionRecord, events: Sequence[HistoryEvent]
    ) -> None:
        arn = record.execution_arn
        check_dense(arn, 0, events)
        if arn in self._records:
            raise ExecutionAlreadyExists(f"execution {arn} already exists")
        self._records[arn] = record
        self._events[arn] = list(events)
        self._adopt(record)

    async def create_executions(
        self, items: Sequence[tuple[ExecutionRecord, Sequence[HistoryEvent]]]
    ) -> None:
        self.check_create(items)
        for record, events in items:
            self._records[record.execution_arn] = record
            self._events[record.execution_arn] = list(events)
            self._adopt(record)

    async def append(self, batch: Sequence[Append]) -> None:
        # Validate everything first so that a failing batch leaves no trace.
        self.check_append(batch)
        for item in batch:
            self._events[item.execution_arn].extend(item.events)
            rec = item.record
            if rec is not None:
                stored = self._records[item.execution_arn]
                # The revision, the Map Run, the version and the alias are the creation's, as
                # in SQL.
                if _origin(rec) != _origin(stored):
                    rec = msgspec.structs.replace(
                        rec,
                        revision_id=stored.revision_id,
                        map_run_arn=stored.map_run_arn,
                        state_machine_version_arn=stored.state_machine_version_arn,
                        state_machine_alias_arn=stored.state_machine_alias_arn,
                    )
                if stored.map_run_arn is not None and (rec.status, rec.start_date) != (
                    stored.status,
                    stored.start_date,
                ):
                    self._disown(stored)
                    self._adopt(rec)
                self._records[item.execution_arn] = rec

    def check_append(self, batch: Sequence[Append]) -> None:
        """Raise what :meth:`append` would raise for ``batch``, changing nothing."""
        ends: dict[str, int] = {}
        for item in batch:
            arn = item.execution_arn
            stored = ends.get(arn)
            if stored is None:
                log = self._events.get(arn)
                if log is None:
                    raise ExecutionDoesNotExist(f"execution {arn} does not exist")
                stored = len(log)
            if item.expected_seq != stored:
                raise ConcurrencyConflict(
                    f"execution {arn}: expected seq {item.expected_seq}, stored seq is {stored}"
                )
            _check_dense(arn, stored, item.events)
            if item.record is not None and item.record.execution_arn != arn:
                raise ValueError(
                    f"append to {arn} carries the record of {item.record.execution_arn}"
                )
            ends[arn] = stored + len(item.events)

    def check_create(self, items: Sequence[tuple[ExecutionRecord, Sequence[HistoryEvent]]]) -> None:
        """Raise what :meth:`create_executions` would raise for ``items``, changing nothing."""
        seen: set[str] = set()
        for record, events in items:
            arn = record.execution_arn
            _check_dense(arn, 0, events)
            if arn in self._records or arn in seen:
                raise ExecutionAlreadyExists(f"execution {arn} already exists")
            seen.add(arn)

    def holds_any(self) -> bool:
        """Whether any execution is stored (a cheap test for callers' fast paths)."""
        return bool(self._records)

    def forget(self, execution_arn: str) -> None:
        """Drop an execution, its events and timers (not in the EventStore protocol: the
        EXPRESS store releases an execution this way once it has ended)."""
        record = self._records.pop(execution_arn, None)
        if record is not None:
            self._disown(record)
        self._events.pop(execution_arn, None)
        for key in [k for k in self._timers if k[0] == execution_arn]:
            del self._timers[key]

    async def read(self, execution_arn: str, after_seq: int = 0) -> list[HistoryEvent]:
        log = self._events.get(execution_arn)
        if log is None:
            return []
        return log[max(after_seq, 0) :]

    async def load_executions(
        self, arns: Sequence[str]
    ) -> list[tuple[ExecutionRecord, list[HistoryEvent]]]:
        # ``_with_seq``: the record's last_seq is the store's, as ``get_execution`` returns it.
        return [
            (self._with_seq(self._records[arn]), list(self._events.get(arn, [])))
            for arn in arns
            if arn in self._records
        ]

    async def get_execution(self, arn: str) -> ExecutionRecord | None:
        record = self._records.get(arn)
        return None if record is None else self._with_seq(record)

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
        def wanted(r: ExecutionRecord) -> bool:
            return (
                (state_machine_arn is None or r.state_machine_arn == state_machine_arn)
                and (status is None or r.status == status)
                and (redriven is None or (r.redrive_count > 0) == redriven)
                and (version_arn is None or r.state_machine_version_arn == version_arn)
                and (alias_arn is None or r.state_machine_alias_arn == alias_arn)
            )

        if map_run_arn is not None:
            return self._children_page(map_run_arn, wanted, max(limit, 0), after)
        found = [
            r
            for r in self._records.values()
            if wanted(r) and (after is None or (r.start_date, r.execution_arn) < after)
        ]
        newest = heapq.nlargest(max(limit, 0), found, key=lambda r: (r.start_date, r.execution_arn))
        return [self._with_seq(r) for r in newest]

    async def open_executions(self) -> list[ExecutionRecord]:
        running = [r for r in self._records.values() if r.status == "RUNNING"]
        running.sort(key=lambda r: (r.start_date, r.execution_arn))
        return [self._with_seq(r) for r in running]

    def _children_page(
        self,
        map_run_arn: str,
        wanted: Callable[[ExecutionRecord], bool],
        limit: int,
        after: tuple[float, str] | None,
    ) -> list[ExecutionRecord]:
        """Up to ``limit`` wanted children of the Map Run, newest first, after ``after``."""
        keys = self._children.get(map_run_arn, [])
        index = len(keys) if after is None else bisect.bisect_left(keys, after)
        page: list[ExecutionRecord] = []
        while index > 0 and len(page) < limit:
            index -= 1
            rec = self._records[keys[index][1]]
            if wanted(rec):
                page.append(self._with_seq(rec))
        return page

    def _adopt(self, record: ExecutionRecord) -> None:
        """Count a new execution among its Map Run's children (if it is a child)."""
        if record.map_run_arn is not None:
            keys = self._children.setdefault(record.map_run_arn, [])
            bisect.insort(keys, (record.start_date, record.execution_arn))
            self._count_child(record.map_run_arn, record.status, 1)

    def _disown(self, record: ExecutionRecord) -> None:
        """Undo :meth:`_adopt` of ``record`` (as stored)."""
        if record.map_run_arn is None:
            return
        keys = self._children[record.map_run_arn]
        key = (record.start_date, record.execution_arn)
        index = bisect.bisect_left(keys, key)
        if index < len(keys) and keys[index] == key:
            del keys[index]
        self._count_child(record.map_run_arn, record.status, -1)

    def _count_child(self, map_run_arn: str, status: str, delta: int) -> None:
        counts = self._child_counts.setdefault(map_run_arn, {})
        left = counts.get(status, 0) + delta
        if left:
            counts[status] = left
        else:
            counts.pop(status, None)

    def _with_seq(self, record: ExecutionRecord) -> ExecutionRecord:
        seq = len(self._events[record.execution_arn])
        if record.last_seq == seq:
            return record
        return msgspec.structs.replace(record, last_seq=seq)

    # -- timers -----------------------------------------------------------------------------

    async def put_timers(self, timers: Sequence[Timer]) -> None:
        for t in timers:
            key = (t.execution_arn, t.timer_id)
            if self._timers.get(key) != t.fire_at:
                self._timers[key] = t.fire_at
                heapq.heappush(self._heap, (t.fire_at, t.execution_arn, t.timer_id))
        self._compact()

    async def delete_timers(self, keys: Sequence[tuple[str, str]]) -> None:
        for key in keys:
            self._timers.pop(key, None)
        self._compact()

    async def due_timers(self, until: float, limit: int) -> list[Timer]:
        heap = self._heap
        taken: list[tuple[float, str, str]] = []
        while heap and len(taken) < limit and heap[0][0] <= until:
            entry = heapq.heappop(heap)
            fire_at, arn, timer_id = entry
            # Skip stale entries and duplicates (a timer moved away and back again).
            if self._timers.get((arn, timer_id)) == fire_at and (not taken or taken[-1] != entry):
                taken.append(entry)
        for entry in taken:
            heapq.heappush(heap, entry)
        return [Timer(execution_arn=a, timer_id=i, fire_at=f) for f, a, i in taken]

    def _compact(self) -> None:
        # Rebuild when stale entries dominate, so the heap stays O(live timers).
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._timers):
            self._heap = [(f, a, i) for (a, i), f in self._timers.items()]
            heapq.heapify(self._heap)

    # -- activities and heartbeats ----------------------------------------------------------

    async def put_activity(self, rec: ActivityRecord) -> ActivityRecord:
        return self._activities.setdefault(rec.arn, rec)

    async def get_activity(self, arn: str) -> ActivityRecord | None:
        return self._activities.get(arn)

    async def list_activities(self) -> list[ActivityRecord]:
        return sorted(self._activities.values(), key=lambda r: (r.creation_date, r.arn))

    async def delete_activity(self, arn: str) -> None:
        self._activities.pop(arn, None)
        self._tags.pop(arn, None)

    async def put_heartbeat(self, execution_arn: str, frame: str, at: float) -> None:
        self._beats.setdefault(execution_arn, {})[frame] = at

    async def heartbeats(self, execution_arns: Sequence[str]) -> dict[str, dict[str, float]]:
        return {a: dict(self._beats[a]) for a in execution_arns if a in self._beats}

    async def delete_heartbeats(self, keys: Sequence[tuple[str, str]]) -> None:
        for arn, frame in keys:
            frames = self._beats.get(arn)
            if frames is not None:
                frames.pop(frame, None)
                if not frames:
                    del self._beats[arn]

    # -- schedules (the ScheduleStore port) ------------------------------------------------

    async def put_schedule(self, rec: ScheduleRecord, *, if_absent: bool = False) -> bool:
        stored = self._schedules.get(rec.arn)
        if stored is None:
            self._schedules[rec.arn] = rec
            return True
        if if_absent:
            return False
        self._schedules[rec.arn] = msgspec.structs.replace(
            rec, fire_mark=stored.fire_mark, missed_fires=stored.missed_fires
        )
        return True

    async def get_schedule(self, arn: str) -> ScheduleRecord | None:
        return self._schedules.get(arn)

    async def list_schedules(self, group_name: str | None = None) -> list[ScheduleRecord]:
        found = [
            r for r in self._schedules.values() if group_name is None or r.group_name == group_name
        ]
        return sorted(found, key=lambda r: (r.group_name, r.name))

    async def delete_schedule(self, arn: str) -> bool:
        return self._schedules.pop(arn, None) is not None

    async def advance_schedule_mark(
        self, arn: str, expected: float | None, new: float, *, missed: int = 0
    ) -> bool:
        check_mark(expected, new, missed)
        stored = self._schedules.get(arn)
        if stored is None or stored.fire_mark != expected:
            return False
        self._schedules[arn] = msgspec.structs.replace(
            stored, fire_mark=new, missed_fires=stored.missed_fires + missed
        )
        return True

    # -- Map Runs (the MapRunStore port) ---------------------------------------------------

    async def put_map_run(self, rec: MapRunRecord) -> bool:
        if rec.map_run_arn in self._map_runs:
            return False
        self._map_runs[rec.map_run_arn] = rec
        return True

    async def get_map_run(self, map_run_arn: str) -> MapRunRecord | None:
        return self._map_runs.get(map_run_arn)

    async def list_map_runs(self, execution_arn: str) -> list[MapRunRecord]:
        found = [r for r in self._map_runs.values() if r.execution_arn == execution_arn]
        return sorted(found, key=lambda r: (r.start_date, r.map_run_arn))

    async def count_map_run_children(self, map_run_arn: str) -> dict[str, int]:
        return dict(self._child_counts.get(map_run_arn, {}))

    # -- versions and aliases (the VersionStore port) ----------------------------------------

    async def publish_version(
        self,
        state_machine_arn: str,
        revision_id: str,
        description: str | None,
        creation_date: float,
    ) -> tuple[VersionRecord, bool]:
        live = self._versions.setdefault(state_machine_arn, {})
        for version in live.values():
            if version.revision_id == revision_id:
                return version, False
        number = self._version_marks.get(state_machine_arn, 0) + 1
        self._version_marks[state_machine_arn] = number
        rec = VersionRecord(
            state_machine_arn=state_machine_arn,
            version=number,
            revision_id=revision_id,
            description=description,
            creation_date=creation_date,
        )
        live[number] = rec
        return rec, True

    async def get_version(self, state_machine_arn: str, version: int) -> VersionRecord | None:
        return self._versions.get(state_machine_arn, {}).get(version)

    async def list_versions(self, state_machine_arn: str) -> list[VersionRecord]:
        live = self._versions.get(state_machine_arn, {})
        return [live[number] for number in sorted(live, reverse=True)]

    async def delete_version(self, state_machine_arn: str, version: int) -> bool:
        return self._versions.get(state_machine_arn, {}).pop(version, None) is not None

    async def put_alias(self, record: AliasRecord, *, create: bool) -> bool:
        aliases = self._aliases.setdefault(record.state_machine_arn, {})
        stored = aliases.get(record.name)
        if create:
            if stored is not None:
                return False
            aliases[record.name] = record
            return True
        if stored is None:
            return False
        aliases[record.name] = msgspec.structs.replace(record, creation_date=stored.creation_date)
        return True

    async def get_alias(self, state_machine_arn: str, name: str) -> AliasRecord | None:
        return self._aliases.get(state_machine_arn, {}).get(name)

    async def list_aliases(self, state_machine_arn: str) -> list[AliasRecord]:
        aliases = self._aliases.get(state_machine_arn, {}).values()
        return sorted(aliases, key=lambda a: (a.creation_date, a.name))

    async def delete_alias(self, state_machine_arn: str, name: str) -> bool:
        return self._aliases.get(state_machine_arn, {}).pop(name, None) is not None

    # -- tags (the TagStore port) -----------------------------------------------------------

    async def tag_resource(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        if tags:
            self._tags.setdefault(resource_arn, {}).update(tags)

    async def untag_resource(self, resource_arn: str, keys: Sequence[str]) -> None:
        tags = self._tags.get(resource_arn)
        if tags is None:
            return
        for key in keys:
            tags.pop(key, None)
        if not tags:
            del self._tags[resource_arn]

    async def list_tags(self, resource_arn: str) -> dict[str, str]:
        tags = self._tags.get(resource_arn, {})
        return {key: tags[key] for key in sorted(tags)}

    async def close(self) -> None:
        return None


def _origin(
    record: ExecutionRecord,
) -> tuple[str, str | None, str | None, str | None]:
    """What an execution's creation fixes and an append's record cannot change."""
    return (
        record.revision_id,
        record.map_run_arn,
        record.state_machine_version_arn,
        record.state_machine_alias_arn,
    )


def _implements_protocol(store: MemoryStore) -> EventStore:
    """Static check only (mypy): ``MemoryStore`` satisfies ``EventStore``."""
    return store


def _implements_schedules(store: MemoryStore) -> ScheduleStore:
    """Static check only (mypy): ``MemoryStore`` satisfies ``ScheduleStore``."""
    return store


def _implements_map_runs(store: MemoryStore) -> MapRunStore:
    """Static check only (mypy): ``MemoryStore`` satisfies ``MapRunStore``."""
    return store


def _implements_revisions(store: MemoryStore) -> StateMachineRevisions:
    """Static check only (mypy): ``MemoryStore`` satisfies ``StateMachineRevisions``."""
    return store


def _implements_versions(store: MemoryStore) -> VersionStore:
    """Static check only (mypy): ``MemoryStore`` satisfies ``VersionStore``."""
    return store


def _implements_tags(store: MemoryStore) -> TagStore:
    """Static check only (mypy): ``MemoryStore`` satisfies ``TagStore``."""
    return store
