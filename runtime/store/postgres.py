"""PostgreSQL store (scale-out, issue 12): the ``EventStore`` contract on asyncpg.

Open it with ``async with PostgresStore.open("postgresql://user@host/db") as store:``;
constructing a ``PostgresStore`` does no I/O. Opening creates a small connection pool and
applies the versioned migrations of ``postgres_schema.MIGRATIONS`` inside one transaction, under
an advisory lock (so processes opening the same database at once migrate it once). Applied
versions are rows of ``schema_version``; a database newer than this code is refused. ``schema=``
keeps the tables in their own PostgreSQL schema (several deployments, or one per test, in one
database).

Semantics follow :mod:`runtime.store.sqlite` (the reference) row for row:

* ``executions`` has an integer ``id`` and ``last_seq``; ``events(execution_id, seq)`` is the
  primary key, so a taken seq is refused by the database even if ``last_seq`` lagged. A row of
  ``events`` holds all the events of one append (``first_seq`` .. ``seq``), their
  ``encode_events`` MessagePack bytes back to back, as SQLite's version 4 does.
* ``append`` is group commit: a whole batch is one transaction and one statement. The statement
  updates each execution's row only ``WHERE last_seq = expected`` and inserts the event rows of
  the rows it updated; fewer rows updated than executions in the batch rolls the transaction
  back (nothing written) and the conflict is named by a read afterwards.
* Text keys are ``COLLATE "C"`` (byte order), so listing ties order the same as SQLite whatever
  the database's locale.
* Version 2 adds ``schedules`` (issue 14, the ``ScheduleStore`` port), as SQLite's version 5:
  the fire mark moves only by ``UPDATE ... WHERE fire_mark IS NOT DISTINCT FROM expected``, one
  statement, so of two processes racing for one fire exactly one sees its row updated (READ
  COMMITTED re-checks the row the winner changed).
* Version 5 adds ``state_machine_revisions`` and ``executions.revision_id`` (issue 13, the
  ``StateMachineRevisions`` port), as SQLite's version 6. ``revision_id`` is written when an
  execution is created; an append's record leaves it as it is.
* Version 6 adds ``executions.map_run_arn`` with its partial index and ``map_runs`` (issue 14,
  the ``MapRunStore`` port), as SQLite's version 7; ``map_run_arn`` too is written when an
  execution is created and left as it is by an append. ``put_map_run`` is fenced like a
  creation, by the partition of the parent execution: a member that lost the parent's lease
  cannot leave a Map Run behind whose ``MapRunStarted`` it could not log.
* Version 7 adds ``state_machine_versions``, ``state_machine_aliases``, ``tags`` and
  ``executions.state_machine_version_arn`` / ``state_machine_alias_arn`` (issue 13, the
  ``VersionStore`` and ``TagStore`` ports), as SQLite's version 8; the two columns are written
  when an execution is created and left as they are by an append. ``publish_version`` is one
  transaction under a transaction-level advisory lock on the machine's ARN (taken by
  ``delete_state_machine`` too), so two processes publishing at once are serialized: one
  version per revision, no number given twice (the partial unique index on live versions'
  revisions and the primary key are the database's own guard behind it).

Ready for ownership and fencing (issue 12 part 2), not doing it: ``executions`` and ``timers``
carry ``partition`` (:func:`partition_of` the execution ARN, one of :data:`PARTITIONS`, fixed
per database by the ``settings`` row written by the first migration), and an
:class:`AppendGuard` given to :meth:`PostgresStore.open` runs inside every write transaction
(appends and creations) with the partitions it touches, where a lease-epoch check can refuse it.

Concurrency: calls take connections from the pool, so readers do not wait for a writer; two
writers racing on one execution are serialized by its row lock and the loser's
``WHERE last_seq = expected`` matches nothing (READ COMMITTED re-checks the updated row).
A deadlock between two multi-execution batches is reported as ``ConcurrencyConflict`` (nothing
written; the engine re-reads and retries as for any conflict).

This module holds the event log (executions, events, timers), the pool and the write
transaction; the other ports' tables (state machines and revisions, activities and heartbeats,
schedules, Map Runs, versions, aliases and tags, a cluster's activity tasks and operators'
requests) are read and written by the mixins of :mod:`runtime.store.postgres_ports`, which
``PostgresStore`` inherits.

Imports ``store.base``, ``store.postgres_ports``, ``store.postgres_schema``,
``store.partitions``, ``store.versions``, ``core.events``, ``errors``, anyio and asyncpg.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol, final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from runtime.core.events import HistoryEvent, encode_events
from runtime.errors import ConcurrencyConflict, ExecutionAlreadyExists, ExecutionDoesNotExist
from runtime.store.base import (
    EXECUTION_COLUMNS,
    Append,
    EventStore,
    ExecutionRecord,
    MapRunStore,
    ScheduleStore,
    StateMachineRevisions,
    Timer,
    check_dense,
    decode_events,
    execution_from_row,
    execution_row,
    merge_appends,
)
from runtime.store.partitions import PARTITIONS, partition_of
from runtime.store.postgres_ports import (
    REQUESTS_CHANNEL,
    RESULTS_CHANNEL,
    PostgresActivities,
    PostgresActivityTasks,
    PostgresMapRuns,
    PostgresRequests,
    PostgresSchedules,
    PostgresStateMachines,
    PostgresTags,
    PostgresVersions,
    fenced_arns,
)
from runtime.store.postgres_schema import MIGRATIONS, SCHEMA_VERSION
from runtime.store.versions import TagStore, VersionStore

__all__ = [
    "MIGRATIONS",
    "PARTITIONS",
    "REQUESTS_CHANNEL",
    "RESULTS_CHANNEL",
    "SCHEMA_VERSION",
    "AppendGuard",
    "PostgresStore",
    "partition_of",
]

#: Set on every connection. A process paused (SIGSTOP) or cut off inside a transaction holds
#: its row locks, among them the lease rows its append guard locks ``FOR SHARE``: the server
#: ends such a session after this long, so a takeover never waits for a stale owner.
_SESSION_SETTINGS: Final = {"idle_in_transaction_session_timeout": "5s"}


# Two-key advisory lock taken while migrating: (this constant, hash of the schema's name).
_MIGRATION_LOCK: Final = 0x5337_4D31

_SCHEMA_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_SELECT_EXECUTIONS: Final = f"SELECT {EXECUTION_COLUMNS} FROM executions"

# Arrays, one per column (``unnest`` turns them back into rows): one statement per batch
# whatever its size, no per-row round trip.
_EVENT_ARRAYS: Final = (
    "unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::float8[], $6::bytea[]) "
    "AS w(arn, seq, first_seq, type, ts, payload)"
)
_RECORD_ARRAYS: Final = (
    "$7::text[], $8::int[], $9::text[], $10::text[], $11::text[], $12::float8[], $13::text[], "
    "$14::float8[], $15::text[], $16::text[], $17::text[], $18::text[], $19::int[], "
    "$20::text[], $21::bigint[], $22::text[], $23::text[], $24::text[], $25::text[]"
)
_CREATE: Final = f"""
WITH x AS (
    INSERT INTO executions (execution_arn, partition, state_machine_arn, name, status,
        start_date, input, stop_date, output, error, cause, machine_type, redrive_count,
        parent_execution_arn, last_seq, revision_id, map_run_arn, state_machine_version_arn,
        state_machine_alias_arn)
    SELECT * FROM unnest({_RECORD_ARRAYS})
    RETURNING id, execution_arn
)
INSERT INTO events (execution_id, seq, first_seq, type, timestamp, payload)
SELECT x.id, w.seq, w.first_seq, w.type, w.ts, w.payload
FROM {_EVENT_ARRAYS} JOIN x ON x.execution_arn = w.arn
"""
# The WHERE clauses are the optimistic-concurrency check: a row whose last_seq moved on is not
# updated, so it is not counted, and its events (joined to the updated rows) are not inserted.
_APPEND: Final = f"""
WITH bumped AS (
    UPDATE executions x SET last_seq = v.end_seq
    FROM unnest($26::text[], $27::bigint[], $28::bigint[]) AS v(arn, expected, end_seq)
    WHERE x.execution_arn = v.arn AND x.last_seq = v.expected
    RETURNING x.id, x.execution_arn
), replaced AS (
    UPDATE executions x SET state_machine_arn = v.machine, name = v.name, status = v.status,
        start_date = v.start_date, input = v.input, stop_date = v.stop_date,
        output = v.output, error = v.error, cause = v.cause, machine_type = v.machine_type,
        redrive_count = v.redrive_count, parent_execution_arn = v.parent, last_seq = v.end_seq
    FROM unnest({_RECORD_ARRAYS}, $29::bigint[]) AS v(arn, partition, machine, name, status,
        start_date, input, stop_date, output, error, cause, machine_type, redrive_count,
        parent, end_seq, revision, map_run, version, alias, expected)
    WHERE x.execution_arn = v.arn AND x.last_seq = v.expected
    RETURNING x.id, x.execution_arn
), updated AS (
    SELECT * FROM bumped UNION ALL SELECT * FROM replaced
), inserted AS (
    INSERT INTO events (execution_id, seq, first_seq, type, timestamp, payload)
    SELECT u.id, w.seq, w.first_seq, w.type, w.ts, w.payload
    FROM {_EVENT_ARRAYS} JOIN updated u ON u.execution_arn = w.arn
)
SELECT count(*) FROM updated
"""


async def _keep_session(_connection: Any) -> None:
    """Release a pooled connection as it is. asyncpg's default reset (``pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL``) is a round trip per release, and this store never
    leaves session state behind: no session locks, cursors or listeners, no ``SET``; asyncpg
    still rolls back a transaction left open. Measured: 41.7 -> 17.9 server transactions per
    execution in ``benchmarks/cluster``'s chain."""


