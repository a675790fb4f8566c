"""The Schedule (EventBridge Scheduler's CreateSchedule fields) and the pure rule of one fire.

:class:`Schedule` is a frozen Struct whose JSON keys are Scheduler's (``Name``, ``GroupName``,
``ScheduleExpression``, ``ScheduleExpressionTimezone``, ``StartDate``, ``EndDate``, ``State``,
``FlexibleTimeWindow``, ``Target`` with ``Arn``, ``Input`` and ``RetryPolicy``...). Building or
decoding one validates it (``__post_init__``), raising :class:`ValidationException` with the
message shape AWS's API validation uses (``1 validation error detected: Value '...' at '...'
failed to satisfy constraint: ...``) for the API reference's constraints, and Scheduler's
``Invalid Schedule Expression <expression>.`` for an expression.

The rule of one fire, for the engine (every function is pure; ``now`` is passed in):

* :func:`execution_name`: the name of the execution a fire starts, derived from the schedule
  (group and name) and the fire time only, so every process computes the same one and the
  store's ``ExecutionAlreadyExists`` refuses a second start. Valid as a Step Functions execution
  name: ``[0-9A-Za-z_-]`` only, at most 80 characters.
* :func:`flexible_offset` / :func:`due_time`: with ``FlexibleTimeWindow`` ``FLEXIBLE``, the fire
  is invoked at a moment within ``MaximumWindowInMinutes`` after its time, drawn from a hash of
  (schedule, fire time): the same for every process and every restart.
* :func:`fire_fate`: a due fire starts (:class:`Start`) while it is no older than
  ``RetryPolicy.MaximumEventAgeInSeconds`` and has not used up ``MaximumRetryAttempts``; past
  that it is a :class:`Missed` fire, to be recorded, never started ("start once within the
  maximum event age, otherwise record the miss").
* :func:`with_context_attributes`: Scheduler's context attributes replaced in the input of a
  fire being started (``<aws.scheduler.schedule-arn>``, ``<aws.scheduler.scheduled-time>``,
  ``<aws.scheduler.execution-id>``, ``<aws.scheduler.attempt-number>``); the execution id
  derives from (schedule, fire time, attempt), so a fire started again after a crash gets the
  same input and its StartExecution stays idempotent.

Imports the standard library, msgspec, ``runtime.errors`` and ``schedules.expressions``.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, final

import msgspec

from runtime.errors import StatemillError
from runtime.schedules.expressions import ValidationException, parse_expression, zone_of

__all__ = [
    "ATTEMPT_NUMBER_ATTRIBUTE",
    "DEFAULT_GROUP",
    "EXECUTION_ID_ATTRIBUTE",
    "SCHEDULED_TIME_ATTRIBUTE",
    "SCHEDULE_ARN_ATTRIBUTE",
    "ConflictException",
    "FireFate",
    "FlexibleTimeWindow",
    "Missed",
    "ResourceNotFoundException",
    "RetryPolicy",
    "Schedule",
    "Start",
    "Target",
    "ValidationException",
    "decode_schedule",
    "due_time",
    "encode_schedule",
    "execution_name",
    "fire_fate",
    "flexible_offset",
    "invocation_id",
    "schedule_arn",
    "scheduled_time_text",
    "with_context_attributes",
]

#: The schedule group a schedule joins when CreateSchedule names none.
DEFAULT_GROUP: Final = "default"

_NAME_PATTERN: Final = "^[0-9a-zA-Z-_.]+$"
_NAME: Final = re.compile(r"[0-9a-zA-Z\-_.]+")
# A Step Functions target: a state machine ARN (a version or alias suffix allowed).
_STATE_MACHINE_ARN: Final = re.compile(r"arn:[a-z-]+:states:[a-z0-9-]*:[0-9]*:stateMachine:\S+")


@final
class ConflictException(StatemillError):
    """EventBridge Scheduler's ``ConflictException`` (HTTP 409): CreateSchedule of a schedule
    that exists (``Schedule <name> already exists.``)."""


@final
class ResourceNotFoundException(StatemillError):
    """EventBridge Scheduler's ``ResourceNotFoundException`` (HTTP 404): no such schedule
    (``Schedule <name> does not exist.``)."""


def _violation(value: object, at: str, constraint: str) -> ValidationException:
    """AWS's API validation message for one field."""
    return ValidationException(
        f"1 validation error detected: Value '{value}' at '{at}' failed to satisfy "
        f"constraint: Member must {constraint}"
    )


