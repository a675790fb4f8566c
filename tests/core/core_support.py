"""Helpers for the pure-core tests: build histories and drive ``decide`` synchronously.

``Driver`` plays the shell without an event loop: it feeds ``decide`` a ``Wake`` or one
``TaskResult`` at a time, answers each ``RunTask`` with a scripted outcome (lowest scheduled id
first) and jumps the clock to ``wake_at`` when nothing else can happen. Everything it does is a
function of the folded state, so a run resumed from any prefix of its log takes the same path.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from runtime.core.decide import decide, in_flight, start_event
from runtime.core.effects import (
    MAP_RUN_CHILD,
    Decision,
    Incoming,
    MapRunChild,
    RunTask,
    TaskResult,
    Wake,
)
from runtime.core.events import HistoryEvent
from runtime.core.evolve import fold
from runtime.core.limits import DEFAULT_LIMITS
from runtime.core.state import ExecutionState
from runtime.definition.load import load_definition
from runtime.definition.model import StateMachine

JSON = Any

T0 = 1_700_000_000.0
EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:Machine:run-1"
MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:Machine"
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:{}"

#: A handler outcome: ("succeeded", output) or ("failed"/"timed_out", error, cause).
Outcome = tuple[Any, ...]
Script = Callable[[RunTask], Outcome]


def machine_of(
    definition: Mapping[str, JSON] | str, machine_type: str = "STANDARD"
) -> StateMachine:
    return load_definition(
        definition if isinstance(definition, str) else json.dumps(definition),
        machine_type=machine_type,
    )


def started(input: JSON = None, *, now: float = T0) -> HistoryEvent:
    """The ``ExecutionStarted`` event of a test execution."""
    return start_event(
        execution_arn=EXECUTION_ARN,
        state_machine_arn=MACHINE_ARN,
        name="run-1",
        input={} if input is None else input,
        now=now,
    )


def given(events: list[HistoryEvent]) -> ExecutionState:
    """The state folded from ``events``."""
    return fold(events)


def types(events: list[HistoryEvent] | tuple[HistoryEvent, ...]) -> list[str]:
    return [event.type for event in events]


def result_for(task: RunTask, outcome: Outcome, now: float = T0, seed: int = 0) -> TaskResult:
    kind = outcome[0]
    if kind == "succeeded":
        return TaskResult(
            now=now,
            frame=task.frame,
            scheduled_id=task.scheduled_id,
            outcome="succeeded",
            output=outcome[1],
            seed=seed,
        )
    return TaskResult(
        now=now,
        frame=task.frame,
        scheduled_id=task.scheduled_id,
        outcome=kind,
        error=outcome[1],
        cause=outcome[2] if len(outcome) > 2 else "",
        seed=seed,
    )


def echo(task: RunTask) -> Outcome:
    return ("succeeded", task.input)


class Stuck(AssertionError):
    """The execution can neither progress nor end."""


class Driver:
    """Runs one execution to its end on the pure core, recording every decision."""

    def __init__(
        self, machine: StateMachine, script: Script = echo, *, seed: int = 7, limit: int = 10_000
    ) -> None:
        self.machine = machine
        self.script = script
        self.seed = seed
        self.limit = limit
        self.decisions: list[tuple[Incoming, Decision]] = []
        self.max_running = 0
        self.limits = DEFAULT_LIMITS
        self.children: list[list[HistoryEvent]] = []
        """The histories of the Map Runs' child executions, in the order they ran."""

    def run(
        self, input: JSON = None, *, now: float = T0
    ) -> tuple[list[HistoryEvent], ExecutionState]:
        first = started(input, now=now)
        state = fold([first])
        return [first, *self.resume(state, now=now)], state

    def resume(self, state: ExecutionState, *, now: float) -> list[HistoryEvent]:
        """Continue ``state`` (folded from a log) to the end; the events it appends."""
        out: list[HistoryEvent] = []
        pending: list[RunTask] = list(in_flight(state, self.machine))
        incoming: Incoming = Wake(now=now, seed=self.seed)
        for _ in range(self.limit):
            decision = decide(self.machine, state, incoming, limits=self.limits)
            self.decisions.append((incoming, decision))
            out.extend(decision.events)
            pending.extend(decision.tasks)
            self.max_running = max(self.max_running, len(pending))
            if state.is_terminal:
                return out
            if pending:
                pending.sort(key=lambda task: (task.scheduled_id, task.frame))
                task = pending.pop(0)
                outcome = self.child_run(task, now) if task.resource == MAP_RUN_CHILD else None
                if outcome is None:
                    outcome = self.script(task)
                incoming = result_for(task, outcome, now, self.seed)
            elif decision.wake_at is not None:
                now = max(now, decision.wake_at)
                incoming = Wake(now=now, seed=self.seed)
            else:
                raise Stuck(f"no task, no timer, not ended after event {state.last_event_id}")
        raise Stuck(f"more than {self.limit} decisions")

    def child_run(self, task: RunTask, now: float) -> Outcome:
        """A distributed Map's iteration: its child execution run to its end on the pure core
        too (with the same script), as the shell runs it (``engine.maprun``)."""
        spec = task.input
        assert isinstance(spec, MapRunChild)
        child = Driver(
            load_definition(spec.definition()), self.script, seed=self.seed, limit=self.limit
        )
        events, _ = child.run(spec.input, now=now)
        self.children.append(events)
        end = events[-1]
        if end.type == "ExecutionSucceeded":
            return ("succeeded", msgspec.json.decode(end.details["output"]))
        return ("failed", end.details.get("error"), end.details.get("cause"))


def builtins(state: ExecutionState) -> JSON:
    """A comparable form of a state."""
    return msgspec.to_builtins(state)
