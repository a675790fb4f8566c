"""Schedules: CreateSchedule, GetSchedule, ListSchedules, UpdateSchedule, DeleteSchedule.

EventBridge Scheduler's verbs (issue 14) over the store's ``ScheduleStore`` port, with its
names: a schedule is ``Name`` in ``GroupName`` (default ``default``), its ARN
``arn:aws:scheduler:<region>:<account>:schedule/<group>/<name>``; its fields are
:class:`runtime.schedules.Schedule`'s, validated in Scheduler's words
(``ValidationException``); a second CreateSchedule of one name is a ``ConflictException``, a
Get/Update/Delete of an unknown one a ``ResourceNotFoundException``.

The schedules fire while a runtime is open on the store: :meth:`ScheduleVerbs.serve_schedules`
runs the firing loop (``runtime.engine.schedules``) in the runtime's task group. In a cluster
on PostgreSQL a schedule fires on the member that holds its partition (``partition_of`` of the
schedule's ARN), so that members do not race for it (the fire mark's compare-and-set and the
execution name derived from the fire keep a race harmless anyway).

Imports ``runtime.schedules``, the engine's runner and the store's protocol.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, cast

import msgspec

from runtime.api_base import RuntimeBase
from runtime.engine.schedules import ScheduleRunner
from runtime.schedules import (
    ConflictException,
    FlexibleTimeWindow,
    ResourceNotFoundException,
    Schedule,
    Start,
    Target,
    ValidationException,
    decode_schedule,
    encode_schedule,
    schedule_arn,
)
from runtime.schedules.model import DEFAULT_GROUP
from runtime.store.base import ScheduleRecord, ScheduleStore
from runtime.store.partitions import partition_of

if TYPE_CHECKING:
    from runtime.api_types import StartExecutionOutput

__all__ = [
    "ResourceNotFoundException",
    "ScheduleDescription",
    "ScheduleVerbs",
    "build_schedule",
    "delete_stored_schedule",
    "describe_record",
    "list_stored_schedules",
    "put_new_schedule",
]

#: How often (wall-clock seconds) the firing loop reads a durable store again for schedules
#: that other processes (the CLI, another member) created or changed.
SCHEDULE_POLL_SECONDS: Final = 1.0

DateLike = datetime | float | None


class ScheduleDescription(msgspec.Struct, frozen=True, kw_only=True):
    """GetSchedule's answer: the schedule, its ARN, and (not in AWS's answer) its fire mark."""

    arn: str
    schedule: Schedule
    last_fire: datetime | None = None
    """The time of the latest fire handled (started or recorded as missed), if any."""
    missed_fires: int = 0
    """How many fires were recorded as missed (``RetryPolicy``: too old, or out of attempts)."""

    @property
    def name(self) -> str:
        return self.schedule.name

    @property
    def group_name(self) -> str:
        return self.schedule.group_name

    @property
    def state(self) -> str:
        return self.schedule.state

    def to_aws(self) -> dict[str, Any]:
        """GetSchedule's JSON (``Arn`` plus the schedule's fields, dates as ISO 8601)."""
        body = cast("dict[str, Any]", msgspec.to_builtins(self.schedule))
        return {"Arn": self.arn, **body}


def _date(value: DateLike, field: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationException(f"{field} must be a datetime or epoch seconds: {value!r}.")
    return datetime.fromtimestamp(value, UTC)


def _target(target: Target | Mapping[str, Any]) -> Target:
    """A Target from Scheduler's JSON shape (``Arn``, ``Input``, ``RetryPolicy``, ``RoleArn``);
    an ``Input`` that is not text is encoded as JSON."""
    if isinstance(target, Target):
        return target
    body = dict(target)
    if "Input" in body and not isinstance(body["Input"], str):
        body["Input"] = json.dumps(body["Input"], separators=(",", ":"))
    try:
        return msgspec.convert(body, Target)
    except msgspec.ValidationError as exc:
        raise ValidationException(f"Invalid Target: {exc}.") from exc


def _window(window: FlexibleTimeWindow | Mapping[str, Any] | None) -> FlexibleTimeWindow:
    if window is None:
        return FlexibleTimeWindow(mode="OFF")
    if isinstance(window, FlexibleTimeWindow):
        return window
    try:
        return msgspec.convert(dict(window), FlexibleTimeWindow)
    except msgspec.ValidationError as exc:
        raise ValidationException(f"Invalid FlexibleTimeWindow: {exc}.") from exc


class ScheduleVerbs(RuntimeBase):
    """The schedule verbs of ``Runtime`` and its firing loop."""

    _schedule_runner: ScheduleRunner | None = None
    """The firing loop while the runtime is open."""

    if TYPE_CHECKING:

        async def start_execution(
            self, state_machine_arn: str, input: Any = None, *, name: str | None = None
        ) -> StartExecutionOutput: ...

    # -- the store's port -------------------------------------------------------------------

    @property
    def _schedules(self) -> ScheduleStore:
        store = self.store
        if not hasattr(store, "advance_schedule_mark"):
            raise RuntimeError(f"{type(store).__name__} does not keep schedules")
        return cast("ScheduleStore", store)

    def _schedule_arn(self, name: str, group_name: str) -> str:
        return f"arn:aws:scheduler:{self.region}:{self.account}:schedule/{group_name}/{name}"

    def _schedules_changed(self) -> None:
        runner = self._schedule_runner
        if runner is not None:
            runner.changed()

    # -- verbs ------------------------------------------------------------------------------

    async def create_schedule(
        self,
        name: str,
        schedule_expression: str,
        target: Target | Mapping[str, Any],
        *,
        group_name: str = DEFAULT_GROUP,
        schedule_expression_timezone: str = "UTC",
        flexible_time_window: FlexibleTimeWindow | Mapping[str, Any] | None = None,
        state: str = "ENABLED",
        start_date: DateLike = None,
        end_date: DateLike = None,
        description: str | None = None,
        action_after_completion: str = "NONE",
    ) -> str:
        """Create a schedule (CreateSchedule); returns its ARN (``ScheduleArn``).

        ``target`` is Scheduler's ``Target`` (``{"Arn": state machine ARN, "Input": JSON
        text, "RetryPolicy": {...}}``; an ``Input`` that is not text is encoded as JSON).
        ``flexible_time_window`` defaults to ``{"Mode": "OFF"}``; dates are aware datetimes
        or epoch seconds. The state machine is not looked up: a fire whose target is missing
        fails to start and is retried, then recorded as missed (``RetryPolicy``).

        Raises:
            ValidationException: a field breaks a constraint, or the expression is invalid
                (``Invalid Schedule Expression <expression>.``).
            ConflictException: a schedule of that name exists in the group.
        """
        now = datetime.fromtimestamp(self.clock.now(), UTC)
        schedule = build_schedule(
            name,
            schedule_expression,
            target,
            group_name=group_name,
            schedule_expression_timezone=schedule_expression_timezone,
            flexible_time_window=flexible_time_window,
            state=state,
            start_date=start_date,
            end_date=end_date,
            description=description,
            action_after_completion=action_after_completion,
            creation_date=now,
            last_modification_date=now,
        )
        arn = await put_new_schedule(self._schedules, schedule, self.region, self.account)
        self._schedules_changed()
        return arn

    async def update_schedule(
        self,
        name: str,
        schedule_expression: str,
        target: Target | Mapping[str, Any],
        *,
        group_name: str = DEFAULT_GROUP,
        schedule_expression_timezone: str = "UTC",
        flexible_time_window: FlexibleTimeWindow | Mapping[str, Any] | None = None,
        state: str = "ENABLED",
        start_date: DateLike = None,
        end_date: DateLike = None,
        description: str | None = None,
        action_after_completion: str = "NONE",
    ) -> str:
        """Replace a schedule's fields (UpdateSchedule: every field is given again; the ones
        left out take their defaults). Its fires already handled stay handled. Returns the ARN.

        Raises:
            ValidationException, ResourceNotFoundException.
        """
        found = await self._schedule_record(name, group_name)
        created = decode_schedule(found.schedule).creation_date
        schedule = build_schedule(
            name,
            schedule_expression,
            target,
            group_name=group_name,
            schedule_expression_timezone=schedule_expression_timezone,
            flexible_time_window=flexible_time_window,
            state=state,
            start_date=start_date,
            end_date=end_date,
            description=description,
            action_after_completion=action_after_completion,
            creation_date=created,
            last_modification_date=datetime.fromtimestamp(self.clock.now(), UTC),
        )
        rec = msgspec.structs.replace(found, schedule=encode_schedule(schedule))
        await self._schedules.put_schedule(rec)
        self._schedules_changed()
        return found.arn

    async def _schedule_record(self, name: str, group_name: str) -> ScheduleRecord:
        found = await self._schedules.get_schedule(self._schedule_arn(name, group_name))
        if found is None:
            raise ResourceNotFoundException(f"Schedule {name} does not exist.")
        return found

    async def get_schedule(
        self, name: str, *, group_name: str = DEFAULT_GROUP
    ) -> ScheduleDescription:
        """The schedule (GetSchedule). Raises ResourceNotFoundException."""
        return describe_record(await self._schedule_record(name, group_name))

    async def list_schedules(
        self,
        *,
        group_name: str | None = None,
        name_prefix: str | None = None,
        state: str | None = None,
    ) -> list[ScheduleDescription]:
        """The schedules, by group then name (ListSchedules, with its filters)."""
        return await list_stored_schedules(
            self._schedules, group_name=group_name, name_prefix=name_prefix, state=state
        )

    async def delete_schedule(self, name: str, *, group_name: str = DEFAULT_GROUP) -> None:
        """Delete a schedule (DeleteSchedule): no more fires. Raises ResourceNotFoundException."""
        arn = self._schedule_arn(name, group_name)
        await delete_stored_schedule(self._schedules, arn, name)
        self._schedules_changed()

    # -- firing -----------------------------------------------------------------------------

    async def serve_schedules(self) -> None:
        """Fire the stored schedules until cancelled (the runtime runs it while open)."""
        store = self.store
        if not hasattr(store, "advance_schedule_mark"):
            return  # a store without the ScheduleStore port: nothing to fire
        runner = ScheduleRunner(
            cast("ScheduleStore", store),
            self,
            self.clock,
            self.engine.idle.add,
            poll_seconds=SCHEDULE_POLL_SECONDS if store.durable else None,
        )
        self._schedule_runner = runner
        try:
            await runner.run()
        finally:
            self._schedule_runner = None

    def fires_here(self, schedule_arn: str) -> bool:
        """Whether this runtime fires the schedule: always, but in a cluster only on the
        member holding the schedule's partition."""
        cluster = self._cluster
        return cluster is None or cluster.member.owns_partition(partition_of(schedule_arn))

    async def start_fire(self, fire: Start) -> None:
        """StartExecution for one fire, named after it (``ExecutionAlreadyExists``, or the
        running execution returned, when it was started before)."""
        value = msgspec.json.decode(fire.input)
        await self.start_execution(fire.state_machine_arn, value, name=fire.name)


