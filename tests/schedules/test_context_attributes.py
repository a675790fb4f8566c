"""Scheduler's context attributes in the input of a fire (issue 14).

EventBridge Scheduler replaces four keywords in the payload it passes to the target (User Guide,
"Adding context attributes in EventBridge Scheduler"): ``<aws.scheduler.schedule-arn>`` (the
schedule's ARN), ``<aws.scheduler.scheduled-time>`` ("the time you specified for the schedule to
invoke its target", e.g. ``2022-03-22T18:59:43Z``), ``<aws.scheduler.execution-id>`` ("the unique
ID that EventBridge Scheduler assigns for each attempted invocation") and
``<aws.scheduler.attempt-number>`` ("a counter that identifies the attempt number for the
current invocation", e.g. ``1``).

Here the execution id is derived from (schedule, fire, attempt), not drawn: the same attempt of
a fire, started again after a crash, has the same input, so its StartExecution is answered
idempotently instead of starting a second execution.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, final
from zoneinfo import ZoneInfo

import anyio
import pytest

from runtime import Runtime, TaskContext
from runtime.engine.clock import ManualClock
from runtime.errors import ExecutionAlreadyExists
from runtime.schedules import (
    Schedule,
    Start,
    Target,
    fire_fate,
    invocation_id,
    with_context_attributes,
)
from runtime.schedules.model import scheduled_time_text

JSON = Any

ARN = "arn:aws:scheduler:us-east-1:123456789012:schedule/default/billing"
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Billing"
#: 00:00 on 1 March 2024 in Berlin (CET, UTC+1).
FIRE = datetime(2024, 2, 29, 23, 0, tzinfo=UTC)
BODY = {
    "schedule": "<aws.scheduler.schedule-arn>",
    "month": "<aws.scheduler.scheduled-time>",
    "invocation": "<aws.scheduler.execution-id>",
    "attempt": "<aws.scheduler.attempt-number>",
}
DEFINITION = {
    "StartAt": "Bill",
    "States": {"Bill": {"Type": "Task", "Resource": "Bill", "End": True}},
}


def start(body: JSON = BODY, fire: datetime = FIRE) -> Start:
    return Start(
        fire_time=fire,
        due_time=fire,
        name="billing-20240229T230000Z",
        state_machine_arn=MACHINE,
        input=json.dumps(body),
    )


# -- the pure rule --------------------------------------------------------------------------


def test_each_keyword_is_replaced_with_its_value() -> None:
    fire = with_context_attributes(start(), schedule_arn=ARN, attempt_number=1)

    assert json.loads(fire.input) == {
        "schedule": ARN,
        "month": "2024-02-29T23:00:00Z",
        "invocation": invocation_id(ARN, FIRE, 1),
        "attempt": "1",
    }
    assert fire.name == start().name  # only the input changes


def test_the_scheduled_time_is_utc_to_the_second_whatever_the_fire_offset() -> None:
    berlin = FIRE.astimezone(ZoneInfo("Europe/Berlin"))
    assert berlin.hour == 0
    assert scheduled_time_text(berlin) == "2024-02-29T23:00:00Z"
    assert scheduled_time_text(FIRE.replace(second=43, microsecond=500_000)) == (
        "2024-02-29T23:00:43Z"
    )


def test_the_execution_id_is_per_attempt_and_derived_from_the_fire() -> None:
    first = invocation_id(ARN, FIRE, 1)
    assert len(first) == 16
    assert set(first) <= set("0123456789abcdef")
    assert invocation_id(ARN, FIRE, 1) == first  # the same attempt: the same id
    others = {
        invocation_id(ARN, FIRE, 2),
        invocation_id(ARN, FIRE + timedelta(days=31), 1),
        invocation_id(ARN.replace("billing", "billing2"), FIRE, 1),
    }
    assert first not in others
    assert len(others) == 3


def test_a_keyword_repeated_or_in_a_key_is_replaced_everywhere() -> None:
    body = {"<aws.scheduler.attempt-number>": ["<aws.scheduler.attempt-number>"] * 2}
    fire = with_context_attributes(start(body), schedule_arn=ARN, attempt_number=3)
    assert json.loads(fire.input) == {"3": ["3", "3"]}


def test_an_input_without_keywords_is_left_as_it_is() -> None:
    fire = start({"run": "monthly", "note": "<aws.other>"})
    assert with_context_attributes(fire, schedule_arn=ARN, attempt_number=1) is fire


def test_an_unknown_scheduler_keyword_is_left_in_place() -> None:
    fire = start({"what": "<aws.scheduler.unknown>", "at": "<aws.scheduler.scheduled-time>"})
    done = with_context_attributes(fire, schedule_arn=ARN, attempt_number=1)
    assert json.loads(done.input) == {
        "what": "<aws.scheduler.unknown>",
        "at": scheduled_time_text(FIRE),
    }


# -- fired by the runtime -------------------------------------------------------------------


@final
class SteppedClock:
    """Virtual time that only the test moves (a ``ManualClock`` would autojump)."""

    is_virtual = True

    def __init__(self, start: float) -> None:
        self._clock = ManualClock(start)

    def now(self) -> float:
        return self._clock.now()

    async def sleep_until(self, deadline: float) -> None:
        await self._clock.sleep_until(deadline)

    def advance_to(self, moment: float) -> None:
        self._clock.advance_to(moment)


async def bill(payload: JSON, context: TaskContext) -> JSON:
    return payload


async def executions(rt: Runtime, count: int) -> list[Any]:
    with anyio.fail_after(10):
        while True:
            found = await rt.list_executions(MACHINE)
            if len(found) >= count:
                return found
            await anyio.sleep(0.005)


@pytest.mark.anyio
async def test_a_start_tried_again_carries_attempt_two_and_its_own_execution_id() -> None:
    """The first attempt fails (the target state machine does not exist yet); the runner tries
    again 1 s later, when it exists: the execution's input says attempt 2."""
    clock = SteppedClock(FIRE.timestamp() - 3600)
    async with Runtime("memory", handlers={"Bill": bill}, clock=clock) as rt:
        await rt.create_schedule(
            "billing",
            "cron(0 0 1 * ? *)",
            {"Arn": MACHINE, "Input": BODY},
            schedule_expression_timezone="Europe/Berlin",
            start_date=FIRE,
        )
        clock.advance_to(FIRE.timestamp())
        with anyio.fail_after(10):
            while True:  # until the runner's first attempt failed and a retry is planned
                runner = rt._schedule_runner
                if runner is not None and runner._retries:
                    break
                await anyio.sleep(0.005)
        assert await rt.list_executions() == []
        await rt.create_state_machine("Billing", DEFINITION)
        clock.advance_to(FIRE.timestamp() + 1.0)
        (run,) = await executions(rt, 1)
        done = await rt.wait_for_execution(run.execution_arn, timeout=10)

    assert json.loads(done.input) == {
        "schedule": ARN,
        "month": "2024-02-29T23:00:00Z",
        "invocation": invocation_id(ARN, FIRE, 2),
        "attempt": "2",
    }
    assert done.status == "SUCCEEDED"
    assert done.start_date == FIRE.timestamp() + 1.0