def _check_length(value: str, at: str, low: int, high: int) -> None:
    if len(value) < low:
        raise _violation(value, at, f"have length greater than or equal to {low}")
    if len(value) > high:
        raise _violation(value, at, f"have length less than or equal to {high}")


def _check_range(value: int, at: str, low: int, high: int) -> None:
    if value < low:
        raise _violation(value, at, f"have value greater than or equal to {low}")
    if value > high:
        raise _violation(value, at, f"have value less than or equal to {high}")


def _check_enum(value: str, at: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise _violation(value, at, f"satisfy enum value set: [{', '.join(allowed)}]")


def _check_name(value: str, at: str) -> None:
    _check_length(value, at, 1, 64)
    if not _NAME.fullmatch(value):
        raise _violation(value, at, f"satisfy regular expression pattern: {_NAME_PATTERN}")


class FlexibleTimeWindow(
    msgspec.Struct, frozen=True, kw_only=True, rename="pascal", omit_defaults=True
):
    """Scheduler's ``FlexibleTimeWindow``: ``OFF``, or ``FLEXIBLE`` within a window."""

    mode: str
    """``OFF`` or ``FLEXIBLE``."""
    maximum_window_in_minutes: int | None = None
    """1 to 1440; required with ``FLEXIBLE``."""

    def __post_init__(self) -> None:
        _check_enum(self.mode, "flexibleTimeWindow.mode", ("OFF", "FLEXIBLE"))
        window = self.maximum_window_in_minutes
        if window is not None:
            _check_range(window, "flexibleTimeWindow.maximumWindowInMinutes", 1, 1440)
        elif self.mode == "FLEXIBLE":
            raise ValidationException(
                "MaximumWindowInMinutes must be specified when FlexibleTimeWindow Mode is FLEXIBLE."
            )


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True, rename="pascal"):
    """Scheduler's ``RetryPolicy`` (its defaults are GetSchedule's when none is given)."""

    maximum_event_age_in_seconds: int = 86400
    """60 to 86400: how long a fire may wait to be started."""
    maximum_retry_attempts: int = 185
    """0 to 185: how many more times a fire whose start failed is tried."""

    def __post_init__(self) -> None:
        _check_range(
            self.maximum_event_age_in_seconds,
            "target.retryPolicy.maximumEventAgeInSeconds",
            60,
            86400,
        )
        _check_range(self.maximum_retry_attempts, "target.retryPolicy.maximumRetryAttempts", 0, 185)


class Target(msgspec.Struct, frozen=True, kw_only=True, rename="pascal", omit_defaults=True):
    """Scheduler's ``Target``, here always a state machine (a templated StartExecution)."""

    arn: str
    """The state machine's ARN."""
    input: str | None = None
    """The execution input, JSON text (``None``: ``{}``)."""
    retry_policy: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    role_arn: str | None = None
    """Kept for AWS compatibility; not used locally."""

    def __post_init__(self) -> None:
        _check_length(self.arn, "target.arn", 1, 1600)
        if not _STATE_MACHINE_ARN.fullmatch(self.arn):
            raise ValidationException(
                f"Invalid target {self.arn}: the target must be a state machine ARN."
            )
        if self.input is not None:
            _check_length(self.input, "target.input", 1, 262144)


