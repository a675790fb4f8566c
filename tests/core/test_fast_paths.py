"""The core's fast paths log exactly what the generic steps log.

``decide`` takes shortcuts on its hottest paths (issue 10, ``peers`` a to c): a run of Pass
states with nothing to process is decided in one loop (``Flow.pass_through``), a Map iteration
that ends in its first step is recorded without the driver's loop (``Children.start_iteration``),
``StateEntered``/``StateExited``/``MapIteration*`` events are folded without evolve's lookups
(``evolve.evolve_next``), and a value's JSON text is reused rather than encoded again. These
tests pin the events (types, ids, details, timestamps), the decisions' boundaries (the event
budget, the history quota, the payload quota) and the fold of the log at the places where a
shortcut starts, stops or hands over.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given as hypothesis_given
from hypothesis import settings
from hypothesis import strategies as st

from runtime.core.decide import MAX_EVENTS_PER_DECISION, decide, dumps, start_event
from runtime.core.effects import Wake
from runtime.core.events import HistoryEvent
from runtime.core.evolve import evolve, fold
from runtime.core.limits import ExecutionLimits
from runtime.core.state import ExecutionState
from runtime.definition.model import StateMachine
from tests.core.core_support import (
    EXECUTION_ARN,
    MACHINE_ARN,
    T0,
    given,
    machine_of,
    started,
    types,
)

JSON = Any

NOT_TRUNCATED = {"truncated": False}


def _pass(next_state: str | None = None, **fields: JSON) -> dict[str, JSON]:
    end: dict[str, JSON] = {"Next": next_state} if next_state else {"End": True}
    return {"Type": "Pass", **end, **fields}


def _run(
    machine: StateMachine, input: JSON, *, limits: ExecutionLimits | None = None
) -> tuple[list[HistoryEvent], ExecutionState, list[int]]:
    """The whole history (one Wake after another), the live state, each decision's size."""
    history = [started(input)]
    state = given(history)
    sizes: list[int] = []
    while not state.is_terminal:
        if limits is None:
            decision = decide(machine, state, Wake(now=T0))
        else:
            decision = decide(machine, state, Wake(now=T0), limits=limits)
        history.extend(decision.events)
        sizes.append(len(decision.events))
        if not decision.more:
            break
    return history, state, sizes


def _assert_dense_and_folds(history: list[HistoryEvent], state: ExecutionState) -> None:
    assert [event.id for event in history] == list(range(1, len(history) + 1))
    assert [event.previous_event_id for event in history[1:]] == list(range(1, len(history)))
    assert msgspec.to_builtins(fold(history)) == msgspec.to_builtins(state)


def test_a_run_of_plain_passes_logs_every_state_with_one_text() -> None:
    machine = machine_of(
        {
            "StartAt": "A",
            "States": {
                "A": _pass("B"),
                "B": _pass("C", QueryLanguage="JSONata"),
                "C": _pass("D", Result={"x": 1.0}),
                "D": _pass("E"),
                "E": {"Type": "Succeed"},
            },
        }
    )
    history, state, sizes = _run(machine, {"i": [1, 2.5, "é"]})

    text = '{"i":[1,2.5,"é"]}'
    result = '{"x":1.0}'
    assert [(event.type, event.details) for event in history[1:]] == [
        ("PassStateEntered", {"name": "A", "input": text, "inputDetails": NOT_TRUNCATED}),
        (
            "PassStateExited",
            {"name": "A", "output": text, "outputDetails": NOT_TRUNCATED, "statemillNext": "B"},
        ),
        ("PassStateEntered", {"name": "B", "input": text, "inputDetails": NOT_TRUNCATED}),
        (
            "PassStateExited",
            {"name": "B", "output": text, "outputDetails": NOT_TRUNCATED, "statemillNext": "C"},
        ),
        ("PassStateEntered", {"name": "C", "input": text, "inputDetails": NOT_TRUNCATED}),
        (
            "PassStateExited",
            {"name": "C", "output": result, "outputDetails": NOT_TRUNCATED, "statemillNext": "D"},
        ),
        ("PassStateEntered", {"name": "D", "input": result, "inputDetails": NOT_TRUNCATED}),
        (
            "PassStateExited",
            {"name": "D", "output": result, "outputDetails": NOT_TRUNCATED, "statemillNext": "E"},
        ),
        ("SucceedStateEntered", {"name": "E", "input": result, "inputDetails": NOT_TRUNCATED}),
        ("SucceedStateExited", {"name": "E", "output": result, "outputDetails": NOT_TRUNCATED}),
        ("ExecutionSucceeded", {"output": result, "outputDetails": NOT_TRUNCATED}),
    ]
    assert all(event.timestamp == T0 and event.frame == "" for event in history)
    assert sizes == [11]
    assert state.output == {"x": 1.0}
    _assert_dense_and_folds(history, state)


