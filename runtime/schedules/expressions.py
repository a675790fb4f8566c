"""EventBridge Scheduler's schedule expressions: ``cron(...)``, ``rate(...)``, ``at(...)``.

What Scheduler documents (User Guide, "Schedule types on EventBridge Scheduler", and the
EventBridge cron reference it shares), and this module implements:

* ``cron(minutes hours day-of-month month day-of-week year)``: six fields separated by white
  space. Minutes 0-59, hours 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 1-7 or
  SUN-SAT (1 is Sunday), year 1970-2199. Every field takes ``,`` lists, ``-`` ranges and ``*``;
  all but day-of-week take ``/`` increments (``a/s``, ``a-b/s``, ``*/s``). Day-of-month takes
  ``?``, ``L`` (the last day of the month), ``LW`` (its last weekday) and ``nW`` (the weekday
  nearest day ``n``, never leaving the month); day-of-week takes ``?``, ``L`` (the last day of
  the week, Saturday), ``nL`` (the last day ``n`` of the month) and ``n#k`` (the ``k``-th day
  ``n`` of the month, alone in its field). One of day-of-month and day-of-week must be ``?``,
  the other not. Names are case-insensitive.
* ``rate(value unit)``: a positive integer and ``minute``/``hour``/``day`` for 1,
  ``minutes``/``hours``/``days`` otherwise. The first fire is the StartDate, or the schedule's
  creation when it has none ("starts invoking the target immediately"); then every ``value``
  units of elapsed time, whatever the time zone does ("days represents a 24-hour duration").
* ``at(yyyy-mm-ddThh:mm:ss)``: one fire at that wall-clock time in the schedule's time zone.
  StartDate and EndDate are ignored for it, as Scheduler documents.

An invalid expression raises :class:`ValidationException` with the message AWS returns,
``Invalid Schedule Expression <expression>.`` (recorded from CreateSchedule).

Time zones (``ScheduleExpressionTimezone``, an IANA name, default ``UTC``) and daylight saving,
as Scheduler documents them (AWS Knowledge Center, "adjust my EventBridge schedule for daylight
saving"): a wall-clock time that does not exist because the clocks spring forward is *skipped*
(no fire that day); a wall-clock time that occurs twice because they fall back fires *once*, at
its first occurrence. ``cron`` and ``at`` follow both rules; ``rate`` counts elapsed time.

StartDate/EndDate: a fire happens on or after StartDate and before EndDate.

Pure: the standard library (``zoneinfo``) and msgspec only; no clock is read. Every instant
taken or returned is a timezone-aware ``datetime``; results are in UTC.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Final, Protocol, final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from runtime.errors import StatemillError

__all__ = [
    "MONTH_NAMES",
    "WEEKDAY_NAMES",
    "At",
    "Cron",
    "Expression",
    "Rate",
    "Timed",
    "ValidationException",
    "fire_times",
    "next_fire",
    "parse_expression",
    "zone_of",
]


@final
class ValidationException(StatemillError):
    """EventBridge Scheduler's ``ValidationException`` (HTTP 400): the request is invalid."""


#: Month names (``JAN`` = 1), in English whatever the locale.
MONTH_NAMES: Final = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
#: Day-of-week names in Scheduler's numbering: ``SUN`` = 1 ... ``SAT`` = 7.
WEEKDAY_NAMES: Final = {
    name: number
    for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)
}

_YEARS: Final = (1970, 2199)
_SATURDAY: Final = 7


