"""evolve(state, event): the only place an execution's state changes.

Folding ``evolve`` over a history rebuilds the state exactly; ``decide`` calls it on every event
it emits, so the live state is by construction the fold of the log. ``evolve`` is total over the
event types Statemill writes and ignores types it does not model (e.g. ``MapRunStarted`` only
marks the Map as distributed); it never reads the definition, the clock or randomness.

Imports only the standard library, msgspec and ``core``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from runtime.core.events import HistoryEvent
from runtime.core.state import ExecutionState, Frame, Phase, Phases

JSON = Any
FrameHandler = Callable[[ExecutionState, Frame, HistoryEvent, JSON], None]
"""What ``evolve`` does for an event of one frame: (state, frame, event, decoded value)."""

_json_decode = msgspec.json.decode
_encode = msgspec.json.encode

_TASK_SCHEDULED = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"})
_TASK_STARTED = frozenset({"TaskStarted", "LambdaFunctionStarted", "ActivityStarted"})
_TASK_SUCCEEDED = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded"})
#: Every event type that ends a Task attempt unsuccessfully.
TASK_FAILED_TYPES = frozenset(
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


#: ``evolve``'s ``decoded`` default: "no decoded value given" (``None`` is a JSON value).
NOT_DECODED: Any = object()


def evolve(
    state: ExecutionState, event: HistoryEvent, decoded: JSON = NOT_DECODED
) -> ExecutionState:
    """Apply one event to ``state`` (in place) and return it.

    ``decoded``, when given, is the JSON value of the event's ``input`` (ExecutionStarted,
    StateEntered) or ``output`` (StateExited, ExecutionSucceeded) text: ``decide`` passes the
    value it has just encoded, so the live path skips decoding it again (``benchmarks chain``),
    and a start can pass the execution input it decoded from that text. ``fold`` never
    passes it; the replay property tests check that both give the same state.
    """
    state.last_event_id = event.id
    kind = event.type
    # One dict lookup instead of a chain of tests per event (``benchmarks chain``).
    top = _TOP_LEVEL.get(kind)
    if top is not None:
        top(state, event, decoded)
        return state
    frame = state.frames.get(event.frame)
    if frame is None:
        return state
    if frame.detached:
        state.detached_events += 1
    handler = _FRAME_HANDLERS.get(kind)
    if handler is None:
        handler = _frame_handler(kind)
        if handler is None:
            return state
    handler(state, frame, event, decoded)
    return state


def evolve_next(
    state: ExecutionState,
    frame: Frame,
    kind: str,
    timestamp: float,
    details: dict[str, JSON],
    handler: FrameHandler,
    decoded: JSON = NOT_DECODED,
) -> HistoryEvent:
    """The next event of ``state`` (id after the last), of type ``kind`` for ``frame`` (a live
    frame of ``state``), applied: ``evolve(state, event, decoded)`` with the handler the caller
    already knows (``STATE_ENTERED``, ``STATE_EXITED``, ``ITERATION_STARTED``,
    ``ITERATION_ENDED``), without looking the type and the frame up (``benchmarks chain``:
    nearly every event of a run of Pass states or of an inline Map)."""
    last = state.last_event_id
    event = HistoryEvent(
        id=last + 1,
        type=kind,
        timestamp=timestamp,
        previous_event_id=last,
        details=details,
        frame=frame.id,
    )
    state.last_event_id = last + 1
    if frame.detached:
        state.detached_events += 1
    handler(state, frame, event, decoded)
    return event


def _frame_handler(kind: str) -> FrameHandler | None:
    """The handler of an event type not in the table (a StateEntered/StateExited of a state
    type AWS may add), or None for types ``evolve`` does not model."""
    if kind.endswith("StateEntered"):
        return _state_entered
    if kind.endswith("StateExited"):
        return _state_exited
    return None


def _state_entered(state: ExecutionState, frame: Frame, event: HistoryEvent, decoded: JSON) -> None:
    details = event.details
    frame.state = details["name"]
    if decoded is not NOT_DECODED:
        frame.data = decoded
    else:
        frame.data = _json_decode(details["input"]) if "input" in details else None
    frame.phase = Phases.ENTERED
    frame.entered_id = event.id
    frame.entered_at = event.timestamp
    # Each field is written only when it must change: setting a Struct's attribute costs ~3
    # times reading it, and after a Pass they are all cleared already (``peers`` a).
    if frame.retry_counts:  # an empty one stays: no allocation per event (benchmarks chain)
        frame.retry_counts = {}
    if frame.retry_total:
        frame.retry_total = 0
    if frame.result is not None or frame.error is not None or frame.cause is not None:
        frame.result = frame.error = frame.cause = None
    if frame.fire_at is not None:
        frame.fire_at = None


def _state_exited(state: ExecutionState, frame: Frame, event: HistoryEvent, decoded: JSON) -> None:
    details = event.details
    if frame.children:
        _drop_children(state, frame)
        frame.results = frame.items = None
    if frame.kept is not None or frame.pending is not None:  # written only if set (see above)
        frame.kept = frame.pending = None
    if frame.succeeded:  # an empty one stays: no allocation per event (benchmarks chain)
        frame.succeeded = set()
    if decoded is not NOT_DECODED:
        frame.data = decoded
    else:
        frame.data = _json_decode(details["output"]) if "output" in details else None
    assigned = details.get("assignedVariables")
    if assigned:
        # Copy on write: children created earlier keep the scope they started with.
        frame.variables = {
            **frame.variables,
            **{name: _json_decode(text) for name, text in assigned.items()},
        }
    following = frame.next = details.get("statemillNext")
    frame.phase = Phases.TRANSITION if following is not None else Phases.DONE


def _task_scheduled(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    details = event.details
    frame.phase = Phases.SCHEDULED
    frame.scheduled_id = event.id
    raw = details.get("parameters", details.get("input"))
    frame.task_input = _json_decode(raw) if isinstance(raw, str) else raw
    frame.task_timeout = details.get("timeoutInSeconds")
    frame.task_heartbeat = details.get("heartbeatInSeconds")
    frame.task_token = details.get("statemillTaskToken")
    frame.task_token_activity = event.type == "ActivityScheduled"
    frame.task_submitted = False
    frame.task_scheduled_at = frame.task_beat_at = event.timestamp


def _task_started(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    frame.phase = Phases.STARTED
    frame.task_beat_at = event.timestamp


def _task_submitted(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    frame.task_submitted = True
    frame.task_beat_at = event.timestamp


def _task_succeeded(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    frame.phase = Phases.TASK_SUCCEEDED
    output = event.details.get("output")
    frame.result = _json_decode(output) if isinstance(output, str) else output


def _task_failed(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    details = event.details
    frame.error = details.get("error")
    frame.cause = details.get("cause")
    _failed_or_retry(frame, event)


def _evaluation_failed(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    details = event.details
    frame.error = details.get("error")
    frame.cause = details.get("cause")
    in_catch = details.get("statemillInCatch", False)
    frame.phase = Phases.CATCH_FAILED if in_catch else Phases.EVALUATION_FAILED


def _map_run_started(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    frame.map_run = True
    frame.map_run_ended = False
    frame.map_run_arn = event.details.get("mapRunArn")
    frame.map_run_redriven = event.type == "MapRunRedriven"
    frame.redrive_map_run = None


def _map_run_updated(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    details = event.details
    state.detached_events += 1  # Statemill's own: not in the history AWS shows
    if "statemillMaxConcurrency" in details:
        frame.max_concurrency = int(details["statemillMaxConcurrency"])
    if "statemillToleratedFailureCount" in details:
        frame.tolerated_count = int(details["statemillToleratedFailureCount"])
    if "statemillToleratedFailurePercentage" in details:
        frame.tolerated_percentage = float(details["statemillToleratedFailurePercentage"])


def _map_run_ended(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    frame.map_run_ended = True


def _children_succeeded(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    if event.type == "ParallelStateSucceeded":
        frame.results = [state.frames[c].data for c in frame.children if c in state.frames]
    _drop_children(state, frame)
    frame.phase = Phases.TASK_SUCCEEDED
    frame.result = frame.results if frame.results is not None else []
    if "statemillOutput" in event.details:  # a ResultWriter's output (issue 14)
        frame.result = event.details["statemillOutput"]
    frame.results = frame.items = None
    frame.succeeded = set()


def _children_failed(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    details = event.details
    # Kept for a redrive unless a retrier runs the whole state again.
    frame.kept = None if "statemillRetryDelay" in details else _succeeded_children(state, frame)
    _drop_children(state, frame)
    frame.error = details.get("statemillError", details.get("error"))
    frame.cause = details.get("statemillCause", details.get("cause"))
    frame.results = frame.items = None
    _failed_or_retry(frame, event, failed_phase=Phases.CHILDREN_FAILED)


def _children_aborted(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    frame.kept = _succeeded_children(state, frame)
    _drop_children(state, frame)


def _succeeded_children(state: ExecutionState, frame: Frame) -> dict[int, JSON]:
    """Index -> output of the branches or iterations of ``frame``'s current run that
    succeeded (a redrive keeps them and runs only the others)."""
    if frame.results is None:
        return {}
    if frame.items is None:  # Parallel: a finished branch stays a DONE frame until the end
        kept: dict[int, JSON] = {}
        for child_id, index in frame.children.items():
            child = state.frames.get(child_id)
            if child is not None and child.phase == Phases.DONE and child.error is None:
                kept[index] = child.data
        return kept
    results = frame.results
    return {index: results[index] for index in frame.succeeded}


def _started(state: ExecutionState, event: HistoryEvent, decoded: JSON) -> None:
    details = event.details
    state.status = "RUNNING"
    if decoded is not NOT_DECODED:
        state.input = decoded
    else:
        state.input = _json_decode(details["input"]) if "input" in details else None
    state.start_time = event.timestamp
    state.state_machine_arn = details.get("stateMachineArn", "")
    state.role_arn = details.get("roleArn", "")
    state.execution_arn = details.get("statemillExecutionArn", "")
    state.name = details.get("statemillName", "")
    state.redrive_count = details.get("statemillRedriveCount", 0)
    state.logic_version = details.get("statemillLogicVersion", 1)
    state.frames = {"": Frame(id="", phase=Phases.START, data=state.input)}


def _terminal(state: ExecutionState, event: HistoryEvent, decoded: JSON) -> None:
    details = event.details
    state.status = _TERMINAL[event.type]
    state.stop_time = event.timestamp
    if event.type == "ExecutionSucceeded":
        if decoded is not NOT_DECODED:
            state.output = decoded
        else:
            state.output = _json_decode(details["output"]) if "output" in details else None
    else:
        state.error = details.get("error")
        state.cause = details.get("cause")
        top = state.frames.get("")
        if top is not None:
            # Where a redrive starts again: the state the top level was in (or about to enter),
            # keeping what its branches or iterations finished.
            name = top.next if top.phase in (Phases.TRANSITION, Phases.START) else top.state
            kept = _succeeded_children(state, top) if top.phase == Phases.CHILDREN else top.kept
            # A distributed Map that failed or was stopped goes on with its Map Run.
            in_map_run = (
                top.phase in (Phases.CHILDREN, Phases.CHILDREN_FAILED)
                and top.map_run_arn is not None
                and state.logic_version >= 3
            )
            state.redrive_from = Frame(
                id="",
                phase=Phases.START if name is None else Phases.TRANSITION,
                next=name,
                data=top.data,
                variables=top.variables,
                kept=kept or None,
                redrive_map_run=top.map_run_arn if in_map_run else None,
            )
    state.frames = {}


def _redriven(state: ExecutionState, event: HistoryEvent, _: JSON) -> None:
    """ExecutionRedriven: the execution runs again from the state it stopped in (the whole
    top-level state: a Parallel or Map runs all its branches or iterations again)."""
    state.status = "RUNNING"
    state.redrive_count = int(event.details.get("redriveCount", state.redrive_count + 1))
    state.redrive_time = event.timestamp
    state.stop_time = None
    state.error = state.cause = None
    start = state.redrive_from
    if start is None:
        start = Frame(id="", phase=Phases.START, data=state.input)
    state.frames = {"": start}
    state.redrive_from = None


def _failed_or_retry(
    frame: Frame, event: HistoryEvent, failed_phase: Phase = Phases.TASK_FAILED
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
    frame.phase = Phases.RETRY_WAIT


def _children_started(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    details = event.details
    frame.phase = Phases.CHILDREN
    frame.run_id = event.id
    frame.map_run = frame.map_run_ended = False
    frame.error = frame.cause = None
    frame.child_started = frame.child_running = frame.child_input_bytes = 0
    frame.child_succeeded = frame.child_failed = 0
    frame.children = {}
    frame.succeeded = set()
    # A redriven state runs only what did not succeed before (consumed here: a retry of the
    # state afterwards runs everything again).
    kept, frame.kept, frame.pending = frame.kept or {}, None, None
    assert frame.state is not None
    if event.type == "ParallelStateStarted":
        branch_input = details.get("statemillInput")
        count = int(details.get("statemillBranches", 0))
        if any(index >= count for index in kept):
            kept = {}
        frame.child_total = count
        frame.results = [None] * count
        for index in range(count):
            child_id = _child_id(frame, index)
            done = index in kept
            state.frames[child_id] = Frame(
                id=child_id,
                machine=(*frame.machine, (frame.state, index)),
                parent=frame.id,
                index=index,
                phase=Phases.DONE if done else Phases.START,
                data=kept[index] if done else branch_input,
                variables=frame.variables,
                detached=frame.detached,
            )
            frame.children[child_id] = index
        frame.child_started = frame.child_running = count
        return
    if "statemillError" in details:
        # The Map failed while starting (e.g. an invalid ToleratedFailureCountPath).
        frame.phase = Phases.CHILDREN_FAILED
        frame.error = details["statemillError"]
        frame.cause = details.get("statemillCause")
        frame.items = frame.results = None
        return
    items = details.get("statemillItems") or []
    frame.items = list(items)
    frame.reader = details.get("statemillItemReader")
    frame.batch_size = int(details.get("statemillBatchSize", 0))
    frame.child_total = int(details.get("length", len(frame.items)))
    frame.results = [None] * frame.child_total
    frame.max_concurrency = int(details.get("statemillMaxConcurrency", 0))
    frame.tolerated_count = details.get("statemillToleratedFailureCount")
    frame.tolerated_percentage = details.get("statemillToleratedFailurePercentage")
    if kept and max(kept) < frame.child_total:
        for index, output in kept.items():
            frame.results[index] = output
        frame.succeeded = set(kept)
        frame.child_started = frame.child_succeeded = len(kept)
        frame.pending = [index for index in range(frame.child_total) if index not in kept]


def _child_id(frame: Frame, index: int) -> str:
    step = f"{frame.run_id}:{index}"
    return f"{frame.id}/{step}" if frame.id else step


def _iteration_started(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    if frame.map_run and not frame.detached:
        state.detached_events += 1  # a child workflow's start: not in this history on AWS
    details = event.details
    index = int(details["index"])
    # _child_id, inline: two per iteration (``peers`` c)
    child_id = f"{frame.id}/{frame.run_id}:{index}" if frame.id else f"{frame.run_id}:{index}"
    assert frame.state is not None
    assert frame.items is not None
    # The iteration's input: selected as it started (logic version 2, a Map with an
    # ItemSelector), else its item as MapStateStarted recorded it (already selected in
    # version 1).
    data = details["statemillInput"] if "statemillInput" in details else frame.items[index]
    if "statemillChildTotal" in details:  # the first child of a Map with an ItemReader
        frame.child_total = int(details["statemillChildTotal"])
        frame.results = [None] * frame.child_total
    # From logic version 3 on, a distributed Map's iteration is a child execution: the shell
    # runs it and reports its outcome (``Phases.CHILD_RUN``).
    child_run = frame.map_run and state.logic_version >= 3
    # A Map Run child's input size, for the Map Run's input budget (issue 11): counted here,
    # once, so a replay counts it as the live run did.
    input_bytes = len(_encode(data)) if child_run else 0
    frame.child_input_bytes += input_bytes
    state.frames[child_id] = Frame(
        id=child_id,
        machine=(*frame.machine, (frame.state, -1)),
        parent=frame.id,
        index=index,
        phase=Phases.CHILD_RUN if child_run else Phases.START,
        scheduled_id=event.id if child_run else 0,
        data=data,
        input_bytes=input_bytes,
        # A Map iteration reads the outer variables; a distributed Map's child workflow does not.
        variables={} if frame.map_run else frame.variables,
        detached=frame.map_run or frame.detached,
    )
    frame.children[child_id] = index
    frame.child_started += 1
    frame.child_running += 1


def _iteration_ended(state: ExecutionState, frame: Frame, event: HistoryEvent, _: JSON) -> None:
    if frame.map_run and not frame.detached:
        state.detached_events += 1  # a child workflow's end: not in this history on AWS
    index = int(event.details["index"])
    # _child_id, inline: two per iteration (``peers`` c)
    child_id = f"{frame.id}/{frame.run_id}:{index}" if frame.id else f"{frame.run_id}:{index}"
    child = state.frames.get(child_id)
    if child is not None:
        if child.children:  # (a dropped frame's own counters no longer matter)
            _drop_children(state, child)
        frame.child_input_bytes -= child.input_bytes
        del state.frames[child.id]
        frame.children.pop(child.id, None)
    frame.child_running -= 1
    if event.type == "MapIterationSucceeded":
        frame.child_succeeded += 1
        frame.succeeded.add(index)
        if frame.results is not None:
            if "statemillOutput" in event.details:  # a child execution's output
                frame.results[index] = event.details["statemillOutput"]
            elif child is not None:
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
    frame.child_running = frame.child_input_bytes = 0


_TOP_LEVEL: dict[str, Callable[[ExecutionState, HistoryEvent, JSON], None]] = {
    "ExecutionStarted": _started,
    **dict.fromkeys(_TERMINAL, _terminal),
    "ExecutionRedriven": _redriven,
}

#: The handlers of ``<Kind>StateEntered`` and ``<Kind>StateExited`` (for :func:`evolve_next`).
STATE_ENTERED: FrameHandler = _state_entered
STATE_EXITED: FrameHandler = _state_exited
#: The handlers of ``MapIterationStarted`` and of ``MapIteration{Succeeded,Failed,Aborted}``.
ITERATION_STARTED: FrameHandler = _iteration_started
ITERATION_ENDED: FrameHandler = _iteration_ended

#: Event type -> handler of the frame the event belongs to.
_FRAME_HANDLERS: dict[str, FrameHandler] = {
    **{
        f"{kind}State{suffix}": handler
        for kind in ("Pass", "Task", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")
        for suffix, handler in (("Entered", _state_entered), ("Exited", _state_exited))
    },
    **dict.fromkeys(_TASK_SCHEDULED, _task_scheduled),
    **dict.fromkeys(_TASK_STARTED, _task_started),
    "TaskSubmitted": _task_submitted,
    **dict.fromkeys(_TASK_SUCCEEDED, _task_succeeded),
    **dict.fromkeys(TASK_FAILED_TYPES, _task_failed),
    "EvaluationFailed": _evaluation_failed,
    "ParallelStateStarted": _children_started,
    "MapStateStarted": _children_started,
    "MapRunStarted": _map_run_started,
    "MapRunRedriven": _map_run_started,
    "MapRunUpdated": _map_run_updated,
    **dict.fromkeys(("MapRunSucceeded", "MapRunFailed", "MapRunAborted"), _map_run_ended),
    "MapIterationStarted": _iteration_started,
    **dict.fromkeys(
        ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"), _iteration_ended
    ),
    **dict.fromkeys(("ParallelStateSucceeded", "MapStateSucceeded"), _children_succeeded),
    **dict.fromkeys(("ParallelStateFailed", "MapStateFailed"), _children_failed),
    **dict.fromkeys(("ParallelStateAborted", "MapStateAborted"), _children_aborted),
}
