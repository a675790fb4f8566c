"""The slow lane: decisions whose JSONata outlasted the loop's slice, decided again in a worker
process with the full evaluation budget (issue 11).

One JSONata evaluation may take up to its budget (500 ms), and it holds the GIL: on the event
loop, every other execution of the process would wait that long. So the engine decides each
step within a slice (:mod:`runtime.lang.jsonata_slice`, ``ExecutionLimits.evaluation_slice_ms``);
a step whose JSONata spends the slice is decided again here, over the state folded from the
log, by one worker process started when first needed (``python -m runtime.engine.slowlane``,
a plain subprocess: ``multiprocessing`` would import the embedding program's main module again
in the child). ``decide`` is a pure function of (definition, state, incoming fact, limits), so
the worker's decision is the one the loop would have made; the engine folds its events into the
live state as if it had decided them itself.

The engine watches the worker's resident memory while it decides
(``ExecutionLimits.slow_lane_memory_bytes``): an expression that allocates without end there
ends the worker, not the runtime, and the lane reports it as :class:`SlowLaneFailed` (the
engine fails that execution with ``States.Runtime``); the next slow decision starts a fresh
worker. The worker evaluates under
the engine's JSONata budget (:func:`~runtime.lang.jsonata_engine.set_budget`), sent with each
request. Decisions queue for the one
worker, first come first served: only steps whose JSONata is heavy wait here.

The two processes speak length-prefixed pickles over the worker's stdin and stdout (both ends
are this package; nothing else writes to the pipe).
"""

from __future__ import annotations

import asyncio
import functools
import io
import os
import pickle
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO, Final, final

import anyio
import msgspec

from runtime.core.decide import decide
from runtime.core.effects import Decision, Incoming
from runtime.core.limits import ExecutionLimits
from runtime.core.state import ExecutionState
from runtime.definition import load_definition
from runtime.definition.model import StateMachine
from runtime.lang.jsonata_engine import set_budget

__all__ = ["SlowLane", "SlowLaneFailed"]

_HEADER: Final = struct.Struct("!Q")
_WATCH_SECONDS: Final = 0.01
_READY: Final = b"ready\n"
_PAGE_BYTES: Final = os.sysconf("SC_PAGE_SIZE")
_PACKAGE_ROOT: Final = str(Path(__file__).resolve().parents[2])
"""The folder holding the ``runtime`` package, put first on the worker's path so that it runs
this very code."""


class SlowLaneFailed(Exception):
    """The worker ended while it decided (its memory limit, a signal): the step has no outcome."""


@final
class SlowLane:
    """One worker process, started on first use, that decides steps with the full budget."""

    __slots__ = ("_lock", "_memory_bytes", "_worker", "decisions")

    def __init__(self, memory_bytes: int | None) -> None:
        self._memory_bytes = memory_bytes
        self._worker: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.decisions = 0
        """Steps decided here so far (for tests and diagnostics)."""

    @property
    def busy(self) -> bool:
        """Whether a step is being decided here now."""
        return self._lock.locked()

    async def decide(
        self,
        machine: StateMachine,
        machine_type: str,
        state: ExecutionState,
        incoming: Incoming,
        limits: ExecutionLimits,
    ) -> Decision:
        """``decide(machine, state, incoming, limits=limits)`` in the worker.

        Raises:
            SlowLaneFailed: the worker ended before it answered.
        """
        source = msgspec.json.encode(machine.source)
        request = pickle.dumps(
            (source, machine_type, state, incoming, limits, set_budget()),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        machines = _machines(machine)
        async with self._lock:
            # ``decide`` is pure: a worker lost before it answered (killed while idle, by the
            # system or a signal) is replaced and asked again, once.
            for attempt in (1, 2):
                worker = await self._started()
                watch = _Watch(worker.pid, self._memory_bytes)
                lost: BaseException | None = None
                try:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(watch.run, worker)
                        try:
                            kind, value = await _exchange(worker, request, machines)
                        except (asyncio.IncompleteReadError, ConnectionError) as exc:
                            lost = exc
                        tg.cancel_scope.cancel()
                except BaseException:
                    # Cancelled half-way through: the answer would reach the next request.
                    with anyio.CancelScope(shield=True):
                        await self._ended(worker)
                    raise
                if watch.held is not None:  # killed for its memory: never asked again
                    await self._ended(worker)
                    if lost is not None:
                        raise SlowLaneFailed(
                            "the process deciding a step whose JSONata outlasted the event "
                            f"loop's slice held {watch.held} bytes more than when it began, "
                            f"past the {self._memory_bytes} it may"
                        ) from lost
                if lost is None:
                    break  # (an answer that came before the kill stands)
                code = await self._ended(worker)
                if attempt == 2:
                    raise SlowLaneFailed(
                        "the process deciding a step whose JSONata outlasted the event loop's "
                        f"slice ended with exit status {code}"
                    ) from lost
        if kind == "error":
            raise value
        self.decisions += 1
        assert isinstance(value, Decision)
        return value

    async def _started(self) -> asyncio.subprocess.Process:
        worker = self._worker
        if worker is not None and worker.returncode is None:
            return worker
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if part
        )
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-P",  # not the working directory's own ``runtime``, if it has one
            "-m",
            "runtime.engine.slowlane",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C at the terminal is the engine's to handle
        )
        assert worker.stdout is not None
        try:
            # Ready once its imports are done (so that the memory watch starts from there).
            ready = await worker.stdout.readexactly(len(_READY))
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                code = await self._ended(worker)
            if isinstance(exc, asyncio.IncompleteReadError):
                raise SlowLaneFailed(
                    f"the slow lane's process did not start (exit status {code})"
                ) from exc
            raise
        if ready != _READY:
            code = await self._ended(worker)
            raise SlowLaneFailed(f"the slow lane's process did not start (exit status {code})")
        self._worker = worker
        return worker

    async def _ended(self, worker: asyncio.subprocess.Process) -> int | None:
        """Stop ``worker`` (if it still runs) and reap it; its exit status."""
        if self._worker is worker:
            self._worker = None
        if worker.returncode is None:
            worker.kill()
        return await worker.wait()

    async def aclose(self) -> None:
        """Stop the worker, if one was started (a decision in flight is abandoned)."""
        worker = self._worker
        if worker is not None:
            if worker.stdin is not None:
                worker.stdin.close()
            await self._ended(worker)