class Cron(msgspec.Struct, frozen=True, kw_only=True):
    """A compiled ``cron(...)`` expression (see the module docstring for the fields)."""

    text: str
    minutes: tuple[int, ...]
    """Sorted minutes of the hour."""
    hours: tuple[int, ...]
    months: frozenset[int]
    years: frozenset[int]
    days_of_month: frozenset[int] = frozenset()
    """Listed days of the month (day-of-month holds a list, ``*`` included)."""
    last_day: bool = False
    """Day-of-month ``L``."""
    last_weekday: bool = False
    """Day-of-month ``LW``."""
    nearest_weekday: int = 0
    """Day-of-month ``nW`` (0: not used)."""
    days_of_week: frozenset[int] = frozenset()
    """Listed days of the week, 1 (Sunday) to 7 (Saturday)."""
    last_of_week: int = 0
    """Day-of-week ``nL``: the last day ``n`` of the month (0: not used)."""
    nth_of_week: tuple[int, int] = (0, 0)
    """Day-of-week ``n#k``: the ``k``-th day ``n`` of the month (``(0, 0)``: not used)."""
    by_day_of_week: bool = False
    """Whether day-of-month is ``?`` (the day-of-week field decides), else day-of-week is."""


class Rate(msgspec.Struct, frozen=True, kw_only=True):
    """A compiled ``rate(value unit)`` expression."""

    text: str
    value: int
    unit: str
    """``minutes``, ``hours`` or ``days`` (normalized to the plural)."""

    @property
    def period(self) -> timedelta:
        """The elapsed time between two fires."""
        return timedelta(**{self.unit: self.value})


class At(msgspec.Struct, frozen=True, kw_only=True):
    """A compiled ``at(yyyy-mm-ddThh:mm:ss)`` expression: one wall-clock time."""

    text: str
    local: datetime
    """The naive wall-clock time, read in the schedule's time zone."""


Expression = Cron | Rate | At


class Timed(Protocol):
    """What fire times depend on: the Schedule's fields of the same names (Scheduler's
    ``ScheduleExpression``, ``ScheduleExpressionTimezone``, ``StartDate``, ``EndDate`` and
    ``CreationDate``)."""

    @property
    def schedule_expression(self) -> str: ...

    @property
    def schedule_expression_timezone(self) -> str: ...

    @property
    def start_date(self) -> datetime | None: ...

    @property
    def end_date(self) -> datetime | None: ...

    @property
    def creation_date(self) -> datetime: ...


def _invalid(text: str) -> ValidationException:
    return ValidationException(f"Invalid Schedule Expression {text}.")


class _Bad(Exception):
    """A field does not parse (turned into the one ValidationException message)."""


# -- parsing --------------------------------------------------------------------------------

_RATE: Final = re.compile(r"rate\(([1-9][0-9]{0,8}) (minutes?|hours?|days?)\)")
_AT: Final = re.compile(r"at\((\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\)")
_CRON: Final = re.compile(r"cron\((\S+(?:\s+\S+)*)\)")
_NUMBER: Final = re.compile(r"[0-9]{1,4}")


def parse_expression(text: str) -> Expression:
    """Compile a ScheduleExpression (Scheduler: "Schedule types").

    Raises:
        ValidationException: ``Invalid Schedule Expression <text>.``
    """
    if not isinstance(text, str):
        raise ValidationException(f"Invalid Schedule Expression {text!r}.")
    try:
        if text.startswith("cron("):
            return _parse_cron(text)
        if text.startswith("rate("):
            return _parse_rate(text)
        if text.startswith("at("):
            return _parse_at(text)
    except _Bad:
        pass
    raise _invalid(text)


def _parse_rate(text: str) -> Rate:
    """Rate expressions: "If the value is equal to 1, then the unit must be singular"; for
    values greater than 1 it must be plural."""
    match = _RATE.fullmatch(text)
    if match is None:
        raise _Bad
    value, unit = int(match[1]), match[2]
    if (value == 1) != (not unit.endswith("s")):
        raise _Bad
    return Rate(text=text, value=value, unit=unit if unit.endswith("s") else unit + "s")


def _parse_at(text: str) -> At:
    match = _AT.fullmatch(text)
    if match is None:
        raise _Bad
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        local = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:  # e.g. February 30
        raise _Bad from exc
    return At(text=text, local=local)


