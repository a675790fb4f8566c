"""What is PostgreSQL-specific in ``PostgresStore`` (the shared contract runs in
``test_store_contract.py``): migrations, reopening, several stores (processes) on one database,
the append guard (the fencing hook of issue 12 part 2), operators' requests."""

from __future__ import annotations

from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import msgspec
import pytest

from runtime.errors import ConcurrencyConflict
from runtime.store import ActivityRecord, Append, StateMachineRecord, Timer
from runtime.store.postgres import PARTITIONS, SCHEMA_VERSION, PostgresStore, partition_of
from tests.store.test_store_contract import SM, arn, events, record

pytestmark = pytest.mark.anyio

TABLES = {
    "activities",
    "events",
    "executions",
    "heartbeats",
    "requests",
    "schedules",  # version 2 (issue 14)
    "members",  # version 3 (issue 12)
    "leases",
    "activity_tasks",  # version 4 (issue 12)
    "state_machine_revisions",  # version 5 (issue 13)
    "map_runs",  # version 6 (issue 14)
    "state_machine_versions",  # version 7 (issue 13)
    "state_machine_aliases",
    "tags",
    "schema_version",
    "settings",
    "state_machines",
    "timers",
}


async def _tables(dsn: str, schema: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
        )
    finally:
        await conn.close()
    return {row[0] for row in rows}


async def _sql(dsn: str, schema: str, statement: str, *args: Any) -> None:
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        await conn.execute(statement, *args)
    finally:
        await conn.close()


async def test_migrates_an_empty_database_once(postgres_dsn: str, postgres_schema: str) -> None:
    assert await _tables(postgres_dsn, postgres_schema) == set()
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        assert await store.schema_versions() == list(range(1, SCHEMA_VERSION + 1))
        assert await store.migrate(postgres_schema) == SCHEMA_VERSION
    assert await _tables(postgres_dsn, postgres_schema) == TABLES
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        assert await store.schema_versions() == list(range(1, SCHEMA_VERSION + 1))


async def test_a_version_1_database_gains_schedules_and_leases(
    postgres_dsn: str, postgres_schema: str
) -> None:
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        await store.put_activity(ActivityRecord(arn="arn:act", name="act", creation_date=1.0))
    # Back to what version 1 wrote: versions 2 to 7 are applied again on open.
    for statement in (
        "DROP TABLE state_machine_versions",
        "DROP TABLE state_machine_aliases",
        "DROP TABLE tags",
        "ALTER TABLE executions DROP COLUMN state_machine_version_arn",
        "ALTER TABLE executions DROP COLUMN state_machine_alias_arn",
        "DROP TABLE schedules",
        "DROP TABLE members",
        "DROP TABLE leases",
        "DROP TABLE activity_tasks",
        "DROP TABLE state_machine_revisions",
        "ALTER TABLE executions DROP COLUMN revision_id",
        "DROP TABLE map_runs",
        "ALTER TABLE executions DROP COLUMN map_run_arn",
        "ALTER TABLE requests DROP COLUMN partition",
        "DROP INDEX executions_open_by_partition",
        "DELETE FROM schema_version WHERE version >= 2",
    ):
        await _sql(postgres_dsn, postgres_schema, statement)
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        versions = list(range(1, SCHEMA_VERSION + 1))
        assert await store.schema_versions() == [1, 2, 3, 4, 5, 6, 7] == versions
        assert [a.arn for a in await store.list_activities()] == ["arn:act"]
        assert await store.list_schedules() == []


async def test_concurrent_opens_migrate_once(postgres_dsn: str, postgres_schema: str) -> None:
    """Processes starting together on an empty database: the advisory lock serializes them."""
    versions: list[list[int]] = []

    async def opener() -> None:
        async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
            versions.append(await store.schema_versions())

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(opener)
    assert versions == [list(range(1, SCHEMA_VERSION + 1))] * 4


async def test_refuses_a_newer_schema(postgres_dsn: str, postgres_schema: str) -> None:
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema):
        pass
    await _sql(postgres_dsn, postgres_schema, "INSERT INTO schema_version (version) VALUES (99)")
    with pytest.raises(RuntimeError, match="version 99 is newer"):
        async with PostgresStore.open(postgres_dsn, schema=postgres_schema):
            pass


async def test_refuses_another_partition_count(postgres_dsn: str, postgres_schema: str) -> None:
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema):
        pass
    await _sql(postgres_dsn, postgres_schema, "UPDATE settings SET value = '16'")
    with pytest.raises(RuntimeError, match=f"16 partitions, this Statemill uses {PARTITIONS}"):
        async with PostgresStore.open(postgres_dsn, schema=postgres_schema):
            pass


