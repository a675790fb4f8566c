"""A SQLite store read without an event loop: what ``statemill describe`` and ``list`` use.

The commands that only read a store file (``describe``, ``list``, ``requests``, ``machines
list|describe``) do not need asyncio, anyio, uvloop or aiosqlite, which together cost about
0.1 s of a command's start (issue 16: ``describe`` in under 0.2 s). :class:`SqliteReader`
reads the same tables with the standard library's ``sqlite3``, running the statements of
:mod:`runtime.store.sqlite_queries` that :class:`~runtime.store.sqlite.SqliteStore` runs too,
on a connection that cannot write (``PRAGMA query_only``). A file in WAL mode is read beside a
runtime writing it, as SQLite's readers always are.

It reads a file of this code's schema only: :meth:`SqliteReader.open` yields ``None`` for an
older file (the caller opens it with ``SqliteStore``, which migrates it) and refuses a newer one
as the store does.

Imports ``store.base``, ``store.sqlite_queries``, ``store.sqlite_schema`` and the standard
library.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import final

from runtime.store.base import (
    ExecutionRecord,
    StateMachineRecord,
    execution_from_row,
    state_machine_from_row,
)
from runtime.store.sqlite_queries import (
    GET_REQUEST,
    PENDING_REQUESTS,
    SELECT_EXECUTIONS,
    SELECT_STATE_MACHINES,
    list_executions_clause,
)
from runtime.store.sqlite_schema import SCHEMA_VERSION, check_not_newer

__all__ = ["SqliteReader"]


@final
class SqliteReader:
    """Reads of one SQLite store file, on a read-only ``sqlite3`` connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        """Wrap an open connection; use :meth:`open` instead."""
        self._conn = conn

    @classmethod
    @contextlib.contextmanager
    def open(
        cls, path: str | Path, *, busy_timeout_ms: int = 5000
    ) -> Iterator[SqliteReader | None]:
        """Read the existing store file at ``path``; ``None`` when its schema is older than
        this code's (open it with ``SqliteStore``, which migrates it).

        Raises:
            RuntimeError: the file's schema is newer than this code's.
            sqlite3.Error: SQLite cannot open or read the file.
        """
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA query_only = ON")
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            check_not_newer(version)
            yield cls(conn) if version == SCHEMA_VERSION else None
        finally:
            conn.close()

    def get_execution(self, arn: str) -> ExecutionRecord | None:
        """The execution's record, or ``None``."""
        row = self._conn.execute(f"{SELECT_EXECUTIONS} WHERE execution_arn = ?", (arn,)).fetchone()
        return None if row is None else execution_from_row(row)

    def list_executions(
        self, state_machine_arn: str | None = None, status: str | None = None, limit: int = 1000
    ) -> list[ExecutionRecord]:
        """Executions newest first, as ``EventStore.list_executions`` lists them."""
        clause, params = list_executions_clause(state_machine_arn, status, limit)
        rows = self._conn.execute(f"{SELECT_EXECUTIONS} {clause}", params).fetchall()
        return [execution_from_row(row) for row in rows]

    def get_state_machine(self, arn: str) -> StateMachineRecord | None:
        """The state machine's current record, or ``None``."""
        row = self._conn.execute(f"{SELECT_STATE_MACHINES} WHERE arn = ?", (arn,)).fetchone()
        return None if row is None else state_machine_from_row(row)

    def list_state_machines(self) -> list[StateMachineRecord]:
        """Every state machine, oldest first."""
        rows = self._conn.execute(f"{SELECT_STATE_MACHINES} ORDER BY creation_date, arn")
        return [state_machine_from_row(row) for row in rows.fetchall()]

    def pending_requests(self, limit: int = 100) -> list[tuple[int, str, str, float]]:
        """The oldest ``PENDING`` requests: (id, kind, payload, created)."""
        rows = self._conn.execute(PENDING_REQUESTS, (limit,)).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def get_request(self, request_id: int) -> tuple[str, str, str | None] | None:
        """(kind, status, result) of a request, or ``None``."""
        row = self._conn.execute(GET_REQUEST, (request_id,)).fetchone()
        if row is None:
            return None
        kind, status, result = row
        return str(kind), str(status), None if result is None else str(result)
