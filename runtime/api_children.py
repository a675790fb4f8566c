"""The runtime's side of child executions: what ``states:startExecution`` Tasks
(``engine.nested``) and a distributed Map's Map Run children (``engine.maprun``) need.

A nested child is started and waited for; a Map Run's child is started within the Map Run's
state machine ``<parent>/<label>`` (brought up once per Map Run), under a name derived from the
Map Run and the index, and its end is reported without a task waiting for it. Stops of
children (a parent aborted, a Map Run failed) are queued for a few stoppers.

Part of ``runtime.api`` (it reaches the ``Runtime``'s internals on purpose).
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, final

import structlog

from runtime.api_types import ExecutionDescription
from runtime.core.decide import iso_time
from runtime.core.effects import MapRunChild, ResultWrite, RunTask
from runtime.engine.itemreads import ItemReads
from runtime.engine.nested import ChildDescription
from runtime.engine.tasks import Outcome
from runtime.errors import ExecutionAlreadyExists, StatemillError
from runtime.items import (
    InvalidSpec,
    ObjectStore,
    ResultWriter,
    ResultWriterFailed,
    parse_result_writer,
)
from runtime.store.base import ExecutionRecord, MapRunRecord, MapRunStore, map_run_children

if TYPE_CHECKING:
    from runtime.api import Runtime

__all__ = ["ChildHost", "express_id"]

JSON = Any

log = structlog.get_logger("statemill.api")


#: Map Runs whose child workflows' state machine this process holds ready (the oldest are
#: forgotten: opening one again only reads its machine).
_MAP_RUNS_HELD: Final = 10_000


#: Children stopped at once when their parent ends (``ChildHost.stop_child``).
_STOPPERS: Final = 8


def express_id(name: str) -> str:
    """The unique part of an EXPRESS child execution's ARN, derived from its name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


#: The ends of a child that a redriven Map Run redrives.
_REDRIVABLE: Final = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})

_NO_OBJECT_STORE: Final = (
    "This runtime has no object store for a ResultWriter: open it with "
    "Runtime(object_store=runtime.items.LocalObjectStore(folder)) or an S3ObjectStore."
)


def result_of(child: ExecutionRecord) -> dict[str, JSON]:
    """A child execution as a ResultWriter writes it (DescribeExecution's fields, AWS's
    capitalised names, dates in ISO 8601 with milliseconds)."""
    result: dict[str, JSON] = {
        "ExecutionArn": child.execution_arn,
        "Input": child.input,
        "InputDetails": {"Included": True},
        "Name": child.name,
    }
    if child.output is not None:
        result["Output"] = child.output
        result["OutputDetails"] = {"Included": True}
    result["RedriveCount"] = child.redrive_count
    result["StartDate"] = iso_time(child.start_date)
    result["StateMachineArn"] = child.state_machine_arn
    result["Status"] = child.status
    if child.stop_date is not None:
        result["StopDate"] = iso_time(child.stop_date)
    if child.error is not None:
        result["Error"] = child.error
    if child.cause is not None:
        result["Cause"] = child.cause
    return result


