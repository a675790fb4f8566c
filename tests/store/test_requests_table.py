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
        assert SCHEMA_VERSION == 3
        assert await store.pragma("user_version") == 3
        assert [m.arn for m in await store.list_state_machines()] == ["arn:sm"]
        first = await store.add_request("stop", '{"executionArn": "x"}', 5.0)
        second = await store.add_request("start", "{}", 6.0)
        assert await store.pending_requests() == [
            (first, "stop", '{"executionArn": "x"}', 5.0),
            (second, "start", "{}", 6.0),
        ]
        await store.finish_request(first, "DONE", "{}")
        assert [r[0] for r in await store.pending_requests()] == [second]
        assert await store.get_request(first) == ("stop", "DONE", "{}")
        assert await store.get_request(second) == ("start", "PENDING", None)
        assert await store.get_request(999) is None


async def test_a_version_2_file_gains_activities_and_heartbeats(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    for migration in MIGRATIONS[:2]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("INSERT INTO requests (kind, payload, created) VALUES ('stop', '{}', 1.0)")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()

    async with SqliteStore.open(path) as store:
        assert await store.pragma("user_version") == 3
        assert [r[1] for r in await store.pending_requests()] == ["stop"]
        assert await store.list_activities() == []
        await store.put_heartbeat("arn:x", "", 1.0)
        assert await store.heartbeats(["arn:x"]) == {"arn:x": {"": 1.0}}
