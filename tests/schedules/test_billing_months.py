"""Issue 14, first Done-when: 24 months of the monthly billing schedule on virtual time.

``cron(0 0 1 * ? *)`` in ``Europe/Berlin`` (00:00 on the 1st, local time) targets a small billing
state machine whose Task records what it was given. The test moves virtual time from one fire to
the next over 24 months (Feb 2024 to Jan 2026: four daylight-saving changes), with a restart in
the middle, and checks every execution: its name (the naming rule, ``<schedule>-<hash>-<UTC
time>``), its start time (the UTC instant of local midnight: 23:00Z the day before in winter,
22:00Z in summer), its input and its status.

* SQLite, one runtime per file: a restart whose downtime spans no fire (exactly the 24 on
  time), and one whose downtime spans a fire, which then starts once, late, within the
  ``RetryPolicy``'s ``MaximumEventAgeInSeconds``, under its fire's name. A second runtime on the
  file is refused (``StoreLocked``), so it can never start a fire twice.
* PostgreSQL: two runtimes of one cluster on one database share the virtual clock (one
  ``ManualClock`` object in this process, moved by the test); one of them is restarted in the
  middle (the other takes over its partitions), and a third runner on the second runtime fires
  every schedule whatever the partitions say (two processes racing for each fire). Each of the
  24 fires of each schedule starts exactly one execution.

The expected instants come from Berlin's rule (CEST, UTC+2, from the last Sunday of March to
the last Sunday of October; CET, UTC+1, otherwise: never switching on a 1st), not from the
runtime's time-zone code. What Scheduler documents and this test holds the runtime to: the
expression is evaluated in ``ScheduleExpressionTimezone`` and the schedule "automatically
adjusts for daylight saving time" (User Guide, "Schedule types on EventBridge Scheduler"); a
fire that cannot be invoked is retried until ``MaximumEventAgeInSeconds``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, cast, final
from zoneinfo import ZoneInfo

import anyio
import pytest

from runtime import Runtime
from runtime.api_types import ExecutionDescription
from runtime.engine.clock import ManualClock
from runtime.engine.handlers import TaskContext
from runtime.engine.schedules import ScheduleRunner
from runtime.errors import StoreLocked
from runtime.schedules import Start, execution_name
from runtime.store.base import ScheduleStore
from runtime.store.postgres import PostgresStore, partition_of
from tests.store.postgres_server import PostgresServer, postgres_server

__all__ = ["postgres_server"]  # the session's throwaway server, a fixture

pytestmark = pytest.mark.anyio

ZONE = "Europe/Berlin"
CRON = "cron(0 0 1 * ? *)"
PREFIX = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/"
HOUR = 3600.0
DAY = 24 * HOUR
#: The billing months: February 2024 to January 2026.
MONTHS = [(2024 + (1 + k) // 12, (1 + k) % 12 + 1) for k in range(24)]
#: The restart comes after this many fires (month 11: December 2024).
BEFORE_RESTART = 11
#: The schedule's input (Target.Input, JSON text).
TARGET_INPUT = {"run": "monthly-billing", "currency": "EUR"}

BILLING = {
    "Comment": "Bill the month: the Task sees the execution's name and start time.",
    "StartAt": "Bill",
    "States": {
        "Bill": {
            "Type": "Task",
            "Resource": "Billing",
            "Parameters": {
                "run.$": "$.run",
                "currency.$": "$.currency",
                "execution.$": "$$.Execution.Name",
                "startTime.$": "$$.Execution.StartTime",
            },
            "End": True,
        }
    },
}


def local_midnight(year: int, month: int) -> float:
    """00:00 on the 1st in Berlin, as epoch seconds: UTC+2 from April to October, else UTC+1
    (Berlin changes on the last Sunday of March and of October, never on a 1st)."""
    offset = 2 if 4 <= month <= 10 else 1
    return (datetime(year, month, 1, tzinfo=UTC) - timedelta(hours=offset)).timestamp()


FIRES = [local_midnight(year, month) for year, month in MONTHS]
#: StartDate: the first fire (00:00 on 1 February 2024 in Berlin), which it includes.
START_DATE = datetime.fromtimestamp(FIRES[0], UTC)


def fire_name(schedule: str, fire: float, group: str = "default") -> str:
    """The naming rule, written out: ``<name>-<8 hex of SHA-256(group/name)>-<UTC time>``."""
    digest = hashlib.sha256(f"{group}/{schedule}".encode()).hexdigest()[:8]
    stamp = datetime.fromtimestamp(fire, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{schedule}-{digest}-{stamp}"


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def test_the_expected_instants_are_local_midnight_on_the_first() -> None:
    """The oracle itself: 24 months, the UTC hour switching with daylight saving time."""
    berlin = ZoneInfo(ZONE)
    for (year, month), fire in zip(MONTHS, FIRES, strict=True):
        assert datetime.fromtimestamp(fire, berlin) == datetime(year, month, 1, tzinfo=berlin)
    hours = [datetime.fromtimestamp(fire, UTC).hour for fire in FIRES]
    assert hours[:2] == [23, 23]  # 1 Feb and 1 Mar 2024: CET
    assert hours[2:9] == [22] * 7  # 1 Apr to 1 Oct 2024: CEST
    assert hours[9:14] == [23] * 5  # 1 Nov 2024 to 1 Mar 2025
    assert hours[14:21] == [22] * 7  # 1 Apr to 1 Oct 2025
    assert hours[21:] == [23] * 3  # 1 Nov 2025 to 1 Jan 2026
    assert fire_name("billing", FIRES[0]).endswith("-20240131T230000Z")


@final
class SteppedClock:
    """Virtual time that only the test moves (the Runtime autojumps a ``ManualClock`` only):
    the test looks at the store between two fires, and two runtimes can share it."""

    is_virtual = True

    def __init__(self, start: float) -> None:
        self._clock = ManualClock(start)

    def now(self) -> float:
        return self._clock.now()

    async def sleep_until(self, deadline: float) -> None:
        await self._clock.sleep_until(deadline)

    def advance_to(self, moment: float) -> None:
        self._clock.advance_to(moment)


@final
class Call(NamedTuple):
    """One call of the billing Task's handler."""

    execution: str
    idempotency_key: str
    payload: dict[str, Any]