@final
class ChildHost:
    """What ``states:startExecution`` Tasks and Map Runs' child executions need from the
    runtime (``engine.nested``, ``engine.maprun``)."""

    def __init__(self, runtime: Runtime, object_store: ObjectStore | None = None) -> None:
        self.runtime = runtime
        self._object_store = object_store
        self._reads = ItemReads(object_store)
        self._map_runs: collections.OrderedDict[str, asyncio.Future[str]] = (
            collections.OrderedDict()
        )
        self._stops: collections.deque[tuple[str, str | None, str | None]] = collections.deque()
        self._stoppers = 0

    async def start_child(
        self, state_machine_arn: str, input: JSON, name: str, parent: str
    ) -> tuple[str, float]:
        runtime = self.runtime
        try:
            started = await runtime._start(state_machine_arn, input, name=name, parent=parent)
        except ExecutionAlreadyExists:
            # Re-run after a restart: the child this attempt started has already ended.
            record = runtime._machine_records[state_machine_arn]
            prefix = f"arn:aws:states:{runtime.region}:{runtime.account}"
            arn = f"{prefix}:execution:{record.name}:{name}"
            child = await runtime._log.get_execution(arn)
            if child is None or child.parent_execution_arn != parent:
                raise
            return arn, child.start_date
        return started.execution_arn, started.start_date

    async def wait_child(self, execution_arn: str) -> ExecutionDescription:
        return await self.runtime.wait_for_execution(execution_arn)

    async def map_run_machine(self, parent: str, spec: MapRunChild) -> str:
        # Once per Map Run in this process, however many of its children start at once.
        pending = self._map_runs.get(spec.map_run_arn)
        if pending is None:
            pending = asyncio.ensure_future(self._open_map_run(parent, spec))
            self._map_runs[spec.map_run_arn] = pending
            while len(self._map_runs) > _MAP_RUNS_HELD:
                self._map_runs.popitem(last=False)
        try:
            return await asyncio.shield(pending)
        except Exception:
            if self._map_runs.get(spec.map_run_arn) is pending:
                del self._map_runs[spec.map_run_arn]  # the next child tries again
            raise

    async def _open_map_run(self, parent: str, spec: MapRunChild) -> str:
        """The child workflows' state machine, brought up to the Map's ItemProcessor, and the
        Map Run's row (DescribeMapRun, ListMapRuns)."""
        runtime = self.runtime
        # arn:...:mapRun:<state machine>/<label>:<id>: the children's machine is <...>/<label>.
        machine_name = spec.map_run_arn.partition(":mapRun:")[2].rpartition(":")[0]
        record = await runtime.child_workflow_machine(
            machine_name, spec.definition(), spec.execution_type
        )
        # Recorded when the run opened (open_map_run); again here, if absent, in case a
        # crash came between the two.
        await self._record_map_run(parent, spec.map_run_arn)
        return record.arn

    def open_map_run(self, execution_arn: str, map_run_arn: str) -> None:
        self.runtime.engine.spawn(self._record_map_run(execution_arn, map_run_arn))

    async def _record_map_run(self, execution_arn: str, map_run_arn: str) -> None:
        """The Map Run's row (DescribeMapRun, ListMapRuns), written once."""
        runtime = self.runtime
        store = runtime.store
        if not isinstance(store, MapRunStore):
            return
        prefix, _, rest = map_run_arn.partition(":mapRun:")
        machine_name = rest.rpartition(":")[0]
        await store.put_map_run(
            MapRunRecord(
                map_run_arn=map_run_arn,
                execution_arn=execution_arn,
                state_machine_arn=f"{prefix}:stateMachine:{machine_name}",
                start_date=runtime.clock.now(),
            )
        )

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
        runtime = self.runtime
        try:
            started = await runtime._start(
                state_machine_arn, input, name=name, parent=parent, map_run_arn=map_run_arn
            )
        except ExecutionAlreadyExists:
            # Started before a restart or a takeover, and ended since: the same child.
            record = runtime._machine_records[state_machine_arn]
            prefix = f"arn:aws:states:{runtime.region}:{runtime.account}"
            arn = f"{prefix}:execution:{record.name}:{name}"
            if record.type == "EXPRESS":
                arn = f"{prefix}:express:{record.name}:{name}:{express_id(name)}"
            child = await runtime._log.get_execution(arn)
            if child is None or child.map_run_arn != map_run_arn:
                raise
            if redrive and child.status in _REDRIVABLE and record.type == "STANDARD":
                # A redriven Map Run redrives the children that did not succeed (AWS).
                await runtime.redrive_execution(arn)
            return arn
        return started.execution_arn

    def when_child_ends(
        self, execution_arn: str, then: Callable[[ChildDescription | None], None]
    ) -> bool:
        engine = self.runtime.engine

        def ended() -> None:
            record = engine.recent_record(execution_arn)
            then(None if record is None else ExecutionDescription.of(record))

        return engine.when_ended(execution_arn, ended)

    def stop_map_run(self, map_run_arn: str) -> None:
        self.runtime.engine.spawn(self._stop_map_run(map_run_arn))

    async def _stop_map_run(self, map_run_arn: str) -> None:
        """Queue a stop for every child of the Map Run still running, a page at a time."""
        async for child in map_run_children(self.runtime._log, map_run_arn, status="RUNNING"):
            self.stop_child(child.execution_arn, None, None)

    async def read_items(self, execution_arn: str, task: RunTask) -> Outcome:
        return await self._reads.read(execution_arn, task)

    async def write_results(self, execution_arn: str, task: RunTask) -> Outcome:
        """A finished Map Run's results, written by its ResultWriter (``runtime.items``): each
        child's description (as AWS writes it) in its status's file, then the manifest; the
        children are read a page at a time, never all at once."""
        request = task.input
        assert isinstance(request, ResultWrite)
        store = self._object_store
        if store is None:
            return "failed", None, "States.ResultWriterFailed", _NO_OBJECT_STORE
        try:
            writer = ResultWriter(parse_result_writer(request.writer), store, request.map_run_arn)
        except InvalidSpec as invalid:
            return "failed", None, "States.ResultWriterFailed", str(invalid)
        try:
            async for child in map_run_children(self.runtime._log, request.map_run_arn):
                await writer.add(result_of(child))
            output = await writer.close()
        except ResultWriterFailed as failure:
            await writer.aclose()
            return "failed", None, failure.error, failure.cause
        return "succeeded", output, None, None

    async def close(self) -> None:
        """Close what the host keeps open (the ItemReaders' data sets)."""
        await self._reads.close()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        self.runtime.engine.spawn(work)

    def stop_child(self, execution_arn: str, error: str | None, cause: str | None) -> None:
        # Queued for a few stoppers: a stopped Map Run stops up to 10,000 children at once,
        # and a task for each held the event loop for 0.8 s.
        self._stops.append((execution_arn, error, cause))
        if self._stoppers < _STOPPERS:
            self._stoppers += 1
            self.runtime.engine.spawn(self._stop_children())

    async def _stop_children(self) -> None:
        try:
            while self._stops:
                execution_arn, error, cause = self._stops.popleft()
                try:
                    await self.runtime.stop_execution(execution_arn, error=error, cause=cause)
                except StatemillError as exc:  # gone meanwhile: nothing to stop
                    log.debug("child.stop_skipped", execution=execution_arn, reason=str(exc))
        finally:
            self._stoppers -= 1
