"""AWS's wording and error outputs where a general rule, not one recorded case, decides (issue 15).

Each test names the rule and where it comes from. Given events / when woken / then events;
synchronous, no event loop.
"""

from __future__ import annotations

from typing import Any

import pytest

from runtime.core.decide import decide
from runtime.core.effects import Wake
from runtime.core.events import HistoryEvent
from runtime.core.state import ExecutionState
from runtime.definition.model import StateMachine
from tests.core.core_support import T0, given, machine_of, started, types
from tests.core.test_limits import run_to_end

JSON = Any

MAP_PREAMBLE = "An error occurred while executing the state 'Map' (entered at the event id #2). "
TOO_LARGE = (
    "The state/task '{}' returned a result with a size exceeding the maximum number of bytes "
    "service limit."
)


def _failure(history: list[HistoryEvent]) -> tuple[str, str]:
    last = history[-1]
    assert last.type == "ExecutionFailed", last.type
    return last.details["error"], last.details["cause"]


def run_with_timers(
    machine: StateMachine, input: JSON
) -> tuple[list[HistoryEvent], ExecutionState]:
    """Wake the execution (Task-free machines) at each time it asks for, until it ends."""
    history = [started(input)]
    state = given(history)
    now = T0
    for _ in range(20):
        decision = decide(machine, state, Wake(now=now))
        history.extend(decision.events)
        if state.is_terminal:
            return history, state
        assert decision.more or decision.wake_at is not None, "the machine is stuck"
        now = now if decision.wake_at is None else decision.wake_at
    raise AssertionError("not ended after 20 decisions")


def _map(processor_states: dict[str, JSON], **fields: JSON) -> StateMachine:
    start = next(iter(processor_states))
    processor = {"StartAt": start, "States": processor_states}
    return machine_of(
        {
            "StartAt": "Map",
            "States": {
                "Map": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "ItemProcessor": processor,
                    **fields,
                },
                **({} if "End" in fields else {"Done": {"Type": "Pass", "End": True}}),
            },
        }
    )


_PASS = {"P": {"Type": "Pass", "End": True}}


# ToleratedFailurePercentagePath: AWS's field is a float (UpdateMapRun/DescribeMapRun document
# toleratedFailurePercentage as "Type: Float"), and the cause names it so, quoting the value the
# way the recorded ToleratedFailureCountPath case quotes its "NoNumber" (a string as it is,
# anything else as JSON text, between double quotes).
@pytest.mark.parametrize(
    ("value", "shown"),
    [("NoNumber", "NoNumber"), ({}, "{}"), ([1], "[1]"), (True, "true"), (None, "null")],
)
def test_a_tolerated_failure_percentage_path_to_a_non_number_names_a_float(
    value: JSON, shown: str
) -> None:
    machine = _map(_PASS, ToleratedFailurePercentagePath="$.p", End=True)

    history, _ = run_to_end(machine, {"items": [1], "p": value})

    assert types(history) == [
        "ExecutionStarted",
        "MapStateEntered",
        "MapStateStarted",
        "ExecutionFailed",
    ]
    assert _failure(history) == (
        "States.Runtime",
        MAP_PREAMBLE + f'The ToleratedFailurePercentagePath field refers to value "{shown}" '
        "which is not a valid float: $.p",
    )


def test_a_tolerated_failure_count_path_to_a_non_number_names_an_integer() -> None:
    """The recorded case (``..._count_path_NoNumber``), with a non-string value."""
    machine = _map(_PASS, ToleratedFailureCountPath="$.n", End=True)

    history, _ = run_to_end(machine, {"items": [1], "n": {}})

    assert _failure(history) == (
        "States.Runtime",
        MAP_PREAMBLE + 'The ToleratedFailureCountPath field refers to value "{}" which is not '
        "a valid integer: $.n",
    )


# A state's result over the 256 KiB quota: AWS's cause is "The state/task '<name>' returned a
# result with a size exceeding the maximum number of bytes service limit." alone, without the
# "An error occurred while executing the state ..." preamble its other runtime errors carry (as
# AWS reports it for Map and Parallel states, e.g. awslabs/aws-securityhub-multiaccount-scripts
# issue 63 and aws-samples/review-and-assessment-powered-by-intelligent-documentation issue 58).
def test_a_maps_result_over_the_payload_quota_fails_with_aws_cause() -> None:
    machine = _map(_PASS, End=True)

    history, _ = run_to_end(machine, {"items": ["x" * 100_000] * 3})

    assert types(history)[-3:] == ["MapIterationSucceeded", "MapStateSucceeded", "ExecutionFailed"]
    assert _failure(history) == ("States.DataLimitExceeded", TOO_LARGE.format("Map"))