@final
class Ledger:
    """The billing Task's handler: records every call (execution, attempt key, input)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    async def __call__(self, payload: Any, context: TaskContext) -> dict[str, Any]:
        self.calls.append(Call(context.execution_arn, context.idempotency_key, payload))
        return {"billed": payload["startTime"]}


async def billed(rt: Runtime, arn: str, count: int) -> list[ExecutionDescription]:
    """Wait until the machine has ``count`` executions, all ended; they, oldest first."""
    with anyio.fail_after(10):
        while True:
            found = await rt.list_executions(arn)
            if len(found) >= count and all(d.status != "RUNNING" for d in found):
                break
            await anyio.sleep(0.005)
    return sorted(found, key=lambda d: (d.start_date, d.name))


def check_run(run: ExecutionDescription, schedule: str, fire: float, started: float) -> None:
    """One billing run: its name, start time, input, output and status."""
    assert run.name == fire_name(schedule, fire)
    assert run.start_date == started
    assert run.status == "SUCCEEDED"
    assert json.loads(run.input) == TARGET_INPUT
    output = json.loads(run.output or "null")
    started_text = output["billed"]
    assert datetime.fromisoformat(started_text.replace("Z", "+00:00")).timestamp() == started


# -- SQLite: one runtime per file, restarted after month 11 ---------------------------------


@pytest.mark.parametrize("downtime", ["between-fires", "over-a-fire"])
async def test_24_months_of_billing_on_sqlite_with_a_restart(tmp_path: Path, downtime: str) -> None:
    path = str(tmp_path / "billing.db")
    ledger = Ledger()
    clock = SteppedClock(FIRES[0] - 10 * DAY)
    handlers = {"Billing": ledger}
    retry = {"MaximumEventAgeInSeconds": 12 * 3600, "MaximumRetryAttempts": 3}
    async with Runtime(path, handlers=handlers, clock=clock, request_poll_interval=None) as rt:
        arn = (await rt.create_state_machine("Billing", BILLING)).arn
        await rt.create_schedule(
            "billing",
            CRON,
            {"Arn": arn, "Input": TARGET_INPUT, "RetryPolicy": retry},
            schedule_expression_timezone=ZONE,
            start_date=START_DATE,
        )
        schedule = (await rt.get_schedule("billing")).schedule
        for k in range(BEFORE_RESTART):
            clock.advance_to(FIRES[k])
            assert len(await billed(rt, arn, k + 1)) == k + 1
        with pytest.raises(StoreLocked):  # a second runtime on the file is refused
            async with Runtime(path, clock=clock):
                pass
    # Down: until mid-December (no fire missed), or until 5 hours after 1 January's fire.
    if downtime == "between-fires":
        back, late = FIRES[BEFORE_RESTART - 1] + 14 * DAY, None
    else:
        back, late = FIRES[BEFORE_RESTART] + 5 * HOUR, BEFORE_RESTART
    clock.advance_to(back)
    async with Runtime(path, handlers=handlers, clock=clock, request_poll_interval=None) as rt:
        for k in range(BEFORE_RESTART, len(FIRES)):
            clock.advance_to(max(FIRES[k], back))
            assert len(await billed(rt, arn, k + 1)) == k + 1
        await anyio.sleep(0.05)  # time for a duplicate start, if there were one
        runs = await billed(rt, arn, len(FIRES))
        described = await rt.get_schedule("billing")
    assert len(runs) == 24
    for k, (run, fire) in enumerate(zip(runs, FIRES, strict=True)):
        check_run(run, "billing", fire, back if k == late else fire)
        assert run.name == execution_name(schedule, datetime.fromtimestamp(fire, UTC))
    assert runs[0].name == "billing-94332735-20240131T230000Z"  # SHA-256("default/billing")
    assert runs[2].name.endswith("-20240331T220000Z")  # 1 April 2024, summer time
    # One runtime at a time, closed between fires: each Task called exactly once.
    assert sorted(c.execution for c in ledger.calls) == sorted(r.execution_arn for r in runs)
    for call, run in zip(
        sorted(ledger.calls), sorted(runs, key=lambda r: r.execution_arn), strict=True
    ):
        assert call.payload == {
            **TARGET_INPUT,
            "execution": run.name,
            "startTime": json.loads(run.output or "null")["billed"],
        }
    assert described.last_fire == datetime.fromtimestamp(FIRES[-1], UTC)
    assert described.missed_fires == 0


async def test_the_billing_input_names_its_month_through_a_context_attribute() -> None:
    """Scheduler documents keywords it replaces in the payload it passes to the target
    (User Guide, "Adding context attributes"): ``<aws.scheduler.scheduled-time>`` is the fire's
    time (``2022-03-22T18:59:43Z``), ``<aws.scheduler.schedule-arn>`` the schedule's ARN. A
    billing run would take its month from the first."""
    clock = ManualClock(FIRES[0] - DAY)
    async with Runtime("memory", handlers={"Billing": Ledger()}, clock=clock) as rt:
        arn = (await rt.create_state_machine("Billing", BILLING)).arn
        body = {
            "run": "monthly-billing",
            "currency": "EUR",
            "month": "<aws.scheduler.scheduled-time>",
            "schedule": "<aws.scheduler.schedule-arn>",
        }
        await rt.create_schedule(
            "billing",
            CRON,
            {"Arn": arn, "Input": body},
            schedule_expression_timezone=ZONE,
            start_date=START_DATE,
        )
        await rt.clock.sleep_until(FIRES[0] + HOUR)
        (run,) = await rt.list_executions(arn)
        assert json.loads(run.input)["month"] == "2024-01-31T23:00:00Z"
        assert json.loads(run.input)["schedule"] == PREFIX + "billing"


# -- PostgreSQL: two runtimes of one cluster, one restarted ---------------------------------


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.dsn()


@asynccontextmanager
async def member(dsn: str, clock: SteppedClock, ledger: Ledger) -> AsyncIterator[Runtime]:
    """A runtime of the cluster on the database, on the shared virtual clock."""
    async with (
        PostgresStore.open(dsn, schema="billing_months") as store,
        Runtime(
            store,
            handlers={"Billing": ledger},
            clock=clock,
            lease_ttl=1.0,
            request_poll_interval=0.2,
        ) as rt,
    ):
        yield rt


@final
class EveryFire:
    """A schedule host that fires every schedule (no partition rule), starting through ``rt``:
    a second process that believes it holds every partition."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def fires_here(self, schedule_arn: str) -> bool:
        return True

    async def start_fire(self, fire: Start) -> None:
        await self.rt.start_fire(fire)