# -- over a store, without a runtime (the CLI writes the store a runtime fires) ------------


async def put_new_schedule(
    store: ScheduleStore, schedule: Schedule, region: str, account: str
) -> str:
    """Store a new schedule (CreateSchedule); its ARN.

    Raises:
        ConflictException: a schedule of that name exists in the group.
    """
    arn = schedule_arn(schedule, region, account)
    rec = ScheduleRecord(
        arn=arn,
        group_name=schedule.group_name,
        name=schedule.name,
        schedule=encode_schedule(schedule),
        creation_date=schedule.creation_date.timestamp(),
    )
    if not await store.put_schedule(rec, if_absent=True):
        raise ConflictException(f"Schedule {schedule.name} already exists.")
    return arn


async def list_stored_schedules(
    store: ScheduleStore,
    *,
    group_name: str | None = None,
    name_prefix: str | None = None,
    state: str | None = None,
) -> list[ScheduleDescription]:
    """The stored schedules, by group then name (ListSchedules' filters)."""
    found = [describe_record(r) for r in await store.list_schedules(group_name)]
    return [
        d
        for d in found
        if (name_prefix is None or d.name.startswith(name_prefix))
        and (state is None or d.state == state)
    ]


async def delete_stored_schedule(store: ScheduleStore, arn: str, name: str) -> None:
    """DeleteSchedule. Raises ResourceNotFoundException."""
    if not await store.delete_schedule(arn):
        raise ResourceNotFoundException(f"Schedule {name} does not exist.")


