"""Schedules fire (issue 14): the Runtime's verbs and its firing loop on real stores, on
virtual time. Each fire starts one execution named after the schedule and the fire time, at
the fire's time (cron in a time zone across daylight-saving changes, rate, at, flexible
windows, end dates); a restart after downtime applies the RetryPolicy's maximum event age; a
fire started before its mark moved (a crash) or by a second runner is never started twice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import cast, final

import anyio
import pytest

from runtime import Runtime
from runtime.engine.clock import ManualClock
from runtime.engine.schedules import ScheduleRunner
from runtime.schedules import (
    ConflictException,
    ResourceNotFoundException,
    Schedule,
    ValidationException,
    execution_name,
)
from runtime.store.base import ScheduleStore

pytestmark = pytest.mark.anyio

PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
HOUR = 3600.0
DAY = 24 * HOUR


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """Epoch seconds of a UTC time."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


async def machine(rt: Runtime, name: str = "Billing") -> str:
    return (await rt.create_state_machine(name, PASS)).arn


async def until(rt: Runtime, moment: float) -> None:
    """Let virtual time run to ``moment``."""
    await rt.clock.sleep_until(moment)


async def started(rt: Runtime, arn: str) -> list[tuple[str, float]]:
    """(name, start date) of the machine's executions, oldest first."""
    found = await rt.list_executions(arn)
    return sorted(((d.name, d.start_date) for d in found), key=lambda item: (item[1], item[0]))


def named(schedule: Schedule, *fires: float) -> list[tuple[str, float]]:
    return [(execution_name(schedule, datetime.fromtimestamp(f, UTC)), f) for f in fires]


async def test_rate_fires_every_hour_of_a_virtual_day() -> None:
    async with Runtime("memory", virtual_time=True) as rt:
        arn = await machine(rt)
        t0 = rt.clock.now()
        target = {"Arn": arn, "Input": '{"run": "hourly"}'}
        schedule_arn = await rt.create_schedule("hourly", "rate(1 hour)", target)
        assert schedule_arn == "arn:aws:scheduler:us-east-1:123456789012:schedule/default/hourly"
        await until(rt, t0 + DAY - 1)
        schedule = (await rt.get_schedule("hourly")).schedule
        runs = await started(rt, arn)
        assert runs == named(schedule, *(t0 + k * HOUR for k in range(24)))
        first = await rt.describe_execution(
            f"arn:aws:states:us-east-1:123456789012:execution:Billing:{runs[0][0]}"
        )
        assert json.loads(first.input) == {"run": "hourly"}
        described = await rt.get_schedule("hourly")
        assert described.last_fire == datetime.fromtimestamp(t0 + 23 * HOUR, UTC)
        assert described.missed_fires == 0


async def test_cron_in_a_time_zone_fires_at_local_times_across_dst() -> None:
    # New York springs forward on 2024-03-10 (02:00 -> 03:00) and falls back on 2024-11-03.
    async with Runtime("memory", clock=ManualClock(at(2024, 3, 8))) as rt:
        arn = await machine(rt)
        zone = "America/New_York"
        for name, cron in (("nine", "cron(0 9 * * ? *)"), ("half-two", "cron(30 2 * * ? *)")):
            await rt.create_schedule(name, cron, {"Arn": arn}, schedule_expression_timezone=zone)
        await until(rt, at(2024, 3, 12, 23))
        nine = (await rt.get_schedule("nine")).schedule
        half_two = (await rt.get_schedule("half-two")).schedule
        runs = await started(rt, arn)
        # 09:00 EST is 14:00Z, 09:00 EDT 13:00Z; 02:30 does not exist on March 10: skipped.
        expected = named(
            nine,
            at(2024, 3, 8, 14),
            at(2024, 3, 9, 14),
            at(2024, 3, 10, 13),
            at(2024, 3, 11, 13),
            at(2024, 3, 12, 13),
        ) + named(
            half_two,
            at(2024, 3, 8, 7, 30),
            at(2024, 3, 9, 7, 30),
            at(2024, 3, 11, 6, 30),
            at(2024, 3, 12, 6, 30),
        )
        assert runs == sorted(expected, key=lambda item: item[1])


