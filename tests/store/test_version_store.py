"""State machine versions, aliases and tags (issue 13): the ``VersionStore`` and ``TagStore``
ports of ``runtime.store.versions``, the executions' ``state_machine_version_arn`` /
``state_machine_alias_arn`` and the ``list_executions(version_arn=..., alias_arn=...)`` filters.

The store-parametrized tests run on memory, SQLite and PostgreSQL (the ``store`` fixture of
``conftest.py``); the others are what is SQLite's or PostgreSQL's own: the migration of a
database of the previous schema version, index plans, and publishes racing across processes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import anyio
import asyncpg  # type: ignore[import-untyped]
import msgspec
import pytest

from runtime.core.events import encode_events
from runtime.store import (
    ActivityRecord,
    Append,
    EventStore,
    ExecutionRecord,
    MemoryStore,
    SqliteStore,
    StateMachineRecord,
)
from runtime.store.base import StateMachineRevisions
from runtime.store.express import ExpressStore
from runtime.store.postgres import PostgresStore
from runtime.store.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from runtime.store.sqlite import MIGRATIONS, SCHEMA_VERSION
from runtime.store.versions import AliasRecord, TagStore, VersionRecord, VersionStore
from tests.store.test_store_contract import SM, SM2, arn, events, record

pytestmark = pytest.mark.anyio

V1 = f"{SM}:1"
V2 = f"{SM}:2"
LIVE = f"{SM}:live"
BETA = f"{SM}:beta"
ACTIVITY = "arn:aws:states:us-east-1:123456789012:activity:resize"


def versions(store: EventStore) -> VersionStore:
    assert isinstance(store, VersionStore)
    return store


def tags(store: EventStore) -> TagStore:
    assert isinstance(store, TagStore)
    return store


def revisions(store: EventStore) -> StateMachineRevisions:
    assert isinstance(store, StateMachineRevisions)
    return store


def alias(
    name: str,
    routing: tuple[tuple[int, int], ...] = ((1, 100),),
    *,
    created: float = 10.0,
    updated: float | None = None,
    description: str | None = None,
    machine: str = SM,
) -> AliasRecord:
    return AliasRecord(
        state_machine_arn=machine,
        name=name,
        description=description,
        routing=routing,
        creation_date=created,
        update_date=created if updated is None else updated,
    )


def started_from(
    name: str, *, version: str | None = None, via: str | None = None, start: float = 100.0
) -> ExecutionRecord:
    return msgspec.structs.replace(
        record(name, start=start), state_machine_version_arn=version, state_machine_alias_arn=via
    )


def machine(name: str = "Orders", arn_: str = SM) -> StateMachineRecord:
    return StateMachineRecord(
        arn=arn_, name=name, definition="{}", type="STANDARD", creation_date=1.0, revision_id="r1"
    )


def test_every_store_implements_both_ports() -> None:
    for store in (MemoryStore(), ExpressStore(MemoryStore())):
        assert isinstance(store, VersionStore)
        assert isinstance(store, TagStore)
    for cls in (SqliteStore, PostgresStore):
        for method in ("publish_version", "list_versions", "put_alias", "tag_resource"):
            assert callable(getattr(cls, method))


def test_version_and_alias_arns() -> None:
    version = VersionRecord(
        state_machine_arn=SM, version=3, revision_id="r", description=None, creation_date=1.0
    )
    assert version.arn == f"{SM}:3"
    assert alias("live").arn == LIVE


# -- versions -------------------------------------------------------------------------------


async def test_publish_is_idempotent_per_revision(store: EventStore) -> None:
    port = versions(store)
    first, created = await port.publish_version(SM, "r1", "first", 5.0)
    assert created
    assert first == VersionRecord(
        state_machine_arn=SM, version=1, revision_id="r1", description="first", creation_date=5.0
    )
    # The same revision again: the version it has, unchanged (description and date too).
    assert await port.publish_version(SM, "r1", "again", 6.0) == (first, False)
    second, created = await port.publish_version(SM, "r2", None, 7.0)
    assert created
    assert (second.version, second.revision_id, second.description) == (2, "r2", None)
    assert await port.publish_version(SM, "r1", None, 8.0) == (first, False)
    assert await port.list_versions(SM) == [second, first]
    assert await port.get_version(SM, 1) == first
    assert await port.get_version(SM, 3) is None
    assert await port.get_version(SM2, 1) is None
    # Another machine numbers its own versions.
    other, created = await port.publish_version(SM2, "r1", None, 9.0)
    assert (other.version, created) == (1, True)
    assert await port.list_versions(SM) == [second, first]


async def test_a_deleted_versions_number_is_not_given_again(store: EventStore) -> None:
    port = versions(store)
    await port.publish_version(SM, "r1", None, 1.0)
    await port.publish_version(SM, "r2", None, 2.0)
    assert await port.delete_version(SM, 2) is True
    assert await port.delete_version(SM, 2) is False
    assert await port.delete_version(SM, 9) is False
    assert await port.get_version(SM, 2) is None
    third, created = await port.publish_version(SM, "r3", None, 3.0)
    assert (third.version, created) == (3, True)
    # The revision of a deleted version is published again, under a new number.
    again, created = await port.publish_version(SM, "r2", None, 4.0)
    assert (again.version, again.revision_id, created) == (4, "r2", True)
    # Even when the highest number is the deleted one.
    assert await port.delete_version(SM, 4) is True
    fifth, _ = await port.publish_version(SM, "r5", None, 5.0)
    assert fifth.version == 5
    assert [v.version for v in await port.list_versions(SM)] == [5, 3, 1]


async def test_delete_state_machine_deletes_its_versions_aliases_and_tags(
    store: EventStore,
) -> None:
    port, tag_port = versions(store), tags(store)
    for arn_, name in ((SM, "Orders"), (SM2, "Billing")):
        await store.put_state_machine(machine(name, arn_))
        await port.publish_version(arn_, "r1", None, 1.0)
        await port.publish_version(arn_, "r2", None, 2.0)
        assert await port.put_alias(alias("live", machine=arn_), create=True)
        await tag_port.tag_resource(arn_, {"team": "billing"})
    await port.delete_version(SM, 2)  # a tombstone: it goes too
    assert await revisions(store).delete_state_machine(SM) is True
    assert await port.list_versions(SM) == []
    assert await port.get_version(SM, 1) is None
    assert await port.list_aliases(SM) == []
    assert await port.get_alias(SM, "live") is None
    assert await tag_port.list_tags(SM) == {}
    # A machine created again under the name starts at version 1.
    await store.put_state_machine(machine())
    renewed, created = await port.publish_version(SM, "r2", None, 3.0)
    assert (renewed.version, created) == (1, True)
    # The other machine keeps everything.
    assert [v.version for v in await port.list_versions(SM2)] == [2, 1]
    assert [a.name for a in await port.list_aliases(SM2)] == ["live"]
    assert await tag_port.list_tags(SM2) == {"team": "billing"}


# -- aliases ----------------------------------------------------------------------------------


async def test_create_alias_writes_only_a_new_name(store: EventStore) -> None:
    port = versions(store)
    live = alias("live", ((1, 90), (2, 10)), description="prod")
    assert await port.put_alias(live, create=True) is True
    assert await port.get_alias(SM, "live") == live
    clash = alias("live", ((2, 100),), created=20.0, description="other")
    assert await port.put_alias(clash, create=True) is False
    assert await port.get_alias(SM, "live") == live
    assert await port.get_alias(SM, "nope") is None
    assert await port.get_alias(SM2, "live") is None


async def test_replace_alias_keeps_its_creation_date(store: EventStore) -> None:
    port = versions(store)
    assert await port.put_alias(alias("live", created=10.0), create=False) is False
    assert await port.get_alias(SM, "live") is None
    await port.put_alias(alias("live", created=10.0, description="prod"), create=True)
    update = alias("live", ((1, 50), (2, 50)), created=99.0, updated=30.0, description=None)
    assert await port.put_alias(update, create=False) is True
    assert await port.get_alias(SM, "live") == msgspec.structs.replace(update, creation_date=10.0)


async def test_list_and_delete_aliases(store: EventStore) -> None:
    port = versions(store)
    for name, created in (("zeta", 1.0), ("beta", 2.0), ("alpha", 2.0)):
        await port.put_alias(alias(name, created=created), create=True)
    await port.put_alias(alias("other", machine=SM2), create=True)
    # Oldest first, ties by name; an update does not move an alias.
    await port.put_alias(alias("zeta", created=1.0, updated=50.0), create=False)
    assert [a.name for a in await port.list_aliases(SM)] == ["zeta", "alpha", "beta"]
    assert await port.delete_alias(SM, "alpha") is True
    assert await port.delete_alias(SM, "alpha") is False
    assert await port.delete_alias(SM, "other") is False
    assert [a.name for a in await port.list_aliases(SM)] == ["zeta", "beta"]
    assert [a.name for a in await port.list_aliases(SM2)] == ["other"]


# -- tags -------------------------------------------------------------------------------------


async def test_tags_merge_untag_and_list_sorted(store: EventStore) -> None:
    port = tags(store)
    assert await port.list_tags(SM) == {}
    await port.tag_resource(SM, {"b": "1", "a": "2", "É": "accent", "Z": "upper"})
    listed = await port.list_tags(SM)
    assert listed == {"a": "2", "b": "1", "É": "accent", "Z": "upper"}
    assert list(listed) == ["Z", "a", "b", "É"]  # by key, code point order everywhere
    await port.tag_resource(SM, {"a": "3", "c": ""})
    assert await port.list_tags(SM) == {"Z": "upper", "a": "3", "b": "1", "c": "", "É": "accent"}
    await port.untag_resource(SM, ["b", "unknown", "É"])
    assert await port.list_tags(SM) == {"Z": "upper", "a": "3", "c": ""}
    await port.tag_resource(SM, {})
    await port.untag_resource(SM, [])
    await port.untag_resource(SM2, ["a"])
    assert await port.list_tags(SM2) == {}
    await port.untag_resource(SM, ["Z", "a", "c"])
    assert await port.list_tags(SM) == {}


async def test_delete_activity_deletes_its_tags(store: EventStore) -> None:
    port = tags(store)
    await store.put_activity(ActivityRecord(arn=ACTIVITY, name="resize", creation_date=1.0))
    await port.tag_resource(ACTIVITY, {"k": "v"})
    await port.tag_resource(SM, {"k": "v"})
    await store.delete_activity(ACTIVITY)
    assert await port.list_tags(ACTIVITY) == {}
    assert await port.list_tags(SM) == {"k": "v"}


# -- executions started from a version or an alias ---------------------------------------------


async def test_version_and_alias_of_an_execution_round_trip(store: EventStore) -> None:
    rec = started_from("a", version=V1, via=LIVE)
    plain = started_from("b")
    await store.create_executions([(rec, events(1, 1)), (plain, events(1, 1))])
    assert await store.get_execution(rec.execution_arn) == msgspec.structs.replace(rec, last_seq=1)
    assert await store.get_execution(plain.execution_arn) == msgspec.structs.replace(
        plain, last_seq=1
    )
    [(loaded, _)] = await store.load_executions([rec.execution_arn])
    assert loaded == msgspec.structs.replace(rec, last_seq=1)


async def test_an_append_does_not_change_the_version_or_alias(store: EventStore) -> None:
    rec = started_from("a", version=V1, via=LIVE)
    await store.create_execution(rec, events(1, 1))
    a = rec.execution_arn
    # A record that names another version and alias (or none): both stay the creation's.
    moved = msgspec.structs.replace(
        rec,
        status="SUCCEEDED",
        output="{}",
        state_machine_version_arn=V2,
        state_machine_alias_arn=None,
    )
    await store.append([Append(execution_arn=a, expected_seq=1, events=events(2, 1), record=moved)])
    expected = msgspec.structs.replace(rec, status="SUCCEEDED", output="{}", last_seq=2)
    assert await store.get_execution(a) == expected
    cleared = msgspec.structs.replace(
        expected, state_machine_version_arn=None, state_machine_alias_arn=BETA
    )
    await store.append([Append(execution_arn=a, expected_seq=2, events=(), record=cleared)])
    assert await store.get_execution(a) == expected
    assert await store.list_executions(version_arn=V1) == [expected]
    assert await store.list_executions(version_arn=V2) == []


async def test_list_executions_by_version_and_alias(store: EventStore) -> None:
    rows = [
        started_from("plain", start=1.0),
        started_from("v1", version=V1, start=2.0),
        started_from("live-v1", version=V1, via=LIVE, start=3.0),
        started_from("v2", version=V2, start=4.0),
        started_from("live-v2", version=V2, via=LIVE, start=5.0),
        started_from("beta-v2", version=V2, via=BETA, start=5.0),
        started_from("live-v1-late", version=V1, via=LIVE, start=6.0),
    ]
    other = msgspec.structs.replace(
        record("other", start=7.0, machine=SM2), state_machine_version_arn=f"{SM2}:1"
    )
    await store.create_executions([(r, events(1, 1)) for r in [*rows, other]])
    failed = msgspec.structs.replace(rows[6], status="FAILED", stop_date=9.0)
    await store.append(
        [Append(execution_arn=failed.execution_arn, expected_seq=1, events=(), record=failed)]
    )

    async def names(**kw: object) -> list[str]:
        return [r.name for r in await store.list_executions(**kw)]  # type: ignore[arg-type]

    assert await names(version_arn=V1) == ["live-v1-late", "live-v1", "v1"]
    assert await names(version_arn=V2) == ["live-v2", "beta-v2", "v2"]  # ties: ARN descending
    assert await names(alias_arn=LIVE) == ["live-v1-late", "live-v2", "live-v1"]
    assert await names(alias_arn=BETA) == ["beta-v2"]
    assert await names(alias_arn=LIVE, version_arn=V2) == ["live-v2"]
    assert await names(alias_arn=LIVE, status="RUNNING") == ["live-v2", "live-v1"]
    assert await names(version_arn=V1, status="FAILED") == ["live-v1-late"]
    assert await names(version_arn=V1, state_machine_arn=SM2) == []
    assert await names(version_arn=f"{SM2}:1") == ["other"]
    assert await names(version_arn=f"{SM}:9") == []
    assert await names(alias_arn=LIVE, redriven=True) == []
    assert len(await names()) == 8
    # Keyset pages of an alias's executions.
    first = await store.list_executions(alias_arn=LIVE, limit=2)
    assert [r.name for r in first] == ["live-v1-late", "live-v2"]
    cursor = (first[-1].start_date, first[-1].execution_arn)
    assert await names(alias_arn=LIVE, limit=2, after=cursor) == ["live-v1"]
    assert await names(version_arn=V2, after=(5.0, arn("live-v2"))) == ["beta-v2", "v2"]


async def test_express_store_forwards_versions_tags_and_filters() -> None:
    backing = MemoryStore()
    store = ExpressStore(backing)
    version, created = await store.publish_version(SM, "r1", "d", 1.0)
    assert created
    assert await backing.get_version(SM, 1) == version
    assert await store.list_versions(SM) == [version]
    assert await store.put_alias(alias("live"), create=True)
    assert await store.put_alias(alias("live", ((1, 100),), updated=5.0), create=False)
    assert await store.get_alias(SM, "live") == await backing.get_alias(SM, "live")
    assert [a.name for a in await store.list_aliases(SM)] == ["live"]
    assert await store.delete_alias(SM, "live")
    assert await store.get_version(SM, 1) == version
    assert await store.delete_version(SM, 1)
    await store.tag_resource(SM, {"k": "v", "a": "b"})
    await store.untag_resource(SM, ["a"])
    assert await store.list_tags(SM) == await backing.list_tags(SM) == {"k": "v"}
    durable = started_from("d", version=V1, start=1.0)
    running = msgspec.structs.replace(
        started_from("e", version=V1, start=2.0),
        execution_arn=f"{SM.replace(':stateMachine:', ':express:')}:e:0001",
    )
    await store.create_executions([(durable, events(1, 1)), (running, events(1, 1))])
    assert await backing.get_execution(running.execution_arn) is None
    found = await store.list_executions(version_arn=V1)
    assert [r.name for r in found] == ["e", "d"]
    assert await store.list_executions(version_arn=V2) == []
    assert await store.list_executions(alias_arn=LIVE) == []


# -- SQLite: migration and plans ----------------------------------------------------------------


async def test_sqlite_version_8_adds_versions_aliases_and_tags(tmp_path: Path) -> None:
    """A file of schema version 7 gains the version, alias and tag tables and the executions'
    version and alias columns (NULL for the executions it holds, which stay readable)."""
    assert SCHEMA_VERSION == 8
    path = tmp_path / "v7.db"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for migration in MIGRATIONS[:7]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 7")
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
        assert await store.pragma("user_version") == 8
        old = await store.get_execution(arn("old"))
        assert old is not None
        assert (old.name, old.revision_id) == ("old", "r1")
        assert (old.state_machine_version_arn, old.state_machine_alias_arn) == (None, None)
        assert await store.read(arn("old")) == list(events(1, 1))
        assert await store.list_executions(version_arn=V1) == []
        version, _ = await store.publish_version(SM, "r1", None, 2.0)
        await store.put_alias(alias("live"), create=True)
        await store.tag_resource(SM, {"k": "v"})
        await store.create_execution(started_from("new", version=V1, via=LIVE), events(1, 1))
    async with SqliteStore.open(path) as store:  # reopened: nothing to migrate, all kept
        assert await store.list_versions(SM) == [version]
        assert await store.list_aliases(SM) == [alias("live")]
        assert await store.list_tags(SM) == {"k": "v"}
        assert [r.name for r in await store.list_executions(alias_arn=LIVE)] == ["new"]
        assert [r.name for r in await store.list_executions(SM)] == ["new", "old"]


async def test_sqlite_listing_by_version_or_alias_is_an_index_range_scan(tmp_path: Path) -> None:
    async with SqliteStore.open(tmp_path / "plan.db"):
        pass
    with contextlib.closing(sqlite3.connect(tmp_path / "plan.db")) as conn:
        plans = [
            " ".join(
                str(row[3])
                for row in conn.execute(
                    f"EXPLAIN QUERY PLAN SELECT * FROM executions WHERE {column} = ? "
                    "AND (start_date, execution_arn) < (?, ?) "
                    "ORDER BY start_date DESC, execution_arn DESC LIMIT 10",
                    (V1, 5.0, "x"),
                )
            )
            for column in ("state_machine_version_arn", "state_machine_alias_arn")
        ]
    by_version, by_alias = plans
    assert "USING INDEX executions_by_version (state_machine_version_arn=? AND" in by_version
    assert "USING INDEX executions_by_alias (state_machine_alias_arn=? AND" in by_alias
    assert "TEMP B-TREE" not in by_version + by_alias


async def test_sqlite_one_live_version_per_revision_is_the_databases_rule(tmp_path: Path) -> None:
    async with SqliteStore.open(tmp_path / "u.db") as store:
        await store.publish_version(SM, "r1", None, 1.0)
    with contextlib.closing(sqlite3.connect(tmp_path / "u.db")) as conn:
        insert = (
            "INSERT INTO state_machine_versions (state_machine_arn, version, revision_id, "
            "creation_date, deleted) VALUES (?, ?, 'r1', 1.0, ?)"
        )
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(insert, (SM, 2, 0))
        conn.execute(insert, (SM, 3, 1))  # a tombstone of the revision is allowed


# -- PostgreSQL: migration and concurrent publishes ----------------------------------------------


async def test_postgres_version_7_adds_versions_aliases_and_tags(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """A database of schema version 6 gains version 7; its executions stay readable."""
    assert len(PG_MIGRATIONS) == 7
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{postgres_schema}"')
        await conn.execute(f'SET search_path = "{postgres_schema}"')
        await conn.execute(
            "CREATE TABLE schema_version ("
            "version integer PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())"
        )
        for number, migration in enumerate(PG_MIGRATIONS[:6], start=1):
            for statement in migration:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
        await conn.execute(
            "INSERT INTO executions (execution_arn, partition, state_machine_arn, name, status, "
            "start_date, input, last_seq, revision_id) "
            "VALUES ($1, 0, $2, 'old', 'SUCCEEDED', 1.0, '{}', 0, 'r1')",
            arn("old"),
            SM,
        )
    finally:
        await conn.close()
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        assert await store.schema_versions() == [1, 2, 3, 4, 5, 6, 7]
        old = await store.get_execution(arn("old"))
        assert old is not None
        assert (old.name, old.revision_id) == ("old", "r1")
        assert (old.state_machine_version_arn, old.state_machine_alias_arn) == (None, None)
        await store.create_execution(started_from("new", version=V1, via=LIVE), events(1, 1))
        assert [r.name for r in await store.list_executions(version_arn=V1)] == ["new"]
        assert [r.name for r in await store.list_executions(SM)] == ["new", "old"]
        assert (await store.publish_version(SM, "r1", None, 2.0))[0].version == 1


async def test_postgres_concurrent_publishes_across_processes(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """Two processes (two pools) publishing at once: distinct revisions get distinct numbers,
    and one revision published by both gets one version (exactly one publish creates it)."""
    async with (
        PostgresStore.open(postgres_dsn, schema=postgres_schema, pool_size=4) as first,
        PostgresStore.open(postgres_dsn, schema=postgres_schema, pool_size=4) as second,
    ):
        created: list[tuple[str, int, bool]] = []

        async def publish(store: PostgresStore, revision: str) -> None:
            version, new = await store.publish_version(SM, revision, None, 1.0)
            created.append((revision, version.version, new))

        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(publish, first if i % 2 else second, f"r{i}")
        numbers = sorted(number for _, number, _ in created)
        assert numbers == list(range(1, 17))
        assert all(new for _, _, new in created)

        for round_ in range(8):
            created.clear()
            revision = f"same{round_}"
            async with anyio.create_task_group() as tg:
                for i in range(6):
                    tg.start_soon(publish, first if i % 2 else second, revision)
            assert len({number for _, number, _ in created}) == 1
            assert sum(new for _, _, new in created) == 1
        live = await first.list_versions(SM)
        assert [v.version for v in live] == list(range(24, 0, -1))
        assert len({v.revision_id for v in live}) == 24


async def test_postgres_delete_state_machine_waits_for_a_publish(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """A deletion racing publishes leaves either no version or versions numbered from 1 (none
    numbered after the deleted ones)."""
    async with (
        PostgresStore.open(postgres_dsn, schema=postgres_schema) as first,
        PostgresStore.open(postgres_dsn, schema=postgres_schema) as second,
    ):
        for round_ in range(10):
            await first.put_state_machine(machine())
            await first.publish_version(SM, f"r{round_}-a", None, 1.0)
            await first.publish_version(SM, f"r{round_}-b", None, 1.0)
            async with anyio.create_task_group() as tg:
                for i in range(4):
                    tg.start_soon(first.publish_version, SM, f"r{round_}-{i}", None, 1.0)
                tg.start_soon(second.delete_state_machine, SM)
            numbers = sorted(v.version for v in await second.list_versions(SM))
            assert numbers == list(range(1, len(numbers) + 1))
            await second.delete_state_machine(SM)
