"""Schedule expressions: parsing (with AWS's refusal message), cron/rate/at fire times, time
zones and daylight saving as EventBridge Scheduler documents them, StartDate and EndDate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest

from runtime.schedules import (
    At,
    Cron,
    Rate,
    ValidationException,
    fire_times,
    next_fire,
    parse_expression,
)


class Timing(msgspec.Struct, frozen=True, kw_only=True):
    """The fields fire times depend on (the Schedule's, without its validation)."""

    schedule_expression: str
    schedule_expression_timezone: str = "UTC"
    start_date: datetime | None = None
    end_date: datetime | None = None
    creation_date: datetime = datetime(2025, 1, 1, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc,arg-type]


def fires(expression: str, after: datetime, count: int, **fields: object) -> list[datetime]:
    timing = Timing(schedule_expression=expression, **fields)  # type: ignore[arg-type]
    return list(fire_times(timing, after, utc(2199, 12, 31), limit=count))


# -- parsing --------------------------------------------------------------------------------

# Messages recorded from AWS CreateSchedule (ValidationException) for the first eleven.
INVALID = [
    "cron(0 1 * * * *)",  # day-of-month and day-of-week both given
    "cron(7 20 * * NOT *)",
    "cron(INVALID)",
    "cron(0 dummy ? * MON-FRI *)",
    "cron(71 8 1 * ? *)",
    "cron()",
    "rate(10 seconds)",
    "rate(10 years)",
    "rate()",
    "rate(10)",
    "rate(10 minutess)",
    "rate(foo minutes)",
    "rate(-10 minutes)",
    "rate( 10 minutes )",
    " rate(10 minutes)",
    "at(2021-12-31T23:59:59Z)",
    "at(2021-12-31)",
    # and the documented rules
    "cron(0 12 ? * ? *)",  # both '?'
    "cron(0 12 * * ?)",  # five fields
    "cron(0 12 * * ? * *)",  # seven fields
    "cron(0 24 * * ? *)",
    "cron(0 12 32 * ? *)",
    "cron(0 12 0 * ? *)",
    "cron(0 12 ? 13 * *)",
    "cron(0 12 ? * 8 *)",
    "cron(0 12 ? * 0 *)",
    "cron(0 12 * * ? 1969)",
    "cron(0 12 * * ? 2200)",
    "cron(0 12 ? * MON/2 *)",  # '/' is not a day-of-week wildcard
    "cron(0 12 ? * 3#1,6#3 *)",  # '#' stands alone in its field
    "cron(0 12 ? * 3#6 *)",
    "cron(0 12 ? * L,2 *)",
    "cron(0 12 L,5 * ? *)",
    "cron(0 12 ? * W *)",
    "cron(0 12 W * ? *)",
    "cron(0 12 1# * ? *)",
    "cron(0/0 * * * ? *)",
    "cron(30-10 * * * ? *)",
    "cron(0 12 ? JAN-XYZ * *)",
    "rate(0 minutes)",
    "rate(1 minutes)",  # "If the value is equal to 1, then the unit must be singular"
    "rate(5 minute)",
    "rate(1  minute)",
    "at(2025-02-30T10:00:00)",
    "at(2025-01-01T24:00:00)",
    "at(2025-01-01 10:00:00)",
    "every(5 minutes)",
    "",
]


@pytest.mark.parametrize("expression", INVALID)
def test_an_invalid_expression_is_refused_with_schedulers_message(expression: str) -> None:
    with pytest.raises(ValidationException) as raised:
        parse_expression(expression)
    assert str(raised.value) == f"Invalid Schedule Expression {expression}."


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 10 * * ? *)",
        "cron(15 12 * * ? *)",
        "cron(0 18 ? * MON-FRI *)",
        "cron(0 8 1 * ? *)",
        "cron(0/15 * * * ? *)",
        "cron(0/10 * ? * MON-FRI *)",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 12 ? * 6L *)",
        "cron(0 12 ? * L *)",
        "cron(0 12 L * ? *)",
        "cron(0 12 LW * ? *)",
        "cron(0 12 15W * ? *)",
        "cron(0 0 1 JAN,FEB,MAR ? 2025-2030)",
        "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)",  # AWS accepts these (LocalStack issue 13572)
        "cron(30-30 13-13 ? * 2,4,6 *)",
        "cron(1-31/30 1-1 ? * 1,7 *)",
        "cron(0 0 1 jan ? *)",
        "cron(0 0 ? * fri#3 *)",
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(12 hours)",
        "rate(1 day)",
        "rate(7 days)",
        "at(2025-12-31T23:59:59)",
        "at(2024-02-29T00:00:00)",
    ],
)
def test_documented_expressions_parse(expression: str) -> None:
    compiled = parse_expression(expression)
    assert compiled.text == expression
    assert isinstance(compiled, Cron | Rate | At)