def _parse_cron(text: str) -> Cron:
    match = _CRON.fullmatch(text)
    if match is None:
        raise _Bad
    fields = match[1].split()
    if len(fields) != 6:
        raise _Bad
    minutes, hours, dom, month, dow, year = (field.upper() for field in fields)
    # "You can't specify the Day-of-month and Day-of-week fields in the same cron expression.
    # If you specify a value or a * (asterisk) in one of the fields, you must use a ? (question
    # mark) in the other."
    if (dom == "?") == (dow == "?"):
        raise _Bad
    common = {
        "text": text,
        "minutes": tuple(sorted(_values(minutes, 0, 59, {}, steps=True))),
        "hours": tuple(sorted(_values(hours, 0, 23, {}, steps=True))),
        "months": _values(month, 1, 12, MONTH_NAMES, steps=True),
        "years": _values(year, *_YEARS, {}, steps=True),
    }
    if dom == "?":
        return Cron(by_day_of_week=True, **_day_of_week(dow), **common)  # type: ignore[arg-type]
    return Cron(**_day_of_month(dom), **common)  # type: ignore[arg-type]


def _day_of_month(field: str) -> dict[str, object]:
    if field == "L":
        return {"last_day": True}
    if field == "LW":
        return {"last_weekday": True}
    if field.endswith("W"):
        day = _number(field[:-1], 1, 31, {})
        return {"nearest_weekday": day}
    return {"days_of_month": _values(field, 1, 31, {}, steps=True)}


def _day_of_week(field: str) -> dict[str, object]:
    if field == "L":  # "the last day of the week": Saturday
        return {"days_of_week": frozenset({_SATURDAY})}
    if "#" in field:  # "you can only define one expression in the day-of-week field"
        day, _, nth = field.partition("#")
        return {"nth_of_week": (_number(day, 1, 7, WEEKDAY_NAMES), _number(nth, 1, 5, {}))}
    if field.endswith("L"):
        return {"last_of_week": _number(field[:-1], 1, 7, WEEKDAY_NAMES)}
    return {"days_of_week": _values(field, 1, 7, WEEKDAY_NAMES, steps=False)}


def _number(token: str, low: int, high: int, names: dict[str, int]) -> int:
    if token in names:
        return names[token]
    if not _NUMBER.fullmatch(token):
        raise _Bad
    value = int(token)
    if not low <= value <= high:
        raise _Bad
    return value


def _values(
    field: str, low: int, high: int, names: dict[str, int], *, steps: bool
) -> frozenset[int]:
    """A ``,`` list of ``*``, ``n``, ``a-b``, each with an optional ``/step`` when allowed."""
    out: set[int] = set()
    for item in field.split(","):
        base, slash, step_text = item.partition("/")
        if slash and not steps:
            raise _Bad
        step = _number(step_text, 1, high, {}) if slash else 1
        if base == "*":
            first, last = low, high
        elif "-" in base:
            start, _, end = base.partition("-")
            first, last = _number(start, low, high, names), _number(end, low, high, names)
            if first > last:
                raise _Bad
        else:
            first = _number(base, low, high, names)
            last = high if slash else first
        out.update(range(first, last + 1, step))
    return frozenset(out)


# -- days -----------------------------------------------------------------------------------


def _weekday(day: date) -> int:
    """Scheduler's day-of-week number: 1 (Sunday) to 7 (Saturday)."""
    return day.isoweekday() % 7 + 1


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    """Day-of-month ``nW``: the weekday (Monday to Friday) nearest day ``n`` of the month,
    staying inside the month (0 when the month has no day ``n``)."""
    if day > length:
        return 0
    weekday = _weekday(date(year, month, day))
    if weekday == _SATURDAY:
        return day - 1 if day > 1 else day + 2
    if weekday == 1:  # Sunday
        return day + 1 if day < length else day - 2
    return day


def _day_matches(cron: Cron, day: date, length: int) -> bool:
    if not cron.by_day_of_week:
        if cron.last_day:
            return day.day == length
        if cron.last_weekday:
            return day.day == _nearest_weekday(day.year, day.month, length, length)
        if cron.nearest_weekday:
            return day.day == _nearest_weekday(day.year, day.month, cron.nearest_weekday, length)
        return day.day in cron.days_of_month
    weekday = _weekday(day)
    if cron.last_of_week:
        return weekday == cron.last_of_week and day.day + 7 > length
    if cron.nth_of_week != (0, 0):
        wanted, nth = cron.nth_of_week
        return weekday == wanted and (day.day - 1) // 7 + 1 == nth
    return weekday in cron.days_of_week