async def _exchange(
    worker: asyncio.subprocess.Process, request: bytes, machines: dict[str, StateMachine]
) -> tuple[str, Any]:
    """Send one request to ``worker`` and read its answer (its state machines, which do not
    pickle, named by their pointer and found again in ``machines``)."""
    assert worker.stdin is not None
    assert worker.stdout is not None
    worker.stdin.write(_HEADER.pack(len(request)) + request)
    await worker.stdin.drain()
    size = _HEADER.unpack(await worker.stdout.readexactly(_HEADER.size))[0]
    unpickler = pickle.Unpickler(io.BytesIO(await worker.stdout.readexactly(size)))
    unpickler.persistent_load = machines.__getitem__  # type: ignore[method-assign]
    try:
        kind, value = unpickler.load()
    except Exception as exc:  # an exception that did not come back whole
        return "error", SlowLaneFailed(f"the slow lane's answer did not unpickle: {exc!r}")
    return kind, value


def _machines(machine: StateMachine) -> dict[str, StateMachine]:
    """``machine`` and every machine nested in it (Parallel branches, Map processors), by
    pointer."""
    return {current.pointer: current for current in machine.machines()}


def _machine_pointer(obj: object) -> str | None:
    """A state machine's pickle id in an answer (compiled machines do not pickle)."""
    return obj.pointer if isinstance(obj, StateMachine) else None


@final
class _Watch:
    """The worker's resident memory while it decides, read from ``/proc`` every
    :data:`_WATCH_SECONDS`: past ``allowance`` bytes more than when the request began, the
    worker is killed. (Its address space cannot bound it: the allocators reserve a GiB of it
    before anything is decided, and JSONata's values are carved out of that reserve; nor can
    the worker watch itself: the engine holds the GIL while it evaluates.)"""

    __slots__ = ("_allowance", "_path", "held")

    def __init__(self, pid: int, allowance: int | None) -> None:
        self._allowance = allowance
        self._path = f"/proc/{pid}/statm"
        self.held: int | None = None
        """The bytes held beyond the start when the worker was killed for them."""

    def resident(self) -> int | None:
        try:
            with open(self._path, "rb") as statm:
                return int(statm.read().split()[1]) * _PAGE_BYTES
        except (OSError, ValueError, IndexError):
            return None  # no /proc, or the worker is gone

    async def run(self, worker: asyncio.subprocess.Process) -> None:
        allowance = self._allowance
        start = self.resident()
        if allowance is None or start is None:
            return
        while True:
            await anyio.sleep(_WATCH_SECONDS)
            now = self.resident()
            if now is None:
                return
            if now - start > allowance:
                self.held = now - start
                worker.kill()
                return


@functools.lru_cache(maxsize=16)
def _machine(source: bytes, machine_type: str) -> StateMachine:
    """The compiled definition, once per worker (its source as the engine holds it)."""
    return load_definition(source, machine_type=machine_type)


def _answer(request: bytes) -> bytes:
    """The worker's side of one request: the step decided with the full budget (no slice is
    open here), or the exception ``decide`` raised."""
    source, machine_type, state, incoming, limits, budget = pickle.loads(request)
    set_budget(  # the engine's, which an embedder (or a test) may have changed
        timeout_ms=budget["timeout"],
        max_stack_depth=budget["max_stack_depth"],
        max_sequence_length=budget["max_sequence_length"],
    )
    answer: tuple[str, Any]
    try:
        answer = ("ok", decide(_machine(source, machine_type), state, incoming, limits=limits))
    except Exception as exc:  # handed to the engine, which fails the execution
        answer = ("error", exc)
    try:
        return _dumps(answer)
    except Exception as exc:  # something that does not pickle: its text does
        failure = RuntimeError(f"the slow lane's answer did not pickle: {exc!r}")
        return _dumps(("error", failure))


def _dumps(answer: tuple[str, Any]) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.persistent_id = _machine_pointer  # type: ignore[method-assign]
    pickler.dump(answer)
    return buffer.getvalue()


def _serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Say ready, then answer requests until the engine closes the pipe."""
    answers.write(_READY)
    answers.flush()
    while True:
        header = requests.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        answer = _answer(requests.read(_HEADER.unpack(header)[0]))
        answers.write(_HEADER.pack(len(answer)) + answer)
        answers.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