def test_names_and_numbers_mean_the_same_days() -> None:
    by_name = parse_expression("cron(0 0 ? DEC SUN-SAT *)")
    by_number = parse_expression("cron(0 0 ? 12 1-7 *)")
    assert isinstance(by_name, Cron)
    assert isinstance(by_number, Cron)
    assert (by_name.months, by_name.days_of_week) == (by_number.months, by_number.days_of_week)
    assert by_name.days_of_week == frozenset(range(1, 8))


def test_rate_units_normalize() -> None:
    assert parse_expression("rate(1 hour)") == Rate(text="rate(1 hour)", value=1, unit="hours")
    assert parse_expression("rate(3 days)") == Rate(text="rate(3 days)", value=3, unit="days")


def test_an_unknown_time_zone_is_refused() -> None:
    timing = Timing(schedule_expression="rate(1 hour)", schedule_expression_timezone="Mars/Olympus")
    with pytest.raises(ValidationException, match="Mars/Olympus"):
        next_fire(timing, utc(2025, 1, 1))


def test_a_naive_instant_is_refused() -> None:
    timing = Timing(schedule_expression="rate(1 hour)")
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire(timing, datetime(2025, 1, 1))


# -- cron fire times (UTC) ------------------------------------------------------------------


def test_daily_cron_fires_every_day_at_its_time() -> None:
    assert fires("cron(15 10 * * ? *)", utc(2025, 1, 1, 10, 15), 3) == [
        utc(2025, 1, 2, 10, 15),
        utc(2025, 1, 3, 10, 15),
        utc(2025, 1, 4, 10, 15),
    ]


def test_weekday_ranges_and_steps() -> None:
    # 2025-01-03 is a Friday: the next weekday fires are Friday 17:40, 17:50, then Monday.
    got = fires("cron(0/10 8-17 ? * MON-FRI *)", utc(2025, 1, 3, 17, 35), 3)
    assert got == [utc(2025, 1, 3, 17, 40), utc(2025, 1, 3, 17, 50), utc(2025, 1, 6, 8, 0)]


def test_nth_day_of_week() -> None:
    # The first Tuesday (3#1) of each month of 2025.
    got = fires("cron(0 8 ? * 3#1 *)", utc(2025, 1, 1), 4)
    assert [d.day for d in got] == [7, 4, 4, 1]
    assert all(d.isoweekday() == 2 for d in got)


def test_last_day_of_week_in_month() -> None:
    # 6L: the last Friday of the month.
    got = fires("cron(0 12 ? * 6L *)", utc(2025, 1, 1), 3)
    assert got == [utc(2025, 1, 31, 12), utc(2025, 2, 28, 12), utc(2025, 3, 28, 12)]


def test_l_alone_in_day_of_week_is_saturday() -> None:
    got = fires("cron(0 12 ? * L *)", utc(2025, 1, 1), 2)
    assert got == [utc(2025, 1, 4, 12), utc(2025, 1, 11, 12)]


def test_last_day_of_month_and_leap_years() -> None:
    got = fires("cron(0 0 L * ? *)", utc(2024, 1, 1), 3)
    assert got == [utc(2024, 1, 31), utc(2024, 2, 29), utc(2024, 3, 31)]
    leap = fires("cron(0 0 29 2 ? *)", utc(2024, 3, 1), 2)
    assert leap == [utc(2028, 2, 29), utc(2032, 2, 29)]


def test_last_weekday_of_month() -> None:
    # May 2025 ends on a Saturday: LW is Friday the 30th; August 2025 ends on a Sunday: the 29th.
    got = fires("cron(0 9 LW * ? *)", utc(2025, 5, 1), 4)
    assert got == [
        utc(2025, 5, 30, 9),
        utc(2025, 6, 30, 9),
        utc(2025, 7, 31, 9),
        utc(2025, 8, 29, 9),
    ]