def split_schema(dsn: str) -> tuple[str, str | None]:
    """``dsn`` without its ``schema`` query parameter (Statemill's, not libpq's), and it."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    if not schemas:
        return dsn, None
    if len(schemas) > 1:
        raise ValueError("give ?schema= once in a PostgreSQL URL")
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schemas[0]


def _fenced(records: Iterable[ExecutionRecord]) -> list[int]:
    """The partitions a write of ``records`` must hold (see :func:`fenced_arns`)."""
    return fenced_arns(record.execution_arn for record in records)


class AppendGuard(Protocol):
    """A check run inside every write transaction of executions (appends and creations),
    before the write: the hook for lease-epoch fencing (issue 12 part 2)."""

    async def check(self, connection: Any, partitions: frozenset[int]) -> None:
        """Raise to refuse the write (the transaction rolls back, nothing is written).

        Args:
            connection: the asyncpg connection, inside the write's transaction (so a check
                such as ``SELECT ... FROM leases WHERE ... FOR SHARE`` holds until commit).
            partitions: the :func:`partition_of` of every execution the write touches.
        """
        ...


class _Columns:
    """Rows of ``ExecutionRecord`` as column arrays (the ``_RECORD_ARRAYS`` parameters)."""

    def __init__(self) -> None:
        self.arrays: tuple[list[Any], ...] = tuple([] for _ in range(19))

    def add(self, record: ExecutionRecord, last_seq: int) -> None:
        arn, *rest = execution_row(record, last_seq)
        values = (arn, partition_of(arn), *rest)
        for array, value in zip(self.arrays, values, strict=True):
            array.append(value)


class _EventColumns:
    """The event rows of appends as column arrays (the ``_EVENT_ARRAYS`` parameters)."""

    def __init__(self) -> None:
        self.arrays: tuple[list[Any], ...] = tuple([] for _ in range(6))

    def add(self, execution_arn: str, events: Sequence[HistoryEvent]) -> None:
        """One row per append: its events' encodings back to back (none for no events)."""
        if not events:
            return
        first, last = events[0], events[-1]
        values = (execution_arn, last.id, first.id, last.type, last.timestamp)
        for array, value in zip(self.arrays, values, strict=False):
            array.append(value)
        self.arrays[5].append(encode_events(events))


