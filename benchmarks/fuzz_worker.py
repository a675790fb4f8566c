"""The fuzz worker (see ``benchmarks.fuzz``): loads and runs the cases of one chunk, in a
forked process, and flushes its counts and failures to a JSON-lines file after every batch.

For every case it loads the definition and ``ratio - 1`` mutations (``try_load``: loaded,
``InvalidDefinition``, or an internal error whose reproducer is shrunk), then runs it on an
in-memory ``Runtime`` on virtual time (``run_case``) and judges the ending
(``classify_description``). A canary of 10 Pass states runs beside the cases every
``CANARY_EVERY`` seconds, and after each batch a canary and a Wait probe must still finish in
the same runtime. Engine exceptions logged through structlog are captured (``quiet_logs``) to
name the module a ``States.Runtime`` internal error came from.

An internal error is ``InternalError``, an exception escaping the public API other than the ones
it documents, an engine exception logged while deciding, or an ending whose error names a Python
exception class (or a ``States.Runtime`` cause holding a traceback / ``Statemill internal
error``). A hang: no new event and no clock move for ``STALL_SECONDS``; runaway: past 25,000
history events (AWS's limit), ``MAX_LIVE`` live executions or ``MAX_WALL_SECONDS``.

Imports the standard library, structlog, the public ``runtime`` API and ``benchmarks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import hashlib
import json
import random
import re
import resource
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO, final

import structlog

from benchmarks import fuzz_families, fuzz_gen
from benchmarks.fuzz_families import make_case
from benchmarks.fuzz_gen import Case, mutate
from runtime import (
    InternalError,
    InvalidDefinition,
    InvalidExecutionInput,
    InvalidName,
    ManualClock,
    Runtime,
    TaskContext,
    TaskFailed,
    load_definition,
)

__all__ = [
    "CHUNK",
    "DEFAULT_OUT",
    "FAMILIES",
    "HANDLERS",
    "RSS_LIMIT",
    "STALL_SECONDS",
    "Chunk",
    "Counts",
    "Outcome",
    "classify_description",
    "quiet_logs",
    "reproducer",
    "run_case",
    "save_failure",
    "try_load",
    "worker_main",
]

JSON = Any

FAMILIES: Final = tuple(fuzz_families.FAMILIES)
DEFAULT_OUT: Final = Path(__file__).resolve().parent / "results" / "fuzz"
STALL_SECONDS: Final = 5.0
MAX_WALL_SECONDS: Final = 30.0
HISTORY_LIMIT: Final = 25_000
MAX_LIVE: Final = 2_000
RSS_LIMIT: Final = 2 * 1024**3
ADDRESS_SPACE_LIMIT: Final = 4 * 1024**3
CANARY_EVERY: Final = 0.25
CANARY_TIMEOUT: Final = 5.0
BATCH: Final = 20
CHUNK: Final = 200
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
    """Counters of one family (summed across chunks by the supervisor)."""

    definitions_loaded: int = 0
    definitions_invalid: int = 0
    load_internal_errors: int = 0
    executions: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    internal_errors: int = 0
    escaped: int = 0
    hangs: int = 0
    runaway: int = 0
    runtimes_broken: int = 0
    frozen: int = 0
    crashes: int = 0
    memory: int = 0
    canary_runs: int = 0
    canary_failures: int = 0
    canary_latencies: list[float] = field(default_factory=list)
    peak_rss: int = 0
    seconds: float = 0.0

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

#: Exceptions the engine logged (``log.exception``) since the list was last cleared.
_CAPTURED: list[BaseException] = []


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
    if exc is not None:
        exc.add_note(f"logged as {event_dict.get('event')}")
        _CAPTURED.append(exc)
    elif method in ("error", "critical"):
        _CAPTURED.append(RuntimeError(f"engine logged {event_dict.get('event')}: {event_dict}"))
    raise structlog.DropEvent


def quiet_logs() -> None:
    """Route the runtime's structlog output to the capture list (the worker prints nothing)."""
    structlog.configure(processors=[_capture], cache_logger_on_first_use=False)


# ---------------------------------------------------------------------------------------------
# Running one case
# ---------------------------------------------------------------------------------------------

_ALLOWED_CREATE: Final = (InvalidDefinition, InvalidName)
_ALLOWED_START: Final = (InvalidExecutionInput,)


class RuntimeSpoiled(Exception):
    """The runtime must be replaced (after a runaway or a hang)."""


async def run_case(rt: Runtime, case: Case) -> Outcome:
    """Create, start and watch one execution of ``case`` in ``rt``."""
    _CAPTURED.clear()
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
    outcome = await _watch(rt, started.execution_arn)
    if _CAPTURED and outcome.kind in (None, "internal_error"):
        # The engine logged the exception behind the ending: name the module it came from.
        logged = _CAPTURED[0]
        found = _exception_outcome("internal_error", logged, outcome.status)
        found.detail += " (" + "; ".join(getattr(logged, "__notes__", [])) + ")"
        outcome = found
    return outcome


