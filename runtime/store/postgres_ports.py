"""The PostgreSQL store's tables besides the event log, one mixin per port, which
:class:`~runtime.store.postgres.PostgresStore` inherits: state machines and their revisions (the
``StateMachineRevisions`` port), activities and task-token heartbeats, schedules (the
``ScheduleStore`` port), Map Runs (the ``MapRunStore`` port), versions and aliases (the
``VersionStore`` port), tags (the ``TagStore`` port), and two tables a cluster shares that are
not part of the ``EventStore`` protocol: activity tasks and operators' requests.

Every mixin derives from :class:`PostgresPort`, which declares what they use of the store: its
asyncpg pool (set by ``PostgresStore.__init__``) and its write helpers (defined in
``runtime.store.postgres``, where the transaction and fencing rules are explained). Semantics
follow SQLite's mixins (:mod:`runtime.store.sqlite_ports`) row for row.

Imports ``store.base``, ``store.express``, ``store.partitions`` and ``store.versions``; not
asyncpg (the pool is given).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Final

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
from runtime.store.express import is_express
from runtime.store.partitions import partition_of
from runtime.store.versions import AliasRecord, VersionRecord

__all__ = [
    "REQUESTS_CHANNEL",
    "RESULTS_CHANNEL",
    "PostgresActivities",
    "PostgresActivityTasks",
    "PostgresMapRuns",
    "PostgresPort",
    "PostgresRequests",
    "PostgresSchedules",
    "PostgresStateMachines",
    "PostgresTags",
    "PostgresVersions",
    "fenced_arns",
]

#: The channel ``add_request`` notifies (payload: the partition): a wake-up hint for the
#: partition's owner, never needed for correctness (owners also poll).
REQUESTS_CHANNEL: Final = "statemill_requests"
#: The channel ``finish_request`` notifies (payload: the request id): a hint for its asker.
RESULTS_CHANNEL: Final = "statemill_results"

_MAP_RUN_COLUMNS: Final = "map_run_arn, execution_arn, state_machine_arn, start_date"

# Two-key advisory lock (this constant, hashtext of the state machine ARN) held by the
# transactions that number or drop a machine's versions: publishes of one machine, and its
# deletion, run one at a time across processes (see ``PostgresVersions.publish_version``).
_VERSIONS_LOCK: Final = 0x5337_5631
_LOCK_VERSIONS: Final = "SELECT pg_advisory_xact_lock($1, hashtext($2))"


def fenced_arns(arns: Iterable[str]) -> list[int]:
    """The partitions a write of ``arns`` must hold: EXPRESS executions are written only by
    the process that started them, so they are not fenced."""
    return [partition_of(arn) for arn in arns if not is_express(arn)]


class PostgresPort:
    """What the port mixins use of ``PostgresStore`` (declared here, defined there)."""

    _pool: Any

    if TYPE_CHECKING:

        def _write(
            self, partitions: Iterable[int] | None = None
        ) -> AbstractAsyncContextManager[Any]:
            """A connection in a write transaction (commit, or roll back on an exception),
            with the append guard checked first when ``partitions`` are given."""

        async def _delete_pairs(
            self, table: str, column: str, keys: Sequence[tuple[str, str]]
        ) -> None:
            """Delete the rows of ``table`` keyed by (``execution_arn``, ``column``) ``keys``."""


class PostgresStateMachines(PostgresPort):
    """State machines and their revisions (the ``StateMachineRevisions`` port)."""

    async def put_state_machine(self, rec: StateMachineRecord) -> None:
        row = (rec.arn, rec.name, rec.definition, rec.type, rec.creation_date, rec.revision_id)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO state_machines (arn, name, definition, type, creation_date, "
                "revision_id) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (arn) DO UPDATE SET "
                "name = EXCLUDED.name, definition = EXCLUDED.definition, type = EXCLUDED.type, "
                "creation_date = EXCLUDED.creation_date, revision_id = EXCLUDED.revision_id",
                *row,
            )
            await conn.execute(
                f"INSERT INTO state_machine_revisions ({STATE_MACHINE_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (arn, revision_id) DO UPDATE SET "
                "name = EXCLUDED.name, definition = EXCLUDED.definition, type = EXCLUDED.type, "
                "creation_date = EXCLUDED.creation_date",
                *row,
            )

    async def get_state_machine_revision(
        self, arn: str, revision_id: str
    ) -> StateMachineRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {STATE_MACHINE_COLUMNS} FROM state_machine_revisions "
            "WHERE arn = $1 AND revision_id = $2",
            arn,
            revision_id,
        )
        return None if row is None else state_machine_from_row(row)

    async def delete_state_machine(self, arn: str) -> bool:
        # Its versions (tombstones too: a machine created again starts at 1), aliases and tags
        # go with it (issue 13); every data-modifying WITH runs, read or not. Under the
        # versions lock, so that no publish running at once leaves a version behind.
        async with self._write() as conn:
            await conn.execute(_LOCK_VERSIONS, _VERSIONS_LOCK, arn)
            deleted = await conn.fetchval(
                "WITH v AS (DELETE FROM state_machine_versions WHERE state_machine_arn = $1), "
                "a AS (DELETE FROM state_machine_aliases WHERE state_machine_arn = $1), "
                "t AS (DELETE FROM tags WHERE resource_arn = $1), "
                "d AS (DELETE FROM state_machines WHERE arn = $1 RETURNING 1) "
                "SELECT count(*) FROM d",
                arn,
            )
        return bool(deleted)

    async def get_state_machine(self, arn: str) -> StateMachineRecord | None:
        machines = await self._machines("WHERE arn = $1", arn)
        return machines[0] if machines else None

    async def list_state_machines(self) -> list[StateMachineRecord]:
        return await self._machines("ORDER BY creation_date, arn")

    async def _machines(self, clause: str, *params: Any) -> list[StateMachineRecord]:
        rows = await self._pool.fetch(
            f"SELECT {STATE_MACHINE_COLUMNS} FROM state_machines {clause}",
            *params,
        )
        return [state_machine_from_row(row) for row in rows]


class PostgresActivities(PostgresPort):
    """Activities (CreateActivity) and task-token heartbeats: both survive a restart."""

    async def put_activity(self, rec: ActivityRecord) -> ActivityRecord:
        # The SELECT sees the snapshot before the INSERT: exactly one of the two has the row.
        row = await self._pool.fetchrow(
            "WITH ins AS (INSERT INTO activities (arn, name, creation_date) "
            "VALUES ($1, $2, $3) ON CONFLICT (arn) DO NOTHING RETURNING arn, name, creation_date) "
            "SELECT * FROM ins UNION ALL "
            "SELECT arn, name, creation_date FROM activities WHERE arn = $1",
            rec.arn,
            rec.name,
            rec.creation_date,
        )
        arn, name, created = row
        return ActivityRecord(arn=arn, name=name, creation_date=created)

    async def get_activity(self, arn: str) -> ActivityRecord | None:
        found = await self._activities("WHERE arn = $1", arn)
        return found[0] if found else None

    async def list_activities(self) -> list[ActivityRecord]:
        return await self._activities("ORDER BY creation_date, arn")

    async def _activities(self, clause: str, *params: Any) -> list[ActivityRecord]:
        rows = await self._pool.fetch(
            f"SELECT arn, name, creation_date FROM activities {clause}", *params
        )
        return [ActivityRecord(arn=a, name=n, creation_date=c) for a, n, c in rows]

    async def delete_activity(self, arn: str) -> None:
        await self._pool.execute(
            "WITH t AS (DELETE FROM tags WHERE resource_arn = $1) "
            "DELETE FROM activities WHERE arn = $1",
            arn,
        )

    async def put_heartbeat(self, execution_arn: str, frame: str, at: float) -> None:
        await self._pool.execute(
            "INSERT INTO heartbeats (execution_arn, frame, at) VALUES ($1, $2, $3) "
            "ON CONFLICT (execution_arn, frame) DO UPDATE SET at = EXCLUDED.at",
            execution_arn,
            frame,
            at,
        )

    async def heartbeats(self, execution_arns: Sequence[str]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        if not execution_arns:
            return out
        rows = await self._pool.fetch(
            "SELECT execution_arn, frame, at FROM heartbeats WHERE execution_arn = ANY($1::text[])",
            list(execution_arns),
        )
        for arn, frame, at in rows:
            out.setdefault(arn, {})[frame] = at
        return out

    async def delete_heartbeats(self, keys: Sequence[tuple[str, str]]) -> None:
        if keys:
            await self._delete_pairs("heartbeats", "frame", keys)


class PostgresSchedules(PostgresPort):
    """EventBridge Scheduler's schedules and their fire marks (the ``ScheduleStore`` port)."""

    async def put_schedule(self, rec: ScheduleRecord, *, if_absent: bool = False) -> bool:
        conflict = (
            "DO NOTHING"
            if if_absent
            else "DO UPDATE SET group_name = EXCLUDED.group_name, name = EXCLUDED.name, "
            "schedule = EXCLUDED.schedule, creation_date = EXCLUDED.creation_date"
        )
        status = await self._pool.execute(
            "INSERT INTO schedules (arn, group_name, name, schedule, creation_date, fire_mark, "
            f"missed_fires) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (arn) {conflict}",
            rec.arn,
            rec.group_name,
            rec.name,
            rec.schedule,
            rec.creation_date,
            rec.fire_mark,
            rec.missed_fires,
        )
        return str(status) != "INSERT 0 0"

    async def get_schedule(self, arn: str) -> ScheduleRecord | None:
        found = await self._schedules("WHERE arn = $1", arn)
        return found[0] if found else None

    async def list_schedules(self, group_name: str | None = None) -> list[ScheduleRecord]:
        if group_name is None:
            return await self._schedules("ORDER BY group_name, name")
        return await self._schedules("WHERE group_name = $1 ORDER BY name", group_name)

    async def _schedules(self, clause: str, *params: Any) -> list[ScheduleRecord]:
        rows = await self._pool.fetch(
            "SELECT arn, group_name, name, schedule, creation_date, fire_mark, missed_fires "
            f"FROM schedules {clause}",
            *params,
        )
        return [
            ScheduleRecord(
                arn=arn,
                group_name=group,
                name=name,
                schedule=body,
                creation_date=created,
                fire_mark=mark,
                missed_fires=int(missed),
            )
            for arn, group, name, body, created, mark, missed in rows
        ]

    async def delete_schedule(self, arn: str) -> bool:
        status = await self._pool.execute("DELETE FROM schedules WHERE arn = $1", arn)
        return str(status) != "DELETE 0"

    async def advance_schedule_mark(
        self, arn: str, expected: float | None, new: float, *, missed: int = 0
    ) -> bool:
        check_mark(expected, new, missed)
        status = await self._pool.execute(
            "UPDATE schedules SET fire_mark = $1, missed_fires = missed_fires + $2 "
            "WHERE arn = $3 AND fire_mark IS NOT DISTINCT FROM $4::float8",
            new,
            missed,
            arn,
            expected,
        )
        return str(status) == "UPDATE 1"