# -- fire times -----------------------------------------------------------------------------


def zone_of(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``ScheduleExpressionTimezone``).

    Raises:
        ValidationException: no such time zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationException(f"Invalid ScheduleExpressionTimezone {name}.") from exc


def wall_clock(local: datetime, zone: ZoneInfo) -> datetime | None:
    """The instant (UTC) at which the clocks of ``zone`` show ``local``: ``None`` when they
    never do (the spring-forward gap: Scheduler skips the fire), the first of the two when they
    show it twice (the fall-back hour: Scheduler fires once)."""
    aware = local.replace(tzinfo=zone, fold=0)
    instant = aware.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local:
        return None
    return instant


def _cron_next(cron: Cron, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first fire of ``cron`` strictly after ``after``. Wall-clock times taken in order
    are instants in order (the second pass of a fall-back hour is never used), so the first
    match after ``after`` is the answer."""
    start = after.astimezone(zone)
    for year in sorted(y for y in cron.years if y >= start.year):
        for month in sorted(cron.months):
            if (year, month) < (start.year, start.month):
                continue
            length = calendar.monthrange(year, month)[1]
            first = start.day if (year, month) == (start.year, start.month) else 1
            for day_number in range(first, length + 1):
                day = date(year, month, day_number)
                if not _day_matches(cron, day, length):
                    continue
                for hour in cron.hours:
                    for minute in cron.minutes:
                        instant = wall_clock(datetime(year, month, day_number, hour, minute), zone)
                        if instant is not None and instant > after:
                            return instant
    return None


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value


def next_fire(schedule: Timed, after: datetime | None = None) -> datetime | None:
    """The schedule's first fire strictly after ``after`` (UTC), or ``None`` if it has no more.

    ``after=None`` asks for its first fire: at or after its CreationDate for ``cron`` and
    ``rate`` (a schedule does not fire before it exists), the one time of ``at``.

    Raises:
        ValidationException: the expression or the time zone is invalid.
        ValueError: ``after`` is a naive datetime.
    """
    expression = parse_expression(schedule.schedule_expression)
    zone = zone_of(schedule.schedule_expression_timezone)
    if isinstance(expression, At):  # Scheduler ignores StartDate and EndDate for one-time schedules
        instant = wall_clock(expression.local, zone)
        if instant is None or (after is not None and instant <= _aware(after, "after")):
            return None
        return instant
    created = _aware(schedule.creation_date, "CreationDate")
    floor = created - timedelta(microseconds=1) if after is None else _aware(after, "after")
    start = schedule.start_date
    if start is not None and floor < _aware(start, "StartDate"):  # "on, or after, the StartDate"
        floor = start - timedelta(microseconds=1)
    if isinstance(expression, Rate):
        anchor = created if start is None else start
        period = expression.period
        try:
            found = anchor if floor < anchor else anchor + period * ((floor - anchor) // period + 1)
        except OverflowError:  # past year 9999
            return None
    else:
        found_or_none = _cron_next(expression, zone, floor)
        if found_or_none is None:
            return None
        found = found_or_none
    end = schedule.end_date
    if end is not None and found >= _aware(end, "EndDate"):  # "before which" it can invoke
        return None
    return found.astimezone(UTC)


def fire_times(
    schedule: Timed, after: datetime | None, until: datetime, *, limit: int | None = None
) -> Iterator[datetime]:
    """The schedule's fires ``t`` with ``after < t <= until``, in order (``after=None``: from
    its first fire, as :func:`next_fire`), at most ``limit`` of them."""
    count = 0
    bound = _aware(until, "until")
    found = next_fire(schedule, after)
    while found is not None and found <= bound and (limit is None or count < limit):
        yield found
        count += 1
        found = next_fire(schedule, found)