class Schedule(msgspec.Struct, frozen=True, kw_only=True, rename="pascal", omit_defaults=True):
    """A schedule as CreateSchedule takes it and GetSchedule returns it.

    ``CreationDate`` is set by the caller (the Runtime, from its clock): it anchors a ``rate``
    schedule without ``StartDate`` and is the earliest instant any ``cron`` or ``rate`` fire
    may have.
    """

    name: str
    schedule_expression: str
    target: Target
    creation_date: datetime
    flexible_time_window: FlexibleTimeWindow = msgspec.field(
        default_factory=lambda: FlexibleTimeWindow(mode="OFF")
    )
    group_name: str = DEFAULT_GROUP
    schedule_expression_timezone: str = "UTC"
    start_date: datetime | None = None
    end_date: datetime | None = None
    state: str = "ENABLED"
    description: str | None = None
    action_after_completion: str = "NONE"
    """``NONE``, or ``DELETE``: delete the schedule after its last fire."""
    last_modification_date: datetime | None = None

    def __post_init__(self) -> None:
        _check_name(self.name, "name")
        _check_name(self.group_name, "groupName")
        _check_length(self.schedule_expression, "scheduleExpression", 1, 256)
        parse_expression(self.schedule_expression)
        _check_length(self.schedule_expression_timezone, "scheduleExpressionTimezone", 1, 50)
        zone_of(self.schedule_expression_timezone)
        _check_enum(self.state, "state", ("ENABLED", "DISABLED"))
        _check_enum(self.action_after_completion, "actionAfterCompletion", ("NONE", "DELETE"))
        if self.description is not None:
            _check_length(self.description, "description", 0, 512)
        for value, field in (
            (self.creation_date, "CreationDate"),
            (self.start_date, "StartDate"),
            (self.end_date, "EndDate"),
            (self.last_modification_date, "LastModificationDate"),
        ):
            if value is not None and value.utcoffset() is None:
                raise ValidationException(f"{field} must carry a time zone offset: {value}.")
        if (
            self.start_date is not None
            and self.end_date is not None
            and self.end_date <= self.start_date
        ):
            raise ValidationException("The EndDate must be after the StartDate.")

    @property
    def key(self) -> tuple[str, str]:
        """``(GroupName, Name)``: what identifies a schedule."""
        return self.group_name, self.name


def schedule_arn(schedule: Schedule, region: str, account: str) -> str:
    """The schedule's ARN, ``arn:aws:scheduler:<region>:<account>:schedule/<group>/<name>``."""
    return f"arn:aws:scheduler:{region}:{account}:schedule/{schedule.group_name}/{schedule.name}"


_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder(Schedule)


def encode_schedule(schedule: Schedule) -> str:
    """The schedule as JSON text with Scheduler's keys (what the stores keep)."""
    return _encoder.encode(schedule).decode()


def decode_schedule(text: str | bytes) -> Schedule:
    """A schedule from :func:`encode_schedule`'s JSON (or a CreateSchedule request body).

    Raises:
        ValidationException: a field breaks a constraint (``msgspec.ValidationError``, a
            subclass of ``ValueError``, for a field of the wrong type).
    """
    return _decoder.decode(text)


# -- one fire -------------------------------------------------------------------------------


def _stamp(fire_time: datetime) -> str:
    return fire_time.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def execution_name(schedule: Schedule, fire_time: datetime) -> str:
    """The execution name of the fire at ``fire_time``: ``<name>-<hash>-<UTC time>``.

    ``<name>`` is the schedule name with ``.`` as ``_``, cut to 47 characters; ``<hash>`` is 8
    hex digits of SHA-256 over ``group/name`` (so two groups, or two names equal once cut or
    once ``.`` is replaced, never share names); the time is ``YYYYMMDDTHHMMSSZ``. At most 73
    characters, all in ``[0-9A-Za-z_-]``.
    """
    digest = hashlib.sha256(f"{schedule.group_name}/{schedule.name}".encode()).hexdigest()[:8]
    readable = schedule.name.replace(".", "_")[:47]
    return f"{readable}-{digest}-{_stamp(fire_time)}"


def flexible_offset(schedule: Schedule, fire_time: datetime) -> timedelta:
    """How long after ``fire_time`` the fire is invoked: zero with ``FlexibleTimeWindow`` OFF;
    with FLEXIBLE, whole seconds in ``[0, MaximumWindowInMinutes)`` drawn from SHA-256 over
    (group, name, fire time), the same in every process and after every restart."""
    window = schedule.flexible_time_window
    if window.mode != "FLEXIBLE" or not window.maximum_window_in_minutes:
        return timedelta(0)
    seed = f"{schedule.group_name}/{schedule.name}/{_stamp(fire_time)}".encode()
    draw = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big")
    return timedelta(seconds=draw % (window.maximum_window_in_minutes * 60))


def due_time(schedule: Schedule, fire_time: datetime) -> datetime:
    """When the fire at ``fire_time`` is to be invoked (its time plus its flexible offset)."""
    return fire_time + flexible_offset(schedule, fire_time)


class Start(msgspec.Struct, frozen=True, kw_only=True):
    """A fire to start now: StartExecution of ``state_machine_arn`` named ``name``."""

    fire_time: datetime
    due_time: datetime
    name: str
    state_machine_arn: str
    input: str


