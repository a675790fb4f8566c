"""decide: given events / when an incoming fact / then new events + effects. Synchronous, pure."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.core.decide import decide
from runtime.core.effects import RunTask, StopRequested, TaskResult, Wake
from runtime.core.events import HistoryEvent
from runtime.core.evolve import fold
from tests.core.core_support import (
    LAMBDA,
    T0,
    Driver,
    builtins,
    given,
    machine_of,
    result_for,
    started,
    types,
)

JSON = Any


def task_machine(**fields: JSON) -> dict[str, JSON]:
    task = {"Type": "Task", "Resource": "DoWork", "End": True, **fields}
    return {"StartAt": "Work", "States": {"Work": task}}


def scheduled(
    definition: dict[str, JSON], input: JSON = None
) -> tuple[list[HistoryEvent], RunTask]:
    """Given: an execution whose first Task attempt is running."""
    history = [started(input)]
    decision = decide(machine_of(definition), fold(history), Wake(now=T0))
    (task,) = decision.tasks
    return [*history, *decision.events], task


# -- Pass ---------------------------------------------------------------------------------------


def test_pass_chain_runs_to_the_end_in_one_decision() -> None:
    machine = machine_of(
        {
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Result": {"n": 1}, "ResultPath": "$.a", "Next": "B"},
                "B": {"Type": "Pass", "Parameters": {"sum.$": "$.a.n"}, "End": True},
            },
        }
    )
    state = given([started({"x": 0})])

    decision = decide(machine, state, Wake(now=T0))

    assert types(decision.events) == [
        "PassStateEntered",
        "PassStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert [e.id for e in decision.events] == [2, 3, 4, 5, 6]
    assert [e.previous_event_id for e in decision.events] == [1, 2, 3, 4, 5]
    assert json.loads(decision.events[1].details["output"]) == {"x": 0, "a": {"n": 1}}
    assert decision.tasks == ()
    assert decision.wake_at is None
    assert state.status == "SUCCEEDED"
    assert state.output == {"sum": 1}


def test_a_terminal_execution_decides_nothing() -> None:
    machine = machine_of({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    events, _ = Driver(machine).run()
    state = given(events)

    assert decide(machine, state, Wake(now=T0 + 1)).events == ()


# -- Task scheduling ----------------------------------------------------------------------------


def test_task_is_scheduled_and_started_with_a_run_task_effect() -> None:
    definition = task_machine(Parameters={"id.$": "$.order"}, TimeoutSeconds=30)

    history, task = scheduled(definition, {"order": 7})

    assert types(history) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
    ]
    assert json.loads(history[2].details["parameters"]) == {"id": 7}
    assert history[2].details["timeoutInSeconds"] == 30
    assert task.handler_name == "DoWork"
    assert task.input == {"id": 7}
    assert task.attempt == 0
    assert task.timeout_seconds == 30
    assert task.scheduled_id == history[2].id
    assert task.lambda_function is False


def test_lambda_arn_resolves_to_the_function_name() -> None:
    history, task = scheduled(task_machine(Resource=LAMBDA.format("charge:prod")), [1])

    assert types(history)[-2:] == ["LambdaFunctionScheduled", "LambdaFunctionStarted"]
    assert task.handler_name == "charge"
    assert task.input == [1]
    assert task.lambda_function is True


def test_lambda_invoke_passes_the_payload_to_the_named_function() -> None:
    definition = task_machine(
        Resource="arn:aws:states:::lambda:invoke",
        Parameters={"FunctionName": "charge", "Payload": {"amount.$": "$.a"}},
    )

    history, task = scheduled(definition, {"a": 3})

    assert types(history)[-2:] == ["TaskScheduled", "TaskStarted"]
    assert task.handler_name == "charge"
    assert task.input == {"amount": 3}
    assert task.lambda_invoke is True


# -- Task results -------------------------------------------------------------------------------


def test_task_success_applies_result_selector_and_result_path() -> None:
    definition = task_machine(ResultSelector={"v.$": "$.value"}, ResultPath="$.result")
    history, task = scheduled(definition, {"keep": True})
    state = given(history)

    decision = decide(
        machine_of(definition), state, result_for(task, ("succeeded", {"value": 5}), T0 + 1)
    )

    assert types(decision.events) == ["TaskSucceeded", "TaskStateExited", "ExecutionSucceeded"]
    assert decision.events[0].timestamp == T0 + 1
    assert state.output == {"keep": True, "result": {"v": 5}}


def test_task_failure_without_retry_or_catch_fails_the_execution() -> None:
    definition = task_machine()
    history, task = scheduled(definition)
    state = given(history)

    decision = decide(machine_of(definition), state, result_for(task, ("failed", "Oops", "why")))

    assert types(decision.events) == ["TaskFailed", "ExecutionFailed"]
    assert decision.events[0].details["error"] == "Oops"
    assert (state.status, state.error, state.cause) == ("FAILED", "Oops", "why")
    assert decision.wake_at is None


def test_timed_out_task_logs_task_timed_out() -> None:
    definition = task_machine(TimeoutSeconds=5)
    history, task = scheduled(definition)
    state = given(history)

    outcome = ("timed_out", "States.Timeout", "")
    decision = decide(machine_of(definition), state, result_for(task, outcome, T0 + 5))

    assert types(decision.events) == ["TaskTimedOut", "ExecutionFailed"]
    assert state.error == "States.Timeout"


# -- Retry ----------------------------------------------------------------------------------------


RETRY = {"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "BackoffRate": 3.0, "MaxAttempts": 3}


def test_retry_records_its_delay_and_wakes_at_the_backoff() -> None:
    definition = task_machine(Retry=[RETRY])
    machine = machine_of(definition)
    history, task = scheduled(definition)
    state = given(history)
    now = T0
    delays = []
    for attempt in range(3):
        assert task.attempt == attempt
        decision = decide(machine, state, result_for(task, ("failed", "Flaky", "c"), now))
        assert types(decision.events) == ["TaskFailed"]
        delay = decision.events[0].details["statemillRetryDelay"]
        delays.append(delay)
        assert decision.wake_at == pytest.approx(now + delay)
        assert decision.tasks == ()

        # Too early: nothing happens, the same timer stands.
        early = decide(machine, state, Wake(now=now + delay - 0.5))
        assert early.events == ()
        assert early.wake_at == pytest.approx(now + delay)

        now += delay
        retried = decide(machine, state, Wake(now=now))
        assert types(retried.events) == ["TaskScheduled", "TaskStarted"]
        (task,) = retried.tasks

    assert delays == [2.0, 6.0, 18.0]
    final = decide(machine, state, result_for(task, ("failed", "Flaky", "c"), now))
    assert types(final.events) == ["TaskFailed", "ExecutionFailed"]
    assert "statemillRetryDelay" not in final.events[0].details


def test_retry_delay_is_capped_by_max_delay_seconds() -> None:
    retrier = {**RETRY, "IntervalSeconds": 10, "MaxAttempts": 5, "MaxDelaySeconds": 15}
    definition = task_machine(Retry=[retrier])
    machine = machine_of(definition)
    events, state = Driver(machine, lambda task: ("failed", "Flaky", "")).run()

    failures = [e.details for e in events if e.type == "TaskFailed"]
    delays = [details.get("statemillRetryDelay") for details in failures]
    assert delays == [10.0, 15.0, 15.0, 15.0, 15.0, None]
    assert state.status == "FAILED"


def test_only_the_first_matching_retrier_counts() -> None:
    retriers = [
        {"ErrorEquals": ["Other"], "MaxAttempts": 5},
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 1},
    ]
    machine = machine_of(task_machine(Retry=retriers))
    events, state = Driver(machine, lambda task: ("failed", "Boom", "")).run()

    assert types(events).count("TaskFailed") == 2
    assert state.error == "Boom"


def _jittered_delay(seed: int) -> float:
    retrier = {**RETRY, "IntervalSeconds": 100, "JitterStrategy": "FULL"}
    definition = task_machine(Retry=[retrier])
    history, task = scheduled(definition)
    decision = decide(
        machine_of(definition), given(history), result_for(task, ("failed", "Flaky"), T0, seed)
    )
    delay: float = decision.events[0].details["statemillRetryDelay"]
    assert decision.wake_at == pytest.approx(T0 + delay)
    return delay


def test_full_jitter_is_deterministic_for_a_seed_and_bounded() -> None:
    delays = {seed: _jittered_delay(seed) for seed in range(20)}

    assert all(0 <= delay < 100 for delay in delays.values())
    assert delays == {seed: _jittered_delay(seed) for seed in range(20)}
    assert len(set(delays.values())) > 1


def test_replay_uses_the_recorded_jitter_not_a_new_draw() -> None:
    retrier = {**RETRY, "IntervalSeconds": 100, "JitterStrategy": "FULL"}
    definition = task_machine(Retry=[retrier])
    history, task = scheduled(definition)
    live = given(history)
    decision = decide(machine_of(definition), live, result_for(task, ("failed", "Flaky"), T0, 99))

    replayed = fold([*history, *decision.events])

    assert builtins(replayed) == builtins(live)
    frame = replayed.frames[""]
    assert frame.fire_at == pytest.approx(T0 + decision.events[0].details["statemillRetryDelay"])


# -- Catch --------------------------------------------------------------------------------------


def test_catch_with_result_path_merges_the_error_into_the_input() -> None:
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": "DoWork",
                "Retry": [{"ErrorEquals": ["Other"]}],
                "Catch": [
                    {"ErrorEquals": ["Nope"], "Next": "Unused"},
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handle"},
                ],
                "End": True,
            },
            "Unused": {"Type": "Succeed"},
            "Handle": {"Type": "Pass", "End": True},
        },
    }
    history, task = scheduled(definition, {"order": 1})
    state = given(history)

    decision = decide(machine_of(definition), state, result_for(task, ("failed", "Boom", "bad")))

    assert types(decision.events) == [
        "TaskFailed",
        "TaskStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]
    assert state.output == {"order": 1, "error": {"Error": "Boom", "Cause": "bad"}}


def test_states_runtime_is_never_caught_by_states_all() -> None:
    definition = {
        "StartAt": "Bad",
        "States": {
            "Bad": {
                "Type": "Task",
                "Resource": "DoWork",
                "InputPath": "$.missing",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }
    events, state = Driver(machine_of(definition)).run({"a": 1})

    assert state.status == "FAILED"
    assert state.error == "States.Runtime"
    assert "Caught" not in {e.details.get("name") for e in events}


# -- Wait ---------------------------------------------------------------------------------------


def test_wait_sets_a_timer_and_exits_once_it_is_due() -> None:
    machine = machine_of(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}}
    )
    state = given([started({"a": 1})])

    entered = decide(machine, state, Wake(now=T0))
    assert types(entered.events) == ["WaitStateEntered"]
    assert entered.wake_at == T0 + 30

    early = decide(machine, state, Wake(now=T0 + 29.9))
    assert early.events == ()
    assert early.wake_at == T0 + 30

    due = decide(machine, state, Wake(now=T0 + 30))
    assert types(due.events) == ["WaitStateExited", "ExecutionSucceeded"]
    assert due.events[0].timestamp == T0 + 30
    assert state.output == {"a": 1}


def test_wait_timestamp_path_in_the_past_exits_at_once() -> None:
    machine = machine_of(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "TimestampPath": "$.at", "End": True}}}
    )
    state = given([started({"at": "2001-01-01T00:00:00Z"})])

    decision = decide(machine, state, Wake(now=T0))

    assert types(decision.events) == ["WaitStateEntered", "WaitStateExited", "ExecutionSucceeded"]


# -- Map and Parallel -----------------------------------------------------------------------------


def _max_iterations_running(events: list[HistoryEvent]) -> int:
    running = peak = 0
    for event in events:
        if event.type == "MapIterationStarted":
            running += 1
            peak = max(peak, running)
        elif event.type in ("MapIterationSucceeded", "MapIterationFailed"):
            running -= 1
    return peak


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_map_never_runs_more_iterations_than_max_concurrency(limit: int) -> None:
    machine = machine_of(
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "MaxConcurrency": limit,
                    "ItemProcessor": {
                        "StartAt": "T",
                        "States": {"T": {"Type": "Task", "Resource": "Double", "End": True}},
                    },
                    "End": True,
                }
            },
        }
    )
    driver = Driver(machine, lambda task: ("succeeded", task.input * 2))

    events, state = driver.run(list(range(9)))

    assert state.output == [n * 2 for n in range(9)]
    assert _max_iterations_running(events) == min(limit, 9)
    assert driver.max_running <= limit


def test_map_without_max_concurrency_starts_every_iteration() -> None:
    machine = machine_of(
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "ItemsPath": "$.items",
                    "ItemSelector": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
                    "ItemProcessor": {
                        "StartAt": "T",
                        "States": {"T": {"Type": "Task", "Resource": "Id", "End": True}},
                    },
                    "End": True,
                }
            },
        }
    )
    driver = Driver(machine)

    events, state = driver.run({"items": ["a", "b", "c", "d"]})

    assert driver.max_running == 4
    assert state.output == [{"v": v, "i": i} for i, v in enumerate("abcd")]
    assert types(events).count("MapIterationSucceeded") == 4


def test_parallel_collects_branch_outputs_in_branch_order() -> None:
    machine = machine_of(
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [
                        {
                            "StartAt": "Slow",
                            "States": {"Slow": {"Type": "Wait", "Seconds": 5, "End": True}},
                        },
                        {
                            "StartAt": "Fast",
                            "States": {"Fast": {"Type": "Pass", "Result": 2, "End": True}},
                        },
                    ],
                    "End": True,
                }
            },
        }
    )
    state = given([started({"n": 1})])

    first = decide(machine, state, Wake(now=T0))
    assert types(first.events) == [
        "ParallelStateEntered",
        "ParallelStateStarted",
        "WaitStateEntered",
        "PassStateEntered",
        "PassStateExited",
    ]
    assert first.wake_at == T0 + 5

    second = decide(machine, state, Wake(now=T0 + 5))
    # As AWS records it: no ParallelStateSucceeded between the last branch and the exit.
    assert types(second.events) == ["WaitStateExited", "ParallelStateExited", "ExecutionSucceeded"]
    assert state.output == [{"n": 1}, 2]


def test_a_failing_branch_fails_the_parallel_state() -> None:
    machine = machine_of(
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [
                        {
                            "StartAt": "F",
                            "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "C"}},
                        },
                        {
                            "StartAt": "W",
                            "States": {"W": {"Type": "Wait", "Seconds": 5, "End": True}},
                        },
                    ],
                    "End": True,
                }
            },
        }
    )
    events, state = Driver(machine).run()

    assert "ParallelStateFailed" in types(events)
    assert (state.status, state.error, state.cause) == ("FAILED", "E", "C")


# -- execution timeout, stop, stale results --------------------------------------------------------


def test_execution_timeout_seconds_times_the_execution_out() -> None:
    definition = {**task_machine(), "TimeoutSeconds": 60}
    machine = machine_of(definition)
    history, _task = scheduled(definition)
    state = given(history)

    pending = decide(machine, state, Wake(now=T0 + 59))
    assert pending.events == ()
    assert pending.wake_at == T0 + 60

    decision = decide(machine, state, Wake(now=T0 + 60))

    assert types(decision.events) == ["ExecutionTimedOut"]
    assert (state.status, state.error) == ("TIMED_OUT", "States.Timeout")
    assert decision.wake_at is None


def test_stop_requested_aborts_the_execution() -> None:
    definition = task_machine()
    history, _task = scheduled(definition)
    state = given(history)

    decision = decide(
        machine_of(definition), state, StopRequested(now=T0 + 1, error="Halt", cause="user")
    )

    assert types(decision.events) == ["ExecutionAborted"]
    assert decision.events[0].details == {"error": "Halt", "cause": "user"}
    assert state.status == "ABORTED"


def test_stale_task_results_are_ignored() -> None:
    definition = task_machine(Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1}])
    machine = machine_of(definition)
    history, first = scheduled(definition)
    state = given(history)
    decide(machine, state, result_for(first, ("failed", "Boom"), T0))
    retried = decide(machine, state, Wake(now=T0 + 1))
    (second,) = retried.tasks
    before = builtins(state)

    # A late result of the first attempt, a duplicate id, an unknown frame: all ignored.
    late = decide(machine, state, result_for(first, ("succeeded", "old"), T0 + 2))
    wrong_frame = TaskResult(
        now=T0 + 2, frame="9:9", scheduled_id=second.scheduled_id, outcome="succeeded"
    )
    unknown = decide(machine, state, wrong_frame)

    assert late.events == ()
    assert unknown.events == ()
    assert builtins(state) == before

    done = decide(machine, state, result_for(second, ("succeeded", "new"), T0 + 2))
    assert types(done.events) == ["TaskSucceeded", "TaskStateExited", "ExecutionSucceeded"]
    assert state.output == "new"
    again = decide(machine, state, result_for(second, ("succeeded", "dup"), T0 + 3))
    assert again.events == ()
    assert state.output == "new"


# -- ItemBatcher ----------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_item_batcher_groups_items_in_both_query_languages(language: str) -> None:
    processor = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "End": True}},
    }
    batcher: dict[str, JSON]
    map_state: dict[str, JSON] = {"Type": "Map", "ItemProcessor": processor, "End": True}
    if language == "JSONata":
        batcher = {"MaxItemsPerBatch": "{% $states.input.size %}", "BatchInput": {"k": "{% 1 %}"}}
        map_state["Items"] = "{% $states.input.items %}"
    else:
        batcher = {"MaxItemsPerBatchPath": "$.size", "BatchInput": {"k.$": "$.k"}}
        map_state["ItemsPath"] = "$.items"
    map_state["ItemBatcher"] = batcher
    machine = machine_of({"QueryLanguage": language, "StartAt": "M", "States": {"M": map_state}})

    _, state = Driver(machine).run({"items": [1, 2, 3, 4, 5], "size": 2, "k": 1})

    assert state.status == "SUCCEEDED"
    assert state.output == [
        {"Items": [1, 2], "BatchInput": {"k": 1}},
        {"Items": [3, 4], "BatchInput": {"k": 1}},
        {"Items": [5], "BatchInput": {"k": 1}},
    ]
