"""Payload templates and single ``.$`` expressions, including AWS-recorded cases."""

# ruff: noqa: E501 - tables of AWS messages read best one case per line

from __future__ import annotations

import copy
import importlib.util
import json
import re
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import InvalidDefinition, StatesError
from runtime.lang.payload import Expression, Payload
from runtime.lang.scope import Entropy, Scope
from tests.conformance.harness import CONFORMANCE

SCOPE = Scope(
    context={"Execution": {"Input": {"k": 1}, "Name": "e1"}, "Map": {"Item": {"Value": "v"}}},
    variables={"var": {"x": [1, 2]}, "name": "John"},
    entropy=Entropy(5),
)

TEMPLATES = [
    ({"a": 1, "b": "s", "c": None, "d": [1, {"e": 2}]}, {}, {"a": 1, "b": "s", "c": None, "d": [1, {"e": 2}]}),
    ({"a.$": "$.x"}, {"x": [1]}, {"a": [1]}),
    ({"a.$": "$"}, {"x": 1}, {"a": {"x": 1}}),
    ({"a.$": "$.l[*].v"}, {"l": [{"v": 1}, {}, {"v": 2}]}, {"a": [1, 2]}),
    ({"a.$": "$.missing[*]"}, {}, {"a": []}),
    ({"ctx.$": "$$.Execution.Input.k", "item.$": "$$.Map.Item.Value"}, {}, {"ctx": 1, "item": "v"}),
    ({"v.$": "$var.x[1]", "n.$": "$name"}, {}, {"v": 2, "n": "John"}),
    ({"f.$": "States.Format('Hi {}', $name)"}, {}, {"f": "Hi John"}),
    ({"outer": {"inner": {"a.$": "$.x"}, "k": "c"}}, {"x": 3}, {"outer": {"inner": {"a": 3}, "k": "c"}}),
    ({"l": [{"a.$": "$.x"}, [{"b.$": "$.x"}], 5]}, {"x": 3}, {"l": [{"a": 3}, [{"b": 3}], 5]}),
    ({"Comment": "text", "not_an_intrinsic_function": "States.UUID()"}, {},
     {"Comment": "text", "not_an_intrinsic_function": "States.UUID()"}),
    ({"x.$.y": "$.x"}, {"x": 1}, {"x.$.y": "$.x"}),
    ("plain", {}, "plain"),
    ([1, {"a.$": "$.x"}], {"x": 0}, [1, {"a": 0}]),
]  # fmt: skip


@pytest.mark.parametrize(("template", "data", "expected"), TEMPLATES)
def test_payload(template: Any, data: Any, expected: Any) -> None:
    template_before, data_before = copy.deepcopy(template), copy.deepcopy(data)
    payload = Payload.compile(template, "/States/A/Parameters")
    assert payload.evaluate(data, SCOPE) == expected
    assert payload.evaluate(data, SCOPE) == expected
    assert (template, data) == (template_before, data_before)


def test_output_is_owned_by_the_caller() -> None:
    payload = Payload.compile({"const": {"deep": [1]}, "a.$": "$.x"}, "/p")
    first = payload.evaluate({"x": 1}, SCOPE)
    first["const"]["deep"].append(2)
    assert payload.evaluate({"x": 1}, SCOPE)["const"] == {"deep": [1]}
    constant = Payload.compile({"k": [1]}, "/p")
    assert constant.is_constant
    out = constant.evaluate(None)
    out["k"].append(2)
    assert constant.evaluate(None) == {"k": [1]}


INVALID = [
    ({"parsed.$": "States.StringToJson('{\"text\":\"An \\\"escaped double quote\\\" here\"}')"},
     "parsed.$", "/States/IntrinsicEscape/Parameters"),
    ({"parsed.$": "States.Format('He said, \\\"Hello, {}!\\\"', 'Test \\\"Name\\\" Here')"},
     "parsed.$", "/States/IntrinsicEscape/Parameters"),
    ({"a.$": "x"}, "a.$", "/States/IntrinsicEscape/Parameters"),
    ({"a.$": "$."}, "a.$", "/States/IntrinsicEscape/Parameters"),
    ({"a.$": 5}, "a.$", "/States/IntrinsicEscape/Parameters"),
    ({"a.$": "States.Nope()"}, "a.$", "/States/IntrinsicEscape/Parameters"),
    ({"n": {"a/b": {"x.$": "nope"}}}, "x.$", "/States/IntrinsicEscape/Parameters/n/a~1b"),
    ({"n": [0, {"x.$": "nope"}]}, "x.$", "/States/IntrinsicEscape/Parameters/n/1"),
]  # fmt: skip


