"""Parallel and Map (ASL "Parallel", "Map", "Map state failure threshold", "ItemBatcher"):
starting branches and iterations, driving them depth-first within MaxConcurrency, and ending
the state when they are done, failed beyond tolerance, or aborted. A distributed Map's Map Run
(its children as executions, ItemReader, ResultWriter) is :mod:`runtime.core.mapruns`'.

Imports only the standard library, ``runtime.lang``, ``runtime.definition.model`` and
``runtime.core``.
"""

from __future__ import annotations

import re
from typing import Any, Final

from runtime.core.evolve import ITERATION_ENDED, ITERATION_STARTED
from runtime.core.mapruns import DISTRIBUTED_MAX_CONCURRENCY, MapRuns, group_batches
from runtime.core.session import StateFailure, dumps
from runtime.core.state import ACTIVE_STATUSES, Frame, Phase
from runtime.definition.model import Map, Parallel
from runtime.errors import StatesError
from runtime.lang.jsonata import compile_expression, evaluate_template, is_expression
from runtime.lang.jsonata_engine import QueryEvaluationError
from runtime.lang.jsonata_functions import Env

__all__ = ["Children", "group_batches"]

JSON = Any

_NUMBER_TEXT: Final = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


#: Child executions one decision starts at most (logic version 3); the next decision starts
#: the next ones. 10,000 in one decision (a distributed Map without MaxConcurrency) held the
#: event loop for 0.6 s, with their 10,000 starts queued behind it.
CHILD_RUNS_PER_DECISION: Final = 1_000


class Children(MapRuns):
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
        result is their outputs in branch order.

        History order (issue 15): in one decision each branch, in branch order, runs until it
        blocks (a Task, a timer) or ends, so one branch's events are contiguous within a
        decision: depth-first by branch, as Map iterations run by index. The 61 public Map
        recordings with a history log iterations this way. AWS runs branches concurrently, so
        its order across branches is not fixed, and the public Parallel recordings cannot say
        more: LocalStack's ``SfnNoneRecursiveParallelTransformer`` recorded them after sorting
        the events between ParallelStateStarted and the Parallel state's first closing event
        by their JSON text with ids masked, which puts every PassStateEntered before every
        PassStateExited (``test_parallel_state_PARALLEL_STATE``), an order no run can have.
        The same transformer drops that closing event when ParallelStateExited follows it
        (the recording has no event #18): the recordings' missing ParallelStateSucceeded is
        an artefact too, not a proof that AWS logs none."""
        progressed = False
        for child_id in list(frame.children):
            progressed |= self.drive(child_id)
            if frame.phase != Phase.CHILDREN:
                return True
        children = [self.state.frames[c] for c in frame.children if c in self.state.frames]
        if all(child.phase == Phase.DONE for child in children):
            # No ParallelStateSucceeded is logged: the public recordings lack it, but only
            # because their transformer dropped it (see above); logging it is a history
            # change for a new logic version, once the harness normalises as they did.
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
                # AWS's field is a float (UpdateMapRun: "toleratedFailurePercentage ... Type:
                # Float"); the value is shown as ToleratedFailureCountPath shows it: a string
                # as it is, anything else as JSON text, in quotes.
                shown = value if isinstance(value, str) else dumps(value)
                raise StateFailure(
                    "States.Runtime",
                    self.cause(
                        frame,
                        "The ToleratedFailurePercentagePath field refers to value "
                        f'"{shown}" which is not a valid float: {path.text}',
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
