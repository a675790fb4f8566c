"""The Map Run port (``MapRunStore``, issue 14) and ``list_executions(map_run_arn=...)``.

The store-parametrized tests run on memory, SQLite and PostgreSQL (the ``store`` fixture of
``conftest.py``); the others are what is SQLite's or PostgreSQL's own: the migration of a file
of the previous schema version, and that listing and counting one Map Run's children is a
range scan of the ``executions_by_map_run`` index.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import msgspec
import pytest

from runtime.core.events import encode_events
from runtime.store import Append, EventStore, ExecutionRecord, MemoryStore, SqliteStore
from runtime.store.base import MapRunRecord, MapRunStore
from runtime.store.postgres import PostgresStore
from runtime.store.sqlite import MIGRATIONS, SCHEMA_VERSION
from tests.store.test_store_contract import SM, SM2, arn, events, record

pytestmark = pytest.mark.anyio

PARENT = arn("parent")
OTHER_PARENT = arn("other-parent")
CHILD_SM = SM2


def map_run_arn(label: str, parent: str = PARENT) -> str:
    """AWS's form: ``arn:aws:states:<region>:<account>:mapRun:<machine>/<label>:<id>``."""
    machine = parent.split(":")[-2]
    return f"arn:aws:states:us-east-1:123456789012:mapRun:{machine}/{label}:0001"


RUN = map_run_arn("Billing")
RUN2 = map_run_arn("Invoices")


def map_run(run: str = RUN, *, parent: str = PARENT, start: float = 10.0) -> MapRunRecord:
    return MapRunRecord(
        map_run_arn=run, execution_arn=parent, state_machine_arn=CHILD_SM, start_date=start
    )


def child(name: str, *, run: str | None = RUN, start: float = 100.0) -> ExecutionRecord:
    return msgspec.structs.replace(record(name, start=start, machine=CHILD_SM), map_run_arn=run)


def port(store: EventStore) -> MapRunStore:
    assert isinstance(store, MapRunStore)
    return store


async def finish(store: EventStore, rec: ExecutionRecord, status: str) -> ExecutionRecord:
    """Append the terminal event of a one-event execution with its final record."""
    done = msgspec.structs.replace(rec, status=status, stop_date=rec.start_date + 1)
    await store.append(
        [Append(execution_arn=rec.execution_arn, expected_seq=1, events=events(2, 1), record=done)]
    )
    return done


# -- the Map Run rows -------------------------------------------------------------------------


async def test_put_map_run_writes_once(store: EventStore) -> None:
    runs = port(store)
    assert await runs.get_map_run(RUN) is None
    assert await runs.put_map_run(map_run()) is True
    assert await runs.get_map_run(RUN) == map_run()
    # The first write wins: a second put (a decision re-applied after a restart) changes nothing.
    moved = MapRunRecord(
        map_run_arn=RUN, execution_arn=OTHER_PARENT, state_machine_arn=SM, start_date=99.0
    )
    assert await runs.put_map_run(moved) is False
    assert await runs.put_map_run(map_run()) is False
    assert await runs.get_map_run(RUN) == map_run()
    assert await runs.list_map_runs(OTHER_PARENT) == []


async def test_list_map_runs_of_one_parent_oldest_first(store: EventStore) -> None:
    runs = port(store)
    late = map_run(map_run_arn("Late"), start=30.0)
    tie_b = map_run(map_run_arn("B"), start=20.0)
    tie_a = map_run(map_run_arn("A"), start=20.0)
    elsewhere = map_run(map_run_arn("X", OTHER_PARENT), parent=OTHER_PARENT, start=1.0)
    for rec in (late, tie_b, elsewhere, tie_a):
        assert await runs.put_map_run(rec) is True
    assert await runs.list_map_runs(PARENT) == [tie_a, tie_b, late]
    assert await runs.list_map_runs(OTHER_PARENT) == [elsewhere]
    assert await runs.list_map_runs(arn("nobody")) == []


# -- the children -----------------------------------------------------------------------------


