"""One test per static rule: the rule code and the JSON Pointer AWS reports (and its wording
where AWS's exact text is known)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.definition import load_definition
from runtime.errors import InvalidDefinition

SCHEMA = "SCHEMA_VALIDATION_FAILED"
TARGET = "MISSING_TRANSITION_TARGET"

PASS_END: dict[str, Any] = {"Type": "Pass", "End": True}


def machine(states: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states, **top}


def fail(source: Any, machine_type: str = "STANDARD") -> InvalidDefinition:
    with pytest.raises(InvalidDefinition) as caught:
        load_definition(source, machine_type=machine_type)
    return caught.value


def with_map(**fields: Any) -> dict[str, Any]:
    processor = {"StartAt": "I", "States": {"I": PASS_END}}
    return machine({"M": {"Type": "Map", "ItemProcessor": processor, "End": True, **fields}})


def with_task(**fields: Any) -> dict[str, Any]:
    task = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True, **fields}
    return machine({"T": task})


# --- JSON text ---------------------------------------------------------------------------------


def test_invalid_json_uses_jacksons_wording() -> None:
    error = fail("not a definition")
    assert error.code == "INVALID_JSON_DESCRIPTION"
    assert error.detail.startswith("Unrecognized token 'not': was expecting (JSON String")
    assert error.pointer == '[Source: (String)"not a definition"; line: 1, column: 4]'
    assert fail('{"StartAt": ').code == "INVALID_JSON_DESCRIPTION"
    assert fail("").code == "INVALID_JSON_DESCRIPTION"


def test_non_standard_json_numbers_are_rejected() -> None:
    error = fail('{"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": NaN, "End": true}}}')
    assert error.code == "INVALID_JSON_DESCRIPTION"
    assert error.detail.startswith("Non-standard token 'NaN'")


def test_definition_must_be_an_object() -> None:
    assert (fail("[]").code, fail("[]").pointer) == (SCHEMA, "/")


# --- top level ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ({"States": {"A": PASS_END}}, "These fields are required: [StartAt]"),
        ({"StartAt": "A"}, "These fields are required: [States]"),
        ({}, "These fields are required: [States, StartAt]"),
        (machine({"A": PASS_END}, Extra=1), "Field 'Extra' is not supported"),
        (machine({"A": PASS_END}, QueryLanguage="SQL"), "must be one of [JSONPath, JSONata]"),
    ],
)
def test_top_level_fields(source: dict[str, Any], detail: str) -> None:
    error = fail(source)
    assert error.code == SCHEMA
    assert detail in error.detail
    assert error.pointer in ("/", "/QueryLanguage")


def test_state_must_have_a_type() -> None:
    error = fail(machine({"A": {"End": True}}))
    assert (error.code, error.pointer) == (SCHEMA, "/States/A")
    assert error.detail == "The field 'Type' is required but was missing"
    assert fail(machine({"A": {"Type": "Nope", "End": True}})).pointer == "/States/A"


@pytest.mark.parametrize(
    ("state", "field"),
    [
        ({"Type": "Pass", "TimeoutSeconds": 1, "End": True}, "TimeoutSeconds"),
        ({"Type": "Pass", "Retry": [], "End": True}, "Retry"),
        ({"Type": "Pass", "Catch": [], "End": True}, "Catch"),
        ({"Type": "Succeed", "End": True}, "End"),
        ({"Type": "Fail", "Next": "X"}, "Next"),
        ({"Type": "Choice", "Choices": [], "End": True}, "End"),
        ({"Type": "Wait", "Seconds": 1, "Resource": "x", "End": True}, "Resource"),
        ({"Type": "Parallel", "Branches": [], "TimeoutSeconds": 5, "End": True}, "TimeoutSeconds"),
    ],
)
def test_unsupported_fields(state: dict[str, Any], field: str) -> None:
    error = fail(machine({"A": state}))
    assert (error.code, error.pointer) == (SCHEMA, "/States/A")
    assert error.detail == f"Field '{field}' is not supported"


def test_jsonata_only_field_in_jsonpath_state() -> None:
    error = fail(machine({"A": {"Type": "Pass", "Output": 1, "End": True}}))
    assert (error.code, error.pointer) == (SCHEMA, "/States/A")
    assert error.detail == (
        "The QueryLanguage is set to 'JSONPath', but field 'Output' is only supported for the "
        "'JSONata' QueryLanguage"
    )


def test_jsonpath_only_field_in_jsonata_state() -> None:
    error = fail(
        machine({"A": {"Type": "Pass", "InputPath": "$", "End": True}}, QueryLanguage="JSONata")
    )
    assert (error.code, error.pointer) == (SCHEMA, "/States/A")
    assert "field 'InputPath' is only supported for the 'JSONPath' QueryLanguage" in error.detail


def test_jsonpath_state_under_jsonata_machine() -> None:
    source = machine(
        {"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}}, QueryLanguage="JSONata"
    )
    error = fail(source)
    assert (error.code, error.pointer) == (SCHEMA, "/States/A")
    assert (
        error.detail
        == "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine"
    )


def test_processor_cannot_declare_query_language() -> None:
    error = fail(
        machine(
            {
                "M": {
                    "Type": "Map",
                    "ItemProcessor": {
                        "QueryLanguage": "JSONata",
                        "StartAt": "I",
                        "States": {"I": PASS_END},
                    },
                    "End": True,
                }
            }
        )
    )
    assert (error.code, error.pointer, error.detail) == (
        SCHEMA,
        "/States/M/ItemProcessor",
        "Field 'QueryLanguage' is not supported",
    )


# --- transitions and graph ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [{"Type": "Pass"}, {"Type": "Pass", "End": False}, {"Type": "Pass", "Next": "B", "End": True}],
)
def test_next_xor_end(state: dict[str, Any]) -> None:
    error = fail(machine({"A": state, "B": PASS_END}))
    assert (error.code, error.pointer) == (SCHEMA, "/States/A")


@pytest.mark.parametrize(
    ("source", "pointer", "target"),
    [
        ({"StartAt": "Nope", "States": {"A": PASS_END}}, "/StartAt", "Nope"),
        (machine({"A": {"Type": "Pass", "Next": "Nope"}, "B": PASS_END}), "/States/A/Next", "Nope"),
        (
            machine(
                {
                    "C": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "Z"}],
                    },
                    "B": PASS_END,
                }
            ),
            "/States/C/Choices[0]/Next",
            "Z",
        ),
        (
            machine(
                {
                    "C": {
                        "Type": "Choice",
                        "Choices": [{"Variable": "$.x", "IsNull": True, "Next": "B"}],
                        "Default": "Z",
                    },
                    "B": PASS_END,
                }
            ),
            "/States/C/Default",
            "Z",
        ),
        (
            machine(
                {
                    "T": {
                        "Type": "Task",
                        "Resource": "f",
                        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}],
                        "End": True,
                    }
                }
            ),
            "/States/T/Catch[0]/Next",
            "Z",
        ),
        (
            machine(
                {
                    "P": {
                        "Type": "Parallel",
                        "Branches": [{"StartAt": "Z", "States": {"A": PASS_END}}],
                        "End": True,
                    }
                }
            ),
            "/States/P/Branches[0]/StartAt",
            "Z",
        ),
    ],
)
def test_missing_transition_target(source: dict[str, Any], pointer: str, target: str) -> None:
    error = fail(source)
    assert (error.code, error.pointer) == (TARGET, pointer)
    assert error.detail == f"Missing 'Next' target: {target}"


def test_unreachable_state() -> None:
    error = fail(machine({"A": PASS_END, "B": PASS_END}))
    assert (error.code, error.pointer, error.detail) == (
        TARGET,
        "/States/B",
        'State "B" is not reachable.',
    )
    assert error.message == (
        'Invalid State Machine Definition: \'MISSING_TRANSITION_TARGET: State "B" is not '
        "reachable. at /States/B'"
    )


def test_no_terminal_state_suppresses_reachability() -> None:
    loop = {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}}
    error = fail(machine({**loop, "X": {"Type": "Pass", "Next": "A"}}))
    assert error.message == (
        "Invalid State Machine Definition: "
        "'MISSING_END_STATE: Workflow has no terminal state at null'"
    )
    with_terminal = fail(machine({**loop, "C": PASS_END}))
    assert (with_terminal.code, with_terminal.pointer) == (TARGET, "/States/C")


def test_duplicate_state_names() -> None:
    text = (
        '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}, "A": {"Type": "Succeed"}}}'
    )
    assert fail(text).code == "DUPLICATE_STATE_NAME"
    nested = machine(
        {
            "P": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "P", "States": {"P": PASS_END}}],
                "End": True,
            }
        }
    )
    error = fail(nested)
    assert (error.code, error.pointer) == ("DUPLICATE_STATE_NAME", "/States/P/Branches[0]/States/P")


# --- Retry / Catch -----------------------------------------------------------------------------


ALL = ["States.ALL"]


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"Retry": [{"ErrorEquals": ["States.ALL", "X"]}]}, "/States/T/Retry[0]/ErrorEquals"),
        ({"Retry": [{"ErrorEquals": ALL}, {"ErrorEquals": ["X"]}]}, "/States/T/Retry[0]"),
        ({"Catch": [{"ErrorEquals": ALL, "Next": "T"}, {"ErrorEquals": ["X"], "Next": "T"}]},
         "/States/T/Catch[0]"),
        ({"Retry": [{}]}, "/States/T/Retry[0]"),
        ({"Retry": [{"ErrorEquals": []}]}, "/States/T/Retry[0]"),
        ({"Retry": [{"ErrorEquals": ["X"], "MaxAttempts": -1}]}, "/States/T/Retry[0]"),
        ({"Retry": [{"ErrorEquals": ["X"], "IntervalSeconds": 0}]}, "/States/T/Retry[0]"),
        ({"Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5}]}, "/States/T/Retry[0]"),
        ({"Retry": [{"ErrorEquals": ["X"], "JitterStrategy": "SOME"}]}, "/States/T/Retry[0]"),
        ({"Retry": [{"ErrorEquals": ["X"], "Foo": 1}]}, "/States/T/Retry[0]"),
        ({"Catch": [{"ErrorEquals": ["X"]}]}, "/States/T/Catch[0]"),
        ({"Catch": [{"ErrorEquals": ["X"], "Next": "T", "ResultPath": "x"}]}, "/States/T/Catch[0]"),
    ],
)  # fmt: skip
def test_retry_and_catch_rules(fields: dict[str, Any], pointer: str) -> None:
    error = fail(with_task(**fields))
    assert (error.code, error.pointer) == (SCHEMA, pointer)


# --- field values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"TimeoutSeconds": 0}, "/States/T"),
        ({"TimeoutSeconds": "10"}, "/States/T"),
        ({"TimeoutSeconds": 1, "TimeoutSecondsPath": "$.t"}, "/States/T"),
        ({"HeartbeatSeconds": 10, "TimeoutSeconds": 5}, "/States/T"),
        ({"InputPath": "not a path"}, "/States/T"),
        ({"ResultPath": "$.a[*]"}, "/States/T"),
        ({"ResultPath": "$$.Execution"}, "/States/T"),
        ({"ResultPath": "$var"}, "/States/T"),
        ({"Parameters": {"x.$": "nope"}}, "/States/T/Parameters"),
        ({"Credentials": {}}, "/States/T/Credentials"),
        ({"Credentials": {"RoleArn": "r", "Other": 1}}, "/States/T/Credentials"),
    ],
)
def test_task_field_values(fields: dict[str, Any], pointer: str) -> None:
    error = fail(with_task(**fields))
    assert (error.code, error.pointer) == (SCHEMA, pointer)


def test_unknown_service_integration() -> None:
    error = fail(with_task(Resource="arn:aws:states:::dynamodb:query"))
    assert (error.code, error.pointer) == (SCHEMA, "/States/T/Resource")
    assert error.detail == (
        "The resource provided arn:aws:states:::dynamodb:query is not recognized. The value is "
        "not a valid resource ARN, or the resource is not available in this region."
    )


@pytest.mark.parametrize(
    ("resource", "detail"),
    [
        (
            "arn:aws:states:::states:startExecution.sync",
            "does not support '.sync' service integration",
        ),
        (
            "arn:aws:states:::states:startExecution.sync:2",
            "does not support '.sync' service integration",
        ),
        (
            "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "'.waitForTaskToken' service integration",
        ),
        ("arn:aws:states:us-east-1:000000000000:activity:a", "does not support Activity ARN"),
    ],
)
def test_express_rejects_callbacks(resource: str, detail: str) -> None:
    error = fail(with_task(Resource=resource), machine_type="EXPRESS")
    assert (error.code, error.pointer) == (SCHEMA, "/States/T/Resource")
    assert detail in error.detail
    load_definition(with_task(Resource=resource), machine_type="STANDARD")


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"Seconds": 1, "Timestamp": "2016-03-14T01:59:00Z"},
        {"Seconds": -1},
        {"Seconds": "1"},
        {"SecondsPath": "nope"},
    ],
)
def test_wait_duration_rules(fields: dict[str, Any]) -> None:
    error = fail(machine({"W": {"Type": "Wait", "End": True, **fields}}))
    assert (error.code, error.pointer) == (SCHEMA, "/States/W")


@pytest.mark.parametrize(
    "timestamp", ["2016-12-05T21:29:29", "05-12-2016T21:29:29Z", "2016-02-30T00:00:00Z", 5]
)
def test_wait_timestamp_must_be_rfc3339(timestamp: Any) -> None:
    error = fail(machine({"W": {"Type": "Wait", "Timestamp": timestamp, "End": True}}))
    assert (error.code, error.pointer, error.detail) == (
        SCHEMA,
        "/States/W/Timestamp",
        "String does not match RFC3339 timestamp",
    )


@pytest.mark.parametrize(
    ("label", "detail"),
    [
        ("", "Label cannot be empty"),
        ("x" * 41, "Label cannot exceed 40 characters"),
        ("label_*", "Label contains invalid character: '*'"),
        ("a b", "Label contains invalid character: ' '"),
        ("tab\t", "Label contains invalid character: '\\t'"),
        ("ctl\x85", "Label contains invalid character: '\\x85'"),
        ("slash/", "Label contains invalid character: '/'"),
        (5, "The value for the field 'Label' must be a STRING"),
    ],
)
def test_map_label(label: Any, detail: str) -> None:
    error = fail(with_map(Label=label))
    assert (error.code, error.pointer, error.detail) == (SCHEMA, "/States/M/Label", detail)


def test_map_label_accepts_forty_plain_characters() -> None:
    load_definition(with_map(Label="a" * 40))
    load_definition(with_map(Label="Ünïcode-label_1.2"))


@pytest.mark.parametrize(
    "fields",
    [
        {"ToleratedFailurePercentage": 101},
        {"ToleratedFailurePercentage": -1},
        {"ToleratedFailureCount": -1},
        {"MaxConcurrency": -1},
        {"MaxConcurrency": 1, "MaxConcurrencyPath": "$.m"},
        {"ItemSelector": {}, "Parameters": {}},
        {"ItemsPath": "$.a[*]"},
    ],
)
def test_map_field_values(fields: dict[str, Any]) -> None:
    error = fail(with_map(**fields))
    assert (error.code, error.pointer) == (SCHEMA, "/States/M")


def test_map_needs_a_processor() -> None:
    error = fail(machine({"M": {"Type": "Map", "End": True}}))
    assert (error.code, error.pointer) == (SCHEMA, "/States/M")


def test_choice_needs_rules() -> None:
    error = fail(machine({"C": {"Type": "Choice", "Choices": [], "Default": "A"}, "A": PASS_END}))
    assert (error.code, error.pointer) == (SCHEMA, "/States/C")
    bad_rule = fail(
        machine(
            {"C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "A"}]}, "A": PASS_END}
        )
    )
    assert (bad_rule.code, bad_rule.pointer) == (SCHEMA, "/States/C/Choices[0]")


def test_fail_state_fields() -> None:
    error = fail(machine({"F": {"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}}))
    assert (error.code, error.pointer) == (SCHEMA, "/States/F")
    invalid = fail(machine({"F": {"Type": "Fail", "CausePath": "States.Nope("}}))
    assert invalid.code == SCHEMA


_SYNC = "Express state machine does not support '.sync' service integration"
_CALLBACK = "Express state machine does not support '.waitForTaskToken' service integration"
_EXPRESS_FORBIDDEN = [
    ("arn:aws:states:::states:startExecution.sync", _SYNC),
    ("arn:aws:states:::glue:startJobRun.sync", _SYNC),
    ("arn:aws:states:::states:startExecution.sync:2", _SYNC),
    ("arn:aws:states:::sqs:sendMessage.waitForTaskToken", _CALLBACK),
    ("arn:aws:states:::aws-sdk:s3:getObject.waitForTaskToken", _CALLBACK),
    (
        "arn:aws:states:us-east-1:123456789012:activity:a",
        "Express state machine does not support Activity ARN",
    ),
]


def _task(resource: str) -> dict[str, Any]:
    return {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": resource, "End": True}}}


def _nested(kind: str, resource: str) -> tuple[dict[str, Any], str]:
    """A machine holding the Task one level down, and the Resource's pointer."""
    inner = _task(resource)
    if kind == "Parallel":
        first = {"StartAt": "L", "States": {"L": {**PASS_END}}}
        state = {"Type": "Parallel", "Branches": [first, inner]}
        return machine({"P": {**state, "End": True}}), "/States/P/Branches[1]/States/T/Resource"
    if kind == "Iterator":
        return machine({"M": {"Type": "Map", "Iterator": inner, "End": True}}), (
            "/States/M/Iterator/States/T/Resource"
        )
    config = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"} if kind == "Distributed" else {}
    processor = {"ProcessorConfig": config, **inner} if config else inner
    return machine({"M": {"Type": "Map", "ItemProcessor": processor, "End": True}}), (
        "/States/M/ItemProcessor/States/T/Resource"
    )


