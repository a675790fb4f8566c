"""``load_definition`` builds the model with ASL's defaults and compiles everything once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.definition import (
    Choice,
    Fail,
    Map,
    Parallel,
    Pass,
    StateMachine,
    Succeed,
    Task,
    Wait,
    load_definition,
)
from runtime.definition.values import Constant, Expression, Reference, Template
from runtime.lang.jsonata import compile_expression
from runtime.lang.jsonata_functions import Env
from runtime.lang.paths import Path
from runtime.lang.scope import Scope
from tests.lang.given import Given


def machine(states: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states, **top}


def test_accepts_text_bytes_and_mapping() -> None:
    definition = machine({"P": {"Type": "Pass", "End": True}}, Comment="hi", TimeoutSeconds=5)
    for source in (definition, json.dumps(definition), json.dumps(definition).encode()):
        loaded = load_definition(source)
        assert isinstance(loaded, StateMachine)
        assert loaded.comment == "hi"
        assert loaded.timeout_seconds == 5
        assert loaded.source == definition
        assert loaded.pointer == ""


def test_io_path_defaults_and_nulls() -> None:
    loaded = load_definition(
        machine(
            {
                "A": {"Type": "Pass", "Next": "B"},
                "B": {
                    "Type": "Pass",
                    "InputPath": None,
                    "ResultPath": None,
                    "OutputPath": "$.x",
                    "End": True,
                },
            }
        )
    )
    a, b = loaded.states["A"], loaded.states["B"]
    assert isinstance(a, Pass)
    assert isinstance(b, Pass)
    assert a.io.input_path is not None
    assert a.io.input_path.text == "$"
    assert a.io.output_path is not None
    assert a.io.output_path.text == "$"
    assert a.io.result_path is not None
    assert a.io.result_path.text == "$"
    assert not a.io.input_path_null
    assert not a.io.result_path_null
    assert not a.io.output_path_null
    assert b.io.input_path is None
    assert b.io.input_path_null
    assert b.io.result_path is None
    assert b.io.result_path_null
    assert b.io.output_path is not None
    assert b.io.output_path.text == "$.x"
    assert a.next == "B"
    assert not a.end
    assert b.end
    assert b.pointer == "/States/B"


def test_pass_result_flag() -> None:
    loaded = load_definition(
        machine(
            {"A": {"Type": "Pass", "Result": None, "Next": "B"}, "B": {"Type": "Pass", "End": True}}
        )
    )
    a, b = loaded.states["A"], loaded.states["B"]
    assert isinstance(a, Pass)
    assert isinstance(b, Pass)
    assert a.has_result
    assert a.result is None
    assert not b.has_result


def test_task_retry_defaults_and_catchers() -> None:
    loaded = load_definition(
        machine(
            {
                "T": {
                    "Type": "Task",
                    "Resource": "arn:aws:lambda:us-east-1:000000000000:function:f",
                    "TimeoutSeconds": 10,
                    "HeartbeatSeconds": 5,
                    "Retry": [
                        {"ErrorEquals": ["Custom"]},
                        {
                            "ErrorEquals": ["States.ALL"],
                            "IntervalSeconds": 3,
                            "MaxAttempts": 0,
                            "BackoffRate": 1.5,
                            "MaxDelaySeconds": 9,
                            "JitterStrategy": "FULL",
                        },
                    ],
                    "Catch": [
                        {"ErrorEquals": ["A"], "Next": "F"},
                        {"ErrorEquals": ["B"], "ResultPath": "$.err", "Next": "F"},
                        {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "F"},
                    ],
                    "End": True,
                },
                "F": {"Type": "Fail", "Error": "E", "Cause": "C"},
            }
        )
    )
    task = loaded.states["T"]
    assert isinstance(task, Task)
    assert task.timeout_seconds == Constant(field="TimeoutSeconds", value=10)
    assert task.heartbeat_seconds == Constant(field="HeartbeatSeconds", value=5)
    first, second = task.retry
    assert (first.interval_seconds, first.max_attempts, first.backoff_rate) == (1, 3, 2.0)
    assert first.max_delay_seconds is None
    assert first.jitter_strategy == "NONE"
    assert (second.interval_seconds, second.max_attempts, second.backoff_rate) == (3, 0, 1.5)
    assert (second.max_delay_seconds, second.jitter_strategy) == (9, "FULL")
    absent, explicit, null = task.catch
    assert absent.result_path is not None
    assert absent.result_path.text == "$"
    assert not absent.result_path_set
    assert null.result_path is None
    assert null.result_path_set
    assert explicit.result_path is not None
    assert explicit.result_path.text == "$.err"
    fail = loaded.states["F"]
    assert isinstance(fail, Fail)
    assert fail.error == Constant(field="Error", value="E")
    assert fail.cause == Constant(field="Cause", value="C")


def test_choice_rules_compiled() -> None:
    loaded = load_definition(
        machine(
            {
                "C": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
                    "Default": "Small",
                },
                "Big": {"Type": "Succeed"},
                "Small": {"Type": "Succeed"},
            }
        )
    )
    choice = loaded.states["C"]
    assert isinstance(choice, Choice)
    assert choice.default == "Small"
    (rule,) = choice.choices
    assert rule.next == "Big"
    assert rule.pointer == "/States/C/Choices[0]"
    assert rule.matches(Given({"n": 2}, Scope()))
    assert not rule.matches(Given({"n": 1}, Scope()))
    assert isinstance(loaded.states["Big"], Succeed)


def test_wait_fields() -> None:
    loaded = load_definition(
        machine(
            {
                "A": {"Type": "Wait", "Seconds": 0, "Next": "B"},
                "B": {"Type": "Wait", "Timestamp": "2016-03-14T01:59:00Z", "Next": "C"},
                "C": {"Type": "Wait", "SecondsPath": "$.s", "Next": "D"},
                "D": {"Type": "Wait", "TimestampPath": "$.t", "End": True},
            }
        )
    )
    a, b, c, d = (loaded.states[n] for n in "ABCD")
    assert isinstance(a, Wait)
    assert isinstance(b, Wait)
    assert isinstance(c, Wait)
    assert isinstance(d, Wait)
    assert a.seconds == Constant(field="Seconds", value=0)
    assert b.timestamp == Constant(field="Timestamp", value="2016-03-14T01:59:00Z")
    assert c.seconds == Reference(field="Seconds", path=Path.compile("$.s"))
    assert d.timestamp == Reference(field="Timestamp", path=Path.compile("$.t"))
    assert (a.timestamp, b.seconds, c.timestamp, d.seconds) == (None, None, None, None)


def test_map_legacy_fields_and_defaults() -> None:
    loaded = load_definition(
        machine(
            {
                "M": {
                    "Type": "Map",
                    "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                    "Parameters": {"v.$": "$$.Map.Item.Value"},
                    "End": True,
                }
            }
        )
    )
    state = loaded.states["M"]
    assert isinstance(state, Map)
    assert state.max_concurrency is None  # no limit
    assert state.mode == "INLINE"
    assert state.item_selector is not None
    assert state.items == Reference(field="Items", path=Path.compile("$"))
    assert state.processor.start_at == "I"
    assert state.processor.pointer == "/States/M/Iterator"


def test_distributed_map() -> None:
    loaded = load_definition(
        machine(
            {
                "M": {
                    "Type": "Map",
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                        "StartAt": "I",
                        "States": {"I": {"Type": "Pass", "End": True}},
                    },
                    "ItemsPath": "$.items",
                    "MaxConcurrency": 5,
                    "ToleratedFailurePercentage": 12.5,
                    "ToleratedFailureCountPath": "$.count",
                    "Label": "my-label_1",
                    "ItemBatcher": {"MaxItemsPerBatch": 2},
                    "End": True,
                }
            }
        )
    )
    state = loaded.states["M"]
    assert isinstance(state, Map)
    assert (state.mode, state.execution_type) == ("DISTRIBUTED", "EXPRESS")
    assert state.max_concurrency == Constant(field="MaxConcurrency", value=5)
    assert state.tolerated_failure_percentage == Constant(
        field="ToleratedFailurePercentage", value=12.5
    )
    assert state.tolerated_failure_count == Reference(
        field="ToleratedFailureCount", path=Path.compile("$.count")
    )
    assert state.items == Reference(field="Items", path=Path.compile("$.items"))
    assert state.label == "my-label_1"
    assert state.item_batcher is not None
    assert state.item_batcher.max_items_per_batch == Constant(field="MaxItemsPerBatch", value=2)


def test_parallel_branches() -> None:
    loaded = load_definition(
        machine(
            {
                "P": {
                    "Type": "Parallel",
                    "Branches": [
                        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                        {"StartAt": "B", "States": {"B": {"Type": "Pass", "End": True}}},
                    ],
                    "ResultSelector": {"first.$": "$[0]"},
                    "End": True,
                }
            }
        )
    )
    state = loaded.states["P"]
    assert isinstance(state, Parallel)
    assert [b.start_at for b in state.branches] == ["A", "B"]
    assert state.branches[1].pointer == "/States/P/Branches[1]"
    assert state.result_selector is not None


def test_jsonata_fields_are_kept_raw() -> None:
    loaded = load_definition(
        machine(
            {
                "T": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Arguments": {"FunctionName": "f", "Payload": "{% $states.input %}"},
                    "Output": "{% $states.result.Payload %}",
                    "Assign": {"x": "{% 1 %}"},
                    "TimeoutSeconds": "{% $timeout %}",
                    "Next": "M",
                },
                "M": {
                    "Type": "Map",
                    "Items": "{% [1, 2] %}",
                    "ItemSelector": {"v": "{% $states.context.Map.Item.Value %}"},
                    "MaxConcurrency": "{% 2 %}",
                    "ItemProcessor": {
                        "StartAt": "I",
                        "States": {"I": {"Type": "Pass", "End": True}},
                    },
                    "Next": "W",
                },
                "W": {"Type": "Wait", "Seconds": "{% 1 %}", "Next": "C"},
                "C": {
                    "Type": "Choice",
                    "Choices": [{"Condition": "{% $states.input.ok %}", "Next": "F"}],
                    "Default": "S",
                },
                "F": {"Type": "Fail", "Error": "{% 'E' %}", "Cause": "plain"},
                "S": {"Type": "Succeed", "Output": None},
            },
            QueryLanguage="JSONata",
        )
    )
    assert loaded.query_language == "JSONata"
    task = loaded.states["T"]
    assert isinstance(task, Task)
    assert task.query_language == "JSONata"
    assert task.arguments == Template.of(
        "Arguments", {"FunctionName": "f", "Payload": "{% $states.input %}"}
    )
    assert task.output_value == Expression(
        field="Output", expression=compile_expression("{% $states.result.Payload %}")
    )
    assert task.assign_value == Template.of("Assign", {"x": "{% 1 %}"})
    assert task.timeout_seconds == Expression(
        field="TimeoutSeconds", expression=compile_expression("{% $timeout %}")
    )
    assert task.heartbeat_seconds is None
    mapped = loaded.states["M"]
    assert isinstance(mapped, Map)
    assert mapped.items == Expression(field="Items", expression=compile_expression("{% [1, 2] %}"))
    assert mapped.item_selector == Template.of(
        "ItemSelector", {"v": "{% $states.context.Map.Item.Value %}"}
    )
    assert mapped.max_concurrency == Expression(
        field="MaxConcurrency", expression=compile_expression("{% 2 %}")
    )
    assert mapped.processor.query_language == "JSONata"
    wait = loaded.states["W"]
    assert isinstance(wait, Wait)
    assert wait.seconds == Expression(field="Seconds", expression=compile_expression("{% 1 %}"))
    choice = loaded.states["C"]
    assert isinstance(choice, Choice)
    (rule,) = choice.choices
    assert rule.matches(Given(None, env=Env({"input": {"ok": True}})))
    assert not rule.matches(Given(None, env=Env({"input": {"ok": False}})))
    fail = loaded.states["F"]
    assert isinstance(fail, Fail)
    assert fail.error == Expression(field="Error", expression=compile_expression("{% 'E' %}"))
    assert fail.cause == Constant(field="Cause", value="plain")
    succeed = loaded.states["S"]
    assert isinstance(succeed, Succeed)
    assert succeed.output_value == Template.of("Output", None)


def test_nested_states_inherit_the_machine_language() -> None:
    """AWS: a Map's own QueryLanguage does not flow into its ItemProcessor."""
    loaded = load_definition(
        machine(
            {
                "M": {
                    "Type": "Map",
                    "QueryLanguage": "JSONata",
                    "ItemProcessor": {
                        "StartAt": "I",
                        "States": {"I": {"Type": "Pass", "Result": 1, "End": True}},
                    },
                    "End": True,
                }
            }
        )
    )
    state = loaded.states["M"]
    assert isinstance(state, Map)
    assert state.query_language == "JSONata"
    assert state.processor.states["I"].query_language == "JSONPath"


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "arn:aws:states:::states:startExecution",
        "arn:aws:states:::states:startExecution.sync",
        "arn:aws:states:::states:startExecution.sync:2",
        "arn:aws:states:::http:invoke",
        "arn:aws:states:::aws-sdk:dynamodb:query",
        "arn:aws:states:::dynamodb:putItem",
        "arn:aws:lambda:us-east-1:000000000000:function:f",
        "arn:aws:lambda:us-east-1:000000000000:function:f:prod",
        "arn:aws:states:us-east-1:000000000000:activity:work",
        "my_python_handler",
    ],
)
def test_resources_accepted(resource: str) -> None:
    load_definition(machine({"T": {"Type": "Task", "Resource": resource, "End": True}}))