def test_a_parallels_result_over_the_payload_quota_is_caught_with_aws_cause() -> None:
    branches = [{"StartAt": b, "States": {b: {"Type": "Pass", "End": True}}} for b in "BCD"]
    machine = machine_of(
        {
            "StartAt": "Fan",
            "States": {
                "Fan": {
                    "Type": "Parallel",
                    "Branches": branches,
                    "Catch": [{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "Caught"}],
                    "End": True,
                },
                "Caught": {"Type": "Pass", "End": True},
            },
        }
    )

    _, state = run_to_end(machine, {"s": "x" * 100_000})

    assert state.status == "SUCCEEDED"
    assert state.output == {
        "Error": "States.DataLimitExceeded",
        "Cause": TOO_LARGE.format("Fan"),
    }


def test_a_pass_result_over_the_payload_quota_fails_with_aws_cause() -> None:
    machine = machine_of({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})

    history, _ = run_to_end(machine, {"s": "é" * 140_000})  # 280,000 bytes of UTF-8

    assert _failure(history) == ("States.DataLimitExceeded", TOO_LARGE.format("A"))


# A Map's Catch after its Retry is exhausted: the Map is retried whole (MapStateStarted again,
# as the recorded ``test_map_state_retry_legacy`` logs), and the Catch receives the error and
# cause of the iteration that failed last, as for any state (ASL "Catch": the error output is
# {"Error", "Cause"}).
def test_a_maps_catch_after_exhausted_retries_gets_the_last_iterations_error() -> None:
    fail = {"F": {"Type": "Fail", "Error": "ItemFailed", "Cause": "item 1 failed"}}
    machine = _map(
        fail,
        Retry=[{"ErrorEquals": ["ItemFailed"], "MaxAttempts": 2, "IntervalSeconds": 1}],
        Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"}],
        Next="Done",
    )

    history, state = run_with_timers(machine, {"items": [1]})

    assert types(history).count("MapStateStarted") == 3
    assert types(history)[-6:] == [
        "MapIterationFailed",
        "MapStateFailed",
        "MapStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert state.output == {
        "items": [1],
        "error": {"Error": "ItemFailed", "Cause": "item 1 failed"},
    }


# A workflow variable that is not defined, referenced from JSONata: JSONata evaluates ``$name``
# of an unbound name to nothing (undefined), so the field "returned nothing (undefined)" and the
# state fails with States.QueryEvaluationError after an EvaluationFailed event whose location is
# the field, named with '/' before each key. The causes are AWS's, recorded by the AWS-validated
# LocalStack test ``test_assign_reference_variables.py::test_undefined_reference`` (cases
# BASE_UNDEFINED_OUTPUT, _OUTPUT_FIELD, _ASSIGN, _ARGUMENTS, _ARGUMENTS_FIELD).
UNDEFINED_PREAMBLE = (
    "An error occurred while executing the state 'State0' (entered at the event id #2). "
)
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"


@pytest.mark.parametrize(
    ("state", "entered", "location"),
    [
        (
            {"Type": "Pass", "Output": "{% $doesNotExist %}", "End": True},
            "PassStateEntered",
            "Output",
        ),
        (
            {"Type": "Pass", "Output": {"result": "{% $doesNotExist %}"}, "End": True},
            "PassStateEntered",
            "Output/result",
        ),
        (
            {"Type": "Pass", "Assign": {"result": "{% $doesNotExist %}"}, "End": True},
            "PassStateEntered",
            "Assign/result",
        ),
        (
            {
                "Type": "Task",
                "Resource": LAMBDA_INVOKE,
                "Arguments": "{% $doesNotExist %}",
                "End": True,
            },
            "TaskStateEntered",
            "Arguments",
        ),
        (
            {
                "Type": "Task",
                "Resource": LAMBDA_INVOKE,
                "Arguments": {"FunctionName": "{% $doesNotExist %}"},
                "End": True,
            },
            "TaskStateEntered",
            "Arguments/FunctionName",
        ),
    ],
)
def test_an_undefined_variable_in_jsonata_returns_nothing_in_awss_words(
    state: dict[str, JSON], entered: str, location: str
) -> None:
    machine = machine_of(
        {"QueryLanguage": "JSONata", "StartAt": "State0", "States": {"State0": state}}
    )

    history, _ = run_to_end(machine, {})

    cause = (
        UNDEFINED_PREAMBLE
        + f"The JSONata expression '$doesNotExist' specified for the field '{location}' "
        "returned nothing (undefined)."
    )
    assert types(history) == ["ExecutionStarted", entered, "EvaluationFailed", "ExecutionFailed"]
    assert history[2].details == {
        "error": "States.QueryEvaluationError",
        "cause": cause,
        "state": "State0",
        "location": location,
    }
    assert _failure(history) == ("States.QueryEvaluationError", cause)


# A variable defined only in a later state is not defined yet: the same rule, in the state that
# reads it (BASE_UNDEFINED_OUTPUT_MULTIPLE_STATES: the third state, entered at event #6).
def test_a_variable_assigned_later_is_undefined_where_it_is_read_first() -> None:
    machine = machine_of(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "State0",
            "States": {
                "State0": {"Type": "Pass", "Next": "State1"},
                "State1": {"Type": "Pass", "Next": "State2"},
                "State2": {
                    "Type": "Pass",
                    "Output": {"result": "{% $doesNotExist %}"},
                    "Next": "State3",
                },
                "State3": {"Type": "Pass", "Assign": {"doesNotExist": 1}, "End": True},
            },
        }
    )

    history, _ = run_to_end(machine, {})

    assert _failure(history) == (
        "States.QueryEvaluationError",
        "An error occurred while executing the state 'State2' (entered at the event id #6). "
        "The JSONata expression '$doesNotExist' specified for the field 'Output/result' "
        "returned nothing (undefined).",
    )