class PostgresMapRuns(PostgresPort):
    """Distributed Map Runs and their children's counts (the ``MapRunStore`` port)."""

    async def put_map_run(self, rec: MapRunRecord) -> bool:
        async with self._write(fenced_arns([rec.execution_arn])) as conn:
            status = await conn.execute(
                f"INSERT INTO map_runs ({_MAP_RUN_COLUMNS}) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (map_run_arn) DO NOTHING",
                rec.map_run_arn,
                rec.execution_arn,
                rec.state_machine_arn,
                rec.start_date,
            )
        return str(status) == "INSERT 0 1"

    async def get_map_run(self, map_run_arn: str) -> MapRunRecord | None:
        found = await self._map_runs("WHERE map_run_arn = $1", map_run_arn)
        return found[0] if found else None

    async def list_map_runs(self, execution_arn: str) -> list[MapRunRecord]:
        return await self._map_runs(
            "WHERE execution_arn = $1 ORDER BY start_date, map_run_arn", execution_arn
        )

    async def _map_runs(self, clause: str, *params: Any) -> list[MapRunRecord]:
        rows = await self._pool.fetch(f"SELECT {_MAP_RUN_COLUMNS} FROM map_runs {clause}", *params)
        return [
            MapRunRecord(map_run_arn=m, execution_arn=e, state_machine_arn=s, start_date=d)
            for m, e, s, d in rows
        ]

    async def count_map_run_children(self, map_run_arn: str) -> dict[str, int]:
        rows = await self._pool.fetch(
            "SELECT status, count(*) FROM executions WHERE map_run_arn = $1 GROUP BY status",
            map_run_arn,
        )
        return {str(status): int(count) for status, count in rows}


