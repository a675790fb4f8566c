"""A Task's TimeoutSeconds/HeartbeatSeconds, a Fail's Error/Cause and a Map's ItemSelector, each
one compiled value read by one rule in both query languages (issue 10): the same definition
written in JSONPath and in JSONata gives the same events, and TestState reads a Fail as an
execution does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.core.decide import decide
from runtime.core.effects import Wake
from runtime.core.events import HistoryEvent
from runtime.definition.model import StateMachine
from runtime.teststate import test_state
from tests.core.core_support import T0, Driver, given, machine_of, started

JSON = Any


def _run(machine: StateMachine, input: JSON = None) -> list[HistoryEvent]:
    """Wake a Task-free execution (or one failing before its Task runs) until it ends."""
    history = [started(input)]
    for _ in range(50):
        state = given(history)
        if state.is_terminal:
            return history
        history.extend(decide(machine, state, Wake(now=T0)).events)
    raise AssertionError("not ended")


def _failure(history: list[HistoryEvent]) -> tuple[str, str]:
    last = history[-1]
    assert last.type == "ExecutionFailed", last.type
    return last.details["error"], last.details["cause"]


def _one_state(state: dict[str, JSON], language: str = "JSONPath") -> StateMachine:
    return machine_of({"QueryLanguage": language, "StartAt": "S", "States": {"S": state}})


def _scheduled(history: list[HistoryEvent]) -> dict[str, JSON]:
    (event,) = (event for event in history if event.type == "TaskScheduled")
    return event.details


# -- Task: TimeoutSeconds, HeartbeatSeconds ------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "fields"),
    [
        ("JSONPath", {"TimeoutSeconds": 30, "HeartbeatSeconds": 10}),
        ("JSONPath", {"TimeoutSecondsPath": "$.t", "HeartbeatSecondsPath": "$.h"}),
        ("JSONata", {"TimeoutSeconds": 30, "HeartbeatSeconds": 10}),
        (
            "JSONata",
            {
                "TimeoutSeconds": "{% $states.input.t %}",
                "HeartbeatSeconds": "{% $states.input.h %}",
            },
        ),
    ],
)
def test_every_form_of_the_task_seconds_schedules_the_same_deadlines(
    language: str, fields: dict[str, JSON]
) -> None:
    machine = _one_state({"Type": "Task", "Resource": "DoWork", "End": True, **fields}, language)
    driver = Driver(machine, lambda task: ("succeeded", {}))

    history, _ = driver.run({"t": 30, "h": 10})

    details = _scheduled(history)
    assert (details["timeoutInSeconds"], details["heartbeatInSeconds"]) == (30, 10)
    tasks = [task for _, decision in driver.decisions for task in decision.tasks]
    assert [(task.timeout_seconds, task.heartbeat_seconds) for task in tasks] == [(30, 10)]


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        (0, "The value at $.t is not a positive integer: 0"),
        (-4, "The value at $.t is not a positive integer: -4"),
        (1.5, "The value at $.t is not a positive integer: 1.5"),
        (True, "The value at $.t is not a positive integer: True"),
        ("30", "The value at $.t is not a positive integer: 30"),
        (100_000_000, "The value at $.t is larger than the maximum of 99999999: 100000000"),
    ],
)
def test_a_timeout_seconds_path_must_select_a_positive_integer(value: JSON, detail: str) -> None:
    machine = _one_state(
        {"Type": "Task", "Resource": "DoWork", "TimeoutSecondsPath": "$.t", "End": True}
    )

    error, cause = _failure(_run(machine, {"t": value}))

    assert error == "States.Runtime"
    assert cause == (
        "An error occurred while executing the state 'S' (entered at the event id #2). " + detail
    )


def test_a_heartbeat_seconds_path_that_matches_nothing_fails_with_states_runtime() -> None:
    machine = _one_state(
        {"Type": "Task", "Resource": "DoWork", "HeartbeatSecondsPath": "$.h", "End": True}
    )

    error, cause = _failure(_run(machine, {}))

    assert error == "States.Runtime"
    assert "$.h" in cause


@pytest.mark.parametrize("field", ["TimeoutSeconds", "HeartbeatSeconds"])
def test_a_jsonata_task_seconds_below_one_fails_the_state(field: str) -> None:
    machine = _one_state(
        {"Type": "Task", "Resource": "DoWork", field: "{% 0 %}", "End": True}, "JSONata"
    )

    error, cause = _failure(_run(machine))

    assert error == "States.QueryEvaluationError"
    assert cause.endswith(
        f"The JSONata expression '0' specified for the field '{field}' returned a "
        "value smaller than 1: 0"
    )


# -- Fail: Error, Cause --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "state", "expected"),
    [
        ("JSONPath", {"Error": "E", "Cause": "C"}, ("E", "C")),
        ("JSONPath", {"ErrorPath": "$.e", "CausePath": "$.c"}, ("Oops", '{"why":[1,2]}')),
        (
            "JSONPath",
            {"ErrorPath": "States.Format('{}.Bad', $.e)", "CausePath": "$$.Execution.Name"},
            ("Oops.Bad", "run-1"),
        ),
        ("JSONata", {"Error": "E", "Cause": "C"}, ("E", "C")),
        (
            "JSONata",
            {"Error": "{% $states.input.e %}", "Cause": "{% $string($states.input.c) %}"},
            ("Oops", '{"why":[1,2]}'),
        ),
    ],
)
def test_every_form_of_a_fails_error_and_cause(
    language: str, state: dict[str, JSON], expected: tuple[str, str]
) -> None:
    machine = _one_state({"Type": "Fail", **state}, language)

    assert _failure(_run(machine, {"e": "Oops", "c": {"why": [1, 2]}})) == expected


def test_a_jsonata_error_that_is_no_string_fails_with_query_evaluation_error() -> None:
    machine = _one_state({"Type": "Fail", "Error": "{% 42 %}", "Cause": "C"}, "JSONata")

    error, cause = _failure(_run(machine))

    assert error == "States.QueryEvaluationError"
    assert "'Error'" in cause


def test_teststate_reads_a_non_string_cause_path_as_an_execution_does() -> None:
    # TestState once rendered it with Python's str(): "{'why': [1, 2]}".
    state = {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}
    data = {"e": "Oops", "c": {"why": [1, 2]}}

    response = test_state({"definition": json.dumps(state), "input": json.dumps(data)})

    assert (response["error"], response["cause"]) == _failure(_run(_one_state(state), data))
    assert response["cause"] == '{"why":[1,2]}'


# -- Map: ItemSelector ---------------------------------------------------------------------------


_PROCESSOR = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}


@pytest.mark.parametrize(
    ("language", "selector"),
    [
        ("JSONPath", {"i.$": "$$.Map.Item.Index", "v.$": "$$.Map.Item.Value", "k.$": "$.k"}),
        (
            "JSONata",
            {
                "i": "{% $states.context.Map.Item.Index %}",
                "v": "{% $states.context.Map.Item.Value %}",
                "k": "{% $states.input.k %}",
            },
        ),
        (
            "JSONata",
            "{% {'i': $states.context.Map.Item.Index, 'v': $states.context.Map.Item.Value,"
            " 'k': $states.input.k} %}",
        ),
    ],
)
def test_an_item_selector_binds_each_iterations_item_in_both_languages(
    language: str, selector: JSON
) -> None:
    state: dict[str, JSON] = {
        "Type": "Map",
        "ItemProcessor": _PROCESSOR,
        "ItemSelector": selector,
        "End": True,
    }
    if language == "JSONPath":
        state["ItemsPath"] = "$.xs"
    else:
        state["Items"] = "{% $states.input.xs %}"
    history = _run(_one_state(state, language), {"xs": ["a", "b"], "k": 7})

    assert history[-1].type == "ExecutionSucceeded"
    assert json.loads(history[-1].details["output"]) == [
        {"i": 0, "v": "a", "k": 7},
        {"i": 1, "v": "b", "k": 7},
    ]
