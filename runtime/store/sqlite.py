"""SQLite store (the default): one file, WAL, group-committed appends, indexed listing and timers.

Open it with ``async with SqliteStore.open(path) as store:``; constructing a ``SqliteStore``
does no I/O. Opening applies the versioned migrations in :data:`MIGRATIONS` (tracked in
``PRAGMA user_version``) inside one transaction, so opening twice, or an old file, is safe.

The schema and its versions (state machines and their revisions, executions, events, timers,
operators' requests, activities and heartbeats, schedules, Map Runs, versions, aliases and
tags) are described in
:mod:`runtime.store.sqlite_schema`, which holds the migrations. This module holds the event log
(executions, events, timers) and the connection; the other ports' tables are read and written
by the mixins of :mod:`runtime.store.sqlite_ports`, which ``SqliteStore`` inherits. A row of
``events`` holds all the events of one append, ``first_seq`` to ``seq``, their
``encode_event`` bytes back to back (``encode_events``; ``first_seq`` NULL: one event, a row
written before version 4).

Concurrency: aiosqlite runs one connection on one thread, and a transaction spans several
statements, so every operation holds ``self._lock``: concurrent ``append`` calls from several
tasks are serialized and a reader never sees another task's uncommitted rows. Write
transactions are ``BEGIN IMMEDIATE`` so that another *process* on the same file waits
(``busy_timeout``) instead of failing halfway.

File modes (issue 11): the file holds task tokens, inputs and outputs, so a new store file is
created owner-only (``0600``, whatever the umask) before SQLite opens it; SQLite gives the
``-wal`` and ``-shm`` files it creates beside it the database file's mode, so they are ``0600``
too. An existing file keeps its mode (it may be shared with a group on purpose), but one that
its group or others can access is reported with a warning on the ``statemill.store`` logger.

Imports ``store.base``, ``store.sqlite_ports``, ``store.sqlite_schema``, ``store.versions``,
``core.events``, ``errors``, anyio and aiosqlite.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final, Literal, final

import aiosqlite
import anyio

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
from runtime.store.sqlite_ports import (
    SqliteActivities,
    SqliteMapRuns,
    SqliteRequests,
    SqliteSchedules,
    SqliteStateMachines,
    SqliteTags,
    SqliteVersions,
)
from runtime.store.sqlite_queries import SELECT_EXECUTIONS, list_executions_clause
from runtime.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION, check_not_newer
from runtime.store.versions import TagStore, VersionStore

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStore", "Synchronous"]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


# The execution's integer id is looked up per row by the UNIQUE index on execution_arn.
_INSERT_EVENT: Final = (
    "INSERT INTO events (execution_id, seq, first_seq, type, timestamp, payload) "
    "SELECT id, ?, ?, ?, ?, ? FROM executions WHERE execution_arn = ?"
)
# The WHERE clauses are the optimistic-concurrency check: a row whose last_seq moved on is not
# updated, and the cursor's rowcount tells. (One CASE-per-column statement for both kinds was
# measured 5x slower than these two.)
_BUMP_SEQ: Final = "UPDATE executions SET last_seq = ? WHERE execution_arn = ? AND last_seq = ?"
_REPLACE_EXECUTION: Final = (
    "UPDATE executions SET state_machine_arn = ?, name = ?, status = ?, start_date = ?, "
    "input = ?, stop_date = ?, output = ?, error = ?, cause = ?, machine_type = ?, "
    "redrive_count = ?, parent_execution_arn = ?, last_seq = ? "
    "WHERE execution_arn = ? AND last_seq = ?"
)


_INSERT_EXECUTION: Final = (
    f"INSERT INTO executions ({EXECUTION_COLUMNS}) "
    f"VALUES ({', '.join(['?'] * (EXECUTION_COLUMNS.count(',') + 1))})"
)


def _event_rows(arn: str, events: Sequence[HistoryEvent]) -> list[tuple[Any, ...]]:
    """The row of one append: its events' encodings back to back (none for no events)."""
    if not events:
        return []
    first, last = events[0], events[-1]
    return [(last.id, first.id, last.type, last.timestamp, encode_events(events), arn)]