class PostgresVersions(PostgresPort):
    """State machine versions and aliases (the ``VersionStore`` port): not partitioned data,
    so no write here is fenced (as ``state_machines``)."""

    async def publish_version(
        self,
        state_machine_arn: str,
        revision_id: str,
        description: str | None,
        creation_date: float,
    ) -> tuple[VersionRecord, bool]:
        # The advisory lock makes concurrent publishes of one machine take turns; READ
        # COMMITTED gives each statement after it a snapshot with the previous turn's commit,
        # so the look-up sees a version just published and max() a number just given. The
        # partial unique index and the primary key would refuse a duplicate all the same.
        async with self._write() as conn:
            await conn.execute(_LOCK_VERSIONS, _VERSIONS_LOCK, state_machine_arn)
            row = await conn.fetchrow(
                f"SELECT {VERSION_COLUMNS} FROM state_machine_versions "
                "WHERE state_machine_arn = $1 AND revision_id = $2 AND NOT deleted",
                state_machine_arn,
                revision_id,
            )
            if row is not None:
                return version_from_row(row), False
            # Tombstones count: a deleted version's number is not given again.
            row = await conn.fetchrow(
                f"INSERT INTO state_machine_versions ({VERSION_COLUMNS}) "
                "SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 "
                "FROM state_machine_versions WHERE state_machine_arn = $1 "
                f"RETURNING {VERSION_COLUMNS}",
                state_machine_arn,
                revision_id,
                description,
                creation_date,
            )
        return version_from_row(row), True

    async def get_version(self, state_machine_arn: str, version: int) -> VersionRecord | None:
        found = await self._versions("AND version = $2", state_machine_arn, version)
        return found[0] if found else None

    async def list_versions(self, state_machine_arn: str) -> list[VersionRecord]:
        return await self._versions("ORDER BY version DESC", state_machine_arn)

    async def _versions(self, clause: str, *params: Any) -> list[VersionRecord]:
        rows = await self._pool.fetch(
            f"SELECT {VERSION_COLUMNS} FROM state_machine_versions "
            f"WHERE state_machine_arn = $1 AND NOT deleted {clause}",
            *params,
        )
        return [version_from_row(row) for row in rows]

    async def delete_version(self, state_machine_arn: str, version: int) -> bool:
        status = await self._pool.execute(
            "UPDATE state_machine_versions SET deleted = true "
            "WHERE state_machine_arn = $1 AND version = $2 AND NOT deleted",
            state_machine_arn,
            version,
        )
        return str(status) == "UPDATE 1"

    async def put_alias(self, record: AliasRecord, *, create: bool) -> bool:
        row = alias_row(record)
        if create:
            status = await self._pool.execute(
                f"INSERT INTO state_machine_aliases ({ALIAS_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (state_machine_arn, name) DO NOTHING",
                *row,
            )
            return str(status) == "INSERT 0 1"
        machine, name, description, routing, _, updated = row  # never its creation_date
        status = await self._pool.execute(
            "UPDATE state_machine_aliases SET description = $3, routing = $4, update_date = $5 "
            "WHERE state_machine_arn = $1 AND name = $2",
            machine,
            name,
            description,
            routing,
            updated,
        )
        return str(status) == "UPDATE 1"

    async def get_alias(self, state_machine_arn: str, name: str) -> AliasRecord | None:
        found = await self._aliases("AND name = $2", state_machine_arn, name)
        return found[0] if found else None

    async def list_aliases(self, state_machine_arn: str) -> list[AliasRecord]:
        return await self._aliases("ORDER BY creation_date, name", state_machine_arn)

    async def _aliases(self, clause: str, *params: Any) -> list[AliasRecord]:
        rows = await self._pool.fetch(
            f"SELECT {ALIAS_COLUMNS} FROM state_machine_aliases "
            f"WHERE state_machine_arn = $1 {clause}",
            *params,
        )
        return [alias_from_row(row) for row in rows]

    async def delete_alias(self, state_machine_arn: str, name: str) -> bool:
        status = await self._pool.execute(
            "DELETE FROM state_machine_aliases WHERE state_machine_arn = $1 AND name = $2",
            state_machine_arn,
            name,
        )
        return str(status) == "DELETE 1"


