"""The SQLite store's tables besides the event log, one mixin per port, which
:class:`~runtime.store.sqlite.SqliteStore` inherits: state machines and their revisions (the
``StateMachineRevisions`` port), activities and task-token heartbeats, operators' requests
(SQLite only, not part of the ``EventStore`` protocol), schedules (the ``ScheduleStore`` port),
Map Runs (the ``MapRunStore`` port), state machine versions and aliases (the ``VersionStore``
port) and tags (the ``TagStore`` port).

Every mixin derives from :class:`SqlitePort`, which declares what they use of the store: its
connection and lock (set by ``SqliteStore.__init__``) and its write transaction helpers
(defined in ``runtime.store.sqlite``, where the locking rules are explained). A method holds
``self._lock`` for a read, ``self._transaction()`` for a write, as the store's own do.

Imports ``store.base``, ``store.versions``, anyio and aiosqlite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Final

import aiosqlite
import anyio

from runtime.store.base import (
    ALIAS_COLUMNS,
    STATE_MACHINE_COLUMNS,
    VERSION_COLUMNS,
    ActivityRecord,
    MapRunRecord,
    ScheduleRecord,
    StateMachineRecord,
    alias_from_row,
    alias_row,
    check_mark,
    state_machine_from_row,
    version_from_row,
)
from runtime.store.sqlite_queries import GET_REQUEST, PENDING_REQUESTS, SELECT_STATE_MACHINES
from runtime.store.versions import AliasRecord, VersionRecord

__all__ = [
    "SqliteActivities",
    "SqliteMapRuns",
    "SqlitePort",
    "SqliteRequests",
    "SqliteSchedules",
    "SqliteStateMachines",
    "SqliteTags",
    "SqliteVersions",
]

_MAP_RUN_COLUMNS: Final = "map_run_arn, execution_arn, state_machine_arn, start_date"
# A range scan of the covering executions_by_map_run (the equality implies its IS NOT NULL).
_COUNT_CHILDREN: Final = (
    "SELECT status, count(*) FROM executions WHERE map_run_arn = ? GROUP BY status"
)


class SqlitePort:
    """What the port mixins use of ``SqliteStore`` (declared here, defined there)."""

    _conn: aiosqlite.Connection
    _lock: anyio.Lock

    if TYPE_CHECKING:

        def _transaction(self) -> AbstractAsyncContextManager[None]:
            """Hold the lock and run the body in one write transaction (commit, or roll back)."""

        async def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
            """Run ``sql`` once per row of ``rows`` in one write transaction."""


class SqliteStateMachines(SqlitePort):
    """State machines and their revisions (the ``StateMachineRevisions`` port)."""

    async def put_state_machine(self, rec: StateMachineRecord) -> None:
        row = (rec.arn, rec.name, rec.definition, rec.type, rec.creation_date, rec.revision_id)
        async with self._transaction():
            await self._conn.execute(
                f"INSERT OR REPLACE INTO state_machines ({STATE_MACHINE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            await self._conn.execute(
                f"INSERT OR REPLACE INTO state_machine_revisions ({STATE_MACHINE_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )

    async def get_state_machine_revision(
        self, arn: str, revision_id: str
    ) -> StateMachineRecord | None:
        async with self._lock:
            rows = list(
                await self._conn.execute_fetchall(
                    f"SELECT {STATE_MACHINE_COLUMNS} FROM state_machine_revisions "
                    "WHERE arn = ? AND revision_id = ?",
                    (arn, revision_id),
                )
            )
        return state_machine_from_row(rows[0]) if rows else None

    async def delete_state_machine(self, arn: str) -> bool:
        async with self._transaction():
            cursor = await self._conn.execute("DELETE FROM state_machines WHERE arn = ?", (arn,))
            # Its versions (tombstones too: a machine created again starts at 1), aliases and
            # tags go with it (issue 13).
            for statement in (
                "DELETE FROM state_machine_versions WHERE state_machine_arn = ?",
                "DELETE FROM state_machine_aliases WHERE state_machine_arn = ?",
                "DELETE FROM tags WHERE resource_arn = ?",
            ):
                await self._conn.execute(statement, (arn,))
            return cursor.rowcount > 0

    async def get_state_machine(self, arn: str) -> StateMachineRecord | None:
        machines = await self._machines("WHERE arn = ?", (arn,))
        return machines[0] if machines else None

    async def list_state_machines(self) -> list[StateMachineRecord]:
        return await self._machines("ORDER BY creation_date, arn", ())

    async def _machines(self, clause: str, params: tuple[Any, ...]) -> list[StateMachineRecord]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(f"{SELECT_STATE_MACHINES} {clause}", params)
        return [state_machine_from_row(row) for row in rows]


class SqliteActivities(SqlitePort):
    """Activities (CreateActivity) and task-token heartbeats: both survive a restart."""

    async def put_activity(self, rec: ActivityRecord) -> ActivityRecord:
        async with self._transaction():
            await self._conn.execute(
                "INSERT OR IGNORE INTO activities (arn, name, creation_date) VALUES (?, ?, ?)",
                (rec.arn, rec.name, rec.creation_date),
            )
            rows = list(
                await self._conn.execute_fetchall(
                    "SELECT arn, name, creation_date FROM activities WHERE arn = ?", (rec.arn,)
                )
            )
        arn, name, created = rows[0]
        return ActivityRecord(arn=arn, name=name, creation_date=created)

    async def get_activity(self, arn: str) -> ActivityRecord | None:
        found = await self._activities("WHERE arn = ?", (arn,))
        return found[0] if found else None

    async def list_activities(self) -> list[ActivityRecord]:
        return await self._activities("ORDER BY creation_date, arn", ())

    async def _activities(self, clause: str, params: tuple[Any, ...]) -> list[ActivityRecord]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(
                f"SELECT arn, name, creation_date FROM activities {clause}", params
            )
        return [ActivityRecord(arn=a, name=n, creation_date=c) for a, n, c in rows]

    async def delete_activity(self, arn: str) -> None:
        async with self._transaction():
            await self._conn.execute("DELETE FROM activities WHERE arn = ?", (arn,))
            await self._conn.execute("DELETE FROM tags WHERE resource_arn = ?", (arn,))

    async def put_heartbeat(self, execution_arn: str, frame: str, at: float) -> None:
        await self._write_many(
            "INSERT OR REPLACE INTO heartbeats (execution_arn, frame, at) VALUES (?, ?, ?)",
            [(execution_arn, frame, at)],
        )

    async def heartbeats(self, execution_arns: Sequence[str]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for start in range(0, len(execution_arns), 500):  # SQLite's bound-parameter limit
            chunk = list(execution_arns[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            async with self._lock:
                rows = await self._conn.execute_fetchall(
                    "SELECT execution_arn, frame, at FROM heartbeats "
                    f"WHERE execution_arn IN ({marks})",
                    chunk,
                )
            for arn, frame, at in rows:
                out.setdefault(arn, {})[frame] = at
        return out

    async def delete_heartbeats(self, keys: Sequence[tuple[str, str]]) -> None:
        if keys:
            await self._write_many(
                "DELETE FROM heartbeats WHERE execution_arn = ? AND frame = ?", list(keys)
            )


class SqliteRequests(SqlitePort):
    """Operators' requests (``statemill start|stop|send-task-*``), recorded for a runtime to
    apply; not part of the ``EventStore`` protocol."""

    async def add_request(self, kind: str, payload: str, created: float) -> int:
        """Record an operator's request (``payload`` is JSON text); returns its id."""
        async with self._transaction():
            cursor = await self._conn.execute(
                "INSERT INTO requests (kind, payload, created) VALUES (?, ?, ?)",
                (kind, payload, created),
            )
            request_id = cursor.lastrowid
        assert request_id is not None
        return request_id

    async def pending_requests(self, limit: int = 100) -> list[tuple[int, str, str, float]]:
        """The oldest ``PENDING`` requests: (id, kind, payload, created)."""
        async with self._lock:
            rows = await self._conn.execute_fetchall(PENDING_REQUESTS, (limit,))
        return [(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    async def finish_request(self, request_id: int, status: str, result: str) -> None:
        """Mark a request ``DONE`` or ``FAILED`` with its result (JSON text)."""
        async with self._transaction():
            await self._conn.execute(
                "UPDATE requests SET status = ?, result = ? WHERE id = ?",
                (status, result, request_id),
            )

    async def finish_requests(self, results: Sequence[tuple[int, str, str]]) -> None:
        """Mark many requests, (id, status, result) each, in one write transaction."""
        if results:
            await self._write_many(
                "UPDATE requests SET status = ?, result = ? WHERE id = ?",
                [(status, result, request_id) for request_id, status, result in results],
            )

    async def get_request(self, request_id: int) -> tuple[str, str, str | None] | None:
        """(kind, status, result) of a request, or None."""
        async with self._lock:
            rows = list(await self._conn.execute_fetchall(GET_REQUEST, (request_id,)))
        if not rows:
            return None
        kind, status, result = rows[0]
        return str(kind), str(status), None if result is None else str(result)


class SqliteSchedules(SqlitePort):
    """EventBridge Scheduler's schedules and their fire marks (the ``ScheduleStore`` port)."""

    async def put_schedule(self, rec: ScheduleRecord, *, if_absent: bool = False) -> bool:
        conflict = (
            "DO NOTHING"
            if if_absent
            else "DO UPDATE SET group_name = excluded.group_name, name = excluded.name, "
            "schedule = excluded.schedule, creation_date = excluded.creation_date"
        )
        async with self._transaction():
            cursor = await self._conn.execute(
                "INSERT INTO schedules (arn, group_name, name, schedule, creation_date, "
                "fire_mark, missed_fires) VALUES (?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (arn) {conflict}",
                (
                    rec.arn,
                    rec.group_name,
                    rec.name,
                    rec.schedule,
                    rec.creation_date,
                    rec.fire_mark,
                    rec.missed_fires,
                ),
            )
        return bool(cursor.rowcount)

    async def get_schedule(self, arn: str) -> ScheduleRecord | None:
        found = await self._schedules("WHERE arn = ?", (arn,))
        return found[0] if found else None

    async def list_schedules(self, group_name: str | None = None) -> list[ScheduleRecord]:
        if group_name is None:
            return await self._schedules("ORDER BY group_name, name", ())
        return await self._schedules("WHERE group_name = ? ORDER BY name", (group_name,))

    async def _schedules(self, clause: str, params: tuple[Any, ...]) -> list[ScheduleRecord]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(
                "SELECT arn, group_name, name, schedule, creation_date, fire_mark, missed_fires "
                f"FROM schedules {clause}",
                params,
            )
        return [
            ScheduleRecord(
                arn=arn,
                group_name=group,
                name=name,
                schedule=body,
                creation_date=created,
                fire_mark=mark,
                missed_fires=missed,
            )
            for arn, group, name, body, created, mark, missed in rows
        ]

    async def delete_schedule(self, arn: str) -> bool:
        async with self._transaction():
            cursor = await self._conn.execute("DELETE FROM schedules WHERE arn = ?", (arn,))
        return bool(cursor.rowcount)

    async def advance_schedule_mark(
        self, arn: str, expected: float | None, new: float, *, missed: int = 0
    ) -> bool:
        check_mark(expected, new, missed)
        # ``IS`` compares NULL with NULL: the check and the write are one statement.
        async with self._transaction():
            cursor = await self._conn.execute(
                "UPDATE schedules SET fire_mark = ?, missed_fires = missed_fires + ? "
                "WHERE arn = ? AND fire_mark IS ?",
                (new, missed, arn, expected),
            )
        return cursor.rowcount == 1


class SqliteMapRuns(SqlitePort):
    """Distributed Map Runs and their children's counts (the ``MapRunStore`` port)."""

    async def put_map_run(self, rec: MapRunRecord) -> bool:
        async with self._transaction():
            cursor = await self._conn.execute(
                f"INSERT OR IGNORE INTO map_runs ({_MAP_RUN_COLUMNS}) VALUES (?, ?, ?, ?)",
                (rec.map_run_arn, rec.execution_arn, rec.state_machine_arn, rec.start_date),
            )
        return cursor.rowcount == 1

    async def get_map_run(self, map_run_arn: str) -> MapRunRecord | None:
        found = await self._map_runs("WHERE map_run_arn = ?", (map_run_arn,))
        return found[0] if found else None

    async def list_map_runs(self, execution_arn: str) -> list[MapRunRecord]:
        return await self._map_runs(
            "WHERE execution_arn = ? ORDER BY start_date, map_run_arn", (execution_arn,)
        )

    async def _map_runs(self, clause: str, params: tuple[Any, ...]) -> list[MapRunRecord]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(
                f"SELECT {_MAP_RUN_COLUMNS} FROM map_runs {clause}", params
            )
        return [
            MapRunRecord(map_run_arn=m, execution_arn=e, state_machine_arn=s, start_date=d)
            for m, e, s, d in rows
        ]

    async def count_map_run_children(self, map_run_arn: str) -> dict[str, int]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(_COUNT_CHILDREN, (map_run_arn,))
        return {str(status): int(count) for status, count in rows}


class SqliteVersions(SqlitePort):
    """State machine versions and aliases (the ``VersionStore`` port)."""

    async def publish_version(
        self,
        state_machine_arn: str,
        revision_id: str,
        description: str | None,
        creation_date: float,
    ) -> tuple[VersionRecord, bool]:
        # One BEGIN IMMEDIATE transaction: another process on the file waits for it, so the
        # look-up and the numbering cannot interleave with another publish.
        async with self._transaction():
            rows = list(
                await self._conn.execute_fetchall(
                    f"SELECT {VERSION_COLUMNS} FROM state_machine_versions "
                    "WHERE state_machine_arn = ? AND revision_id = ? AND deleted = 0",
                    (state_machine_arn, revision_id),
                )
            )
            if rows:
                return version_from_row(rows[0]), False
            # Tombstones count: a deleted version's number is not given again.
            marks = list(
                await self._conn.execute_fetchall(
                    "SELECT coalesce(max(version), 0) FROM state_machine_versions "
                    "WHERE state_machine_arn = ?",
                    (state_machine_arn,),
                )
            )
            rec = VersionRecord(
                state_machine_arn=state_machine_arn,
                version=int(marks[0][0]) + 1,
                revision_id=revision_id,
                description=description,
                creation_date=creation_date,
            )
            await self._conn.execute(
                f"INSERT INTO state_machine_versions ({VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (rec.state_machine_arn, rec.version, rec.revision_id, description, creation_date),
            )
        return rec, True

    async def get_version(self, state_machine_arn: str, version: int) -> VersionRecord | None:
        found = await self._versions("AND version = ?", (state_machine_arn, version))
        return found[0] if found else None

    async def list_versions(self, state_machine_arn: str) -> list[VersionRecord]:
        return await self._versions("ORDER BY version DESC", (state_machine_arn,))

    async def _versions(self, clause: str, params: tuple[Any, ...]) -> list[VersionRecord]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(
                f"SELECT {VERSION_COLUMNS} FROM state_machine_versions "
                f"WHERE state_machine_arn = ? AND deleted = 0 {clause}",
                params,
            )
        return [version_from_row(row) for row in rows]

    async def delete_version(self, state_machine_arn: str, version: int) -> bool:
        async with self._transaction():
            cursor = await self._conn.execute(
                "UPDATE state_machine_versions SET deleted = 1 "
                "WHERE state_machine_arn = ? AND version = ? AND deleted = 0",
                (state_machine_arn, version),
            )
        return cursor.rowcount == 1

    async def put_alias(self, record: AliasRecord, *, create: bool) -> bool:
        row = alias_row(record)
        async with self._transaction():
            if create:
                cursor = await self._conn.execute(
                    f"INSERT OR IGNORE INTO state_machine_aliases ({ALIAS_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                )
            else:  # never its creation_date
                machine, name, description, routing, _, updated = row
                cursor = await self._conn.execute(
                    "UPDATE state_machine_aliases SET description = ?, routing = ?, "
                    "update_date = ? WHERE state_machine_arn = ? AND name = ?",
                    (description, routing, updated, machine, name),
                )
        return cursor.rowcount == 1

    async def get_alias(self, state_machine_arn: str, name: str) -> AliasRecord | None:
        found = await self._aliases("AND name = ?", (state_machine_arn, name))
        return found[0] if found else None

    async def list_aliases(self, state_machine_arn: str) -> list[AliasRecord]:
        return await self._aliases("ORDER BY creation_date, name", (state_machine_arn,))

    async def _aliases(self, clause: str, params: tuple[Any, ...]) -> list[AliasRecord]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(
                f"SELECT {ALIAS_COLUMNS} FROM state_machine_aliases "
                f"WHERE state_machine_arn = ? {clause}",
                params,
            )
        return [alias_from_row(row) for row in rows]

    async def delete_alias(self, state_machine_arn: str, name: str) -> bool:
        async with self._transaction():
            cursor = await self._conn.execute(
                "DELETE FROM state_machine_aliases WHERE state_machine_arn = ? AND name = ?",
                (state_machine_arn, name),
            )
        return cursor.rowcount == 1


class SqliteTags(SqlitePort):
    """Tags of state machines and activities (the ``TagStore`` port)."""

    async def tag_resource(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        if tags:
            await self._write_many(
                "INSERT INTO tags (resource_arn, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (resource_arn, key) DO UPDATE SET value = excluded.value",
                [(resource_arn, key, value) for key, value in tags.items()],
            )

    async def untag_resource(self, resource_arn: str, keys: Sequence[str]) -> None:
        if keys:
            await self._write_many(
                "DELETE FROM tags WHERE resource_arn = ? AND key = ?",
                [(resource_arn, key) for key in keys],
            )

    async def list_tags(self, resource_arn: str) -> dict[str, str]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(
                "SELECT key, value FROM tags WHERE resource_arn = ? ORDER BY key",
                (resource_arn,),
            )
        return {str(key): str(value) for key, value in rows}