def _decode_rows(rows: Iterable[Any], after_seq: int) -> list[HistoryEvent]:
    """The events of ``(seq, first_seq, payload)`` rows in order, those after ``after_seq``."""
    count = 0
    payloads: list[bytes] = []
    for seq, first_seq, payload in rows:
        count += seq - (seq if first_seq is None else first_seq) + 1
        payloads.append(payload)
    events = decode_events(payloads, count)
    if events and events[0].id <= after_seq:  # a row that straddles ``after_seq``
        events = [event for event in events if event.id > after_seq]
    return events


_LOG: Final = logging.getLogger("statemill.store")

#: A store file's mode: read and write for its owner only.
FILE_MODE: Final = 0o600


def create_owner_only(path: Path) -> None:
    """Create ``path`` empty with mode ``0600`` if it does not exist (SQLite reads an empty file
    as an empty database, and gives its ``-wal``/``-shm`` files the same mode).

    ``O_EXCL`` makes the check and the creation one step; ``fchmod`` undoes the umask. An existing
    file keeps its mode; a warning names it when its group or others have any access.
    """
    path = Path(os.path.realpath(path))  # SQLite follows a symlink: so does the mode
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            _LOG.warning(
                "store file %s has mode %04o: its group or others can read task tokens, "
                "inputs and outputs in it (chmod 600 to restrict it to its owner)",
                path,
                mode,
            )
        return
    except OSError:
        return  # e.g. no such folder: SQLite's own open reports it as before
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


