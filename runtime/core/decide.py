"""decide(machine, state, incoming) -> Decision: the next events and effects of an execution.

This is ASL's semantics as a pure function. Given the compiled definition, the state folded from
the log, and one incoming fact (a clock reading, a Task's result, a stop request), it returns the
events to append and the effects to run once they are durable. Every event it emits is applied
with ``evolve`` before the next step is decided, so the state it reasons about is always the fold
of the log: a decision can stop anywhere and resume from the folded state alone.

Each frame (top level, Parallel branch, Map iteration) advances through ``Phase``s one step at a
time; a frame that starts children drives them depth-first before it goes on, which yields the
event order AWS records for sequential work. No clock, randomness or I/O: ``now`` and the random
``seed`` arrive in the incoming fact, and the values drawn from them are recorded in the events.

This module is the driver: the phases, the budget of one decision and the execution's own
bounds. The rules it drives live by concern in ``session`` (events, context object, entry and
exit), ``dataflow`` (input and output processing), ``failures`` (Retry, Catch), ``tasks`` (Task
states, task tokens), ``children`` (Parallel, Map) and ``flow`` (Pass, Choice, Wait, Succeed,
Fail); the names other packages import are re-exported here.

Imports only the standard library, msgspec, ``runtime.errors``, ``runtime.lang``,
``runtime.definition.model`` and ``runtime.core``.
"""

from __future__ import annotations

from typing import Any, assert_never, final

from runtime.core.effects import (
    Decision,
    Incoming,
    MapRunUpdate,
    RunTask,
    StopRequested,
    TaskResult,
    Wake,
    is_write_id,
)
from runtime.core.events import LOGIC_VERSION, HistoryEvent
from runtime.core.failures import backoff_delay
from runtime.core.flow import Flow, parse_timestamp
from runtime.core.limits import DEFAULT_LIMITS, ExecutionLimits
from runtime.core.session import (
    MAX_EVENTS_PER_DECISION,
    MAX_PAYLOAD_BYTES,
    HistoryLimitReached,
    StateFailure,
    dumps,
    iso_time,
)
from runtime.core.state import ACTIVE_STATUSES, ExecutionState, Frame, Phases
from runtime.core.tasks import (
    LAMBDA_INVOKE,
    WAIT_FOR_TASK_TOKEN,
    has_task_token,
    is_activity,
    is_activity_frame,
    is_wait_for_task_token,
    lambda_payload,
    make_task_token,
    parse_task_token,
    resource_parts,
    task_token_secret,
)
from runtime.definition.model import Map, Parallel, Pass, State, StateMachine, Task
from runtime.errors import StatesError
from runtime.lang.jsonata_engine import QueryEvaluationError

__all__ = [
    "LAMBDA_INVOKE",
    "MAX_EVENTS_PER_DECISION",
    "MAX_PAYLOAD_BYTES",
    "WAIT_FOR_TASK_TOKEN",
    "backoff_delay",
    "decide",
    "dumps",
    "has_task_token",
    "in_flight",
    "is_activity",
    "is_wait_for_task_token",
    "iso_time",
    "lambda_payload",
    "make_task_token",
    "parse_task_token",
    "parse_timestamp",
    "resource_parts",
    "start_event",
    "task_token_secret",
]

JSON = Any


def start_event(
    *,
    execution_arn: str,
    state_machine_arn: str,
    name: str,
    input: JSON,
    now: float,
    role_arn: str = "",
    redrive_count: int = 0,
    input_text: str | None = None,
    version_arn: str | None = None,
    alias_arn: str | None = None,
) -> HistoryEvent:
    """The ``ExecutionStarted`` event that opens every history. ``input_text``, when given, is
    ``dumps(input)`` already made by the caller (who checked the input's size on it), so the
    input is not encoded again; ``evolve(ExecutionState(), event, input)`` then folds the event
    without decoding it back. ``version_arn``/``alias_arn``: the version the execution runs
    and the alias it came through, when started from their ARNs (AWS's
    ``stateMachineVersionArn``/``stateMachineAliasArn``)."""
    details: dict[str, JSON] = {
        "input": dumps(input) if input_text is None else input_text,
        "inputDetails": {"truncated": False},
        "roleArn": role_arn,
    }
    if alias_arn is not None:
        details["stateMachineAliasArn"] = alias_arn
    if version_arn is not None:
        details["stateMachineVersionArn"] = version_arn
    details["stateMachineArn"] = state_machine_arn
    details["statemillExecutionArn"] = execution_arn
    details["statemillName"] = name
    details["statemillRedriveCount"] = redrive_count
    details["statemillLogicVersion"] = LOGIC_VERSION
    return HistoryEvent(id=1, type="ExecutionStarted", timestamp=now, details=details)


def decide(
    machine: StateMachine,
    state: ExecutionState,
    incoming: Incoming,
    *,
    limits: ExecutionLimits = DEFAULT_LIMITS,
) -> Decision:
    """Advance ``state`` (in place, through ``evolve``) as far as ``incoming`` allows, within
    ``limits`` (the runtime's quotas)."""
    return _Decider(machine, state, incoming, limits).run()