def _decode_rows(rows: Iterable[Any], after_seq: int) -> list[HistoryEvent]:
    """The events of ``(seq, first_seq, payload)`` rows in order, those after ``after_seq``."""
    count = 0
    payloads: list[bytes] = []
    for seq, first_seq, payload in rows:
        count += seq - first_seq + 1
        payloads.append(payload)
    events = decode_events(payloads, count)
    if events and events[0].id <= after_seq:  # a row that straddles ``after_seq``
        events = [event for event in events if event.id > after_seq]
    return events


class _SeqMismatch(Exception):
    """Fewer execution rows matched their expected seq than the batch has executions."""


@final
class PostgresStore(
    PostgresStateMachines,
    PostgresActivities,
    PostgresSchedules,
    PostgresMapRuns,
    PostgresActivityTasks,
    PostgresRequests,
    PostgresVersions,
    PostgresTags,
):
    """An ``EventStore`` on a PostgreSQL database (see :mod:`runtime.store.base`).

    The event log (executions, events, timers) is here; the other ports are inherited from
    the mixins of :mod:`runtime.store.postgres_ports`.
    """

    durable = True

    def __init__(self, pool: Any, *, guard: AppendGuard | None = None) -> None:
        """Wrap an open asyncpg pool whose database is migrated; use :meth:`open` instead."""
        self._pool = pool
        self._guard = guard
        self._closed = False
        self._dsn: str | None = None
        self.schema: str | None = None
        """The PostgreSQL schema holding the tables (None: the connection's search_path)."""

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        dsn: str,
        *,
        schema: str | None = None,
        pool_size: int = 8,
        guard: AppendGuard | None = None,
    ) -> AsyncIterator[PostgresStore]:
        """Connect (creating and migrating the tables if needed); close the pool on exit.

        Args:
            dsn: a libpq connection URI, ``postgresql://user:password@host:port/database``
                (asyncpg's rules: query parameters such as ``sslmode`` are understood; and
                Statemill's ``?schema=NAME``, the ``schema`` argument's default).
            schema: the PostgreSQL schema holding the tables, created if missing (default:
                the connection's ``search_path``, normally ``public``).
            pool_size: the most connections held at once.
            guard: run inside every write transaction (see :class:`AppendGuard`).
        """
        dsn, in_url = split_schema(dsn)
        if schema is None:
            schema = in_url
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema must be a plain SQL identifier, not {schema!r}")
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        settings = dict(_SESSION_SETTINGS)
        if schema is not None:
            settings["search_path"] = schema
        pool = await asyncpg.create_pool(
            dsn, min_size=1, max_size=pool_size, server_settings=settings, reset=_keep_session
        )
        store = cls(pool, guard=guard)
        store._dsn = dsn
        store.schema = schema
        try:
            await store.migrate(schema)
            yield store
        finally:
            await store.close()

    async def migrate(self, schema: str | None = None) -> int:
        """Apply pending migrations in one transaction; return the schema version (idempotent).

        Raises:
            RuntimeError: the database was written by a newer Statemill, or with another
                number of partitions.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            name = schema if schema is not None else await conn.fetchval("SELECT current_schema()")
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", _MIGRATION_LOCK, name or ""
            )
            if schema is not None:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
            )
            version = int(
                await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
            )
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"database schema version {version} is newer than this Statemill "
                    f"understands ({SCHEMA_VERSION}); upgrade Statemill"
                )
            for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in migration:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
            stored = await conn.fetchval("SELECT value FROM settings WHERE name = 'partitions'")
            if stored != str(PARTITIONS):
                raise RuntimeError(
                    f"database has {stored} partitions, this Statemill uses {PARTITIONS}"
                )
        return SCHEMA_VERSION

    async def schema_versions(self) -> list[int]:
        """The applied migration versions, in order (for tests and diagnostics)."""
        rows = await self._pool.fetch("SELECT version FROM schema_version ORDER BY version")
        return [int(row[0]) for row in rows]

    @property
    def pool(self) -> Any:
        """The asyncpg pool (for the lease table of ``runtime.cluster``, which shares it)."""
        return self._pool

    @property
    def dsn(self) -> str | None:
        """The connection URI this store was opened with (None if built from a pool)."""
        return self._dsn

    def fence(self, guard: AppendGuard | None) -> None:
        """Run ``guard`` inside every later write transaction of executions (see
        :class:`AppendGuard`); None removes it."""
        self._guard = guard

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()

    @asynccontextmanager
    async def _write(self, partitions: Iterable[int] | None = None) -> AsyncIterator[Any]:
        """A connection in a write transaction (commit, or roll back on an exception), with the
        guard checked first when ``partitions`` are given.

        Shielded from cancellation: a cancelled caller must not be told "cancelled" about a
        commit that happened (the engine would then re-append events that are stored).
        """
        with anyio.CancelScope(shield=True):
            async with self._pool.acquire() as conn, conn.transaction():
                if self._guard is not None and partitions is not None:
                    await self._guard.check(conn, frozenset(partitions))
                yield conn

    # -- executions and events --------------------------------------------------------------

    async def create_execution(
        self, record: ExecutionRecord, events: Sequence[HistoryEvent]
    ) -> None:
        try:
            await self.create_executions([(record, events)])
        except ExecutionAlreadyExists as exc:
            raise ExecutionAlreadyExists(
                f"execution {record.execution_arn} already exists"
            ) from exc.__cause__

    async def create_executions(
        self, items: Sequence[tuple[ExecutionRecord, Sequence[HistoryEvent]]]
    ) -> None:
        if not items:
            return
        records = _Columns()
        rows = _EventColumns()
        for record, events in items:
            check_dense(record.execution_arn, 0, events)
            records.add(record, len(events))
            rows.add(record.execution_arn, events)
        try:
            async with self._write(_fenced(record for record, _ in items)) as conn:
                await conn.execute(_CREATE, *rows.arrays, *records.arrays)
        except asyncpg.UniqueViolationError as exc:
            arns = sorted(record.execution_arn for record, _ in items)
            raise ExecutionAlreadyExists(
                f"one of these executions already exists: {arns[:3]}"
            ) from exc

    async def append(self, batch: Sequence[Append]) -> None:
        if not batch:
            return
        # Fold the items of each execution into one (expected, end, record): then each
        # execution row is checked and updated exactly once.
        merged = merge_appends(batch)
        rows = _EventColumns()
        for item in batch:
            rows.add(item.execution_arn, item.events)
        bumps: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
        replaces = _Columns()
        replace_expected: list[int] = []
        for arn, (expected, end, rec) in merged.items():
            if rec is None:
                bumps[0].append(arn)
                bumps[1].append(expected)
                bumps[2].append(end)
            else:
                replaces.add(rec, end)
                replace_expected.append(expected)
        try:
            async with self._write(fenced_arns(merged)) as conn:
                updated = await conn.fetchval(
                    _APPEND, *rows.arrays, *replaces.arrays, *bumps, replace_expected
                )
                if updated != len(merged):
                    raise _SeqMismatch
        except _SeqMismatch:
            await self._raise_conflict({arn: m[0] for arn, m in merged.items()})
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrencyConflict(
                f"an event seq in the batch is already taken ({exc}); executions: {sorted(merged)}"
            ) from exc
        except asyncpg.DeadlockDetectedError as exc:
            raise ConcurrencyConflict(
                f"a concurrent batch locked the same executions in another order; "
                f"executions: {sorted(merged)}"
            ) from exc

    async def _raise_conflict(self, expected: dict[str, int]) -> None:
        """Name the first execution whose expected seq did not match (after the rollback:
        a stored seq only grows, so a mismatch seen then is still one)."""
        rows = await self._pool.fetch(
            "SELECT execution_arn, last_seq FROM executions WHERE execution_arn = ANY($1::text[])",
            list(expected),
        )
        stored = {arn: int(seq) for arn, seq in rows}
        for arn, seq in expected.items():
            if arn not in stored:
                raise ExecutionDoesNotExist(f"execution {arn} does not exist")
            if seq != stored[arn]:
                raise ConcurrencyConflict(
                    f"execution {arn}: expected seq {seq}, stored seq is {stored[arn]}"
                )
        raise ConcurrencyConflict(  # pragma: no cover - a row changed back: not by Statemill
            f"a concurrent writer changed executions {sorted(expected)}"
        )

    async def read(self, execution_arn: str, after_seq: int = 0) -> list[HistoryEvent]:
        rows = await self._pool.fetch(
            "SELECT seq, first_seq, payload FROM events WHERE execution_id = "
            "(SELECT id FROM executions WHERE execution_arn = $1) AND seq > $2 ORDER BY seq",
            execution_arn,
            after_seq,
        )
        return _decode_rows(rows, after_seq)

    async def load_executions(
        self, arns: Sequence[str]
    ) -> list[tuple[ExecutionRecord, list[HistoryEvent]]]:
        if not arns:
            return []
        # One snapshot for both reads: a record's last_seq matches its events.
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            records = await conn.fetch(
                f"{_SELECT_EXECUTIONS} WHERE execution_arn = ANY($1::text[])", list(arns)
            )
            rows = await conn.fetch(
                "SELECT x.execution_arn, e.seq, e.first_seq, e.payload FROM events e "
                "JOIN executions x ON e.execution_id = x.id "
                "WHERE x.execution_arn = ANY($1::text[]) ORDER BY e.execution_id, e.seq",
                list(arns),
            )
        by_arn: dict[str, list[tuple[int, int, bytes]]] = {}
        for arn, seq, first_seq, payload in rows:
            by_arn.setdefault(arn, []).append((seq, first_seq, payload))
        out: list[tuple[ExecutionRecord, list[HistoryEvent]]] = []
        for row in records:
            record = execution_from_row(row)
            out.append((record, _decode_rows(by_arn.get(record.execution_arn, ()), 0)))
        return out

    async def get_execution(self, arn: str) -> ExecutionRecord | None:
        found = await self._executions("WHERE execution_arn = $1", arn)
        return found[0] if found else None

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
        where: list[str] = []
        params: list[Any] = []
        if map_run_arn is not None:
            # Implies the partial index's ``map_run_arn IS NOT NULL``: executions_by_map_run.
            params.append(map_run_arn)
            where.append(f"map_run_arn = ${len(params)}")
        if alias_arn is not None:  # executions_by_alias, likewise
            params.append(alias_arn)
            where.append(f"state_machine_alias_arn = ${len(params)}")
        if version_arn is not None:  # executions_by_version
            params.append(version_arn)
            where.append(f"state_machine_version_arn = ${len(params)}")
        if state_machine_arn is not None:
            params.append(state_machine_arn)
            where.append(f"state_machine_arn = ${len(params)}")
        if status is not None:
            params.append(status)
            where.append(f"status = ${len(params)}")
        if after is not None:
            # A row value, so the indexes ending in (start_date, execution_arn) serve the range.
            params.extend(after)
            where.append(f"(start_date, execution_arn) < (${len(params) - 1}, ${len(params)})")
        if redriven is not None:
            where.append("redrive_count > 0" if redriven else "redrive_count = 0")
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        params.append(max(limit, 0))
        return await self._executions(
            f"{clause}ORDER BY start_date DESC, execution_arn DESC LIMIT ${len(params)}", *params
        )

    async def open_executions(self) -> list[ExecutionRecord]:
        return await self._executions("WHERE status = 'RUNNING' ORDER BY start_date, execution_arn")

    async def open_executions_in(self, partitions: Iterable[int]) -> list[ExecutionRecord]:
        """The RUNNING executions of ``partitions`` (what a member takes over with a lease)."""
        return await self._executions(
            "WHERE status = 'RUNNING' AND partition = ANY($1::int[]) "
            "ORDER BY start_date, execution_arn",
            list(partitions),
        )

    async def ended_among(self, arns: Sequence[str]) -> dict[str, ExecutionRecord | None]:
        """Of executions ``arns``, those not running: their records (``None``: not stored).
        Two queries at most, whatever the number (a member waiting for many executions run
        elsewhere looks at them all at once); the records of running ones are not read."""
        rows = await self._pool.fetch(
            "SELECT execution_arn FROM executions WHERE execution_arn = ANY($1::text[]) "
            "AND status = 'RUNNING'",
            list(arns),
        )
        running = {str(row[0]) for row in rows}
        ended: dict[str, ExecutionRecord | None] = {arn: None for arn in arns if arn not in running}
        if ended:
            for record in await self._executions(
                "WHERE execution_arn = ANY($1::text[])", list(ended)
            ):
                ended[record.execution_arn] = record
        return ended

    async def _executions(self, clause: str, *params: Any) -> list[ExecutionRecord]:
        rows = await self._pool.fetch(f"{_SELECT_EXECUTIONS} {clause}", *params)
        return [execution_from_row(row) for row in rows]

    # -- timers -----------------------------------------------------------------------------

    async def put_timers(self, timers: Sequence[Timer]) -> None:
        if not timers:
            return
        # One row per key, the last put winning (ON CONFLICT cannot touch a row twice).
        latest = {(t.execution_arn, t.timer_id): t.fire_at for t in timers}
        arns = [arn for arn, _ in latest]
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO timers (execution_arn, timer_id, fire_at, partition) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::int[]) "
                "ON CONFLICT (execution_arn, timer_id) DO UPDATE SET fire_at = EXCLUDED.fire_at",
                arns,
                [timer_id for _, timer_id in latest],
                list(latest.values()),
                [partition_of(arn) for arn in arns],
            )

    async def delete_timers(self, keys: Sequence[tuple[str, str]]) -> None:
        if keys:
            await self._delete_pairs("timers", "timer_id", keys)

    async def due_timers(self, until: float, limit: int) -> list[Timer]:
        rows = await self._pool.fetch(
            "SELECT execution_arn, timer_id, fire_at FROM timers WHERE fire_at <= $1 "
            "ORDER BY fire_at, execution_arn, timer_id LIMIT $2",
            until,
            max(limit, 0),
        )
        return [Timer(execution_arn=a, timer_id=i, fire_at=f) for a, i, f in rows]

    async def _delete_pairs(self, table: str, column: str, keys: Sequence[tuple[str, str]]) -> None:
        async with self._write() as conn:
            await conn.execute(
                f"DELETE FROM {table} t USING unnest($1::text[], $2::text[]) AS k(arn, key) "
                f"WHERE t.execution_arn = k.arn AND t.{column} = k.key",
                [arn for arn, _ in keys],
                [key for _, key in keys],
            )


def _implements_protocol(store: PostgresStore) -> EventStore:
    """Static check only (mypy): ``PostgresStore`` satisfies ``EventStore``."""
    return store


def _implements_schedules(store: PostgresStore) -> ScheduleStore:
    """Static check only (mypy): ``PostgresStore`` satisfies ``ScheduleStore``."""
    return store


def _implements_map_runs(store: PostgresStore) -> MapRunStore:
    """Static check only (mypy): ``PostgresStore`` satisfies ``MapRunStore``."""
    return store


def _implements_revisions(store: PostgresStore) -> StateMachineRevisions:
    """Static check only (mypy): ``PostgresStore`` satisfies ``StateMachineRevisions``."""
    return store


def _implements_versions(store: PostgresStore) -> VersionStore:
    """Static check only (mypy): ``PostgresStore`` satisfies ``VersionStore``."""
    return store


def _implements_tags(store: PostgresStore) -> TagStore:
    """Static check only (mypy): ``PostgresStore`` satisfies ``TagStore``."""
    return store