async def test_an_execution_keeps_the_map_run_it_was_created_with(store: EventStore) -> None:
    a = child("a")
    await store.create_execution(a, events(1, 1))
    assert await store.get_execution(a.execution_arn) == msgspec.structs.replace(a, last_seq=1)
    # An append's record does not move it, neither to another Map Run nor to none.
    for seq, moved in ((1, RUN2), (2, None)):
        await store.append(
            [
                Append(
                    execution_arn=a.execution_arn,
                    expected_seq=seq,
                    events=events(seq + 1, 1),
                    record=msgspec.structs.replace(a, map_run_arn=moved),
                )
            ]
        )
    got = await store.get_execution(a.execution_arn)
    assert got is not None
    assert got.map_run_arn == RUN
    [(loaded, _)] = await store.load_executions([a.execution_arn])
    assert loaded.map_run_arn == RUN
    assert await store.list_executions(map_run_arn=RUN2) == []
    assert await port(store).count_map_run_children(RUN2) == {}
    assert await port(store).count_map_run_children(RUN) == {"RUNNING": 1}
    # An execution that is no child has none.
    plain = record("plain")
    await store.create_execution(plain, events(1, 1))
    got = await store.get_execution(plain.execution_arn)
    assert got is not None
    assert got.map_run_arn is None


async def test_children_listed_and_counted_by_map_run(store: EventStore) -> None:
    runs = port(store)
    assert await runs.count_map_run_children(RUN) == {}
    kids = [child(f"c{i}", start=100.0 + i) for i in range(5)]
    await store.create_executions([(k, events(1, 1)) for k in kids[:3]])
    for k in kids[3:]:
        await store.create_execution(k, events(1, 1))
    await store.create_execution(child("other", run=RUN2, start=103.5), events(1, 1))
    await store.create_execution(record("parent", start=50.0), events(1, 1))
    assert await runs.count_map_run_children(RUN) == {"RUNNING": 5}

    await finish(store, kids[0], "SUCCEEDED")
    await finish(store, kids[1], "SUCCEEDED")
    await finish(store, kids[2], "FAILED")
    assert await runs.count_map_run_children(RUN) == {"RUNNING": 2, "SUCCEEDED": 2, "FAILED": 1}
    assert await runs.count_map_run_children(RUN2) == {"RUNNING": 1}
    # A status with no child left disappears.
    await finish(store, kids[3], "ABORTED")
    await finish(store, kids[4], "ABORTED")
    assert await runs.count_map_run_children(RUN) == {"SUCCEEDED": 2, "FAILED": 1, "ABORTED": 2}

    listed = await store.list_executions(map_run_arn=RUN)
    assert [r.name for r in listed] == ["c4", "c3", "c2", "c1", "c0"]
    assert all(r.map_run_arn == RUN and r.last_seq == 2 for r in listed)
    assert [r.name for r in await store.list_executions(map_run_arn=RUN2)] == ["other"]
    # Combined with the other filters.
    assert [r.name for r in await store.list_executions(map_run_arn=RUN, status="SUCCEEDED")] == [
        "c1",
        "c0",
    ]
    assert [r.name for r in await store.list_executions(CHILD_SM, map_run_arn=RUN, limit=2)] == [
        "c4",
        "c3",
    ]
    assert await store.list_executions(SM, map_run_arn=RUN) == []
    assert await store.list_executions(map_run_arn=RUN, redriven=True) == []
    assert len(await store.list_executions(map_run_arn=RUN, redriven=False)) == 5
    # Without the filter every execution is listed, children and parent alike.
    assert len(await store.list_executions()) == 7


async def test_redriven_children_filter(store: EventStore) -> None:
    for index in range(4):
        rec = msgspec.structs.replace(
            child(f"r{index}", start=float(index)), status="FAILED", redrive_count=index % 2
        )
        await store.create_execution(rec, events(1, 1))
    await store.create_execution(
        msgspec.structs.replace(child("elsewhere", run=RUN2), redrive_count=1), events(1, 1)
    )
    assert [r.name for r in await store.list_executions(map_run_arn=RUN, redriven=True)] == [
        "r3",
        "r1",
    ]
    assert [
        r.name
        for r in await store.list_executions(map_run_arn=RUN, status="FAILED", redriven=False)
    ] == ["r2", "r0"]


