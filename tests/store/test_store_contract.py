"""The EventStore contract: every store (memory, sqlite) passes every test in this module."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import anyio
import msgspec
import pytest

from runtime.core.events import HistoryEvent
from runtime.errors import ConcurrencyConflict, ExecutionAlreadyExists, ExecutionDoesNotExist
from runtime.store import (
    ActivityRecord,
    Append,
    EventStore,
    ExecutionRecord,
    MemoryStore,
    SqliteStore,
    StateMachineRecord,
    Timer,
)
from runtime.store.base import StateMachineRevisions
from runtime.store.sqlite import MIGRATIONS, SCHEMA_VERSION

pytestmark = pytest.mark.anyio

SM = "arn:aws:states:us-east-1:123456789012:stateMachine:Orders"
SM2 = "arn:aws:states:us-east-1:123456789012:stateMachine:Billing"


def arn(name: str, machine: str = SM) -> str:
    return machine.replace(":stateMachine:", ":execution:") + ":" + name


def record(
    name: str, *, start: float = 100.0, status: str = "RUNNING", machine: str = SM
) -> ExecutionRecord:
    return ExecutionRecord(
        execution_arn=arn(name, machine),
        state_machine_arn=machine,
        name=name,
        status=status,
        start_date=start,
        input='{"order": 1}',
    )


def events(first: int, count: int, *, frame: str = "") -> tuple[HistoryEvent, ...]:
    return tuple(
        HistoryEvent(
            id=i,
            type="ExecutionStarted" if i == 1 else "PassStateEntered",
            timestamp=1_700_000_000.0 + i,
            previous_event_id=i - 1,
            details={"input": '{"order": 1}', "name": f"S{i}", "statemillAttempt": i},
            frame=frame,
        )
        for i in range(first, first + count)
    )


async def started(store: EventStore, name: str, **kw: object) -> ExecutionRecord:
    rec = record(name, **kw)  # type: ignore[arg-type]
    await store.create_execution(rec, events(1, 1))
    return rec


# -- executions and events ------------------------------------------------------------------


async def test_create_and_read_round_trip(store: EventStore) -> None:
    rec = record("a")
    evs = events(1, 3, frame="4:2")
    await store.create_execution(rec, evs)
    assert await store.read(rec.execution_arn) == list(evs)
    assert await store.read(rec.execution_arn, after_seq=2) == [evs[2]]
    assert await store.read(rec.execution_arn, after_seq=3) == []
    assert await store.get_execution(rec.execution_arn) == msgspec.structs.replace(rec, last_seq=3)


async def test_unknown_execution(store: EventStore) -> None:
    assert await store.get_execution(arn("nope")) is None
    assert await store.read(arn("nope")) == []
    with pytest.raises(ExecutionDoesNotExist, match="nope"):
        await store.append([Append(execution_arn=arn("nope"), expected_seq=0, events=events(1, 1))])


async def test_create_execution_duplicate(store: EventStore) -> None:
    rec = await started(store, "a")
    with pytest.raises(ExecutionAlreadyExists, match=":a"):
        await store.create_execution(msgspec.structs.replace(rec, input="{}"), events(1, 2))
    assert await store.read(rec.execution_arn) == list(events(1, 1))
    got = await store.get_execution(rec.execution_arn)
    assert got is not None
    assert got.input == rec.input


async def test_create_execution_requires_dense_ids(store: EventStore) -> None:
    with pytest.raises(ValueError, match="dense"):
        await store.create_execution(record("a"), events(2, 1))
    assert await store.get_execution(arn("a")) is None


async def test_append_is_dense_and_replaces_record(store: EventStore) -> None:
    rec = await started(store, "a")
    a = rec.execution_arn
    await store.append([Append(execution_arn=a, expected_seq=1, events=events(2, 2))])
    done = msgspec.structs.replace(
        rec, status="SUCCEEDED", stop_date=200.0, output='{"ok": true}', last_seq=999
    )
    await store.append([Append(execution_arn=a, expected_seq=3, events=events(4, 1), record=done)])
    assert [e.id for e in await store.read(a)] == [1, 2, 3, 4]
    assert await store.read(a) == list(events(1, 4))
    # last_seq is the store's: what the caller passed is ignored.
    assert await store.get_execution(a) == msgspec.structs.replace(done, last_seq=4)


async def test_record_can_clear_fields(store: EventStore) -> None:
    """A redrive turns FAILED back into RUNNING: optional fields go back to None."""
    rec = await started(store, "a")
    failed = msgspec.structs.replace(
        rec, status="FAILED", stop_date=5.0, error="States.TaskFailed", cause="boom"
    )
    a = rec.execution_arn
    await store.append([Append(execution_arn=a, expected_seq=1, events=(), record=failed)])
    redriven = msgspec.structs.replace(rec, redrive_count=1)
    await store.append(
        [Append(execution_arn=a, expected_seq=1, events=events(2, 1), record=redriven)]
    )
    assert await store.get_execution(a) == msgspec.structs.replace(redriven, last_seq=2)


async def test_append_rejects_non_dense_events(store: EventStore) -> None:
    rec = await started(store, "a")
    with pytest.raises(ValueError, match="dense"):
        await store.append(
            [Append(execution_arn=rec.execution_arn, expected_seq=1, events=events(3, 1))]
        )
    assert len(await store.read(rec.execution_arn)) == 1


async def test_append_rejects_record_of_another_execution(store: EventStore) -> None:
    a = await started(store, "a")
    b = await started(store, "b")
    with pytest.raises(ValueError, match="record of"):
        await store.append(
            [Append(execution_arn=a.execution_arn, expected_seq=1, events=events(2, 1), record=b)]
        )


@pytest.mark.parametrize("expected_seq", [0, 2, 5])
async def test_wrong_expected_seq_conflicts(store: EventStore, expected_seq: int) -> None:
    rec = await started(store, "a")
    a = rec.execution_arn
    with pytest.raises(ConcurrencyConflict, match=f"{a}: expected seq {expected_seq}"):
        await store.append(
            [Append(execution_arn=a, expected_seq=expected_seq, events=events(expected_seq + 1, 1))]
        )
    assert await store.read(a) == list(events(1, 1))


async def test_duplicate_append_conflicts(store: EventStore) -> None:
    """Two writers that both read seq 1: the second loses, the first's events stay."""
    rec = await started(store, "a")
    a = rec.execution_arn
    winner = events(2, 2)
    loser = tuple(msgspec.structs.replace(e, type="TaskStateEntered") for e in events(2, 1))
    await store.append([Append(execution_arn=a, expected_seq=1, events=winner)])
    with pytest.raises(ConcurrencyConflict, match=a):
        await store.append([Append(execution_arn=a, expected_seq=1, events=loser)])
    assert await store.read(a) == list(events(1, 3))