def in_flight(state: ExecutionState, machine: StateMachine) -> tuple[RunTask, ...]:
    """The Task attempts a folded state owes results for (re-run after a restart)."""
    decider = _Decider(machine, state, Wake(now=state.start_time))
    return tuple(
        decider.child_run_effect(frame)
        if frame.phase == Phases.CHILD_RUN
        else decider.run_task_effect(frame)
        for frame in state.frames.values()
        if (
            frame.phase == Phases.STARTED
            and not frame.task_submitted
            and not is_activity_frame(frame)
        )
        or (frame.phase == Phases.SCHEDULED and is_activity_frame(frame))
        or frame.phase == Phases.CHILD_RUN
    )


@final
class _Decider(Flow):
    """One decision: the incoming fact applied, then every frame driven until it blocks."""

    def run(self) -> Decision:
        """The whole decision: nothing for an ended execution; otherwise advance, and stop at the
        history quota if it is reached."""
        incoming = self.incoming
        if isinstance(incoming, TaskResult):
            # Only the frame the result is for, and its ancestors, can move.
            parts = incoming.frame.split("/") if incoming.frame else []
            self.focus = {"", *("/".join(parts[: i + 1]) for i in range(len(parts)))}
        state = self.state
        if state.is_terminal or not state.frames:
            return Decision()
        # A try statement, not ``contextlib.suppress``: three Python calls per decision.
        try:
            self.advance()
        except HistoryLimitReached:
            return self.decision()  # the execution failed at the quota: what was emitted
        return self.decision()

    def advance(self) -> None:
        """Apply the incoming fact, then drive the execution as far as it goes."""
        state = self.state
        incoming = self.incoming
        if isinstance(incoming, StopRequested):
            details: dict[str, JSON] = {}
            if incoming.error is not None:
                details["error"] = incoming.error
            if incoming.cause is not None:
                details["cause"] = incoming.cause
            self.abort_children("")
            self.emit("ExecutionAborted", "", details)
            return
        begun = state.start_time if state.redrive_time is None else state.redrive_time
        if self.machine.timeout_seconds is not None:
            deadline = begun + self.machine.timeout_seconds
            if self.now >= deadline:
                self.time_out()
                return
            self.timers["$execution"] = deadline
        bound = self.limits.max_execution_seconds
        if bound is not None:
            self.execution_end = begun + bound
            if self.now >= self.execution_end:
                self.time_out()
                return
        if isinstance(incoming, TaskResult):
            frame = state.frames.get(incoming.frame)
            if frame is not None and frame.phase == Phases.CHILD_RUN:
                self.apply_child_run_result(frame, incoming)
            elif frame is not None and is_write_id(incoming.scheduled_id):
                self.apply_results_written(frame, incoming)
            elif frame is not None and frame.reader is not None and incoming.scheduled_id < 0:
                self.apply_items_read(frame, incoming)
            else:
                self.apply_task_result(incoming)
        elif isinstance(incoming, Wake):
            pass
        elif isinstance(incoming, MapRunUpdate):
            self.update_map_run(incoming)
        else:
            assert_never(incoming)
        self.drive("")

    def time_out(self) -> None:
        """State machine ``TimeoutSeconds``, and AWS's "Maximum execution time" (1 year,
        ``ExecutionLimits.max_execution_seconds``): the execution times out."""
        self.emit(
            "ExecutionTimedOut",
            "",
            {"error": "States.Timeout", "cause": "The execution timed out."},
        )

    def decision(self) -> Decision:
        """The Decision: events, Task effects, the earliest timer (never past the execution's
        maximum duration) and whether the event budget cut it short."""
        wake_at = None
        if not self.state.is_terminal:
            # Every waiting frame this decision visited recorded its timer (a decision without
            # a focus visits them all; a focused one says so with ``partial``).
            wake_at = min(self.timers.values()) if self.timers else None
            end = self.execution_end
            if wake_at is not None and end is not None and wake_at > end:
                # No timer past the execution's maximum duration: it times out then.
                wake_at = end
        return Decision(
            events=tuple(self.events),
            tasks=tuple(self.tasks),
            wake_at=wake_at,
            more=self.exhausted and not self.state.is_terminal,
            partial=self.focus is not None,
            opened_map_runs=tuple(self.opened_map_runs),
            stopped_map_runs=tuple(dict.fromkeys(self.stopped_map_runs)),
        )

    def drive(self, frame_id: str) -> bool:
        """Step ``frame_id`` until it blocks; True if anything happened."""
        progressed = False
        state = self.state
        # ``status`` rather than ``is_terminal``: a property call per step (``benchmarks chain``).
        while state.status in ACTIVE_STATUSES and not self.exhausted:
            frame = state.frames.get(frame_id)
            if frame is None or not self.step(frame):
                break
            progressed = True
        return progressed

    def step(self, frame: Frame) -> bool:
        """One step of ``frame`` by its phase: enter the next state, end the execution, check a
        token Task's deadlines, or hand the state's own phases to :meth:`step_guarded`."""
        phase = frame.phase
        if phase == Phases.ENTERED:  # the most frequent phase, tested first (benchmarks chain)
            state = self.state_of(frame)
            if type(state) is Pass and state.is_plain:
                return self.pass_through(frame, state)
            return self.step_guarded(frame, state)
        if phase == Phases.START:
            machine = self.machine_of(frame)
            # The top level starts on the decoded execution input; a branch or iteration on a
            # value from its parent's event details, which evolve must decode itself.
            entered = self.enter(frame, machine.start_at, frame.data, decoded=frame.parent is None)
        elif phase == Phases.TRANSITION:
            assert frame.next is not None
            entered = self.enter(frame, frame.next, frame.data, decoded=True)
        elif phase == Phases.DONE:
            if frame.parent is None:
                self.emit(
                    "ExecutionSucceeded",
                    "",
                    {"output": self.text_of(frame.data), "outputDetails": {"truncated": False}},
                    frame.data,
                )
                return True
            return False
        elif phase == Phases.STARTED and frame.task_token is not None:
            return self.check_token_deadlines(frame)
        elif phase in (Phases.STARTED, Phases.REPORTED, Phases.CHILD_RUN):
            return False
        else:
            return self.step_guarded(frame, self.state_of(frame))
        # A state just entered: the step the driver would take next, taken at once for the
        # commonest state (``benchmarks chain``, ``peers`` c: each Map iteration a Pass).
        if type(entered) is Pass and entered.is_plain and not self.exhausted:
            self.pass_through(frame, entered)
        return True

    def step_guarded(self, frame: Frame, state: State) -> bool:
        """:meth:`step_state`, turning a failed evaluation into the state's failure."""
        try:
            return self.step_state(frame, state)
        except StateFailure as failure:
            self.fail_state(frame, state, failure.error, failure.cause)
            return True
        except StatesError as error:
            cause = self.cause(frame, error.cause)
            if isinstance(error, QueryEvaluationError):
                # Logged first; the failure itself follows from the EVALUATION_FAILED phase,
                # so a decision cut right after this event resumes without evaluating again.
                self.evaluation_failed(frame, error, cause)
                return True
            self.fail_state(frame, state, error.error, cause)
            return True
        except RecursionError:
            # Data nested deeper than the encoder or an evaluator can walk (a loop that wraps
            # its input once per turn): the state fails, never the decision.
            detail = "The state's input or output is nested too deeply to be processed."
            self.fail_state(frame, state, "States.Runtime", self.cause(frame, detail))
            return True

    def step_state(self, frame: Frame, state: State) -> bool:
        """The state-specific phases: entered, a Task attempt scheduled/succeeded/failed, a retry
        due (ASL "Retrying after error"), children running."""
        phase = frame.phase
        if phase == Phases.ENTERED:
            return self.on_entered(frame, state)
        if phase == Phases.SCHEDULED:
            if isinstance(state, Task) and is_activity(state.resource):
                return self.check_token_deadlines(frame)  # waits for a worker
            self.start_task(frame, state)
            return True
        if phase == Phases.TASK_SUCCEEDED:
            self.finish_with_result(frame, state, frame.result)
            return True
        if phase == Phases.EVALUATION_FAILED:
            self.after_evaluation_failed(frame, state)
            return True
        if phase == Phases.CATCH_FAILED:
            self.fail_frame(frame, frame.error, frame.cause)
            return True
        if phase in (Phases.TASK_FAILED, Phases.CHILDREN_FAILED):
            self.fail_state(frame, state, frame.error or "States.TaskFailed", frame.cause or "")
            return True
        if phase == Phases.RETRY_WAIT:
            assert frame.fire_at is not None
            if self.now < frame.fire_at:
                self.timers[frame.id] = frame.fire_at
                return False
            if isinstance(state, Task) and not has_task_token(state.resource):
                self.schedule(frame, state, frame.task_input)
            else:
                # A token Task's retry gets a new token: its Parameters are evaluated again.
                self.on_entered(frame, state)
            return True
        if phase == Phases.CHILDREN:
            if isinstance(state, Map):
                return self.step_map(frame, state)
            if isinstance(state, Parallel):
                return self.step_parallel(frame, state)
        return False

    def after_evaluation_failed(self, frame: Frame, state: State) -> None:
        """The state whose evaluation failed fails: AWS fails a Map that could not start
        (Items, ItemSelector...) with MapStateFailed, which its Retry and Catch then see; so
        does a Map whose ItemSelector failed as an iteration started (logic version 2), its
        map run first when it is distributed (MapRunFailed)."""
        error = frame.error or "States.QueryEvaluationError"
        cause = frame.cause or ""
        # run_id < entered_id: no MapStateStarted since the state was entered; items set: a
        # run in progress (MapStateStarted folded, no MapState{Succeeded,Failed} yet), which
        # only an ItemSelector evaluated per iteration fails (version 1 evaluated none then).
        if isinstance(state, Map) and (frame.run_id < frame.entered_id or frame.items is not None):
            if frame.map_run and not frame.map_run_ended:
                self.end_map_run(frame, "MapRunFailed", {"error": error, "cause": cause})
            self.children_failed(frame, state, "MapStateFailed", error, cause)
            return
        self.fail_state(frame, state, error, cause)
