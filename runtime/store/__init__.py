"""Event stores: the ``EventStore`` port and its implementations (memory, sqlite).

Every store passes the one contract suite in ``tests/store``.
"""

from __future__ import annotations

from runtime.store.base import (
    ActivityRecord,
    Append,
    EventStore,
    ExecutionRecord,
    StateMachineRecord,
    Timer,
)
from runtime.store.express import ExpressStore
from runtime.store.memory import MemoryStore
from runtime.store.sqlite import SqliteStore

__all__ = [
    "ActivityRecord",
    "Append",
    "EventStore",
    "ExecutionRecord",
    "ExpressStore",
    "MemoryStore",
    "SqliteStore",
    "StateMachineRecord",
    "Timer",
]