async def test_cron_fires_once_in_the_repeated_hour_of_fall_back() -> None:
    async with Runtime("memory", clock=ManualClock(at(2024, 11, 2, 12))) as rt:
        arn = await machine(rt)
        await rt.create_schedule(
            "half-one",
            "cron(30 1 * * ? *)",
            {"Arn": arn},
            schedule_expression_timezone="America/New_York",
        )
        await until(rt, at(2024, 11, 4, 12))
        schedule = (await rt.get_schedule("half-one")).schedule
        # 01:30 EDT (05:30Z) on November 3, not again at 01:30 EST; then 01:30 EST (06:30Z).
        assert await started(rt, arn) == named(
            schedule, at(2024, 11, 3, 5, 30), at(2024, 11, 4, 6, 30)
        )


async def test_at_fires_once_and_delete_after_completion_removes_it() -> None:
    async with Runtime("memory", clock=ManualClock(at(2024, 3, 1))) as rt:
        arn = await machine(rt)
        paris = "Europe/Paris"
        await rt.create_schedule(
            "once", "at(2024-03-09T12:00:00)", {"Arn": arn}, schedule_expression_timezone=paris
        )
        await rt.create_schedule(
            "once-deleted",
            "at(2024-03-10T12:00:00)",
            {"Arn": arn},
            action_after_completion="DELETE",
            schedule_expression_timezone=paris,
        )
        await until(rt, at(2024, 6, 1))
        once = (await rt.get_schedule("once")).schedule
        runs = await started(rt, arn)
        assert runs[0] == named(once, at(2024, 3, 9, 11))[0]  # 12:00 CET is 11:00Z
        assert [start for _, start in runs] == [at(2024, 3, 9, 11), at(2024, 3, 10, 11)]
        assert (await rt.get_schedule("once")).last_fire == datetime(2024, 3, 9, 11, tzinfo=UTC)
        with pytest.raises(ResourceNotFoundException, match="Schedule once-deleted does not"):
            await rt.get_schedule("once-deleted")


async def test_end_date_and_start_date_bound_the_fires() -> None:
    async with Runtime("memory", virtual_time=True) as rt:
        arn = await machine(rt)
        t0 = rt.clock.now()
        await rt.create_schedule(
            "bounded",
            "rate(1 hour)",
            {"Arn": arn},
            start_date=t0 + 2 * HOUR,
            end_date=t0 + 5 * HOUR,
            action_after_completion="DELETE",
        )
        await until(rt, t0 + DAY)
        assert [start for _, start in await started(rt, arn)] == [
            t0 + 2 * HOUR,
            t0 + 3 * HOUR,
            t0 + 4 * HOUR,
        ]
        assert await rt.list_schedules() == []  # deleted after its last fire


async def test_flexible_time_window_starts_within_the_window_under_the_fire_name() -> None:
    async with Runtime("memory", virtual_time=True) as rt:
        arn = await machine(rt)
        t0 = rt.clock.now()
        window = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
        await rt.create_schedule("flex", "rate(1 hour)", {"Arn": arn}, flexible_time_window=window)
        await until(rt, t0 + 6 * HOUR - 1)
        schedule = (await rt.get_schedule("flex")).schedule
        runs = await started(rt, arn)
        fires = [t0 + k * HOUR for k in range(6)]
        assert [name for name, _ in runs] == [name for name, _ in named(schedule, *fires)]
        offsets = [start - fire for (_, start), fire in zip(runs, fires, strict=True)]
        assert all(0 <= offset < 15 * 60 for offset in offsets)
        assert any(offset > 0 for offset in offsets)


@final
class SteppedClock:
    """Virtual time that only the test moves (no autojump: the Runtime only autojumps a
    ``ManualClock``), so that a test can look at the store between two fires."""

    is_virtual = True

    def __init__(self, start: float) -> None:
        self._clock = ManualClock(start)

    def now(self) -> float:
        return self._clock.now()

    async def sleep_until(self, deadline: float) -> None:
        await self._clock.sleep_until(deadline)

    def advance_to(self, moment: float) -> None:
        self._clock.advance_to(moment)


async def step(rt: Runtime, clock: SteppedClock, moment: float, arn: str, count: int) -> None:
    """Move time to ``moment`` and wait until the machine has ``count`` executions."""
    clock.advance_to(moment)
    with anyio.fail_after(10):
        while len(await rt.list_executions(arn)) < count:  # noqa: ASYNC110 - the store has no event
            await anyio.sleep(0.005)