class PostgresTags(PostgresPort):
    """Tags of state machines and activities (the ``TagStore`` port)."""

    async def tag_resource(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        if tags:
            await self._pool.execute(
                "INSERT INTO tags (resource_arn, key, value) "
                "SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v) "
                "ON CONFLICT (resource_arn, key) DO UPDATE SET value = EXCLUDED.value",
                resource_arn,
                list(tags),
                list(tags.values()),
            )

    async def untag_resource(self, resource_arn: str, keys: Sequence[str]) -> None:
        if keys:
            await self._pool.execute(
                "DELETE FROM tags WHERE resource_arn = $1 AND key = ANY($2::text[])",
                resource_arn,
                list(keys),
            )

    async def list_tags(self, resource_arn: str) -> dict[str, str]:
        rows = await self._pool.fetch(
            "SELECT key, value FROM tags WHERE resource_arn = $1 ORDER BY key", resource_arn
        )
        return {str(key): str(value) for key, value in rows}


class PostgresActivityTasks(PostgresPort):
    """Activity tasks of a cluster, offered to the workers of every member (not part of the
    ``EventStore`` protocol)."""

    async def publish_activity_task(
        self, task_token: str, activity_arn: str, execution_arn: str
    ) -> None:
        """Offer an activity task to the workers of every member (once per token)."""
        await self._pool.execute(
            "INSERT INTO activity_tasks (task_token, activity_arn, execution_arn) "
            "VALUES ($1, $2, $3) ON CONFLICT (task_token) DO NOTHING",
            task_token,
            activity_arn,
            execution_arn,
        )

    async def claim_activity_task(
        self, activity_arn: str, seconds: float
    ) -> tuple[str, str] | None:
        """Claim the oldest unclaimed task of ``activity_arn`` for ``seconds``: its (token,
        execution arn), or None. ``SKIP LOCKED``: concurrent claimers never get the same row."""
        row = await self._pool.fetchrow(
            "UPDATE activity_tasks SET claimed_until = now() + make_interval(secs => $2) "
            "WHERE task_token = (SELECT task_token FROM activity_tasks "
            "WHERE activity_arn = $1 AND claimed_until < now() ORDER BY seq "
            "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING task_token, execution_arn",
            activity_arn,
            seconds,
        )
        return None if row is None else (str(row[0]), str(row[1]))

    async def drop_activity_task(self, task_token: str) -> None:
        """Forget an activity task (handed out, or no longer waiting)."""
        await self._pool.execute("DELETE FROM activity_tasks WHERE task_token = $1", task_token)


class PostgresRequests(PostgresPort):
    """Operators' requests, recorded for the owner of a partition to apply (not part of the
    ``EventStore`` protocol; as SQLite's, plus partitions and notifications)."""

    async def add_request(self, kind: str, payload: str, created: float, partition: int = 0) -> int:
        """Record a request (``payload`` is JSON text) for the owner of ``partition`` (the
        partition of the execution it is about; 0 when it names none yet, e.g. a start without
        a name: the owner of partition 0 applies it) and notify :data:`REQUESTS_CHANNEL`;
        returns its id."""
        async with self._write() as conn:
            request_id = await conn.fetchval(
                "INSERT INTO requests (kind, payload, created, partition) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                kind,
                payload,
                created,
                partition,
            )
            await conn.execute("SELECT pg_notify($1, $2)", REQUESTS_CHANNEL, str(partition))
        return int(request_id)

    async def add_requests(self, requests: Sequence[tuple[str, str, float, int]]) -> list[int]:
        """Record many requests, (kind, payload, created, partition) each, in one statement and
        one commit, notifying :data:`REQUESTS_CHANNEL` once per partition; their ids, in order.

        The ids come from the table's sequence as the rows are inserted in order (``ORDER BY``
        the position), and one statement's ``nextval`` calls only grow, so the i-th smallest
        id returned is the i-th request's (``RETURNING`` promises no order of its own).
        """
        if not requests:
            return []
        kinds = [request[0] for request in requests]
        payloads = [request[1] for request in requests]
        created = [request[2] for request in requests]
        partitions = [request[3] for request in requests]
        async with self._write() as conn:
            rows = await conn.fetch(
                "INSERT INTO requests (kind, payload, created, partition) "
                "SELECT k, p, c, pt FROM unnest($1::text[], $2::text[], $3::float8[], "
                "$4::int[]) WITH ORDINALITY AS r(k, p, c, pt, position) ORDER BY position "
                "RETURNING id",
                kinds,
                payloads,
                created,
                partitions,
            )
            await conn.execute(
                "SELECT pg_notify($1, p::text) FROM unnest($2::int[]) AS p",
                REQUESTS_CHANNEL,
                sorted(set(partitions)),
            )
        return sorted(int(row[0]) for row in rows)

    async def pending_requests(
        self, limit: int = 100, partitions: Iterable[int] | None = None
    ) -> list[tuple[int, str, str, float]]:
        """The oldest ``PENDING`` requests (of ``partitions`` only, when given): (id, kind,
        payload, created)."""
        if partitions is None:
            rows = await self._pool.fetch(
                "SELECT id, kind, payload, created FROM requests WHERE status = 'PENDING' "
                "ORDER BY id LIMIT $1",
                limit,
            )
        else:
            rows = await self._pool.fetch(
                "SELECT id, kind, payload, created FROM requests WHERE status = 'PENDING' "
                "AND partition = ANY($2::int[]) ORDER BY id LIMIT $1",
                limit,
                list(partitions),
            )
        return [(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    async def finish_request(self, request_id: int, status: str, result: str) -> None:
        """Mark a request ``DONE`` or ``FAILED`` with its result (JSON text), and notify
        :data:`RESULTS_CHANNEL` (a hint for the asker)."""
        async with self._write() as conn:
            await conn.execute(
                "UPDATE requests SET status = $1, result = $2 WHERE id = $3",
                status,
                result,
                request_id,
            )
            await conn.execute("SELECT pg_notify($1, $2)", RESULTS_CHANNEL, str(request_id))

    async def finish_requests(self, results: Sequence[tuple[int, str, str]]) -> None:
        """Mark many requests, (id, status, result) each, in one statement and one commit, and
        notify :data:`RESULTS_CHANNEL` of each."""
        if not results:
            return
        ids = [result[0] for result in results]
        statuses = [result[1] for result in results]
        texts = [result[2] for result in results]
        async with self._write() as conn:
            await conn.execute(
                "UPDATE requests SET status = u.status, result = u.result "
                "FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, status, result) "
                "WHERE requests.id = u.id",
                ids,
                statuses,
                texts,
            )
            await conn.execute(
                "SELECT pg_notify($1, i::text) FROM unnest($2::bigint[]) AS i",
                RESULTS_CHANNEL,
                ids,
            )

    async def finished_requests(
        self, request_ids: Sequence[int]
    ) -> list[tuple[int, str, str | None]]:
        """Of ``request_ids``, those applied: (id, status, result), in one query."""
        rows = await self._pool.fetch(
            "SELECT id, status, result FROM requests WHERE id = ANY($1::bigint[]) "
            "AND status <> 'PENDING'",
            list(request_ids),
        )
        return [(int(i), str(st), None if r is None else str(r)) for i, st, r in rows]

    async def get_request(self, request_id: int) -> tuple[str, str, str | None] | None:
        """(kind, status, result) of a request, or None."""
        row = await self._pool.fetchrow(
            "SELECT kind, status, result FROM requests WHERE id = $1", request_id
        )
        if row is None:
            return None
        kind, status, result = row
        return str(kind), str(status), None if result is None else str(result)
