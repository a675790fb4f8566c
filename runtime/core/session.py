"""The working memory of one decision and what every ASL rule shares: events, the context object,
state entry and exit.

A ``Session`` holds one ``decide`` call's emitted events, effects and timers; ``emit`` appends an
event and folds it at once (``evolve``), so the state every rule reads is the fold of the log.
The rules live in the modules layered on top of it (``dataflow``, ``failures``, ``tasks``,
``children``, ``flow``) and the driver (``decide``) that composes them. Also here: the execution
history quota (checked in ``emit``), the context object (``$$``/``$states.context``) and
``<Kind>StateEntered``/``<Kind>StateExited``.

No I/O, no clock, no randomness beyond the recorded ``Entropy``. Imports only the standard
library, msgspec, ``runtime.errors``, ``runtime.lang``, ``runtime.definition.model`` and
``runtime.core``.
"""

from __future__ import annotations

import datetime as _dt
import functools
from typing import Any, Final, final

import msgspec

from runtime.core.effects import Incoming, RunTask
from runtime.core.events import HistoryEvent
from runtime.core.evolve import (
    NOT_DECODED,
    STATE_ENTERED,
    STATE_EXITED,
    FrameHandler,
    evolve,
    evolve_next,
)
from runtime.core.limits import DEFAULT_LIMITS, ExecutionLimits
from runtime.core.state import ExecutionState, Frame
from runtime.definition.model import (
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
from runtime.lang.jsonata_functions import Env
from runtime.lang.scope import Entropy, Scope

__all__ = [
    "ENTERED_TYPES",
    "MAX_EVENTS_PER_DECISION",
    "MAX_PAYLOAD_BYTES",
    "HistoryLimitReached",
    "Session",
    "StateBindings",
    "StateFailure",
    "dumps",
    "iso_time",
]

JSON = Any


#: AWS's payload quota: 256 KiB of UTF-8 for any input, output or result.
MAX_PAYLOAD_BYTES: Final = 256 * 1024


#: A decision stops after this many events and asks to be called again (``Decision.more``):
#: a cycle of states that takes no time (a Choice looping on itself) must not freeze the shell,
#: and a huge inline Map is cut into commits of bounded size.
MAX_EVENTS_PER_DECISION: Final = 10_000

#: A decision also stops once the values it logged reach this many characters (about 32 full
#: payloads): a count of the data, not of the clock, so the cut is deterministic. Ten thousand
#: events of 256 KiB each would otherwise hold the shell for minutes (fuzz: an inline Map whose
#: ItemSelector renders the whole 256 KiB input for each of 40,000 items).
MAX_TEXT_PER_DECISION: Final = 8 * 1024 * 1024


_encode = msgspec.json.encode


#: ``<Kind>StateEntered`` / ``<Kind>StateExited`` per state class, built once rather than
#: formatted per event (``benchmarks chain``).
ENTERED_TYPES: Final = {
    kind: f"{kind.__name__}StateEntered"
    for kind in (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)
}


_EXITED: Final = {
    kind: f"{kind.__name__}StateExited"
    for kind in (Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map)
}


#: The events that end an execution: the history quota never replaces one of them.
_EXECUTION_ENDED: Final = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
)


def dumps(value: JSON) -> str:
    """Compact JSON text, as AWS writes inputs and outputs in histories."""
    return _encode(value).decode()


