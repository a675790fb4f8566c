"""The ready queue takes its turns round families: a Map Run's children share one (issue 11).

The long fuzz's canary (10 Pass states) beside a distributed Map of 40,000 children waited
behind thousands of children's decisions on the FIFO queue (p99 1.2 s against a 100 ms
target). Each parent's Map Run children are now one family, every other execution its own,
and workers take one execution of each family in turn.
"""

from __future__ import annotations

import functools
import json

import anyio
import pytest

from runtime.core.decide import start_event
from runtime.core.evolve import fold
from runtime.core.state import ExecutionState
from runtime.definition.load import load_definition
from runtime.definition.model import StateMachine
from runtime.engine.clock import ManualClock
from runtime.engine.handlers import HandlerRegistry
from runtime.engine.live import Live
from runtime.engine.ready import ReadyQueue
from runtime.engine.scheduler import Engine
from runtime.store.base import ExecutionRecord
from runtime.store.memory import MemoryStore

pytestmark = pytest.mark.anyio

PREFIX = "arn:aws:states:us-east-1:123456789012"
MACHINE = f"{PREFIX}:stateMachine:Flood"
PARENT = f"{PREFIX}:execution:Flood:parent"
MAP_RUN = f"{PREFIX}:mapRun:Flood/L:run"
NOW = 1_700_000_000.0


def one_pass() -> StateMachine:
    return load_definition(
        json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    )


def record(name: str, *, parent: str | None = None, map_run: str | None = None) -> ExecutionRecord:
    return ExecutionRecord(
        execution_arn=f"{PREFIX}:execution:Flood:{name}",
        state_machine_arn=MACHINE,
        name=name,
        status="RUNNING",
        start_date=NOW,
        input="{}",
        parent_execution_arn=parent,
        map_run_arn=map_run,
    )


async def test_an_execution_ready_after_a_map_runs_children_is_decided_among_the_first() -> None:
    children = 400
    machine = one_pass()
    records = [record(f"child-{i}", parent=PARENT, map_run=MAP_RUN) for i in range(children)]
    other = record("other")
    records.append(other)
    store = MemoryStore()
    started = {
        r.execution_arn: [
            start_event(
                execution_arn=r.execution_arn,
                state_machine_arn=MACHINE,
                name=r.name,
                input={},
                now=NOW,
            )
        ]
        for r in records
    }
    await store.create_executions([(r, started[r.execution_arn]) for r in records])
    engine = Engine(store, HandlerRegistry(), ManualClock(NOW), workers=1)
    ended: list[str] = []
    all_ended = anyio.Event()

    def on_end(arn: str) -> None:
        ended.append(arn)
        if len(ended) == len(records):
            all_ended.set()

    async with anyio.create_task_group() as tg:
        await tg.start(engine.run)
        # All ready at once, the other execution last (no await in between: no worker runs).
        for r in records:
            engine.adopt(Live(r, machine, fold(started[r.execution_arn])))
            assert engine.when_ended(r.execution_arn, functools.partial(on_end, r.execution_arn))
        assert engine.ready.qsize() == children + 1
        with anyio.fail_after(30):
            await all_ended.wait()
        tg.cancel_scope.cancel()

    # FIFO: the other execution was decided after all 400 children; in turn, second.
    assert ended.index(other.execution_arn) <= 2
    # The children among themselves keep their order.
    assert [arn for arn in ended if arn != other.execution_arn] == [
        r.execution_arn for r in records[:-1]
    ]
    stored = await store.get_execution(other.execution_arn)
    assert stored is not None
    assert stored.status == "SUCCEEDED"


async def test_turns_go_round_families_and_the_count_stays_exact() -> None:
    machine = one_pass()
    first = f"{PREFIX}:execution:Flood:first"
    second = f"{PREFIX}:execution:Flood:second"
    lives = [
        Live(record("a1", parent=first, map_run=f"{MAP_RUN}1"), machine, ExecutionState()),
        Live(record("a2", parent=first, map_run=f"{MAP_RUN}1"), machine, ExecutionState()),
        # Another Map Run of the same parent: the same family.
        Live(record("a3", parent=first, map_run=f"{MAP_RUN}2"), machine, ExecutionState()),
        Live(record("b1", parent=second, map_run=f"{MAP_RUN}3"), machine, ExecutionState()),
        Live(record("b2", parent=second, map_run=f"{MAP_RUN}3"), machine, ExecutionState()),
        # A nested execution (StartExecution.sync) is no Map Run child: its own family.
        Live(record("nested", parent=first), machine, ExecutionState()),
        Live(record("solo"), machine, ExecutionState()),
    ]
    busy: list[int] = []
    spaces: list[int] = []
    queue: ReadyQueue

    def space() -> None:
        spaces.append(queue.qsize())

    queue = ReadyQueue(busy.append, space, max_ready=6)
    for live in lives:
        queue.push(live)
    assert queue.qsize() == len(lives)
    decided: list[str] = []
    sizes: list[int] = []
    done = anyio.Event()

    async def decide(arn: str) -> None:
        decided.append(arn.rpartition(":")[2])
        sizes.append(queue.qsize())
        if len(decided) == len(lives):
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(queue.worker, decide)
        with anyio.fail_after(5):
            await done.wait()
        tg.cancel_scope.cancel()

    assert decided == ["a1", "b1", "nested", "solo", "a2", "b2", "a3"]
    assert sizes == [6, 5, 4, 3, 2, 1, 0]
    assert spaces == [3]  # drained to half of max_ready once
    assert sum(busy) == 0  # each push counted busy, each decision done