def _pass_loop() -> StateMachine:
    """Five plain Pass states and a Choice, round and round (``$.stop`` is never there): 12
    events a lap, so the event budget (10,000) falls inside a run of Pass states."""
    return machine_of(
        {
            "StartAt": "A",
            "States": {
                "A": _pass("B"),
                "B": _pass("C"),
                "C": _pass("D"),
                "D": _pass("E"),
                "E": _pass("Loop"),
                "Loop": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.stop", "IsPresent": True, "Next": "End"}],
                    "Default": "A",
                },
                "End": _pass(),
            },
        }
    )


def test_a_run_of_plain_passes_stops_at_the_decision_budget() -> None:
    history, state, sizes = _run(_pass_loop(), {})

    # Cut at exactly the budget, inside a run of Pass states, then resumed where it stopped;
    # the history quota fails the execution at its 25,000th event.
    assert sizes == [MAX_EVENTS_PER_DECISION, MAX_EVENTS_PER_DECISION, 4_999]
    last, first = history[MAX_EVENTS_PER_DECISION], history[MAX_EVENTS_PER_DECISION + 1]
    assert (last.type, last.details["name"]) == ("PassStateExited", "B")
    assert (first.type, first.details["name"]) == ("PassStateEntered", "C")
    assert history[-1].type == "ExecutionFailed"
    assert history[-1].id == 25_000
    _assert_dense_and_folds(history, state)


def test_a_run_of_plain_passes_stops_at_the_history_quota() -> None:
    history, state, sizes = _run(_pass_loop(), {}, limits=ExecutionLimits(max_history_events=101))

    assert sizes == [100]
    # Event 101 would have been B's PassStateExited, in the middle of a run of Pass states.
    assert [(event.type, event.details.get("name")) for event in history[-3:]] == [
        ("PassStateExited", "A"),
        ("PassStateEntered", "B"),
        ("ExecutionFailed", None),
    ]
    assert history[-1].id == 101
    assert state.status == "FAILED"
    assert state.error == "States.Runtime"
    _assert_dense_and_folds(history, state)


def test_a_plain_pass_over_the_payload_quota_fails() -> None:
    machine = machine_of({"StartAt": "A", "States": {"A": _pass("B"), "B": _pass()}})

    history, state, _ = _run(machine, {"s": "x" * 300_000})

    assert types(history) == ["ExecutionStarted", "PassStateEntered", "ExecutionFailed"]
    assert history[-1].details == {
        "error": "States.DataLimitExceeded",
        # AWS's cause for an output over the quota has no "An error occurred ..." preamble.
        "cause": "The state/task 'A' returned a result with a size exceeding the maximum number "
        "of bytes service limit.",
    }
    _assert_dense_and_folds(history, state)


def _inline_map(processor_states: dict[str, JSON], start_at: str, **fields: JSON) -> StateMachine:
    processor = {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": start_at}
    return machine_of(
        {
            "StartAt": "Map",
            "States": {
                "Map": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "MaxConcurrency": 0,
                    "ItemProcessor": {**processor, "States": processor_states},
                    "End": True,
                    **fields,
                }
            },
        }
    )


