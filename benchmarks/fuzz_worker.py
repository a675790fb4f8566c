"""The fuzz workers (see ``benchmarks.fuzz``): each job runs in a forked process and flushes
its counts and failures to a JSON-lines file as it goes.

Two kinds of job:

- **load** (``load_main``): builds ``bases`` cases of one family once, then loads ``count``
  definitions, each a cheap mutation (``fuzz_gen.mutate``: path copy, shared subtrees) of one
  of them (``try_load``: accepted, ``InvalidDefinition``, or an internal error whose
  reproducer is shrunk). No event loop: thousands of definitions a second per core.
- **exec** (``exec_main``): runs the cases of a seed range in batches of ``batch`` executions
  started together in one ``Runtime`` on virtual time (``run_batch``; in memory, the map
  family on a SQLite file: ``ON_DISK``), with the
  history quota lowered (``FUZZ_LIMITS``: runaway loops end by themselves, as AWS ends them at
  25,000 events, in milliseconds), a canary of 10 Pass states started every ``CANARY_EVERY``
  seconds beside them, and after each batch a canary and a Wait probe that must still finish in
  the same runtime (else: a runtime broken for later executions).

An internal error is ``InternalError``, an exception escaping the public API other than the
ones it documents, an engine exception logged while deciding, or an ending whose error names a
Python exception class (or a ``States.*`` cause holding a traceback / ``Statemill internal
error``). A hang: executions of a batch with no new event and no clock move for
``STALL_SECONDS``; runaway: more than ``MAX_LIVE`` live executions, or an execution still
writing events after ``BATCH_WALL_SECONDS`` in its batch and ``ALONE_WALL_SECONDS`` alone (one
that ends alone in time is counted slow, not a failure).

Imports the standard library, structlog, the public ``runtime`` API, ``runtime.core.limits``
(the quotas a fuzz runtime is given) and ``benchmarks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import hashlib
import json
import os
import random
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal, TextIO, final

import structlog

from benchmarks import fuzz_families, fuzz_gen
from benchmarks.fuzz_families import make_case
from benchmarks.fuzz_gen import Case, mutate
from runtime import (
    InternalError,
    InvalidDefinition,
    InvalidExecutionInput,
    InvalidName,
    Runtime,
    TaskContext,
    TaskFailed,
    load_definition,
)
from runtime.core.limits import ExecutionLimits
from runtime.errors import ExecutionLimitExceeded
from runtime.store.base import EventStore
from runtime.store.sqlite import SqliteStore

__all__ = [
    "ALONE_WALL_SECONDS",
    "BATCH",
    "BATCH_WALL_SECONDS",
    "DEFAULT_OUT",
    "FAMILIES",
    "FUZZ_LIMITS",
    "HANDLERS",
    "RSS_LIMIT",
    "STALL_SECONDS",
    "Counts",
    "Job",
    "Outcome",
    "classify_description",
    "exec_main",
    "fuzz_runtime",
    "fuzz_runtime_for",
    "fuzz_store",
    "load_main",
    "quiet_logs",
    "reproducer",
    "run_batch",
    "run_case",
    "save_failure",
    "try_load",
]

JSON = Any

FAMILIES: Final = tuple(fuzz_families.FAMILIES)
DEFAULT_OUT: Final = Path("/tmp/statemill-fuzz")
STALL_SECONDS: Final = 3.0
BATCH_WALL_SECONDS: Final = 30.0
#: Wall seconds an execution still writing events at ``BATCH_WALL_SECONDS`` gets alone: one
#: that ends within them did bounded work that takes long (40,000 children of a distributed
#: Map, seed 10001470: 35 s alone on a loaded machine), counted as slow; one that does not is
#: a runaway.
ALONE_WALL_SECONDS: Final = 180.0
FUZZ_HISTORY_EVENTS: Final = 500
"""The history quota of a fuzz runtime (AWS's is 25,000): a zero-time loop fails with
``States.Runtime`` after 500 events, in milliseconds, instead of a watchdog's seconds."""
MAX_LIVE: Final = 5_000
FUZZ_LIMITS: Final = ExecutionLimits(
    max_history_events=FUZZ_HISTORY_EVENTS, max_open_executions=MAX_LIVE, max_nesting_depth=4
)
RSS_LIMIT: Final = 2 * 1024**3
RENEW_RSS: Final = 700 * 1024**2
"""A runtime is replaced when the worker's RSS passes this (the memory store keeps histories)."""
ADDRESS_SPACE_LIMIT: Final = 4 * 1024**3
CANARY_EVERY: Final = 0.1
CLOSE_SECONDS: Final = 5.0
CANARY_TIMEOUT: Final = 5.0
BATCH: Final = 50
BATCHES_PER_RUNTIME: Final = 4
#: Python exception classes that, named as an execution's error or in a States.Runtime cause,
#: mean the runtime leaked its own bug (the fuzz handlers raise only TaskFailed and ValueError).
PYTHON_ERRORS: Final = (
    "AssertionError",
    "AttributeError",
    "IndexError",
    "KeyError",
    "MemoryError",
    "NotImplementedError",
    "OverflowError",
    "RecursionError",
    "RuntimeError",
    "TypeError",
    "UnicodeEncodeError",
    "UnicodeDecodeError",
    "ZeroDivisionError",
    "UnboundLocalError",
    "NameError",
)
_PYTHON_ERROR: Final = re.compile(
    r"\b(" + "|".join(PYTHON_ERRORS) + r")\b|Traceback|Statemill internal error"
)
_CANARY: Final = {
    "StartAt": "P0",
    "States": {
        f"P{i}": {"Type": "Pass", **({"Next": f"P{i + 1}"} if i < 9 else {"End": True})}
        for i in range(10)
    },
}
_WAIT_PROBE: Final = {
    "StartAt": "W",
    "States": {
        "W": {"Type": "Wait", "Seconds": 5, "Next": "P"},
        "P": {"Type": "Pass", "End": True},
    },
}
_ROOT: Final = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# Outcomes and counts
# ---------------------------------------------------------------------------------------------


@final
@dataclass(kw_only=True)
class Outcome:
    """What one load or one execution came to. ``kind`` is None when it was acceptable."""

    status: str
    kind: str | None = None
    signature: str = ""
    module: str = ""
    detail: str = ""


@final
@dataclass(kw_only=True)
class Counts:
    """Counters of one family (summed across jobs by the supervisor)."""

    definitions_loaded: int = 0
    """Definitions accepted (load phase and ``create_state_machine`` of the executed cases)."""
    definitions_invalid: int = 0
    """Definitions refused with ``InvalidDefinition`` (or ``InvalidName``)."""
    load_internal_errors: int = 0
    executions: int = 0
    input_rejected: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    internal_errors: int = 0
    escaped: int = 0
    hangs: int = 0
    runaway: int = 0
    slow: int = 0
    """Executions that outlived their batch's wall time but ended when run alone (not a
    failure: bounded work that takes long)."""
    runtimes_broken: int = 0
    frozen: int = 0
    crashes: int = 0
    memory: int = 0
    loop_errors: int = 0
    """Exceptions the event loop reported unhandled (a task's exception never retrieved)."""
    canary_runs: int = 0
    canary_failures: int = 0
    canary_latencies: list[float] = field(default_factory=list)
    peak_rss: int = 0
    load_seconds: float = 0.0
    exec_seconds: float = 0.0

    def add(self, other: dict[str, JSON]) -> None:
        """Add the counts of one flushed batch (``as_json`` of another ``Counts``)."""
        for key, amount in other.items():
            if key == "statuses":
                self.statuses.update(amount)
            elif key == "canary_latencies":
                self.canary_latencies.extend(amount)
            elif key == "peak_rss":
                self.peak_rss = max(self.peak_rss, amount)
            else:
                setattr(self, key, getattr(self, key) + amount)

    def as_json(self) -> dict[str, JSON]:
        return {
            key: (dict(value) if isinstance(value, Counter) else value)
            for key, value in self.__dict__.items()
        }

    @property
    def failures(self) -> int:
        return (
            self.load_internal_errors
            + self.internal_errors
            + self.escaped
            + self.hangs
            + self.runaway
            + self.runtimes_broken
            + self.frozen
            + self.crashes
            + self.memory
            + self.canary_failures
            + self.loop_errors
        )


def _normalise(text: str, limit: int = 120) -> str:
    """A cause with its variable parts (numbers, quoted values, arns) replaced, for dedup."""
    text = text[:2000]
    text = re.sub(r"arn:aws:[^\s'\"]+", "ARN", text)
    text = re.sub(r"'[^']{0,200}'|\"[^\"]{0,200}\"", "'…'", text)
    text = re.sub(r"\d+(\.\d+)?", "N", text)
    return text[:limit]


def where(exc: BaseException) -> str:
    """``module:function`` of the innermost traceback frame inside this project (or the last)."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if str(_ROOT) in f.filename and "/benchmarks/" not in f.filename]
    chosen = inside or list(frames)
    if not chosen:
        return "?"
    frame = chosen[-1]
    path = Path(frame.filename)
    with contextlib.suppress(ValueError):
        path = path.relative_to(_ROOT)
    return f"{path}:{frame.name}"


def _exception_outcome(kind: str, exc: BaseException, status: str) -> Outcome:
    module = where(exc)
    name = type(exc).__name__
    return Outcome(
        status=status,
        kind=kind,
        signature=f"{kind}|{name}|{module}",
        module=module,
        detail=f"{name}: {str(exc)[:300]}",
    )


def try_load(definition: JSON, machine_type: str = "STANDARD") -> Outcome:
    """Load one definition: ``loaded``, ``invalid`` (InvalidDefinition) or an internal error."""
    try:
        load_definition(definition, machine_type=machine_type)
    except InvalidDefinition:
        return Outcome(status="invalid")
    except Exception as exc:
        return _exception_outcome("load_internal_error", exc, "error")
    return Outcome(status="loaded")


def classify_description(status: str, error: str | None, cause: str | None) -> Outcome:
    """Judge an ended execution from its DescribeExecution fields."""
    if status not in ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"):
        return Outcome(status=status, kind="hang", signature=f"hang|status {status}")
    # Only the head of a cause: a hostile one can be hundreds of MiB.
    cause = (cause or "")[:20_000]
    text = f"{error or ''} {cause}"
    named = error in PYTHON_ERRORS
    leaked = error in ("States.Runtime", "States.QueryEvaluationError", "States.IntrinsicFailure")
    if named or (leaked and _PYTHON_ERROR.search(cause or "")):
        match = _PYTHON_ERROR.search(text)
        exc_name = match.group(0) if match else str(error)
        return Outcome(
            status=status,
            kind="internal_error",
            signature=f"internal_error|{error}|{exc_name}|{_normalise(cause or '', 60)}",
            detail=f"{error}: {(cause or '')[:300]}",
        )
    return Outcome(status=status)


# ---------------------------------------------------------------------------------------------
# Handlers and captured engine exceptions
# ---------------------------------------------------------------------------------------------

_HOSTILE_RESULTS: Final = [fuzz_gen.hostile_value(random.Random(i)) for i in range(64)]


async def _ok(event: JSON, context: TaskContext) -> JSON:
    return event


async def _fail(event: JSON, context: TaskContext) -> JSON:
    raise TaskFailed("Handler.Failed", "it failed")


async def _boom(event: JSON, context: TaskContext) -> JSON:
    raise ValueError("boom")


async def _random(event: JSON, context: TaskContext) -> JSON:
    # Never repr() the event: a deep one would raise RecursionError here, in the fuzz's code.
    size = len(event) if isinstance(event, list | dict | str) else 0
    return _HOSTILE_RESULTS[size % len(_HOSTILE_RESULTS)]


async def _slow(event: JSON, context: TaskContext) -> JSON:
    await context.sleep(100)
    return event


HANDLERS: Final = {"Ok": _ok, "Fail": _fail, "Boom": _boom, "Random": _random, "Slow": _slow}

#: (execution arn or None, exception) of every exception the engine logged since last cleared.
_CAPTURED: list[tuple[str | None, BaseException]] = []


def _capture(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """A structlog processor: keep the exception of every ``log.exception``, print nothing."""
    exc_info = event_dict.get("exc_info")
    if exc_info is True:
        exc = sys.exc_info()[1]
    elif isinstance(exc_info, BaseException):
        exc = exc_info
    elif isinstance(exc_info, tuple):
        exc = exc_info[1]
    else:
        exc = None
    arn = event_dict.get("execution")
    arn = arn if isinstance(arn, str) else None
    if exc is not None:
        exc.add_note(f"logged as {event_dict.get('event')}")
        _CAPTURED.append((arn, exc))
    elif method in ("error", "critical"):
        detail = {k: str(v)[:200] for k, v in event_dict.items()}
        _CAPTURED.append((arn, RuntimeError(f"engine logged {event_dict.get('event')}: {detail}")))
    raise structlog.DropEvent


def quiet_logs() -> None:
    """Route the runtime's structlog output to the capture list (the worker prints nothing)."""
    structlog.configure(processors=[_capture], cache_logger_on_first_use=False)


# ---------------------------------------------------------------------------------------------
# Running a batch of cases in one runtime
# ---------------------------------------------------------------------------------------------

_ALLOWED_CREATE: Final = (InvalidDefinition, InvalidName)
_ALLOWED_START: Final = (InvalidExecutionInput, ExecutionLimitExceeded)


#: Families whose executions run on a SQLite file, not in memory: the map family's Map Runs
#: write hundreds of MiB of their children's logs (seed 10002713: 40,000 children given a
#: 230 KB input each, about 920 KB of log a child), which the memory store keeps by design;
#: on a file the process's memory is what the runtime holds, which the fuzz is to bound.
ON_DISK: Final = frozenset({"map"})


def fuzz_runtime(store: EventStore | str = "memory") -> Runtime:
    """A runtime on virtual time with the fuzz's quotas (``FUZZ_LIMITS``), in memory unless
    given a store."""
    return Runtime(
        store,
        handlers=HANDLERS,
        virtual_time=True,
        request_poll_interval=None,
        limits=FUZZ_LIMITS,
    )


async def fuzz_store(family: str, stack: contextlib.AsyncExitStack) -> EventStore | str:
    """The store a runtime of ``family`` runs on (``ON_DISK``: a SQLite file in a folder of
    its own, ``synchronous=OFF``, removed with ``stack``)."""
    if family not in ON_DISK:
        return "memory"
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="statemill-fuzz-"))
    return await stack.enter_async_context(
        SqliteStore.open(os.path.join(folder, "fuzz.db"), synchronous="OFF")
    )


