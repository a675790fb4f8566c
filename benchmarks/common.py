"""What every scenario shares: its description, a progress bar, clocks, memory and statistics.

A scenario is data plus one coroutine: ``Scenario(name, quick=..., full=..., metrics=...,
run=...)``. ``run(params, progress)`` measures once and returns a ``Measured`` (numbers, facts
about the run, notes); the suite repeats it, takes medians, compares with baselines and checks
targets. Sizes are parameters so that ``--quick``, full and custom runs share one code path.

Never hard-code a result: everything a ``Measured`` holds was measured in that run.

Imports only the standard library and the public ``runtime`` API.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TextIO, TypeVar, final

from runtime import EventStore, ExecutionLimits, MemoryStore, SqliteStore

#: Scale scenarios measure past AWS's quotas on purpose (a 10,000-item inline Map writes ~70,000
#: events; ``parked`` holds millions of open executions): every bound lifted.
UNBOUNDED: Final = ExecutionLimits(
    max_history_events=None, max_open_executions=None, max_nesting_depth=None
)

JSON = Any
Params = Mapping[str, float]
T = TypeVar("T")

#: How often the progress bar redraws (seconds).
_REDRAW: Final = 0.1
#: How often a progress line is printed when stderr is not a terminal (seconds).
_LOG_EVERY: Final = 10.0


@final
@dataclass(frozen=True, kw_only=True)
class Metric:
    """One reported figure: its key in ``Measured.values``, a label, a unit and maybe a target.

    ``label`` may name parameters (``"{inline_mc_a:.0f}"``), filled in from the run's sizes.
    ``target`` is the figure the issue asks for at the full size; ``better`` says which way
    meets it (``higher``: value >= target, ``lower``: value < target).
    """

    key: str
    label: str
    unit: str
    target: float | None = None
    better: Literal["higher", "lower"] = "higher"

    def meets(self, value: float) -> bool | None:
        """Whether ``value`` meets the target (None when there is no target)."""
        if self.target is None:
            return None
        return value >= self.target if self.better == "higher" else value < self.target


@final
@dataclass(frozen=True, kw_only=True)
class Comparison:
    """A figure against a baseline measured in the same run: ratio = value / baseline."""

    label: str
    value: str
    baseline: str


@final
@dataclass(kw_only=True)
class Measured:
    """What one run of a scenario measured.

    ``values`` are numbers (medians are taken over runs); ``checks`` are invariants that must
    hold in every run (e.g. a concurrency limit never exceeded); ``info`` holds facts about the
    run (sizes actually run, store paths); ``notes`` are sentences for the reader.
    """

    values: dict[str, float] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    info: dict[str, JSON] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, JSON]:
        return {
            "values": self.values,
            "checks": self.checks,
            "info": self.info,
            "notes": self.notes,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, JSON]) -> Measured:
        return cls(
            values={str(k): float(v) for k, v in data["values"].items()},
            checks={str(k): bool(v) for k, v in data["checks"].items()},
            info=dict(data["info"]),
            notes=[str(n) for n in data["notes"]],
        )


RunFn = Callable[[Params, "Progress"], Coroutine[Any, Any, Measured]]


@final
@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A benchmark: its sizes (quick and full), what it reports, and how to measure it once."""

    name: str
    description: str
    quick: Mapping[str, float]
    full: Mapping[str, float]
    metrics: tuple[Metric, ...]
    run: RunFn
    comparisons: tuple[Comparison, ...] = ()

    def params(self, *, quick: bool, overrides: Mapping[str, float]) -> dict[str, float]:
        """The sizes of a run: quick or full, then ``overrides`` (unknown names are an error)."""
        params = dict(self.quick if quick else self.full)
        for key, value in overrides.items():
            if key not in params:
                known = ", ".join(sorted(params))
                raise KeyError(f"{self.name} has no parameter {key!r} (known: {known})")
            params[key] = value
        return params


# -- progress -------------------------------------------------------------------------------------


