"""Entering a state, and the states that only route or wait (ASL "Pass", "Choice", "Wait",
"Succeed", "Fail"): what each state type does once entered, in either query language.

Imports only the standard library, ``runtime.errors``, ``runtime.lang``,
``runtime.definition.model`` and ``runtime.core``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, assert_never

from runtime.core.children import Children
from runtime.core.events import HistoryEvent
from runtime.core.evolve import STATE_ENTERED, STATE_EXITED
from runtime.core.session import (
    ENTERED_TYPES,
    MAX_EVENTS_PER_DECISION,
    MAX_PAYLOAD_BYTES,
    StateBindings,
    StateFailure,
)
from runtime.core.state import Frame
from runtime.definition.model import (
    Choice,
    Fail,
    Map,
    Parallel,
    Pass,
    State,
    Succeed,
    Task,
    Wait,
)
from runtime.definition.values import Value, parse_timestamp

__all__ = ["Flow", "parse_timestamp"]

JSON = Any


class Flow(Children):
    """What each state type does once entered; Choice and Wait in full."""

    def pass_through(self, frame: Frame, state: Pass) -> bool:
        """Pass (ASL "Pass State") with nothing to process (``Pass.is_plain``, either query
        language): the output is the input. A run of such states is decided here in one loop,
        ``<Kind>StateExited`` then the next state's ``<Kind>StateEntered``, the same events
        (one text for every input and output) that stepping each state writes
        (``benchmarks chain``, ``peers`` a and b). Stops where the generic steps take over: a
        state that is not such a Pass, the end of the frame's machine, the decision's event
        budget; an input over the payload quota takes the generic path, which fails the state.
        """
        data = frame.data
        text = self.text_of(data)
        # A code point takes at most 4 bytes of UTF-8: short texts need no encoding to check.
        if len(text) * 4 > MAX_PAYLOAD_BYTES and len(text.encode()) > MAX_PAYLOAD_BYTES:
            return self.step_guarded(frame, state)
        states = self.machine_of(frame).states
        following_pass = self.fused_passes(frame, state, states, data, text)
        if following_pass is None:
            return True
        # Near the event budget or the history quota: one event at a time, each checked.
        state = following_pass
        emit = self.emit_state_event
        while True:
            next_state = state.next
            exited: dict[str, JSON] = {
                "name": state.name,
                "output": text,
                "outputDetails": {"truncated": False},
            }
            if next_state is None:
                emit("PassStateExited", frame, exited, STATE_EXITED, data)
                return True
            exited["statemillNext"] = next_state
            emit("PassStateExited", frame, exited, STATE_EXITED, data)
            if self.exhausted:
                return True
            following = states[next_state]
            entered = {"name": next_state, "input": text, "inputDetails": {"truncated": False}}
            emit(ENTERED_TYPES[type(following)], frame, entered, STATE_ENTERED, data)
            if self.exhausted or type(following) is not Pass or not following.is_plain:
                return True
            state = following

    def fused_passes(
        self, frame: Frame, state: Pass, states: Mapping[str, State], data: JSON, text: str
    ) -> Pass | None:
        """:meth:`pass_through`'s run of plain Pass states, as long as no event of it can
        reach the decision's event budget or the history quota: the events are built here
        and the frame is folded once, at the end, by the last ``StateExited`` and
        ``StateEntered`` (every event of the run writes the same fields of the same frame:
        the last of each type leaves the state the whole sequence leaves; ``peers`` a and b).
        None once the run is over; else the plain Pass the checked loop goes on with, the
        frame folded up to its entry."""
        if self.exhausted:  # the decision is over its budget: the checked loop stops it
            return state
        session_state = self.state
        events = self.events
        last = first = session_state.last_event_id
        # The highest event id this loop may write: one short of the decision's event budget
        # and, for a frame whose events count, below the id that would reach the history
        # quota (``emit_state_event``'s test: ``id - detached_events >= limit``). The event
        # that reaches either is left to the checked loop, which stops there.
        highest = last + MAX_EVENTS_PER_DECISION - len(events) - 1
        limit = self.history_limit
        if limit is not None and not frame.detached:
            highest = min(highest, limit - 1 + session_state.detached_events)
        now = self.now
        frame_id = frame.id
        # One ``{"truncated": False}`` for every event of the run (event details are never
        # mutated): two dicts fewer per Pass state (``peers`` a).
        not_truncated = {"truncated": False}
        exited_event: HistoryEvent | None = None
        entered_event: HistoryEvent | None = None
        going_on: Pass | None = None
        while True:
            if last + 2 > highest:
                going_on = state
                break
            next_state = state.next
            if next_state is None:
                last += 1
                exited_event = HistoryEvent(
                    id=last,
                    type="PassStateExited",
                    timestamp=now,
                    previous_event_id=last - 1,
                    details={
                        "name": state.name,
                        "output": text,
                        "outputDetails": not_truncated,
                    },
                    frame=frame_id,
                )
                events.append(exited_event)
                break
            exited_event = HistoryEvent(
                id=last + 1,
                type="PassStateExited",
                timestamp=now,
                previous_event_id=last,
                details={
                    "name": state.name,
                    "output": text,
                    "outputDetails": not_truncated,
                    "statemillNext": next_state,
                },
                frame=frame_id,
            )
            following = states[next_state]
            last += 2
            entered_event = HistoryEvent(
                id=last,
                type=ENTERED_TYPES[type(following)],
                timestamp=now,
                previous_event_id=last - 1,
                details={"name": next_state, "input": text, "inputDetails": not_truncated},
                frame=frame_id,
            )
            events.append(exited_event)
            events.append(entered_event)
            if type(following) is not Pass or not following.is_plain:
                break
            state = following
        if last == first:
            return going_on
        session_state.last_event_id = last
        if frame.detached:
            session_state.detached_events += last - first
        if exited_event is not None and exited_event.id == last:
            if entered_event is not None:
                STATE_ENTERED(session_state, frame, entered_event, data)
            STATE_EXITED(session_state, frame, exited_event, data)
        else:
            assert exited_event is not None
            assert entered_event is not None
            STATE_EXITED(session_state, frame, exited_event, data)
            STATE_ENTERED(session_state, frame, entered_event, data)
        return going_on

    def on_entered(self, frame: Frame, state: State) -> bool:
        """A state just entered, in either query language (ASL "Input and Output Processing",
        "Transforming data with JSONata"): its input (InputPath; a JSONata state has no paths,
        so it is the raw input), the input of its work (Parameters, or JSONata's
        ``Arguments``), then what its type does; every ``Assign`` and ``Output`` is one
        compiled value."""
        match state:
            case Pass() if state.is_plain:
                # No InputPath/Parameters/Result/ResultPath/OutputPath/Assign/Output: the
                # output is the input, and no scope is needed (``benchmarks chain``).
                self.exit(frame, state, frame.data, state.next)
            case Pass():
                effective = self.effective_input(frame, state)
                if state.parameters is not None:
                    effective = state.parameters.evaluate(effective, self.scope(frame))
                result = state.result if state.has_result else effective
                self.exit_state(frame, state, self.bindings(frame, result), result, state.next)
            case Task():
                effective = self.effective_input(frame, state)
                token = self.new_task_token(frame, state)
                if state.parameters is not None:
                    effective = state.parameters.evaluate(
                        effective, self.scope(frame, task_token=token)
                    )
                elif state.arguments is not None:
                    effective = state.arguments.evaluate(
                        self.bindings(frame, effective, task_token=token)
                    )
                self.schedule(frame, state, effective, token=token)
            case Choice():
                self.on_choice(frame, state)
            case Wait():
                return self.on_wait(frame, state)
            case Succeed():
                effective = self.effective_input(frame, state)
                self.exit_state(frame, state, self.bindings(frame, effective), effective, None)
            case Fail():
                self.on_fail(frame, state)
            case Parallel():
                effective = self.effective_input(frame, state)
                if state.parameters is not None:
                    effective = state.parameters.evaluate(effective, self.scope(frame))
                elif state.arguments is not None:
                    effective = state.arguments.evaluate(self.bindings(frame, effective))
                self.start_branches(frame, state, effective)
            case Map():
                self.on_map(frame, state)
            case _:
                assert_never(state)
        return True

    def on_choice(self, frame: Frame, state: Choice) -> None:
        """Choice (ASL "Choice Rules"), in either query language: the first rule that matches
        (a JSONPath test or a JSONata ``Condition``, one compiled test each) picks Next, else
        Default, else States.NoChoiceMatched. The state's Assign applies whichever rule
        matched, the rule's own comes on top; the rule's Output (JSONata) replaces the
        state's. Both are read over the same bindings, so neither sees the values assigned."""
        bindings = self.bindings(frame, self.effective_input(frame, state))
        target = state.default
        rule_assign: Value | None = None
        output = state.output_value
        for index, rule in enumerate(state.choices):
            if rule.matches(bindings):
                target = rule.next
                rule_assign = state.rule_assign[index]
                rule_output = state.rule_output[index]
                if rule_output is not None:
                    output = rule_output
                break
        if target is None:
            raise StateFailure("States.NoChoiceMatched", self.cause(frame, "No Matches!"))
        assigned: dict[str, JSON] | None = None
        for assign in (state.assign_value, rule_assign):
            if assign is not None:
                values = assign.evaluate(bindings)
                assigned = values if assigned is None else {**assigned, **values}
        self.exit(frame, state, output.evaluate(bindings), target, assigned)

    def on_wait(self, frame: Frame, state: Wait) -> bool:
        """Wait (ASL "Wait State"), in either query language: arm the timer, or exit once it
        is due."""
        effective = self.effective_input(frame, state)
        fire_at = self.wait_until(frame, state, self.bindings(frame, effective))
        if self.now < fire_at:
            self.timers[frame.id] = fire_at
            return False
        self.exit_state(frame, state, self.bindings(frame, effective), effective, state.next)
        return True

    def wait_until(self, frame: Frame, state: Wait, bindings: StateBindings) -> float:
        """Wait (ASL "Wait State"): when the wait is over: ``Seconds``/``SecondsPath`` after the
        state was entered, or at ``Timestamp``/``TimestampPath`` (either query language: each
        is one compiled value)."""
        if state.seconds is not None:
            return frame.entered_at + state.seconds.seconds(bindings)
        if state.timestamp is not None:
            return state.timestamp.moment(bindings)
        return frame.entered_at

    def on_fail(self, frame: Frame, state: Fail) -> None:
        """Fail (ASL "Fail State"): Error/Cause, or ErrorPath/CausePath (a non-string value as JSON
        text), or JSONata expressions (which must give strings): each one compiled value, read
        over the state's raw input."""
        bindings = self.bindings(frame, frame.data)
        error = None if state.error is None else state.error.text(bindings)
        cause = None if state.cause is None else state.cause.text(bindings)
        self.fail_frame(frame, error, cause)