@contextlib.asynccontextmanager
async def fuzz_runtime_for(family: str) -> AsyncIterator[Runtime]:
    """:func:`fuzz_runtime` on :func:`fuzz_store`, closed (and its file removed) on exit."""
    async with contextlib.AsyncExitStack() as stack:
        yield await stack.enter_async_context(fuzz_runtime(await fuzz_store(family, stack)))


async def _start(rt: Runtime, case: Case) -> Outcome | str:
    """Create the case's machine and start it: its execution arn, or the outcome already."""
    try:
        machine = await rt.create_state_machine(case.name, case.definition, type=case.machine_type)
    except _ALLOWED_CREATE:
        return Outcome(status="rejected")
    except InternalError as exc:
        return _exception_outcome("internal_error", exc, "error")
    except Exception as exc:
        return _exception_outcome("escaped", exc, "error")
    try:
        started = await rt.start_execution(machine.arn, case.input)
    except _ALLOWED_START:
        return Outcome(status="input_rejected")
    except InternalError as exc:
        return _exception_outcome("internal_error", exc, "error")
    except Exception as exc:
        return _exception_outcome("escaped", exc, "error")
    return started.execution_arn


def _progress(rt: Runtime) -> tuple[float, int, int]:
    engine = rt.engine
    events = sum(live.state.last_event_id for live in engine.live.values())
    return rt.clock.now(), events, len(engine.live)