def test_nearest_weekday_never_leaves_the_month() -> None:
    # 2025-02-01 is a Saturday: 1W is Monday the 3rd (not Friday January 31).
    assert fires("cron(0 9 1W * ? *)", utc(2025, 1, 15), 1) == [utc(2025, 2, 3, 9)]
    # 2025-03-15 is a Saturday: 15W is Friday the 14th; 2025-06-15 is a Sunday: Monday the 16th.
    assert fires("cron(0 9 15W 3 ? *)", utc(2025, 1, 1), 1) == [utc(2025, 3, 14, 9)]
    assert fires("cron(0 9 15W 6 ? *)", utc(2025, 1, 1), 1) == [utc(2025, 6, 16, 9)]
    # 2025-08-31 is a Sunday and the month's last day: 31W is Friday the 29th; months without a
    # 31st do not fire.
    got = fires("cron(0 9 31W * ? *)", utc(2025, 7, 1), 3)
    assert got == [utc(2025, 7, 31, 9), utc(2025, 8, 29, 9), utc(2025, 10, 31, 9)]


def test_year_field_ends_the_schedule() -> None:
    timing = Timing(schedule_expression="cron(0 0 1 1 ? 2025-2026)")
    assert list(fire_times(timing, utc(2024, 6, 1), utc(2100, 1, 1))) == [
        utc(2025, 1, 1),
        utc(2026, 1, 1),
    ]
    assert next_fire(timing, utc(2026, 1, 1)) is None


def test_a_cron_never_fires_before_its_creation() -> None:
    timing = Timing(schedule_expression="cron(0 * * * ? *)", creation_date=utc(2025, 3, 1, 10, 30))
    assert next_fire(timing) == utc(2025, 3, 1, 11)
    exact = Timing(schedule_expression="cron(0 * * * ? *)", creation_date=utc(2025, 3, 1, 10))
    assert next_fire(exact) == utc(2025, 3, 1, 10)


# -- time zones and daylight saving ---------------------------------------------------------

NEW_YORK = (
    "America/New_York"  # 2025: spring forward 03-09 02:00 -> 03:00, back 11-02 02:00 -> 01:00
)
BERLIN = "Europe/Berlin"  # 2025: spring forward 03-30 02:00 -> 03:00, back 10-26 03:00 -> 02:00


def test_a_time_in_the_spring_forward_gap_is_skipped() -> None:
    got = fires("cron(30 2 * * ? *)", utc(2025, 3, 8), 3, schedule_expression_timezone=NEW_YORK)
    # 02:30 EST = 07:30Z on the 8th; no 02:30 on the 9th; 02:30 EDT = 06:30Z on the 10th.
    assert got == [utc(2025, 3, 8, 7, 30), utc(2025, 3, 10, 6, 30), utc(2025, 3, 11, 6, 30)]


def test_a_time_in_the_fall_back_hour_fires_once() -> None:
    got = fires("cron(30 1 * * ? *)", utc(2025, 11, 1), 3, schedule_expression_timezone=NEW_YORK)
    # 01:30 happens twice on 11-02 (05:30Z EDT, 06:30Z EST): only the first fires.
    assert got == [utc(2025, 11, 1, 5, 30), utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30)]


def test_an_hourly_cron_does_not_repeat_the_fall_back_hour() -> None:
    got = fires(
        "cron(30 * * * ? *)", utc(2025, 11, 2, 4, 0), 4, schedule_expression_timezone=NEW_YORK
    )
    # 00:30 EDT, 01:30 EDT, (01:30 EST not again), 02:30 EST, 03:30 EST.
    assert got == [
        utc(2025, 11, 2, 4, 30),
        utc(2025, 11, 2, 5, 30),
        utc(2025, 11, 2, 7, 30),
        utc(2025, 11, 2, 8, 30),
    ]


def test_berlin_spring_forward_and_fall_back() -> None:
    spring = fires("cron(30 2 * * ? *)", utc(2025, 3, 29), 2, schedule_expression_timezone=BERLIN)
    assert spring == [utc(2025, 3, 29, 1, 30), utc(2025, 3, 31, 0, 30)]
    fall = fires(
        "cron(30 2 * * ? *)", utc(2025, 10, 25, 12), 2, schedule_expression_timezone=BERLIN
    )
    # 02:30 happens twice on 10-26 (00:30Z CEST, 01:30Z CET): it fires at the first.
    assert fall == [utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)]