async def test_conflicting_batch_writes_nothing(store: EventStore) -> None:
    a = (await started(store, "a")).execution_arn
    b = (await started(store, "b")).execution_arn
    c = (await started(store, "c")).execution_arn
    done = msgspec.structs.replace(record("a"), status="SUCCEEDED", stop_date=9.0)
    batch = [
        Append(execution_arn=a, expected_seq=1, events=events(2, 2), record=done),
        Append(execution_arn=b, expected_seq=1, events=events(2, 1)),
        Append(execution_arn=c, expected_seq=7, events=events(8, 1)),  # stale writer
    ]
    with pytest.raises(ConcurrencyConflict, match=c):
        await store.append(batch)
    for x in (a, b, c):
        assert await store.read(x) == list(events(1, 1))
        got = await store.get_execution(x)
        assert got is not None
        assert (got.status, got.last_seq) == ("RUNNING", 1)
    # The same batch without the stale item commits as a whole.
    await store.append(batch[:2])
    assert len(await store.read(a)) == 3
    assert len(await store.read(b)) == 2
    got_a = await store.get_execution(a)
    assert got_a is not None
    assert got_a.status == "SUCCEEDED"


async def test_batch_chains_appends_for_one_execution(store: EventStore) -> None:
    a = (await started(store, "a")).execution_arn
    await store.append(
        [
            Append(execution_arn=a, expected_seq=1, events=events(2, 2)),
            Append(execution_arn=a, expected_seq=3, events=events(4, 1)),
        ]
    )
    assert await store.read(a) == list(events(1, 4))
    with pytest.raises(ConcurrencyConflict, match=a):
        await store.append(
            [
                Append(execution_arn=a, expected_seq=4, events=events(5, 1)),
                Append(execution_arn=a, expected_seq=4, events=events(5, 1)),
            ]
        )
    assert len(await store.read(a)) == 4


