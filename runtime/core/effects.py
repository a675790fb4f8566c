"""What flows into and out of ``decide``: incoming facts and the effects the shell must run.

Incoming facts carry everything non-deterministic (the clock reading ``now`` and a random
``seed``), so ``decide`` stays a pure function. Effects are instructions, run by the shell only
after the decision's events are durable ("append before acting").

Imports only the standard library, msgspec and ``core.events``.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from runtime.core.events import HistoryEvent

JSON = Any


class Wake(msgspec.Struct, frozen=True, kw_only=True):
    """Advance whatever can advance at ``now`` (start, timers due, ...)."""

    now: float
    seed: int = 0


class TaskResult(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one Task attempt, identified by its frame and scheduled event id."""

    now: float
    frame: str
    scheduled_id: int
    outcome: Literal["succeeded", "failed", "timed_out"]
    output: JSON = None
    error: str | None = None
    cause: str | None = None
    seed: int = 0


class StopRequested(msgspec.Struct, frozen=True, kw_only=True):
    """An operator asked to stop the execution (StopExecution)."""

    now: float
    error: str | None = None
    cause: str | None = None
    seed: int = 0


Incoming = Wake | TaskResult | StopRequested


class RunTask(msgspec.Struct, frozen=True, kw_only=True):
    """Call the handler for a Task attempt and report a ``TaskResult``."""

    frame: str
    scheduled_id: int
    state_name: str
    resource: str
    handler_name: str
    input: JSON
    attempt: int
    timeout_seconds: float | None = None
    heartbeat_seconds: float | None = None
    lambda_invoke: bool = False
    """True for ``arn:aws:states:::lambda:invoke``: wrap the result as AWS does."""
    lambda_function: bool = False
    """True for a Lambda resource: format failures as AWS Lambda's Python runtime does."""


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """The result of one ``decide`` call."""

    events: tuple[HistoryEvent, ...] = ()
    tasks: tuple[RunTask, ...] = ()
    wake_at: float | None = None
    """When ``decide`` wants a ``Wake`` next (earliest timer), or None."""
    more: bool = False
    """The decision stopped at its event budget: call ``decide`` again with a ``Wake`` now."""
