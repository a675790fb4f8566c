"""``ExpressStore``: EXPRESS executions in memory, the rest in the durable store, one contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from runtime.core.events import HistoryEvent
from runtime.errors import ConcurrencyConflict, ExecutionAlreadyExists
from runtime.store import Append, ExecutionRecord, SqliteStore
from runtime.store.express import ExpressStore, is_express

pytestmark = pytest.mark.anyio

SM = "arn:aws:states:us-east-1:123456789012:stateMachine:M"
STANDARD = "arn:aws:states:us-east-1:123456789012:execution:M:s"
EXPRESS = "arn:aws:states:us-east-1:123456789012:express:M:e:0000"


def record(arn: str, start: float = 1.0, status: str = "RUNNING") -> ExecutionRecord:
    return ExecutionRecord(
        execution_arn=arn,
        state_machine_arn=SM,
        name=arn.split(":")[7],
        status=status,
        start_date=start,
        input="{}",
    )


def event(i: int) -> HistoryEvent:
    return HistoryEvent(id=i, type="PassStateEntered", timestamp=float(i), previous_event_id=i - 1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ExpressStore]:
    async with SqliteStore.open(tmp_path / "s.db") as durable:
        yield ExpressStore(durable, keep_finished=2)


def test_is_express() -> None:
    assert is_express(EXPRESS)
    assert not is_express(STANDARD)


async def test_express_rows_never_reach_the_durable_store(store: ExpressStore) -> None:
    await store.create_executions([(record(STANDARD), [event(1)]), (record(EXPRESS), [event(1)])])
    await store.append(
        [
            Append(execution_arn=STANDARD, expected_seq=1, events=(event(2),)),
            Append(execution_arn=EXPRESS, expected_seq=1, events=(event(2),)),
        ]
    )
    assert [e.id for e in await store.read(EXPRESS)] == [1, 2]
    assert await store.backing.read(EXPRESS) == []
    assert await store.backing.get_execution(EXPRESS) is None
    assert [e.id for e in await store.backing.read(STANDARD)] == [1, 2]
    loaded = await store.load_executions([STANDARD, EXPRESS])
    assert sorted(r.execution_arn for r, _ in loaded) == sorted([STANDARD, EXPRESS])
    listed = await store.list_executions()
    assert {r.execution_arn for r in listed} == {STANDARD, EXPRESS}
    assert [r.execution_arn for r in await store.open_executions()] == [STANDARD]


async def test_a_batch_stays_all_or_nothing(store: ExpressStore) -> None:
    await store.create_executions([(record(STANDARD), [event(1)]), (record(EXPRESS), [event(1)])])
    with pytest.raises(ConcurrencyConflict):
        await store.append(
            [
                Append(execution_arn=STANDARD, expected_seq=1, events=(event(2),)),
                Append(execution_arn=EXPRESS, expected_seq=5, events=(event(6),)),
            ]
        )
    assert len(await store.read(STANDARD)) == 1  # the durable part was not written
    other = STANDARD + "2"
    with pytest.raises(ExecutionAlreadyExists):
        await store.create_executions([(record(other), [event(1)]), (record(EXPRESS), [event(1)])])
    assert await store.get_execution(other) is None


async def test_an_ended_express_execution_keeps_only_its_record(store: ExpressStore) -> None:
    arns = [f"{EXPRESS}{i}" for i in range(3)]
    for arn in arns:
        await store.create_execution(record(arn), [event(1)])
        done = msgspec.structs.replace(record(arn), status="SUCCEEDED", output='{"ok": 1}')
        await store.append(
            [Append(execution_arn=arn, expected_seq=1, events=(event(2),), record=done)]
        )
    assert not store.memory.holds_any()
    assert await store.read(arns[2]) == []
    found = await store.get_execution(arns[2])
    assert found is not None
    assert (found.status, found.output) == ("SUCCEEDED", '{"ok": 1}')
    assert await store.get_execution(arns[0]) is None  # beyond keep_finished=2