# JSONPath bracket notation in every field that takes a path (ASL "Paths"; AWS reads them with
# Jayway): a quoted name with escapes, and '.' before a bracket as in the AWS guide's example
# "$.abc.['def ghi']" ("Using JSONPath paths"). ResultPath, OutputPath and ItemsPath are
# Reference Paths, which allow bracket names too.
BRACKETED_INPUT = {"abc": {"def ghi": [1, 2], "q'r": 3}}


@pytest.mark.parametrize(
    ("state", "output"),
    [
        ({"Type": "Pass", "InputPath": "$.abc.['def ghi']", "End": True}, [1, 2]),
        ({"Type": "Pass", "OutputPath": "$.abc.['q\\'r']", "End": True}, 3),
        ({"Type": "Pass", "Parameters": {"v.$": "$.abc.['q\\'r']"}, "End": True}, {"v": 3}),
        (
            {"Type": "Pass", "Result": 0, "ResultPath": '$.[\'new key\'].["x\\"y"]', "End": True},
            {**BRACKETED_INPUT, "new key": {'x"y': 0}},
        ),
        (
            {
                "Type": "Map",
                "ItemsPath": "$.abc.['def ghi']",
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "End": True,
            },
            [1, 2],
        ),
        (
            {
                "Type": "Choice",
                "Choices": [{"Variable": "$.abc.['q\\'r']", "NumericEquals": 3, "Next": "Yes"}],
                "Default": "No",
            },
            "yes",
        ),
    ],
)
def test_bracket_names_after_a_dot_in_every_path_field(
    state: dict[str, JSON], output: JSON
) -> None:
    states: dict[str, JSON] = {"S": state}
    if state["Type"] == "Choice":
        states |= {"Yes": {"Type": "Pass", "Result": "yes", "End": True}, "No": {"Type": "Fail"}}
    machine = machine_of({"StartAt": "S", "States": states})

    history, state_after = run_to_end(machine, BRACKETED_INPUT)

    assert history[-1].type == "ExecutionSucceeded", history[-1].details
    assert state_after.output == output


def _passes(*names: str) -> dict[str, JSON]:
    """A branch (or item processor) of Pass states run one after the other."""
    states: dict[str, JSON] = {}
    for name, following in zip(names, (*names[1:], None), strict=True):
        states[name] = (
            {"Type": "Pass", "End": True}
            if following is None
            else {"Type": "Pass", "Next": following}
        )
    return {"StartAt": names[0], "States": states}


def _named(history: list[HistoryEvent]) -> list[tuple[str, JSON]]:
    return [(event.type, event.details.get("name")) for event in history]


# History order inside Parallel and Map (issue 15; the rule in ``Children.step_parallel``): in
# one decision each branch, in branch order, and each iteration, in index order, runs until it
# blocks or ends, so a branch's or an iteration's events are contiguous. The public Map
# recordings log iterations so; the public Parallel recordings were sorted by LocalStack's
# snapshot transformer and say nothing about the order across branches.
def test_parallel_branches_log_their_events_branch_by_branch() -> None:
    machine = machine_of(
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [
                        _passes("B1"),
                        _passes("B21", "B22"),
                        _passes("B31", "B32", "B33"),
                    ],
                    "End": True,
                }
            },
        }
    )

    history, _ = run_to_end(machine, {})

    names = ["B1", "B21", "B22", "B31", "B32", "B33"]
    branch_events = [e for n in names for e in (("PassStateEntered", n), ("PassStateExited", n))]
    assert _named(history) == [
        ("ExecutionStarted", None),
        ("ParallelStateEntered", "P"),
        ("ParallelStateStarted", None),
        *branch_events,
        ("ParallelStateExited", "P"),
        ("ExecutionSucceeded", None),
    ]


def test_map_iterations_log_their_events_iteration_by_iteration() -> None:
    machine = machine_of(
        {
            "StartAt": "M",
            "States": {"M": {"Type": "Map", "ItemProcessor": _passes("I1", "I2"), "End": True}},
        }
    )

    history, _ = run_to_end(machine, [1, 2])

    iteration = [
        ("PassStateEntered", "I1"),
        ("PassStateExited", "I1"),
        ("PassStateEntered", "I2"),
        ("PassStateExited", "I2"),
    ]
    assert _named(history)[3:-3] == [
        ("MapIterationStarted", "M"),
        *iteration,
        ("MapIterationSucceeded", "M"),
        ("MapIterationStarted", "M"),
        *iteration,
        ("MapIterationSucceeded", "M"),
    ]
    assert [e.details.get("index") for e in history if e.type.startswith("MapIteration")] == [
        0,
        0,
        1,
        1,
    ]
