"""A Map Run child whose partition moves while it is started (a takeover under way) is started
again, which asks the new owner: the iteration does not fail with ``PartitionLost`` (issue 12:
the chaos run at a 2 s lease saw 47-310 iterations fail so)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from runtime.core.effects import MapRunChild, RunTask
from runtime.engine.maprun import PARTITION_LOST_ATTEMPTS, FifoBudget, StartSlots, run_map_child
from runtime.errors import PartitionLost

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Host:
    """The two calls of a runtime a start needs; ``lost`` starts raise PartitionLost first."""

    def __init__(self, lost: int) -> None:
        self.lost = lost
        self.starts = 0

    async def map_run_machine(self, parent: str, spec: MapRunChild) -> str:
        return "arn:aws:states:us-east-1:123456789012:stateMachine:parent/Map"

    async def start_map_child(self, *args: Any, redrive: bool = False) -> str:
        self.starts += 1
        if self.starts <= self.lost:
            raise PartitionLost("partitions 7 are no longer held by this member")
        return "arn:aws:states:us-east-1:123456789012:execution:parent/Map:child"

    def when_child_ends(self, arn: str, then: Callable[[Any], None]) -> bool:
        then(SimpleNamespace(status="SUCCEEDED", output='{"ok": true}', error=None, cause=None))
        return True


def task() -> RunTask:
    spec = MapRunChild(
        map_run_arn="arn:aws:states:us-east-1:123456789012:mapRun:parent/Map:id",
        label="Map",
        index=3,
        input={"item": 3},
        execution_type="STANDARD",
        processor=None,
    )
    return RunTask(
        frame="f", scheduled_id=1, state_name="Map", resource="", handler_name="",
        input=spec, attempt=1,
    )  # fmt: skip


async def test_a_start_that_lost_its_partition_is_tried_again() -> None:
    host = Host(lost=2)
    reported: list[Any] = []
    done = await run_map_child(
        task(),
        host,
        parent="p",
        starts=StartSlots(1),
        budget=FifoBudget(None),
        report=reported.append,  # type: ignore[arg-type]
    )
    assert done is None  # its end reports the outcome
    assert host.starts == 3
    assert reported == [("succeeded", {"ok": True}, None, None)]


async def test_a_partition_that_keeps_moving_fails_the_iteration_at_last() -> None:
    host = Host(lost=PARTITION_LOST_ATTEMPTS)
    done = await run_map_child(
        task(),
        host,
        parent="p",
        starts=StartSlots(1),
        budget=FifoBudget(None),
        report=lambda _: None,  # type: ignore[arg-type]
    )
    assert host.starts == PARTITION_LOST_ATTEMPTS
    assert done is not None
    assert (done[0], done[2]) == ("failed", "States.Runtime")