class Missed(msgspec.Struct, frozen=True, kw_only=True):
    """A fire that must not start any more: record it as missed."""

    fire_time: datetime
    due_time: datetime
    reason: Literal["MaximumEventAgeInSeconds", "MaximumRetryAttempts"]


FireFate = Start | Missed


def fire_fate(
    schedule: Schedule, fire_time: datetime, now: datetime, *, attempts: int = 0
) -> FireFate:
    """What to do, at ``now``, with the fire at ``fire_time`` (Scheduler's RetryPolicy).

    ``attempts`` counts the starts of this fire already tried and failed. The fire starts while
    ``now - due_time <= MaximumEventAgeInSeconds`` and ``attempts <= MaximumRetryAttempts``;
    otherwise it is missed.

    Raises:
        ValueError: the fire is not due yet (``now`` before its :func:`due_time`).
    """
    due = due_time(schedule, fire_time)
    if now < due:
        raise ValueError(f"the fire at {fire_time.isoformat()} is not due before {due.isoformat()}")
    policy = schedule.target.retry_policy
    if now - due > timedelta(seconds=policy.maximum_event_age_in_seconds):
        return Missed(fire_time=fire_time, due_time=due, reason="MaximumEventAgeInSeconds")
    if attempts > policy.maximum_retry_attempts:
        return Missed(fire_time=fire_time, due_time=due, reason="MaximumRetryAttempts")
    return Start(
        fire_time=fire_time,
        due_time=due,
        name=execution_name(schedule, fire_time),
        state_machine_arn=schedule.target.arn,
        input="{}" if schedule.target.input is None else schedule.target.input,
    )


# -- context attributes ---------------------------------------------------------------------

#: Scheduler's context attributes, the keywords it replaces in the payload passed to the target
#: (User Guide, "Adding context attributes in EventBridge Scheduler").
SCHEDULE_ARN_ATTRIBUTE: Final = "<aws.scheduler.schedule-arn>"
SCHEDULED_TIME_ATTRIBUTE: Final = "<aws.scheduler.scheduled-time>"
EXECUTION_ID_ATTRIBUTE: Final = "<aws.scheduler.execution-id>"
ATTEMPT_NUMBER_ATTRIBUTE: Final = "<aws.scheduler.attempt-number>"


def scheduled_time_text(fire_time: datetime) -> str:
    """``<aws.scheduler.scheduled-time>``: the fire's time in UTC to the second, as Scheduler
    writes it (``2022-03-22T18:59:43Z``). The time the schedule specified: a
    FlexibleTimeWindow offset is not added."""
    return fire_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def invocation_id(schedule_arn: str, fire_time: datetime, attempt_number: int) -> str:
    """``<aws.scheduler.execution-id>``: unique to each attempted invocation (schedule, fire,
    attempt), 16 lowercase hexadecimal digits of SHA-256 over the three, like Scheduler's
    ``d32c5kddcf5bb8c3``. Derived, not drawn, so every process and every restart gives one
    attempt of one fire the same id."""
    seed = f"{schedule_arn}#{_stamp(fire_time)}#{attempt_number}".encode()
    return hashlib.sha256(seed).hexdigest()[:16]


def with_context_attributes(fire: Start, *, schedule_arn: str, attempt_number: int) -> Start:
    """The fire with Scheduler's context attributes replaced in its input.

    ``attempt_number`` counts the attempts to start this fire, the first one being 1 (a start
    that failed and is tried again is attempt 2). Each keyword is replaced wherever it appears
    in the input text, as Scheduler replaces it in the payload; the value is written escaped
    for a JSON string (a no-op for these values: none holds a quote or a backslash), so the
    input stays valid JSON.
    """
    text = fire.input
    if "<aws.scheduler." not in text:
        return fire
    values = {
        SCHEDULE_ARN_ATTRIBUTE: schedule_arn,
        SCHEDULED_TIME_ATTRIBUTE: scheduled_time_text(fire.fire_time),
        EXECUTION_ID_ATTRIBUTE: invocation_id(schedule_arn, fire.fire_time, attempt_number),
        ATTEMPT_NUMBER_ATTRIBUTE: str(attempt_number),
    }
    for keyword, value in values.items():
        text = text.replace(keyword, json.dumps(value)[1:-1])
    return msgspec.structs.replace(fire, input=text)