def build_schedule(
    name: str,
    schedule_expression: str,
    target: Target | Mapping[str, Any],
    *,
    group_name: str = DEFAULT_GROUP,
    schedule_expression_timezone: str = "UTC",
    flexible_time_window: FlexibleTimeWindow | Mapping[str, Any] | None = None,
    state: str = "ENABLED",
    start_date: DateLike = None,
    end_date: DateLike = None,
    description: str | None = None,
    action_after_completion: str = "NONE",
    creation_date: datetime,
    last_modification_date: datetime | None = None,
) -> Schedule:
    """A Schedule from CreateSchedule's arguments (see ``ScheduleVerbs.create_schedule``).

    Raises:
        ValidationException: a field breaks a constraint.
    """
    return Schedule(
        name=name,
        group_name=group_name,
        schedule_expression=schedule_expression,
        schedule_expression_timezone=schedule_expression_timezone,
        target=_target(target),
        flexible_time_window=_window(flexible_time_window),
        state=state,
        start_date=_date(start_date, "StartDate"),
        end_date=_date(end_date, "EndDate"),
        description=description,
        action_after_completion=action_after_completion,
        creation_date=creation_date,
        last_modification_date=last_modification_date,
    )


def describe_record(rec: ScheduleRecord) -> ScheduleDescription:
    """GetSchedule's answer for a stored schedule."""
    mark = rec.fire_mark
    return ScheduleDescription(
        arn=rec.arn,
        schedule=decode_schedule(rec.schedule),
        last_fire=None if mark is None else datetime.fromtimestamp(mark, UTC),
        missed_fires=rec.missed_fires,
    )