@functools.lru_cache(maxsize=1024)
def iso_time(timestamp: float) -> str:
    """``2024-05-01T12:00:00.123Z``: the format of ``$$.Execution.StartTime`` and friends."""
    moment = _dt.datetime.fromtimestamp(timestamp, _dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class HistoryLimitReached(Exception):
    """Raised by ``emit`` once the execution failed for its history quota: the decision
    unwinds (nothing may follow ExecutionFailed) and ``run`` returns what was emitted."""


class StateFailure(Exception):
    """A state failed with a States.* error (``error``, ``cause``): raised by a rule, turned into
    the state's failure at the state boundary (``decide._Decider.step_guarded``)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.error = error
        self.cause = cause


@final
class StateBindings:
    """What a compiled value (:mod:`runtime.definition.values`) of ``frame``'s current state is
    evaluated in: ``data`` (what a JSONPath value reads as ``$``: the effective input, or for an
    ``Assign`` the state's result or a catcher's error output; JSONata values read
    ``$states.input`` instead, the state's raw input), the JSONPath scope
    and the JSONata environment, built (once) when asked for; ``item`` is the context object's
    ``Map.Item`` (a Map's ItemSelector), ``None`` elsewhere; ``task_token`` the context
    object's ``Task.Token`` (a Task's Parameters or Arguments); ``states`` the members of
    ``$states`` beside ``input`` (``result``, ``errorOutput``)."""

    __slots__ = ("_env", "data", "frame", "item", "session", "states", "task_token")

    def __init__(
        self,
        session: Session,
        frame: Frame,
        data: JSON,
        item: JSON = None,
        states: dict[str, JSON] | None = None,
        task_token: str | None = None,
    ) -> None:
        self.session = session
        self.frame = frame
        self.data = data
        self.item = item
        self.states = states
        self.task_token = task_token
        self._env: Env | None = None

    def scope(self) -> Scope:
        return self.session.scope(self.frame, item=self.item, task_token=self.task_token)

    def env(self) -> Env:
        env = self._env
        if env is None:
            states = self.states or {}
            env = self._env = self.session.jsonata_env(
                self.frame, item=self.item, task_token=self.task_token, **states
            )
        return env


class Session:
    """One decision's working memory (the emitted events, effects and timers) and the
    plumbing every rule uses."""

    def __init__(
        self,
        machine: StateMachine,
        state: ExecutionState,
        incoming: Incoming,
        limits: ExecutionLimits = DEFAULT_LIMITS,
    ) -> None:
        self.machine = machine
        self.limits = limits
        self.history_limit = limits.max_history_events
        self.execution_end: float | None = None
        """When the execution reaches its maximum duration (no timer is armed later)."""
        self.state = state
        self.incoming = incoming
        self.now = incoming.now
        self.entropy = Entropy(incoming.seed)
        self.tokens_issued = 0
        """Task tokens this decision issued (each gets its own secret)."""
        self.events: list[HistoryEvent] = []
        self.tasks: list[RunTask] = []
        self.opened_map_runs: list[str] = []
        """Map Runs this decision opened (``Decision.opened_map_runs``)."""
        self.stopped_map_runs: list[str] = []
        """Map Runs this decision ended before their children (``Decision.stopped_map_runs``)."""
        self.timers: dict[str, float] = {}
        self.exhausted = False
        """Set once this decision emitted MAX_EVENTS_PER_DECISION events or logged
        MAX_TEXT_PER_DECISION characters of values: stop, ask for more."""
        self.text_logged = 0
        """Characters of value text this decision encoded (:meth:`text_of`)."""
        self.focus: set[str] | None = None
        """When set, the frames this decision may need to drive (others wait on handlers)."""
        self._machines: dict[tuple[tuple[str, int], ...], StateMachine] = {(): machine}
        self._last_path: tuple[tuple[str, int], ...] = ()
        self._last_machine = machine
        """The sub-machine path :meth:`machine_of` resolved last, and its machine."""
        self._dumped: tuple[JSON, str] = (NOT_DECODED, "")
        """The last value :meth:`text_of` encoded and its text."""

    def step_guarded(self, frame: Frame, state: State) -> bool:
        """One step of ``frame`` in ``state``, a failed evaluation turned into the state's
        failure. The driver (``runtime.core.decide``) defines it."""
        raise NotImplementedError

    def drive(self, frame_id: str) -> bool:
        """Step ``frame_id`` until it blocks; True if anything happened. The driver
        (``runtime.core.decide``) defines it: Parallel and Map drive their children with it."""
        raise NotImplementedError

    def emit(
        self, kind: str, frame: str, details: dict[str, JSON], decoded: JSON = NOT_DECODED
    ) -> HistoryEvent:
        """Append an event and apply it; ``decoded`` is passed on to ``evolve`` (the value of
        the event's input/output text, when it is a value ``evolve`` itself decoded before)."""
        state = self.state
        last = state.last_event_id
        limit = self.history_limit
        if (
            limit is not None
            and last + 1 - state.detached_events >= limit
            and kind not in _EXECUTION_ENDED
        ):
            self.check_history_limit(kind, frame, limit)
        event = HistoryEvent(
            id=last + 1,
            type=kind,
            timestamp=self.now,
            previous_event_id=last,
            details=details,
            frame=frame,
        )
        if kind in _EXECUTION_ENDED and state.logic_version >= 3:
            # The execution ends (fails, times out) with Map Runs still open: their children
            # are stopped too (the frames are gone once the end is folded).
            for open_frame in state.frames.values():  # a loop, not a generator: one per end
                if (
                    open_frame.map_run_arn is not None
                    and open_frame.map_run
                    and not open_frame.map_run_ended
                ):
                    self.stopped_map_runs.append(open_frame.map_run_arn)
        evolve(state, event, decoded)
        self.events.append(event)
        if len(self.events) >= MAX_EVENTS_PER_DECISION:
            self.exhausted = True
        return event

    def emit_state_event(
        self,
        kind: str,
        frame: Frame,
        details: dict[str, JSON],
        handler: FrameHandler,
        decoded: JSON = NOT_DECODED,
    ) -> None:
        """:meth:`emit` for an event of ``frame`` (a live frame of the state; never an event
        that ends the execution) that ``handler`` folds (``evolve.STATE_ENTERED``,
        ``STATE_EXITED``, ``ITERATION_STARTED``, ``ITERATION_ENDED``): the same event and
        state, without ``evolve`` looking the type and the frame up (``benchmarks chain``)."""
        state = self.state
        limit = self.history_limit
        if limit is not None and state.last_event_id + 1 - state.detached_events >= limit:
            self.check_history_limit(kind, frame.id, limit)
        events = self.events
        events.append(evolve_next(state, frame, kind, self.now, details, handler, decoded))
        if len(events) >= MAX_EVENTS_PER_DECISION:
            self.exhausted = True

    def check_history_limit(self, kind: str, frame_id: str, limit: int) -> None:
        """Quota "Maximum execution history size" (25,000 events): the event that would be
        number ``limit`` is logged only if it ends the execution; any other becomes an
        ExecutionFailed, and the decision stops there (AWS, "Avoid reaching the history
        quota"). Events of a distributed Map's child workflows belong to their own histories
        on AWS and do not count."""
        frame = self.state.frames.get(frame_id)
        if frame is not None and (
            frame.detached or (frame.map_run and kind.startswith("MapIteration"))
        ):
            return
        self.tasks.clear()  # nothing runs for an execution that has failed
        self.emit(
            "ExecutionFailed",
            "",
            {
                "error": "States.Runtime",
                "cause": f"The execution reached the maximum number of history events ({limit}).",
            },
        )
        raise HistoryLimitReached

    def text_of(self, value: JSON) -> str:
        """``dumps(value)``, reusing the last text when ``value`` is the same object: a state
        whose output is its input logs the same text as Entered input and Exited output, and
        the next state's Entered input again (``benchmarks chain``). JSON values are never
        mutated, so the same object always has the same text."""
        last, text = self._dumped
        if value is not last:
            text = dumps(value)
            self._dumped = (value, text)
            self.text_logged += len(text)
            if self.text_logged >= MAX_TEXT_PER_DECISION:
                self.exhausted = True
        return text

    def machine_of(self, frame: Frame) -> StateMachine:
        """The (sub)machine ``frame`` runs: the top level, a Parallel branch or a Map's
        ItemProcessor."""
        key = frame.machine
        if not key:
            return self.machine
        if key is self._last_path:
            # The frame asked just before (entering a state, then its step): no tuple hashed.
            return self._last_machine
        cached = self._machines.get(key)
        if cached is not None:
            self._last_path, self._last_machine = key, cached
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
        self._machines[key] = current
        self._last_path, self._last_machine = key, current
        return current

    def state_of(self, frame: Frame) -> State:
        """The state ``frame`` is in."""
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

    def bindings(
        self,
        frame: Frame,
        data: JSON,
        *,
        item: JSON = None,
        task_token: str | None = None,
        **states: JSON,
    ) -> StateBindings:
        """The bindings ``frame``'s compiled values are evaluated in, ``data`` being the
        state's effective input (``item``: the context object's ``Map.Item``; ``task_token``:
        its ``Task.Token``; ``states``: ``$states.result`` or ``$states.errorOutput``)."""
        return StateBindings(self, frame, data, item, states, task_token)

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

    def cause(self, frame: Frame, detail: str) -> str:
        """AWS's cause of a state's failure: the state, the event it was entered at, ``detail``."""
        return (
            f"An error occurred while executing the state '{frame.state}' "
            f"(entered at the event id #{frame.entered_id}). {detail}"
        )

    def enter(self, frame: Frame, name: str, data: JSON, *, decoded: bool = False) -> State:
        """``<Kind>StateEntered``, and the state entered; ``decoded`` says ``data`` is a value
        ``evolve`` decoded from an event (the previous state's output), so the new frame data
        may be ``data`` itself."""
        state = self.machine_of(frame).states[name]
        text = self.text_of(data)
        self.emit_state_event(
            ENTERED_TYPES[type(state)],
            frame,
            {"name": name, "input": text, "inputDetails": {"truncated": False}},
            STATE_ENTERED,
            data if decoded else NOT_DECODED,
        )
        if not decoded:
            # evolve decoded ``text`` into the frame's data; encoding that value gives ``text``
            # again (the encoder's output decodes and re-encodes to itself), so the state's
            # output, when it is its input, is not encoded a second time (``benchmarks map``).
            self._dumped = (frame.data, text)
        return state

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
            # AWS's cause is this sentence alone, without the "An error occurred while
            # executing the state ..." preamble of other runtime errors (issue 15).
            raise StateFailure(
                "States.DataLimitExceeded",
                f"The state/task '{state.name}' returned a result with a size exceeding "
                "the maximum number of bytes service limit.",
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
        if output is frame.data:
            self.emit_state_event(_EXITED[type(state)], frame, details, STATE_EXITED, output)
            return
        # Any other value is decoded from ``text`` by evolve (so the frame holds plain JSON
        # whatever built it); that value encodes to ``text`` again, which the next state's
        # input or the execution's output reuses (``peers`` c: a Map's 1,000 results).
        self.emit_state_event(_EXITED[type(state)], frame, details, STATE_EXITED)
        self._dumped = (frame.data, text)
