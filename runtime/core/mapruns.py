"""A distributed Map's Map Run (logic version 3, issue 14): its iterations as child executions,
its items from an ItemReader, its results through a ResultWriter, UpdateMapRun and redrive.

The core asks the shell, through effects, to run each child (``MAP_RUN_CHILD``), to read the
next items (``ITEM_READER``, a few at a time as children may start: a data set is never held)
and to write the results (``RESULT_WRITER``); their answers come back as ``TaskResult``s. The
parent's log holds what a replay needs: each child's start and end (hidden, as AWS shows only
``MapRunStarted`` and its end), never the data set.

Imports only the standard library, ``runtime.lang``, ``runtime.definition.model`` and
``runtime.core``.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Final

from runtime.core.effects import (
    ITEM_READER,
    MAP_RUN_CHILD,
    RESULT_WRITER,
    ItemRead,
    MapRunChild,
    MapRunUpdate,
    ResultWrite,
    RunTask,
    TaskResult,
    read_id,
    write_id,
)
from runtime.core.evolve import ITERATION_ENDED, ITERATION_STARTED
from runtime.core.session import StateBindings, dumps
from runtime.core.state import ACTIVE_STATUSES, Frame, Phases
from runtime.core.tasks import Tasks
from runtime.definition.model import Map

__all__ = [
    "CHILD_INPUT_TEXT_PER_DECISION",
    "DISTRIBUTED_MAX_CONCURRENCY",
    "READ_AT_ONCE",
    "MapRuns",
    "group_batches",
]

JSON = Any

#: Child workflows a distributed Map without MaxConcurrency runs at once (AWS: "if you don't
#: specify, Step Functions runs 10,000 parallel child workflow executions"). From logic
#: version 2 on; a version-1 history started every iteration at once.
DISTRIBUTED_MAX_CONCURRENCY: Final = 10_000

#: A decision starts no further Map Run children once the text it encoded (the values it logged
#: and the children's inputs) reaches this many characters; the next decision starts the next
#: ones. A count of the data, not of the clock, so the cut is deterministic. A child's input is
#: usually built for it by the ItemSelector, whose cost grows with its output: a distributed
#: Map whose ItemSelector renders the whole 229 KiB input for each of 40,000 items
#: (``States.JsonToString($)``, 7 ms each) started 1,000 children in one decision and held the
#: event loop for 7.4 s (fuzz, map family, seed 10002713); behind this bound, a few dozen ms.
#: Inputs of 1 KiB still start the 1,000 children a decision starts at most.
CHILD_INPUT_TEXT_PER_DECISION: Final = 1024 * 1024

#: Items (or batches) one read of a Map's ItemReader asks for at most.
READ_AT_ONCE: Final = 1_000


class MapRuns(Tasks):
    """The Map Run parts of the Map state's rules (``Children`` drives the Map itself)."""

    def writes_results(self, state: Map) -> bool:
        """Whether a finished Map Run's results are written out by its ResultWriter (a
        distributed Map whose ResultWriter names a ``Resource``, logic version 3)."""
        writer = state.result_writer
        return (
            isinstance(writer, dict)
            and "Resource" in writer
            and state.mode == "DISTRIBUTED"
            and self.state.logic_version >= 3
        )

    def write_results(self, frame: Frame, state: Map) -> None:
        """Ask the shell to write the Map Run's results (``RESULT_WRITER``); asked again by
        every decision until the answer comes (the shell runs one write at a time)."""
        raw = dict(state.result_writer)
        resolved: dict[str, JSON] = {"Resource": raw["Resource"]}
        if "WriterConfig" in raw:
            resolved["WriterConfig"] = raw["WriterConfig"]
        arguments = state.result_writer_arguments
        if arguments is not None:
            bindings = self.bindings(frame, self.effective_input(frame, state))
            resolved[arguments.field] = arguments.evaluate(bindings)
        self.tasks.append(
            RunTask(
                frame=frame.id,
                scheduled_id=write_id(frame.run_id),
                state_name=state.name,
                resource=RESULT_WRITER,
                handler_name="",
                input=ResultWrite(writer=resolved, map_run_arn=frame.map_run_arn or ""),
                attempt=0,
            )
        )

    def apply_results_written(self, frame: Frame, result: TaskResult) -> None:
        """The ResultWriter's answer: the Map succeeds with its output, or fails with
        ``States.ResultWriterFailed``."""
        if (
            frame.phase != Phases.CHILDREN
            or frame.map_run_ended
            or result.scheduled_id != write_id(frame.run_id)
        ):
            return
        state = self.state_of(frame)
        assert isinstance(state, Map)
        if result.outcome != "succeeded":
            error = result.error or "States.ResultWriterFailed"
            cause = result.cause or ""
            self.end_map_run(frame, "MapRunFailed", {"error": error, "cause": cause})
            self.children_failed(frame, state, "MapStateFailed", error, cause)
            return
        self.emit("MapRunSucceeded", frame.id, {})
        self.emit("MapStateSucceeded", frame.id, {"statemillOutput": result.output})

    def reads_items(self, state: Map) -> bool:
        """Whether the Map's items come from its ItemReader, read by the shell as iterations
        start (a distributed Map, logic version 3)."""
        return (
            state.item_reader is not None
            and state.mode == "DISTRIBUTED"
            and self.state.logic_version >= 3
        )

    def resolve_reader(self, state: Map, bindings: StateBindings) -> dict[str, JSON]:
        """The ItemReader with its ``Parameters`` (JSONPath) or ``Arguments`` (JSONata) and
        ``ReaderConfig.MaxItemsPath`` (or a JSONata ``MaxItems``) evaluated: what the shell
        reads (``runtime.items``, which checks the rest)."""
        raw = dict(state.item_reader)
        resolved: dict[str, JSON] = {"Resource": raw.get("Resource")}
        config = dict(raw.get("ReaderConfig") or {})
        if state.item_reader_arguments is not None:
            arguments = state.item_reader_arguments
            resolved[arguments.field] = arguments.evaluate(bindings)
        if state.item_reader_max_items is not None:
            config.pop("MaxItemsPath", None)
            config["MaxItems"] = state.item_reader_max_items.integer(bindings)
        if config:
            resolved["ReaderConfig"] = config
        return resolved

    def reader_batch_size(self, state: Map, bindings: StateBindings) -> int:
        """Items per child of a Map that reads its items: MaxItemsPerBatch(Path) (ASL
        "ItemBatcher"), else 0."""
        batcher = state.item_batcher
        if batcher is None or batcher.max_items_per_batch is None:
            return 0
        return batcher.max_items_per_batch.count(bindings)

    def has_input_room(self, frame: Frame) -> bool:
        """Whether the Map Run of ``frame`` may start another child under the runtime's input
        budget (``ExecutionLimits.max_map_run_input_bytes``): the inputs of its children in
        flight hold fewer bytes than the bound (a child larger than the bound starts alone).

        MaxConcurrency counts children, not bytes: 10,000 children copying a 230 KB input
        each held 2.3 GB in this execution's state, each child's frame keeping its input until
        the child ended, while the shell's budget let only a few dozen of them run (issue 11).
        From logic version 4 on: an older history goes on as it was decided.
        """
        bound = self.limits.max_map_run_input_bytes
        return (
            bound is None
            or self.state.logic_version < 4
            or not frame.map_run
            or frame.child_running == 0
            or frame.child_input_bytes < bound
        )

    def read_items(self, frame: Frame, state: Map, limit: int) -> None:
        """Ask the shell for the next items of a Map that reads them, as many as may start
        now (a few at a time: each child that ends frees a slot, and one read per slot would
        be a read per child); the read's id is the index it starts at, so an answer meant
        for an earlier point is ignored."""
        bound = limit or DISTRIBUTED_MAX_CONCURRENCY
        free = bound - frame.child_running
        if frame.child_started == frame.child_total and frame.child_started > 0:
            return  # every item has started
        if not self.has_input_room(frame):
            return  # asked again when a child ends
        if free <= 0 or (free < min(bound // 10, 100) and frame.child_running > 0):
            return
        count = min(free, READ_AT_ONCE)
        self.tasks.append(
            RunTask(
                frame=frame.id,
                scheduled_id=read_id(frame.run_id, frame.child_started),
                state_name=state.name,
                resource=ITEM_READER,
                handler_name="",
                input=ItemRead(
                    reader=frame.reader,
                    start=frame.child_started * max(frame.batch_size, 1),
                    count=count * max(frame.batch_size, 1),
                ),
                attempt=0,
            )
        )

    def apply_items_read(self, frame: Frame, result: TaskResult) -> None:
        """The items read for a Map that reads them: each starts an iteration (there is room
        for all: only reads start iterations, and none started since this one was asked);
        a reader that failed fails the Map Run (``States.ItemReaderFailed``)."""
        wanted = read_id(frame.run_id, frame.child_started)
        if result.scheduled_id != wanted or frame.phase != Phases.CHILDREN:
            return  # an answer for an earlier point (a duplicate read)
        state = self.state_of(frame)
        assert isinstance(state, Map)
        if result.outcome != "succeeded" or not isinstance(result.output, dict):
            error = result.error or "States.ItemReaderFailed"
            cause = result.cause or ""
            self.end_map_run(frame, "MapRunFailed", {"error": error, "cause": cause})
            self.children_failed(frame, state, "MapStateFailed", error, cause)
            return
        items = list(result.output.get("items") or [])
        batch = frame.batch_size
        if batch:
            batch_input = None
            if state.item_batcher is not None and state.item_batcher.batch_input is not None:
                bindings = self.bindings(frame, self.effective_input(frame, state))
                batch_input = state.item_batcher.batch_input.evaluate(bindings)
            items = group_batches(items, batch, batch_input)
        first = frame.child_started == 0
        if first:
            total = int(result.output.get("total", len(items)))
            children = -(-total // batch) if batch else total
            if children == 0:
                self.emit("MapRunSucceeded", frame.id, {})
                self.emit("MapStateSucceeded", frame.id, {})
                return
        effective = self.effective_input(frame, state)  # a JSONata state's: its raw input
        for item in items:
            index = frame.child_started
            started: dict[str, JSON] = {"name": state.name, "index": index}
            started["statemillInput"] = (
                item if batch else self.select_item(frame, state, effective, index, item)
            )
            if first:
                started["statemillChildTotal"] = children
                if batch:  # DescribeMapRun counts items, not batches
                    started["statemillItemTotal"] = total
                first = False
            self.emit_state_event("MapIterationStarted", frame, started, ITERATION_STARTED)
            self.start_iteration(frame, state, next(reversed(frame.children)))
            if frame.phase != Phases.CHILDREN or self.state.status not in ACTIVE_STATUSES:
                return
            if not self.has_input_room(frame):
                return  # the items left are read again once children end

    def end_map_run(self, frame: Frame, kind: str, details: dict[str, JSON]) -> None:
        """MapRunFailed or MapRunAborted: the Map Run ends before its children do; the shell
        stops those still running (``Decision.stopped_map_runs``), as AWS aborts them."""
        if frame.map_run_arn is not None and self.state.logic_version >= 3:
            self.stopped_map_runs.append(frame.map_run_arn)
        self.emit(kind, frame.id, details)

    def update_map_run(self, update: MapRunUpdate) -> None:
        """UpdateMapRun: the running Map Run takes its new MaxConcurrency and failure
        tolerance from now on (MapRunUpdated, a Statemill event hidden from the history as
        AWS logs none); the driver then starts children into new room, or fails the run if
        it already failed beyond the new tolerance."""
        for frame in self.state.frames.values():
            if (
                frame.map_run_arn == update.map_run_arn
                and frame.map_run
                and not frame.map_run_ended
            ):
                details: dict[str, JSON] = {"mapRunArn": update.map_run_arn}
                if update.max_concurrency is not None:
                    details["statemillMaxConcurrency"] = update.max_concurrency
                if update.tolerated_failure_count is not None:
                    details["statemillToleratedFailureCount"] = update.tolerated_failure_count
                if update.tolerated_failure_percentage is not None:
                    details["statemillToleratedFailurePercentage"] = (
                        update.tolerated_failure_percentage
                    )
                self.emit("MapRunUpdated", frame.id, details)
                return

    def map_run_arn(self, frame: Frame, state: Map) -> str:
        """The ARN of the Map Run a distributed Map opens: from logic version 3 on AWS's
        ``arn:...:mapRun:<state machine>/<label>:<id>``, the id derived from the execution and
        the MapStateStarted that opens the run (a Retry of the Map opens another run);
        before, the version-2 form ``<state machine arn>/<label>:<entered id>``."""
        label = state.label or state.name
        machine_arn = self.state.state_machine_arn
        if self.state.logic_version < 3:
            return f"{machine_arn}/{label}:{frame.entered_id}"
        digest = hashlib.sha256(f"{self.state.execution_arn}#{frame.run_id}".encode()).digest()
        run_id = uuid.UUID(bytes=digest[:16], version=4)
        prefix, _, machine_name = machine_arn.partition(":stateMachine:")
        machine_name = machine_name.split(":")[0]  # without a version or alias qualifier
        return f"{prefix}:mapRun:{machine_name}/{label}:{run_id}"

    def child_run_effect(self, frame: Frame) -> RunTask:
        """The effect that runs iteration ``frame`` of a distributed Map as a child execution
        of its Map Run (logic version 3): the shell starts the child on the iteration's input
        (idempotently: its name derives from the Map Run and the index), waits for it and
        reports its outcome as a ``TaskResult``."""
        assert frame.parent is not None
        owner = self.state.frames[frame.parent]
        state = self.state_of(owner)
        assert isinstance(state, Map)
        # The child's input counts as text this decision encoded, as an inline iteration's
        # logged input does (CHILD_INPUT_TEXT_PER_DECISION).
        self.text_logged += frame.input_bytes or len(dumps(frame.data))
        if self.text_logged >= CHILD_INPUT_TEXT_PER_DECISION:
            self.exhausted = True
        return RunTask(
            frame=frame.id,
            scheduled_id=frame.scheduled_id,
            state_name=state.name,
            resource=MAP_RUN_CHILD,
            handler_name="",
            input=MapRunChild(
                map_run_arn=owner.map_run_arn or "",
                label=state.label or state.name,
                index=frame.index,
                input=frame.data,
                execution_type=state.execution_type,
                processor=state.processor,
                redrive=owner.map_run_redriven,
            ),
            attempt=0,
        )

    def apply_child_run_result(self, frame: Frame, result: TaskResult) -> None:
        """The outcome of iteration ``frame``'s child execution: MapIterationSucceeded with its
        output, or the iteration fails with the child's error and cause (Catch and the
        failure tolerance apply as to an inline iteration)."""
        if result.scheduled_id != frame.scheduled_id or result.outcome == "started":
            return
        assert frame.parent is not None
        owner = self.state.frames[frame.parent]
        state = self.state_of(owner)
        assert isinstance(state, Map)
        if result.outcome == "succeeded":
            details: dict[str, JSON] = {"name": state.name, "index": frame.index}
            if not self.writes_results(state):
                # The Map's output is its children's outputs; with a ResultWriter it is the
                # written files' manifest, and the outputs stay in the children's logs.
                details["statemillOutput"] = result.output
            self.emit_state_event("MapIterationSucceeded", owner, details, ITERATION_ENDED)
            return
        self.fail_frame(frame, result.error, result.cause)

    def start_iteration(self, frame: Frame, state: Map, child_id: str) -> None:
        """Drive an iteration just started; ``Children`` defines it."""
        raise NotImplementedError

    def select_item(
        self, frame: Frame, state: Map, effective: JSON, index: int, item: JSON = None
    ) -> JSON:
        """An iteration's input from its item (ItemSelector); ``Children`` defines it."""
        raise NotImplementedError


def group_batches(items: list[JSON], size: int, batch_input: JSON) -> list[JSON]:
    """ItemBatcher (ASL "ItemBatcher"): consecutive items in ``{"Items": [...]}`` of at most
    ``size`` (0: no bound, all in one), each with ``BatchInput`` when one is given. Both query
    languages batch through this one rule."""
    size = size or len(items) or 1
    out: list[JSON] = []
    for start in range(0, len(items), size):
        batch: dict[str, JSON] = {"Items": items[start : start + size]}
        if batch_input is not None:
            batch["BatchInput"] = batch_input
        out.append(batch)
    return out
