"""Parallel and Map (ASL "Parallel", "Map", "Map state failure threshold", "ItemBatcher"):
starting branches and iterations, driving them depth-first within MaxConcurrency, and ending
the state when they are done, failed beyond tolerance, or aborted.

Imports only the standard library, ``runtime.lang``, ``runtime.definition.model`` and
``runtime.core``.
"""

from __future__ import annotations

import hashlib
import re
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
from runtime.core.session import StateFailure, dumps
from runtime.core.state import ACTIVE_STATUSES, Frame, Phase
from runtime.core.tasks import Tasks
from runtime.definition.model import Map, Parallel
from runtime.errors import StatesError
from runtime.lang.jsonata import compile_expression, evaluate_template, is_expression
from runtime.lang.jsonata_engine import QueryEvaluationError
from runtime.lang.jsonata_functions import Env

__all__ = ["Children", "group_batches"]

JSON = Any

_NUMBER_TEXT: Final = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


#: Child workflows a distributed Map without MaxConcurrency runs at once (AWS: "if you don't
#: specify, Step Functions runs 10,000 parallel child workflow executions"). From logic
#: version 2 on; a version-1 history started every iteration at once.
DISTRIBUTED_MAX_CONCURRENCY: Final = 10_000


#: Items (or batches) one read of a Map's ItemReader asks for at most.
READ_AT_ONCE: Final = 1_000


#: Child executions one decision starts at most (logic version 3); the next decision starts
#: the next ones. 10,000 in one decision (a distributed Map without MaxConcurrency) held the
#: event loop for 0.6 s, with their 10,000 starts queued behind it.
CHILD_RUNS_PER_DECISION: Final = 1_000


