"""Event stores: the ``EventStore`` port and its implementations (memory, SQLite, PostgreSQL).

Every store passes the one contract suite in ``tests/store``. The names below are imported on
first use, so that importing one store module (``runtime.store.base`` for the records, say)
costs only what it needs: a command that reads a SQLite file does not import the memory store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
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

#: Public name -> the module that defines it.
_WHERE: Final = {
    "ActivityRecord": "runtime.store.base",
    "Append": "runtime.store.base",
    "EventStore": "runtime.store.base",
    "ExecutionRecord": "runtime.store.base",
    "StateMachineRecord": "runtime.store.base",
    "Timer": "runtime.store.base",
    "ExpressStore": "runtime.store.express",
    "MemoryStore": "runtime.store.memory",
    "SqliteStore": "runtime.store.sqlite",
}


def __getattr__(name: str) -> object:
    """Import a public name on first use and keep it (later lookups do not come here)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
