"""A distributed Map's own state holds at most the Map Run's input budget (issue 11).

The reproducer (fuzz, map family, seed 10002713): a Map Run of 40,000 children whose
ItemSelector copies the 230 KB input into each, MaxConcurrency 10,000, on SQLite. The shell's
per-Map-Run budget (``ExecutionLimits.max_map_run_input_bytes``) let a few dozen children run,
yet the process grew by about 10 MB/s: the core had started every iteration MaxConcurrency
allowed, and each iteration's frame (``Phases.CHILD_RUN``) kept its 230 KB input in the parent
execution's state until its child ended, 2,080 of them (454 MiB) after 65 s, towards 10,000.

Measured here on the parent's log as the store keeps it: the iterations in flight at every
point (``MapIterationStarted`` not yet ended) and the JSON bytes of their inputs, which the
parent's state holds. Both stores run it: the rule is the core's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from runtime import ExecutionLimits, Runtime, TaskContext
from runtime.items import LocalObjectStore
from runtime.store.base import EventStore
from runtime.store.memory import MemoryStore
from runtime.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio

JSON = Any

_ENDED = ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted")
DISTRIBUTED = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
#: Each child's input is about 20 KB; the budget lets three run at once.
BLOB = "x" * 20_000
BUDGET = 50_000


def copying_map(**fields: JSON) -> dict[str, JSON]:
    """A distributed Map whose every child gets a copy of the input's ``blob``."""
    return {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemSelector": {"n.$": "$$.Map.Item.Value", "blob.$": "$.blob"},
                "MaxConcurrency": 1000,
                "ItemProcessor": {
                    "ProcessorConfig": DISTRIBUTED,
                    "StartAt": "Work",
                    "States": {"Work": {"Type": "Task", "Resource": "Work", "End": True}},
                },
                "ResultSelector": {"count.$": "States.ArrayLength($)"},
                "End": True,
                **fields,
            }
        },
    }


async def work(payload: JSON, context: TaskContext) -> JSON:
    await context.sleep(1)  # virtual time: the parent starts others meanwhile if it may
    return payload["n"]


@asynccontextmanager
async def opened(kind: str, path: Path) -> AsyncIterator[EventStore]:
    if kind == "memory":
        yield MemoryStore()
        return
    async with SqliteStore.open(path) as store:
        yield store


def in_flight(events: list[Any]) -> tuple[int, int]:
    """The most iterations in flight in the parent's log, and the most JSON bytes of their
    inputs, at any point."""
    inputs: dict[int, int] = {}
    most = most_bytes = 0
    for event in events:
        if event.type == "MapIterationStarted":
            data = event.details["statemillInput"]
            inputs[event.details["index"]] = len(msgspec.json.encode(data))
        elif event.type in _ENDED:
            inputs.pop(event.details["index"], None)
        most = max(most, len(inputs))
        most_bytes = max(most_bytes, sum(inputs.values()))
    return most, most_bytes


async def run(kind: str, tmp_path: Path, definition: JSON, data: JSON) -> tuple[JSON, int, int]:
    async with opened(kind, tmp_path / "store.db") as store:
        rt = Runtime(
            store,
            handlers={"Work": work},
            virtual_time=True,
            limits=ExecutionLimits(max_map_run_input_bytes=BUDGET),
            object_store=LocalObjectStore(tmp_path),
        )
        async with rt:
            machine = await rt.create_state_machine("Copies", definition)
            started = await rt.start_execution(machine.arn, data)
            done = await rt.wait_for_execution(started.execution_arn, timeout=60)
            assert done.status == "SUCCEEDED", (done.error, done.cause)
        most, most_bytes = in_flight(await store.read(started.execution_arn))
        return done.output_value, most, most_bytes


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_the_parent_starts_no_more_iterations_than_the_input_budget_holds(
    kind: str, tmp_path: Path
) -> None:
    output, most, most_bytes = await run(
        kind, tmp_path, copying_map(ItemsPath="$.items"), {"items": list(range(30)), "blob": BLOB}
    )
    assert output == {"count": 30}
    # Before the fix: all 30 in flight (MaxConcurrency 1000), 600 KB of inputs in the state.
    assert most == 3
    assert most_bytes < BUDGET + 21_000  # the last one started below the bound


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_items_read_by_an_item_reader_start_within_the_input_budget(
    kind: str, tmp_path: Path
) -> None:
    (tmp_path / "bucket").mkdir()
    (tmp_path / "bucket" / "items.json").write_text(json.dumps(list(range(30))))
    reader = {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "bucket", "Key": "items.json"},
    }
    output, most, most_bytes = await run(
        kind, tmp_path, copying_map(ItemReader=reader), {"blob": BLOB}
    )
    assert output == {"count": 30}
    assert most == 3
    assert most_bytes < BUDGET + 21_000