def test_twenty_four_monthly_fires_across_daylight_saving() -> None:
    zone = ZoneInfo(NEW_YORK)
    timing = Timing(
        schedule_expression="cron(0 0 1 * ? *)",
        schedule_expression_timezone=NEW_YORK,
        creation_date=utc(2024, 12, 15),
    )
    got = list(fire_times(timing, None, utc(2026, 12, 15)))
    assert len(got) == 24
    local = [t.astimezone(zone) for t in got]
    assert [(d.year, d.month, d.day, d.hour, d.minute) for d in local] == [
        (2025 + i // 12, i % 12 + 1, 1, 0, 0) for i in range(24)
    ]
    # Midnight is 05:00Z in winter (EST) and 04:00Z in summer (EDT).
    assert [t.hour for t in got[:12]] == [5, 5, 5, 4, 4, 4, 4, 4, 4, 4, 4, 5]
    assert len(set(got)) == 24


def test_rate_days_count_elapsed_time_across_daylight_saving() -> None:
    # "days represents a 24-hour duration": the local time of day moves by the DST hour.
    got = fires(
        "rate(1 day)",
        utc(2025, 3, 8),
        3,
        schedule_expression_timezone=NEW_YORK,
        start_date=utc(2025, 3, 8, 12),
    )
    assert got == [utc(2025, 3, 8, 12), utc(2025, 3, 9, 12), utc(2025, 3, 10, 12)]


def test_at_fires_once_in_its_time_zone() -> None:
    timing = Timing(
        schedule_expression="at(2025-07-04T09:00:00)", schedule_expression_timezone=NEW_YORK
    )
    assert next_fire(timing) == utc(2025, 7, 4, 13)
    assert next_fire(timing, utc(2025, 7, 4, 12, 59)) == utc(2025, 7, 4, 13)
    assert next_fire(timing, utc(2025, 7, 4, 13)) is None


def test_at_in_the_gap_is_skipped_and_in_the_repeated_hour_fires_at_the_first() -> None:
    gap = Timing(
        schedule_expression="at(2025-03-09T02:30:00)", schedule_expression_timezone=NEW_YORK
    )
    assert next_fire(gap) is None
    twice = Timing(
        schedule_expression="at(2025-11-02T01:30:00)", schedule_expression_timezone=NEW_YORK
    )
    assert next_fire(twice) == utc(2025, 11, 2, 5, 30)


def test_at_ignores_start_and_end_dates() -> None:
    timing = Timing(
        schedule_expression="at(2025-07-04T09:00:00)",
        start_date=utc(2026, 1, 1),
        end_date=utc(2026, 2, 1),
    )
    assert next_fire(timing) == utc(2025, 7, 4, 9)


# -- rate, StartDate and EndDate ------------------------------------------------------------


def test_rate_without_start_date_starts_at_creation() -> None:
    timing = Timing(schedule_expression="rate(5 minutes)", creation_date=utc(2025, 1, 1, 10, 2, 30))
    assert list(fire_times(timing, None, utc(2025, 1, 1, 10, 15))) == [
        utc(2025, 1, 1, 10, 2, 30),
        utc(2025, 1, 1, 10, 7, 30),
        utc(2025, 1, 1, 10, 12, 30),
    ]
    assert next_fire(timing, utc(2025, 1, 1, 10, 7, 30)) == utc(2025, 1, 1, 10, 12, 30)


def test_start_date_is_inclusive_and_end_date_exclusive() -> None:
    timing = Timing(
        schedule_expression="cron(0 * * * ? *)",
        start_date=utc(2025, 2, 1, 10),
        end_date=utc(2025, 2, 1, 13),
    )
    assert list(fire_times(timing, None, utc(2025, 3, 1))) == [
        utc(2025, 2, 1, 10),
        utc(2025, 2, 1, 11),
        utc(2025, 2, 1, 12),
    ]
    rate = Timing(
        schedule_expression="rate(2 hours)",
        start_date=utc(2025, 2, 1, 9, 30),
        end_date=utc(2025, 2, 1, 15, 30),
    )
    assert list(fire_times(rate, utc(2025, 1, 1), utc(2025, 3, 1))) == [
        utc(2025, 2, 1, 9, 30),
        utc(2025, 2, 1, 11, 30),
        utc(2025, 2, 1, 13, 30),
    ]


def test_fire_times_honours_its_bounds_and_limit() -> None:
    timing = Timing(schedule_expression="rate(1 minute)")
    after = utc(2025, 1, 1, 0, 0)
    got = list(fire_times(timing, after, after + timedelta(minutes=3)))
    assert got == [after + timedelta(minutes=m) for m in (1, 2, 3)]
    assert len(list(fire_times(timing, after, after + timedelta(days=1), limit=10))) == 10


def test_a_cron_that_never_matches_ends() -> None:
    assert next_fire(Timing(schedule_expression="cron(0 0 30 2 ? *)"), utc(2025, 1, 1)) is None
