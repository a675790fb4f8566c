"""The SQL of the SQLite store's reads, shared by the store and the command line's reader.

:class:`~runtime.store.sqlite.SqliteStore` (asyncio, aiosqlite) and
:class:`~runtime.store.sqlite_read.SqliteReader` (the standard library's ``sqlite3``, for the
commands that only read: issue 16) run the same statements on the same schema, built here once:
the executions query with its listing filters, the state machines query, and the operators'
requests. Pure: strings and a function that builds a clause; no I/O.

Imports ``store.base`` (the column lists) only.
"""

from __future__ import annotations

from typing import Any, Final

from runtime.store.base import EXECUTION_COLUMNS, STATE_MACHINE_COLUMNS

__all__ = [
    "GET_REQUEST",
    "PENDING_REQUESTS",
    "SELECT_EXECUTIONS",
    "SELECT_STATE_MACHINES",
    "list_executions_clause",
]

#: Executions' rows (:func:`runtime.store.base.execution_from_row`), before a clause.
SELECT_EXECUTIONS: Final = f"SELECT {EXECUTION_COLUMNS} FROM executions"

#: State machines' rows (:func:`runtime.store.base.state_machine_from_row`), before a clause.
SELECT_STATE_MACHINES: Final = f"SELECT {STATE_MACHINE_COLUMNS} FROM state_machines"

#: The oldest ``PENDING`` requests, at most ``?``: (id, kind, payload, created).
PENDING_REQUESTS: Final = (
    "SELECT id, kind, payload, created FROM requests WHERE status = 'PENDING' ORDER BY id LIMIT ?"
)

#: One request by id: (kind, status, result).
GET_REQUEST: Final = "SELECT kind, status, result FROM requests WHERE id = ?"


def list_executions_clause(
    state_machine_arn: str | None = None,
    status: str | None = None,
    limit: int = 1000,
    *,
    after: tuple[float, str] | None = None,
    redriven: bool | None = None,
    map_run_arn: str | None = None,
    version_arn: str | None = None,
    alias_arn: str | None = None,
) -> tuple[str, tuple[Any, ...]]:
    """The clause after :data:`SELECT_EXECUTIONS` and its parameters for ``list_executions``
    (see :class:`runtime.store.base.EventStore`): newest first, keyset paging by ``after``."""
    where: list[str] = []
    params: list[Any] = []
    if map_run_arn is not None:
        # First, so that the planner takes the partial index executions_by_map_run.
        where.append("map_run_arn = ?")
        params.append(map_run_arn)
    if alias_arn is not None:  # executions_by_alias, likewise
        where.append("state_machine_alias_arn = ?")
        params.append(alias_arn)
    if version_arn is not None:  # executions_by_version
        where.append("state_machine_version_arn = ?")
        params.append(version_arn)
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
    return f"{clause}ORDER BY start_date DESC, execution_arn DESC LIMIT ?", tuple(params)
