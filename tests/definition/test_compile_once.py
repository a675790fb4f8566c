"""Compile once (issue 10 part 1): what run time needs is in the model, built at load time.

``Assign`` and JSONata ``Output`` arrive compiled (``assign_value``, ``output_value``), a Pass
knows whether it is plain (``is_plain``), a Task's resource is resolved (``resolved_resource``),
and ``runtime.definition`` holds no mutable module-level state (no caches, no registries).
"""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

import runtime.definition
from runtime.definition import (
    Catcher,
    Choice,
    Pass,
    Task,
    limits,
    load,
    load_definition,
    model,
    validate,
)
from runtime.definition.values import Expression, PayloadTemplate, Template
from runtime.errors import InvalidDefinition
from runtime.lang.jsonata import compile_expression
from runtime.lang.jsonata_engine import QueryEvaluationError
from runtime.lang.jsonata_functions import Env
from runtime.lang.payload import Payload
from runtime.lang.scope import Scope


def one(state: dict[str, Any], **top: Any) -> Any:
    """State ``S`` of a machine, with a Succeed state ``E`` when ``S`` names it."""
    states: dict[str, Any] = {"S": state}
    if '"E"' in json.dumps(state):
        states["E"] = {"Type": "Succeed"}
    machine = load_definition({"StartAt": "S", "States": states, **top})
    return machine.states["S"]


def test_jsonpath_assign_is_compiled_at_load() -> None:
    state = one({"Type": "Pass", "Assign": {"v.$": "$.a", "k": [1]}, "End": True})
    assert isinstance(state, Pass)
    assert isinstance(state.assign_value, PayloadTemplate)
    assert isinstance(state.assign_value.payload, Payload)
    assert state.assign_value.payload.evaluate({"a": 7}, Scope()) == {"v": 7, "k": [1]}
    assert state.output_value is None  # JSONPath has no Output


def test_jsonata_assign_and_output_are_compiled_at_load() -> None:
    state = one(
        {"Type": "Pass", "Assign": {"v": "{% 1 %}"}, "Output": "{% 2 %}", "End": True},
        QueryLanguage="JSONata",
    )
    assert isinstance(state, Pass)
    assert state.assign_value == Template.of("Assign", {"v": "{% 1 %}"})
    assert state.output_value == Expression(
        field="Output", expression=compile_expression("{% 2 %}")
    )
    assert not state.is_plain


def test_jsonata_catcher_assign_and_output_are_compiled_at_load() -> None:
    task = one(
        {
            "Type": "Task",
            "Resource": "h",
            "End": True,
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "Next": "E",
                    "Assign": {"e": "{% $states.errorOutput.Error %}"},
                    "Output": None,
                }
            ],
        },
        QueryLanguage="JSONata",
    )
    assert isinstance(task, Task)
    catcher = task.catch[0]
    assert catcher.output_value == Template.of("Output", None)  # JSON null
    assert catcher.assign_value == Template.of("Assign", {"e": "{% $states.errorOutput.Error %}"})


def test_an_invalid_jsonata_output_fails_at_load() -> None:
    with pytest.raises(InvalidDefinition) as raised:
        one({"Type": "Pass", "Output": "{% $x( %}", "End": True}, QueryLanguage="JSONata")
    assert raised.value.pointer == "/States/S/Output"


def test_catcher_and_choice_rule_assign_are_compiled() -> None:
    task = one(
        {
            "Type": "Task",
            "Resource": "h",
            "End": True,
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "E", "Assign": {"e.$": "$.Error"}}],
        }
    )
    assert isinstance(task, Task)
    catcher = task.catch[0]
    assert isinstance(catcher, Catcher)
    assert isinstance(catcher.assign_value, PayloadTemplate)
    assert catcher.assign_value.payload.evaluate({"Error": "X"}, Scope()) == {"e": "X"}
    assert catcher.output_value is None
    choice = one(
        {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.x", "IsPresent": True, "Next": "E", "Assign": {"y.$": "$.x"}},
                {"Variable": "$.x", "IsNull": True, "Next": "E"},
            ],
            "Default": "E",
        }
    )
    assert isinstance(choice, Choice)
    first, second = choice.rule_assign
    assert isinstance(first, PayloadTemplate)
    assert first.payload.evaluate({"x": 2}, Scope()) == {"y": 2}
    assert second is None


@pytest.mark.parametrize(
    ("fields", "plain"),
    [
        ({}, True),
        ({"InputPath": "$", "ResultPath": "$", "OutputPath": "$"}, True),
        ({"InputPath": "$.a"}, False),
        ({"OutputPath": None}, False),
        ({"ResultPath": None}, False),
        ({"Result": None}, False),
        ({"Parameters": {"a": 1}}, False),
        ({"Assign": {"a": 1}}, False),
    ],
)
def test_is_plain_pass(fields: dict[str, Any], plain: bool) -> None:
    state = one({"Type": "Pass", "End": True, **fields})
    assert isinstance(state, Pass)
    assert state.is_plain is plain


def test_is_plain_pass_in_jsonata() -> None:
    assert one({"Type": "Pass", "End": True}, QueryLanguage="JSONata").is_plain is True
    output = one({"Type": "Pass", "Output": 1, "End": True}, QueryLanguage="JSONata")
    assert output.is_plain is False