@pytest.mark.parametrize(("template", "field", "pointer"), INVALID)
def test_invalid_templates(template: Any, field: str, pointer: str) -> None:
    with pytest.raises(InvalidDefinition) as info:
        Payload.compile(template, "/States/IntrinsicEscape/Parameters")
    assert info.value.code == "SCHEMA_VALIDATION_FAILED"
    assert info.value.pointer == pointer
    assert info.value.message == (
        f"Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The value for the field "
        f"'{field}' must be a valid JSONPath or a valid intrinsic function call at {pointer}'"
    )


@pytest.mark.parametrize(
    ("template", "data", "cause"),
    [
        ({"value.$": "$.no_such_jsonpath"}, {"int-literal": 0},
         "The JSONPath '$.no_such_jsonpath' specified for the field 'value.$' could not be found "
         "in the input '{\"int-literal\":0}'"),
        ({"value.$": "$$.Execution.Input.no_such_jsonpath"}, {"int-literal": 0},
         "The JSONPath '$$.Execution.Input.no_such_jsonpath' specified for the field 'value.$' "
         "could not be found in the input '{\"Execution\":{\"Input\":{\"k\":1},\"Name\":\"e1\"},"
         "\"Map\":{\"Item\":{\"Value\":\"v\"}}}'"),
        ({"n": {"deep.$": "$.a.b"}}, {"a": "é"},
         "The JSONPath '$.a.b' specified for the field 'deep.$' could not be found in the input "
         "'{\"a\":\"é\"}'"),
        ({"v.$": "States.Array($.zz)"}, {},
         "The JSONPath '$.zz' specified for the field 'v.$' could not be found in the input '{}'"),
    ],
)  # fmt: skip
def test_path_not_found_is_states_runtime(template: Any, data: Any, cause: str) -> None:
    with pytest.raises(StatesError, match=re.escape(cause)) as info:
        Payload.compile(template, "/p").evaluate(data, SCOPE)
    assert info.value.error == "States.Runtime"
    assert info.value.cause == cause


def test_intrinsic_failure_propagates() -> None:
    with pytest.raises(StatesError, match=r"Invalid arguments in States\.ArrayGetItem") as info:
        Payload.compile({"v.$": "States.ArrayGetItem($.l, 5)"}, "/p").evaluate({"l": []}, SCOPE)
    assert info.value.error == "States.IntrinsicFailure"


def test_expression() -> None:
    path = Expression.compile("$.a", "ErrorPath", "/States/F")
    assert path.path is not None
    assert path.intrinsic is None
    assert path.evaluate({"a": "E"}, SCOPE) == "E"
    with pytest.raises(
        StatesError,
        match=re.escape(
            "The JSONPath '$.a' specified for the field 'ErrorPath' could not be found in the "
            "input '{}'"
        ),
    ):
        path.evaluate({}, SCOPE)
    call = Expression.compile("States.Format('{}-{}', $.a, $$.Execution.Name)", "CausePath", "/")
    assert call.intrinsic is not None
    assert call.evaluate({"a": 1}, SCOPE) == "1-e1"
    with pytest.raises(InvalidDefinition, match="The value for the field 'CausePath' must be"):
        Expression.compile("nope", "CausePath", "/States/F")
    with pytest.raises(AttributeError):
        path.text = "x"


# ---------------------------------------------------------------------------------------------
# AWS recordings: single Pass states whose output is their Parameters
# ---------------------------------------------------------------------------------------------