async def test_children_pages_by_after_inside_one_map_run(store: EventStore) -> None:
    for name, start in (("a", 5.0), ("b", 7.0), ("c", 7.0), ("d", 9.0), ("e", 1.0)):
        await store.create_execution(child(name, start=start), events(1, 1))
    # Rows of another Map Run and no child at all interleave in time: never on a page.
    await store.create_execution(child("x", run=RUN2, start=8.0), events(1, 1))
    await store.create_execution(child("y", run=None, start=6.0), events(1, 1))
    seen: list[str] = []
    cursor: tuple[float, str] | None = None
    while True:
        page = await store.list_executions(map_run_arn=RUN, limit=2, after=cursor)
        if not page:
            break
        assert len(page) <= 2
        seen += [r.name for r in page]
        cursor = (page[-1].start_date, page[-1].execution_arn)
        # Started while paging: newer than every cursor, so never on a later page.
        await store.create_execution(
            child(f"new{len(seen)}", start=100.0 + len(seen)), events(1, 1)
        )
    assert seen == ["d", "c", "b", "a", "e"]
    tie = (7.0, arn("c", CHILD_SM))
    assert [r.name for r in await store.list_executions(map_run_arn=RUN, after=tie)] == [
        "b",
        "a",
        "e",
    ]
    assert [
        r.name for r in await store.list_executions(map_run_arn=RUN, status="RUNNING", after=tie)
    ] == ["b", "a", "e"]
    assert await store.list_executions(map_run_arn=RUN, after=(1.0, arn("e", CHILD_SM))) == []


async def test_children_listing_follows_a_start_date_an_append_moves(store: EventStore) -> None:
    """An append's record may replace ``start_date`` (every store keeps the last record's):
    the children's order and cursors follow it."""
    a, b, c = child("a", start=1.0), child("b", start=2.0), child("c", start=3.0)
    await store.create_executions([(k, events(1, 1)) for k in (a, b, c)])
    moved = msgspec.structs.replace(a, start_date=5.0, status="SUCCEEDED")
    await store.append(
        [Append(execution_arn=a.execution_arn, expected_seq=1, events=events(2, 1), record=moved)]
    )
    assert [r.name for r in await store.list_executions(map_run_arn=RUN)] == ["a", "c", "b"]
    assert [r.name for r in await store.list_executions(map_run_arn=RUN, after=(3.0, ""))] == ["b"]
    assert await port(store).count_map_run_children(RUN) == {"RUNNING": 2, "SUCCEEDED": 1}


async def test_memory_counts_follow_a_forgotten_child() -> None:
    """``MemoryStore.forget`` (how ExpressStore drops an ended EXPRESS execution) takes the child
    out of its Map Run's listing and counts."""
    store = MemoryStore()
    a, b = child("a"), child("b", start=101.0)
    await store.create_executions([(a, events(1, 1)), (b, events(1, 1))])
    store.forget(a.execution_arn)
    assert await store.count_map_run_children(RUN) == {"RUNNING": 1}
    assert [r.name for r in await store.list_executions(map_run_arn=RUN)] == ["b"]


def test_every_store_implements_the_map_run_port() -> None:
    for cls in (MemoryStore, SqliteStore, PostgresStore):
        for method in ("put_map_run", "get_map_run", "list_map_runs", "count_map_run_children"):
            assert callable(getattr(cls, method))


# -- SQLite: migration and plans --------------------------------------------------------------


