"""EXPRESS executions in memory, everything else in a durable store: one ``EventStore``.

AWS keeps no execution history for EXPRESS workflows (GetExecutionHistory, DescribeExecution and
ListExecutions do not serve them; only StartSyncExecution's answer and CloudWatch logs do), which
is what makes them cheap. ``ExpressStore`` gives the engine that contract without the engine
knowing: an execution whose ARN is an EXPRESS one (``...:express:...``, as ``Runtime`` names
them) is written to an in-memory :class:`MemoryStore`, never to the durable store's events table;
every other execution, state machines, activities and heartbeats go to the durable store.

Invariants:

* A batch is still all or nothing: the in-memory part is validated before the durable part is
  written, and written (it cannot fail then) only after the durable commit.
* An EXPRESS execution's log is held while it runs. Once an append carries its final record
  (status other than RUNNING) the log is dropped and only the record is kept, in a bounded
  most-recent-first cache of ``keep_finished`` records, so that StartSyncExecution and a parent's
  ``.sync`` Task can read the result. After a restart no EXPRESS execution is known (as on AWS,
  an EXPRESS execution does not survive its host).

Versions, aliases and tags (the ``VersionStore`` and ``TagStore`` ports of
:mod:`runtime.store.versions`) are the durable store's: every call is forwarded to it, and one
raises ``TypeError`` when it does not implement the port (every store here does).

The durable store is owned by whoever opened it: :meth:`close` does not close it.

Imports ``store.base``, ``store.memory``, ``store.versions``, ``core.events`` and ``errors``.
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Mapping, Sequence
from typing import Final, final

from runtime.core.events import HistoryEvent
from runtime.store.base import (
    ActivityRecord,
    Append,
    EventStore,
    ExecutionRecord,
    StateMachineRecord,
    Timer,
)
from runtime.store.memory import MemoryStore
from runtime.store.versions import AliasRecord, TagStore, VersionRecord, VersionStore

__all__ = ["ExpressStore", "is_express"]

_MARK: Final = ":express:"


def is_express(execution_arn: str) -> bool:
    """Whether the ARN names an EXPRESS execution (AWS: ``arn:...:express:machine:name:id``)."""
    return _MARK in execution_arn


@final
class ExpressStore:
    """An ``EventStore`` that keeps EXPRESS executions in memory (see the module docstring)."""

    durable = True

    def __init__(self, durable: EventStore, *, keep_finished: int = 10_000) -> None:
        self.backing = durable
        """The durable store every non-EXPRESS row goes to."""
        self.memory = MemoryStore()
        self._finished: collections.OrderedDict[str, ExecutionRecord] = collections.OrderedDict()
        self._keep_finished = keep_finished

    # -- state machines, activities, heartbeats: the durable store ----------------------------

    async def put_state_machine(self, rec: StateMachineRecord) -> None:
        await self.backing.put_state_machine(rec)

    async def get_state_machine(self, arn: str) -> StateMachineRecord | None:
        return await self.backing.get_state_machine(arn)

    async def list_state_machines(self) -> list[StateMachineRecord]:
        return await self.backing.list_state_machines()

    async def put_activity(self, rec: ActivityRecord) -> ActivityRecord:
        return await self.backing.put_activity(rec)

    async def get_activity(self, arn: str) -> ActivityRecord | None:
        return await self.backing.get_activity(arn)

    async def list_activities(self) -> list[ActivityRecord]:
        return await self.backing.list_activities()

    async def delete_activity(self, arn: str) -> None:
        await self.backing.delete_activity(arn)

    async def put_heartbeat(self, execution_arn: str, frame: str, at: float) -> None:
        if is_express(execution_arn):
            return  # an EXPRESS execution does not outlive the process: nothing to restore
        await self.backing.put_heartbeat(execution_arn, frame, at)

    async def heartbeats(self, execution_arns: Sequence[str]) -> dict[str, dict[str, float]]:
        return await self.backing.heartbeats(execution_arns)

    async def delete_heartbeats(self, keys: Sequence[tuple[str, str]]) -> None:
        await self.backing.delete_heartbeats([k for k in keys if not is_express(k[0])])

    # -- executions and events --------------------------------------------------------------

    async def create_execution(
        self, record: ExecutionRecord, events: Sequence[HistoryEvent]
    ) -> None:
        await self.create_executions([(record, events)])

    async def create_executions(
        self, items: Sequence[tuple[ExecutionRecord, Sequence[HistoryEvent]]]
    ) -> None:
        express = [item for item in items if is_express(item[0].execution_arn)]
        if not express:
            await self.backing.create_executions(items)
            return
        self.memory.check_create(express)
        durable = [item for item in items if not is_express(item[0].execution_arn)]
        if durable:
            await self.backing.create_executions(durable)
        await self.memory.create_executions(express)

    async def append(self, batch: Sequence[Append]) -> None:
        if not self.memory.holds_any():
            await self.backing.append(batch)
            return
        express = [item for item in batch if is_express(item.execution_arn)]
        if not express:
            await self.backing.append(batch)
            return
        self.memory.check_append(express)
        durable = [item for item in batch if not is_express(item.execution_arn)]
        if durable:
            await self.backing.append(durable)
        await self.memory.append(express)
        for item in express:
            if item.record is not None and item.record.status != "RUNNING":
                self._finish(item.record)

    def _finish(self, record: ExecutionRecord) -> None:
        """Drop an ended EXPRESS execution's log; keep its final record for a while."""
        arn = record.execution_arn
        self.memory.forget(arn)
        self._finished[arn] = record
        self._finished.move_to_end(arn)
        while len(self._finished) > self._keep_finished:
            self._finished.popitem(last=False)

    async def read(self, execution_arn: str, after_seq: int = 0) -> list[HistoryEvent]:
        if is_express(execution_arn):
            return await self.memory.read(execution_arn, after_seq)
        return await self.backing.read(execution_arn, after_seq)

    async def load_executions(
        self, arns: Sequence[str]
    ) -> list[tuple[ExecutionRecord, list[HistoryEvent]]]:
        express = [arn for arn in arns if is_express(arn)]
        if not express:
            return await self.backing.load_executions(arns)
        durable = [arn for arn in arns if not is_express(arn)]
        loaded = await self.memory.load_executions(express)
        if durable:
            loaded.extend(await self.backing.load_executions(durable))
        return loaded

    async def get_execution(self, arn: str) -> ExecutionRecord | None:
        if is_express(arn):
            found = await self.memory.get_execution(arn)
            return found if found is not None else self._finished.get(arn)
        return await self.backing.get_execution(arn)

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
        """The durable executions plus the EXPRESS ones running now (AWS lists no EXPRESS
        execution; running ones are listed here so an operator sees what the process does)."""
        durable = await self.backing.list_executions(
            state_machine_arn,
            status,
            limit,
            after=after,
            redriven=redriven,
            map_run_arn=map_run_arn,
            version_arn=version_arn,
            alias_arn=alias_arn,
        )
        if not self.memory.holds_any():
            return durable
        running = await self.memory.list_executions(
            state_machine_arn,
            status,
            limit,
            after=after,
            redriven=redriven,
            map_run_arn=map_run_arn,
            version_arn=version_arn,
            alias_arn=alias_arn,
        )
        merged = heapq.merge(
            durable, running, key=lambda r: (-r.start_date, _Desc(r.execution_arn))
        )
        return list(merged)[: max(limit, 0)]

    async def open_executions(self) -> list[ExecutionRecord]:
        return await self.backing.open_executions()

    # -- timers -----------------------------------------------------------------------------

    async def put_timers(self, timers: Sequence[Timer]) -> None:
        await self.memory.put_timers([t for t in timers if is_express(t.execution_arn)])
        await self.backing.put_timers([t for t in timers if not is_express(t.execution_arn)])

    async def delete_timers(self, keys: Sequence[tuple[str, str]]) -> None:
        await self.memory.delete_timers([k for k in keys if is_express(k[0])])
        await self.backing.delete_timers([k for k in keys if not is_express(k[0])])

    async def due_timers(self, until: float, limit: int) -> list[Timer]:
        durable = await self.backing.due_timers(until, limit)
        if not self.memory.holds_any():
            return durable
        express = await self.memory.due_timers(until, limit)
        merged = heapq.merge(durable, express, key=lambda t: (t.fire_at, t.execution_arn))
        return list(merged)[: max(limit, 0)]

    # -- versions, aliases and tags: the durable store's ports ------------------------------

    def _versions(self) -> VersionStore:
        if not isinstance(self.backing, VersionStore):
            raise TypeError(f"{type(self.backing).__name__} does not store versions")
        return self.backing

    def _tags(self) -> TagStore:
        if not isinstance(self.backing, TagStore):
            raise TypeError(f"{type(self.backing).__name__} does not store tags")
        return self.backing

    async def publish_version(
        self,
        state_machine_arn: str,
        revision_id: str,
        description: str | None,
        creation_date: float,
    ) -> tuple[VersionRecord, bool]:
        return await self._versions().publish_version(
            state_machine_arn, revision_id, description, creation_date
        )

    async def get_version(self, state_machine_arn: str, version: int) -> VersionRecord | None:
        return await self._versions().get_version(state_machine_arn, version)

    async def list_versions(self, state_machine_arn: str) -> list[VersionRecord]:
        return await self._versions().list_versions(state_machine_arn)

    async def delete_version(self, state_machine_arn: str, version: int) -> bool:
        return await self._versions().delete_version(state_machine_arn, version)

    async def put_alias(self, record: AliasRecord, *, create: bool) -> bool:
        return await self._versions().put_alias(record, create=create)

    async def get_alias(self, state_machine_arn: str, name: str) -> AliasRecord | None:
        return await self._versions().get_alias(state_machine_arn, name)

    async def list_aliases(self, state_machine_arn: str) -> list[AliasRecord]:
        return await self._versions().list_aliases(state_machine_arn)

    async def delete_alias(self, state_machine_arn: str, name: str) -> bool:
        return await self._versions().delete_alias(state_machine_arn, name)

    async def tag_resource(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        await self._tags().tag_resource(resource_arn, tags)

    async def untag_resource(self, resource_arn: str, keys: Sequence[str]) -> None:
        await self._tags().untag_resource(resource_arn, keys)

    async def list_tags(self, resource_arn: str) -> dict[str, str]:
        return await self._tags().list_tags(resource_arn)

    async def close(self) -> None:
        await self.memory.close()


@final
class _Desc:
    """Orders strings descending (ListExecutions breaks start-date ties by ARN, descending)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __lt__(self, other: _Desc) -> bool:
        return self.text > other.text


def _implements_protocol(store: ExpressStore) -> EventStore:
    """Static check only (mypy): ``ExpressStore`` satisfies ``EventStore``."""
    return store


def _implements_versions(store: ExpressStore) -> VersionStore:
    """Static check only (mypy): ``ExpressStore`` satisfies ``VersionStore``."""
    return store


def _implements_tags(store: ExpressStore) -> TagStore:
    """Static check only (mypy): ``ExpressStore`` satisfies ``TagStore``."""
    return store