async def test_empty_batch_is_a_no_op(store: EventStore) -> None:
    await store.append([])


async def test_concurrent_appends_from_many_tasks(store: EventStore) -> None:
    names = [f"x{i}" for i in range(20)]
    for n in names:
        await started(store, n)

    async def writer(name: str) -> None:
        for seq in range(1, 11):
            await store.append(
                [Append(execution_arn=arn(name), expected_seq=seq, events=events(seq + 1, 1))]
            )

    async with anyio.create_task_group() as tg:
        for n in names:
            tg.start_soon(writer, n)
    for n in names:
        assert await store.read(arn(n)) == list(events(1, 11))


async def test_racing_writers_exactly_one_wins(store: EventStore) -> None:
    a = (await started(store, "a")).execution_arn
    outcomes: list[str] = []

    async def writer(tag: str) -> None:
        evs = tuple(msgspec.structs.replace(e, type=tag) for e in events(2, 1))
        try:
            await store.append([Append(execution_arn=a, expected_seq=1, events=evs)])
            outcomes.append("won")
        except ConcurrencyConflict:
            outcomes.append("lost")

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(writer, f"T{i}")
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    assert len(await store.read(a)) == 2


# -- listing ----------------------------------------------------------------------------------


async def test_list_executions_filter_and_order(store: EventStore) -> None:
    await started(store, "old", start=1.0)
    await started(store, "new", start=3.0)
    await started(store, "mid", start=2.0, status="SUCCEEDED")
    await started(store, "other", start=2.5, machine=SM2)
    all_names = [r.name for r in await store.list_executions()]
    assert all_names == ["new", "other", "mid", "old"]
    assert [r.name for r in await store.list_executions(state_machine_arn=SM)] == [
        "new",
        "mid",
        "old",
    ]
    assert [r.name for r in await store.list_executions(status="SUCCEEDED")] == ["mid"]
    assert [r.name for r in await store.list_executions(SM, "RUNNING")] == ["new", "old"]
    assert [r.name for r in await store.list_executions(SM2, "SUCCEEDED")] == []
    assert [r.name for r in await store.list_executions(limit=2)] == ["new", "other"]
    assert all(r.last_seq == 1 for r in await store.list_executions())


async def test_list_executions_ties_by_arn(store: EventStore) -> None:
    for n in ("b", "c", "a"):
        await started(store, n, start=7.0)
    assert [r.name for r in await store.list_executions()] == ["c", "b", "a"]