async def run_batch(
    rt: Runtime,
    cases: Sequence[Case],
    *,
    stall_seconds: float = STALL_SECONDS,
    wall_seconds: float = BATCH_WALL_SECONDS,
) -> list[Outcome]:
    """Start every case in ``rt`` together, wait for them all, judge each ending.

    Executions still running when nothing moved (no event, no clock move, none ended) for
    ``stall_seconds`` are hangs; when more than ``MAX_LIVE`` executions are open, the ones
    still running are runaways. When the batch ran ``BATCH_WALL_SECONDS``, the ones still
    writing events are runaways; one that wrote none for ``stall_seconds`` waits on virtual
    time, which cannot move while the others work (the clock jumps only when nothing can
    progress), so it is run again alone: seed 10001464, a Wait until 2030, was reported a
    runaway after 30 s in a batch beside two 40,000-item distributed Maps (7 s and 21 s of
    work), and ends in 0.7 s alone. The ones still writing events then are run again alone for
    ``ALONE_WALL_SECONDS`` (a batch's own wall time is ``wall_seconds``): those that end are
    slow (their outcome, with ``slow`` in its detail), those that do not are runaways.
    """
    _CAPTURED.clear()
    outcomes: list[Outcome | None] = [None] * len(cases)
    waiting: dict[asyncio.Future[Any], int] = {}
    arns: dict[str, int] = {}
    moved: dict[str, tuple[int, float]] = {}
    """Execution arn -> (its last event id, when it last changed), for those still running."""
    starved: list[int] = []
    working: list[int] = []
    """Still writing events at the wall time of a batch: run again alone, for longer."""
    for index, case in enumerate(cases):
        started = await _start(rt, case)
        if isinstance(started, Outcome):
            outcomes[index] = started
            continue
        arns[started] = index
        waiting[asyncio.ensure_future(rt.wait_for_execution(started))] = index
    began = last_move = time.monotonic()
    marker: tuple[object, ...] | None = None
    problem: tuple[str, str] | None = None
    while waiting:
        done, _ = await asyncio.wait(list(waiting), timeout=0.05)
        for future in done:
            index = waiting.pop(future)
            exc = future.exception()
            if exc is not None:
                outcomes[index] = _exception_outcome("escaped", exc, "error")
            else:
                desc = future.result()
                outcomes[index] = classify_description(desc.status, desc.error, desc.cause)
        if not waiting:
            break
        now = time.monotonic()
        current = (len(waiting), *_progress(rt))
        if current != marker:
            marker, last_move = current, now
        _note_moves(rt, [arn for arn, i in arns.items() if outcomes[i] is None], moved, now)
        if len(rt.engine.live) > MAX_LIVE:
            problem = ("runaway", f"more than {MAX_LIVE:,} live executions")
        elif now - began > wall_seconds:
            problem = ("runaway", f"still running after {wall_seconds:.0f} s of wall time")
            waiting_on_time = {
                i
                for arn, i in arns.items()
                if outcomes[i] is None and now - moved[arn][1] > stall_seconds
            }
            if len(waiting_on_time) < len(waiting):  # some still work: they are the runaways
                for future, index in list(waiting.items()):
                    if index in waiting_on_time:
                        future.cancel()
                        del waiting[future]
                        starved.append(index)
                if wall_seconds < ALONE_WALL_SECONDS:  # unless they end alone, given longer
                    for future, index in list(waiting.items()):
                        future.cancel()
                        del waiting[future]
                        working.append(index)
        elif now - last_move > stall_seconds:
            problem = ("hang", f"no event and no clock move for {stall_seconds:.1f} s")
        if problem is not None:
            break
    if problem is not None:
        kind, detail = problem
        for future, index in waiting.items():
            future.cancel()
            outcomes[index] = Outcome(
                status="RUNNING",
                kind=kind,
                signature=f"{kind}|{re.sub(r'[0-9,]+', 'N', detail)}",
                detail=detail,
            )
    for arn, exc in _CAPTURED:
        # The engine logged an exception: name the module it came from, on its execution.
        index = arns.get(arn, -1) if arn is not None else -1
        if index < 0:
            index = next(iter(arns.values()), 0)
        outcome = outcomes[index]
        if outcome is not None and outcome.kind not in (None, "internal_error"):
            continue
        found = _exception_outcome("internal_error", exc, outcome.status if outcome else "?")
        found.detail += " (" + "; ".join(getattr(exc, "__notes__", [])) + ")"
        outcomes[index] = found
    _CAPTURED.clear()
    for index in starved:  # after the batch's captures are judged: a run clears them
        async with fuzz_runtime_for(cases[index].family) as alone:
            outcomes[index] = await run_case(alone, cases[index])
    for index in working:
        async with fuzz_runtime_for(cases[index].family) as alone:
            began_alone = time.monotonic()
            (outcome,) = await run_batch(alone, [cases[index]], wall_seconds=ALONE_WALL_SECONDS)
        if outcome.kind is None:
            seconds = time.monotonic() - began_alone
            outcome = replace(outcome, detail=f"slow: ended in {seconds:.1f} s alone")
        outcomes[index] = outcome
    return [o if o is not None else Outcome(status="?") for o in outcomes]