@final
class SqliteStore(
    SqliteStateMachines,
    SqliteActivities,
    SqliteRequests,
    SqliteSchedules,
    SqliteMapRuns,
    SqliteVersions,
    SqliteTags,
):
    """An ``EventStore`` on one SQLite file (see :mod:`runtime.store.base` for the contract).

    The event log (executions, events, timers) is here; the other ports are inherited from
    the mixins of :mod:`runtime.store.sqlite_ports`.
    """

    durable = True

    def __init__(self, conn: aiosqlite.Connection) -> None:
        """Wrap an open, migrated connection; use :meth:`open` instead."""
        self._conn = conn
        self._lock = anyio.Lock()
        self._closed = False

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: Synchronous = "FULL",
        busy_timeout_ms: int = 5000,
    ) -> AsyncIterator[SqliteStore]:
        """Open (creating and migrating if needed) the store at ``path``; close it on exit.

        Args:
            path: the database file (``":memory:"`` for a throwaway one).
            synchronous: SQLite's ``PRAGMA synchronous``. ``FULL`` (default) fsyncs every commit
                so a committed append survives power loss; ``NORMAL`` may lose the last commits
                on power loss (not on a process crash) and is much faster.
            busy_timeout_ms: how long to wait for another process's write lock.
        """
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, not {synchronous!r}")
        if str(path) not in ("", ":memory:"):
            await anyio.to_thread.run_sync(create_owner_only, Path(path))
        conn = await aiosqlite.connect(path, isolation_level=None)
        store = cls(conn)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute(f"PRAGMA synchronous = {synchronous}")
            await store.migrate()
            yield store
        finally:
            await store.close()

    async def pragma(self, name: str) -> Any:
        """The value of ``PRAGMA name`` (for tests and diagnostics)."""
        if not name.isidentifier():
            raise ValueError(f"not a pragma name: {name!r}")
        async with self._lock:
            rows = list(await self._conn.execute_fetchall(f"PRAGMA {name}"))
        return rows[0][0] if rows else None

    async def migrate(self) -> int:
        """Apply pending migrations in one transaction; return the schema version (idempotent)."""
        async with self._transaction():
            rows = list(await self._conn.execute_fetchall("PRAGMA user_version"))
            version = int(rows[0][0])
            check_not_newer(version)
            for migration in MIGRATIONS[version:]:
                for statement in migration:
                    await self._conn.execute(statement)
            if version != SCHEMA_VERSION:
                await self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return SCHEMA_VERSION

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        """Hold the lock and run the body in one write transaction (commit, or roll back).

        The transaction is shielded from cancellation: a cancelled caller must not leave a
        half-open transaction on the shared connection (the next writer's BEGIN would fail),
        nor be told "cancelled" about a commit that happened.
        """
        async with self._lock:
            with anyio.CancelScope(shield=True):
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
                await self._conn.execute("COMMIT")

    async def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Run ``sql`` once per row of ``rows`` in one write transaction."""
        async with self._transaction():
            await self._conn.executemany(sql, rows)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            await self._conn.close()

    # -- executions and events --------------------------------------------------------------

    async def create_execution(
        self, record: ExecutionRecord, events: Sequence[HistoryEvent]
    ) -> None:
        arn = record.execution_arn
        check_dense(arn, 0, events)
        rows = _event_rows(arn, events)
        async with self._transaction():
            try:
                await self._conn.execute(_INSERT_EXECUTION, execution_row(record, len(events)))
                if rows:
                    await self._conn.executemany(_INSERT_EVENT, rows)
            except sqlite3.IntegrityError as exc:
                raise ExecutionAlreadyExists(f"execution {arn} already exists") from exc

    async def create_executions(
        self, items: Sequence[tuple[ExecutionRecord, Sequence[HistoryEvent]]]
    ) -> None:
        if not items:
            return
        records: list[tuple[Any, ...]] = []
        rows: list[tuple[Any, ...]] = []
        for record, events in items:
            check_dense(record.execution_arn, 0, events)
            records.append(execution_row(record, len(events)))
            rows.extend(_event_rows(record.execution_arn, events))
        async with self._transaction():
            try:
                await self._conn.executemany(_INSERT_EXECUTION, records)
                await self._conn.executemany(_INSERT_EVENT, rows)
            except sqlite3.IntegrityError as exc:
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
        rows: list[tuple[Any, ...]] = []
        for item in batch:
            rows.extend(_event_rows(item.execution_arn, item.events))
        bumps: list[tuple[Any, ...]] = []
        replaces: list[tuple[Any, ...]] = []
        for arn, (expected, end, rec) in merged.items():
            if rec is None:
                bumps.append((end, arn, expected))
            else:
                replaces.append(
                    (
                        rec.state_machine_arn,
                        rec.name,
                        rec.status,
                        rec.start_date,
                        rec.input,
                        rec.stop_date,
                        rec.output,
                        rec.error,
                        rec.cause,
                        rec.machine_type,
                        rec.redrive_count,
                        rec.parent_execution_arn,
                        end,
                        arn,
                        expected,
                    )
                )
        async with self._transaction():
            updated = 0
            if bumps:
                updated += (await self._conn.executemany(_BUMP_SEQ, bumps)).rowcount
            if replaces:
                updated += (await self._conn.executemany(_REPLACE_EXECUTION, replaces)).rowcount
            if updated != len(merged):
                await self._raise_conflict({arn: m[0] for arn, m in merged.items()})
            try:
                await self._conn.executemany(_INSERT_EVENT, rows)
            except sqlite3.IntegrityError as exc:
                raise ConcurrencyConflict(
                    f"an event seq in the batch is already taken ({exc}); "
                    f"executions: {sorted(merged)}"
                ) from exc

    async def _raise_conflict(self, expected: dict[str, int]) -> None:
        """Name the first execution whose expected seq did not match (inside the transaction)."""
        # Roll back first: the stored seqs must be read as they were before this batch.
        await self._conn.execute("ROLLBACK")
        await self._conn.execute("BEGIN")
        for arn, seq in expected.items():
            found = list(
                await self._conn.execute_fetchall(
                    "SELECT last_seq FROM executions WHERE execution_arn = ?", (arn,)
                )
            )
            if not found:
                raise ExecutionDoesNotExist(f"execution {arn} does not exist")
            stored = int(found[0][0])
            if seq != stored:
                raise ConcurrencyConflict(
                    f"execution {arn}: expected seq {seq}, stored seq is {stored}"
                )
        raise ConcurrencyConflict(  # pragma: no cover - another process changed the rows
            f"a concurrent writer changed executions {sorted(expected)}"
        )

    async def read(self, execution_arn: str, after_seq: int = 0) -> list[HistoryEvent]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(
                "SELECT seq, first_seq, payload FROM events WHERE execution_id = "
                "(SELECT id FROM executions WHERE execution_arn = ?) AND seq > ? ORDER BY seq",
                (execution_arn, after_seq),
            )
        return _decode_rows(rows, after_seq)

    async def load_executions(
        self, arns: Sequence[str]
    ) -> list[tuple[ExecutionRecord, list[HistoryEvent]]]:
        out: list[tuple[ExecutionRecord, list[HistoryEvent]]] = []
        for start in range(0, len(arns), 500):  # SQLite's bound-parameter limit
            chunk = list(arns[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            async with self._lock:
                records = await self._conn.execute_fetchall(
                    f"{SELECT_EXECUTIONS} WHERE execution_arn IN ({marks})", chunk
                )
                rows = await self._conn.execute_fetchall(
                    "SELECT x.execution_arn, e.seq, e.first_seq, e.payload FROM events e "
                    f"JOIN executions x ON e.execution_id = x.id WHERE x.execution_arn IN "
                    f"({marks}) ORDER BY e.execution_id, e.seq",
                    chunk,
                )
            by_arn: dict[str, list[tuple[int, int | None, bytes]]] = {}
            for arn, seq, first_seq, payload in rows:
                by_arn.setdefault(arn, []).append((seq, first_seq, payload))
            for row in records:
                record = execution_from_row(row)
                events = _decode_rows(by_arn.get(record.execution_arn, ()), 0)
                out.append((record, events))
        return out

    async def get_execution(self, arn: str) -> ExecutionRecord | None:
        found = await self._executions("WHERE execution_arn = ?", (arn,))
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
        clause, params = list_executions_clause(
            state_machine_arn,
            status,
            limit,
            after=after,
            redriven=redriven,
            map_run_arn=map_run_arn,
            version_arn=version_arn,
            alias_arn=alias_arn,
        )
        return await self._executions(clause, params)

    async def open_executions(self) -> list[ExecutionRecord]:
        return await self._executions(
            "WHERE status = 'RUNNING' ORDER BY start_date, execution_arn", ()
        )

    async def _executions(self, clause: str, params: tuple[Any, ...]) -> list[ExecutionRecord]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(f"{SELECT_EXECUTIONS} {clause}", params)
        return [execution_from_row(row) for row in rows]

    # -- timers -----------------------------------------------------------------------------

    async def put_timers(self, timers: Sequence[Timer]) -> None:
        if not timers:
            return
        await self._write_many(
            "INSERT OR REPLACE INTO timers (execution_arn, timer_id, fire_at) VALUES (?, ?, ?)",
            [(t.execution_arn, t.timer_id, t.fire_at) for t in timers],
        )

    async def delete_timers(self, keys: Sequence[tuple[str, str]]) -> None:
        if not keys:
            return
        await self._write_many(
            "DELETE FROM timers WHERE execution_arn = ? AND timer_id = ?", list(keys)
        )

    async def due_timers(self, until: float, limit: int) -> list[Timer]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(
                "SELECT execution_arn, timer_id, fire_at FROM timers WHERE fire_at <= ? "
                "ORDER BY fire_at, execution_arn, timer_id LIMIT ?",
                (until, max(limit, 0)),
            )
        return [Timer(execution_arn=a, timer_id=i, fire_at=f) for a, i, f in rows]


def _implements_protocol(store: SqliteStore) -> EventStore:
    """Static check only (mypy): ``SqliteStore`` satisfies ``EventStore``."""
    return store


def _implements_schedules(store: SqliteStore) -> ScheduleStore:
    """Static check only (mypy): ``SqliteStore`` satisfies ``ScheduleStore``."""
    return store


def _implements_map_runs(store: SqliteStore) -> MapRunStore:
    """Static check only (mypy): ``SqliteStore`` satisfies ``MapRunStore``."""
    return store


def _implements_revisions(store: SqliteStore) -> StateMachineRevisions:
    """Static check only (mypy): ``SqliteStore`` satisfies ``StateMachineRevisions``."""
    return store


def _implements_versions(store: SqliteStore) -> VersionStore:
    """Static check only (mypy): ``SqliteStore`` satisfies ``VersionStore``."""
    return store


def _implements_tags(store: SqliteStore) -> TagStore:
    """Static check only (mypy): ``SqliteStore`` satisfies ``TagStore``."""
    return store
