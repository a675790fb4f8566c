"""SQLite store (the default): one file, WAL, group-committed appends, indexed listing and timers.

Open it with ``async with SqliteStore.open(path) as store:``; constructing a ``SqliteStore``
does no I/O. Opening applies the versioned migrations in :data:`MIGRATIONS` (tracked in
``PRAGMA user_version``) inside one transaction, so opening twice, or an old file, is safe.

Schema (version 1):

* ``state_machines(arn PK, ...)``
* ``executions(execution_arn PK, ..., last_seq)`` indexed for listing by state machine, by
  status and by ``start_date``; ``last_seq`` is the optimistic-concurrency check.
* ``events(execution_id, seq, type, timestamp, payload)`` with ``PRIMARY KEY (execution_id,
  seq)``, where ``execution_id`` is the integer ``executions.id``; ``payload`` is
  ``encode_event`` (MessagePack); ``type``/``timestamp`` are copies for operators' SQL.
  Measured on a group commit of 1,000 executions x 1 event: keying events by the integer id
  rather than the ARN text writes 2-4x faster as the table grows (a ~10x smaller key index, so
  far fewer dirty pages per commit), and a rowid table beat ``WITHOUT ROWID`` 2x on writes.
* ``timers(execution_arn, timer_id, fire_at)`` keyed by ``(execution_arn, timer_id)`` and
  indexed on ``fire_at``.

Version 2 adds ``requests(id, kind, payload, created, status, result)``: operators' requests
(``statemill start|stop|send-task-success|send-task-failure``) recorded durably for a runtime
to apply (``PENDING`` -> ``DONE`` or ``FAILED``, ``result`` is JSON text). SQLite only: it is
not part of the ``EventStore`` protocol.

Version 3 adds ``activities(arn PK, name, creation_date)`` (CreateActivity survives a restart)
and ``heartbeats(execution_arn, frame, at)`` keyed by ``(execution_arn, frame)``: the last
SendTaskHeartbeat of a waiting token Task, so HeartbeatSeconds counts across a restart.

Version 4 adds ``events.first_seq``: a row holds all the events of one append, ``first_seq``
to ``seq``, their ``encode_event`` bytes back to back (``encode_events``); a row written before
holds one event (``first_seq`` NULL). ``benchmarks chain``: 21 rows per execution made index
lookups and B-tree inserts most of a commit's cost.

Version 5 adds ``schedules(arn PK, group_name, name, schedule, creation_date, fire_mark,
missed_fires)`` (issue 14, the ``ScheduleStore`` port): ``schedule`` is the Schedule's JSON;
``fire_mark`` is moved only by a compare-and-set ``UPDATE ... WHERE fire_mark IS ?``.

Version 6 adds ``state_machine_revisions(arn, revision_id, ...)``, keyed by both, holding the
state machine row as stored with each revision (the ``StateMachineRevisions`` port; the rows of
the machines stored before are copied in), and ``executions.revision_id``: the revision an
execution started on, whose definition it runs to its end (``''`` for those stored before).

Version 7 adds ``executions.map_run_arn`` (issue 14: the Map Run an execution is a child of,
NULL for the others and for those stored before) with the partial index
``executions_by_map_run(map_run_arn, start_date, execution_arn, status) WHERE map_run_arn IS
NOT NULL`` (listing one Map Run's children is a range scan of it, counting them by status reads
the index only; executions that are no child cost it nothing), and ``map_runs(map_run_arn PK,
execution_arn, state_machine_arn, start_date)`` indexed by parent execution (the
``MapRunStore`` port).

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

Imports ``store.base``, ``core.events``, ``errors``, anyio and aiosqlite.
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
    STATE_MACHINE_COLUMNS,
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
    decode_events,
    execution_from_row,
    execution_row,
    merge_appends,
    state_machine_from_row,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteStore", "Synchronous"]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

#: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``. Append only; never edit a
#: released migration (files in the field were built by it).
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE state_machines (
            arn TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            definition TEXT NOT NULL,
            type TEXT NOT NULL,
            creation_date REAL NOT NULL,
            revision_id TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE executions (
            id INTEGER PRIMARY KEY,
            execution_arn TEXT NOT NULL UNIQUE,
            state_machine_arn TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            start_date REAL NOT NULL,
            input TEXT NOT NULL,
            stop_date REAL,
            output TEXT,
            error TEXT,
            cause TEXT,
            machine_type TEXT NOT NULL DEFAULT 'STANDARD',
            redrive_count INTEGER NOT NULL DEFAULT 0,
            parent_execution_arn TEXT,
            last_seq INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE INDEX executions_by_machine
            ON executions (state_machine_arn, start_date, execution_arn)""",
        "CREATE INDEX executions_by_status ON executions (status, start_date, execution_arn)",
        "CREATE INDEX executions_by_start ON executions (start_date, execution_arn)",
        """CREATE TABLE events (
            execution_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            timestamp REAL NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (execution_id, seq)
        )""",
        """CREATE TABLE timers (
            execution_arn TEXT NOT NULL,
            timer_id TEXT NOT NULL,
            fire_at REAL NOT NULL,
            PRIMARY KEY (execution_arn, timer_id)
        )""",
        "CREATE INDEX timers_by_fire_at ON timers (fire_at, execution_arn, timer_id)",
    ),
    (
        # Version 2 (issue 5): operators' requests (start, stop, task-token answers) written
        # by the command line and applied by whichever runtime runs on the file.
        """CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            created REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'PENDING',
            result TEXT
        )""",
        "CREATE INDEX requests_pending ON requests (status, id)",
    ),
    (
        # Version 3 (issue 5): activities and task-token heartbeats survive a restart.
        """CREATE TABLE activities (
            arn TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            creation_date REAL NOT NULL
        )""",
        """CREATE TABLE heartbeats (
            execution_arn TEXT NOT NULL,
            frame TEXT NOT NULL,
            at REAL NOT NULL,
            PRIMARY KEY (execution_arn, frame)
        )""",
    ),
    (
        # Version 4 (issue 4): a row holds the events of one append (see the module text);
        # ``type``/``timestamp`` are then the row's last event's.
        "ALTER TABLE events ADD COLUMN first_seq INTEGER",
    ),
    (
        # Version 5 (issue 14): EventBridge Scheduler's schedules and their fire marks.
        """CREATE TABLE schedules (
            arn TEXT PRIMARY KEY,
            group_name TEXT NOT NULL,
            name TEXT NOT NULL,
            schedule TEXT NOT NULL,
            creation_date REAL NOT NULL,
            fire_mark REAL,
            missed_fires INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX schedules_by_group ON schedules (group_name, name)",
    ),
    (
        # Version 6 (issue 13): a running execution keeps the definition it started with
        # across UpdateStateMachine and restarts; its revision's row is kept here.
        """CREATE TABLE state_machine_revisions (
            arn TEXT NOT NULL,
            revision_id TEXT NOT NULL,
            name TEXT NOT NULL,
            definition TEXT NOT NULL,
            type TEXT NOT NULL,
            creation_date REAL NOT NULL,
            PRIMARY KEY (arn, revision_id)
        )""",
        f"INSERT INTO state_machine_revisions ({STATE_MACHINE_COLUMNS}) "
        f"SELECT {STATE_MACHINE_COLUMNS} FROM state_machines",
        "ALTER TABLE executions ADD COLUMN revision_id TEXT NOT NULL DEFAULT ''",
    ),
    (
        # Version 7 (issue 14): each iteration of a distributed Map is a child execution of a
        # Map Run; the children are listed and counted by Map Run.
        "ALTER TABLE executions ADD COLUMN map_run_arn TEXT",
        # ``status`` last makes the index covering for counting the children by status
        # (measured: 3x faster than looking up each row, 200,000 children).
        """CREATE INDEX executions_by_map_run
            ON executions (map_run_arn, start_date, execution_arn, status)
            WHERE map_run_arn IS NOT NULL""",
        """CREATE TABLE map_runs (
            map_run_arn TEXT PRIMARY KEY,
            execution_arn TEXT NOT NULL,
            state_machine_arn TEXT NOT NULL,
            start_date REAL NOT NULL
        )""",
        "CREATE INDEX map_runs_by_execution ON map_runs (execution_arn, start_date, map_run_arn)",
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION: Final = len(MIGRATIONS)

_SELECT_EXECUTIONS: Final = f"SELECT {EXECUTION_COLUMNS} FROM executions"
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
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


_MAP_RUN_COLUMNS: Final = "map_run_arn, execution_arn, state_machine_arn, start_date"
# A range scan of the covering executions_by_map_run (the equality implies its IS NOT NULL).
_COUNT_CHILDREN: Final = (
    "SELECT status, count(*) FROM executions WHERE map_run_arn = ? GROUP BY status"
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
class SqliteStore:
    """An ``EventStore`` on one SQLite file (see :mod:`runtime.store.base` for the contract)."""

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
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"database schema version {version} is newer than this Statemill "
                    f"understands ({SCHEMA_VERSION}); upgrade Statemill"
                )
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

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            await self._conn.close()

    # -- state machines ---------------------------------------------------------------------

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
            return cursor.rowcount > 0

    async def get_state_machine(self, arn: str) -> StateMachineRecord | None:
        machines = await self._machines("WHERE arn = ?", (arn,))
        return machines[0] if machines else None

    async def list_state_machines(self) -> list[StateMachineRecord]:
        return await self._machines("ORDER BY creation_date, arn", ())

    async def _machines(self, clause: str, params: tuple[Any, ...]) -> list[StateMachineRecord]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(
                f"SELECT {STATE_MACHINE_COLUMNS} FROM state_machines {clause}",
                params,
            )
        return [state_machine_from_row(row) for row in rows]

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
                    f"{_SELECT_EXECUTIONS} WHERE execution_arn IN ({marks})", chunk
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
    ) -> list[ExecutionRecord]:
        where: list[str] = []
        params: list[Any] = []
        if map_run_arn is not None:
            # First, so that the planner takes the partial index executions_by_map_run.
            where.append("map_run_arn = ?")
            params.append(map_run_arn)
        if state_machine_arn is not None:
            where.append("state_machine_arn = ?")
            params.append(state_machine_arn)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if after is not None:
            # A row value, so the indexes ending in (start_date, execution_arn) serve the range.
            where.append("(start_date, execution_arn) < (?, ?)")
            params.extend(after)
        if redriven is not None:
            where.append("redrive_count > 0" if redriven else "redrive_count = 0")
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        params.append(max(limit, 0))
        return await self._executions(
            f"{clause}ORDER BY start_date DESC, execution_arn DESC LIMIT ?", tuple(params)
        )

    async def open_executions(self) -> list[ExecutionRecord]:
        return await self._executions(
            "WHERE status = 'RUNNING' ORDER BY start_date, execution_arn", ()
        )

    async def _executions(self, clause: str, params: tuple[Any, ...]) -> list[ExecutionRecord]:
        async with self._lock:
            rows = await self._conn.execute_fetchall(f"{_SELECT_EXECUTIONS} {clause}", params)
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

    # -- activities and heartbeats ----------------------------------------------------------

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
        await self._write_many("DELETE FROM activities WHERE arn = ?", [(arn,)])

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

    # -- operators' requests (not part of the EventStore protocol) -------------------------

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
            rows = await self._conn.execute_fetchall(
                "SELECT id, kind, payload, created FROM requests WHERE status = 'PENDING' "
                "ORDER BY id LIMIT ?",
                (limit,),
            )
        return [(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    async def finish_request(self, request_id: int, status: str, result: str) -> None:
        """Mark a request ``DONE`` or ``FAILED`` with its result (JSON text)."""
        async with self._transaction():
            await self._conn.execute(
                "UPDATE requests SET status = ?, result = ? WHERE id = ?",
                (status, result, request_id),
            )

    async def get_request(self, request_id: int) -> tuple[str, str, str | None] | None:
        """(kind, status, result) of a request, or None."""
        async with self._lock:
            rows = list(
                await self._conn.execute_fetchall(
                    "SELECT kind, status, result FROM requests WHERE id = ?", (request_id,)
                )
            )
        if not rows:
            return None
        kind, status, result = rows[0]
        return str(kind), str(status), None if result is None else str(result)

    # -- schedules (the ScheduleStore port) ------------------------------------------------

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

    # -- Map Runs (the MapRunStore port) ---------------------------------------------------

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

    async def _write_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        async with self._transaction():
            await self._conn.executemany(sql, rows)


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