def _note_moves(
    rt: Runtime, arns: Sequence[str], moved: dict[str, tuple[int, float]], now: float
) -> None:
    """Record in ``moved`` when each of ``arns`` last wrote an event (an execution not in
    memory, parked on a timer, writes none)."""
    live = rt.engine.live
    for arn in arns:
        held = live.get(arn)
        last = held.state.last_event_id if held is not None else -1
        seen = moved.get(arn)
        if seen is None or seen[0] != last:
            moved[arn] = (last, now)


async def run_case(rt: Runtime, case: Case) -> Outcome:
    """Create, start and watch one execution of ``case`` in ``rt``."""
    return (await run_batch(rt, [case]))[0]


async def _run_canary(rt: Runtime, arn: str) -> float | None:
    """Wall seconds one canary took, None when it did not succeed within the timeout."""
    began = time.perf_counter()
    try:
        started = await rt.start_execution(arn, {"canary": True})
        desc = await rt.wait_for_execution(started.execution_arn, timeout=CANARY_TIMEOUT)
    except Exception:
        return None
    return time.perf_counter() - began if desc.status == "SUCCEEDED" else None


async def _stop_all(rt: Runtime) -> bool:
    """Stop every execution still open in ``rt``; False when that does not finish in 5 s."""
    arns = list(rt.engine.live) + list(rt.engine.parked)

    async def stop(arn: str) -> None:
        with contextlib.suppress(Exception):
            await rt.stop_execution(arn)

    try:
        await asyncio.wait_for(asyncio.gather(*(stop(a) for a in arns)), 5.0)
    except TimeoutError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Reproducers
