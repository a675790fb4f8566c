"""Fixtures for the store contract suite: one ``store`` per implementation.

The ``postgres`` store needs the session's throwaway server (``postgres_server.py``); each test
gets its own PostgreSQL schema in it, so tests never see each other's rows and no database has
to be created per test. Without the server binaries the ``postgres`` cases skip.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtime.store import EventStore, MemoryStore, SqliteStore
from runtime.store.postgres import PostgresStore
from tests.store.postgres_server import PostgresServer, postgres_server

__all__ = ["anyio_backend", "postgres_dsn", "postgres_schema", "postgres_server", "store"]

_schemas = itertools.count(1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """The session server's DSN (skips when there is no server)."""
    return postgres_server.dsn()


@pytest.fixture
def postgres_schema() -> str:
    """A schema name no other test of the session uses."""
    return f"t{next(_schemas)}"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventStore]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        async with SqliteStore.open(tmp_path / "store.db") as opened:
            yield opened
    else:
        dsn: str = request.getfixturevalue("postgres_dsn")
        schema: str = request.getfixturevalue("postgres_schema")
        async with PostgresStore.open(dsn, schema=schema) as pg:
            yield pg
