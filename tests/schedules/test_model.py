"""The Schedule Struct (Scheduler's fields and constraints) and the pure rule of one fire:
its execution name, its FlexibleTimeWindow offset, its fate when it is late."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from runtime.schedules import (
    FlexibleTimeWindow,
    Missed,
    RetryPolicy,
    Schedule,
    Start,
    Target,
    ValidationException,
    decode_schedule,
    due_time,
    encode_schedule,
    execution_name,
    fire_fate,
    fire_times,
    flexible_offset,
    next_fire,
    schedule_arn,
)

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Invoices"
CREATED = datetime(2024, 12, 15, tzinfo=UTC)


def billing(**fields: object) -> Schedule:
    values: dict[str, object] = {
        "name": "monthly-billing",
        "schedule_expression": "cron(0 0 1 * ? *)",
        "schedule_expression_timezone": "America/New_York",
        "target": Target(arn=MACHINE, input='{"run": "monthly"}'),
        "creation_date": CREATED,
    }
    values.update(fields)
    return Schedule(**values)  # type: ignore[arg-type]


# -- the Schedule ---------------------------------------------------------------------------


def test_a_create_schedule_body_decodes_with_schedulers_keys_and_defaults() -> None:
    body = (
        '{"Name": "nightly", "ScheduleExpression": "rate(1 day)", '
        '"CreationDate": "2025-01-01T00:00:00Z", "FlexibleTimeWindow": {"Mode": "OFF"}, '
        f'"Target": {{"Arn": "{MACHINE}", "Input": "{{}}"}}}}'
    )
    schedule = decode_schedule(body)
    assert schedule.group_name == "default"
    assert schedule.schedule_expression_timezone == "UTC"
    assert schedule.state == "ENABLED"
    assert schedule.action_after_completion == "NONE"
    assert schedule.target.retry_policy == RetryPolicy(
        maximum_event_age_in_seconds=86400, maximum_retry_attempts=185
    )
    assert decode_schedule(encode_schedule(schedule)) == schedule


def test_encoding_uses_schedulers_keys() -> None:
    schedule = billing(
        flexible_time_window=FlexibleTimeWindow(mode="FLEXIBLE", maximum_window_in_minutes=15),
        start_date=datetime(2025, 1, 1, tzinfo=UTC),
    )
    data = msgspec.json.decode(encode_schedule(schedule))
    assert data["Name"] == "monthly-billing"
    assert data["ScheduleExpressionTimezone"] == "America/New_York"
    assert data["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert data["Target"]["Arn"] == MACHINE
    assert data["StartDate"] == "2025-01-01T00:00:00Z"
    assert decode_schedule(encode_schedule(schedule)) == schedule


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"name": ""},
            "1 validation error detected: Value '' at 'name' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        ),
        (
            {"name": "x" * 65},
            f"1 validation error detected: Value '{'x' * 65}' at 'name' failed to satisfy "
            "constraint: Member must have length less than or equal to 64",
        ),
        (
            {"name": "bad name"},
            "1 validation error detected: Value 'bad name' at 'name' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: ^[0-9a-zA-Z-_.]+$",
        ),
        (
            {"group_name": "a/b"},
            "1 validation error detected: Value 'a/b' at 'groupName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: ^[0-9a-zA-Z-_.]+$",
        ),
        (
            {"state": "PAUSED"},
            "1 validation error detected: Value 'PAUSED' at 'state' failed to satisfy "
            "constraint: Member must satisfy enum value set: [ENABLED, DISABLED]",
        ),
        (
            {"action_after_completion": "KEEP"},
            "1 validation error detected: Value 'KEEP' at 'actionAfterCompletion' failed to "
            "satisfy constraint: Member must satisfy enum value set: [NONE, DELETE]",
        ),
        (
            {"schedule_expression": "cron(0 1 * * * *)"},
            "Invalid Schedule Expression cron(0 1 * * * *).",
        ),
        (
            {"schedule_expression": "rate(" + "9" * 300 + " days)"},
            "1 validation error detected: Value 'rate("
            + "9" * 300
            + " days)' at 'scheduleExpression' failed to satisfy constraint: Member must have "
            "length less than or equal to 256",
        ),
        (
            {"schedule_expression_timezone": "Nowhere/Place"},
            "Invalid ScheduleExpressionTimezone Nowhere/Place.",
        ),
        (
            {
                "start_date": datetime(2025, 2, 1, tzinfo=UTC),
                "end_date": datetime(2025, 1, 1, tzinfo=UTC),
            },
            "The EndDate must be after the StartDate.",
        ),
        (
            {"start_date": datetime(2025, 2, 1)},
            "StartDate must carry a time zone offset: 2025-02-01 00:00:00.",
        ),
    ],
)
def test_schedule_fields_are_validated_in_schedulers_words(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationException) as raised:
        billing(**fields)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: FlexibleTimeWindow(mode="SOMETIMES"),
            "1 validation error detected: Value 'SOMETIMES' at 'flexibleTimeWindow.mode' failed "
            "to satisfy constraint: Member must satisfy enum value set: [OFF, FLEXIBLE]",
        ),
        (
            lambda: FlexibleTimeWindow(mode="FLEXIBLE"),
            "MaximumWindowInMinutes must be specified when FlexibleTimeWindow Mode is FLEXIBLE.",
        ),
        (
            lambda: FlexibleTimeWindow(mode="FLEXIBLE", maximum_window_in_minutes=1441),
            "1 validation error detected: Value '1441' at "
            "'flexibleTimeWindow.maximumWindowInMinutes' failed to satisfy constraint: Member "
            "must have value less than or equal to 1440",
        ),
        (
            lambda: RetryPolicy(maximum_event_age_in_seconds=59),
            "1 validation error detected: Value '59' at "
            "'target.retryPolicy.maximumEventAgeInSeconds' failed to satisfy constraint: Member "
            "must have value greater than or equal to 60",
        ),
        (
            lambda: RetryPolicy(maximum_retry_attempts=186),
            "1 validation error detected: Value '186' at 'target.retryPolicy.maximumRetryAttempts' "
            "failed to satisfy constraint: Member must have value less than or equal to 185",
        ),
        (
            lambda: Target(arn="arn:aws:lambda:us-east-1:123456789012:function:f"),
            "Invalid target arn:aws:lambda:us-east-1:123456789012:function:f: the target must be "
            "a state machine ARN.",
        ),
    ],
)
def test_nested_fields_are_validated(build: object, message: str) -> None:
    with pytest.raises(ValidationException) as raised:
        build()  # type: ignore[operator]
    assert str(raised.value) == message


def test_decoding_validates_too() -> None:
    body = (
        '{"Name": "x", "ScheduleExpression": "rate(1 days)", "CreationDate": '
        f'"2025-01-01T00:00:00Z", "Target": {{"Arn": "{MACHINE}"}}}}'
    )
    with pytest.raises(
        ValidationException, match=re.escape("Invalid Schedule Expression rate(1 days).")
    ):
        decode_schedule(body)


def test_schedule_arn() -> None:
    assert (
        schedule_arn(billing(group_name="finance"), "eu-west-1", "123456789012")
        == "arn:aws:scheduler:eu-west-1:123456789012:schedule/finance/monthly-billing"
    )


def test_a_schedule_is_what_next_fire_takes() -> None:
    assert next_fire(billing()) == datetime(2025, 1, 1, 5, tzinfo=UTC)


# -- execution names ------------------------------------------------------------------------

_EXECUTION_NAME = re.compile(r"[0-9A-Za-z_-]{1,80}")


def test_execution_name_derives_from_schedule_and_fire_time() -> None:
    schedule = billing()
    fire = datetime(2025, 1, 1, 5, tzinfo=UTC)
    name = execution_name(schedule, fire)
    assert re.fullmatch(r"monthly-billing-[0-9a-f]{8}-20250101T050000Z", name)
    assert execution_name(billing(), fire) == name  # same inputs, same name, in any process
    assert execution_name(schedule, fire + timedelta(minutes=1)) != name
    # The same instant in another offset is the same fire.
    assert execution_name(schedule, fire.astimezone(datetime.now(UTC).astimezone().tzinfo)) == name


def test_execution_names_of_different_schedules_never_collide() -> None:
    fire = datetime(2025, 1, 1, tzinfo=UTC)
    names = {
        execution_name(billing(name="a.b"), fire),
        execution_name(billing(name="a_b"), fire),
        execution_name(billing(name="a.b", group_name="other"), fire),
        execution_name(billing(name="x" * 64), fire),
        execution_name(billing(name="x" * 63 + "y"), fire),
    }
    assert len(names) == 5


def test_execution_names_are_valid_step_functions_names() -> None:
    schedule = billing(name="A-very.long_schedule.name." + "z" * 38, group_name="g.r-o_up")
    assert len(schedule.name) == 64
    for fire in fire_times(schedule, None, datetime(2027, 1, 1, tzinfo=UTC)):
        name = execution_name(schedule, fire)
        assert _EXECUTION_NAME.fullmatch(name), name
        assert len(name) <= 80


# -- flexible time windows ------------------------------------------------------------------


def test_flexible_offset_is_zero_when_off() -> None:
    fire = datetime(2025, 1, 1, 5, tzinfo=UTC)
    assert flexible_offset(billing(), fire) == timedelta(0)
    assert due_time(billing(), fire) == fire


def test_flexible_offset_is_deterministic_and_inside_the_window() -> None:
    window = FlexibleTimeWindow(mode="FLEXIBLE", maximum_window_in_minutes=30)
    schedule = billing(flexible_time_window=window)
    fires = list(fire_times(schedule, None, datetime(2027, 1, 1, tzinfo=UTC)))
    offsets = [flexible_offset(schedule, fire) for fire in fires]
    assert all(timedelta(0) <= o < timedelta(minutes=30) for o in offsets)
    assert all(o.microseconds == 0 for o in offsets)
    assert offsets == [flexible_offset(billing(flexible_time_window=window), f) for f in fires]
    assert len(set(offsets)) > 12  # drawn per fire, not one offset for all
    other = billing(name="other", flexible_time_window=window)
    assert [flexible_offset(other, f) for f in fires] != offsets
    assert due_time(schedule, fires[0]) == fires[0] + offsets[0]


# -- late fires -----------------------------------------------------------------------------


def test_a_due_fire_starts_with_its_name_and_input() -> None:
    schedule = billing()
    fire = datetime(2025, 1, 1, 5, tzinfo=UTC)
    assert fire_fate(schedule, fire, fire) == Start(
        fire_time=fire,
        due_time=fire,
        name=execution_name(schedule, fire),
        state_machine_arn=MACHINE,
        input='{"run": "monthly"}',
    )
    no_input = billing(target=Target(arn=MACHINE))
    fate = fire_fate(no_input, fire, fire)
    assert isinstance(fate, Start)
    assert fate.input == "{}"


def test_a_late_fire_starts_within_the_maximum_event_age_and_is_missed_after() -> None:
    schedule = billing(
        target=Target(arn=MACHINE, retry_policy=RetryPolicy(maximum_event_age_in_seconds=3600))
    )
    fire = datetime(2025, 1, 1, 5, tzinfo=UTC)
    assert isinstance(fire_fate(schedule, fire, fire + timedelta(seconds=3600)), Start)
    assert fire_fate(schedule, fire, fire + timedelta(seconds=3601)) == Missed(
        fire_time=fire, due_time=fire, reason="MaximumEventAgeInSeconds"
    )
    # The default policy keeps a fire for a day.
    assert isinstance(fire_fate(billing(), fire, fire + timedelta(hours=24)), Start)
    assert isinstance(fire_fate(billing(), fire, fire + timedelta(hours=25)), Missed)


def test_the_age_counts_from_the_flexible_due_time() -> None:
    window = FlexibleTimeWindow(mode="FLEXIBLE", maximum_window_in_minutes=60)
    schedule = billing(
        flexible_time_window=window,
        target=Target(arn=MACHINE, retry_policy=RetryPolicy(maximum_event_age_in_seconds=60)),
    )
    fire = next(
        f
        for f in fire_times(schedule, None, datetime(2030, 1, 1, tzinfo=UTC))
        if flexible_offset(schedule, f) > timedelta(minutes=5)
    )
    due = due_time(schedule, fire)
    with pytest.raises(ValueError, match="not due"):
        fire_fate(schedule, fire, due - timedelta(seconds=1))
    assert isinstance(fire_fate(schedule, fire, due + timedelta(seconds=60)), Start)
    assert isinstance(fire_fate(schedule, fire, due + timedelta(seconds=61)), Missed)


def test_retry_attempts_run_out() -> None:
    schedule = billing(
        target=Target(arn=MACHINE, retry_policy=RetryPolicy(maximum_retry_attempts=2))
    )
    fire = datetime(2025, 1, 1, 5, tzinfo=UTC)
    assert isinstance(fire_fate(schedule, fire, fire, attempts=2), Start)
    assert fire_fate(schedule, fire, fire, attempts=3) == Missed(
        fire_time=fire, due_time=fire, reason="MaximumRetryAttempts"
    )
