"""The bounds an execution runs within, as AWS Step Functions sets them (issue 11).

``ExecutionLimits`` is handed to ``decide`` by the shell (the runtime's configuration); the core
enforces what it can see in one execution's state (history length, duration). Limits the shell
enforces across executions (open executions, nesting depth of child executions) live beside them,
so one object says how bounded a runtime is. The constants below bound the numbers an input
chooses (a ``SecondsPath``, a ``MaxConcurrencyPath``...), so none reaches float or timer
arithmetic unchecked; they are defined with the compiled values that check them
(:mod:`runtime.definition.values`). Imports only msgspec and that module.
"""

from __future__ import annotations

from typing import Final

import msgspec

from runtime.definition.values import MAX_INTEGER, MAX_LONG, MAX_SECONDS

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_EXECUTION_SECONDS",
    "MAX_INTEGER",
    "MAX_LONG",
    "MAX_SECONDS",
    "ExecutionLimits",
]

MAX_EXECUTION_SECONDS: Final = 365 * 24 * 3600
"""AWS: "Maximum execution time: 1 year" (Standard workflows); past it the execution times out."""


class ExecutionLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Quotas of one runtime; ``None`` lifts a bound (for users who want longer executions)."""

    max_history_events: int | None = 25_000
    """AWS: "Maximum execution history size: 25,000 events" per execution."""
    max_open_executions: int | None = 1_000_000
    """AWS: open executions per account and Region (StartExecution: ExecutionLimitExceeded)."""
    max_nesting_depth: int | None = 100
    """Child executions started by ``states:startExecution`` nested deeper than this are refused
    (a machine that starts itself would otherwise multiply without end)."""
    max_execution_seconds: float | None = MAX_EXECUTION_SECONDS
    """AWS: "Maximum execution time: 1 year". No timer is armed past it (a ``Wait`` of 1e18 s
    wakes the execution then, and it times out); checked whenever the execution is decided."""
    max_map_run_input_bytes: int | None = 64 * 1024 * 1024
    """The inputs (JSON text) of the Map Run children one runtime has started and not seen end
    hold at most this many bytes together; further starts wait for children to end (one
    larger than the bound starts alone). The core holds a Map Run to it too: no further
    iteration starts while the inputs of its children in flight reach it (each waiting
    iteration kept its input in the parent's state). Not an AWS quota: AWS runs 10,000
    children of up to 256 KiB each at once, 2.5 GiB of input before any is decoded;
    ``MaxConcurrency`` still applies within it."""
    evaluation_slice_ms: float | None = 50.0
    """How long the JSONata of one decision may hold the event loop. A step whose expressions
    take longer is decided again in the slow lane, a worker process, with each evaluation's
    full budget (500 ms): the outcome is the same, and the loop (every other execution) waited
    at most this long. Not an AWS quota. ``None``: every evaluation runs on the loop."""
    slow_lane_memory_bytes: int | None = 1024**3
    """The resident memory the slow lane's worker may gain while it decides one step: past it
    the worker is killed (an expression that allocates without end), and that execution fails
    with ``States.Runtime``, never the runtime. ``None``: not watched."""


DEFAULT_LIMITS: Final = ExecutionLimits()