# ---------------------------------------------------------------------------------------------


@final
@dataclass(frozen=True, kw_only=True)
class Job:
    """One worker process's work: ``count`` definitions (load) or cases (exec) of a family."""

    kind: Literal["load", "exec"]
    family: str
    first_seed: int
    count: int
    out: Path
    results: Path
    bases: int = 50
    """load: how many cases (seeds ``first_seed``...) the mutations are drawn from."""
    batch: int = BATCH
    """exec: executions started together in one runtime."""
    deadline: float | None = None
    """Wall-clock time (``time.time()``) after which no new batch starts."""


#: Shared with the supervisor: [seed, variant (-1: the execution), heartbeat, phase
#: (0 loading, 1 executing, 2 canary after a batch, 3 closing the runtime), last seed of the
#: batch].
Shared = Any


def reproducer(case: Case, variant: int) -> dict[str, JSON]:
    """The definition and input of one case (the variant-th mutation for a load variant)."""
    definition = case.definition
    if variant > 0:
        definition = mutate(definition, random.Random(f"{case.family}:{case.seed}:{variant}"))
    return {
        "family": case.family,
        "seed": case.seed,
        "variant": variant,
        "name": case.name,
        "machine_type": case.machine_type,
        "definition": definition,
        "input": case.input,
    }