@final
class Progress:
    """A tiny progress bar on stderr: ``label [#####.....] 512/1024 3.1s``.

    On a terminal it redraws in place at most every 0.1 s; elsewhere (CI logs, pipes) it prints
    a line when a phase starts, every 10 s while it lasts, and when it ends. ``enabled=False``
    silences it (tests).
    """

    def __init__(
        self, *, stream: TextIO | None = None, enabled: bool = True, prefix: str = ""
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._tty = enabled and self._stream.isatty()
        self._prefix = prefix
        self._label = ""
        self._total = 0
        self._done = 0
        self._started = 0.0
        self._drawn = 0.0
        self._open = False

    def start(self, label: str, total: int) -> None:
        """Begin a phase of ``total`` steps."""
        self.finish()
        self._label = f"{self._prefix}{label}"
        self._total = max(total, 0)
        self._done = 0
        self._started = time.perf_counter()
        self._drawn = 0.0
        self._open = True
        if self._enabled and not self._tty:
            self._write(f"{self._label} ({self._total}) ...\n")
        self._draw(force=True)

    def update(self, done: int) -> None:
        """Set the number of steps done."""
        self._done = done
        self._draw(force=False)

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more steps done."""
        self.update(self._done + steps)

    def finish(self) -> None:
        """End the current phase (if any), leaving its final line on screen."""
        if not self._open:
            return
        self._open = False
        elapsed = time.perf_counter() - self._started
        if self._tty:
            self._draw(force=True)
            self._write("\n")
        elif self._enabled:
            self._write(f"{self._label} done: {self._done}/{self._total} in {elapsed:.1f}s\n")

    def note(self, message: str) -> None:
        """A line of text that does not break the bar."""
        if not self._enabled:
            return
        if self._tty and self._open:
            self._write("\r\x1b[2K")
        self._write(f"{self._prefix}{message}\n")
        if self._open:
            self._draw(force=True)

    def _draw(self, *, force: bool) -> None:
        if not self._enabled or not self._open:
            return
        now = time.perf_counter()
        if not self._tty:
            if now - max(self._drawn, self._started) >= _LOG_EVERY:
                self._drawn = now
                elapsed = now - self._started
                self._write(f"{self._label}: {self._done}/{self._total} {elapsed:.0f}s\n")
            return
        if not force and now - self._drawn < _REDRAW:
            return
        self._drawn = now
        width = 30
        fraction = min(self._done / self._total, 1.0) if self._total else 1.0
        filled = int(fraction * width)
        bar = "#" * filled + "." * (width - filled)
        elapsed = now - self._started
        line = f"{self._label} [{bar}] {self._done}/{self._total} {elapsed:.1f}s"
        self._write(f"\r\x1b[2K{line}")

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


# -- measuring ------------------------------------------------------------------------------------


def now() -> float:
    """A monotonic clock for durations (seconds)."""
    return time.perf_counter()


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (``ru_maxrss``, KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def current_rss_bytes() -> int | None:
    """This process's resident set size now (Linux ``/proc``), or None where unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank; 0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, int(fraction * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def median(values: Iterable[float]) -> float:
    """The median of ``values`` (0 when empty)."""
    items = list(values)
    return float(statistics.median(items)) if items else 0.0


@final
class InFlight:
    """Counts concurrent calls of a handler and remembers the most seen at once."""

    __slots__ = ("calls", "current", "peak")

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0
        self.calls = 0

    def enter(self) -> None:
        self.current += 1
        self.calls += 1
        if self.current > self.peak:
            self.peak = self.current

    def leave(self) -> None:
        self.current -= 1


async def in_waves(
    count: int,
    wave: int,
    start: Callable[[int], Awaitable[T]],
    progress: Progress | None = None,
    after_wave: Callable[[int], None] | None = None,
) -> list[T]:
    """Call ``start(i)`` for ``i`` in ``range(count)``, ``wave`` at a time concurrently.

    Bounded waves keep the number of coroutines (and their memory) small while still handing
    the runtime many starts at once to commit as a group.
    """
    results: list[T] = []
    wave = max(1, wave)
    for first in range(0, count, wave):
        last = min(count, first + wave)
        results.extend(await asyncio.gather(*(start(i) for i in range(first, last))))
        if progress is not None:
            progress.update(last)
        if after_wave is not None:
            after_wave(last)
    return results


def chain_definition(length: int) -> dict[str, JSON]:
    """``length`` Pass states, each leading to the next."""
    states: dict[str, JSON] = {}
    for i in range(length):
        state: dict[str, JSON] = {"Type": "Pass"}
        if i < length - 1:
            state["Next"] = f"S{i + 1}"
        else:
            state["End"] = True
        states[f"S{i}"] = state
    return {"Comment": f"{length} chained Pass states", "StartAt": "S0", "States": states}


def as_int(params: Params, key: str) -> int:
    """An integer size parameter."""
    return int(params[key])


def db_dir() -> str:
    """Where SQLite benchmark files go: ``$STATEMILL_BENCH_DB_DIR`` or the temp directory.

    Put it on the disk you want to measure: ``synchronous=FULL`` on a tmpfs measures nothing.
    """
    return os.environ.get("STATEMILL_BENCH_DB_DIR") or tempfile.gettempdir()


@asynccontextmanager
async def sqlite_file(name: str) -> AsyncIterator[str]:
    """A fresh SQLite path for one run, removed (with its WAL files) afterwards."""
    folder = tempfile.mkdtemp(prefix=f"statemill-bench-{name}-", dir=db_dir())
    try:
        yield os.path.join(folder, f"{name}.db")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def open_store(kind: Literal["memory", "sqlite"], path: str) -> AsyncIterator[EventStore]:
    """A memory store, or the SQLite store at ``path`` with ``synchronous=FULL``."""
    if kind == "memory":
        yield MemoryStore()
        return
    async with SqliteStore.open(path, synchronous="FULL") as store:
        yield store