async def test_restart_after_downtime_starts_fires_within_the_maximum_event_age(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "store.db")
    t0 = at(2024, 5, 1)
    clock = SteppedClock(t0)
    async with Runtime(path, clock=clock, request_poll_interval=None) as rt:
        arn = await machine(rt)
        retry = {"MaximumEventAgeInSeconds": 7200, "MaximumRetryAttempts": 3}
        await rt.create_schedule("hourly", "rate(1 hour)", {"Arn": arn, "RetryPolicy": retry})
        await step(rt, clock, t0, arn, 1)
        await step(rt, clock, t0 + HOUR, arn, 2)
        await step(rt, clock, t0 + 2 * HOUR, arn, 3)
        await step(rt, clock, t0 + 2.5 * HOUR, arn, 3)
    # Down from 02:30 to 10:30: the fires of 03:00 to 08:00 are more than 2 hours old.
    clock = SteppedClock(t0 + 10.5 * HOUR)
    async with Runtime(path, clock=clock, request_poll_interval=None) as rt:
        await step(rt, clock, t0 + 10.5 * HOUR, arn, 5)
        await step(rt, clock, t0 + 11 * HOUR, arn, 6)  # and 11:00 fires on time
        schedule = (await rt.get_schedule("hourly")).schedule
        runs = await started(rt, arn)
        fires = [t0 + k * HOUR for k in (0, 1, 2, 9, 10, 11)]
        assert [name for name, _ in runs] == [name for name, _ in named(schedule, *fires)]
        assert [start for _, start in runs] == [
            *fires[:3],
            t0 + 10.5 * HOUR,  # 09:00 and 10:00, late
            t0 + 10.5 * HOUR,
            t0 + 11 * HOUR,
        ]
        described = await rt.get_schedule("hourly")
        assert described.missed_fires == 6
        assert described.last_fire == datetime.fromtimestamp(t0 + 11 * HOUR, UTC)
    # A third opening with no downtime since handles only the fires to come (none again).
    clock = SteppedClock(t0 + 11.5 * HOUR)
    async with Runtime(path, clock=clock, request_poll_interval=None) as rt:
        await anyio.sleep(0.05)
        runner = rt._schedule_runner
        assert runner is not None
        assert len(await started(rt, arn)) == 6
        await step(rt, clock, t0 + 12 * HOUR, arn, 7)
        with anyio.fail_after(10):
            while runner.started < 1:  # noqa: ASYNC110 - the mark moves just after the start
                await anyio.sleep(0.005)
        assert (runner.started, runner.missed, runner.lost) == (1, 0, 0)


async def test_a_fire_started_before_its_mark_moved_is_not_started_again() -> None:
    # A crash between StartExecution and the mark: the execution of the fire exists, the mark
    # has not moved. The runner finds ExecutionAlreadyExists and only moves the mark.
    async with Runtime("memory", virtual_time=True) as rt:
        arn = await machine(rt)
        t0 = rt.clock.now()
        await rt.create_schedule("hourly", "rate(1 hour)", {"Arn": arn}, state="DISABLED")
        schedule = (await rt.get_schedule("hourly")).schedule
        first = named(schedule, t0)[0][0]
        done = await rt.start_execution(arn, {}, name=first)
        await rt.wait_for_execution(done.execution_arn)
        await rt.update_schedule("hourly", "rate(1 hour)", {"Arn": arn})  # ENABLED
        await until(rt, t0 + 1.5 * HOUR)
        assert await started(rt, arn) == named(schedule, t0, t0 + HOUR)
        runner = rt._schedule_runner
        assert runner is not None
        assert (runner.started, runner.missed) == (2, 0)


