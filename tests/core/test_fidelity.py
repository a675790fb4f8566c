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
