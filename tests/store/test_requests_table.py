"""SQLite schema version 2: the operators' ``requests`` table, and migrating a version-1 file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runtime.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_version_1_file_migrates_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO state_machines (arn, name, definition, type, creation_date) "
        "VALUES ('arn:sm', 'sm', '{}', 'STANDARD', 1.0)"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    async with SqliteStore.open(path) as store:
        assert SCHEMA_VERSION == 2
        assert await store.pragma("user_version") == 2
        assert [m.arn for m in await store.list_state_machines()] == ["arn:sm"]
        first = await store.add_request("stop", '{"executionArn": "x"}', 5.0)
        second = await store.add_request("start", "{}", 6.0)
        assert await store.pending_requests() == [
            (first, "stop", '{"executionArn": "x"}'),
            (second, "start", "{}"),
        ]
        await store.finish_request(first, "DONE", "{}")
        assert [r[0] for r in await store.pending_requests()] == [second]
        assert await store.get_request(first) == ("stop", "DONE", "{}")
        assert await store.get_request(second) == ("start", "PENDING", None)
        assert await store.get_request(999) is None