async def _watch(rt: Runtime, arn: str) -> Outcome:
    clock = rt.clock
    assert isinstance(clock, ManualClock)
    began = last_move = time.monotonic()
    marker: tuple[int | None, float, int] | None = None
    while True:
        try:
            desc = await rt.wait_for_execution(arn, timeout=0.05)
        except TimeoutError:
            pass
        except Exception as exc:
            return _exception_outcome("escaped", exc, "error")
        else:
            return classify_description(desc.status, desc.error, desc.cause)
        engine = rt.engine
        live = engine.live.get(arn)
        events = None if live is None else live.state.last_event_id
        now = time.monotonic()
        current = (events, clock.now(), len(engine.live))
        if current != marker:
            marker, last_move = current, now
        problem = None
        if events is not None and events > HISTORY_LIMIT:
            problem = f"history past {HISTORY_LIMIT:,} events (AWS fails the execution)"
        elif len(engine.live) > MAX_LIVE:
            problem = f"more than {MAX_LIVE:,} live executions"
        elif now - began > MAX_WALL_SECONDS:
            problem = f"still running after {MAX_WALL_SECONDS:.0f} s of wall time"
        if problem is not None:
            with contextlib.suppress(Exception):
                await rt.stop_execution(arn, error="Fuzz.Runaway", cause=problem)
            return Outcome(
                status="RUNNING",
                kind="runaway",
                signature=f"runaway|{re.sub(r'[0-9,]+', 'N', problem)}",
                detail=problem,
            )
        if now - last_move > STALL_SECONDS:
            return Outcome(
                status="RUNNING",
                kind="hang",
                signature="hang|no progress",
                detail=f"no event and no clock move for {STALL_SECONDS:.0f} s (events: {events})",
            )


async def _run_canary(rt: Runtime, arn: str) -> float | None:
    """Wall seconds one canary took, None when it did not succeed within the timeout."""
    began = time.perf_counter()
    try:
        started = await rt.start_execution(arn, {"canary": True})
        desc = await rt.wait_for_execution(started.execution_arn, timeout=CANARY_TIMEOUT)
    except Exception:
        return None
    return time.perf_counter() - began if desc.status == "SUCCEEDED" else None


# ---------------------------------------------------------------------------------------------
# The worker
# ---------------------------------------------------------------------------------------------


@final
@dataclass(frozen=True, kw_only=True)
class Chunk:
    family: str
    first_seed: int
    count: int
    ratio: int
    out: Path
    results: Path
    deadline: float | None = None
    """Wall-clock time (``time.time()``) after which no new case starts."""


#: Shared with the supervisor: [seed, variant (-1: the execution), heartbeat, phase].
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
            f"benchmarks.fuzz.reproducer(benchmarks.fuzz_gen.make_case({data['family']!r}, "
            f"{data['seed']}), {data['variant']})"
        )
        return json.dumps(safe, indent=1, ensure_ascii=True, default=repr)


def save_failure(out: Path, outcome: Outcome, repro: dict[str, JSON]) -> str:
    """Write the reproducer of a distinct failure once; returns its file name."""
    digest = hashlib.sha256(outcome.signature.encode()).hexdigest()[:12]
    path = out / "reproducers" / f"{outcome.kind}-{digest}.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "kind": outcome.kind,
            "signature": outcome.signature,
            "module": outcome.module,
            "detail": outcome.detail,
            "replay": f"python -m benchmarks.fuzz --replay {path}",
            **repro,
        }
        tmp = path.with_suffix(".tmp")
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


