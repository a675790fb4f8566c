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

__all__ = ["SliceExceeded", "evaluating", "loop_slice", "slice_timeout_ms", "spent"]


class SliceExceeded(BaseException):
    """The decision's JSONata ran past the loop's slice: decide this step again elsewhere.

    A ``BaseException``, so no ``except Exception`` in the core turns it into a state's failure
    on its way out of ``decide``; only the engine catches it.
    """


@final
class _Slice:
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


_SLICE: Final[contextvars.ContextVar[_Slice | None]] = contextvars.ContextVar(
    "statemill_jsonata_slice", default=None
)


@contextlib.contextmanager
def loop_slice(milliseconds: float | None) -> Iterator[None]:
    """Evaluations inside take at most ``milliseconds`` in all (``None``: no slice, each
    evaluation has its full budget)."""
    if milliseconds is None:
        yield
        return
    token = _SLICE.set(_Slice(milliseconds))
    try:
        yield
    finally:
        _SLICE.reset(token)


def slice_timeout_ms(budget_ms: int) -> int:
    """The timeout of an evaluation starting now: ``budget_ms``, or less within a slice.

    Raises:
        SliceExceeded: the slice is already spent.
    """
    current = _SLICE.get()
    if current is None:
        return budget_ms
    left = current.left_now()
    if left <= 0:
        raise SliceExceeded
    # Rounded up and one more: an evaluation that times out has outlasted the slice, so
    # :func:`spent` holds after it.
    return min(budget_ms, math.ceil(left) + 1)


@contextlib.contextmanager
def evaluating() -> Iterator[None]:
    """Count the evaluation inside towards the slice, if one is open."""
    current = _SLICE.get()
    if current is None:
        yield
        return
    if current.depth == 0:
        current.started = time.perf_counter()
    current.depth += 1
    try:
        yield
    finally:
        current.depth -= 1
        if current.depth == 0:
            current.left_ms -= (time.perf_counter() - current.started) * 1000


def spent() -> bool:
    """Whether a slice is open and spent (an evaluation that failed now failed for the slice,
    whatever its message: the engine's timeout, or a nested evaluation's)."""
    current = _SLICE.get()
    return current is not None and current.left_now() <= 0
