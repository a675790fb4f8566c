"""Map Runs: DescribeMapRun, ListMapRuns and ListExecutions of a Map Run (issue 14).

A distributed Map runs its iterations as child executions of a Map Run (logic version 3,
``runtime.engine.maprun``). What a Map Run is comes from two places, each the truth for its
part: the parent execution's log says when the run started and ended and with which
``MaxConcurrency`` and failure tolerance (its MapStateStarted and MapRun* events); the
children's rows say how its items are doing (``count_map_run_children``, one index range).
The store keeps one row per Map Run (``MapRunRecord``) so that its ARN finds its parent.

Imports the store's ``MapRunStore`` port and the API's base.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from runtime.api_base import RuntimeBase
from runtime.core.effects import MapRunUpdate
from runtime.core.events import HistoryEvent
from runtime.errors import ExecutionDoesNotExist, InvalidArn, ResourceNotFound
from runtime.store.base import MapRunRecord, MapRunStore, map_run_children

__all__ = ["MapRunCounts", "MapRunDescription", "MapRunListItem", "MapRunVerbs"]

JSON = Any

_ENDS: Final = {
    "MapRunSucceeded": "SUCCEEDED",
    "MapRunFailed": "FAILED",
    "MapRunAborted": "ABORTED",
}


class MapRunCounts(msgspec.Struct, frozen=True, kw_only=True):
    """DescribeMapRun's ``itemCounts`` / ``executionCounts``."""

    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    timed_out: int = 0
    aborted: int = 0
    total: int = 0
    results_written: int = 0
    failures_not_redrivable: int = 0
    pending_redrive: int = 0


class MapRunDescription(msgspec.Struct, frozen=True, kw_only=True):
    """What ``describe_map_run`` returns (DescribeMapRun's fields, snake_case)."""

    map_run_arn: str
    execution_arn: str
    status: str
    """RUNNING, SUCCEEDED, FAILED or ABORTED."""
    start_date: float
    max_concurrency: int
    tolerated_failure_percentage: float
    tolerated_failure_count: int
    item_counts: MapRunCounts
    execution_counts: MapRunCounts
    stop_date: float | None = None
    redrive_count: int = 0
    redrive_date: float | None = None


