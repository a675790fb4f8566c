"""Public test helpers: a virtual clock and an in-memory runtime whose Waits take no time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runtime.api import Runtime
from runtime.core.events import HistoryEvent
from runtime.engine.clock import ManualClock
from runtime.engine.handlers import Handler, HandlerRegistry

__all__ = ["ManualClock", "history_types", "virtual_runtime"]


def virtual_runtime(
    handlers: HandlerRegistry | Mapping[str, Handler] | None = None, **kwargs: Any
) -> Runtime:
    """A ``Runtime`` on the memory store and a ``ManualClock`` that jumps when idle."""
    return Runtime("memory", handlers=handlers, virtual_time=True, **kwargs)


def history_types(events: list[HistoryEvent]) -> list[str]:
    """The event types of a history, in order (handy in assertions)."""
    return [event.type for event in events]
