"""Focused tests of the TestState rules ``runtime.teststate`` implements: AWS's refusals, the
inspection data per state type, Retry/Catch as TestState reports them, Map tolerance, the
context object and the handler call."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from runtime.engine.handlers import TaskContext
from runtime.errors import InvalidDefinition, TaskFailed
from runtime.teststate import TestStateError, test_state

JSON = Any
ROLE = "arn:aws:iam::123456789012:role/Tester"


def _run(state: dict[str, JSON], data: JSON = None, **params: JSON) -> dict[str, JSON]:
    request: dict[str, JSON] = {"definition": json.dumps(state), **params}
    if data is not None:
        request["input"] = json.dumps(data)
    return test_state(request)


def _inspection(response: dict[str, JSON]) -> dict[str, JSON]:
    """The inspection data with its JSON-text values decoded."""
    return {
        key: json.loads(value) if isinstance(value, str) else value
        for key, value in response["inspectionData"].items()
    }


MAP_TASK = {
    "Type": "Map",
    "ItemsPath": "$.items",
    "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": True}}},
    "End": True,
}
RETRY_TASK = {
    "Type": "Task",
    "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": "f"},
    "Retry": [
        {"ErrorEquals": ["Other"], "MaxAttempts": 1},
        {
            "ErrorEquals": ["Boom"],
            "IntervalSeconds": 3,
            "MaxAttempts": 4,
            "BackoffRate": 2.0,
            "MaxDelaySeconds": 20,
        },
    ],
    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handler"}],
    "End": True,
}
BOOM = {"errorOutput": {"error": "Boom", "cause": "it broke"}}


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "params", "code", "message"),
    [
        (
            RETRY_TASK,
            {"mock": {"result": "{}", **BOOM}},
            "ValidationException",
            "only one of the following fields: [result, errorOutput]",
        ),
        (
            RETRY_TASK,
            {"mock": {"result": "{}"}, "revealSecrets": True},
            "ValidationException",
            "does not support RevealSecrets",
        ),
        (
            {"Type": "Wait", "Seconds": 1, "End": True},
            {"mock": {"result": "{}"}},
            "ValidationException",
            "State type 'Wait' is not supported when a mock is specified",
        ),
        (MAP_TASK, {}, "InvalidDefinition", "does not support Map or Parallel states"),
        (
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "End": True,
            },
            {},
            "InvalidDefinition",
            ".waitForTaskToken",
        ),
        (
            {**MAP_TASK, "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject"}},
            {"mock": {"result": "[]"}},
            "ValidationException",
            "Mocked result must be a JSON object.",
        ),
        (
            RETRY_TASK,
            {"mock": {"result": "{}"}, "context": json.dumps({"Map": {}})},
            "ValidationException",
            "'Map' field is not supported",
        ),
        (
            RETRY_TASK,
            {"mock": {"result": "{}"}, "context": json.dumps({"State": {"Name": 3}})},
            "ValidationException",
            "State.Name must be a string",
        ),
        (
            {"Type": "Pass", "End": True},
            {"input": "{not json"},
            "InvalidExecutionInput",
            "Invalid State Machine Execution Input",
        ),
    ],
)
def test_refused_calls(state: JSON, params: JSON, code: str, message: str) -> None:
    with pytest.raises(
        TestStateError, match=message.replace("[", r"\[").replace(".", r"\.")
    ) as info:
        test_state({"definition": json.dumps(state), **params})
    assert info.value.code == code


def test_parallel_mock_needs_one_result_per_branch() -> None:
    branches = [{"StartAt": name, "States": {name: {"Type": "Pass", "End": True}}} for name in "AB"]
    state = {"Type": "Parallel", "Branches": branches, "End": True}
    with pytest.raises(TestStateError, match="same number of items as number of Parallel"):
        _run(state, mock={"result": "[1, 2, 3]"})
    assert json.loads(_run(state, mock={"result": "[1, 2]"})["output"]) == [1, 2]


def test_invalid_state_names_its_pointer_under_StateName() -> None:
    with pytest.raises(InvalidDefinition) as info:
        _run({"Type": "Pass", "InputPath": 3, "End": True})
    assert info.value.pointer.startswith("/States/StateName")


def test_state_name_must_exist() -> None:
    machine = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    with pytest.raises(TestStateError, match="'Missing' does not exist") as info:
        test_state({"definition": json.dumps(machine), "stateName": "Missing"})
    assert info.value.code == "ValidationException"


# -- data flow and inspection ------------------------------------------------------------------


def test_info_level_returns_no_inspection_data() -> None:
    response = _run({"Type": "Pass", "End": True}, {"a": 1})
    assert response == {"status": "SUCCEEDED", "output": '{"a":1}'}


def test_pass_inspection_without_and_with_result() -> None:
    plain = _run(
        {"Type": "Pass", "InputPath": "$.a", "ResultPath": "$.b", "Next": "N"},
        {"a": {"x": 1}},
        inspectionLevel="DEBUG",
    )
    assert plain["nextState"] == "N"
    assert _inspection(plain) == {
        "input": {"a": {"x": 1}},
        "afterInputPath": {"x": 1},
        "afterParameters": {"x": 1},
        "afterResultSelector": {"x": 1},
        "afterResultPath": {"a": {"x": 1}, "b": {"x": 1}},
    }
    fixed = _run({"Type": "Pass", "Result": 7, "End": True}, {"a": 1}, inspectionLevel="TRACE")
    assert _inspection(fixed) == {
        "input": {"a": 1},
        "result": 7,
        "afterResultSelector": 7,
        "afterResultPath": 7,
    }


def test_jsonpath_choice_assigns_and_reports_variables() -> None:
    state = {
        "Type": "Choice",
        "Choices": [
            {
                "Variable": "$.n",
                "NumericGreaterThan": 5,
                "Next": "Big",
                "Assign": {"seen.$": "$.n"},
            },
        ],
        "Default": "Small",
    }
    big = _run(state, {"n": 9}, inspectionLevel="DEBUG")
    assert big["nextState"] == "Big"
    assert _inspection(big)["variables"] == {"seen": 9}
    assert _run(state, {"n": 1})["nextState"] == "Small"
    no_default = {**state, "Default": None}
    del no_default["Default"]
    missed = _run(no_default, {"n": 1})
    assert (missed["status"], missed["error"]) == ("FAILED", "States.NoChoiceMatched")


def test_fail_state_reads_its_paths() -> None:
    response = _run({"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}, {"e": "E", "c": "C"})
    assert response == {"status": "FAILED", "error": "E", "cause": "C"}


def test_jsonata_state_sees_given_variables_and_context() -> None:
    state = {
        "Type": "Pass",
        "QueryLanguage": "JSONata",
        "Output": "{% [$v, $states.context.Execution.Name] %}",
        "End": True,
    }
    context = {"Execution": {"Name": "run-1"}}
    response = _run(state, {}, variables=json.dumps({"v": 2}), context=json.dumps(context))
    assert json.loads(response["output"]) == [2, "run-1"]


def test_default_context_object() -> None:
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f"},
        "ResultSelector": {"c.$": "$$"},
        "End": True,
    }
    context = json.loads(
        _run(
            task,
            {"k": 1},
            mock={"result": "{}"},
            roleArn=ROLE,
            stateConfiguration={"retrierRetryCount": 2},
        )["output"]
    )["c"]
    assert context["State"]["Name"] == "StateName"
    assert context["State"]["RetryCount"] == 2
    assert context["Execution"]["RoleArn"] == ROLE
    assert context["Execution"]["Input"] == {"k": 1}
    assert context["Execution"]["Id"].startswith("arn:aws:states:us-east-1:000000000000:express:")
    flow = {"Type": "Pass", "Parameters": {"c.$": "$$"}, "End": True}
    flow_context = json.loads(_run(flow, {}, roleArn=ROLE)["output"])["c"]
    assert flow_context["Execution"]["RoleArn"] is None
    assert "RetryCount" not in flow_context["State"]


# -- Retry and Catch ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "backoff"),
    [(0, 3), (1, 6), (2, 12), (3, 20)],  # 3 x 2^attempts, capped by MaxDelaySeconds 20
)
def test_retriable_reports_the_next_backoff(attempts: int, backoff: int) -> None:
    response = _run(
        RETRY_TASK,
        {},
        mock=BOOM,
        inspectionLevel="DEBUG",
        stateConfiguration={"retrierRetryCount": attempts},
    )
    assert (response["status"], response["error"], response["cause"]) == (
        "RETRIABLE",
        "Boom",
        "it broke",
    )
    assert "output" not in response
    assert response["inspectionData"]["errorDetails"] == {
        "retryIndex": 1,
        "retryBackoffIntervalSeconds": backoff,
    }


def test_exhausted_retry_falls_to_catch() -> None:
    response = _run(
        RETRY_TASK,
        {"a": 1},
        mock=BOOM,
        inspectionLevel="DEBUG",
        stateConfiguration={"retrierRetryCount": 4},
    )
    assert response["status"] == "CAUGHT_ERROR"
    assert response["nextState"] == "Handler"
    assert json.loads(response["output"]) == {
        "a": 1,
        "error": {"Error": "Boom", "Cause": "it broke"},
    }
    assert response["inspectionData"]["errorDetails"] == {"retryIndex": 1, "catchIndex": 0}


def test_uncaught_failure() -> None:
    state = {**RETRY_TASK, "Catch": []}
    response = _run(state, {}, mock={"errorOutput": {"error": "Nope", "cause": ""}})
    assert response == {"status": "FAILED", "error": "Nope", "cause": ""}


# -- Map ---------------------------------------------------------------------------------------


def test_map_tolerated_failure_percentage() -> None:
    state = {**MAP_TASK, "ToleratedFailurePercentage": 50}
    data = {"items": [1, 2, 3, 4]}
    within = _run(
        state,
        data,
        mock={"result": "[1, 2, 3, 4]"},
        inspectionLevel="DEBUG",
        stateConfiguration={"mapIterationFailureCount": 2},
    )
    assert within["status"] == "SUCCEEDED"
    assert _inspection(within)["toleratedFailurePercentage"] == 50.0
    beyond = _run(
        state,
        data,
        mock={"result": "[1, 2, 3, 4]"},
        stateConfiguration={"mapIterationFailureCount": 3},
    )
    assert (beyond["status"], beyond["error"]) == (
        "FAILED",
        "States.ExceedToleratedFailureThreshold",
    )


def test_map_items_must_be_an_array() -> None:
    response = _run(MAP_TASK, {"items": {"not": "a list"}}, mock={"result": "[]"})
    assert response == {
        "status": "FAILED",
        "error": "States.Runtime",
        "cause": 'Reference path "$.items" must point to array.',
    }


def test_state_name_reaches_a_map_processor_state() -> None:
    machine = {"StartAt": "M", "States": {"M": MAP_TASK}}
    response = test_state(
        {"definition": json.dumps(machine), "stateName": "Item", "input": '{"x": 1}'}
    )
    assert response == {"status": "SUCCEEDED", "output": '{"x":1}'}


# -- handlers ----------------------------------------------------------------------------------


class Recorder:
    """A real async handler that records what it was called with."""

    def __init__(self, result: JSON = None, error: Exception | None = None) -> None:
        self.calls: list[tuple[JSON, TaskContext]] = []
        self.result = result
        self.error = error

    async def __call__(self, event: JSON, context: TaskContext) -> JSON:
        self.calls.append((event, context))
        if self.error is not None:
            raise self.error
        return self.result


FUNCTION = {
    "Type": "Task",
    "Resource": "arn:aws:lambda:us-east-1:000000000000:function:fn",
    "End": True,
}


def test_task_calls_its_handler_unless_mocked() -> None:
    handler = Recorder(result={"ok": True})
    request = {"definition": json.dumps(FUNCTION), "input": '{"q": 1}'}
    response = test_state(request, handlers={"fn": handler})
    assert json.loads(response["output"]) == {"ok": True}
    assert [event for event, _ in handler.calls] == [{"q": 1}]
    assert handler.calls[0][1].state_name == "StateName"
    test_state({**request, "mock": {"result": "1"}}, handlers={"fn": handler})
    assert len(handler.calls) == 1


def test_lambda_invoke_wraps_the_payload() -> None:
    handler = Recorder(result="done")
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "fn", "Payload.$": "$"},
        "End": True,
    }
    response = test_state(
        {"definition": json.dumps(state), "input": '{"p": 2}'}, handlers={"fn": handler}
    )
    output = json.loads(response["output"])
    assert (output["Payload"], output["StatusCode"]) == ("done", 200)
    assert handler.calls[0][0] == {"p": 2}


@pytest.mark.parametrize(
    ("error", "expected_error"),
    [(TaskFailed("Custom.Error", "why"), "Custom.Error"), (KeyError("k"), "KeyError")],
)
def test_handler_failures(error: Exception, expected_error: str) -> None:
    response = test_state(
        {"definition": json.dumps(FUNCTION)}, handlers={"fn": Recorder(error=error)}
    )
    assert (response["status"], response["error"]) == ("FAILED", expected_error)
    if isinstance(error, KeyError):
        cause = json.loads(response["cause"])
        assert cause["errorType"] == "KeyError"
        assert set(cause) == {"errorMessage", "errorType", "requestId", "stackTrace"}


def test_missing_lambda_handler() -> None:
    response = test_state({"definition": json.dumps(FUNCTION)})
    assert response["error"] == "Lambda.ResourceNotFoundException"
    assert "function:fn" in response["cause"]


def test_handler_runs_from_inside_an_event_loop() -> None:
    handler = Recorder(result=5)

    async def caller() -> dict[str, JSON]:
        return test_state({"definition": json.dumps(FUNCTION)}, handlers={"fn": handler})

    assert asyncio.run(caller())["output"] == "5"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"input": "[" * 5000 + "]" * 5000}, "InvalidExecutionInput"),  # RecursionError before
        ({"input": "{}", "mock": {"errorOutput": "x"}}, "ValidationException"),  # AttributeError
        ({"input": "{}", "mock": {"result": 5}}, "ValidationException"),  # TypeError
        ({"input": "{}", "mock": {"result": "[" * 5000 + "]" * 5000}}, "ValidationException"),
    ],
)
def test_malformed_requests_get_aws_errors_not_python_ones(params: JSON, code: str) -> None:
    task = {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "End": True}
    with pytest.raises(TestStateError) as refused:
        test_state({"definition": json.dumps(task), **params})
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("field", "value", "cause"),
    [
        (
            "ToleratedFailureCountPath",
            "NoNumber",
            'The ToleratedFailureCountPath field refers to value "NoNumber" which is not a valid '
            "integer: $.v",
        ),
        (
            "ToleratedFailurePercentagePath",
            {"a": 1},
            'The ToleratedFailurePercentagePath field refers to value "{"a":1}" which is not a '
            "valid float: $.v",
        ),
    ],
)
def test_a_tolerance_path_to_a_non_number_names_the_fields_type(
    field: str, value: JSON, cause: str
) -> None:
    """The words an execution uses (core.children, and AWS's recorded count-path case)."""
    response = _run({**MAP_TASK, field: "$.v"}, {"items": [1], "v": value}, mock={"result": "[1]"})
    assert response["status"] == "FAILED"
    assert response["error"] == "States.Runtime"
    assert cause in response["cause"]