class MapRunListItem(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of ``list_map_runs`` (ListMapRuns' ``mapRuns``)."""

    execution_arn: str
    map_run_arn: str
    state_machine_arn: str
    start_date: float
    stop_date: float | None = None


class MapRunVerbs(RuntimeBase):
    """The Map Run verbs of ``Runtime``."""

    def _map_runs(self) -> MapRunStore:
        store = self.store
        if not isinstance(store, MapRunStore):
            raise ResourceNotFound("Map Runs are not kept by this store")
        return store

    async def _map_run(self, map_run_arn: str) -> MapRunRecord:
        if ":mapRun:" not in map_run_arn:
            raise InvalidArn(f"Invalid Arn: '{map_run_arn}'")
        record = await self._map_runs().get_map_run(map_run_arn)
        if record is None:
            raise ResourceNotFound(f"Map Run Does Not Exist: '{map_run_arn}'")
        return record

    async def describe_map_run(self, map_run_arn: str) -> MapRunDescription:
        """The Map Run's status, settings and counts (DescribeMapRun).

        Raises:
            InvalidArn: not a Map Run ARN.
            ResourceNotFound: no such Map Run.
        """
        record = await self._map_run(map_run_arn)
        run = _run_events(await self._log.read(record.execution_arn), map_run_arn)
        started, ended = run.started, run.ended
        parent = await self._log.get_execution(record.execution_arn)
        status = "RUNNING" if ended is None else _ENDS[ended.type]
        stop_date = None if ended is None else ended.timestamp
        if ended is None and parent is not None and parent.status != "RUNNING":
            # The execution ended while the run was open (timed out, failed): it aborted.
            status, stop_date = "ABORTED", parent.stop_date
        details = run.settings
        total = run.total
        counts = await self._map_runs().count_map_run_children(map_run_arn)
        children = sum(counts.values())
        executions = MapRunCounts(
            pending=max(total - children, 0) if status == "RUNNING" else 0,
            running=counts.get("RUNNING", 0),
            succeeded=counts.get("SUCCEEDED", 0),
            failed=counts.get("FAILED", 0),
            timed_out=counts.get("TIMED_OUT", 0),
            aborted=counts.get("ABORTED", 0),
            total=total,
            # AWS counts a succeeded child's result as written, ResultWriter or not.
            results_written=counts.get("SUCCEEDED", 0),
        )
        items = executions
        if run.items is not None:
            items = await self._item_counts(map_run_arn, run.items, status)
        return MapRunDescription(
            map_run_arn=map_run_arn,
            execution_arn=record.execution_arn,
            status=status,
            start_date=record.start_date if started is None else started.timestamp,
            stop_date=stop_date,
            max_concurrency=int(details.get("statemillMaxConcurrency", 0)),
            tolerated_failure_percentage=float(
                details.get("statemillToleratedFailurePercentage") or 0.0
            ),
            tolerated_failure_count=int(details.get("statemillToleratedFailureCount") or 0),
            item_counts=items,
            execution_counts=executions,
            redrive_count=run.redrives,
            redrive_date=None if run.redriven is None else run.redriven.timestamp,
        )

    async def _item_counts(self, map_run_arn: str, total: int, status: str) -> MapRunCounts:
        """The item counts of a Map Run whose children are batches: each child's items (its
        input's ``Items``) counted by the child's status, a page of children at a time."""
        by_status: dict[str, int] = {}
        async for child in map_run_children(self._log, map_run_arn):
            try:
                batch = msgspec.json.decode(child.input)
            except msgspec.DecodeError:
                batch = None
            size = (
                len(batch["Items"])
                if isinstance(batch, dict) and isinstance(batch.get("Items"), list)
                else 1
            )
            by_status[child.status] = by_status.get(child.status, 0) + size
        started = sum(by_status.values())
        return MapRunCounts(
            pending=max(total - started, 0) if status == "RUNNING" else 0,
            running=by_status.get("RUNNING", 0),
            succeeded=by_status.get("SUCCEEDED", 0),
            failed=by_status.get("FAILED", 0),
            timed_out=by_status.get("TIMED_OUT", 0),
            aborted=by_status.get("ABORTED", 0),
            total=total,
            results_written=by_status.get("SUCCEEDED", 0),
        )

    async def update_map_run(
        self,
        map_run_arn: str,
        *,
        max_concurrency: int | None = None,
        tolerated_failure_count: int | None = None,
        tolerated_failure_percentage: float | None = None,
    ) -> None:
        """Change a running Map Run's MaxConcurrency and failure tolerance (UpdateMapRun): its
        execution goes on with them (more children start into new room; a run already
        failed beyond the new tolerance fails). An ended Map Run is left as it was.

        Raises:
            InvalidArn: not a Map Run ARN.
            ResourceNotFound: no such Map Run.
            ValueError: a value out of AWS's range (MaxConcurrency and
                ToleratedFailureCount >= 0, ToleratedFailurePercentage 0-100).
        """
        for value, name in (
            (max_concurrency, "maxConcurrency"),
            (tolerated_failure_count, "toleratedFailureCount"),
        ):
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be 0 or more, not {value!r}")
        percentage = tolerated_failure_percentage
        if percentage is not None and not 0 <= percentage <= 100:
            raise ValueError(f"toleratedFailurePercentage must be 0-100, not {percentage!r}")
        record = await self._map_run(map_run_arn)
        parent = record.execution_arn
        now = self.clock.now()
        if self._elsewhere(parent):
            body = {
                "executionArn": parent,
                "mapRunArn": map_run_arn,
                "maxConcurrency": max_concurrency,
                "toleratedFailureCount": tolerated_failure_count,
                "toleratedFailurePercentage": percentage,
            }
            await self._ask("update-map-run", body, parent, now)
            return
        engine = self.engine
        if await engine.live_execution(parent) is None:
            return  # the execution has ended: so has its Map Run
        engine.submit(
            parent,
            MapRunUpdate(
                now=now,
                map_run_arn=map_run_arn,
                max_concurrency=max_concurrency,
                tolerated_failure_count=tolerated_failure_count,
                tolerated_failure_percentage=percentage,
                seed=engine.seed(),
            ),
        )
        await engine.settle(parent)

    async def list_map_runs(self, execution_arn: str) -> list[MapRunListItem]:
        """The Map Runs an execution started, oldest first (ListMapRuns).

        Raises:
            ExecutionDoesNotExist: no such execution.
        """
        if await self._log.get_execution(execution_arn) is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
        runs = await self._map_runs().list_map_runs(execution_arn)
        if not runs:
            return []
        events = await self._log.read(execution_arn)
        items = []
        for run in runs:
            ended = _run_events(events, run.map_run_arn).ended
            items.append(
                MapRunListItem(
                    execution_arn=run.execution_arn,
                    map_run_arn=run.map_run_arn,
                    state_machine_arn=run.state_machine_arn,
                    start_date=run.start_date,
                    stop_date=None if ended is None else ended.timestamp,
                )
            )
        return items


class _RunEvents(msgspec.Struct, kw_only=True):
    """What a Map Run's parent log says of it."""

    opened: HistoryEvent | None = None
    """The MapStateStarted that opened the run (its settings)."""
    started: HistoryEvent | None = None
    ended: HistoryEvent | None = None
    """MapRunSucceeded/Failed/Aborted; None while it runs."""
    total: int = 0
    """Its children: MapStateStarted's ``length``, or, for a Map that reads its items, the
    count the first read gave (0 until then)."""
    redriven: HistoryEvent | None = None
    """The last MapRunRedriven of the run."""
    redrives: int = 0
    items: int | None = None
    """A Map that batches its items: how many items there are (its children are batches)."""
    settings: dict[str, Any] = msgspec.field(default_factory=dict)
    """MaxConcurrency and the failure tolerance: MapStateStarted's, then UpdateMapRun's."""


def _batched_items(details: dict[str, Any]) -> int | None:
    """The items of a Map whose children are batches (``{"Items": [...]}``), from its
    MapStateStarted; None for a Map whose children are one item each."""
    inputs = details.get("statemillItems")
    if not inputs or not all(isinstance(i, dict) and "Items" in i for i in inputs):
        return None
    return sum(len(i["Items"]) for i in inputs if isinstance(i["Items"], list))


def _run_events(events: list[HistoryEvent], map_run_arn: str) -> _RunEvents:
    opened_at: dict[str, HistoryEvent] = {}
    found = _RunEvents()
    for event in events:
        kind = event.type
        if kind == "MapStateStarted":
            opened_at[event.frame] = event
        elif kind == "MapRunStarted" and event.details.get("mapRunArn") == map_run_arn:
            found.started, found.opened = event, opened_at.get(event.frame)
            if found.opened is not None:
                found.total = int(found.opened.details.get("length", 0))
                found.settings = dict(found.opened.details)
                found.items = _batched_items(found.opened.details)
        elif kind == "MapRunUpdated" and event.details.get("mapRunArn") == map_run_arn:
            found.settings.update(event.details)
        elif kind == "MapRunRedriven" and event.details.get("mapRunArn") == map_run_arn:
            # The run goes on (RedriveExecution): it runs again until its next end.
            found.redriven, found.ended = event, None
            found.redrives += 1
        elif found.started is None or event.frame != found.started.frame or found.ended:
            continue
        elif kind == "MapIterationStarted" and "statemillChildTotal" in event.details:
            found.total = int(event.details["statemillChildTotal"])
            if "statemillItemTotal" in event.details:
                found.items = int(event.details["statemillItemTotal"])
        elif kind in _ENDS:
            found.ended = event
    return found