async def test_list_executions_after_a_cursor_pages_by_sort_key(store: EventStore) -> None:
    """``after=(start_date, arn)``: the rows strictly after that key in the listing's order
    (keyset pagination, issue 13), whatever was started meanwhile."""
    for name, start in (("a", 5.0), ("b", 7.0), ("c", 7.0), ("d", 9.0), ("e", 1.0)):
        await started(store, name, start=start)
    await started(store, "other", start=8.0, machine=SM2)
    seen: list[str] = []
    cursor: tuple[float, str] | None = None
    while True:
        page = await store.list_executions(SM, limit=2, after=cursor)
        if not page:
            break
        seen += [r.name for r in page]
        cursor = (page[-1].start_date, page[-1].execution_arn)
        # Started while paging: newer than every cursor, so never on a later page.
        await started(store, f"new{len(seen)}", start=100.0 + len(seen))
    assert seen == ["d", "c", "b", "a", "e"]
    # Ties on start_date go by ARN, on both sides of the cursor.
    assert [r.name for r in await store.list_executions(SM, after=(7.0, arn("c")))] == [
        "b",
        "a",
        "e",
    ]
    # A key no row has: the rows after where it would sort.
    assert [r.name for r in await store.list_executions(SM, after=(6.0, ""))] == ["a", "e"]
    assert [r.name for r in await store.list_executions(after=(9.0, arn("d")))] == [
        "other",
        "c",
        "b",
        "a",
        "e",
    ]
    assert await store.list_executions(SM, after=(1.0, arn("e"))) == []
    assert [r.name for r in await store.list_executions(SM, "RUNNING", after=(7.0, arn("b")))] == [
        "a",
        "e",
    ]


async def test_list_executions_redriven_filter(store: EventStore) -> None:
    """``redriven``: only executions redriven at least once (True) or never (False), in the
    query, so a page is full however the two kinds interleave (issue 13)."""
    for index in range(6):
        rec = msgspec.structs.replace(
            record(f"x{index}", start=float(index), status="FAILED"), redrive_count=index % 2
        )
        await store.create_execution(rec, events(1, 1))
    redriven = await store.list_executions(SM, limit=2, redriven=True)
    assert [r.name for r in redriven] == ["x5", "x3"]
    after = (redriven[-1].start_date, redriven[-1].execution_arn)
    assert [r.name for r in await store.list_executions(SM, redriven=True, after=after)] == ["x1"]
    assert [r.name for r in await store.list_executions(SM, limit=2, redriven=False)] == [
        "x4",
        "x2",
    ]
    assert [r.name for r in await store.list_executions(SM, "FAILED", redriven=False)] == [
        "x4",
        "x2",
        "x0",
    ]
    assert [r.redrive_count for r in await store.list_executions(SM)] == [1, 0, 1, 0, 1, 0]


async def test_open_executions(store: EventStore) -> None:
    await started(store, "late", start=5.0)
    await started(store, "early", start=1.0)
    done = await started(store, "done", start=2.0)
    await store.append(
        [
            Append(
                execution_arn=done.execution_arn,
                expected_seq=1,
                events=events(2, 1),
                record=msgspec.structs.replace(done, status="FAILED", stop_date=3.0),
            )
        ]
    )
    assert [r.name for r in await store.open_executions()] == ["early", "late"]


async def test_state_machines(store: EventStore) -> None:
    assert await store.get_state_machine(SM) is None
    assert await store.list_state_machines() == []
    m1 = StateMachineRecord(
        arn=SM, name="Orders", definition='{"StartAt": "A"}', type="STANDARD", creation_date=2.0
    )
    m2 = StateMachineRecord(
        arn=SM2,
        name="Billing",
        definition="{}",
        type="EXPRESS",
        creation_date=1.0,
        revision_id="r1",
    )
    await store.put_state_machine(m1)
    await store.put_state_machine(m2)
    assert await store.get_state_machine(SM) == m1
    assert await store.list_state_machines() == [m2, m1]
    m1b = msgspec.structs.replace(m1, definition='{"StartAt": "B"}', revision_id="r2")
    await store.put_state_machine(m1b)
    assert await store.get_state_machine(SM) == m1b
    assert len(await store.list_state_machines()) == 2


def revisions(store: EventStore) -> StateMachineRevisions:
    assert isinstance(store, StateMachineRevisions)
    return store