def held(rt: Runtime) -> dict[int, int]:
    assert rt.cluster is not None
    return rt.cluster.member.held


def runner(rt: Runtime) -> ScheduleRunner:
    found = rt._schedule_runner
    assert found is not None
    return found


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(20):
        while not condition():  # noqa: ASYNC110 - polling the cluster members' leases
            await anyio.sleep(0.05)


async def bill_months(rt: Runtime, clock: SteppedClock, arn: str, months: range) -> None:
    """Move time to each month's fire; both schedules' executions of it must have ended."""
    for k in months:
        clock.advance_to(FIRES[k])
        assert len(await billed(rt, arn, 2 * (k + 1))) == 2 * (k + 1)


async def test_24_months_of_billing_on_two_postgres_runtimes(postgres_dsn: str) -> None:
    began = time.monotonic()
    ledger = Ledger()
    clock = SteppedClock(FIRES[0] - 10 * DAY)
    async with member(postgres_dsn, clock, ledger) as b:
        arn = (await b.create_state_machine("Billing", BILLING)).arn
        # A second process on b's side firing every schedule, whatever the partitions say.
        racer = ScheduleRunner(
            cast("ScheduleStore", b.store),
            EveryFire(b),
            clock,
            b.engine.idle.add,
            poll_seconds=0.05,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(racer.run)
            async with member(postgres_dsn, clock, ledger) as a:
                await until(lambda: bool(held(a)) and bool(held(b)))
                # One schedule on a partition a holds, one on a partition b holds.
                candidates = [f"billing-{i}" for i in range(1000)]
                names = [
                    next(n for n in candidates if partition_of(PREFIX + n) in held(a)),
                    next(n for n in candidates if partition_of(PREFIX + n) in held(b)),
                ]
                for name in names:
                    await b.create_schedule(
                        name,
                        CRON,
                        {"Arn": arn, "Input": TARGET_INPUT},
                        schedule_expression_timezone=ZONE,
                        start_date=START_DATE,
                    )
                racer.changed()
                await bill_months(b, clock, arn, range(BEFORE_RESTART))
                started_before = runner(a).started
            # a is down over 1 January's fire: b takes a's partitions over and fires it.
            await until(lambda: all(partition_of(PREFIX + n) in held(b) for n in names))
            await bill_months(b, clock, arn, range(BEFORE_RESTART, BEFORE_RESTART + 1))
            async with member(postgres_dsn, clock, ledger) as a:
                await bill_months(a, clock, arn, range(BEFORE_RESTART + 1, len(FIRES)))
                await anyio.sleep(0.3)  # time for a duplicate start, if there were one
                runs = await billed(a, arn, 2 * len(FIRES))
                cluster_started = started_before + runner(a).started + runner(b).started
                lost = runner(a).lost + runner(b).lost + racer.lost
            tg.cancel_scope.cancel()
    assert len(runs) == 48
    for name in names:
        of_schedule = [r for r in runs if r.name.startswith(f"{name}-")]
        assert len(of_schedule) == 24
        for run, fire in zip(of_schedule, FIRES, strict=True):
            check_run(run, name, fire, fire)
    # Each execution's Task ran; a Task call is at-least-once (a partition handed over while a
    # call is in flight delivers it again), but only as a re-delivery of the same attempt.
    assert {call.execution for call in ledger.calls} == {r.execution_arn for r in runs}
    assert len({(call.execution, call.idempotency_key) for call in ledger.calls}) == 48
    # Every fire was started (or found started) and marked by exactly one runner.
    assert cluster_started + racer.started == 48
    print(  # figures for the report (pytest -s)
        f"postgres: {time.monotonic() - began:.2f}s, cluster started {cluster_started}, "
        f"racer started {racer.started}, marks lost {lost}, "
        f"Task calls redelivered {len(ledger.calls) - 48}"
    )