LAMBDA = "arn:aws:lambda:us-east-1:000000000000:function:fn"
ACTIVITY = "arn:aws:states:us-east-1:123456789012:activity:act"


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (LAMBDA, {"kind": "lambda", "handler_name": "fn", "pattern": "request-response"}),
        (LAMBDA + ":live", {"kind": "lambda", "handler_name": "fn", "function_qualifier": "live"}),
        (
            "arn:aws:states:::lambda:invoke",
            {"kind": "lambda-invoke", "handler_name": None, "resource_type": "lambda"},
        ),
        (
            "arn:aws:states:::lambda:invoke.waitForTaskToken",
            {
                "kind": "lambda-invoke",
                "pattern": ".waitForTaskToken",
                "has_task_token": True,
                "resource_action": "invoke.waitForTaskToken",
                "base": "arn:aws:states:::lambda:invoke",
            },
        ),
        (ACTIVITY, {"kind": "activity", "has_task_token": True, "handler_name": ACTIVITY}),
        (
            "arn:aws:states:::states:startExecution.sync:2",
            {
                "kind": "start-execution",
                "pattern": ".sync:2",
                "base": "arn:aws:states:::states:startExecution",
                "resource_type": "states",
                "resource_action": "startExecution.sync:2",
            },
        ),
        ("arn:aws:states:::states:startExecution.sync", {"pattern": ".sync"}),
        ("arn:aws:states:::http:invoke", {"kind": "http", "pattern": "request-response"}),
        (
            "arn:aws:states:::aws-sdk:s3:getObject",
            {"kind": "service", "resource_type": "aws-sdk", "resource_action": "s3:getObject"},
        ),
        (
            "approve.waitForTaskToken",
            {
                "kind": "handler",
                "pattern": ".waitForTaskToken",
                "has_task_token": True,
                "handler_name": "approve.waitForTaskToken",
                "base": "approve",
                "resource_type": "statemill",
            },
        ),
        ("my-handler", {"kind": "handler", "handler_name": "my-handler", "has_task_token": False}),
    ],
)
def test_task_resource_is_resolved_at_load(resource: str, expected: dict[str, Any]) -> None:
    task = one({"Type": "Task", "Resource": resource, "End": True})
    assert isinstance(task, Task)
    resolved = task.resolved_resource
    assert {name: getattr(resolved, name) for name in expected} == expected
    assert resolved.is_lambda is (resolved.kind in ("lambda", "lambda-invoke"))


_MUTABLE = (dict, list, set, bytearray)


@pytest.mark.parametrize("module", [runtime.definition, limits, load, model, validate])
def test_no_mutable_module_level_state(module: types.ModuleType) -> None:
    """Tables are read-only (``MappingProxyType``, ``frozenset``, tuples); no module keeps a
    cache (``functools.cache``/``lru_cache`` wrappers) or a registry."""
    for name, value in vars(module).items():
        if name == "__all__" or name.startswith("__"):
            continue
        if isinstance(value, types.ModuleType | type):
            continue
        assert not isinstance(value, _MUTABLE), f"{module.__name__}.{name} is mutable"
        assert not hasattr(value, "cache_info"), f"{module.__name__}.{name} is a cache"


def test_a_jsonata_template_is_never_compiled_at_run_time() -> None:
    """Issue 10: a template's expressions are compiled with the state, so evaluating it
    neither compiles nor looks an expression up by its text (the compile cache is untouched)."""
    state = one(
        {
            "Type": "Pass",
            "Output": {"a": ["{% $states.input.n + 1 %}", {"b": "{% $x %}"}], "c": "text"},
            "End": True,
        },
        QueryLanguage="JSONata",
    )
    value = state.output_value
    assert isinstance(value, Template)
    before = compile_expression.cache_info()
    env = Env({"input": {"n": 1}}, {"x": "y"})
    first = value.compiled.evaluate(env)
    second = value.compiled.evaluate(env)
    assert first == {"a": [2, {"b": "y"}], "c": "text"}
    assert first is not second  # fresh objects each time
    assert first["a"] is not second["a"]
    assert compile_expression.cache_info() == before


def test_an_expression_nested_in_a_template_is_named_as_aws_names_it() -> None:
    state = one(
        {"Type": "Pass", "Output": {"a": [0, {"b": "{% $nope %}"}]}, "End": True},
        QueryLanguage="JSONata",
    )
    with pytest.raises(QueryEvaluationError) as raised:
        state.output_value.compiled.evaluate(Env({"input": {}}))
    assert raised.value.location == "Output/a[1]/b"


def test_task_and_parallel_arguments_are_compiled_at_load() -> None:
    task = one(
        {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Arguments": {"Payload": {"token": "{% $states.context.Task.Token %}"}},
            "End": True,
        },
        QueryLanguage="JSONata",
    )
    assert task.arguments == Template.of(
        "Arguments", {"Payload": {"token": "{% $states.context.Task.Token %}"}}
    )
    whole = one(
        {
            "Type": "Parallel",
            "Arguments": "{% $states.input.items %}",
            "Branches": [{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}],
            "End": True,
        },
        QueryLanguage="JSONata",
    )
    assert whole.arguments == Expression(
        field="Arguments", expression=compile_expression("{% $states.input.items %}")
    )
    absent = one({"Type": "Pass", "End": True}, QueryLanguage="JSONata")
    assert not hasattr(absent, "arguments")