def test_map_iterations_of_plain_passes_are_logged_and_cut_at_the_budget() -> None:
    items: list[JSON] = [1.0, 10**20, "é", {"a": [None, True]}, *range(2_996)]
    machine = _inline_map({"I": _pass("J"), "J": _pass()}, "I")

    history, state, sizes = _run(machine, {"items": items})

    # Per iteration: MapIterationStarted, two Passes entered and exited, MapIterationSucceeded.
    assert sizes == [MAX_EVENTS_PER_DECISION, 8_005]
    first = history[3:9]
    assert [(event.type, event.frame) for event in first] == [
        ("MapIterationStarted", ""),
        ("PassStateEntered", "3:0"),
        ("PassStateExited", "3:0"),
        ("PassStateEntered", "3:0"),
        ("PassStateExited", "3:0"),
        ("MapIterationSucceeded", ""),
    ]
    for index, item in enumerate(items[:4]):
        entered = history[4 + 6 * index]
        exited = history[7 + 6 * index]
        assert entered.details["input"] == exited.details["output"] == dumps(item)
    assert state.output == items
    assert history[-1].details["output"] == dumps(items)
    _assert_dense_and_folds(history, state)


def test_a_map_iteration_that_goes_on_after_its_plain_passes() -> None:
    machine = _inline_map(
        {
            "I": _pass("C"),
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$", "NumericGreaterThan": 1, "Next": "F"}],
                "Default": "K",
            },
            "K": _pass(Result="kept"),
            "F": {"Type": "Fail", "Error": "Big", "Cause": "too big"},
        },
        "I",
        ToleratedFailureCount=1,
    )

    history, state, _ = _run(machine, {"items": [1, 2, 3]})

    iterations = [
        (event.type, event.details["index"])
        for event in history
        if event.type[:12] == "MapIteration"
    ]
    assert iterations == [
        ("MapIterationStarted", 0),
        ("MapIterationSucceeded", 0),
        ("MapIterationStarted", 1),
        ("MapIterationFailed", 1),
        ("MapIterationStarted", 2),
        ("MapIterationFailed", 2),
    ]
    assert types(history[-2:]) == ["MapStateFailed", "ExecutionFailed"]
    assert state.error == "States.ExceedToleratedFailureThreshold"
    _assert_dense_and_folds(history, state)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@hypothesis_given(_json_values)
def test_the_text_of_a_decoded_value_is_the_text_it_was_decoded_from(value: JSON) -> None:
    # What reusing a text for the value evolve decoded from it rests on (Session.enter/exit).
    text = dumps(value)
    assert dumps(msgspec.json.decode(text)) == text


def test_a_start_given_the_input_text_and_value_opens_the_same_history() -> None:
    machine = machine_of({"StartAt": "A", "States": {"A": _pass("B"), "B": _pass()}})
    value = {"n": [1, 2.5, "é", None]}
    text = dumps(value)
    plain = started(value)
    given_text = start_event(
        execution_arn=EXECUTION_ARN,
        state_machine_arn=MACHINE_ARN,
        name="run-1",
        input=value,
        input_text=text,
        now=T0,
    )
    live = evolve(ExecutionState(), given_text, value)

    assert given_text == plain
    assert msgspec.to_builtins(live) == msgspec.to_builtins(fold([plain]))
    events = decide(machine, live, Wake(now=T0)).events
    assert events == decide(machine, fold([plain]), Wake(now=T0)).events
    assert live.output == value


def test_a_decision_stops_at_its_text_budget() -> None:
    """Events of large values cut a decision long before 10,000 events: 300 iterations each
    logging about 39,000 characters pass the 8 MiB text budget in about 1,200 events. The cut
    is a count of data, not of time, so a replay cuts at the same place."""
    ranges = {f"r{key}.$": "States.ArrayRange(1, 1000, 1)" for key in range(10)}
    machine = _inline_map({"I": _pass(Parameters=ranges)}, "I", ResultPath=None)

    history, state, sizes = _run(machine, {"items": list(range(300))})

    assert len(sizes) > 1
    assert all(size < 2_000 for size in sizes)
    assert state.output == {"items": list(range(300))}
    _assert_dense_and_folds(history, state)
