"""Schedules in a cluster on PostgreSQL (issue 14): each schedule fires on one member only (the
one holding the schedule's partition), and two runners racing on one database still start
each fire once (the fire mark's compare-and-set, the execution name derived from the fire)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import cast, final

import anyio
import pytest

from runtime import Runtime
from runtime.engine.schedules import ScheduleRunner
from runtime.schedules import Start, execution_name
from runtime.store.base import ScheduleStore
from runtime.store.postgres import PARTITIONS, PostgresStore, partition_of

pytestmark = pytest.mark.anyio

PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
PREFIX = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/"


@asynccontextmanager
async def member(dsn: str, schema: str) -> AsyncIterator[Runtime]:
    async with (
        PostgresStore.open(dsn, schema=schema) as store,
        Runtime(store, lease_ttl=1.0, request_poll_interval=0.2) as rt,
    ):
        yield rt


def held(rt: Runtime) -> dict[int, int]:
    assert rt.cluster is not None
    return rt.cluster.member.held


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():  # noqa: ASYNC110 - polling another member's state
            await anyio.sleep(0.05)


def names_held_by(rt: Runtime, prefix: str, count: int) -> list[str]:
    """``count`` schedule names whose partition ``rt`` holds."""
    mine = held(rt)
    found = [f"{prefix}{i}" for i in range(10_000) if partition_of(PREFIX + f"{prefix}{i}") in mine]
    return found[:count]


def just_now() -> str:
    """An ``at()`` expression for a second ago (UTC): due at once, within its event age."""
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    return f"at({moment.strftime('%Y-%m-%dT%H:%M:%S')})"


def runner(rt: Runtime) -> ScheduleRunner:
    found = rt._schedule_runner
    assert found is not None
    return found


async def executions(rt: Runtime, arn: str) -> list[str]:
    return sorted(d.name for d in await rt.list_executions(arn))


async def test_each_schedule_fires_on_the_member_holding_its_partition(
    postgres_dsn: str, postgres_schema: str
) -> None:
    async with member(postgres_dsn, postgres_schema) as a:
        arn = (await a.create_state_machine("Billing", PASS)).arn
        async with member(postgres_dsn, postgres_schema) as b:
            await until(lambda: len(held(a)) == len(held(b)) == PARTITIONS // 2)
            expression = just_now()
            ours = names_held_by(a, "on-a-", 4) + names_held_by(b, "on-b-", 4)
            for name in ours:  # all created on a: b finds its own in the store
                await a.create_schedule(name, expression, {"Arn": arn})
            await until(lambda: runner(a).started + runner(b).started == len(ours))
            wanted = []
            for name in ours:
                schedule = (await a.get_schedule(name)).schedule
                fire = datetime.strptime(expression, "at(%Y-%m-%dT%H:%M:%S)").replace(tzinfo=UTC)
                wanted.append(execution_name(schedule, fire))
            assert await executions(a, arn) == sorted(wanted)
            # Each member fired the schedules of its partitions, and never raced the other.
            assert (runner(a).started, runner(b).started) == (4, 4)
            assert (runner(a).lost, runner(b).lost) == (0, 0)
            assert (runner(a).missed, runner(b).missed) == (0, 0)


@final
class EveryFire:
    """A host that fires every schedule (no partition rule), starting through ``rt``."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def fires_here(self, schedule_arn: str) -> bool:
        return True

    async def start_fire(self, fire: Start) -> None:
        await self.rt.start_fire(fire)


async def test_two_runners_racing_on_one_database_start_each_fire_once(
    postgres_dsn: str, postgres_schema: str
) -> None:
    async with member(postgres_dsn, postgres_schema) as a:
        arn = (await a.create_state_machine("Billing", PASS)).arn
        store = cast("ScheduleStore", a.store)
        second = ScheduleRunner(store, EveryFire(a), a.clock, a.engine.idle.add, poll_seconds=0.01)
        expression = just_now()
        names = [f"race-{i}" for i in range(12)]
        async with anyio.create_task_group() as tg:
            tg.start_soon(second.run)
            for name in names:
                await a.create_schedule(name, expression, {"Arn": arn})
                second.changed()
            await until(lambda: runner(a).started + second.started >= len(names))
            await anyio.sleep(0.3)  # time for a second start of any fire, if there were one
            tg.cancel_scope.cancel()
        assert runner(a).started + second.started == len(names)
        assert len(await executions(a, arn)) == len(names)
        for name in names:
            assert (await a.get_schedule(name)).last_fire is not None