@pytest.mark.parametrize("schema", ["", "1abc", 'x"; DROP TABLE events; --', "a.b"])
async def test_rejects_a_schema_that_is_not_an_identifier(postgres_dsn: str, schema: str) -> None:
    with pytest.raises(ValueError, match="plain SQL identifier"):
        async with PostgresStore.open(postgres_dsn, schema=schema):
            pass


async def test_reopen_keeps_everything(postgres_dsn: str, postgres_schema: str) -> None:
    machine = StateMachineRecord(
        arn=SM, name="Orders", definition="{}", type="STANDARD", creation_date=1.0
    )
    rec = record("a")
    timer = Timer(execution_arn=rec.execution_arn, timer_id="wait-1", fire_at=50.0)
    activity = ActivityRecord(arn="arn:aws:states:::activity:resize", name="r", creation_date=3.0)
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        await store.put_state_machine(machine)
        await store.create_execution(rec, events(1, 2))
        await store.append(
            [Append(execution_arn=rec.execution_arn, expected_seq=2, events=events(3, 5))]
        )
        await store.put_timers([timer])
        await store.put_activity(activity)
        await store.put_heartbeat(rec.execution_arn, "", 7.0)
        request_id = await store.add_request("stop", "{}", 8.0)
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        assert await store.list_state_machines() == [machine]
        assert await store.read(rec.execution_arn) == list(events(1, 7))
        assert await store.read(rec.execution_arn, after_seq=4) == list(events(5, 3))
        assert await store.get_execution(rec.execution_arn) == msgspec.structs.replace(
            rec, last_seq=7
        )
        assert await store.load_executions([rec.execution_arn, arn("nope")]) == [
            (msgspec.structs.replace(rec, last_seq=7), list(events(1, 7)))
        ]
        assert await store.due_timers(100.0, 10) == [timer]
        assert await store.list_activities() == [activity]
        assert await store.heartbeats([rec.execution_arn]) == {rec.execution_arn: {"": 7.0}}
        assert await store.get_request(request_id) == ("stop", "PENDING", None)