async def test_two_runners_on_one_store_start_each_fire_once() -> None:
    async with Runtime("memory", virtual_time=True) as rt:
        arn = await machine(rt)
        t0 = rt.clock.now()
        second = ScheduleRunner(
            cast("ScheduleStore", rt.store),
            rt,
            rt.clock,
            rt.engine.idle.add,
            poll_seconds=None,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(second.run)
            await rt.create_schedule("hourly", "rate(1 hour)", {"Arn": arn})
            second.changed()
            await until(rt, t0 + DAY - 1)
            tg.cancel_scope.cancel()
        first = rt._schedule_runner
        assert first is not None
        schedule = (await rt.get_schedule("hourly")).schedule
        assert await started(rt, arn) == named(schedule, *(t0 + k * HOUR for k in range(24)))
        assert first.started + second.started == 24
        assert first.lost + second.lost > 0  # they did race for the fires


async def test_a_fire_that_cannot_start_is_retried_then_recorded_missed() -> None:
    async with Runtime("memory", virtual_time=True) as rt:
        t0 = rt.clock.now()
        arn = "arn:aws:states:us-east-1:123456789012:stateMachine:Later"
        retry = {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 185}
        await rt.create_schedule("hourly", "rate(1 hour)", {"Arn": arn, "RetryPolicy": retry})
        await until(rt, t0 + 1.5 * HOUR)  # the machine does not exist: two fires missed
        assert (await rt.get_schedule("hourly")).missed_fires == 2
        await machine(rt, "Later")
        await until(rt, t0 + 2.5 * HOUR)
        assert [start for _, start in await started(rt, arn)] == [t0 + 2 * HOUR]
        described = await rt.get_schedule("hourly")
        assert described.missed_fires == 2
        assert described.last_fire == datetime.fromtimestamp(t0 + 2 * HOUR, UTC)


async def test_retry_attempts_bound_the_tries_of_one_fire() -> None:
    async with Runtime("memory", virtual_time=True) as rt:
        t0 = rt.clock.now()
        arn = "arn:aws:states:us-east-1:123456789012:stateMachine:Missing"
        retry = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 2}
        await rt.create_schedule("hourly", "rate(1 hour)", {"Arn": arn, "RetryPolicy": retry})
        await until(rt, t0 + 30)  # tried at 0 s, 1 s and 3 s: the first try and 2 retries
        assert (await rt.get_schedule("hourly")).missed_fires == 1
        assert (await rt.get_schedule("hourly")).last_fire == datetime.fromtimestamp(t0, UTC)


async def test_verbs_validate_and_refuse_in_schedulers_words() -> None:
    async with Runtime("memory", virtual_time=True) as rt:
        arn = await machine(rt)
        with pytest.raises(
            ValidationException, match=r"^Invalid Schedule Expression rate\(1 days\)\.$"
        ):
            await rt.create_schedule("bad", "rate(1 days)", {"Arn": arn})
        with pytest.raises(ValidationException, match="cron"):
            await rt.create_schedule("bad", "cron(0 9 * * * *)", {"Arn": arn})
        with pytest.raises(ValidationException, match="state machine ARN"):
            await rt.create_schedule("bad", "rate(1 hour)", {"Arn": "arn:aws:sqs:x"})
        await rt.create_schedule("daily", "rate(1 day)", {"Arn": arn}, state="DISABLED")
        with pytest.raises(ConflictException, match=r"^Schedule daily already exists\.$"):
            await rt.create_schedule("daily", "rate(1 day)", {"Arn": arn})
        await rt.create_schedule("daily", "rate(1 day)", {"Arn": arn}, group_name="finance")
        assert [(d.group_name, d.name) for d in await rt.list_schedules()] == [
            ("default", "daily"),
            ("finance", "daily"),
        ]
        assert [d.group_name for d in await rt.list_schedules(state="ENABLED")] == ["finance"]
        assert await rt.list_schedules(name_prefix="x") == []
        aws = (await rt.get_schedule("daily")).to_aws()
        assert aws["Arn"].endswith(":schedule/default/daily")
        assert aws["State"] == "DISABLED"
        assert aws["ScheduleExpression"] == "rate(1 day)"
        await rt.delete_schedule("daily")
        with pytest.raises(ResourceNotFoundException, match=r"^Schedule daily does not exist\.$"):
            await rt.delete_schedule("daily")
        with pytest.raises(ResourceNotFoundException):
            await rt.update_schedule("daily", "rate(1 day)", {"Arn": arn})


async def test_deleted_or_disabled_schedules_stop_firing_and_idle_time_stands_still() -> None:
    async with Runtime("memory", virtual_time=True) as rt:
        arn = await machine(rt)
        t0 = rt.clock.now()
        await rt.create_schedule("a", "rate(1 hour)", {"Arn": arn})
        await rt.create_schedule("b", "rate(1 hour)", {"Arn": arn})
        await until(rt, t0 + 1.5 * HOUR)
        await rt.delete_schedule("a")
        await rt.update_schedule("b", "rate(1 hour)", {"Arn": arn}, state="DISABLED")
        await until(rt, t0 + 5 * HOUR)
        assert len(await started(rt, arn)) == 4  # a and b at 0 h and 1 h
        # Nothing left to fire: the runner sets no deadline, so virtual time does not move.
        now = rt.clock.now()
        await anyio.sleep(0.05)
        assert rt.clock.now() == now
