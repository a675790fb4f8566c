"""Statemill: an asyncio-native, event-sourced runtime for Amazon States Language state machines.

The public API is what ``__all__`` lists; everything else is internal.

Names are imported on first use (PEP 562 ``__getattr__``), so a command that needs only part of
the package (``statemill validate`` needs the definition loader, not the engine, the stores or
the tools) does not pay for the rest at start-up (issue 16: "A fast start").
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from runtime.api import (
        ActivityDescription,
        ActivityTask,
        ExecutionDescription,
        Runtime,
        StartExecutionOutput,
    )
    from runtime.api_map_runs import MapRunCounts, MapRunDescription, MapRunListItem
    from runtime.core.events import HistoryEvent
    from runtime.core.limits import ExecutionLimits
    from runtime.definition.load import load_definition
    from runtime.engine.clock import Clock, ManualClock, SystemClock
    from runtime.engine.handlers import Handler, HandlerRegistry, TaskContext
    from runtime.errors import (
        ActivityDoesNotExist,
        ConcurrencyConflict,
        ConflictException,
        ExecutionAlreadyExists,
        ExecutionDoesNotExist,
        ExecutionLimitExceeded,
        ExecutionNotRedrivable,
        InternalError,
        InvalidArn,
        InvalidDefinition,
        InvalidExecutionInput,
        InvalidName,
        InvalidToken,
        NondeterminismError,
        PartitionLost,
        ResourceNotFound,
        ServiceQuotaExceededException,
        StateMachineAlreadyExists,
        StateMachineDoesNotExist,
        StateMachineQuarantined,
        StatemillError,
        StoreLocked,
        TaskDoesNotExist,
        TaskFailed,
        TaskTimedOut,
        TooManyTags,
        ValidationException,
    )
    from runtime.store.base import EventStore, ExecutionRecord, StateMachineRecord
    from runtime.store.memory import MemoryStore
    from runtime.store.sqlite import SqliteStore
    from runtime.store.versions import AliasRecord, VersionRecord
    from runtime.tools.aws_history import load_history
    from runtime.tools.replay import CheckResult, Divergence, Step, check, diagnose, replay

#: Public name -> the module that defines it.
_WHERE: Final[dict[str, str]] = {
    "ActivityDescription": "runtime.api",
    "ActivityDoesNotExist": "runtime.errors",
    "ActivityTask": "runtime.api",
    "CheckResult": "runtime.tools.replay",
    "Clock": "runtime.engine.clock",
    "ConcurrencyConflict": "runtime.errors",
    "Divergence": "runtime.tools.replay",
    "EventStore": "runtime.store.base",
    "ExecutionAlreadyExists": "runtime.errors",
    "ExecutionDescription": "runtime.api",
    "ExecutionDoesNotExist": "runtime.errors",
    "ExecutionLimitExceeded": "runtime.errors",
    "ExecutionLimits": "runtime.core.limits",
    "ExecutionNotRedrivable": "runtime.errors",
    "ExecutionRecord": "runtime.store.base",
    "Handler": "runtime.engine.handlers",
    "HandlerRegistry": "runtime.engine.handlers",
    "HistoryEvent": "runtime.core.events",
    "InternalError": "runtime.errors",
    "InvalidArn": "runtime.errors",
    "InvalidDefinition": "runtime.errors",
    "InvalidExecutionInput": "runtime.errors",
    "InvalidName": "runtime.errors",
    "InvalidToken": "runtime.errors",
    "ManualClock": "runtime.engine.clock",
    "MemoryStore": "runtime.store.memory",
    "NondeterminismError": "runtime.errors",
    "Runtime": "runtime.api",
    "SqliteStore": "runtime.store.sqlite",
    "StartExecutionOutput": "runtime.api",
    "StateMachineAlreadyExists": "runtime.errors",
    "StateMachineDoesNotExist": "runtime.errors",
    "StateMachineQuarantined": "runtime.errors",
    "StateMachineRecord": "runtime.store.base",
    "StatemillError": "runtime.errors",
    "StoreLocked": "runtime.errors",
    "PartitionLost": "runtime.errors",
    "ResourceNotFound": "runtime.errors",
    "ConflictException": "runtime.errors",
    "ServiceQuotaExceededException": "runtime.errors",
    "TooManyTags": "runtime.errors",
    "ValidationException": "runtime.errors",
    "AliasRecord": "runtime.store.versions",
    "VersionRecord": "runtime.store.versions",
    "MapRunCounts": "runtime.api_map_runs",
    "MapRunDescription": "runtime.api_map_runs",
    "MapRunListItem": "runtime.api_map_runs",
    "Step": "runtime.tools.replay",
    "SystemClock": "runtime.engine.clock",
    "TaskContext": "runtime.engine.handlers",
    "TaskDoesNotExist": "runtime.errors",
    "TaskFailed": "runtime.errors",
    "TaskTimedOut": "runtime.errors",
    "check": "runtime.tools.replay",
    "diagnose": "runtime.tools.replay",
    "load_definition": "runtime.definition.load",
    "load_history": "runtime.tools.aws_history",
    "replay": "runtime.tools.replay",
}


def __getattr__(name: str) -> object:
    """Import a public name on first use and keep it (later lookups do not come here)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "ActivityDescription",
    "ActivityDoesNotExist",
    "ActivityTask",
    "AliasRecord",
    "CheckResult",
    "Clock",
    "ConcurrencyConflict",
    "ConflictException",
    "Divergence",
    "EventStore",
    "ExecutionAlreadyExists",
    "ExecutionDescription",
    "ExecutionDoesNotExist",
    "ExecutionLimitExceeded",
    "ExecutionLimits",
    "ExecutionNotRedrivable",
    "ExecutionRecord",
    "Handler",
    "HandlerRegistry",
    "HistoryEvent",
    "InternalError",
    "InvalidArn",
    "InvalidDefinition",
    "InvalidExecutionInput",
    "InvalidName",
    "InvalidToken",
    "ManualClock",
    "MapRunCounts",
    "MapRunDescription",
    "MapRunListItem",
    "MemoryStore",
    "NondeterminismError",
    "PartitionLost",
    "ResourceNotFound",
    "Runtime",
    "ServiceQuotaExceededException",
    "SqliteStore",
    "StartExecutionOutput",
    "StateMachineAlreadyExists",
    "StateMachineDoesNotExist",
    "StateMachineQuarantined",
    "StateMachineRecord",
    "StatemillError",
    "Step",
    "StoreLocked",
    "SystemClock",
    "TaskContext",
    "TaskDoesNotExist",
    "TaskFailed",
    "TaskTimedOut",
    "TooManyTags",
    "ValidationException",
    "VersionRecord",
    "check",
    "diagnose",
    "load_definition",
    "load_history",
    "replay",
]
