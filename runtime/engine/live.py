"""An execution held in memory: its folded state and its scheduling bookkeeping.

Every part of the engine reads and writes these fields; none of them does I/O. Imports the core's
state and effects (and its JSON encoder), the definition model and the store's record only.
"""

from __future__ import annotations

import asyncio
import collections
from typing import final

import msgspec

from runtime.core.decide import dumps
from runtime.core.effects import Incoming
from runtime.core.state import ExecutionState
from runtime.definition.model import StateMachine
from runtime.store.base import ExecutionRecord


@final
class Live:
    """An execution held in memory: its folded state and its scheduling bookkeeping."""

    __slots__ = (
        "answered",
        "awaited",
        "committing",
        "cut_after",
        "handed",
        "inbox",
        "machine",
        "queued",
        "record",
        "running",
        "seq",
        "state",
        "timer_at",
    )

    def __init__(self, record: ExecutionRecord, machine: StateMachine, state: ExecutionState):
        self.record = record
        self.machine = machine
        self.state = state
        self.seq = state.last_event_id
        self.inbox: collections.deque[Incoming] = collections.deque()
        self.queued = False
        self.committing = False
        self.timer_at: float | None = None
        self.cut_after = 0.0
        """Wall-clock seconds the last decision took when it stopped at its event budget
        (``Decision.more``); 0 otherwise."""
        self.running: dict[int, asyncio.Task[None]] = {}
        """Scheduled id -> the cancel scope of its handler call in flight."""
        self.handed: set[str] = set()
        """Activity task tokens handed to a worker (a task is handed out once)."""
        self.answered: set[str] = set()
        """Task tokens answered but maybe not applied yet (a second answer is refused)."""
        self.awaited: set[int] = set()
        """Scheduled ids of Map Run iterations whose child execution runs in this engine: its
        end reports the outcome (no task waits for it), so they are owed like ``running``."""

    def final_record(self) -> ExecutionRecord:
        """The record of this execution as its terminal state says it ended."""
        state = self.state
        return msgspec.structs.replace(
            self.record,
            status=state.status,
            stop_date=state.stop_time,
            output=dumps(state.output) if state.status == "SUCCEEDED" else None,
            error=state.error,
            cause=state.cause,
        )