def _to_json(data: JSON) -> str:
    """JSON text of a reproducer. Values JSON cannot hold (integer keys, NaN, lone surrogates,
    nesting past the encoder's recursion) are left out: the case is rebuilt from its family,
    seed and variant (``make_case`` is deterministic), which ``--replay`` does."""
    try:
        return json.dumps(data, indent=1, allow_nan=False, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        safe = {k: v for k, v in data.items() if k not in ("definition", "input")}
        safe["rebuild"] = (
            f"benchmarks.fuzz_worker.reproducer(benchmarks.fuzz_families.make_case("
            f"{data['family']!r}, {data['seed']}), {data['variant']})"
        )
        return json.dumps(safe, indent=1, ensure_ascii=True, default=repr)


def save_failure(
    out: Path, outcome: Outcome, repro: dict[str, JSON], *, overwrite: bool = False
) -> str:
    """Write the reproducer of a distinct failure once (``overwrite``: replace it, with a more
    precise one); returns its file name."""
    digest = hashlib.sha256(outcome.signature.encode()).hexdigest()[:12]
    path = out / "reproducers" / f"{outcome.kind}-{digest}.json"
    if overwrite or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "kind": outcome.kind,
            "signature": outcome.signature,
            "module": outcome.module,
            "detail": outcome.detail,
            "replay": f"python -m benchmarks.fuzz --replay {path}",
            **repro,
        }
        tmp = path.with_suffix(f".{id(document)}.tmp")
        tmp.write_text(_to_json(document))
        tmp.replace(path)
    return path.name


def shrink(definition: JSON, still_fails: Callable[[JSON], bool], budget: int = 300) -> JSON:
    """Greedily delete keys and list items of ``definition`` while ``still_fails`` holds."""
    if not isinstance(definition, dict | list):
        return definition
    current = definition
    tries = 0
    changed = True
    while changed and tries < budget:
        changed = False
        for path in _paths(current):
            tries += 1
            if tries >= budget:
                break
            candidate = _without(current, path)
            if candidate is not None and still_fails(candidate):
                current, changed = candidate, True
                break
    return current


def _paths(root: JSON, limit: int = 400) -> Iterator[tuple[Any, ...]]:
    stack: list[tuple[tuple[Any, ...], JSON]] = [((), root)]
    seen = 0
    while stack and seen < limit:
        path, node = stack.pop(0)
        children: list[tuple[Any, JSON]] = []
        if isinstance(node, dict):
            children = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        for key, child in children:
            seen += 1
            yield (*path, key)
            stack.append(((*path, key), child))


def _without(root: JSON, path: tuple[Any, ...]) -> JSON:
    """A copy of ``root`` without the node at ``path`` (copying only the spine)."""
    if not path:
        return None
    head, rest = path[0], path[1:]
    if isinstance(root, dict):
        copy_dict = dict(root)
        if not rest:
            copy_dict.pop(head, None)
            return copy_dict
        inner = _without(root[head], rest)
        if inner is None:
            return None
        copy_dict[head] = inner
        return copy_dict
    if isinstance(root, list):
        copy_list = list(root)
        if not rest:
            del copy_list[head]
            return copy_list
        inner = _without(root[head], rest)
        if inner is None:
            return None
        copy_list[head] = inner
        return copy_list
    return None


# ---------------------------------------------------------------------------------------------
# The workers
# ---------------------------------------------------------------------------------------------