async def test_sqlite_version_7_adds_map_runs_and_keeps_the_executions(tmp_path: Path) -> None:
    """A file of schema version 6 gains ``executions.map_run_arn`` (NULL for the executions it
    holds, which stay readable and listable), the index and ``map_runs``."""
    assert SCHEMA_VERSION >= 7
    path = tmp_path / "v6.db"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for migration in MIGRATIONS[:6]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 6")
        conn.execute(
            "INSERT INTO executions (execution_arn, state_machine_arn, name, status, "
            "start_date, input, last_seq, revision_id) "
            "VALUES (?, ?, 'old', 'SUCCEEDED', 1.0, '{}', 1, 'r1')",
            (arn("old"), SM),
        )
        conn.execute(
            "INSERT INTO events (execution_id, seq, first_seq, type, timestamp, payload) "
            "SELECT id, 1, 1, 'ExecutionStarted', 0, ? FROM executions",
            (encode_events(events(1, 1)),),
        )
    async with SqliteStore.open(path) as store:
        assert await store.pragma("user_version") == SCHEMA_VERSION
        old = await store.get_execution(arn("old"))
        assert old is not None
        assert (old.name, old.status, old.revision_id, old.map_run_arn) == (
            "old",
            "SUCCEEDED",
            "r1",
            None,
        )
        assert [r.name for r in await store.list_executions(SM)] == ["old"]
        assert await store.read(arn("old")) == list(events(1, 1))
        assert await store.list_executions(map_run_arn=RUN) == []
        assert await store.put_map_run(map_run()) is True
        await store.create_execution(child("new"), events(1, 1))
        assert await store.count_map_run_children(RUN) == {"RUNNING": 1}
    async with SqliteStore.open(path) as store:  # reopened: nothing to migrate, all kept
        assert await store.list_map_runs(PARENT) == [map_run()]
        assert [r.name for r in await store.list_executions(map_run_arn=RUN)] == ["new"]
        assert len(await store.list_executions()) == 2


async def test_sqlite_map_run_queries_are_index_range_scans(tmp_path: Path) -> None:
    async with SqliteStore.open(tmp_path / "plan.db"):
        pass
    with contextlib.closing(sqlite3.connect(tmp_path / "plan.db")) as conn:
        plans = {
            sql: " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", args))
            for sql, args in (
                (
                    "SELECT * FROM executions WHERE map_run_arn = ? "
                    "AND (start_date, execution_arn) < (?, ?) "
                    "ORDER BY start_date DESC, execution_arn DESC LIMIT 10",
                    (RUN, 5.0, "x"),
                ),
                (
                    "SELECT status, count(*) FROM executions WHERE map_run_arn = ? GROUP BY status",
                    (RUN,),
                ),
                (
                    "SELECT * FROM map_runs WHERE execution_arn = ? "
                    "ORDER BY start_date, map_run_arn",
                    (PARENT,),
                ),
            )
        }
    listing, counting, runs = plans.values()
    assert "USING INDEX executions_by_map_run (map_run_arn=? AND" in listing
    assert "TEMP B-TREE FOR ORDER BY" not in listing
    assert "USING COVERING INDEX executions_by_map_run (map_run_arn=?)" in counting
    assert "USING INDEX map_runs_by_execution (execution_arn=?)" in runs
    assert "TEMP B-TREE" not in runs


# -- PostgreSQL: plans ------------------------------------------------------------------------


async def test_postgres_children_are_an_index_range_scan(
    postgres_dsn: str, postgres_schema: str
) -> None:
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        await store.create_executions(
            [(record(f"p{i}", start=float(i)), events(1, 1)) for i in range(200)]
        )
        await store.create_executions(
            [(child(f"c{i}", start=float(i)), events(1, 1)) for i in range(5)]
        )
    conn = await asyncpg.connect(postgres_dsn, server_settings={"search_path": postgres_schema})
    try:
        await conn.execute("ANALYZE executions")
        # A table this small is cheaper to scan whole: ask for the plan an index would give.
        await conn.execute("SET enable_seqscan = off")
        plans = [
            "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {sql}", *args))
            for sql, args in (
                (
                    "SELECT * FROM executions WHERE map_run_arn = $1 "
                    "AND (start_date, execution_arn) < ($2, $3) "
                    "ORDER BY start_date DESC, execution_arn DESC LIMIT 10",
                    (RUN, 5.0, "x"),
                ),
                (
                    "SELECT status, count(*) FROM executions WHERE map_run_arn = $1 "
                    "GROUP BY status",
                    (RUN,),
                ),
            )
        ]
    finally:
        await conn.close()
    listing, counting = plans
    assert "executions_by_map_run" in listing
    assert "Sort" not in listing
    assert "executions_by_map_run" in counting
