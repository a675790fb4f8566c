"""Map Runs: a distributed Map's iterations as child executions (logic version 3, issue 14).

The core starts an iteration with a ``RunTask`` of resource ``MAP_RUN_CHILD`` (within the
Map's MaxConcurrency); this module runs it as AWS runs a child workflow execution: it makes
sure the child workflows' state machine ``<parent state machine>/<label>`` holds the Map's
ItemProcessor, starts the child on the iteration's input under a name derived from the Map
Run and the index (so an owed start re-run after a crash or a takeover finds the same child),
waits for it to end and reports its output, or its error and cause, as the iteration's outcome.
If the parent ends while a child runs (stopped, failed, timed out), the child is stopped too.

Imports ``core.effects``, ``engine.tasks`` and ``errors`` only; the runtime is reached through
``MapRunHost``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import uuid
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Final, Protocol, final

import msgspec

from runtime.core.effects import MapRunChild, RunTask
from runtime.engine.nested import ChildDescription, NestedHost
from runtime.engine.tasks import Outcome
from runtime.errors import ExecutionLimitExceeded, PartitionLost, StatemillError

__all__ = [
    "STARTS_AT_ONCE",
    "FifoBudget",
    "MapRunHost",
    "StartSlots",
    "child_name",
    "outcome_of",
    "run_map_child",
]

JSON = Any
#: Starts of one child tried while its partition keeps moving (a takeover under way).
PARTITION_LOST_ATTEMPTS: Final = 5


class MapRunHost(NestedHost, Protocol):
    """The runtime services a Map Run's child execution needs (beside a nested one's)."""

    async def map_run_machine(self, parent: str, spec: MapRunChild) -> str:
        """The ARN of the state machine the Map Run's children run (created or brought up to
        the Map's ItemProcessor), the Map Run recorded once."""
        ...

    async def start_map_child(
        self,
        state_machine_arn: str,
        input: JSON,
        name: str,
        parent: str,
        map_run_arn: str,
        *,
        redrive: bool = False,
    ) -> str:
        """Start (or find, when it exists) child ``name`` of the Map Run; its ARN. With
        ``redrive``, a child found ended without success is redriven (RedriveExecution)."""
        ...

    def when_child_ends(
        self, execution_arn: str, then: Callable[[ChildDescription | None], None]
    ) -> bool:
        """Call ``then`` with the child's description once it ends in this runtime (``None``:
        it was handed to another member first); False if this runtime does not run it."""
        ...

    def open_map_run(self, execution_arn: str, map_run_arn: str) -> None:
        """Record the Map Run (in the background)."""
        ...

    def stop_map_run(self, map_run_arn: str) -> None:
        """Stop the Map Run's children still running (in the background)."""
        ...

    async def read_items(self, execution_arn: str, task: RunTask) -> Outcome:
        """A Map's next items from its ItemReader (``engine.itemreads``)."""
        ...

    async def write_results(self, execution_arn: str, task: RunTask) -> Outcome:
        """A finished Map Run's results written by its ResultWriter; the Map's output."""
        ...

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` in the background (its failure logged)."""
        ...


def child_name(map_run_arn: str, index: int) -> str:
    """The name of the Map Run's child for iteration ``index``: a UUID (as AWS names them),
    derived so that starting it again finds the same execution."""
    digest = hashlib.sha256(f"{map_run_arn}#{index}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


#: Child executions a process starts (or stops) at once: a Map Run opening 10,000 children
#: started them all in one turn of the event loop, which it then held for 2.3 s (the fuzz's
#: 40,000-item distributed Map); behind this bound each turn starts a few dozen.
STARTS_AT_ONCE: Final = 256


@final
class FifoBudget:
    """At most ``size`` units held at once (``None``: no bound); an acquire that would pass it
    waits, first come first served, until enough are given back, and units given back go
    straight to the oldest waiter: O(1) a release. An acquire larger than the whole budget is
    let through once nothing else is held.

    Two uses. The inputs of one Map Run's children started here and not yet ended, in bytes
    of their JSON text (``run_map_child``'s ``budget``): ``MaxConcurrency`` counts children,
    not bytes, and 10,000 children whose ItemSelector copies a 230 KB input each (the map
    fuzz, seed 10002713) held 2.3 GiB in one process on SQLite, waiting on commits
    (``ExecutionLimits.max_map_run_input_bytes`` sets the bound). One budget per Map Run, so
    that it cannot deadlock: it is held only by the Map Run's own children, and none of them
    waits for a sibling (a child's own distributed Map has a budget of its own). And the
    child starts in progress at once (:class:`StartSlots`), one unit each. ``on_idle`` is
    told when nothing is held or awaited any more.
    """

    __slots__ = ("_held", "_on_idle", "_size", "_waiters")

    def __init__(self, size: int | None, on_idle: Callable[[], None] = lambda: None) -> None:
        self._size = size
        self._on_idle = on_idle
        self._held = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @property
    def held(self) -> int:
        """Units held now."""
        return self._held

    @property
    def size(self) -> int | None:
        """The bound (``None``: none)."""
        return self._size

    def _fits(self, size: int) -> bool:
        return self._size is None or self._held == 0 or self._held + size <= self._size

    async def acquire(self, size: int) -> None:
        """Hold ``size`` units, waiting for them if they do not fit."""
        if not self._waiters and self._fits(size):
            self._held += size
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((size, waiter))
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted as it was cancelled: give it back
            else:
                # Left in the queue, done: ``_grant`` drops it when it reaches the front.
                # (Removing it here was O(n) a waiter: a Map Run that ended with 10,000
                # child starts waiting cancelled them all in one turn, O(n^2), and the map
                # fuzz saw the event loop frozen in this line.)
                waiter.cancel()
                self._grant()
                if self._held == 0 and not self._waiters:
                    self._on_idle()
            raise

    def release(self, size: int) -> None:
        """Give back ``size`` units (a child ended, or its start failed; a start is over)."""
        self._held -= size
        self._grant()
        if self._held == 0 and not self._waiters:
            self._on_idle()

    def _grant(self) -> None:
        waiters = self._waiters
        while waiters:
            size, waiter = waiters[0]
            if waiter.done():  # cancelled: its task removes it
                waiters.popleft()
                continue
            if not self._fits(size):
                return
            waiters.popleft()
            self._held += size
            waiter.set_result(None)


@final
class StartSlots:
    """At most ``size`` child starts in progress at once; the others wait, first come first
    served, and a slot given back goes straight to the next waiter (a :class:`FifoBudget` of
    one unit a start).

    Not an ``asyncio.Semaphore``: its release scans its waiters from the front for one not yet
    woken, and a woken waiter leaves the queue only when its task runs. A group commit ends
    :data:`STARTS_AT_ONCE` starts in one turn of the event loop, so each of their releases
    scanned the ones woken before it: quadratic, 1.7 s of a 10,000-child Map Run's 27 s under
    cProfile (issue 11, the map fuzz's canary). Here a release pops the next waiter: O(1).
    """

    __slots__ = ("_budget",)

    def __init__(self, size: int) -> None:
        self._budget = FifoBudget(size)

    @property
    def free(self) -> int:
        """Slots not held (0 while starts wait)."""
        return (self._budget.size or 0) - self._budget.held

    async def __aenter__(self) -> None:
        await self._budget.acquire(1)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._budget.release(1)


async def run_map_child(
    task: RunTask,
    host: MapRunHost,
    *,
    parent: str,
    starts: StartSlots,
    budget: FifoBudget,
    report: Callable[[Outcome], None],
) -> Outcome | None:
    """Start iteration ``task`` of a Map Run as a child execution and see to its outcome.

    When this runtime runs the child, its end reports the outcome (``report``) and this
    returns ``None`` at once: 10,000 children in flight hold no task each (a stopped Map
    Run's 10,000 cancelled waits held the event loop for 0.9 s). When another member of a
    cluster runs it, this waits for its end and returns the outcome. ``starts`` bounds the
    starts in progress at once (:data:`STARTS_AT_ONCE`), ``budget`` the bytes of the inputs of
    the children started and not ended.
    """
    spec = task.input
    assert isinstance(spec, MapRunChild)
    size = len(msgspec.json.encode(spec.input))
    await budget.acquire(size)
    held = True

    def give_back() -> None:
        nonlocal held
        if held:
            held = False
            budget.release(size)

    try:
        async with starts:
            machine_arn = await host.map_run_machine(parent, spec)
            name = child_name(spec.map_run_arn, spec.index)
            for attempt in range(1, PARTITION_LOST_ATTEMPTS + 1):
                try:
                    child_arn = await host.start_map_child(
                        machine_arn,
                        spec.input,
                        name,
                        parent,
                        spec.map_run_arn,
                        redrive=spec.redrive,
                    )
                    break
                except PartitionLost:
                    # The child's partition moved to another member while it was started
                    # here: start it again (its name is the same, so a start that did land
                    # is found), which asks the new owner. Not the iteration's failure.
                    if attempt == PARTITION_LOST_ATTEMPTS:
                        raise
                    await asyncio.sleep(0.1 * attempt)
    except ExecutionLimitExceeded as exc:
        give_back()
        return "failed", None, "States.ExecutionLimitExceeded", str(exc)
    except StatemillError as exc:
        give_back()
        return "failed", None, "States.Runtime", f"{type(exc).__name__}: {exc}"
    except BaseException:
        give_back()
        raise

    def ended(child: ChildDescription | None) -> None:
        if child is not None:
            give_back()
            report(outcome_of(child))
        else:  # handed to another member meanwhile: wait for it there
            host.spawn(_wait_and_report(host, child_arn, report, give_back))

    watched = False
    try:
        watched = host.when_child_ends(child_arn, ended)  # then ``ended`` gives it back
        if watched:
            return None
        return outcome_of(await host.wait_child(child_arn))
    finally:
        if not watched:
            give_back()


async def _wait_and_report(
    host: MapRunHost,
    child_arn: str,
    report: Callable[[Outcome], None],
    give_back: Callable[[], None],
) -> None:
    try:
        outcome = outcome_of(await host.wait_child(child_arn))
    finally:
        give_back()
    report(outcome)


def outcome_of(child: ChildDescription) -> Outcome:
    """The iteration's outcome from its child execution's end: its output, or its error and
    cause (a child that failed, timed out or was aborted fails the iteration)."""
    if child.status == "SUCCEEDED":
        return "succeeded", msgspec.json.decode(child.output or "null"), None, None
    return "failed", None, child.error, child.cause