class Children(Tasks):
    """Parallel branches and Map iterations."""

    def start_branches(self, frame: Frame, state: Parallel, branch_input: JSON) -> None:
        """Parallel: every branch starts on the same input (after Parameters/Arguments)."""
        self.emit(
            "ParallelStateStarted",
            frame.id,
            {"statemillInput": branch_input, "statemillBranches": len(state.branches)},
        )

    def step_parallel(self, frame: Frame, state: Parallel) -> bool:
        """Parallel (ASL "Parallel State"): drive every branch; once all are done, the state's
        result is their outputs in branch order (AWS logs no ParallelStateSucceeded)."""
        progressed = False
        for child_id in list(frame.children):
            progressed |= self.drive(child_id)
            if frame.phase != Phase.CHILDREN:
                return True
        children = [self.state.frames[c] for c in frame.children if c in self.state.frames]
        if all(child.phase == Phase.DONE for child in children):
            # AWS logs no ParallelStateSucceeded: the state exits with the branches' outputs.
            self.finish_with_result(frame, state, [child.data for child in children])
            return True
        return progressed

    def on_map(self, frame: Frame, state: Map) -> None:
        """Map (ASL "Map State"): Items/ItemsPath, MaxConcurrency(Path), the failure tolerance
        and ItemBatcher, evaluated once and recorded in MapStateStarted. ItemSelector is
        evaluated per iteration as it starts (:meth:`selects_per_iteration`), except in
        histories of logic version 1 and for batched items, where every iteration's input is
        computed here."""
        reads = self.reads_items(state)
        if state.query_language == "JSONata":
            env = self.jsonata_env(frame)
            effective = frame.data
            items = [] if reads else self.map_items_jsonata(state, env)
            max_concurrency = state.max_concurrency
            if state.max_concurrency_expr is not None:
                max_concurrency = int(
                    self.jsonata_number(state.max_concurrency_expr, env, "MaxConcurrency")
                )
        else:
            effective = self.effective_input(frame, state)
            items = [] if reads else effective
            if state.items_path is not None and not reads:
                items = self.select(state.items_path, effective, frame, "ItemsPath")
            if not isinstance(items, list):
                raise StateFailure(
                    "States.Runtime",
                    self.cause(frame, f"Map state input must be an array but was: {dumps(items)}"),
                )
            max_concurrency = state.max_concurrency
            if state.max_concurrency_path is not None:
                max_concurrency = self.int_from_path(
                    frame, state.max_concurrency_path, effective, "MaxConcurrencyPath"
                )
                if max_concurrency < 0:
                    # A negative limit would start no iteration, ever.
                    raise StateFailure(
                        "States.Runtime", self.cause(frame, "MaxConcurrency cannot be negative.")
                    )
        try:
            tolerated_count, tolerated_percentage = self.map_tolerance(frame, state, effective)
        except (StateFailure, StatesError) as failure:
            # AWS evaluates the failure tolerance after logging MapStateStarted. The failure
            # is recorded with it, so a history cut right here resumes into the same failure.
            error = failure.error
            cause = (
                failure.cause
                if isinstance(failure, StateFailure)
                else self.cause(frame, failure.cause)
            )
            self.emit(
                "MapStateStarted",
                frame.id,
                {"length": len(items), "statemillError": error, "statemillCause": cause},
            )
            raise StateFailure(error, cause) from None
        if reads:
            # The items come from the ItemReader as the iterations start (a data set of a
            # million rows is never held): only where to read them is resolved now.
            self.emit(
                "MapStateStarted",
                frame.id,
                {
                    "length": 0,
                    "statemillItemReader": self.resolve_reader(frame, state, effective),
                    "statemillBatchSize": self.reader_batch_size(state),
                    "statemillMaxConcurrency": max_concurrency,
                    **(
                        {}
                        if tolerated_count is None
                        else {"statemillToleratedFailureCount": tolerated_count}
                    ),
                    **(
                        {}
                        if tolerated_percentage is None
                        else {"statemillToleratedFailurePercentage": tolerated_percentage}
                    ),
                },
            )
            return
        selector = (
            state.item_selector_expr if state.query_language == "JSONata" else state.item_selector
        )
        if selector is None or self.selects_per_iteration(state):
            # Each iteration's input is its item, or selected from it when the iteration
            # starts (step_map): 40,000 selections of 256 KiB each, made here, held the event
            # loop for minutes and the memory for all of them at once (issue 11).
            inputs = list(items)
        else:
            inputs = [
                self.iteration_input(frame, state, effective, index, item)
                for index, item in enumerate(items)
            ]
        if state.mode == "DISTRIBUTED" and state.item_batcher is not None:
            inputs = self.batches(frame, state, effective, items)
        elif state.mode == "DISTRIBUTED" and state.item_batcher_expr is not None:
            inputs = self.batches_jsonata(frame, state, inputs)
        details: dict[str, JSON] = {
            "length": len(inputs),
            "statemillItems": inputs,
            "statemillMaxConcurrency": max_concurrency,
        }
        if tolerated_count is not None:
            details["statemillToleratedFailureCount"] = tolerated_count
        if tolerated_percentage is not None:
            details["statemillToleratedFailurePercentage"] = tolerated_percentage
        self.emit("MapStateStarted", frame.id, details)

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
        if state.query_language == "JSONata":
            if "Arguments" in raw:
                env = self.jsonata_env(frame)
                resolved["Arguments"] = evaluate_template(raw["Arguments"], env, "Arguments")
        elif state.result_writer_parameters is not None:
            resolved["Parameters"] = state.result_writer_parameters.evaluate(
                self.effective_input(frame, state), self.scope(frame)
            )
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
            frame.phase != Phase.CHILDREN
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

    def resolve_reader(self, frame: Frame, state: Map, effective: JSON) -> dict[str, JSON]:
        """The ItemReader with its ``Parameters`` (JSONPath) or ``Arguments`` (JSONata) and
        ``ReaderConfig.MaxItemsPath`` evaluated: what the shell reads (``runtime.items``)."""
        raw = dict(state.item_reader)
        resolved: dict[str, JSON] = {"Resource": raw.get("Resource")}
        config = dict(raw.get("ReaderConfig") or {})
        if state.query_language == "JSONata":
            if "Arguments" in raw:
                env = self.jsonata_env(frame)
                resolved["Arguments"] = evaluate_template(raw["Arguments"], env, "Arguments")
            if is_expression(config.get("MaxItems")):
                env = self.jsonata_env(frame)
                config["MaxItems"] = int(self.jsonata_number(config["MaxItems"], env, "MaxItems"))
        else:
            if state.item_reader_parameters is not None:
                resolved["Parameters"] = state.item_reader_parameters.evaluate(
                    effective, self.scope(frame)
                )
            if state.item_reader_max_items_path is not None:
                config.pop("MaxItemsPath", None)
                config["MaxItems"] = self.int_from_path(
                    frame, state.item_reader_max_items_path, effective, "MaxItemsPath"
                )
        if config:
            resolved["ReaderConfig"] = config
        return resolved

    def reader_batch_size(self, state: Map) -> int:
        """Items per child of a Map that reads its items: ``MaxItemsPerBatch`` (a number; a
        path or an expression in it is not read with an ItemReader yet), else 0."""
        if state.item_batcher is not None:
            return state.item_batcher.max_items_per_batch or 0
        batcher = state.item_batcher_expr
        if isinstance(batcher, dict) and isinstance(batcher.get("MaxItemsPerBatch"), int):
            return int(batcher["MaxItemsPerBatch"])
        return 0

    def read_items(self, frame: Frame, state: Map, limit: int) -> None:
        """Ask the shell for the next items of a Map that reads them, as many as may start
        now (a few at a time: each child that ends frees a slot, and one read per slot would
        be a read per child); the read's id is the index it starts at, so an answer meant
        for an earlier point is ignored."""
        bound = limit or DISTRIBUTED_MAX_CONCURRENCY
        free = bound - frame.child_running
        if frame.child_started == frame.child_total and frame.child_started > 0:
            return  # every item has started
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
        if result.scheduled_id != wanted or frame.phase != Phase.CHILDREN:
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
                batch_input = state.item_batcher.batch_input.evaluate(
                    self.effective_input(frame, state), self.scope(frame)
                )
            items = group_batches(items, batch, batch_input)
        first = frame.child_started == 0
        if first:
            total = int(result.output.get("total", len(items)))
            children = -(-total // batch) if batch else total
            if children == 0:
                self.emit("MapRunSucceeded", frame.id, {})
                self.emit("MapStateSucceeded", frame.id, {})
                return
        effective: JSON = None
        if state.query_language != "JSONata":
            effective = self.effective_input(frame, state)
        for item in items:
            index = frame.child_started
            started: dict[str, JSON] = {"name": state.name, "index": index}
            started["statemillInput"] = (
                item if batch else self.select_item(frame, state, effective, index, item)
            )
            if first:
                started["statemillChildTotal"] = children
                first = False
            self.emit_state_event("MapIterationStarted", frame, started, ITERATION_STARTED)
            self.start_iteration(frame, state, next(reversed(frame.children)))
            if frame.phase != Phase.CHILDREN or self.state.status not in ACTIVE_STATUSES:
                return

    def map_items_jsonata(self, state: Map, env: Env) -> list[JSON]:
        """JSONata ``Items``: an array (whose strings may be expressions) or one expression
        that must give an array; absent, the state input must be an array."""
        template = state.items_expr
        if template is None:
            items = env.base["input"]
            if not isinstance(items, list):
                raise QueryEvaluationError(
                    f"Map state input must be an array but was: {dumps(items)}", "Items"
                )
            return items
        if is_expression(template):
            expression = compile_expression(template)
            value = expression.evaluate(env, "Items")
            if not isinstance(value, list):
                raise expression.wrong_type(value, "array", "Items")
            return value
        value = evaluate_template(template, env, "Items")
        if not isinstance(value, list):
            raise QueryEvaluationError(
                f"The field 'Items' must be an array but was: {dumps(value)}", "Items"
            )
        return value

    def map_tolerance(
        self, frame: Frame, state: Map, effective: JSON
    ) -> tuple[int | None, float | None]:
        """ToleratedFailureCount(Path) and ToleratedFailurePercentage(Path)."""
        if state.query_language == "JSONata" and (
            state.tolerated_failure_count_expr is not None
            or state.tolerated_failure_percentage_expr is not None
        ):
            return self.map_tolerance_jsonata(frame, state)
        tolerated_count = state.tolerated_failure_count
        if state.tolerated_failure_count_path is not None:
            tolerated_count = self.int_from_path(
                frame, state.tolerated_failure_count_path, effective, "ToleratedFailureCountPath"
            )
        if tolerated_count is not None and tolerated_count < 0:
            raise StateFailure(
                "States.Runtime", self.cause(frame, "ToleratedFailureCount cannot be negative.")
            )
        tolerated_percentage = state.tolerated_failure_percentage
        if state.tolerated_failure_percentage_path is not None:
            path = state.tolerated_failure_percentage_path
            value = self.select(path, effective, frame, "ToleratedFailurePercentagePath")
            if isinstance(value, str) and _NUMBER_TEXT.match(value):
                value = float(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise StateFailure(
                    "States.Runtime",
                    self.cause(
                        frame,
                        "The ToleratedFailurePercentagePath field refers to value "
                        f"{dumps(value)} which is not a valid number: {path.text}",
                    ),
                )
            # Clamped first: an integer past a double's range cannot be converted, and any
            # value outside 0..100 fails below all the same.
            tolerated_percentage = float(min(max(value, -1), 101))
        if tolerated_percentage is not None and not 0 <= tolerated_percentage <= 100:
            raise StateFailure(
                "States.Runtime",
                self.cause(frame, "ToleratedFailurePercentage must be between 0 and 100."),
            )
        return tolerated_count, tolerated_percentage

    def map_tolerance_jsonata(self, frame: Frame, state: Map) -> tuple[int | None, float | None]:
        """JSONata ToleratedFailureCount and ToleratedFailurePercentage (ASL "Map state failure
        threshold")."""
        env = self.jsonata_env(frame)
        tolerated_count = state.tolerated_failure_count
        if state.tolerated_failure_count_expr is not None:
            tolerated_count = int(
                self.jsonata_number(
                    state.tolerated_failure_count_expr, env, "ToleratedFailureCount"
                )
            )
        tolerated_percentage = state.tolerated_failure_percentage
        if state.tolerated_failure_percentage_expr is not None:
            tolerated_percentage = self.jsonata_number(
                state.tolerated_failure_percentage_expr,
                env,
                "ToleratedFailurePercentage",
                integer=False,
                maximum=None,
            )
            if tolerated_percentage > 100:
                raise QueryEvaluationError(
                    "ToleratedFailurePercentage must be between 0 and 100.",
                    "ToleratedFailurePercentage",
                )
        return tolerated_count, tolerated_percentage

    def selects_per_iteration(self, state: Map) -> bool:
        """ItemSelector (ASL "ItemSelector"): whether each iteration's input is selected from
        its item when the iteration starts, within MaxConcurrency, and recorded in its
        MapIterationStarted (``statemillInput``), rather than all of them at MapStateStarted.

        From logic version 2 on, for a Map with an ItemSelector (JSONPath ``Parameters``
        included) whose items are not batched; a history of version 1 (and one imported from
        AWS) recorded the selected inputs in MapStateStarted and goes on that way."""
        if self.state.logic_version < 2:
            return False
        if state.query_language == "JSONata":
            return state.item_selector_expr is not None and not (
                state.mode == "DISTRIBUTED" and state.item_batcher_expr is not None
            )
        return state.item_selector is not None and not (
            state.mode == "DISTRIBUTED" and state.item_batcher is not None
        )

    def select_item(
        self, frame: Frame, state: Map, effective: JSON, index: int, item: JSON = None
    ) -> JSON:
        """The input of iteration ``index`` of a Map that selects per iteration, as it starts.
        Its ItemSelector failing fails the Map with the error and cause the selection at
        MapStateStarted gave (the Map's frame, its entered event, the item's context): a
        JSONata failure is logged (EvaluationFailed) and the Map fails through MapStateFailed
        (``decide.after_evaluation_failed``); any other fails the state as it did; a
        distributed Map's run fails first (MapRunFailed)."""
        if frame.reader is None:
            assert frame.items is not None
            item = frame.items[index]
        try:
            return self.iteration_input(frame, state, effective, index, item)
        except QueryEvaluationError:
            raise  # the map run fails with the Map, after EvaluationFailed
        except (StateFailure, StatesError) as failure:
            if frame.map_run and not frame.map_run_ended:
                cause = (
                    failure.cause
                    if isinstance(failure, StateFailure)
                    else self.cause(frame, failure.cause)
                )
                self.end_map_run(frame, "MapRunFailed", {"error": failure.error, "cause": cause})
            raise

    def iteration_input(
        self, frame: Frame, state: Map, effective: JSON, index: int, item: JSON
    ) -> JSON:
        """ItemSelector (ASL "ItemSelector"): the input of iteration ``index``, with ``$$.Map.Item``
        bound."""
        if state.query_language == "JSONata":
            if state.item_selector_expr is None:
                return item
            env = self.jsonata_env(frame, item={"Index": index, "Value": item})
            return evaluate_template(state.item_selector_expr, env, "ItemSelector")
        if state.item_selector is None:
            return item
        scope = self.scope(frame, item={"Index": index, "Value": item})
        return state.item_selector.evaluate(effective, scope)

    def batches(self, frame: Frame, state: Map, effective: JSON, items: list[JSON]) -> list[JSON]:
        """ItemBatcher: group items into ``{"Items": [...]}`` (plus BatchInput)."""
        batcher = state.item_batcher
        assert batcher is not None
        size = batcher.max_items_per_batch
        if batcher.max_items_per_batch_path is not None:
            size = self.int_from_path(
                frame, batcher.max_items_per_batch_path, effective, "MaxItemsPerBatchPath"
            )
            if size < 0:
                raise StateFailure(
                    "States.Runtime", self.cause(frame, "MaxItemsPerBatch cannot be negative.")
                )
        batch_input = None
        if batcher.batch_input is not None:
            batch_input = batcher.batch_input.evaluate(effective, self.scope(frame))
        return group_batches(items, size or 0, batch_input)

    def batches_jsonata(self, frame: Frame, state: Map, items: list[JSON]) -> list[JSON]:
        """JSONata ``ItemBatcher``: ``MaxItemsPerBatch`` and ``BatchInput`` as templates."""
        batcher = state.item_batcher_expr
        assert isinstance(batcher, dict)
        env = self.jsonata_env(frame)
        size_value = batcher.get("MaxItemsPerBatch")
        size = 0
        if is_expression(size_value):
            size = int(self.jsonata_number(size_value, env, "MaxItemsPerBatch"))
        elif isinstance(size_value, int):
            size = size_value
        batch_input = None
        if "BatchInput" in batcher:
            batch_input = evaluate_template(batcher["BatchInput"], env, "BatchInput")
        return group_batches(items, size, batch_input)

    def step_map(self, frame: Frame, state: Map) -> bool:
        """Map: drive the iterations in flight and start new ones while MaxConcurrency allows; a
        distributed Map opens its map run first (MapRunStarted)."""
        progressed = False
        if state.mode == "DISTRIBUTED" and not frame.map_run:
            # Decided from the definition, not remembered: a history cut between
            # MapStateStarted and MapRunStarted resumes into the same map run.
            if frame.redrive_map_run is not None:
                # A redrive goes on with the Map Run that failed (AWS: MapRunRedriven); the
                # children that did not succeed are redriven.
                details = {
                    "mapRunArn": frame.redrive_map_run,
                    "redriveCount": self.state.redrive_count,
                }
                self.emit("MapRunRedriven", frame.id, details)
            else:
                map_run_arn = self.map_run_arn(frame, state)
                self.emit("MapRunStarted", frame.id, {"mapRunArn": map_run_arn})
                if self.state.logic_version >= 3:
                    self.opened_map_runs.append(map_run_arn)
            progressed = True
        # Iterations in flight: drive those that may move (a Task result reaches one frame, so
        # the others waiting on their handlers are skipped: O(1) per result, not O(in flight)).
        if self.focus is None:
            # A wake-up (a timer, the start, a decision cut at its budget): only iterations
            # that can move are driven. One waiting on its handler or on a Retry delay not yet
            # due cannot, and visiting each of 40,000 such iterations on every timer held the
            # event loop for seconds (fuzz: a distributed Map without MaxConcurrency).
            visit = self.movable_iterations(frame)
        else:
            # A Task result can only move the iteration it belongs to: visiting just that one
            # keeps a Map with 10,000 iterations in flight linear, not quadratic.
            visit = [child_id for child_id in self.focus if child_id in frame.children]
        for child_id in visit:
            child = self.state.frames.get(child_id)
            if child is None:
                continue
            progressed |= self.advance_iteration(frame, state, child_id)
            if frame.phase != Phase.CHILDREN or self.state.status not in ACTIVE_STATUSES:
                return True
        if self.exceeds_tolerance(frame):
            self.map_failed(frame, state)
            return True
        # Start iterations while MaxConcurrency allows; each runs depth-first until it blocks.
        selects: bool | None = None
        effective: JSON = None
        limit = frame.max_concurrency
        if limit == 0 and state.mode == "DISTRIBUTED" and self.state.logic_version >= 2:
            limit = DISTRIBUTED_MAX_CONCURRENCY
        while (
            frame.reader is None
            and frame.child_started < frame.child_total
            and (limit == 0 or frame.child_running < limit)
            and not self.exhausted
        ):
            pending = frame.pending
            if pending is None:
                index = frame.child_started
            else:  # a redriven Map: only the iterations that did not succeed before
                index = pending[frame.child_started - (frame.child_total - len(pending))]
            started: dict[str, JSON] = {"name": state.name, "index": index}
            if selects is None:
                selects = self.selects_per_iteration(state)
                if selects and state.query_language != "JSONata":
                    effective = self.effective_input(frame, state)
            if selects:
                started["statemillInput"] = self.select_item(frame, state, effective, index)
            self.emit_state_event("MapIterationStarted", frame, started, ITERATION_STARTED)
            progressed = True
            self.start_iteration(frame, state, next(reversed(frame.children)))
            if frame.phase != Phase.CHILDREN or self.state.status not in ACTIVE_STATUSES:
                return True
            if frame.child_failed and self.exceeds_tolerance(frame):
                self.map_failed(frame, state)
                return True
        if frame.reader is not None and (
            frame.child_started < frame.child_total or frame.child_started == 0
        ):
            self.read_items(frame, state, limit)  # the next items, when there is room
            return progressed
        if frame.child_started == frame.child_total and frame.child_running == 0:
            if self.writes_results(state) and frame.map_run and not frame.map_run_ended:
                self.write_results(frame, state)  # the Map ends once they are written
                return progressed
            if frame.map_run and not frame.map_run_ended:
                self.emit("MapRunSucceeded", frame.id, {})
            self.emit("MapStateSucceeded", frame.id, {})
            return True
        return progressed

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

    def movable_iterations(self, frame: Frame) -> list[str]:
        """The iterations in flight that a wake-up can move: not one whose Task's handler runs
        (the shell owes its result; a token Task's deadlines are the core's, so those are
        driven), nor one whose Retry delay is not over (its timer is kept). An iteration with
        children of its own is always driven."""
        frames, now, timers = self.state.frames, self.now, self.timers
        visit: list[str] = []
        for child_id in frame.children:
            child = frames.get(child_id)
            if child is None:
                continue
            if not child.children:
                if (
                    child.phase == Phase.STARTED and child.task_token is None
                ) or child.phase == Phase.CHILD_RUN:
                    continue
                fire_at = child.fire_at if child.phase == Phase.RETRY_WAIT else None
                if fire_at is not None and now < fire_at:
                    timers[child_id] = fire_at
                    continue
            visit.append(child_id)
        return visit

    def start_iteration(self, frame: Frame, state: Map, child_id: str) -> None:
        """Drive an iteration just started (:meth:`advance_iteration`), its first step taken
        here: an iteration that ends in it (its ItemProcessor a run of plain Pass states, as in
        ``peers`` c) is recorded at once, without the driver's loop around it."""
        child = self.state.frames[child_id]
        if child.phase == Phase.CHILD_RUN:
            # Owed from the event that started it, budget or not: no later decision issues it.
            self.tasks.append(self.child_run_effect(child))
            if len(self.tasks) >= CHILD_RUNS_PER_DECISION:
                self.exhausted = True  # the next decision starts the next ones
            return
        if self.exhausted:
            return  # the next decision drives it
        self.step(child)
        if child.phase == Phase.DONE and frame.phase == Phase.CHILDREN:
            # (The execution cannot have ended: only its history quota ends it here, and
            # that raises.)
            succeeded = {"name": state.name, "index": child.index}
            self.emit_state_event("MapIterationSucceeded", frame, succeeded, ITERATION_ENDED)
            return
        self.advance_iteration(frame, state, child_id)

    def step(self, frame: Frame) -> bool:
        """One step of ``frame`` by its phase. The driver (``runtime.core.decide``) defines it."""
        raise NotImplementedError

    def advance_iteration(self, frame: Frame, state: Map, child_id: str) -> bool:
        """Drive one iteration; record its success when it reaches its end."""
        progressed = self.drive(child_id)
        if frame.phase != Phase.CHILDREN or self.state.status not in ACTIVE_STATUSES:
            return True
        child = self.state.frames.get(child_id)
        if child is not None and child.phase == Phase.DONE:
            self.emit_iteration(frame, state, "MapIterationSucceeded", child.index)
            return True
        return progressed

    def emit_iteration(self, frame: Frame, state: Map, kind: str, index: int) -> None:
        """MapIterationStarted/Succeeded/Failed/Aborted for iteration ``index``."""
        handler = ITERATION_STARTED if kind == "MapIterationStarted" else ITERATION_ENDED
        self.emit_state_event(kind, frame, {"name": state.name, "index": index}, handler)

    def map_failed(self, frame: Frame, state: Map) -> None:
        """Map: iterations failed beyond what it tolerates: MapRunFailed (distributed), then
        MapStateFailed."""
        error, cause = self.map_failure(frame, frame.error, frame.cause)
        if frame.map_run and not frame.map_run_ended:
            self.end_map_run(frame, "MapRunFailed", {"error": error, "cause": cause})
        self.children_failed(frame, state, "MapStateFailed", error, cause)

    def abort_children(self, frame_id: str) -> None:
        """StopExecution: abort the Map iterations and Parallel branches in flight, innermost
        first, as AWS logs them (MapIterationAborted, MapRunAborted, MapStateAborted,
        ParallelStateAborted) before ExecutionAborted."""
        frame = self.state.frames.get(frame_id)
        if frame is None or frame.phase != Phase.CHILDREN or frame.state is None:
            return
        for child_id in list(frame.children):
            child = self.state.frames.get(child_id)
            if child is not None and child.children:
                self.abort_children(child_id)
        state = self.state_of(frame)
        if isinstance(state, Map):
            for child_id, index in list(frame.children.items()):
                child = self.state.frames.get(child_id)
                # A Map Run's child execution logs its own ExecutionAborted (the shell stops
                # it: ``stopped_map_runs``); 10,000 MapIterationAborted here, hidden anyway,
                # made one decision of a stop that held the event loop for 0.5 s.
                if child is not None and child.phase not in (
                    Phase.DONE,
                    Phase.REPORTED,
                    Phase.CHILD_RUN,
                ):
                    self.emit_iteration(frame, state, "MapIterationAborted", index)
            if frame.map_run and not frame.map_run_ended:
                self.end_map_run(frame, "MapRunAborted", {})
            self.emit("MapStateAborted", frame.id, {})
        elif isinstance(state, Parallel):
            self.emit("ParallelStateAborted", frame.id, {})


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