async def test_each_revision_of_a_state_machine_is_kept(store: EventStore) -> None:
    m1 = StateMachineRecord(
        arn=SM, name="Orders", definition='{"v": 1}', type="STANDARD", creation_date=2.0
    )
    m1b = msgspec.structs.replace(m1, definition='{"v": 2}', revision_id="r2")
    await store.put_state_machine(m1)
    await store.put_state_machine(m1b)
    kept = revisions(store)
    assert await kept.get_state_machine_revision(SM, "") == m1
    assert await kept.get_state_machine_revision(SM, "r2") == m1b
    assert await kept.get_state_machine_revision(SM, "r3") is None
    assert await kept.get_state_machine_revision(SM2, "r2") is None
    # A put of the same revision replaces its row (a repaired definition is run).
    m1c = msgspec.structs.replace(m1b, definition='{"v": 3}')
    await store.put_state_machine(m1c)
    assert await kept.get_state_machine_revision(SM, "r2") == m1c
    assert await kept.get_state_machine_revision(SM, "") == m1


async def test_delete_state_machine_keeps_its_executions_and_revisions(store: EventStore) -> None:
    kept = revisions(store)
    assert await kept.delete_state_machine(SM) is False  # unknown: not an error
    m1 = StateMachineRecord(
        arn=SM, name="Orders", definition="{}", type="STANDARD", creation_date=2.0
    )
    m2 = msgspec.structs.replace(m1, arn=SM2, name="Billing")
    await store.put_state_machine(m1)
    await store.put_state_machine(m2)
    rec = await started(store, "a")
    assert await kept.delete_state_machine(SM) is True
    assert await store.get_state_machine(SM) is None
    assert await kept.get_state_machine_revision(SM, "") == m1  # a running one may need it
    assert await store.list_state_machines() == [m2]
    assert await kept.get_state_machine_revision(SM2, "") == m2
    assert await store.get_execution(rec.execution_arn) is not None
    assert await kept.delete_state_machine(SM) is False


async def test_an_execution_keeps_the_revision_it_was_created_with(store: EventStore) -> None:
    rec = msgspec.structs.replace(record("a"), revision_id="r1")
    await store.create_executions([(rec, events(1, 1))])
    assert (await store.get_execution(rec.execution_arn)) == msgspec.structs.replace(
        rec, last_seq=1
    )
    assert rec.machine_key == f"{SM}#r1"
    assert record("b").machine_key == SM
    # An append's record does not move it.
    done = msgspec.structs.replace(rec, status="SUCCEEDED", output="1", revision_id="other")
    await store.append(
        [Append(execution_arn=rec.execution_arn, expected_seq=1, events=events(2, 1), record=done)]
    )
    got = await store.get_execution(rec.execution_arn)
    assert got is not None
    assert (got.status, got.revision_id) == ("SUCCEEDED", "r1")
    [(loaded, _)] = await store.load_executions([rec.execution_arn])
    assert loaded.revision_id == "r1"
    assert [r.revision_id for r in await store.list_executions(SM)] == ["r1"]


# -- timers -----------------------------------------------------------------------------------


async def test_timers_due_in_order(store: EventStore) -> None:
    t = [
        Timer(execution_arn=arn("a"), timer_id="wait-1", fire_at=30.0),
        Timer(execution_arn=arn("b"), timer_id="wait-1", fire_at=10.0),
        Timer(execution_arn=arn("a"), timer_id="retry-2", fire_at=20.0),
        Timer(execution_arn=arn("c"), timer_id="x", fire_at=99.0),
    ]
    await store.put_timers(t)
    assert await store.due_timers(5.0, 10) == []
    assert await store.due_timers(30.0, 10) == [t[1], t[2], t[0]]
    assert await store.due_timers(30.0, 2) == [t[1], t[2]]
    # Not consumed by reading.
    assert await store.due_timers(1000.0, 10) == [t[1], t[2], t[0], t[3]]