async def test_two_stores_on_one_database_the_loser_conflicts(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """Two processes (two pools) append to the same execution from the same seq: one wins,
    the other gets ConcurrencyConflict, and the history has the winner's events only."""
    async with (
        PostgresStore.open(postgres_dsn, schema=postgres_schema) as first,
        PostgresStore.open(postgres_dsn, schema=postgres_schema) as second,
    ):
        a = arn("a")
        await first.create_execution(record("a"), events(1, 1))
        outcomes: dict[str, str] = {}

        async def writer(name: str, store: PostgresStore, seq: int) -> None:
            tagged = tuple(msgspec.structs.replace(e, type=name) for e in events(seq + 1, 1))
            try:
                await store.append([Append(execution_arn=a, expected_seq=seq, events=tagged)])
            except ConcurrencyConflict as exc:
                outcomes[name] = str(exc)
            else:
                outcomes[name] = "won"

        for seq in range(1, 11):
            outcomes.clear()
            async with anyio.create_task_group() as tg:
                tg.start_soon(writer, "First", first, seq)
                tg.start_soon(writer, "Second", second, seq)
            lost = f"execution {a}: expected seq {seq}, stored seq is {seq + 1}"
            assert sorted(outcomes.values()) == sorted([lost, "won"])
            (winner,) = (name for name, outcome in outcomes.items() if outcome == "won")
            history = await second.read(a)
            assert [e.id for e in history] == list(range(1, seq + 2))
            assert history[-1].type == winner
        got = await first.get_execution(a)
        assert got is not None
        assert got.last_seq == 11


async def test_taken_seq_conflicts_via_primary_key(postgres_dsn: str, postgres_schema: str) -> None:
    """Even if the summary row's last_seq lags (a hand edit), the primary key refuses a seq."""
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        await store.create_execution(record("a"), events(1, 1))
        await _sql(
            postgres_dsn,
            postgres_schema,
            "INSERT INTO events (execution_id, seq, first_seq, type, timestamp, payload) "
            "SELECT id, 2, 2, 'PassStateEntered', 0, '\\x80' FROM executions "
            "WHERE execution_arn = $1",
            arn("a"),
        )
        batch = [Append(execution_arn=arn("a"), expected_seq=1, events=events(2, 1))]
        with pytest.raises(ConcurrencyConflict, match="already taken"):
            await store.append(batch)
        got = await store.get_execution(arn("a"))
        assert got is not None
        assert got.last_seq == 1


class Fence:
    """A lease-epoch check of the kind issue 12 part 2 needs: the writer's epoch for each
    partition must still be the stored one, read under a share lock inside the append."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.seen: list[frozenset[int]] = []

    async def check(self, connection: Any, partitions: frozenset[int]) -> None:
        self.seen.append(partitions)
        stale = await connection.fetch(
            "SELECT partition FROM leases WHERE partition = ANY($1::int[]) AND epoch <> $2 "
            "FOR SHARE",
            sorted(partitions),
            self.epoch,
        )
        if stale:
            raise ConcurrencyConflict(f"lease epoch {self.epoch} is stale")


async def test_guard_runs_inside_the_write_transaction(
    postgres_dsn: str, postgres_schema: str
) -> None:
    fence = Fence(epoch=1)
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema, guard=fence) as store:
        # The leases table of version 3, every partition at epoch 1.
        await _sql(postgres_dsn, postgres_schema, "UPDATE leases SET epoch = 1")
        a, b = arn("a"), arn("b")
        await store.create_executions([(record("a"), events(1, 1)), (record("b"), events(1, 1))])
        assert fence.seen == [frozenset({partition_of(a), partition_of(b)})]
        await store.append([Append(execution_arn=a, expected_seq=1, events=events(2, 1))])
        assert fence.seen[-1] == frozenset({partition_of(a)})
        # Another owner took a's partition (a new epoch): the old owner's batch writes nothing.
        await _sql(
            postgres_dsn,
            postgres_schema,
            "UPDATE leases SET epoch = 2 WHERE partition = $1",
            partition_of(a),
        )
        batch = [
            Append(execution_arn=b, expected_seq=1, events=events(2, 1)),
            Append(execution_arn=a, expected_seq=2, events=events(3, 1)),
        ]
        with pytest.raises(ConcurrencyConflict, match="epoch 1 is stale"):
            await store.append(batch)
        assert len(await store.read(a)) == 2
        assert len(await store.read(b)) == 1
        c = record("c")
        await _sql(
            postgres_dsn,
            postgres_schema,
            "UPDATE leases SET epoch = 2 WHERE partition = $1",
            partition_of(c.execution_arn),
        )
        with pytest.raises(ConcurrencyConflict, match="stale"):
            await store.create_execution(c, events(1, 1))
        assert await store.get_execution(c.execution_arn) is None
        # The writer holding the new epoch everywhere writes.
        await _sql(postgres_dsn, postgres_schema, "UPDATE leases SET epoch = 2")
        fence.epoch = 2
        await store.append(batch)
        await store.create_execution(c, events(1, 1))
        assert len(await store.read(a)) == 3


async def test_cancelled_append_leaves_the_pool_usable(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """A writer cancelled mid-append neither half-commits nor breaks the pool."""
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema, pool_size=1) as store:
        await store.create_execution(record("a"), events(1, 1))
        for delay in (0.0, 0.0005, 0.002):
            seq = len(await store.read(arn("a")))
            batch = [Append(execution_arn=arn("a"), expected_seq=seq, events=events(seq + 1, 3000))]
            async with anyio.create_task_group() as tg:
                tg.start_soon(store.append, batch)
                await anyio.sleep(delay)
                tg.cancel_scope.cancel()
            assert len(await store.read(arn("a"))) in (seq, seq + 3000)
        seq = len(await store.read(arn("a")))
        await store.append(
            [Append(execution_arn=arn("a"), expected_seq=seq, events=events(seq + 1, 1))]
        )
        assert await store.read(arn("a")) == list(events(1, seq + 1))


async def test_operators_requests(postgres_dsn: str, postgres_schema: str) -> None:
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        first = await store.add_request("stop", '{"executionArn": "x"}', 5.0)
        second = await store.add_request("start", "{}", 6.0)
        assert await store.pending_requests() == [
            (first, "stop", '{"executionArn": "x"}', 5.0),
            (second, "start", "{}", 6.0),
        ]
        await store.finish_request(first, "DONE", "{}")
        assert [r[0] for r in await store.pending_requests()] == [second]
        assert await store.pending_requests(limit=0) == []
        assert await store.get_request(first) == ("stop", "DONE", "{}")
        assert await store.get_request(second) == ("start", "PENDING", None)
        assert await store.get_request(999) is None


def test_partition_of_is_stable() -> None:
    """The partition is a pure function of the ARN (CRC-32), the same in every process."""
    assert partition_of(arn("a")) == partition_of(arn("a"))
    assert {partition_of(arn(f"e{i}")) for i in range(5000)} == set(range(PARTITIONS))
    assert partition_of("abc") == 0x352441C2 % PARTITIONS  # zlib.crc32(b"abc")