@pytest.mark.anyio
async def test_the_same_attempt_started_again_is_answered_idempotently() -> None:
    """A crash between the start and the fire mark: the restarted runner starts the fire's
    first attempt again. Its input is the same, so StartExecution answers with the running
    execution; another attempt's input differs and is refused as ``ExecutionAlreadyExists``
    (which the runner also counts as started): never a second execution."""
    tokens: list[str] = []

    async def wait(payload: JSON, context: TaskContext) -> None:
        assert context.task_token is not None
        tokens.append(context.task_token)

    definition = {
        "StartAt": "Bill",
        "States": {"Bill": {"Type": "Task", "Resource": "Wait.waitForTaskToken", "End": True}},
    }
    clock = SteppedClock(FIRE.timestamp() - 3600)
    async with Runtime("memory", handlers={"Wait": wait}, clock=clock) as rt:
        await rt.create_state_machine("Billing", definition)
        await rt.create_schedule(
            "billing",
            "cron(0 0 1 * ? *)",
            {"Arn": MACHINE, "Input": BODY},
            schedule_expression_timezone="Europe/Berlin",
            start_date=FIRE,
        )
        schedule = (await rt.get_schedule("billing")).schedule
        clock.advance_to(FIRE.timestamp())
        (run,) = await executions(rt, 1)
        fate = fire_fate(schedule, FIRE, FIRE)
        assert isinstance(fate, Start)
        await rt.start_fire(with_context_attributes(fate, schedule_arn=ARN, attempt_number=1))
        with pytest.raises(ExecutionAlreadyExists):
            await rt.start_fire(with_context_attributes(fate, schedule_arn=ARN, attempt_number=2))
        found = await rt.list_executions(MACHINE)
        first = await rt.describe_execution(run.execution_arn)

    assert [e.execution_arn for e in found] == [run.execution_arn]
    assert first.status == "RUNNING"
    assert json.loads(first.input)["invocation"] == invocation_id(ARN, FIRE, 1)
    assert json.loads(first.input)["attempt"] == "1"


def test_a_schedule_target_input_keeps_its_keywords_until_a_fire() -> None:
    """The stored schedule keeps the keywords (GetSchedule shows what was given)."""
    schedule = Schedule(
        name="billing",
        schedule_expression="cron(0 0 1 * ? *)",
        target=Target(arn=MACHINE, input=json.dumps(BODY)),
        creation_date=FIRE - timedelta(days=1),
    )
    fate = fire_fate(schedule, FIRE, FIRE)
    assert isinstance(fate, Start)
    assert json.loads(fate.input) == BODY
