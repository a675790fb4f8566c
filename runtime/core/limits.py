"""The bounds an execution runs within, as AWS Step Functions sets them (issue 11).

``ExecutionLimits`` is handed to ``decide`` by the shell (the runtime's configuration); the core
enforces what it can see in one execution's state (history length). Limits the shell enforces
across executions (open executions, nesting depth of child executions) live beside them, so one
object says how bounded a runtime is. Imports only msgspec.
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["DEFAULT_LIMITS", "ExecutionLimits"]


class ExecutionLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Quotas of one runtime; ``None`` lifts a bound (for users who want longer executions)."""

    max_history_events: int | None = 25_000
    """AWS: "Maximum execution history size: 25,000 events" per execution."""
    max_open_executions: int | None = 1_000_000
    """AWS: open executions per account and Region (StartExecution: ExecutionLimitExceeded)."""
    max_nesting_depth: int | None = 100
    """Child executions started by ``states:startExecution`` nested deeper than this are refused
    (a machine that starts itself would otherwise multiply without end)."""


DEFAULT_LIMITS: Final = ExecutionLimits()
