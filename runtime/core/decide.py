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

Imports only the standard library, msgspec, ``runtime.errors``, ``runtime.lang``,
``runtime.definition.model`` and ``runtime.core``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import hashlib
import re
from typing import Any, Final, assert_never

import msgspec

from runtime.core.effects import Decision, Incoming, RunTask, StopRequested, TaskResult, Wake
from runtime.core.events import LOGIC_VERSION, HistoryEvent
from runtime.core.evolve import NOT_DECODED, evolve
from runtime.core.limits import DEFAULT_LIMITS, ExecutionLimits
from runtime.core.state import ExecutionState, Frame, Phase
from runtime.definition.model import (
    Catcher,
    Choice,
    Fail,
    Map,
    Parallel,
    Pass,
    State,
    StateMachine,
    Succeed,
    Task,
    Wait,
)
from runtime.errors import StatesError, error_matches
from runtime.lang.jsonata import (
    Env,
    QueryEvaluationError,
    compile_expression,
    evaluate_template,
    is_expression,
)
from runtime.lang.paths import Path, PathNotFound, apply_result_path
from runtime.lang.payload import Payload
from runtime.lang.scope import Entropy, Scope

JSON = Any

#: AWS's payload quota: 256 KiB of UTF-8 for any input, output or result.
MAX_PAYLOAD_BYTES: Final = 256 * 1024

#: A decision stops after this many events and asks to be called again (``Decision.more``):
#: a cycle of states that takes no time (a Choice looping on itself) must not freeze the shell,
#: and a huge inline Map is cut into commits of bounded size.
MAX_EVENTS_PER_DECISION: Final = 10_000

LAMBDA_INVOKE: Final = "arn:aws:states:::lambda:invoke"
WAIT_FOR_TASK_TOKEN: Final = ".waitForTaskToken"
_ACTIVITY_ARN: Final = re.compile(r"^arn:aws[a-zA-Z-]*:states:[^:]*:[^:]*:activity:[^:]+$")
_TOKEN_VERSION: Final = 1
_LAMBDA_ARN: Final = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:[^:]*:[^:]*:function:([^:]+)(:[^:]+)?$")
_SERVICE_ARN: Final = re.compile(r"^arn:aws[a-zA-Z-]*:states:::([a-zA-Z0-9-]+):([^.]+)(\..*)?$")
_RFC3339: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|z|[+-]\d{2}:\d{2})$")

_INTEGER_TEXT: Final = re.compile(r"^[+-]?\d+$")
_NUMBER_TEXT: Final = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")

_encode = msgspec.json.encode

#: Execution statuses of a state that is not terminal (``ExecutionState.is_terminal``).
_ACTIVE: Final = frozenset({"RUNNING", "PENDING"})


#: ``<Kind>StateEntered`` / ``<Kind>StateExited`` per state class, built once rather than
#: formatted per event (``benchmarks chain``).
_ENTERED: Final = {
    kind: f"{kind.__name__}StateEntered"
    for kind in (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)
}
_EXITED: Final = {
    kind: f"{kind.__name__}StateExited"
    for kind in (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)
}


def dumps(value: JSON) -> str:
    """Compact JSON text, as AWS writes inputs and outputs in histories."""
    return _encode(value).decode()


