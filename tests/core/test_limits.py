"""Hostile definitions and inputs in the pure core (issue 11): every input-chosen number or loop
meets a bound, and the bound fails the state or the execution as AWS does, never the process.

Given events / when an incoming fact / then events; synchronous, no event loop.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from runtime.core.decide import decide
from runtime.core.effects import TaskResult, Wake
from runtime.core.events import HistoryEvent
from runtime.core.evolve import fold
from runtime.core.limits import MAX_EXECUTION_SECONDS, ExecutionLimits
from runtime.core.state import ExecutionState
from runtime.definition.model import StateMachine
from tests.core.core_support import T0, Driver, given, machine_of, started, types

JSON = Any

HISTORY_CAUSE = "The execution reached the maximum number of history events ({})."


def run_to_end(
    machine: StateMachine,
    input: JSON = None,
    *,
    limits: ExecutionLimits | None = None,
    decisions: int = 100,
) -> tuple[list[HistoryEvent], ExecutionState]:
    """Wake the execution until it ends (Task-free machines): its whole history."""
    history = [started(input)]
    state = given(history)
    for _ in range(decisions):
        if limits is None:
            decision = decide(machine, state, Wake(now=T0))
        else:
            decision = decide(machine, state, Wake(now=T0), limits=limits)
        history.extend(decision.events)
        if state.is_terminal:
            return history, state
        assert decision.more, "the machine is stuck"
    raise AssertionError(f"not ended after {decisions} decisions")


def choice_loop() -> StateMachine:
    """A Choice that loops on itself for ever: two events per turn, no time passes."""
    return machine_of(
        {
            "StartAt": "Loop",
            "States": {
                "Loop": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.go", "BooleanEquals": True, "Next": "Loop"}],
                    "Default": "Done",
                },
                "Done": {"Type": "Succeed"},
            },
        }
    )


def pass_chain(length: int) -> StateMachine:
    names = [f"P{i}" for i in range(length)]
    states: dict[str, JSON] = {
        name: {"Type": "Pass", "Next": following} for name, following in itertools.pairwise(names)
    }
    states[names[-1]] = {"Type": "Pass", "End": True}
    return machine_of({"StartAt": names[0], "States": states})


# -- the execution history quota ----------------------------------------------------------------


def test_a_choice_loop_fails_at_the_25000th_event_by_default() -> None:
    history, state = run_to_end(choice_loop(), {"go": True})

    assert len(history) == 25_000
    assert history[-1].id == 25_000
    assert history[-1].type == "ExecutionFailed"
    assert history[-1].details == {
        "error": "States.Runtime",
        "cause": HISTORY_CAUSE.format(25_000),
    }
    assert state.status == "FAILED"
    assert history[-2].type == "ChoiceStateExited"


def test_the_quota_is_configurable() -> None:
    history, state = run_to_end(
        choice_loop(), {"go": True}, limits=ExecutionLimits(max_history_events=51)
    )

    assert [event.id for event in history] == list(range(1, 52))
    assert history[-1].details["cause"] == HISTORY_CAUSE.format(51)
    assert fold(history).status == state.status == "FAILED"


def test_none_lifts_the_quota() -> None:
    machine = machine_of(
        {
            "StartAt": "Count",
            "States": {
                "Count": {
                    "Type": "Pass",
                    "Parameters": {"n.$": "States.MathAdd($.n, 1)"},
                    "Next": "Check",
                },
                "Check": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.n", "NumericLessThan": 6_500, "Next": "Count"}],
                    "Default": "Done",
                },
                "Done": {"Type": "Succeed"},
            },
        }
    )

    history, state = run_to_end(machine, {"n": 0}, limits=ExecutionLimits(max_history_events=None))

    assert len(history) > 25_000
    assert state.status == "SUCCEEDED"
    assert state.output == {"n": 6_500}


@pytest.mark.parametrize(("limit", "status"), [(24, "SUCCEEDED"), (23, "FAILED")])
def test_the_last_event_may_only_be_execution_succeeded(limit: int, status: str) -> None:
    # 1 ExecutionStarted + 11 x (Entered, Exited) + ExecutionSucceeded = 24 events.
    history, state = run_to_end(pass_chain(11), limits=ExecutionLimits(max_history_events=limit))

    assert len(history) == limit
    assert state.status == status
    assert history[-1].type == (
        "ExecutionSucceeded" if status == "SUCCEEDED" else "ExecutionFailed"
    )


def test_no_task_runs_once_the_quota_failed_the_execution() -> None:
    machine = machine_of(
        {
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Next": "Work"},
                "Work": {"Type": "Task", "Resource": "DoWork", "End": True},
            },
        }
    )
    state = given([started()])

    # Started, PassEntered, PassExited, TaskStateEntered, TaskScheduled, TaskStarted: the
    # 6th event would start the handler.
    decision = decide(machine, state, Wake(now=T0), limits=ExecutionLimits(max_history_events=6))

    assert types(decision.events)[-2:] == ["TaskScheduled", "ExecutionFailed"]
    assert decision.tasks == ()
    assert decision.wake_at is None
    assert not decision.more


def _map_machine(mode: str) -> StateMachine:
    processor: dict[str, JSON] = {
        "StartAt": "One",
        "States": {"One": {"Type": "Pass", "Next": "Two"}, "Two": {"Type": "Pass", "End": True}},
    }
    if mode == "DISTRIBUTED":
        processor["ProcessorConfig"] = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    return machine_of(
        {
            "StartAt": "Map",
            "States": {"Map": {"Type": "Map", "ItemProcessor": processor, "End": True}},
        }
    )


def test_a_distributed_maps_child_workflows_do_not_count_toward_the_quota() -> None:
    # Each iteration is a child execution with its own history (6 events: two Pass states);
    # the parent logs MapIterationStarted/Succeeded for each (hidden, not counted) beside
    # its own 8 events.
    driver = Driver(_map_machine("DISTRIBUTED"))
    limits = ExecutionLimits(max_history_events=20)
    driver.limits = limits

    history, state = driver.run(list(range(10)))

    assert state.status == "SUCCEEDED"
    assert len(history) == 28
    assert state.detached_events == 20
    assert fold(history).detached_events == 20
    assert [len(child) for child in driver.children] == [6] * 10


def test_an_inline_maps_iterations_count_toward_the_quota() -> None:
    limits = ExecutionLimits(max_history_events=20)

    history, state = run_to_end(_map_machine("INLINE"), list(range(10)), limits=limits)

    assert state.status == "FAILED"
    assert len(history) == 20
    assert state.error == "States.Runtime"


# -- Retry: the backoff is capped before it is computed -----------------------------------------


def _task(**fields: JSON) -> StateMachine:
    task = {"Type": "Task", "Resource": "DoWork", "End": True, **fields}
    return machine_of({"StartAt": "Work", "States": {"Work": task}})


def _failing_attempts(machine: StateMachine, attempts: int) -> list[HistoryEvent]:
    """The events of ``attempts`` failed attempts of the Task ``Work`` (jumping to each retry)."""
    history = [started()]
    state = given(history)
    now = T0
    decision = decide(machine, state, Wake(now=now))
    history.extend(decision.events)
    for _ in range(attempts):
        (task,) = decision.tasks
        failed = decide(
            machine,
            state,
            TaskResult(
                now=now,
                frame=task.frame,
                scheduled_id=task.scheduled_id,
                outcome="failed",
                error="Flaky",
                cause="",
            ),
        )
        history.extend(failed.events)
        if state.is_terminal:
            break
        assert failed.wake_at is not None
        now = failed.wake_at
        decision = decide(machine, state, Wake(now=now))
        history.extend(decision.events)
    return history


@pytest.mark.parametrize("jitter", ["NONE", "FULL"])
def test_a_doubling_retry_survives_attempt_1025(jitter: str) -> None:
    retrier = {
        "ErrorEquals": ["States.ALL"],
        "IntervalSeconds": 1,
        "BackoffRate": 2.0,
        "MaxAttempts": 99_999_999,
        "MaxDelaySeconds": 10,
        "JitterStrategy": jitter,
    }

    history = _failing_attempts(_task(Retry=[retrier]), 1_030)

    delays = [e.details["statemillRetryDelay"] for e in history if e.type == "TaskFailed"]
    assert len(delays) == 1_030
    assert all(0 <= delay <= 10 for delay in delays)
    if jitter == "NONE":
        assert delays[:5] == [1.0, 2.0, 4.0, 8.0, 10.0]
        assert set(delays[4:]) == {10.0}


def test_a_retry_without_max_delay_seconds_waits_at_most_the_execution_time() -> None:
    retrier = {"ErrorEquals": ["States.ALL"], "BackoffRate": 10.0, "MaxAttempts": 99_999_999}
    machine = _task(Retry=[retrier])
    history = [started()]
    state = given(history)
    decision = decide(machine, state, Wake(now=T0))
    (task,) = decision.tasks
    # The 400th failure of a tenfold backoff: 10 ** 400 s is no float.
    state.frames[task.frame].retry_counts = {0: 400}

    failed = decide(
        machine,
        state,
        TaskResult(
            now=T0, frame=task.frame, scheduled_id=task.scheduled_id, outcome="failed", error="E"
        ),
    )

    assert failed.events[-1].details["statemillRetryDelay"] == MAX_EXECUTION_SECONDS
    assert failed.wake_at == T0 + MAX_EXECUTION_SECONDS


# -- Wait and Task: seconds an input chooses ----------------------------------------------------


def _wait(field: str, value: str) -> StateMachine:
    return machine_of(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", field: value, "End": True}}}
    )


def _failure(history: list[HistoryEvent]) -> tuple[str, str]:
    last = history[-1]
    assert last.type == "ExecutionFailed", last.type
    return last.details["error"], last.details["cause"]


@pytest.mark.parametrize("value", [1e30, -1e30, 2**63, 10**400])
def test_seconds_path_beyond_a_long_is_refused(value: JSON) -> None:
    history, _ = run_to_end(_wait("SecondsPath", "$.s"), {"s": value})

    error, cause = _failure(history)
    assert error == "States.Runtime"
    assert "The SecondsPath parameter cannot be parsed as a long value: $.s == " in cause


def test_seconds_path_far_away_times_the_execution_out_after_a_year() -> None:
    machine = _wait("SecondsPath", "$.s")
    state = given([started({"s": 2**62})])

    waiting = decide(machine, state, Wake(now=T0))
    assert waiting.wake_at == T0 + MAX_EXECUTION_SECONDS
    woken = decide(machine, state, Wake(now=T0 + MAX_EXECUTION_SECONDS))

    assert types(woken.events) == ["ExecutionTimedOut"]
    assert woken.events[0].details == {
        "error": "States.Timeout",
        "cause": "The execution timed out.",
    }


def test_a_timestamp_in_year_9999_arms_no_timer_past_the_execution_time() -> None:
    machine = _wait("TimestampPath", "$.t")
    state = given([started({"t": "9999-12-31T23:59:59Z"})])

    decision = decide(machine, state, Wake(now=T0))

    assert decision.wake_at == T0 + MAX_EXECUTION_SECONDS


def test_the_execution_time_bound_can_be_lifted() -> None:
    machine = _wait("SecondsPath", "$.s")
    state = given([started({"s": 10 * MAX_EXECUTION_SECONDS})])

    decision = decide(
        machine, state, Wake(now=T0), limits=ExecutionLimits(max_execution_seconds=None)
    )

    assert decision.wake_at == T0 + 10 * MAX_EXECUTION_SECONDS


@pytest.mark.parametrize("value", ["1e30", "99999999999999999999999", "100000000"])
def test_jsonata_seconds_past_the_seconds_field_maximum_fail_the_state(value: str) -> None:
    machine = machine_of(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "W",
            "States": {"W": {"Type": "Wait", "Seconds": f"{{% {value} %}}", "End": True}},
        }
    )

    history, _ = run_to_end(machine)

    error, cause = _failure(history)
    assert error == "States.QueryEvaluationError"
    assert "returned a value larger than 99999999" in cause


@pytest.mark.parametrize("field", ["TimeoutSecondsPath", "HeartbeatSecondsPath"])
def test_task_seconds_paths_past_the_maximum_fail_the_state(field: str) -> None:
    history, _ = run_to_end(_task(**{field: "$.t"}), {"t": 10**30})

    error, cause = _failure(history)
    assert error == "States.Runtime"
    assert "is larger than the maximum of 99999999" in cause


@pytest.mark.parametrize("field", ["TimeoutSeconds", "HeartbeatSeconds"])
def test_jsonata_task_seconds_past_the_maximum_fail_the_state(field: str) -> None:
    machine = machine_of(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "Work",
            "States": {
                "Work": {
                    "Type": "Task",
                    "Resource": "DoWork",
                    field: "{% 99999999999999999999999999 %}",
                    "End": True,
                }
            },
        }
    )

    history, _ = run_to_end(machine)

    error, cause = _failure(history)
    assert error == "States.QueryEvaluationError"
    assert "returned a value larger than 99999999" in cause


# -- Map: counts an input chooses ---------------------------------------------------------------


def _map(**fields: JSON) -> StateMachine:
    processor = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    return machine_of(
        {
            "StartAt": "Map",
            "States": {
                "Map": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "ItemProcessor": processor,
                    "End": True,
                    **fields,
                }
            },
        }
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("MaxConcurrencyPath", 10**30),
        ("MaxConcurrencyPath", "9" * 5_000),
        ("ToleratedFailureCountPath", 2**31),
        ("ToleratedFailureCountPath", "-" + "9" * 5_000),
    ],
)
def test_counts_past_a_32_bit_integer_are_not_valid_integers(field: str, value: JSON) -> None:
    history, _ = run_to_end(_map(**{field: "$.n"}), {"items": [1], "n": value})

    error, cause = _failure(history)
    assert error == "States.Runtime"
    assert f"The {field} field refers to value " in cause
    assert "which is not a valid integer: $.n" in cause


def test_a_negative_max_concurrency_path_fails_instead_of_starting_nothing() -> None:
    history, _ = run_to_end(_map(MaxConcurrencyPath="$.n"), {"items": [1], "n": -1})

    error, cause = _failure(history)
    assert error == "States.Runtime"
    assert cause.endswith("MaxConcurrency cannot be negative.")


@pytest.mark.parametrize("value", [10**400, -(10**400), "1e400"])
def test_a_tolerated_failure_percentage_past_a_double_is_out_of_range(value: JSON) -> None:
    history, _ = run_to_end(_map(ToleratedFailurePercentagePath="$.p"), {"items": [1], "p": value})

    error, cause = _failure(history)
    assert error == "States.Runtime"
    assert cause.endswith("ToleratedFailurePercentage must be between 0 and 100.")


def test_a_negative_max_items_per_batch_path_fails_the_map() -> None:
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "End": True}},
    }
    machine = machine_of(
        {
            "StartAt": "Map",
            "States": {
                "Map": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "ItemProcessor": processor,
                    "ItemBatcher": {"MaxItemsPerBatchPath": "$.n"},
                    "End": True,
                }
            },
        }
    )

    history, _ = run_to_end(machine, {"items": [1, 2, 3], "n": -2})

    error, cause = _failure(history)
    assert error == "States.Runtime"
    assert cause.endswith("MaxItemsPerBatch cannot be negative.")


# -- depth an input chooses ---------------------------------------------------------------------


def test_data_nested_deeper_than_the_encoder_walks_fails_the_state() -> None:
    # Each turn wraps the input once more: after a few thousand turns no encoder can write it.
    machine = machine_of(
        {
            "StartAt": "Wrap",
            "States": {
                "Wrap": {"Type": "Pass", "Parameters": {"x.$": "$"}, "Next": "Again"},
                "Again": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": "Wrap"}],
                    "Default": "Done",
                },
                "Done": {"Type": "Succeed"},
            },
        }
    )

    history, state = run_to_end(machine, {})

    error, cause = _failure(history)
    assert error == "States.Runtime"
    assert "nested too deeply" in cause
    assert state.status == "FAILED"
