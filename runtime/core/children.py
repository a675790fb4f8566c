"""Parallel and Map (ASL "Parallel", "Map", "Map state failure threshold", "ItemBatcher"):
starting branches and iterations, driving them depth-first within MaxConcurrency, and ending
the state when they are done, failed beyond tolerance, or aborted. A distributed Map's Map Run
(its children as executions, ItemReader, ResultWriter) is :mod:`runtime.core.mapruns`'.

Imports only the standard library, ``runtime.lang``, ``runtime.definition.model`` and
``runtime.core``.
"""

from __future__ import annotations

from typing import Any, Final

from runtime.core.evolve import ITERATION_ENDED, ITERATION_STARTED
from runtime.core.mapruns import DISTRIBUTED_MAX_CONCURRENCY, MapRuns, group_batches
from runtime.core.session import StateBindings, StateFailure
from runtime.core.state import ACTIVE_STATUSES, Frame, Phases
from runtime.definition.model import ItemBatcher, Map, Parallel
from runtime.errors import StatesError
from runtime.lang.jsonata_engine import QueryEvaluationError

__all__ = ["Children", "group_batches"]

JSON = Any

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
            if frame.phase != Phases.CHILDREN:
                return True
        children = [self.state.frames[c] for c in frame.children if c in self.state.frames]
        if all(child.phase == Phases.DONE for child in children):
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
        effective = self.effective_input(frame, state)
        bindings = self.bindings(frame, effective)
        items = [] if reads else state.items.items(bindings)
        max_concurrency = 0
        if state.max_concurrency is not None:
            max_concurrency = state.max_concurrency.count(bindings)
        try:
            tolerated_count, tolerated_percentage = self.map_tolerance(state, bindings)
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
                    "statemillItemReader": self.resolve_reader(state, bindings),
                    "statemillBatchSize": self.reader_batch_size(state, bindings),
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
        if state.item_selector is None or self.selects_per_iteration(state):
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
            # Kept as it was: JSONPath batches the items, JSONata the selected ones. AWS's
            # order (ItemsPath/Items, ItemSelector, ItemBatcher) says the selected ones; the
            # change waits for a logic version and a recording (test_map_selection pins it).
            batched = items if state.query_language == "JSONPath" else inputs
            inputs = self.batches(state.item_batcher, bindings, batched)
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

    def map_tolerance(self, state: Map, bindings: StateBindings) -> tuple[int | None, float | None]:
        """Map state failure threshold (ASL): ToleratedFailureCount(Path), then
        ToleratedFailurePercentage(Path); ``None`` for one the definition does not give."""
        count = state.tolerated_failure_count
        percentage = state.tolerated_failure_percentage
        return (
            None if count is None else count.count(bindings),
            None if percentage is None else percentage.percentage(bindings),
        )

    def selects_per_iteration(self, state: Map) -> bool:
        """ItemSelector (ASL "ItemSelector"): whether each iteration's input is selected from
        its item when the iteration starts, within MaxConcurrency, and recorded in its
        MapIterationStarted (``statemillInput``), rather than all of them at MapStateStarted.

        From logic version 2 on, for a Map with an ItemSelector (JSONPath ``Parameters``
        included) whose items are not batched; a history of version 1 (and one imported from
        AWS) recorded the selected inputs in MapStateStarted and goes on that way."""
        if self.state.logic_version < 2:
            return False
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
        bound (``$states.context.Map.Item`` in JSONata), in either query language."""
        if state.item_selector is None:
            return item
        bindings = self.bindings(frame, effective, item={"Index": index, "Value": item})
        return state.item_selector.evaluate(bindings)

    def batches(
        self, batcher: ItemBatcher, bindings: StateBindings, items: list[JSON]
    ) -> list[JSON]:
        """ItemBatcher (ASL "ItemBatcher"): the items grouped into ``{"Items": [...]}`` of
        MaxItemsPerBatch(Path) each, plus BatchInput."""
        size = 0
        if batcher.max_items_per_batch is not None:
            size = batcher.max_items_per_batch.count(bindings)
        batch_input = None
        if batcher.batch_input is not None:
            batch_input = batcher.batch_input.evaluate(bindings)
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
            if frame.phase != Phases.CHILDREN or self.state.status not in ACTIVE_STATUSES:
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
            and self.has_input_room(frame)
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
            if frame.phase != Phases.CHILDREN or self.state.status not in ACTIVE_STATUSES:
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
                    child.phase == Phases.STARTED and child.task_token is None
                ) or child.phase == Phases.CHILD_RUN:
                    continue
                fire_at = child.fire_at if child.phase == Phases.RETRY_WAIT else None
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
        if child.phase == Phases.CHILD_RUN:
            # Owed from the event that started it, budget or not: no later decision issues it.
            self.tasks.append(self.child_run_effect(child))
            if len(self.tasks) >= CHILD_RUNS_PER_DECISION:
                self.exhausted = True  # the next decision starts the next ones
            return
        if self.exhausted:
            return  # the next decision drives it
        self.step(child)
        if child.phase == Phases.DONE and frame.phase == Phases.CHILDREN:
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
        if frame.phase != Phases.CHILDREN or self.state.status not in ACTIVE_STATUSES:
            return True
        child = self.state.frames.get(child_id)
        if child is not None and child.phase == Phases.DONE:
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
        if frame is None or frame.phase != Phases.CHILDREN or frame.state is None:
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
                    Phases.DONE,
                    Phases.REPORTED,
                    Phases.CHILD_RUN,
                ):
                    self.emit_iteration(frame, state, "MapIterationAborted", index)
            if frame.map_run and not frame.map_run_ended:
                self.end_map_run(frame, "MapRunAborted", {})
            self.emit("MapStateAborted", frame.id, {})
        elif isinstance(state, Parallel):
            self.emit("ParallelStateAborted", frame.id, {})
