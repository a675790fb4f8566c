"""evolve(state, event): the only place an execution's state changes.

Folding ``evolve`` over a history rebuilds the state exactly; ``decide`` calls it on every event
it emits, so the live state is by construction the fold of the log. ``evolve`` is total over the
event types Statemill writes and ignores types it does not model (e.g. ``MapRunStarted`` only
marks the Map as distributed); it never reads the definition, the clock or randomness.

Imports only the standard library, msgspec and ``core``.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from runtime.core.events import HistoryEvent
from runtime.core.state import ExecutionState, Frame, Phase

_json_decode = msgspec.json.decode

_TASK_SCHEDULED = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"})
_TASK_STARTED = frozenset({"TaskStarted", "LambdaFunctionStarted", "ActivityStarted"})
_TASK_SUCCEEDED = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded"})
_TASK_FAILED = frozenset(
    {
        "TaskFailed",
        "TaskTimedOut",
        "TaskStartFailed",
        "TaskSubmitFailed",
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "LambdaFunctionScheduleFailed",
        "ActivityFailed",
        "ActivityTimedOut",
        "ActivityScheduleFailed",
    }
)
_TERMINAL = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionTimedOut": "TIMED_OUT",
    "ExecutionAborted": "ABORTED",
}


def fold(events: Iterable[HistoryEvent], state: ExecutionState | None = None) -> ExecutionState:
    """The state after ``events`` (from an empty state unless one is given)."""
    current = ExecutionState() if state is None else state
    for event in events:
        current = evolve(current, event)
    return current


def evolve(state: ExecutionState, event: HistoryEvent) -> ExecutionState:
    """Apply one event to ``state`` (in place) and return it."""
    state.last_event_id = event.id
    kind = event.type
    details = event.details
    if kind == "ExecutionStarted":
        _started(state, event)
        return state
    if kind in _TERMINAL:
        _terminal(state, event)
        return state
    if kind == "ExecutionRedriven":
        _redriven(state, event)
        return state
    frame = state.frames.get(event.frame)
    if frame is None:
        return state
    if kind.endswith("StateEntered"):
        frame.state = details["name"]
        frame.data = _json_decode(details["input"]) if "input" in details else None
        frame.phase = Phase.ENTERED
        frame.entered_id = event.id
        frame.entered_at = event.timestamp
        frame.retry_counts = {}
        frame.retry_total = 0
        frame.result = frame.error = frame.cause = None
        frame.fire_at = None
    elif kind.endswith("StateExited"):
        if frame.children:
            _drop_children(state, frame)
            frame.results = frame.items = None
        frame.data = _json_decode(details["output"]) if "output" in details else None
        assigned = details.get("assignedVariables")
        if assigned:
            # Copy on write: children created earlier keep the scope they started with.
            frame.variables = {
                **frame.variables,
                **{name: _json_decode(text) for name, text in assigned.items()},
            }
        frame.next = details.get("statemillNext")
        frame.phase = Phase.TRANSITION if frame.next is not None else Phase.DONE
    elif kind in _TASK_SCHEDULED:
        frame.phase = Phase.SCHEDULED
        frame.scheduled_id = event.id
        raw = details.get("parameters", details.get("input"))
        frame.task_input = _json_decode(raw) if isinstance(raw, str) else raw
        frame.task_timeout = details.get("timeoutInSeconds")
        frame.task_heartbeat = details.get("heartbeatInSeconds")
        frame.task_token = details.get("statemillTaskToken")
        frame.task_token_activity = kind == "ActivityScheduled"
        frame.task_submitted = False
        frame.task_scheduled_at = frame.task_beat_at = event.timestamp
    elif kind in _TASK_STARTED:
        frame.phase = Phase.STARTED
        frame.task_beat_at = event.timestamp
    elif kind == "TaskSubmitted":
        frame.task_submitted = True
        frame.task_beat_at = event.timestamp
    elif kind in _TASK_SUCCEEDED:
        frame.phase = Phase.TASK_SUCCEEDED
        output = details.get("output")
        frame.result = _json_decode(output) if isinstance(output, str) else output
    elif kind in _TASK_FAILED:
        frame.error = details.get("error")
        frame.cause = details.get("cause")
        _failed_or_retry(frame, event)
    elif kind == "EvaluationFailed":
        frame.error = details.get("error")
        frame.cause = details.get("cause")
        in_catch = details.get("statemillInCatch", False)
        frame.phase = Phase.CATCH_FAILED if in_catch else Phase.EVALUATION_FAILED
    elif kind in ("ParallelStateStarted", "MapStateStarted"):
        _children_started(state, frame, event)
    elif kind == "MapRunStarted":
        frame.map_run = True
        frame.map_run_ended = False
    elif kind in ("MapRunSucceeded", "MapRunFailed", "MapRunAborted"):
        frame.map_run_ended = True
    elif kind == "MapIterationStarted":
        _iteration_started(state, frame, event)
    elif kind in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"):
        _iteration_ended(state, frame, event)
    elif kind in ("ParallelStateSucceeded", "MapStateSucceeded"):
        if kind == "ParallelStateSucceeded":
            frame.results = [state.frames[c].data for c in frame.children if c in state.frames]
        _drop_children(state, frame)
        frame.phase = Phase.TASK_SUCCEEDED
        frame.result = frame.results if frame.results is not None else []
        frame.results = frame.items = None
    elif kind in ("ParallelStateFailed", "MapStateFailed"):
        _drop_children(state, frame)
        frame.error = details.get("statemillError", details.get("error"))
        frame.cause = details.get("statemillCause", details.get("cause"))
        frame.results = frame.items = None
        _failed_or_retry(frame, event, failed_phase=Phase.CHILDREN_FAILED)
    elif kind == "ParallelStateAborted" or kind == "MapStateAborted":
        _drop_children(state, frame)
    return state


def _started(state: ExecutionState, event: HistoryEvent) -> None:
    details = event.details
    state.status = "RUNNING"
    state.input = _json_decode(details["input"]) if "input" in details else None
    state.start_time = event.timestamp
    state.state_machine_arn = details.get("stateMachineArn", "")
    state.role_arn = details.get("roleArn", "")
    state.execution_arn = details.get("statemillExecutionArn", "")
    state.name = details.get("statemillName", "")
    state.redrive_count = details.get("statemillRedriveCount", 0)
    state.logic_version = details.get("statemillLogicVersion", 1)
    state.frames = {"": Frame(id="", phase=Phase.START, data=state.input)}


def _terminal(state: ExecutionState, event: HistoryEvent) -> None:
    details = event.details
    state.status = _TERMINAL[event.type]
    state.stop_time = event.timestamp
    if event.type == "ExecutionSucceeded":
        state.output = _json_decode(details["output"]) if "output" in details else None
    else:
        state.error = details.get("error")
        state.cause = details.get("cause")
        top = state.frames.get("")
        if top is not None:
            # Where a redrive starts again: the state the top level was in (or about to enter).
            name = top.next if top.phase in (Phase.TRANSITION, Phase.START) else top.state
            state.redrive_from = Frame(
                id="",
                phase=Phase.START if name is None else Phase.TRANSITION,
                next=name,
                data=top.data,
                variables=top.variables,
            )
    state.frames = {}


def _redriven(state: ExecutionState, event: HistoryEvent) -> None:
    """ExecutionRedriven: the execution runs again from the state it stopped in (the whole
    top-level state: a Parallel or Map runs all its branches or iterations again)."""
    state.status = "RUNNING"
    state.redrive_count = int(event.details.get("redriveCount", state.redrive_count + 1))
    state.redrive_time = event.timestamp
    state.stop_time = None
    state.error = state.cause = None
    start = state.redrive_from
    if start is None:
        start = Frame(id="", phase=Phase.START, data=state.input)
    state.frames = {"": start}
    state.redrive_from = None


def _failed_or_retry(
    frame: Frame, event: HistoryEvent, failed_phase: Phase = Phase.TASK_FAILED
) -> None:
    """Retry: a recorded ``statemillRetryDelay`` means the core chose retrier N."""
    details = event.details
    delay = details.get("statemillRetryDelay")
    if delay is None:
        frame.phase = failed_phase
        return
    retrier = int(details["statemillRetrier"])
    frame.retry_counts[retrier] = frame.retry_counts.get(retrier, 0) + 1
    frame.retry_total += 1
    frame.fire_at = event.timestamp + float(delay)
    frame.phase = Phase.RETRY_WAIT


def _children_started(state: ExecutionState, frame: Frame, event: HistoryEvent) -> None:
    details = event.details
    frame.phase = Phase.CHILDREN
    frame.run_id = event.id
    frame.map_run = frame.map_run_ended = False
    frame.error = frame.cause = None
    frame.child_started = frame.child_running = 0
    frame.child_succeeded = frame.child_failed = 0
    frame.children = {}
    assert frame.state is not None
    if event.type == "ParallelStateStarted":
        branch_input = details.get("statemillInput")
        count = int(details.get("statemillBranches", 0))
        frame.child_total = count
        frame.results = [None] * count
        for index in range(count):
            child_id = _child_id(frame, index)
            state.frames[child_id] = Frame(
                id=child_id,
                machine=(*frame.machine, (frame.state, index)),
                parent=frame.id,
                index=index,
                phase=Phase.START,
                data=branch_input,
                variables=frame.variables,
            )
            frame.children[child_id] = index
        frame.child_started = frame.child_running = count
        return
    if "statemillError" in details:
        # The Map failed while starting (e.g. an invalid ToleratedFailureCountPath).
        frame.phase = Phase.CHILDREN_FAILED
        frame.error = details["statemillError"]
        frame.cause = details.get("statemillCause")
        frame.items = frame.results = None
        return
    items = details.get("statemillItems") or []
    frame.items = list(items)
    frame.child_total = int(details.get("length", len(frame.items)))
    frame.results = [None] * frame.child_total
    frame.max_concurrency = int(details.get("statemillMaxConcurrency", 0))
    frame.tolerated_count = details.get("statemillToleratedFailureCount")
    frame.tolerated_percentage = details.get("statemillToleratedFailurePercentage")


def _child_id(frame: Frame, index: int) -> str:
    step = f"{frame.run_id}:{index}"
    return f"{frame.id}/{step}" if frame.id else step


def _iteration_started(state: ExecutionState, frame: Frame, event: HistoryEvent) -> None:
    index = int(event.details["index"])
    child_id = _child_id(frame, index)
    assert frame.state is not None
    assert frame.items is not None
    state.frames[child_id] = Frame(
        id=child_id,
        machine=(*frame.machine, (frame.state, -1)),
        parent=frame.id,
        index=index,
        phase=Phase.START,
        data=frame.items[index],
        # A Map iteration reads the outer variables; a distributed Map's child workflow does not.
        variables={} if frame.map_run else frame.variables,
    )
    frame.children[child_id] = index
    frame.child_started += 1
    frame.child_running += 1


def _iteration_ended(state: ExecutionState, frame: Frame, event: HistoryEvent) -> None:
    index = int(event.details["index"])
    child = state.frames.get(_child_id(frame, index))
    if child is not None:
        _drop_children(state, child)
        del state.frames[child.id]
        frame.children.pop(child.id, None)
    frame.child_running -= 1
    if event.type == "MapIterationSucceeded":
        frame.child_succeeded += 1
        if frame.results is not None and child is not None:
            frame.results[index] = child.data
    elif event.type == "MapIterationFailed":
        frame.child_failed += 1
        if frame.error is None:
            frame.error = event.details.get("statemillError")
            frame.cause = event.details.get("statemillCause")
        if "statemillRetryDelay" in event.details:
            # The Map failed and a retrier applies (AWS logs no MapStateFailed then).
            _drop_children(state, frame)
            frame.results = frame.items = None
            _failed_or_retry(frame, event)


def _drop_children(state: ExecutionState, frame: Frame) -> None:
    """Forget every descendant frame of ``frame`` (walking ``children``, not every frame: an
    iteration that ends must not cost O(frames) in a Map with 10,000 in flight)."""
    pending = list(frame.children)
    while pending:
        child = state.frames.pop(pending.pop(), None)
        if child is not None:
            pending.extend(child.children)
    frame.children = {}
    frame.child_running = 0
