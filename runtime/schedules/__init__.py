"""Schedules (issue 14): EventBridge Scheduler's schedules, pure, for the engine to fire.

* :mod:`runtime.schedules.expressions` parses ``cron(...)``, ``rate(...)`` and ``at(...)`` and
  computes fire times in a ``ScheduleExpressionTimezone`` (daylight-saving rules included).
* :mod:`runtime.schedules.model` is the Schedule itself (a frozen Struct with Scheduler's fields,
  validated in Scheduler's words) and the pure rule of one fire: its execution name, its
  FlexibleTimeWindow offset, its fate when it is late, and its input with Scheduler's context
  attributes replaced.

Nothing here reads a clock, a random source or the environment: the engine passes ``now`` in.
Imports only the standard library, msgspec and ``runtime.errors``.
"""

from __future__ import annotations

from runtime.schedules.expressions import (
    At,
    Cron,
    Expression,
    Rate,
    ValidationException,
    fire_times,
    next_fire,
    parse_expression,
)
from runtime.schedules.model import (
    ConflictException,
    FireFate,
    FlexibleTimeWindow,
    Missed,
    ResourceNotFoundException,
    RetryPolicy,
    Schedule,
    Start,
    Target,
    decode_schedule,
    due_time,
    encode_schedule,
    execution_name,
    fire_fate,
    flexible_offset,
    invocation_id,
    schedule_arn,
    with_context_attributes,
)

__all__ = [
    "At",
    "ConflictException",
    "Cron",
    "Expression",
    "FireFate",
    "FlexibleTimeWindow",
    "Missed",
    "Rate",
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
    "fire_times",
    "flexible_offset",
    "invocation_id",
    "next_fire",
    "parse_expression",
    "schedule_arn",
    "with_context_attributes",
]
