"""Statemill: an asyncio-native, event-sourced runtime for Amazon States Language state machines.

The public API is what ``__all__`` lists; everything else is internal.
"""

from __future__ import annotations

from runtime.api import (
    ActivityDescription,
    ActivityTask,
    ExecutionDescription,
    Runtime,
    StartExecutionOutput,
)
from runtime.core.events import HistoryEvent
from runtime.core.limits import ExecutionLimits
from runtime.definition.load import load_definition
from runtime.engine.clock import Clock, ManualClock, SystemClock
from runtime.engine.handlers import Handler, HandlerRegistry, TaskContext
from runtime.errors import (
    ActivityDoesNotExist,
    ConcurrencyConflict,
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
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
    StateMachineQuarantined,
    StatemillError,
    TaskDoesNotExist,
    TaskFailed,
    TaskTimedOut,
)
from runtime.store.base import EventStore, ExecutionRecord, StateMachineRecord
from runtime.store.memory import MemoryStore
from runtime.store.sqlite import SqliteStore
from runtime.tools.aws_history import load_history
from runtime.tools.replay import CheckResult, Divergence, Step, check, diagnose, replay

__all__ = [
    "ActivityDescription",
    "ActivityDoesNotExist",
    "ActivityTask",
    "CheckResult",
    "Clock",
    "ConcurrencyConflict",
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
    "MemoryStore",
    "NondeterminismError",
    "Runtime",
    "SqliteStore",
    "StartExecutionOutput",
    "StateMachineAlreadyExists",
    "StateMachineDoesNotExist",
    "StateMachineQuarantined",
    "StateMachineRecord",
    "StatemillError",
    "Step",
    "SystemClock",
    "TaskContext",
    "TaskDoesNotExist",
    "TaskFailed",
    "TaskTimedOut",
    "check",
    "diagnose",
    "load_definition",
    "load_history",
    "replay",
]