@functools.lru_cache(maxsize=1024)
def iso_time(timestamp: float) -> str:
    """``2024-05-01T12:00:00.123Z``: the format of ``$$.Execution.StartTime`` and friends."""
    moment = _dt.datetime.fromtimestamp(timestamp, _dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(text: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp with an offset, or None if invalid."""
    if not isinstance(text, str) or not _RFC3339.match(text):
        return None
    try:
        moment = _dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return moment.timestamp()


def start_event(
    *,
    execution_arn: str,
    state_machine_arn: str,
    name: str,
    input: JSON,
    now: float,
    role_arn: str = "",
    redrive_count: int = 0,
) -> HistoryEvent:
    """The ``ExecutionStarted`` event that opens every history."""
    return HistoryEvent(
        id=1,
        type="ExecutionStarted",
        timestamp=now,
        details={
            "input": dumps(input),
            "inputDetails": {"truncated": False},
            "roleArn": role_arn,
            "stateMachineArn": state_machine_arn,
            "statemillExecutionArn": execution_arn,
            "statemillName": name,
            "statemillRedriveCount": redrive_count,
            "statemillLogicVersion": LOGIC_VERSION,
        },
    )


def is_wait_for_task_token(resource: str) -> bool:
    """True for a Task using the ``.waitForTaskToken`` integration pattern."""
    return resource.endswith(WAIT_FOR_TASK_TOKEN)


def is_activity(resource: str) -> bool:
    """True for an activity ARN: the Task waits for a worker (GetActivityTask)."""
    return bool(_ACTIVITY_ARN.match(resource))


def has_task_token(resource: str) -> bool:
    """True for Tasks that wait for a task-token answer (``.waitForTaskToken``, activities)."""
    return is_wait_for_task_token(resource) or is_activity(resource)


def make_task_token(execution_arn: str, frame: str, secret: str) -> str:
    """An opaque task token: names its execution and frame (so a callback finds them with no
    index) and carries a random ``secret`` recorded in TaskScheduled (so it is unguessable and
    each attempt's token differs)."""
    raw = _encode([_TOKEN_VERSION, execution_arn, frame, secret])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def task_token_secret(seed: int, frame: str, n: int) -> str:
    """The secret of the ``n``-th task token a decision issues, for ``frame``: a keyed BLAKE2b of
    the decision seed (128 bits from the OS's cryptographic generator, drawn by the shell), with a
    personalisation of its own. The observable stream (:class:`~runtime.lang.scope.Entropy`:
    ``States.MathRandom``, ``States.UUID``, jitter) is seeded by a different one-way hash of the
    same seed, so nothing an execution can see predicts a token (issue 11)."""
    key = (seed % (1 << 256)).to_bytes(32, "big")
    digest = hashlib.blake2b(
        f"{frame}\x00{n}".encode(), key=key, digest_size=16, person=b"sm-task-token"
    )
    return digest.hexdigest()


def parse_task_token(token: object) -> tuple[str, str] | None:
    """(execution arn, frame) of a token made by :func:`make_task_token`, or None if malformed."""
    if not isinstance(token, str) or not 1 <= len(token) <= 1024:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = msgspec.json.decode(raw)
    except (ValueError, msgspec.DecodeError):
        return None
    if (
        not isinstance(value, list)
        or len(value) != 4
        or value[0] != _TOKEN_VERSION
        or not all(isinstance(part, str) for part in value[1:])
    ):
        return None
    return value[1], value[2]


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
        decider.run_task_effect(frame)
        for frame in state.frames.values()
        if (frame.phase == Phase.STARTED and not frame.task_submitted and not _is_activity(frame))
        or (frame.phase == Phase.SCHEDULED and _is_activity(frame))
    )


def _is_activity(frame: Frame) -> bool:
    """An activity Task (its token is issued at scheduling; the raw input is the task input)."""
    return frame.task_token is not None and frame.task_token_activity


_ASSIGN_PAYLOADS: dict[int, tuple[JSON, Payload]] = {}
_ASSIGN_CACHE_SIZE: Final = 4096


def _assign_payload(raw: JSON) -> Payload:
    """A JSONPath ``Assign`` object compiled as a payload template, memoised by identity (the
    definition keeps it raw; ``definition.load`` has already checked that it compiles)."""
    entry = _ASSIGN_PAYLOADS.get(id(raw))
    if entry is not None and entry[0] is raw:
        return entry[1]
    if len(_ASSIGN_PAYLOADS) >= _ASSIGN_CACHE_SIZE:
        _ASSIGN_PAYLOADS.clear()
    payload = Payload.compile(raw, "/Assign")
    _ASSIGN_PAYLOADS[id(raw)] = (raw, payload)
    return payload


_PLAIN_PASS: dict[int, tuple[Pass, bool]] = {}


def _is_plain_pass(state: Pass) -> bool:
    """True for a Pass state with no Parameters, Result, Assign, and InputPath, ResultPath and
    OutputPath absent or ``$``: its output is its input. Memoised by identity, as
    :func:`_assign_payload` is (``benchmarks chain`` spent ~5% checking the fields each time)."""
    entry = _PLAIN_PASS.get(id(state))
    if entry is not None and entry[0] is state:
        return entry[1]
    io = state.io
    plain = (
        state.parameters is None
        and not state.has_result
        and state.assign is None
        and not (io.input_path_null or io.result_path_null or io.output_path_null)
        and all(
            path is None or path.text == "$"
            for path in (io.input_path, io.result_path, io.output_path)
        )
    )
    if len(_PLAIN_PASS) >= _ASSIGN_CACHE_SIZE:
        _PLAIN_PASS.clear()
    _PLAIN_PASS[id(state)] = (state, plain)
    return plain


class _Failure(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


class _Decider:
    """One decision's working memory: the emitted events, effects and timers."""

    def __init__(
        self,
        machine: StateMachine,
        state: ExecutionState,
        incoming: Incoming,
        limits: ExecutionLimits = DEFAULT_LIMITS,
    ) -> None:
        self.machine = machine
        self.limits = limits
        self.state = state
        self.incoming = incoming
        self.now = incoming.now
        self.entropy = Entropy(incoming.seed)
        self.tokens_issued = 0
        """Task tokens this decision issued (each gets its own secret)."""
        self.events: list[HistoryEvent] = []
        self.tasks: list[RunTask] = []
        self.timers: dict[str, float] = {}
        self.exhausted = False
        """Set once this decision emitted MAX_EVENTS_PER_DECISION events: stop, ask for more."""
        self.focus: set[str] | None = None
        """When set, the frames this decision may need to drive (others wait on handlers)."""
        self._machines: dict[tuple[tuple[str, int], ...], StateMachine] = {(): machine}
        self._dumped: tuple[JSON, str] = (NOT_DECODED, "")
        """The last value :meth:`text_of` encoded and its text."""

    # -- plumbing -----------------------------------------------------------------------------

    def run(self) -> Decision:
        incoming = self.incoming
        if isinstance(incoming, TaskResult):
            # Only the frame the result is for, and its ancestors, can move.
            parts = incoming.frame.split("/") if incoming.frame else []
            self.focus = {"", *("/".join(parts[: i + 1]) for i in range(len(parts)))}
        state = self.state
        if state.is_terminal or not state.frames:
            return Decision()
        incoming = self.incoming
        if isinstance(incoming, StopRequested):
            details: dict[str, JSON] = {}
            if incoming.error is not None:
                details["error"] = incoming.error
            if incoming.cause is not None:
                details["cause"] = incoming.cause
            self.abort_children("")
            self.emit("ExecutionAborted", "", details)
            return self.decision()
        if self.machine.timeout_seconds is not None:
            begun = state.start_time if state.redrive_time is None else state.redrive_time
            deadline = begun + self.machine.timeout_seconds
            if self.now >= deadline:
                self.emit(
                    "ExecutionTimedOut",
                    "",
                    {"error": "States.Timeout", "cause": "The execution timed out."},
                )
                return self.decision()
            self.timers["$execution"] = deadline
        if isinstance(incoming, TaskResult):
            self.apply_task_result(incoming)
        elif isinstance(incoming, Wake):
            pass
        else:
            assert_never(incoming)
        self.drive("")
        return self.decision()

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
                if child is not None and child.phase not in (Phase.DONE, Phase.REPORTED):
                    self.emit_iteration(frame, state, "MapIterationAborted", index)
            if frame.map_run and not frame.map_run_ended:
                self.emit("MapRunAborted", frame.id, {})
            self.emit("MapStateAborted", frame.id, {})
        elif isinstance(state, Parallel):
            self.emit("ParallelStateAborted", frame.id, {})

    def decision(self) -> Decision:
        wake_at = None
        if not self.state.is_terminal:
            # Every waiting frame this decision visited recorded its timer (a decision without
            # a focus visits them all; a focused one says so with ``partial``).
            wake_at = min(self.timers.values()) if self.timers else None
        return Decision(
            events=tuple(self.events),
            tasks=tuple(self.tasks),
            wake_at=wake_at,
            more=self.exhausted and not self.state.is_terminal,
            partial=self.focus is not None,
        )

    def emit(
        self, kind: str, frame: str, details: dict[str, JSON], decoded: JSON = NOT_DECODED
    ) -> HistoryEvent:
        """Append an event and apply it; ``decoded`` is passed on to ``evolve`` (the value of
        the event's input/output text, when it is a value ``evolve`` itself decoded before)."""
        last = self.state.last_event_id
        event = HistoryEvent(
            id=last + 1,
            type=kind,
            timestamp=self.now,
            previous_event_id=last,
            details=details,
            frame=frame,
        )
        evolve(self.state, event, decoded)
        self.events.append(event)
        if len(self.events) >= MAX_EVENTS_PER_DECISION:
            self.exhausted = True
        return event

    def text_of(self, value: JSON) -> str:
        """``dumps(value)``, reusing the last text when ``value`` is the same object: a state
        whose output is its input logs the same text as Entered input and Exited output, and
        the next state's Entered input again (``benchmarks chain``). JSON values are never
        mutated, so the same object always has the same text."""
        last, text = self._dumped
        if value is not last:
            text = dumps(value)
            self._dumped = (value, text)
        return text

    def machine_of(self, frame: Frame) -> StateMachine:
        if not frame.machine:
            return self.machine
        cached = self._machines.get(frame.machine)
        if cached is not None:
            return cached
        current = self.machine
        for state_name, index in frame.machine:
            owner = current.states[state_name]
            if isinstance(owner, Parallel):
                current = owner.branches[index]
            elif isinstance(owner, Map):
                current = owner.processor
            else:  # pragma: no cover - frames are only created by Parallel and Map
                raise AssertionError(f"state {state_name} has no sub-machines")
        self._machines[frame.machine] = current
        return current

    def state_of(self, frame: Frame) -> State:
        assert frame.state is not None
        return self.machine_of(frame).states[frame.state]

    def scope(self, frame: Frame, *, task_token: str | None = None, item: JSON = None) -> Scope:
        """The evaluation scope of ``frame``'s current state: the ``$$`` context object and the
        workflow variables in scope."""
        return Scope(
            variables=frame.variables,
            entropy=self.entropy,
            context_factory=lambda: self.context(frame, task_token=task_token, item=item),
        )

    def jsonata_env(
        self, frame: Frame, *, item: JSON = None, task_token: str | None = None, **states: JSON
    ) -> Env:
        """The JSONata environment of ``frame``'s current state: ``$states`` (``input`` is the
        state's raw input; ``result``/``errorOutput`` when given) and the variables."""
        bound = {"input": frame.data, **states}
        return Env(
            bound,
            frame.variables,
            self.entropy,
            self.now,
            context=lambda: self.context(frame, item=item, task_token=task_token),
        )

    def context(self, frame: Frame, *, task_token: str | None = None, item: JSON = None) -> JSON:
        """The context object (``$$`` in JSONPath, ``$states.context`` in JSONata)."""
        state = self.state
        execution: dict[str, JSON] = {
            "Id": state.execution_arn,
            "Input": state.input,
            "Name": state.name,
            "RoleArn": state.role_arn,
            "StartTime": iso_time(state.start_time),
        }
        if ":express:" not in state.execution_arn:
            # EXPRESS executions cannot be redriven; AWS omits the field for them.
            execution["RedriveCount"] = state.redrive_count
        state_context: dict[str, JSON] = {
            "EnteredTime": iso_time(frame.entered_at),
            "Name": frame.state,
        }
        if frame.state is not None and isinstance(
            self.machine_of(frame).states.get(frame.state), Task | Parallel | Map
        ):
            # Only states that can retry carry RetryCount.
            state_context["RetryCount"] = frame.retry_total
        context: dict[str, JSON] = {
            "Execution": execution,
            "State": state_context,
            "StateMachine": {
                "Id": state.state_machine_arn,
                "Name": state.state_machine_arn.rsplit(":", 1)[-1],
            },
        }
        if task_token is not None:
            context["Task"] = {"Token": task_token}
        if item is not None:
            context["Map"] = {"Item": item}
        return context

    # -- driving frames -----------------------------------------------------------------------

    def drive(self, frame_id: str) -> bool:
        """Step ``frame_id`` until it blocks; True if anything happened."""
        progressed = False
        state = self.state
        # ``status`` rather than ``is_terminal``: a property call per step (``benchmarks chain``).
        while state.status in _ACTIVE and not self.exhausted:
            frame = state.frames.get(frame_id)
            if frame is None or not self.step(frame):
                break
            progressed = True
        return progressed

    def step(self, frame: Frame) -> bool:
        phase = frame.phase
        if phase == Phase.ENTERED:  # the most frequent phase, tested first (benchmarks chain)
            return self.step_guarded(frame, self.state_of(frame))
        if phase == Phase.START:
            machine = self.machine_of(frame)
            # The top level starts on the decoded execution input; a branch or iteration on a
            # value from its parent's event details, which evolve must decode itself.
            self.enter(frame, machine.start_at, frame.data, decoded=frame.parent is None)
            return True
        if phase == Phase.TRANSITION:
            assert frame.next is not None
            self.enter(frame, frame.next, frame.data, decoded=True)
            return True
        if phase == Phase.DONE:
            if frame.parent is None:
                self.emit(
                    "ExecutionSucceeded",
                    "",
                    {"output": self.text_of(frame.data), "outputDetails": {"truncated": False}},
                    frame.data,
                )
                return True
            return False
        if phase == Phase.STARTED and frame.task_token is not None:
            return self.check_token_deadlines(frame)
        if phase in (Phase.STARTED, Phase.REPORTED):
            return False
        return self.step_guarded(frame, self.state_of(frame))

    def step_guarded(self, frame: Frame, state: State) -> bool:
        """:meth:`step_state`, turning a failed evaluation into the state's failure."""
        try:
            return self.step_state(frame, state)
        except _Failure as failure:
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

    def evaluation_failed(
        self,
        frame: Frame,
        error: QueryEvaluationError,
        cause: str,
        *,
        in_catch: bool = False,
    ) -> None:
        """``EvaluationFailed``: AWS logs every failed JSONata evaluation before the failure."""
        details: dict[str, JSON] = {"error": error.error, "cause": cause, "state": frame.state}
        if error.location:
            details["location"] = error.location
        if in_catch:
            details["statemillInCatch"] = True
        self.emit("EvaluationFailed", frame.id, details)

    def after_evaluation_failed(self, frame: Frame, state: State) -> None:
        """The state whose evaluation failed fails: AWS fails a Map that could not start
        (Items, ItemSelector...) with MapStateFailed, which its Retry and Catch then see."""
        error = frame.error or "States.QueryEvaluationError"
        cause = frame.cause or ""
        # run_id < entered_id: no MapStateStarted since the state was entered.
        if isinstance(state, Map) and frame.run_id < frame.entered_id:
            self.children_failed(frame, state, "MapStateFailed", error, cause)
            return
        self.fail_state(frame, state, error, cause)

    def cause(self, frame: Frame, detail: str) -> str:
        return (
            f"An error occurred while executing the state '{frame.state}' "
            f"(entered at the event id #{frame.entered_id}). {detail}"
        )

    def enter(self, frame: Frame, name: str, data: JSON, *, decoded: bool = False) -> None:
        """``<Kind>StateEntered``; ``decoded`` says ``data`` is a value ``evolve`` decoded from
        an event (the previous state's output), so the new frame data may be ``data`` itself."""
        state = self.machine_of(frame).states[name]
        self.emit(
            _ENTERED[type(state)],
            frame.id,
            {"name": name, "input": self.text_of(data), "inputDetails": {"truncated": False}},
            data if decoded else NOT_DECODED,
        )

    def exit(
        self,
        frame: Frame,
        state: State,
        output: JSON,
        next_state: str | None,
        assigned: dict[str, JSON] | None = None,
    ) -> None:
        """``<Kind>StateExited``: the output, the next state and the variables assigned (ASL
        "Assign"; AWS records each value as JSON text in ``assignedVariables``)."""
        text = self.text_of(output)
        # A code point takes at most 4 bytes of UTF-8: short texts need no encoding to check.
        if len(text) * 4 > MAX_PAYLOAD_BYTES and len(text.encode()) > MAX_PAYLOAD_BYTES:
            raise _Failure(
                "States.DataLimitExceeded",
                self.cause(
                    frame,
                    f"The state/task '{state.name}' returned a result with a size exceeding "
                    "the maximum number of bytes service limit.",
                ),
            )
        details: dict[str, JSON] = {
            "name": state.name,
            "output": text,
            "outputDetails": {"truncated": False},
        }
        if assigned is not None:
            details["assignedVariables"] = {name: dumps(value) for name, value in assigned.items()}
            details["assignedVariablesDetails"] = {"truncated": False}
        if next_state is not None:
            details["statemillNext"] = next_state
        # An output that is the state's raw input (which evolve decoded) needs no decoding.
        decoded = output if output is frame.data else NOT_DECODED
        self.emit(_EXITED[type(state)], frame.id, details, decoded)

    def assign_jsonpath(self, frame: Frame, raw: JSON, data: JSON) -> dict[str, JSON] | None:
        """JSONPath ``Assign``: a payload template over ``data`` (the state's result, or its
        effective input for Choice and Wait, or the error output in a Catcher); ``$name``
        reads the variables as they were when the state was entered."""
        if raw is None:
            return None
        value: dict[str, JSON] = _assign_payload(raw).evaluate(data, self.scope(frame))
        return value

    def exit_jsonata(
        self,
        frame: Frame,
        state: State,
        env: Env,
        default: JSON,
        next_state: str | None,
        *,
        output: JSON = None,
        has_output: bool = False,
        assign: tuple[JSON, ...] = (),
    ) -> None:
        """Leave a JSONata state: ``Assign`` then ``Output`` (default ``default``), both over the
        same ``$states`` and variables, so neither sees the values being assigned."""
        assigned: dict[str, JSON] | None = None
        for template in assign:
            if template is not None:
                values = evaluate_template(template, env, "Assign")
                assigned = values if assigned is None else {**assigned, **values}
        result = evaluate_template(output, env, "Output") if has_output else default
        self.exit(frame, state, result, next_state, assigned)

    def exit_state_jsonata(
        self, frame: Frame, state: State, env: Env, default: JSON, next_state: str | None
    ) -> None:
        """:meth:`exit_jsonata` with the state's own ``Output`` and ``Assign``."""
        self.exit_jsonata(
            frame,
            state,
            env,
            default,
            next_state,
            output=state.output,
            has_output=state.has_output,
            assign=(state.assign,),
        )

    def step_state(self, frame: Frame, state: State) -> bool:
        phase = frame.phase
        if phase == Phase.ENTERED:
            return self.on_entered(frame, state)
        if phase == Phase.SCHEDULED:
            if isinstance(state, Task) and is_activity(state.resource):
                return self.check_token_deadlines(frame)  # waits for a worker
            self.start_task(frame, state)
            return True
        if phase == Phase.TASK_SUCCEEDED:
            self.finish_with_result(frame, state, frame.result)
            return True
        if phase == Phase.EVALUATION_FAILED:
            self.after_evaluation_failed(frame, state)
            return True
        if phase == Phase.CATCH_FAILED:
            self.fail_frame(frame, frame.error, frame.cause)
            return True
        if phase in (Phase.TASK_FAILED, Phase.CHILDREN_FAILED):
            self.fail_state(frame, state, frame.error or "States.TaskFailed", frame.cause or "")
            return True
        if phase == Phase.RETRY_WAIT:
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
        if phase == Phase.CHILDREN:
            if isinstance(state, Map):
                return self.step_map(frame, state)
            if isinstance(state, Parallel):
                return self.step_parallel(frame, state)
        return False

    # -- input and output processing ----------------------------------------------------------

    def effective_input(self, frame: Frame, state: State) -> JSON:
        io = state.io
        if io.input_path_null:
            return {}
        if io.input_path is None:
            return frame.data
        return self.select(io.input_path, frame.data, frame, "InputPath")

    def select(self, path: Path, data: JSON, frame: Frame, field: str) -> JSON:
        if path.text == "$":  # the default InputPath/OutputPath: identity, no scope needed
            return data
        try:
            return path.evaluate(data, self.scope(frame))
        except PathNotFound as missing:
            raise _Failure("States.Runtime", self.cause(frame, str(missing))) from None

    def output(self, frame: Frame, state: State, result: JSON) -> JSON:
        """ResultPath then OutputPath, applied to the state's raw input."""
        io = state.io
        if io.result_path_null:
            merged = frame.data
        elif io.result_path is None:
            merged = result
        else:
            try:
                merged = apply_result_path(io.result_path, frame.data, result)
            except StatesError as error:
                raise _Failure(error.error, self.cause(frame, error.cause)) from None
        return self.output_path(frame, state, merged)

    def output_path(self, frame: Frame, state: State, data: JSON) -> JSON:
        io = state.io
        if io.output_path_null:
            return {}
        if io.output_path is None:
            return data
        return self.select(io.output_path, data, frame, "OutputPath")

    # -- per state type -----------------------------------------------------------------------

    def on_entered(self, frame: Frame, state: State) -> bool:
        if state.query_language == "JSONata":
            return self.on_entered_jsonata(frame, state)
        match state:
            case Pass() if _is_plain_pass(state):
                # No InputPath/Parameters/Result/ResultPath/OutputPath/Assign: the output is
                # the input, and no scope is needed (``benchmarks chain``).
                self.exit(frame, state, frame.data, state.next)
            case Pass():
                effective = self.effective_input(frame, state)
                if state.parameters is not None:
                    effective = state.parameters.evaluate(effective, self.scope(frame))
                result = state.result if state.has_result else effective
                assigned = self.assign_jsonpath(frame, state.assign, result)
                self.exit(frame, state, self.output(frame, state, result), state.next, assigned)
            case Task():
                effective = self.effective_input(frame, state)
                token = self.new_task_token(frame, state)
                if state.parameters is not None:
                    effective = state.parameters.evaluate(
                        effective, self.scope(frame, task_token=token)
                    )
                self.schedule(frame, state, effective, token=token)
            case Choice():
                self.on_choice(frame, state)
            case Wait():
                return self.on_wait(frame, state)
            case Succeed():
                effective = self.effective_input(frame, state)
                self.exit(frame, state, self.output_path(frame, state, effective), None)
            case Fail():
                self.on_fail(frame, state)
            case Parallel():
                effective = self.effective_input(frame, state)
                if state.parameters is not None:
                    effective = state.parameters.evaluate(effective, self.scope(frame))
                self.start_branches(frame, state, effective)
            case Map():
                self.on_map(frame, state)
            case _:
                assert_never(state)
        return True

    def start_branches(self, frame: Frame, state: Parallel, branch_input: JSON) -> None:
        """Parallel: every branch starts on the same input (after Parameters/Arguments)."""
        self.emit(
            "ParallelStateStarted",
            frame.id,
            {"statemillInput": branch_input, "statemillBranches": len(state.branches)},
        )

    def on_entered_jsonata(self, frame: Frame, state: State) -> bool:
        """A JSONata state (ASL "Transforming data with JSONata"): no paths; ``Arguments`` is
        the input of the work, ``Output`` the state output (default: the result, else the
        input), ``Assign`` the variables; every ``{% %}`` string sees ``$states``."""
        env = self.jsonata_env(frame)
        match state:
            case Pass() | Succeed():
                self.exit_state_jsonata(frame, state, env, frame.data, state.next)
            case Task():
                arguments = frame.data
                token = self.new_task_token(frame, state)
                if state.arguments is not None:
                    env = self.jsonata_env(frame, task_token=token)
                    arguments = evaluate_template(state.arguments, env, "Arguments")
                self.schedule(frame, state, arguments, token=token)
            case Choice():
                self.on_choice_jsonata(frame, state, env)
            case Wait():
                fire_at = self.wait_until_jsonata(frame, state, env)
                if self.now < fire_at:
                    self.timers[frame.id] = fire_at
                    return False
                self.exit_state_jsonata(frame, state, env, frame.data, state.next)
            case Fail():
                error = state.error
                cause = state.cause
                if state.error_expr is not None:
                    error = self.jsonata_string(state.error_expr, env, "Error")
                if state.cause_expr is not None:
                    cause = self.jsonata_string(state.cause_expr, env, "Cause")
                self.fail_frame(frame, error, cause)
            case Parallel():
                branch_input = frame.data
                if state.arguments is not None:
                    branch_input = evaluate_template(state.arguments, env, "Arguments")
                self.start_branches(frame, state, branch_input)
            case Map():
                self.on_map(frame, state)
            case _:
                assert_never(state)
        return True

    def jsonata_string(self, source: JSON, env: Env, field: str) -> str:
        expression = compile_expression(source)
        value = expression.evaluate(env, field)
        if not isinstance(value, str):
            raise expression.wrong_type(value, "string", field)
        return value

    def jsonata_number(
        self, source: JSON, env: Env, field: str, *, integer: bool = True, minimum: float = 0
    ) -> float:
        """A numeric field given as an expression (``TimeoutSeconds``, ``MaxConcurrency``...)."""
        expression = compile_expression(source)
        value = expression.evaluate(env, field)
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or (integer and not float(value).is_integer()):
            raise expression.wrong_type(value, "integer" if integer else "number", field)
        if value < minimum:
            raise QueryEvaluationError(
                f"The JSONata expression '{expression.text}' specified for the field '{field}' "
                f"returned a value smaller than {minimum:g}: {dumps(value)}",
                field,
            )
        return int(value) if integer else float(value)

    def on_choice(self, frame: Frame, state: Choice) -> None:
        effective = self.effective_input(frame, state)
        scope = self.scope(frame)
        target = state.default
        rule_assign = None
        for rule in state.choices:
            if rule.evaluate(effective, scope):
                target = rule.next
                rule_assign = rule.assign
                break
        if target is None:
            raise _Failure(
                "States.NoChoiceMatched",
                self.cause(frame, "No Matches!"),
            )
        # The state's Assign applies whichever rule matched; the rule's own comes on top.
        assigned = self.assign_jsonpath(frame, state.assign, effective)
        from_rule = self.assign_jsonpath(frame, rule_assign, effective)
        if from_rule is not None:
            assigned = from_rule if assigned is None else {**assigned, **from_rule}
        self.exit(frame, state, self.output_path(frame, state, effective), target, assigned)

    def on_choice_jsonata(self, frame: Frame, state: Choice, env: Env) -> None:
        """JSONata Choice: the first rule whose ``Condition`` is true wins; its ``Assign`` adds
        to the state's, its ``Output`` replaces the state's."""
        for rule in state.choices:
            if rule.evaluate_condition(env):
                has_output = rule.has_output or state.has_output
                self.exit_jsonata(
                    frame,
                    state,
                    env,
                    frame.data,
                    rule.next,
                    output=rule.output if rule.has_output else state.output,
                    has_output=has_output,
                    assign=(state.assign, rule.assign),
                )
                return
        if state.default is None:
            raise _Failure("States.NoChoiceMatched", self.cause(frame, "No Matches!"))
        self.exit_state_jsonata(frame, state, env, frame.data, state.default)

    def on_wait(self, frame: Frame, state: Wait) -> bool:
        effective = self.effective_input(frame, state)
        fire_at = self.wait_until(frame, state, effective)
        if self.now < fire_at:
            self.timers[frame.id] = fire_at
            return False
        assigned = self.assign_jsonpath(frame, state.assign, effective)
        self.exit(frame, state, self.output_path(frame, state, effective), state.next, assigned)
        return True

    def wait_until_jsonata(self, frame: Frame, state: Wait, env: Env) -> float:
        """JSONata Wait: ``Seconds`` or ``Timestamp`` may be expressions."""
        if state.seconds_expr is not None:
            return frame.entered_at + self.jsonata_number(state.seconds_expr, env, "Seconds")
        if state.timestamp_expr is not None:
            value = compile_expression(state.timestamp_expr).evaluate(env, "Timestamp")
            moment = parse_timestamp(value)
            if moment is None:
                shown = value if isinstance(value, str) else dumps(value)
                raise QueryEvaluationError(
                    "The Timestamp field cannot be parsed as an ISO-8601 extended offset "
                    f"date-time format string: {shown}",
                    "Timestamp",
                )
            return moment
        return self.wait_until(frame, state, frame.data)

    def wait_until(self, frame: Frame, state: Wait, effective: JSON) -> float:
        """Wait: ``Seconds``, ``Timestamp``, ``SecondsPath`` or ``TimestampPath``."""
        if state.seconds is not None:
            return frame.entered_at + state.seconds
        if state.timestamp is not None:
            moment = parse_timestamp(state.timestamp)
            assert moment is not None  # validated at load time
            return moment
        if state.seconds_path is not None:
            path = state.seconds_path
            value = self.select(path, effective, frame, "SecondsPath")
            shown = dumps(value) if not isinstance(value, str) else value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _Failure(
                    "States.Runtime",
                    self.cause(
                        frame,
                        "The SecondsPath parameter cannot be parsed as a long value: "
                        f"{path.text} == {shown}",
                    ),
                )
            if isinstance(value, float) and not value.is_integer():
                raise _Failure(
                    "States.Runtime",
                    self.cause(
                        frame,
                        "The SecondsPath parameter cannot be parsed as a long value: "
                        f"{path.text} == {shown}",
                    ),
                )
            if value < 0:
                raise _Failure(
                    "States.Runtime",
                    self.cause(
                        frame,
                        "The SecondsPath parameter references a negative value: "
                        f"{path.text} == {shown}",
                    ),
                )
            return frame.entered_at + int(value)
        if state.timestamp_path is not None:
            path = state.timestamp_path
            value = self.select(path, effective, frame, "TimestampPath")
            moment = parse_timestamp(value)
            if moment is None:
                shown = value if isinstance(value, str) else dumps(value)
                raise _Failure(
                    "States.Runtime",
                    self.cause(
                        frame,
                        "The TimestampPath parameter does not reference a valid ISO-8601 "
                        f"extended offset date-time format string: {path.text} == {shown}",
                    ),
                )
            return moment
        return frame.entered_at

    def on_fail(self, frame: Frame, state: Fail) -> None:
        scope = self.scope(frame)
        error = state.error
        cause = state.cause
        if state.error_path is not None:
            value = state.error_path.evaluate(frame.data, scope)
            error = value if isinstance(value, str) else dumps(value)
        if state.cause_path is not None:
            value = state.cause_path.evaluate(frame.data, scope)
            cause = value if isinstance(value, str) else dumps(value)
        self.fail_frame(frame, error, cause)

    # -- Task ---------------------------------------------------------------------------------

    def new_task_token(self, frame: Frame, state: Task) -> str | None:
        """A fresh token for a ``.waitForTaskToken`` attempt (derived from the decision's seed by
        :func:`task_token_secret`, never from the observable stream; recorded in TaskScheduled),
        or None for other Tasks."""
        if not has_task_token(state.resource):
            return None
        self.tokens_issued += 1
        secret = task_token_secret(self.incoming.seed, frame.id, self.tokens_issued)
        return make_task_token(self.state.execution_arn, frame.id, secret)

    def check_token_deadlines(self, frame: Frame) -> bool:
        """A Task waiting for its token: TimeoutSeconds runs from TaskScheduled,
        HeartbeatSeconds from its start, submission or last heartbeat (ASL "Task state
        timeouts and heartbeats"). Times out (True) or arms the earliest deadline (False)."""
        deadlines: list[tuple[float, str]] = []
        if frame.task_timeout is not None:
            deadlines.append((frame.task_scheduled_at + frame.task_timeout, "States.Timeout"))
        if frame.task_heartbeat is not None and frame.phase == Phase.STARTED:
            beat = frame.task_beat_at
            if isinstance(self.incoming, Wake):
                beat = max(beat, self.incoming.beats.get(frame.id, beat))
            deadlines.append((beat + frame.task_heartbeat, "States.HeartbeatTimeout"))
        if not deadlines:
            return False
        at, error = min(deadlines)
        if self.now < at:
            self.timers[frame.id] = at
            return False
        self.apply_task_result(
            TaskResult(
                now=self.now,
                frame=frame.id,
                scheduled_id=frame.scheduled_id,
                outcome="timed_out",
                error=error,
                cause="",
                task_token=frame.task_token,
            )
        )
        return True

    def schedule(
        self, frame: Frame, state: Task, effective: JSON, *, token: str | None = None
    ) -> None:
        size = len(dumps(effective).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise _Failure(
                "States.DataLimitExceeded",
                self.cause(
                    frame,
                    f"The state/task '{state.resource}' input exceeds the maximum number of "
                    "bytes service limit.",
                ),
            )
        timeout = self.task_seconds(frame, state.timeout_seconds, state.timeout_seconds_path)
        heartbeat = self.task_seconds(frame, state.heartbeat_seconds, state.heartbeat_seconds_path)
        if state.timeout_expr is not None or state.heartbeat_expr is not None:
            env = self.jsonata_env(frame)
            if state.timeout_expr is not None:
                timeout = int(
                    self.jsonata_number(state.timeout_expr, env, "TimeoutSeconds", minimum=1)
                )
            if state.heartbeat_expr is not None:
                heartbeat = int(
                    self.jsonata_number(state.heartbeat_expr, env, "HeartbeatSeconds", minimum=1)
                )
        resource = state.resource
        details: dict[str, JSON]
        if is_activity(resource):
            details = {"resource": resource, "input": dumps(effective)}
            details["inputDetails"] = {"truncated": False}
            if timeout is not None:
                details["timeoutInSeconds"] = timeout
            if heartbeat is not None:
                details["heartbeatInSeconds"] = heartbeat
            details["statemillTaskToken"] = token
            self.emit("ActivityScheduled", frame.id, details)
            self.tasks.append(self.run_task_effect(frame))  # queued for GetActivityTask
            return
        if _LAMBDA_ARN.match(resource):
            details = {
                "resource": resource,
                "input": dumps(effective),
                "inputDetails": {"truncated": False},
            }
            if timeout is not None:
                details["timeoutInSeconds"] = timeout
            if heartbeat is not None:
                details["heartbeatInSeconds"] = heartbeat
            self.emit("LambdaFunctionScheduled", frame.id, details)
            return
        resource_type, action = resource_parts(resource)
        details = {
            "resourceType": resource_type,
            "resource": action,
            "region": "us-east-1",
            "parameters": dumps(effective),
        }
        if timeout is not None:
            details["timeoutInSeconds"] = timeout
        if heartbeat is not None:
            details["heartbeatInSeconds"] = heartbeat
        if token is not None:
            details["statemillTaskToken"] = token
        self.emit("TaskScheduled", frame.id, details)

    def task_seconds(self, frame: Frame, fixed: int | None, path: Path | None) -> int | None:
        if fixed is not None:
            return fixed
        if path is None:
            return None
        value = self.select(path, frame.data, frame, path.text)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise _Failure(
                "States.Runtime",
                self.cause(frame, f"The value at {path.text} is not a positive integer: {value}"),
            )
        return value

    def start_task(self, frame: Frame, state: State) -> None:
        assert isinstance(state, Task)
        if _LAMBDA_ARN.match(state.resource):
            self.emit("LambdaFunctionStarted", frame.id, {})
        else:
            resource_type, action = resource_parts(state.resource)
            self.emit("TaskStarted", frame.id, {"resourceType": resource_type, "resource": action})
        self.tasks.append(self.run_task_effect(frame))

    def run_task_effect(self, frame: Frame) -> RunTask:
        state = self.state_of(frame)
        assert isinstance(state, Task)
        resource = state.resource
        handler_input = frame.task_input
        handler_name = resource
        lambda_invoke = resource.startswith(LAMBDA_INVOKE)
        match = _LAMBDA_ARN.match(resource)
        if lambda_invoke:
            params = frame.task_input if isinstance(frame.task_input, dict) else {}
            function = str(params.get("FunctionName", ""))
            arn_match = _LAMBDA_ARN.match(function)
            handler_name = arn_match.group(1) if arn_match else function.split(":")[0]
            handler_input = lambda_payload(params.get("Payload"))
        elif match:
            handler_name = match.group(1)
        return RunTask(
            frame=frame.id,
            scheduled_id=frame.scheduled_id,
            state_name=state.name,
            resource=resource,
            handler_name=handler_name,
            input=handler_input,
            attempt=frame.retry_total,
            timeout_seconds=frame.task_timeout,
            heartbeat_seconds=frame.task_heartbeat,
            lambda_invoke=lambda_invoke,
            lambda_function=bool(match) or lambda_invoke,
            task_token=frame.task_token,
        )

    def apply_task_result(self, result: TaskResult) -> None:
        frame = self.state.frames.get(result.frame)
        if frame is None or frame.scheduled_id != result.scheduled_id:
            return
        activity = _is_activity(frame)
        if frame.phase != Phase.STARTED and not (activity and frame.phase == Phase.SCHEDULED):
            return
        state = self.state_of(frame)
        assert isinstance(state, Task)
        if activity:
            self.apply_activity_result(frame, state, result)
            return
        is_lambda = bool(_LAMBDA_ARN.match(state.resource))
        resource_type, action = resource_parts(state.resource)
        base: dict[str, JSON] = (
            {} if is_lambda else {"resourceType": resource_type, "resource": action}
        )
        outcome = result.outcome
        error = result.error or ""
        cause = result.cause or ""
        if frame.task_token is not None and result.task_token is None and not frame.task_submitted:
            # The handler of a token Task returned: the task is submitted, not done. (Once
            # submitted, the handler is never called again, so a token-less result is the
            # answer: that is how ``replay.check`` rebuilds it from TaskSucceeded.)
            if outcome == "succeeded":
                if not frame.task_submitted:
                    self.emit(
                        "TaskSubmitted",
                        frame.id,
                        {
                            **base,
                            "output": dumps(result.output),
                            "outputDetails": {"truncated": False},
                        },
                    )
                return
            if outcome == "timed_out":
                return  # the core owns a token Task's deadlines
        elif result.task_token is not None and result.task_token != frame.task_token:
            return
        if outcome == "succeeded":
            output = result.output
            if state.resource.startswith(LAMBDA_INVOKE) and frame.task_token is None:
                output = self.lambda_invoke_result(output, frame.task_input)
            text = dumps(output)
            if len(text.encode()) <= MAX_PAYLOAD_BYTES:
                self.emit(
                    "LambdaFunctionSucceeded" if is_lambda else "TaskSucceeded",
                    frame.id,
                    {**base, "output": text, "outputDetails": {"truncated": False}},
                )
                return
            shown = state.resource if is_lambda else resource_type
            outcome, error = "failed", "States.DataLimitExceeded"
            cause = (
                f"The state/task '{shown}' returned a result with a size exceeding the "
                "maximum number of bytes service limit."
            )
        details: dict[str, JSON] = {**base, "error": error, "cause": cause}
        retry = self.retry_delay(frame, state, error)
        if retry is not None:
            details["statemillRetrier"], details["statemillRetryDelay"] = retry
        if outcome == "timed_out":
            kind = "LambdaFunctionTimedOut" if is_lambda else "TaskTimedOut"
        else:
            kind = "LambdaFunctionFailed" if is_lambda else "TaskFailed"
        self.emit(kind, frame.id, details)

    def apply_activity_result(self, frame: Frame, state: Task, result: TaskResult) -> None:
        """An activity task: a worker took it (ActivityStarted), answered through its token
        (ActivitySucceeded/Failed) or ran out of time (ActivityTimedOut)."""
        if result.task_token not in (None, frame.task_token):
            return  # None: rebuilt from the log by ``replay.check``; the shell always sends one
        if result.outcome == "started":
            if frame.phase == Phase.SCHEDULED:
                worker = (
                    result.output.get("workerName") if isinstance(result.output, dict) else None
                )
                self.emit("ActivityStarted", frame.id, {"workerName": worker or ""})
            return
        if result.outcome == "succeeded":
            text = dumps(result.output)
            if len(text.encode()) <= MAX_PAYLOAD_BYTES:
                details = {"output": text, "outputDetails": {"truncated": False}}
                self.emit("ActivitySucceeded", frame.id, details)
                return
            error = "States.DataLimitExceeded"
            cause = (
                "The state/task 'activity' returned a result with a size exceeding the "
                "maximum number of bytes service limit."
            )
            kind = "ActivityFailed"
        else:
            error, cause = result.error or "", result.cause or ""
            kind = "ActivityTimedOut" if result.outcome == "timed_out" else "ActivityFailed"
        failed: dict[str, JSON] = {"error": error, "cause": cause}
        retry = self.retry_delay(frame, state, error)
        if retry is not None:
            failed["statemillRetrier"], failed["statemillRetryDelay"] = retry
        self.emit(kind, frame.id, failed)

    def lambda_invoke_result(self, payload: JSON, parameters: JSON) -> JSON:
        """``arn:aws:states:::lambda:invoke`` wraps the function's result as AWS does."""
        wrapped: dict[str, JSON] = {
            "ExecutedVersion": "$LATEST",
            "Payload": payload,
            "SdkHttpMetadata": {
                "AllHttpHeaders": {
                    "X-Amz-Executed-Version": ["$LATEST"],
                    "Content-Type": ["application/json"],
                },
                "HttpHeaders": {
                    "X-Amz-Executed-Version": "$LATEST",
                    "Content-Type": "application/json",
                },
                "HttpStatusCode": 200,
            },
            "SdkResponseMetadata": {"RequestId": self.entropy.uuid4()},
            "StatusCode": 200,
        }
        if isinstance(parameters, dict) and parameters.get("LogType") == "Tail":
            log_tail = f"START RequestId: {self.entropy.uuid4()} Version: $LATEST\n"
            wrapped["LogResult"] = base64.b64encode(log_tail.encode()).decode()
        return wrapped

    def retry_delay(
        self, frame: Frame, state: Task | Parallel | Map, error: str
    ) -> tuple[int, float] | None:
        """Retrier: the first retrier whose ErrorEquals matches decides (ASL "Retrying")."""
        if error == "States.Runtime":
            return None
        for index, retrier in enumerate(state.retry):
            if not any(error_matches(name, error) for name in retrier.error_equals):
                continue
            count = frame.retry_counts.get(index, 0)
            if count >= retrier.max_attempts:
                return None
            delay = retrier.interval_seconds * retrier.backoff_rate**count
            if retrier.max_delay_seconds is not None:
                delay = min(delay, float(retrier.max_delay_seconds))
            if retrier.jitter_strategy == "FULL":
                delay = self.entropy.random() * delay
            return index, delay
        return None

    def finish_with_result(self, frame: Frame, state: State, result: JSON) -> None:
        """ResultSelector, ResultPath, OutputPath for Task, Parallel and Map."""
        assert isinstance(state, Task | Parallel | Map)
        if state.query_language == "JSONata":
            env = self.jsonata_env(frame, result=result)
            self.exit_state_jsonata(frame, state, env, result, state.next)
            return
        if state.result_selector is not None:
            result = state.result_selector.evaluate(result, self.scope(frame))
        assigned = self.assign_jsonpath(frame, state.assign, result)
        self.exit(frame, state, self.output(frame, state, result), state.next, assigned)

    # -- failures -----------------------------------------------------------------------------

    def fail_state(self, frame: Frame, state: State, error: str, cause: str) -> None:
        """A state failed: Catch (ASL "Fallback states") or fail the frame."""
        catch: tuple[Catcher, ...] = getattr(state, "catch", ())
        if error != "States.Runtime":
            for catcher in catch:
                if any(error_matches(name, error) for name in catcher.error_equals):
                    self.caught(frame, state, catcher, error, cause)
                    return
        self.fail_frame(frame, error, cause)

    def caught(self, frame: Frame, state: State, catcher: Catcher, error: str, cause: str) -> None:
        error_output = {"Error": error, "Cause": cause}
        if state.query_language == "JSONata":
            # Catcher Output (default: the error output) and Assign see $states.errorOutput.
            env = self.jsonata_env(frame, errorOutput=error_output)
            try:
                self.exit_jsonata(
                    frame,
                    state,
                    env,
                    error_output,
                    catcher.next,
                    output=catcher.output,
                    has_output=catcher.has_output,
                    assign=(catcher.assign,),
                )
            except StatesError as failure:
                failed_cause = self.cause(frame, failure.cause)
                if isinstance(failure, QueryEvaluationError):
                    self.evaluation_failed(frame, failure, failed_cause, in_catch=True)
                    return
                self.fail_frame(frame, failure.error, failed_cause)
            return
        try:
            assigned = self.assign_jsonpath(frame, catcher.assign, error_output)
        except StatesError as failure:
            self.fail_frame(frame, failure.error, self.cause(frame, failure.cause))
            return
        if catcher.result_path_set and catcher.result_path is None:
            output = frame.data
        elif catcher.result_path is None:
            output = error_output
        else:
            try:
                output = apply_result_path(catcher.result_path, frame.data, error_output)
            except StatesError as failure:
                self.fail_frame(frame, failure.error, self.cause(frame, failure.cause))
                return
        self.exit(frame, state, output, catcher.next, assigned)

    def fail_frame(self, frame: Frame, error: str | None, cause: str | None) -> None:
        """The frame's machine failed: fail the execution, the iteration or the branch."""
        if frame.parent is None:
            failed: dict[str, JSON] = {}
            if error is not None:
                failed["error"] = error
            if cause is not None:
                failed["cause"] = cause
            self.emit("ExecutionFailed", "", failed)
            return
        parent = self.state.frames[frame.parent]
        owner = self.state_of(parent)
        private = {"statemillError": error, "statemillCause": cause}
        if isinstance(owner, Map):
            details: dict[str, JSON] = {"name": owner.name, "index": frame.index, **private}
            if self.exceeds_tolerance(parent, extra_failure=True):
                # The Map fails with this iteration; when a retrier applies, AWS logs no
                # MapStateFailed, so the retry decision is recorded here.
                map_error, _ = self.map_failure(parent, error, cause)
                retry = self.retry_delay(parent, owner, map_error or "")
                if retry is not None:
                    details["statemillRetrier"], details["statemillRetryDelay"] = retry
            self.emit("MapIterationFailed", parent.id, details)
            return
        assert isinstance(owner, Parallel)
        self.children_failed(parent, owner, "ParallelStateFailed", error, cause)

    def children_failed(
        self, frame: Frame, state: Parallel | Map, kind: str, error: str | None, cause: str | None
    ) -> None:
        details: dict[str, JSON] = {"statemillError": error, "statemillCause": cause}
        retry = self.retry_delay(frame, state, error or "")
        if retry is not None:
            details["statemillRetrier"], details["statemillRetryDelay"] = retry
        self.emit(kind, frame.id, details)

    # -- Parallel and Map ---------------------------------------------------------------------

    def step_parallel(self, frame: Frame, state: Parallel) -> bool:
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
        if state.query_language == "JSONata":
            env = self.jsonata_env(frame)
            effective = frame.data
            items = self.map_items_jsonata(state, env)
            max_concurrency = state.max_concurrency
            if state.max_concurrency_expr is not None:
                max_concurrency = int(
                    self.jsonata_number(state.max_concurrency_expr, env, "MaxConcurrency")
                )
        else:
            effective = self.effective_input(frame, state)
            items = effective
            if state.items_path is not None:
                items = self.select(state.items_path, effective, frame, "ItemsPath")
            if not isinstance(items, list):
                raise _Failure(
                    "States.Runtime",
                    self.cause(frame, f"Map state input must be an array but was: {dumps(items)}"),
                )
            max_concurrency = state.max_concurrency
            if state.max_concurrency_path is not None:
                max_concurrency = self.int_from_path(
                    frame, state.max_concurrency_path, effective, "MaxConcurrencyPath"
                )
        try:
            tolerated_count, tolerated_percentage = self.map_tolerance(frame, state, effective)
        except (_Failure, StatesError) as failure:
            # AWS evaluates the failure tolerance after logging MapStateStarted. The failure
            # is recorded with it, so a history cut right here resumes into the same failure.
            error = failure.error
            cause = (
                failure.cause if isinstance(failure, _Failure) else self.cause(frame, failure.cause)
            )
            self.emit(
                "MapStateStarted",
                frame.id,
                {"length": len(items), "statemillError": error, "statemillCause": cause},
            )
            raise _Failure(error, cause) from None
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
        size = size or len(items) or 1
        batch_input = None
        if "BatchInput" in batcher:
            batch_input = evaluate_template(batcher["BatchInput"], env, "BatchInput")
        out: list[JSON] = []
        for start in range(0, len(items), size):
            batch: dict[str, JSON] = {"Items": items[start : start + size]}
            if batch_input is not None:
                batch["BatchInput"] = batch_input
            out.append(batch)
        return out

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
            raise _Failure(
                "States.Runtime", self.cause(frame, "ToleratedFailureCount cannot be negative.")
            )
        tolerated_percentage = state.tolerated_failure_percentage
        if state.tolerated_failure_percentage_path is not None:
            path = state.tolerated_failure_percentage_path
            value = self.select(path, effective, frame, "ToleratedFailurePercentagePath")
            if isinstance(value, str) and _NUMBER_TEXT.match(value):
                value = float(value)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _Failure(
                    "States.Runtime",
                    self.cause(
                        frame,
                        "The ToleratedFailurePercentagePath field refers to value "
                        f"{dumps(value)} which is not a valid number: {path.text}",
                    ),
                )
            tolerated_percentage = float(value)
        if tolerated_percentage is not None and not 0 <= tolerated_percentage <= 100:
            raise _Failure(
                "States.Runtime",
                self.cause(frame, "ToleratedFailurePercentage must be between 0 and 100."),
            )
        return tolerated_count, tolerated_percentage

    def map_tolerance_jsonata(self, frame: Frame, state: Map) -> tuple[int | None, float | None]:
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
            )
            if tolerated_percentage > 100:
                raise QueryEvaluationError(
                    "ToleratedFailurePercentage must be between 0 and 100.",
                    "ToleratedFailurePercentage",
                )
        return tolerated_count, tolerated_percentage

    def int_from_path(self, frame: Frame, path: Path, data: JSON, field: str) -> int:
        value = self.select(path, data, frame, field)
        if isinstance(value, str) and _INTEGER_TEXT.match(value):
            # AWS parses a string holding an integer ("1"), e.g. a variable assigned as text.
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            shown = value if isinstance(value, str) else dumps(value)
            raise _Failure(
                "States.Runtime",
                self.cause(
                    frame,
                    f'The {field} field refers to value "{shown}" which is not a valid '
                    f"integer: {path.text}",
                ),
            )
        return value

    def iteration_input(
        self, frame: Frame, state: Map, effective: JSON, index: int, item: JSON
    ) -> JSON:
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
        size = size or len(items) or 1
        batch_input = None
        if batcher.batch_input is not None:
            batch_input = batcher.batch_input.evaluate(effective, self.scope(frame))
        out: list[JSON] = []
        for start in range(0, len(items), size):
            batch: dict[str, JSON] = {"Items": items[start : start + size]}
            if batch_input is not None:
                batch["BatchInput"] = batch_input
            out.append(batch)
        return out

    def step_map(self, frame: Frame, state: Map) -> bool:
        progressed = False
        if state.mode == "DISTRIBUTED" and not frame.map_run:
            # Decided from the definition, not remembered: a history cut between
            # MapStateStarted and MapRunStarted resumes into the same map run.
            label = f"{state.label}" if state.label else state.name
            self.emit(
                "MapRunStarted",
                frame.id,
                {"mapRunArn": f"{self.state.state_machine_arn}/{label}:{frame.entered_id}"},
            )
            progressed = True
        # Iterations in flight: drive those that may move (a Task result reaches one frame, so
        # the others waiting on their handlers are skipped: O(1) per result, not O(in flight)).
        if self.focus is None:
            visit = list(frame.children)
        else:
            # A Task result can only move the iteration it belongs to: visiting just that one
            # keeps a Map with 10,000 iterations in flight linear, not quadratic.
            visit = [child_id for child_id in self.focus if child_id in frame.children]
        for child_id in visit:
            child = self.state.frames.get(child_id)
            if child is None:
                continue
            progressed |= self.advance_iteration(frame, state, child_id)
            if frame.phase != Phase.CHILDREN or self.state.is_terminal:
                return True
        if self.exceeds_tolerance(frame):
            self.map_failed(frame, state)
            return True
        # Start iterations while MaxConcurrency allows; each runs depth-first until it blocks.
        while (
            frame.child_started < frame.child_total
            and (frame.max_concurrency == 0 or frame.child_running < frame.max_concurrency)
            and not self.exhausted
        ):
            pending = frame.pending
            if pending is None:
                index = frame.child_started
            else:  # a redriven Map: only the iterations that did not succeed before
                index = pending[frame.child_started - (frame.child_total - len(pending))]
            self.emit_iteration(frame, state, "MapIterationStarted", index)
            progressed = True
            child_id = next(reversed(frame.children))
            self.advance_iteration(frame, state, child_id)
            if frame.phase != Phase.CHILDREN or self.state.is_terminal:
                return True
            if self.exceeds_tolerance(frame):
                self.map_failed(frame, state)
                return True
        if frame.child_started == frame.child_total and frame.child_running == 0:
            if frame.map_run and not frame.map_run_ended:
                self.emit("MapRunSucceeded", frame.id, {})
            self.emit("MapStateSucceeded", frame.id, {})
            return True
        return progressed

    def advance_iteration(self, frame: Frame, state: Map, child_id: str) -> bool:
        """Drive one iteration; record its success when it reaches its end."""
        progressed = self.drive(child_id)
        if frame.phase != Phase.CHILDREN or self.state.is_terminal:
            return True
        child = self.state.frames.get(child_id)
        if child is not None and child.phase == Phase.DONE:
            self.emit_iteration(frame, state, "MapIterationSucceeded", child.index)
            return True
        return progressed

    def emit_iteration(self, frame: Frame, state: Map, kind: str, index: int) -> None:
        self.emit(kind, frame.id, {"name": state.name, "index": index})

    def exceeds_tolerance(self, frame: Frame, *, extra_failure: bool = False) -> bool:
        failed = frame.child_failed + (1 if extra_failure else 0)
        if failed == 0:
            return False
        if frame.tolerated_count is None and frame.tolerated_percentage is None:
            return True
        if frame.tolerated_count is not None and failed > frame.tolerated_count:
            return True
        if frame.tolerated_percentage is not None and frame.child_total:
            return failed * 100.0 / frame.child_total > frame.tolerated_percentage
        return False

    def map_failure(
        self, frame: Frame, error: str | None, cause: str | None
    ) -> tuple[str | None, str | None]:
        """The Map's own error once its iterations failed beyond what it tolerates."""
        if frame.tolerated_count is not None or frame.tolerated_percentage is not None:
            return (
                "States.ExceedToleratedFailureThreshold",
                "The specified tolerated failure threshold was exceeded",
            )
        return error, cause

    def map_failed(self, frame: Frame, state: Map) -> None:
        error, cause = self.map_failure(frame, frame.error, frame.cause)
        if frame.map_run and not frame.map_run_ended:
            self.emit("MapRunFailed", frame.id, {"error": error, "cause": cause})
        self.children_failed(frame, state, "MapStateFailed", error, cause)


def resource_parts(resource: str) -> tuple[str, str]:
    """(resourceType, resource) as TaskScheduled details show them."""
    match = _SERVICE_ARN.match(resource)
    if match:
        return match.group(1), match.group(2) + (match.group(3) or "")
    return "statemill", resource


def lambda_payload(payload: JSON) -> JSON:
    """Lambda receives ``Payload`` as raw bytes: a string holding JSON arrives parsed, and no
    payload at all arrives as an empty object."""
    if payload is None:
        return {}
    if isinstance(payload, str):
        try:
            return msgspec.json.decode(payload)
        except msgspec.DecodeError:
            return payload
    return payload