@pytest.mark.parametrize("kind", ["Parallel", "ItemProcessor", "Iterator", "Distributed"])
@pytest.mark.parametrize(("resource", "detail"), _EXPRESS_FORBIDDEN)
def test_express_rules_hold_at_every_level(kind: str, resource: str, detail: str) -> None:
    """AWS's EXPRESS rules (validation case test_illegal_callbacks, the
    ValidateStateMachineDefinition EXPRESS case) hold in Parallel branches and Map processors."""
    definition, pointer = _nested(kind, resource)
    error = fail(definition, machine_type="EXPRESS")
    assert (error.code, error.pointer, error.detail) == (SCHEMA, pointer, detail)
    load_definition(definition, machine_type="STANDARD")


@pytest.mark.parametrize(("resource", "detail"), _EXPRESS_FORBIDDEN)
def test_express_child_workflows_of_a_distributed_map_follow_express_rules(
    resource: str, detail: str
) -> None:
    """A Distributed Map whose ExecutionType is EXPRESS runs Express child workflows, even in
    a STANDARD machine; with ExecutionType STANDARD the integrations are allowed."""
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
        **_task(resource),
    }
    definition = machine({"M": {"Type": "Map", "ItemProcessor": processor, "End": True}})
    error = fail(definition)
    assert (error.code, error.pointer, error.detail) == (
        SCHEMA,
        "/States/M/ItemProcessor/States/T/Resource",
        detail,
    )
    processor["ProcessorConfig"] = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    load_definition(definition)
