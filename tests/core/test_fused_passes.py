"""A run of plain Pass states decided in one loop (``Flow.fused_passes``) logs and folds exactly
what one step at a time does.

The loop builds its events itself and folds the frame once, from the last ``StateExited`` and
``StateEntered`` (issue 10, ``peers`` a). These tests pin that at the places where it hands
over to the checked loop (the history quota at every offset of a run), where the frame it
enters carries fields of an earlier state (a caught failure), and in branch frames.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from runtime.core.decide import decide
from runtime.core.effects import Wake
from runtime.core.events import HistoryEvent
from runtime.core.evolve import fold
from runtime.core.limits import ExecutionLimits
from runtime.core.state import ExecutionState
from runtime.definition.model import StateMachine
from tests.core.core_support import T0, given, machine_of, started

JSON = Any


def _chain(length: int, last: JSON = None, prefix: str = "S") -> dict[str, JSON]:
    """``length`` plain Pass states ``<prefix>0``..., each leading to the next, then ``last``
    (a plain Pass that ends, by default)."""
    states: dict[str, JSON] = {}
    for i in range(length):
        states[f"{prefix}{i}"] = {"Type": "Pass", "Next": f"{prefix}{i + 1}"}
    states[f"{prefix}{length}"] = last if last is not None else {"Type": "Pass", "End": True}
    return states


def _run(
    machine: StateMachine, input: JSON, limits: ExecutionLimits | None = None
) -> tuple[list[HistoryEvent], ExecutionState]:
    history = [started(input)]
    state = given(history)
    while not state.is_terminal:
        kwargs = {} if limits is None else {"limits": limits}
        decision = decide(machine, state, Wake(now=T0), **kwargs)
        history.extend(decision.events)
        if not decision.more:
            break
    return history, state


def _folds(history: list[HistoryEvent], state: ExecutionState) -> None:
    assert [event.id for event in history] == list(range(1, len(history) + 1))
    assert [event.previous_event_id for event in history[1:]] == list(range(1, len(history)))
    assert msgspec.to_builtins(fold(history)) == msgspec.to_builtins(state)


@pytest.mark.parametrize("quota", range(3, 24))
def test_the_history_quota_at_any_event_of_a_run_of_passes(quota: int) -> None:
    machine = machine_of({"StartAt": "S0", "States": _chain(10)})
    full, _ = _run(machine, {"n": 1})
    assert len(full) == 24  # started, 11 states entered and exited, succeeded

    history, state = _run(machine, {"n": 1}, ExecutionLimits(max_history_events=quota))

    # Every event before the quota as without it; the one that would reach it fails the run.
    assert history[:-1] == full[: quota - 1]
    assert history[-1].id == quota
    assert history[-1].type == "ExecutionFailed"
    assert history[-1].details["error"] == "States.Runtime"
    assert state.status == "FAILED"
    _folds(history, state)


def test_a_run_of_passes_entered_by_a_catch_folds_like_its_log() -> None:
    """The frame enters the run with a Parallel's failure, children and error set: the once-
    only fold must clear them as each ``StateEntered`` and ``StateExited`` does."""
    machine = machine_of(
        {
            "StartAt": "Fan",
            "States": {
                "Fan": {
                    "Type": "Parallel",
                    "Branches": [
                        {"StartAt": "B0", "States": _chain(3, prefix="B")},
                        {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Boom"}}},
                    ],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "S0"}],
                    "Next": "S0",
                },
                **_chain(4, {"Type": "Succeed"}),
            },
        }
    )

    history, state = _run(machine, {"n": 1})

    assert state.status == "SUCCEEDED"
    assert state.output["Error"] == "Boom"
    branch = [e.details["name"] for e in history if e.frame == "3:0"]
    assert branch == ["B0", "B0", "B1", "B1", "B2", "B2", "B3", "B3"]
    top = [e.details["name"] for e in history if not e.frame and e.type == "PassStateEntered"]
    assert top == ["S0", "S1", "S2", "S3"]
    _folds(history, state)


@pytest.mark.parametrize("length", [1, 2, 5])
def test_a_run_of_passes_that_enters_a_waiting_state_folds_like_its_log(length: int) -> None:
    """The decision stops in the state after the run (a Wait not yet due): the live frame
    (its state, next, phase, entry) is the fold of the log, not only the ended execution."""
    machine = machine_of(
        {
            "StartAt": "S0",
            "States": _chain(length, {"Type": "Wait", "Seconds": 10, "Next": "Done"})
            | {"Done": {"Type": "Succeed"}},
        }
    )
    history = [started({"n": 1})]
    state = given(history)

    decision = decide(machine, state, Wake(now=T0))
    history.extend(decision.events)

    assert decision.wake_at == T0 + 10
    assert history[-1].type == "WaitStateEntered"
    frame = state.frames[""]
    assert (frame.state, frame.next, frame.entered_id) == (f"S{length}", f"S{length}", len(history))
    _folds(history, state)