class _Worker:
    def __init__(self, chunk: Chunk, shared: Shared) -> None:
        self.chunk = chunk
        self.shared = shared
        self.counts = Counts()
        self.failures: list[dict[str, JSON]] = []
        self.seen: set[str] = set()
        self.results: TextIO = chunk.results.open("a")
        self.started = time.monotonic()

    def flush(self) -> None:
        self.counts.peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.counts.seconds = time.monotonic() - self.started
        self.started = time.monotonic()
        line = {"counts": self.counts.as_json(), "failures": self.failures}
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
            file = save_failure(self.chunk.out, outcome, repro)
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
        deadline = self.chunk.deadline
        return deadline is not None and time.time() > deadline

    async def heartbeat(self) -> None:
        while True:
            self.shared[2] += 1
            await asyncio.sleep(0.2)

    def load_phase(self, case: Case) -> bool:
        """Load the case and its mutations; True when the case itself loaded."""
        self.shared[3] = 0
        first = False
        for variant in range(self.chunk.ratio):
            self.shared[1] = variant
            repro = reproducer(case, variant) if variant else None
            definition = case.definition if repro is None else repro["definition"]
            outcome = try_load(definition, case.machine_type)
            if outcome.status == "loaded":
                self.counts.definitions_loaded += 1
                first = first or variant == 0
            elif outcome.status == "invalid":
                self.counts.definitions_invalid += 1
            else:
                self.counts.load_internal_errors += 1
                repro = repro or reproducer(case, 0)
                if outcome.signature not in self.seen:
                    signature = outcome.signature

                    def fails(candidate: JSON, signature: str = signature) -> bool:
                        return try_load(candidate, case.machine_type).signature == signature

                    repro["definition"] = shrink(repro["definition"], fails)
                self.record(outcome, repro)
        return first

    async def run(self) -> None:
        chunk = self.chunk
        beat = asyncio.ensure_future(self.heartbeat())
        seeds = range(chunk.first_seed, chunk.first_seed + chunk.count)
        try:
            index = 0
            while index < len(seeds) and not self.past_deadline():
                index = await self.runtime_span(seeds, index)
        finally:
            beat.cancel()
            self.flush()
            self.results.close()

    async def runtime_span(self, seeds: range, index: int) -> int:
        """Run cases in one runtime from ``seeds[index]`` until the chunk ends or the runtime
        must be replaced; returns the next index."""
        rt = Runtime("memory", handlers=HANDLERS, virtual_time=True, request_poll_interval=None)
        spoiled = False
        async with rt:
            canary = await rt.create_state_machine("FuzzCanary", _CANARY)
            probe = await rt.create_state_machine("FuzzWaitProbe", _WAIT_PROBE)
            beside = asyncio.ensure_future(self.canary_beside(rt, canary.arn))
            batch: list[int] = []
            try:
                while index < len(seeds) and not spoiled and not self.past_deadline():
                    seed = seeds[index]
                    index += 1
                    batch.append(seed)
                    spoiled = await self.one(rt, seed)
                    last = index == len(seeds) or self.past_deadline()
                    if len(batch) >= BATCH or last or spoiled:
                        if not spoiled:
                            spoiled = not await self.after_batch(rt, canary.arn, probe.arn, batch)
                        batch = []
                        self.flush()
            finally:
                beside.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beside
                # Close with a deadline: a runtime that cannot close is itself a finding.
                for live in list(rt.engine.live):
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(rt.stop_execution(live), 1.0)
        return index

    async def one(self, rt: Runtime, seed: int) -> bool:
        """Load and run case ``seed``; True when the runtime must be replaced."""
        self.shared[0] = seed
        self.shared[1] = -1
        case = make_case(self.chunk.family, seed)
        if not self.load_phase(case):
            return False
        self.shared[1] = -1
        self.shared[3] = 1
        outcome = await run_case(rt, case)
        counts = self.counts
        counts.executions += 1
        counts.statuses[outcome.status] += 1
        match outcome.kind:
            case None:
                pass
            case "internal_error":
                counts.internal_errors += 1
            case "escaped":
                counts.escaped += 1
            case "hang":
                counts.hangs += 1
            case "runaway":
                counts.runaway += 1
            case _:
                counts.internal_errors += 1
        self.record(outcome, reproducer(case, -1))
        return outcome.kind in ("hang", "runaway")

    async def canary_beside(self, rt: Runtime, arn: str) -> None:
        while True:
            await asyncio.sleep(CANARY_EVERY)
            latency = await _run_canary(rt, arn)
            self.counts.canary_runs += 1
            self.counts.canary_latencies.append(CANARY_TIMEOUT if latency is None else latency)

    async def after_batch(self, rt: Runtime, canary: str, probe: str, batch: list[int]) -> bool:
        """The canary and the Wait probe must still finish in this runtime after a batch."""
        self.shared[3] = 2
        latency = await _run_canary(rt, canary)
        self.counts.canary_runs += 1
        self.counts.canary_latencies.append(CANARY_TIMEOUT if latency is None else latency)
        probe_ok = await _run_canary(rt, probe) is not None
        if latency is not None and probe_ok:
            return True
        self.counts.runtimes_broken += 1
        what = "canary (10 Pass states)" if latency is None else "Wait probe"
        outcome = Outcome(
            status="broken",
            kind="runtime_broken",
            signature=f"runtime_broken|{self.chunk.family}|{what}",
            detail=f"the {what} did not finish within {CANARY_TIMEOUT:.0f} s after seeds "
            f"{batch[0]}..{batch[-1]}",
        )
        repro = reproducer(make_case(self.chunk.family, batch[-1]), -1)
        repro["batch_seeds"] = batch
        self.record(outcome, repro)
        return False


def worker_main(chunk: Chunk, shared: Shared, stack_file: str) -> None:
    """The worker process's entry point."""
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    stacks = open(stack_file, "w")  # noqa: SIM115 (kept open for faulthandler)
    faulthandler.enable(file=stacks)
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
    quiet_logs()
    asyncio.run(_Worker(chunk, shared).run())