def _compare_module() -> ModuleType | None:
    source = CONFORMANCE / "compare.py"
    if not source.exists():
        return None
    spec = importlib.util.spec_from_file_location("conformance_compare", source)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pass_cases() -> list[Any]:
    cases = []
    for file in sorted((CONFORMANCE / "cases").glob("*.json")):
        case = json.loads(file.read_text())
        definition = case["definition"]
        states = definition.get("States", {})
        state = states.get(definition.get("StartAt"), {})
        if (
            len(states) == 1
            and state.get("Type") == "Pass"
            and "Parameters" in state
            and definition.get("QueryLanguage", "JSONPath") == "JSONPath"
            and not {"InputPath", "OutputPath", "ResultPath"} & set(state)
        ):
            cases.append(pytest.param(case, id=case["id"]))
    return cases


COMPARE = _compare_module()
PASS_CASES = _pass_cases() if COMPARE else []


@pytest.mark.conformance
@pytest.mark.skipif(COMPARE is None, reason="conformance cases not found at ../shared/conformance")
@pytest.mark.parametrize("case", PASS_CASES)
def test_recorded_pass_parameters(case: dict[str, Any]) -> None:
    assert COMPARE is not None
    name = case["definition"]["StartAt"]
    context = {
        "Execution": {"Input": case["input"], "Name": "exec-name", "Id": "arn:exec"},
        "StateMachine": {
            "Id": "arn:aws:states:us-east-1:123456789012:stateMachine:sm-name",
            "Name": "sm-name",
        },
        "State": {"Name": name, "EnteredTime": "date"},
    }
    template = case["definition"]["States"][name]["Parameters"]
    try:
        output = Payload.compile(template, f"/States/{name}/Parameters").evaluate(
            case["input"], Scope(context=context, entropy=Entropy(0))
        )
        result: dict[str, Any] = {"status": "SUCCEEDED", "output": output}
    except StatesError as exc:
        prefix = (
            f"An error occurred while executing the state '{name}' (entered at the event id #2). "
        )
        result = {"status": "FAILED", "error": exc.error, "cause": prefix + exc.cause}
    passed, category, detail = COMPARE.compare_execution(case, result)
    assert passed, f"{category}: {detail}"


def _validation_cases() -> list[Any]:
    cases = []
    for file in sorted((CONFORMANCE / "validation").glob("*.json")):
        case = json.loads(file.read_text())
        if "must be a valid JSONPath or a valid intrinsic" in case["expected"].get("message", ""):
            cases.append(pytest.param(case, id=case["id"]))
    return cases


@pytest.mark.conformance
@pytest.mark.skipif(COMPARE is None, reason="conformance cases not found at ../shared/conformance")
@pytest.mark.parametrize("case", _validation_cases() if COMPARE else [])
def test_recorded_invalid_payloads(case: dict[str, Any]) -> None:
    definition = case["definition"]
    (name, state), *_ = definition["States"].items()
    with pytest.raises(InvalidDefinition) as info:
        Payload.compile(state["Parameters"], f"/States/{name}/Parameters")
    assert info.value.message == case["expected"]["message"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=12,
)  # fmt: skip
PROPERTY_TEMPLATE = {
    "p.$": "$.a",
    "q.$": "$.a[0].b",
    "r.$": "$..b",
    "s": [{"t.$": "States.Format('{}', $.b)"}, {"u.$": "States.ArrayLength($.a)"}],
    "v.$": "States.JsonMerge($.a, $.b, false)",
    "w.$": "States.MathAdd($.a, $.b)",
    "x.$": "States.StringToJson(States.JsonToString($))",
}


@given(data=st.one_of(JSON_VALUES, st.fixed_dictionaries({"a": JSON_VALUES, "b": JSON_VALUES})))
def test_only_states_errors_escape(data: Any) -> None:
    before = copy.deepcopy(data)
    payload = Payload.compile(PROPERTY_TEMPLATE, "/p")
    singles = [Payload.compile({k: v}, "/p") for k, v in PROPERTY_TEMPLATE.items()]
    for compiled in [payload, *singles]:
        try:
            compiled.evaluate(data, SCOPE)
        except StatesError as exc:
            error: str | None = exc.error
        else:
            error = None
        assert error in {None, "States.Runtime", "States.IntrinsicFailure"}
    assert data == before
