"""JSON integers MessagePack cannot hold (issue 11): a Map's items and an iteration's input are
kept as JSON values in the event details, and an item of 1e20 written as an integer made every
commit of its execution fail on SQLite, which then hung (the long fuzz, seed 10000755). Such
integers are stored as a MessagePack extension and read back exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from runtime import Runtime
from runtime.core.events import HistoryEvent, decode_event, encode_event, encode_events
from runtime.store.base import decode_events

pytestmark = pytest.mark.anyio

BIG = [10**20, -(10**30), 2**64, -(2**63) - 1, 2**64 - 1, -(2**63), True, 1.5]


def test_an_event_with_big_integers_round_trips() -> None:
    event = HistoryEvent(
        id=3,
        type="MapStateStarted",
        timestamp=1.0,
        details={"statemillItems": [BIG, {"n": 10**40}], "length": 2},
    )
    assert decode_event(encode_event(event)) == event
    both = encode_events([event, event])
    assert decode_events([both], count=2) == [event, event]


MAP = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            "End": True,
        }
    },
}


async def test_a_map_over_big_integers_runs_on_sqlite(tmp_path: Path) -> None:
    items: list[Any] = [10**20, {"n": -(10**30)}]
    with anyio.fail_after(60):  # it hung before
        async with Runtime(tmp_path / "big.db", virtual_time=True) as rt:
            machine = await rt.create_state_machine("big", MAP)
            started = await rt.start_execution(machine.arn, {"items": items})
            done = await rt.wait_for_execution(started.execution_arn)
            history = await rt.get_execution_history(started.execution_arn)
    assert done.status == "SUCCEEDED"
    assert done.output == '[100000000000000000000,{"n":-1000000000000000000000000000000}]'
    assert history[-1].type == "ExecutionSucceeded"
