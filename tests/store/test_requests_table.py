"""SQLite schema migrations: the operators' ``requests`` table (v2), activities and heartbeats
(v3), one row per append of events (v4); old files migrate and keep their rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from runtime.core.events import HistoryEvent, encode_event
from runtime.store.base import Append
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
        assert await store.pragma("user_version") == SCHEMA_VERSION
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
        assert await store.pragma("user_version") == SCHEMA_VERSION
        assert [r[1] for r in await store.pending_requests()] == ["stop"]
        assert await store.list_activities() == []
        await store.put_heartbeat("arn:x", "", 1.0)
        assert await store.heartbeats(["arn:x"]) == {"arn:x": {"": 1.0}}


async def test_a_version_3_file_keeps_its_one_event_rows_and_appends_whole_batches(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v3.db"
    arn = "arn:aws:states:us-east-1:123456789012:execution:sm:old"
    old = [
        HistoryEvent(id=i, type=kind, timestamp=float(i), previous_event_id=i - 1)
        for i, kind in ((1, "ExecutionStarted"), (2, "PassStateEntered"))
    ]
    conn = sqlite3.connect(path)
    for migration in MIGRATIONS[:3]:
        for statement in migration:
            conn.execute(statement)
    conn.execute(
        "INSERT INTO executions (id, execution_arn, state_machine_arn, name, status, "
        "start_date, input, last_seq) VALUES (7, ?, 'arn:sm', 'old', 'RUNNING', 1.0, '{}', 2)",
        (arn,),
    )
    for event in old:  # version 3 wrote one row per event
        conn.execute(
            "INSERT INTO events (execution_id, seq, type, timestamp, payload) "
            "VALUES (7, ?, ?, ?, ?)",
            (event.id, event.type, event.timestamp, encode_event(event)),
        )
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()

    new = [
        HistoryEvent(id=i, type="PassStateExited", timestamp=float(i), previous_event_id=i - 1)
        for i in range(3, 23)
    ]
    async with SqliteStore.open(path) as store:
        assert await store.read(arn) == old
        await store.append([Append(execution_arn=arn, expected_seq=2, events=tuple(new))])
        assert await store.read(arn) == old + new
        # A read from the middle of a stored batch returns just the events after it.
        assert await store.read(arn, after_seq=10) == new[8:]
        [(record, loaded)] = await store.load_executions([arn])
        assert record.last_seq == 22
        assert loaded == old + new
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT seq, first_seq FROM events ORDER BY seq").fetchall()
    conn.close()
    assert rows == [(1, None), (2, None), (22, 3)]