async def test_timers_delete_and_move(store: EventStore) -> None:
    a1 = Timer(execution_arn=arn("a"), timer_id="1", fire_at=1.0)
    a2 = Timer(execution_arn=arn("a"), timer_id="2", fire_at=2.0)
    b1 = Timer(execution_arn=arn("b"), timer_id="1", fire_at=3.0)
    await store.put_timers([a1, a2, b1])
    await store.delete_timers([(arn("a"), "1"), (arn("zzz"), "unknown")])
    assert await store.due_timers(10.0, 10) == [a2, b1]
    moved = msgspec.structs.replace(a2, fire_at=5.0)
    await store.put_timers([moved])
    assert await store.due_timers(10.0, 10) == [b1, moved]
    assert await store.due_timers(4.0, 10) == [b1]
    # Moving back to the old time must not duplicate it.
    await store.put_timers([a2])
    assert await store.due_timers(10.0, 10) == [a2, b1]
    await store.delete_timers([(arn("a"), "2"), (arn("b"), "1")])
    assert await store.due_timers(10.0, 10) == []
    await store.put_timers([])
    await store.delete_timers([])


async def test_many_timers_churn(store: EventStore) -> None:
    timers = [
        Timer(execution_arn=arn(f"e{i}"), timer_id="t", fire_at=float(i % 97)) for i in range(500)
    ]
    await store.put_timers(timers)
    await store.delete_timers([(t.execution_arn, t.timer_id) for t in timers[::2]])
    kept = sorted(timers[1::2], key=lambda t: (t.fire_at, t.execution_arn, t.timer_id))
    assert await store.due_timers(1e9, 1000) == kept
    assert await store.due_timers(10.0, 5) == kept[:5]


async def test_activities(store: EventStore) -> None:
    act = "arn:aws:states:us-east-1:123456789012:activity:"
    first = ActivityRecord(arn=act + "resize", name="resize", creation_date=10.0)
    assert await store.put_activity(first) == first
    again = msgspec.structs.replace(first, creation_date=20.0)
    assert await store.put_activity(again) == first  # creating twice keeps the first
    crop = ActivityRecord(arn=act + "crop", name="crop", creation_date=5.0)
    await store.put_activity(crop)
    assert await store.get_activity(first.arn) == first
    assert await store.list_activities() == [crop, first]
    await store.delete_activity(crop.arn)
    await store.delete_activity(crop.arn)  # unknown: ignored
    assert await store.get_activity(crop.arn) is None
    assert await store.list_activities() == [first]


async def test_heartbeats(store: EventStore) -> None:
    a, b = arn("a"), arn("b")
    assert await store.heartbeats([a]) == {}
    await store.put_heartbeat(a, "", 10.0)
    await store.put_heartbeat(a, "", 12.0)  # replaces
    await store.put_heartbeat(a, "0/1:0", 11.0)
    await store.put_heartbeat(b, "", 13.0)
    assert await store.heartbeats([a, arn("c")]) == {a: {"": 12.0, "0/1:0": 11.0}}
    await store.delete_heartbeats([(a, ""), (arn("c"), "")])
    assert await store.heartbeats([a, b]) == {a: {"0/1:0": 11.0}, b: {"": 13.0}}


async def test_close_is_idempotent(store: EventStore) -> None:
    await store.close()
    await store.close()


# -- sqlite only: durability and migrations ----------------------------------------------------


async def test_sqlite_reopen_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "durable.db"
    machine = StateMachineRecord(
        arn=SM, name="Orders", definition="{}", type="STANDARD", creation_date=1.0
    )
    rec = record("a")
    timer = Timer(execution_arn=rec.execution_arn, timer_id="w", fire_at=42.0)
    async with SqliteStore.open(path) as store:
        assert store.durable
        await store.put_state_machine(machine)
        await store.create_execution(rec, events(1, 2))
        await store.append(
            [
                Append(
                    execution_arn=rec.execution_arn,
                    expected_seq=2,
                    events=events(3, 1),
                    record=msgspec.structs.replace(rec, status="SUCCEEDED", output="1"),
                )
            ]
        )
        await store.put_timers([timer])
    async with SqliteStore.open(path) as store:
        assert await store.get_state_machine(SM) == machine
        assert await store.read(rec.execution_arn) == list(events(1, 3))
        got = await store.get_execution(rec.execution_arn)
        assert got == msgspec.structs.replace(rec, status="SUCCEEDED", output="1", last_seq=3)
        assert await store.due_timers(100.0, 10) == [timer]
        with pytest.raises(ConcurrencyConflict):
            await store.append(
                [Append(execution_arn=rec.execution_arn, expected_seq=2, events=events(3, 1))]
            )


