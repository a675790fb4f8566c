"""The ScheduleStore contract (issue 14) over every store, and the fire mark's guard: of two
writers, or two processes on one database, exactly one handles a fire."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import cast

import anyio
import anyio.lowlevel
import pytest

from runtime.store import EventStore, MemoryStore, SqliteStore
from runtime.store.base import ScheduleRecord, ScheduleStore
from runtime.store.postgres import PostgresStore
from runtime.store.sqlite import MIGRATIONS, SCHEMA_VERSION

pytestmark = pytest.mark.anyio

PREFIX = "arn:aws:scheduler:us-east-1:123456789012:schedule"


def rec(name: str, group: str = "default", body: str = '{"v": 1}', **kw: object) -> ScheduleRecord:
    return ScheduleRecord(
        arn=f"{PREFIX}/{group}/{name}",
        group_name=group,
        name=name,
        schedule=body,
        creation_date=1_700_000_000.0,
        **kw,  # type: ignore[arg-type]
    )


def schedules(store: EventStore) -> ScheduleStore:
    return cast("ScheduleStore", store)


async def test_put_get_list_delete(store: EventStore) -> None:
    s = schedules(store)
    b, a, c = rec("b"), rec("a"), rec("a", group="finance")
    for r in (b, a, c):
        assert await s.put_schedule(r) is True
    assert await s.get_schedule(a.arn) == a
    assert await s.get_schedule(f"{PREFIX}/default/missing") is None
    assert await s.list_schedules() == [a, b, c]
    assert await s.list_schedules("finance") == [c]
    assert await s.list_schedules("nobody") == []
    assert await s.delete_schedule(a.arn) is True
    assert await s.delete_schedule(a.arn) is False
    assert await s.list_schedules() == [b, c]


async def test_put_if_absent_never_overwrites(store: EventStore) -> None:
    s = schedules(store)
    first = rec("a", body='{"v": 1}')
    assert await s.put_schedule(first, if_absent=True) is True
    assert await s.put_schedule(rec("a", body='{"v": 2}'), if_absent=True) is False
    assert await s.get_schedule(first.arn) == first


async def test_replacing_keeps_the_fire_mark_and_misses(store: EventStore) -> None:
    s = schedules(store)
    first = rec("a")
    await s.put_schedule(first)
    assert await s.advance_schedule_mark(first.arn, None, 100.0, missed=2) is True
    await s.put_schedule(rec("a", body='{"v": 2}', fire_mark=5.0, missed_fires=9))
    got = await s.get_schedule(first.arn)
    assert got is not None
    assert (got.schedule, got.fire_mark, got.missed_fires) == ('{"v": 2}', 100.0, 2)


async def test_a_new_row_takes_the_records_mark(store: EventStore) -> None:
    s = schedules(store)
    await s.put_schedule(rec("a", fire_mark=50.0))
    assert await s.advance_schedule_mark(rec("a").arn, None, 60.0) is False
    assert await s.advance_schedule_mark(rec("a").arn, 50.0, 60.0) is True


async def test_the_fire_mark_is_a_compare_and_set(store: EventStore) -> None:
    s = schedules(store)
    r = rec("a")
    await s.put_schedule(r)
    assert await s.advance_schedule_mark(r.arn, None, 1_735_707_600.0) is True
    assert await s.advance_schedule_mark(r.arn, None, 1_735_707_600.0) is False  # handled
    assert await s.advance_schedule_mark(r.arn, 1.0, 2.0) is False  # stale expectation
    assert await s.advance_schedule_mark(r.arn, 1_735_707_600.0, 1_738_386_000.0, missed=3)
    got = await s.get_schedule(r.arn)
    assert got is not None
    assert (got.fire_mark, got.missed_fires) == (1_738_386_000.0, 3)
    assert await s.advance_schedule_mark(f"{PREFIX}/default/gone", None, 5.0) is False
    await s.delete_schedule(r.arn)
    assert await s.advance_schedule_mark(r.arn, 1_738_386_000.0, 1_740_000_000.0) is False


async def test_the_fire_mark_only_moves_forward(store: EventStore) -> None:
    s = schedules(store)
    r = rec("a")
    await s.put_schedule(r)
    await s.advance_schedule_mark(r.arn, None, 10.0)
    with pytest.raises(ValueError, match="only moves forward"):
        await s.advance_schedule_mark(r.arn, 10.0, 10.0)
    with pytest.raises(ValueError, match="negative"):
        await s.advance_schedule_mark(r.arn, 10.0, 11.0, missed=-1)


async def test_concurrent_writers_handle_a_fire_once(store: EventStore) -> None:
    s = schedules(store)
    r = rec("a")
    await s.put_schedule(r)
    wins: list[bool] = []

    async def claim() -> None:
        wins.append(await s.advance_schedule_mark(r.arn, None, 42.0))

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(claim)
    assert sorted(wins) == [False] * 7 + [True]


async def _race(first: ScheduleStore, second: ScheduleStore) -> list[float]:
    """Two stores on one database each try to handle fires 1..20 of one schedule, the next
    after the mark they last read; returns the fires each won, in order of winning."""
    r = rec("shared")
    await first.put_schedule(r)
    won: list[float] = []

    async def worker(s: ScheduleStore) -> None:
        mark: float | None = None
        while mark is None or mark < 20:
            fire = (mark or 0.0) + 1.0
            if await s.advance_schedule_mark(r.arn, mark, fire):
                won.append(fire)
            await anyio.lowlevel.checkpoint()
            current = await s.get_schedule(r.arn)
            assert current is not None
            mark = current.fire_mark

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker, first)
        tg.start_soon(worker, second)
    return won


async def test_two_sqlite_stores_on_one_file_handle_each_fire_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with SqliteStore.open(path) as one, SqliteStore.open(path) as two:
        won = await _race(one, two)
    assert sorted(won) == [float(fire) for fire in range(1, 21)]


async def test_two_postgres_stores_on_one_database_handle_each_fire_once(
    postgres_dsn: str, postgres_schema: str
) -> None:
    async with (
        PostgresStore.open(postgres_dsn, schema=postgres_schema) as one,
        PostgresStore.open(postgres_dsn, schema=postgres_schema) as two,
    ):
        won = await _race(one, two)
    assert sorted(won) == [float(fire) for fire in range(1, 21)]


async def test_schedules_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    async with SqliteStore.open(path) as store:
        await store.put_schedule(rec("a"))
        await store.advance_schedule_mark(rec("a").arn, None, 7.0, missed=1)
    async with SqliteStore.open(path) as store:
        assert await store.get_schedule(rec("a").arn) == rec("a", fire_mark=7.0, missed_fires=1)


async def test_a_version_4_file_gains_schedules_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    conn = sqlite3.connect(path)
    for migration in MIGRATIONS[:4]:
        for statement in migration:
            conn.execute(statement)
    conn.execute("INSERT INTO activities (arn, name, creation_date) VALUES ('arn:act', 'act', 1.0)")
    conn.execute("PRAGMA user_version = 4")
    conn.commit()
    conn.close()
    async with SqliteStore.open(path) as store:
        assert await store.pragma("user_version") == SCHEMA_VERSION
        assert [a.arn for a in await store.list_activities()] == ["arn:act"]
        assert await store.list_schedules() == []
        assert await store.put_schedule(rec("a")) is True


def test_every_store_implements_the_schedule_port() -> None:
    for cls in (MemoryStore, SqliteStore, PostgresStore):
        for method in (
            "put_schedule",
            "get_schedule",
            "list_schedules",
            "delete_schedule",
            "advance_schedule_mark",
        ):
            assert callable(getattr(cls, method))