class _Worker:
    def __init__(self, job: Job, shared: Shared) -> None:
        self.job = job
        self.shared = shared
        self.counts = Counts()
        self.failures: list[dict[str, JSON]] = []
        self.seen: set[str] = set()
        self.results: TextIO = job.results.open("a")
        self.started = time.monotonic()
        self.next_seed = job.first_seed
        self.closing_since: float | None = None

    def flush(self) -> None:
        self.counts.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        elapsed = time.monotonic() - self.started
        if self.job.kind == "load":
            self.counts.load_seconds = elapsed
        else:
            self.counts.exec_seconds = elapsed
        self.started = time.monotonic()
        line = {
            "counts": self.counts.as_json(),
            "failures": self.failures,
            "next_seed": self.next_seed,
        }
        self.results.write(json.dumps(line) + "\n")
        self.results.flush()
        self.counts = Counts()
        self.failures = []

    def record(self, outcome: Outcome, repro: dict[str, JSON]) -> None:
        if outcome.kind is None:
            return
        file = ""
        if outcome.signature not in self.seen:
            self.seen.add(outcome.signature)
            file = save_failure(self.job.out, outcome, repro)
        self.failures.append(
            {
                "kind": outcome.kind,
                "signature": outcome.signature,
                "module": outcome.module,
                "detail": outcome.detail,
                "family": repro["family"],
                "seed": repro["seed"],
                "variant": repro["variant"],
                "file": file,
            }
        )

    def past_deadline(self) -> bool:
        deadline = self.job.deadline
        return deadline is not None and time.time() > deadline

    # -- load ---------------------------------------------------------------------------------

    def load_one(self, case: Case, variant: int) -> None:
        shared = self.shared
        shared[0], shared[1] = case.seed, variant
        shared[2] += 1
        definition = case.definition
        if variant:
            definition = mutate(definition, random.Random(f"{case.family}:{case.seed}:{variant}"))
        outcome = try_load(definition, case.machine_type)
        if outcome.status == "loaded":
            self.counts.definitions_loaded += 1
        elif outcome.status == "invalid":
            self.counts.definitions_invalid += 1
        else:
            self.counts.load_internal_errors += 1
            repro = reproducer(case, variant)
            if outcome.signature not in self.seen:
                signature = outcome.signature

                def fails(candidate: JSON, signature: str = signature) -> bool:
                    return try_load(candidate, case.machine_type).signature == signature

                repro["definition"] = shrink(repro["definition"], fails)
            self.record(outcome, repro)

    def run_load(self) -> None:
        job = self.job
        self.shared[3] = 0
        cases = [make_case(job.family, job.first_seed + i) for i in range(job.bases)]
        last_flush = time.monotonic()
        for index in range(job.count):
            case = cases[index % len(cases)]
            self.load_one(case, index // len(cases))
            if time.monotonic() - last_flush > 1.0:
                self.flush()
                last_flush = time.monotonic()
                if self.past_deadline():
                    break
        self.next_seed = job.first_seed + job.bases
        self.flush()

    # -- exec ---------------------------------------------------------------------------------

    async def heartbeat(self) -> None:
        while True:
            closing = self.closing_since
            if closing is None or time.monotonic() - closing < CLOSE_SECONDS:
                self.shared[2] += 1
            await asyncio.sleep(0.2)

    def loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """The event loop's exception handler: an unhandled exception is a finding."""
        exc = context.get("exception")
        future = context.get("future")
        coro = getattr(future, "get_coro", lambda: None)()
        name = getattr(coro, "__qualname__", type(future).__name__)
        message = str(context.get("message", ""))
        self.counts.loop_errors += 1
        kind = "loop_error"
        module = where(exc) if isinstance(exc, BaseException) else "?"
        outcome = Outcome(
            status="error",
            kind=kind,
            signature=f"{kind}|{message[:60]}|{name}|{type(exc).__name__}",
            module=module,
            detail=f"{message} ({name}: {type(exc).__name__}: {str(exc)[:200]})",
        )
        seed = int(self.shared[0])
        self.record(outcome, reproducer(make_case(self.job.family, seed), -1))

    async def run_exec(self) -> None:
        job = self.job
        asyncio.get_running_loop().set_exception_handler(self.loop_error)
        beat = asyncio.ensure_future(self.heartbeat())
        seeds = range(job.first_seed, job.first_seed + job.count)
        try:
            index = 0
            while index < len(seeds) and not self.past_deadline():
                index = await self.runtime_span(seeds, index)
        finally:
            beat.cancel()
            self.flush()
            self.results.close()

    async def runtime_span(self, seeds: range, index: int) -> int:
        """Run batches in one runtime from ``seeds[index]`` until the job ends, the runtime
        must be replaced or it has run ``BATCHES_PER_RUNTIME``; returns the next index."""
        stack = contextlib.AsyncExitStack()
        rt = fuzz_runtime(await fuzz_store(self.job.family, stack))
        await rt.__aenter__()
        try:
            canary = await rt.create_state_machine("FuzzCanary", _CANARY)
            probe = await rt.create_state_machine("FuzzWaitProbe", _WAIT_PROBE)
            beside = asyncio.ensure_future(self.canary_beside(rt, canary.arn))
            try:
                for _ in range(BATCHES_PER_RUNTIME):
                    if index >= len(seeds) or self.past_deadline():
                        break
                    batch = list(seeds[index : index + self.job.batch])
                    index += len(batch)
                    healthy = await self.one_batch(rt, batch)
                    self.next_seed = batch[-1] + 1
                    healthy = healthy and await self.after_batch(rt, canary.arn, probe.arn, batch)
                    self.flush()
                    if not healthy or self.counts.peak_rss > RENEW_RSS:
                        break
                    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                    if rss > RENEW_RSS:
                        break
            finally:
                beside.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beside
        finally:
            await _stop_all(rt)
            # A runtime that cannot close is itself a finding: the heartbeat stops after
            # CLOSE_SECONDS in this phase, so the supervisor reports the worker frozen.
            self.shared[3] = 3
            self.closing_since = time.monotonic()
            await rt.__aexit__(None, None, None)
            await stack.aclose()
            self.closing_since = None
        return index

    async def one_batch(self, rt: Runtime, batch: list[int]) -> bool:
        """Run the cases ``batch``; False when the runtime must be replaced."""
        shared = self.shared
        shared[0], shared[1], shared[3], shared[4] = batch[0], -1, 1, batch[-1]
        cases = [make_case(self.job.family, seed) for seed in batch]
        outcomes = await run_batch(rt, cases)
        counts = self.counts
        spoiled = False
        for case, outcome in zip(cases, outcomes, strict=True):
            if outcome.status == "rejected":
                counts.definitions_invalid += 1
                continue
            counts.definitions_loaded += 1
            if outcome.status == "input_rejected":
                counts.input_rejected += 1
                continue
            if outcome.kind is not None and outcome.status == "error":
                # Escaped from create or start: no execution ran.
                pass
            else:
                counts.executions += 1
                counts.statuses[outcome.status] += 1
            match outcome.kind:
                case None:
                    counts.slow += outcome.detail.startswith("slow:")
                case "escaped":
                    counts.escaped += 1
                case "hang":
                    counts.hangs += 1
                    spoiled = True
                case "runaway":
                    counts.runaway += 1
                    spoiled = True
                case _:
                    counts.internal_errors += 1
            self.record(outcome, reproducer(case, -1))
        return not spoiled

    async def canary_beside(self, rt: Runtime, arn: str) -> None:
        while True:
            await asyncio.sleep(CANARY_EVERY)
            latency = await _run_canary(rt, arn)
            self.counts.canary_runs += 1
            self.counts.canary_latencies.append(CANARY_TIMEOUT if latency is None else latency)
            if latency is None:
                self.counts.canary_failures += 1

    async def after_batch(self, rt: Runtime, canary: str, probe: str, batch: list[int]) -> bool:
        """The canary and the Wait probe must still finish in this runtime after a batch."""
        self.shared[3] = 2
        stopped = await _stop_all(rt)
        latency = await _run_canary(rt, canary)
        self.counts.canary_runs += 1
        self.counts.canary_latencies.append(CANARY_TIMEOUT if latency is None else latency)
        probe_ok = await _run_canary(rt, probe) is not None
        if latency is not None and probe_ok:
            return stopped
        self.counts.runtimes_broken += 1
        what = "canary (10 Pass states)" if latency is None else "Wait probe"
        outcome = Outcome(
            status="broken",
            kind="runtime_broken",
            signature=f"runtime_broken|{self.job.family}|{what}",
            detail=f"the {what} did not finish within {CANARY_TIMEOUT:.0f} s after seeds "
            f"{batch[0]}..{batch[-1]}",
        )
        repro = reproducer(make_case(self.job.family, batch[-1]), -1)
        repro["batch_seeds"] = batch
        self.record(outcome, repro)
        return False


def _setup(stack_file: str) -> None:
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    stacks = open(stack_file, "w")  # noqa: SIM115 (kept open for faulthandler)
    faulthandler.enable(file=stacks)
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
    quiet_logs()


def load_main(job: Job, shared: Shared, stack_file: str) -> None:
    """The entry point of a load worker process."""
    _setup(stack_file)
    worker = _Worker(job, shared)
    try:
        worker.run_load()
    finally:
        worker.results.close()


def exec_main(job: Job, shared: Shared, stack_file: str) -> None:
    """The entry point of an exec worker process."""
    _setup(stack_file)
    asyncio.run(_Worker(job, shared).run_exec())