async def test_sqlite_migrations_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    async with SqliteStore.open(path) as store:
        assert await store.pragma("user_version") == SCHEMA_VERSION
        await store.create_execution(record("a"), events(1, 1))
        assert await store.migrate() == SCHEMA_VERSION
        assert await store.migrate() == SCHEMA_VERSION
    async with SqliteStore.open(path) as store:
        assert await store.pragma("user_version") == SCHEMA_VERSION
        assert await store.pragma("journal_mode") == "wal"
        assert len(await store.read(arn("a"))) == 1


async def test_sqlite_version_6_keeps_the_revisions_of_machines_stored_before(
    tmp_path: Path,
) -> None:
    """A file of schema version 5 gains the revision of each stored state machine; its
    executions run the current definition (revision '')."""
    path = tmp_path / "v5.db"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for migration in MIGRATIONS[:5]:
            for statement in migration:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 5")
        conn.execute(
            "INSERT INTO state_machines (arn, name, definition, type, creation_date, "
            "revision_id) VALUES (?, 'Orders', '{}', 'STANDARD', 1.0, 'abc')",
            (SM,),
        )
        conn.execute(
            "INSERT INTO executions (execution_arn, state_machine_arn, name, status, "
            "start_date, input) VALUES (?, ?, 'a', 'RUNNING', 1.0, '{}')",
            (arn("a"), SM),
        )
    async with SqliteStore.open(path) as store:
        machine = await store.get_state_machine(SM)
        assert machine is not None
        assert await store.get_state_machine_revision(SM, "abc") == machine
        got = await store.get_execution(arn("a"))
        assert got is not None
        assert got.revision_id == ""


async def test_sqlite_refuses_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    async with SqliteStore.open(path):
        pass
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer"):
        async with SqliteStore.open(path):
            pass


@pytest.mark.parametrize(("mode", "value"), [("FULL", 2), ("NORMAL", 1)])
async def test_sqlite_synchronous_configurable(tmp_path: Path, mode: str, value: int) -> None:
    async with SqliteStore.open(tmp_path / "s.db", synchronous=mode) as store:  # type: ignore[arg-type]
        assert await store.pragma("synchronous") == value


async def test_sqlite_rejects_bad_synchronous(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        async with SqliteStore.open(tmp_path / "s.db", synchronous="SOMETIMES"):  # type: ignore[arg-type]
            pass


async def test_sqlite_cancelled_append_leaves_connection_usable(tmp_path: Path) -> None:
    """Cancelling a writer mid-transaction neither half-commits nor wedges the connection."""
    async with SqliteStore.open(tmp_path / "c.db") as store:
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


async def test_sqlite_taken_seq_conflicts_via_primary_key(tmp_path: Path) -> None:
    """Even if the summary row's last_seq lags (a hand edit), the PK refuses a taken seq."""
    path = tmp_path / "pk.db"
    async with SqliteStore.open(path) as store:
        await store.create_execution(record("a"), events(1, 1))
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "INSERT INTO events (execution_id, seq, type, timestamp, payload) "
            "SELECT id, 2, 'PassStateEntered', 0, x'80' "
            "FROM executions WHERE execution_arn = ?",
            (arn("a"),),
        )
    async with SqliteStore.open(path) as store:
        batch = [Append(execution_arn=arn("a"), expected_seq=1, events=events(2, 1))]
        with pytest.raises(ConcurrencyConflict, match="already taken"):
            await store.append(batch)
        got = await store.get_execution(arn("a"))
        assert got is not None
        assert got.last_seq == 1


async def test_memory_store_is_not_durable() -> None:
    assert not MemoryStore().durable
