"""A Choice state read by one rule in both query languages (issue 10): each rule's test (a
JSONPath comparison or a JSONata ``Condition``) is compiled into one thing that gives true or
false, the state's and the rule's ``Assign`` and ``Output`` into one value each, so the same
choice written in either language logs the same ``ChoiceStateExited``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.core.decide import decide
from runtime.core.effects import Wake
from runtime.core.events import HistoryEvent
from runtime.definition.model import Choice, StateMachine
from runtime.definition.values import (
    EmptyObject,
    PayloadTemplate,
    Reference,
    StateInput,
    Template,
)
from runtime.teststate import test_state
from tests.core.core_support import T0, given, machine_of, started

JSON = Any

PREFIX = "An error occurred while executing the state 'C' (entered at the event id #2). "


def _machine(language: str, choice: dict[str, JSON]) -> StateMachine:
    states: dict[str, JSON] = {"C": {"Type": "Choice", **choice}, "Big": {"Type": "Succeed"}}
    if "Default" in choice:
        states["Small"] = {"Type": "Succeed"}
    return machine_of({"QueryLanguage": language, "StartAt": "C", "States": states})


def _run(machine: StateMachine, input: JSON) -> list[HistoryEvent]:
    history = [started(input)]
    for _ in range(20):
        if given(history).is_terminal:
            return history
        history.extend(decide(machine, given(history), Wake(now=T0)).events)
    raise AssertionError("not ended")


def _exited(history: list[HistoryEvent]) -> dict[str, JSON]:
    (event,) = (event for event in history if event.type == "ChoiceStateExited")
    return {key: value for key, value in event.details.items() if key != "name"}


def _failure(history: list[HistoryEvent]) -> tuple[str, str]:
    last = history[-1]
    assert last.type == "ExecutionFailed", last.type
    return last.details["error"], last.details["cause"]


JSONPATH_CHOICE = {
    "Choices": [
        {
            "Variable": "$.n",
            "NumericGreaterThan": 10,
            "Next": "Big",
            "Assign": {"size": "big", "n.$": "$.n"},
        }
    ],
    "Default": "Small",
    "Assign": {"seen.$": "$.n", "size": "unknown"},
}
JSONATA_CHOICE = {
    "Choices": [
        {
            "Condition": "{% $states.input.n > 10 %}",
            "Next": "Big",
            "Assign": {"size": "big", "n": "{% $states.input.n %}"},
        }
    ],
    "Default": "Small",
    "Assign": {"seen": "{% $states.input.n %}", "size": "unknown"},
}


@pytest.mark.parametrize(
    ("n", "next_state", "assigned"),
    [
        (11, "Big", {"seen": "11", "size": '"big"', "n": "11"}),
        (3, "Small", {"seen": "3", "size": '"unknown"'}),
    ],
)
def test_the_same_choice_in_both_languages_logs_the_same_exit(
    n: int, next_state: str, assigned: dict[str, str]
) -> None:
    exits = [
        _exited(_run(_machine(language, choice), {"n": n}))
        for language, choice in (("JSONPath", JSONPATH_CHOICE), ("JSONata", JSONATA_CHOICE))
    ]

    assert exits[0] == exits[1]
    assert exits[0]["statemillNext"] == next_state
    assert exits[0]["assignedVariables"] == assigned
    assert exits[0]["output"] == f'{{"n":{n}}}'


def test_the_loader_compiles_each_assign_and_output_into_one_value() -> None:
    jsonpath = _machine("JSONPath", {**JSONPATH_CHOICE, "OutputPath": None}).states["C"]
    jsonata = _machine("JSONata", JSONATA_CHOICE).states["C"]
    assert isinstance(jsonpath, Choice)
    assert isinstance(jsonata, Choice)

    assert isinstance(jsonpath.assign_value, PayloadTemplate)
    assert isinstance(jsonpath.rule_assign[0], PayloadTemplate)
    assert isinstance(jsonpath.output_value, EmptyObject)
    assert jsonpath.rule_output == (None,)
    assert isinstance(jsonata.assign_value, Template)
    assert isinstance(jsonata.rule_assign[0], Template)
    assert isinstance(jsonata.output_value, StateInput)
    plain = _machine("JSONPath", {"Choices": JSONPATH_CHOICE["Choices"], "OutputPath": "$.n"})
    output = plain.states["C"]
    assert isinstance(output, Choice)
    assert isinstance(output.output_value, Reference)
    assert output.output_value.path.text == "$.n"


def test_a_jsonpath_choice_outputs_its_output_path_over_the_effective_input() -> None:
    choice = {"Choices": JSONPATH_CHOICE["Choices"], "Default": "Small", "InputPath": "$.in"}
    for fields, output in (({}, '{"n":12}'), ({"OutputPath": None}, "{}")):
        history = _run(_machine("JSONPath", {**choice, **fields}), {"in": {"n": 12}})
        assert _exited(history)["output"] == output


def test_a_jsonata_rules_output_replaces_the_states_and_the_states_is_the_default() -> None:
    choice = {
        "Choices": [
            {
                "Condition": "{% $states.input.n > 10 %}",
                "Next": "Big",
                "Output": {"rule": "{% $states.input.n %}"},
            },
            {"Condition": "{% $states.input.n > 5 %}", "Next": "Big"},
        ],
        "Default": "Small",
        "Output": {"state": "{% $states.input.n %}"},
    }
    machine = _machine("JSONata", choice)

    outputs = [_exited(_run(machine, {"n": n}))["output"] for n in (11, 7, 1)]

    assert outputs == ['{"rule":11}', '{"state":7}', '{"state":1}']


def test_no_rule_matching_and_no_default_fails_in_both_languages() -> None:
    for language, choice in (("JSONPath", JSONPATH_CHOICE), ("JSONata", JSONATA_CHOICE)):
        history = _run(_machine(language, {"Choices": choice["Choices"]}), {"n": 1})
        assert _failure(history) == ("States.NoChoiceMatched", PREFIX + "No Matches!")


def test_each_language_keeps_its_causes_when_a_rule_cannot_be_evaluated() -> None:
    jsonpath = _run(_machine("JSONPath", JSONPATH_CHOICE), {"m": 1})
    jsonata = _run(
        _machine(
            "JSONata",
            {
                "Choices": [{"Condition": "{% $states.input.n %}", "Next": "Big"}],
                "Default": "Small",
            },
        ),
        {"n": 1},
    )

    assert _failure(jsonpath) == (
        "States.Runtime",
        PREFIX + "Invalid path '$.n': The choice state's condition path references an "
        "invalid value.",
    )
    error, cause = _failure(jsonata)
    assert error == "States.QueryEvaluationError"
    assert cause.startswith(PREFIX)
    assert "Choices[0]/Condition" in cause


@pytest.mark.parametrize(
    ("language", "rule"),
    [
        ("JSONata", {"Condition": "{% true %}", "Next": "Big", "Assign": {"b": 2}}),
        (
            "JSONPath",
            {"Variable": "$.n", "IsPresent": False, "Next": "Big", "Assign": {"b": 2}},
        ),
    ],
)
def test_teststate_assigns_the_states_and_the_rules_variables_as_an_execution_does(
    language: str, rule: dict[str, JSON]
) -> None:
    """The state's Assign applies whichever rule matched and the rule's comes on top (AWS
    guide, "Choice workflow state"); TestState's JSONata Choice kept only the rule's."""
    choice: dict[str, JSON] = {"Assign": {"a": 1, "b": 1}, "Choices": [rule]}
    assigned = _exited(_run(_machine(language, choice), {}))["assignedVariables"]
    state = {"Type": "Choice", "QueryLanguage": language, **choice}
    response = test_state(
        {"definition": json.dumps(state), "input": "{}", "inspectionLevel": "DEBUG"}
    )
    variables = json.loads(response["inspectionData"]["variables"])
    assert variables == {"a": 1, "b": 2}
    assert {name: json.dumps(value) for name, value in variables.items()} == assigned
