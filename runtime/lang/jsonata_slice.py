"""The event loop's slice: how long the JSONata of one decision may hold the event loop.

JSONata evaluations run inside ``decide``, on the event loop, and the engine (``jsonatapy``)
holds the GIL while it evaluates, so no other execution progresses meanwhile (measured: a
thread evaluating beside the loop kept a 10-Pass canary's p99 at 568 ms; its compiled
expressions cannot even be used from another thread). An evaluation's own budget
(:data:`runtime.lang.jsonata_engine.EVALUATION_TIMEOUT_MS`, 500 ms) is set for what real
expressions need; the slice is the far shorter time one decision may spend evaluating JSONata
on the loop, all its evaluations together (the rest of the decision is not counted: an inline
Map of 1,000 cheap iterations stays on the loop). The engine opens a slice around each decision
(:func:`loop_slice`); every evaluation inside it runs with what is left of the slice as its
timeout, and once the slice is spent the evaluation raises :class:`SliceExceeded` instead of an
evaluation error. The engine then decides the same step again in a worker process with the
full budget (issue 11: ``runtime.engine.slowlane``): the outcome is the one the loop would
have reached, and the loop was held for at most the slice.

Outside a slice (tests, TestState, the replayer, the worker process) nothing changes.

Imports only the standard library.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import time
from collections.abc import Iterator
from typing import Final, final

__all__ = [
    "Slice",
    "SliceExceeded",
    "close_slice",
    "current_slice",
    "loop_slice",
    "open_slice",
    "spent",
]


class SliceExceeded(BaseException):
    """The decision's JSONata ran past the loop's slice: decide this step again elsewhere.

    A ``BaseException``, so no ``except Exception`` in the core turns it into a state's failure
    on its way out of ``decide``; only the engine catches it.
    """


@final
class Slice:
    """What is left of one decision's slice. Time is counted from the start of the outermost
    evaluation to its end (a guarded function's nested evaluation is inside it)."""

    __slots__ = ("depth", "left_ms", "started")

    def __init__(self, milliseconds: float) -> None:
        self.left_ms = milliseconds
        self.depth = 0
        self.started = 0.0

    def left_now(self) -> float:
        if self.depth == 0:
            return self.left_ms
        return self.left_ms - (time.perf_counter() - self.started) * 1000

    def enter(self, budget_ms: int) -> int:
        """An evaluation starts: its timeout (``budget_ms``, or what is left of the slice,
        rounded up and one more, so that one that times out has outlasted the slice and
        :meth:`spent` holds after it).

        Raises:
            SliceExceeded: the slice is already spent.
        """
        left = self.left_now()
        if left <= 0:
            raise SliceExceeded
        if self.depth == 0:
            self.started = time.perf_counter()
        self.depth += 1
        return min(budget_ms, math.ceil(left) + 1)

    def leave(self) -> None:
        """The evaluation :meth:`enter` began has ended (however)."""
        self.depth -= 1
        if self.depth == 0:
            self.left_ms -= (time.perf_counter() - self.started) * 1000

    def spent(self) -> bool:
        return self.left_now() <= 0


_SLICE: Final[contextvars.ContextVar[Slice | None]] = contextvars.ContextVar(
    "statemill_jsonata_slice", default=None
)

current_slice: Final = _SLICE.get
"""The slice open in this context, or ``None`` (every evaluation has its full budget)."""


def open_slice(milliseconds: float | None) -> contextvars.Token[Slice | None] | None:
    """Open a slice of ``milliseconds`` for the evaluations that follow in this context (a
    decision); ``None``: none. Close it with :func:`close_slice` (a function pair rather than
    a context manager: the engine opens one per decision, where a generator-based one cost
    microseconds)."""
    if milliseconds is None:
        return None
    return _SLICE.set(Slice(milliseconds))


def close_slice(token: contextvars.Token[Slice | None] | None) -> None:
    """Close the slice :func:`open_slice` opened."""
    if token is not None:
        _SLICE.reset(token)


@contextlib.contextmanager
def loop_slice(milliseconds: float | None) -> Iterator[None]:
    """:func:`open_slice` and :func:`close_slice` around a block (for tests and tools)."""
    token = open_slice(milliseconds)
    try:
        yield
    finally:
        close_slice(token)


def spent() -> bool:
    """Whether a slice is open and spent."""
    current = _SLICE.get()
    return current is not None and current.spent()
