"""The replay property: the state of an execution is the fold of its log.

For every conformance case and for hand-made executions with retries, jitter, Maps and Parallels:
folding the recorded events rebuilds exactly the live state ``decide`` left behind, every event
round-trips the store codec, and a run resumed from any prefix of its log (fold the prefix, go on
deciding) appends exactly the events of the uninterrupted run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.core.effects import RunTask
from runtime.core.events import HistoryEvent, decode_event, encode_event
from runtime.core.evolve import fold
from runtime.definition.model import StateMachine
from tests.conformance import harness
from tests.core.core_support import (
    LAMBDA,
    Driver,
    Outcome,
    Script,
    Stuck,
    builtins,
    echo,
    machine_of,
)

JSON = Any

# -- lambda behaviours of the conformance cases, as synchronous scripts ---------------------------


def _lambda_failure(error_type: str, message: str) -> Outcome:
    cause = {"errorMessage": message, "errorType": error_type, "requestId": "r", "stackTrace": []}
    return ("failed", error_type, json.dumps(cause))


def _behaviour(name: str, task: RunTask) -> Outcome:
    if name == "id_function":
        return ("succeeded", task.input)
    if name == "echo_function":
        return ("succeeded", {"Return": "HelloWorld"})
    if name == "raise_exception":
        return _lambda_failure("Exception", "Some exception was raised.")
    if name == "raise_custom_exception":
        return _lambda_failure("CustomException", "")
    if name == "large_output_string":
        return ("succeeded", "a" * (257 * 1024))
    if name == "return_bytes_str":
        return ("succeeded", "HelloWorld!")
    if name == "return_decorated_input":
        shown = task.input if isinstance(task.input, str) else json.dumps(task.input)
        return ("succeeded", "input-event-" + shown)
    if name == "wait_60_seconds":
        if task.timeout_seconds is not None and task.timeout_seconds < 60:
            return ("timed_out", "States.Timeout", "")
        return ("succeeded", task.input)
    raise AssertionError(f"unknown behaviour {name}")


def case_script(case: dict[str, JSON]) -> Script:
    handlers: dict[str, str] = case.get("handlers") or {}

    def script(task: RunTask) -> Outcome:
        behaviour = handlers.get(task.handler_name)
        if behaviour is None:
            return ("failed", "Lambda.ResourceNotFoundException", f"no {task.handler_name}")
        return _behaviour(behaviour, task)

    return script


# -- hand-made executions -------------------------------------------------------------------------


def _flaky(task: RunTask) -> Outcome:
    """Fails the first two attempts of every call, then echoes."""
    if task.attempt < 2:
        return ("failed", "Flaky", f"attempt {task.attempt}")
    return ("succeeded", task.input)


def _odd_items_fail(task: RunTask) -> Outcome:
    if isinstance(task.input, int) and task.input % 2:
        return ("failed", "Odd", str(task.input))
    return ("succeeded", task.input)


def _task(resource: str = "Work", **fields: JSON) -> dict[str, JSON]:
    return {"Type": "Task", "Resource": resource, **fields}


RETRY_JITTER = {
    "ErrorEquals": ["Flaky"],
    "IntervalSeconds": 3,
    "BackoffRate": 2,
    "MaxAttempts": 3,
    "JitterStrategy": "FULL",
}

HAND_MADE: dict[str, tuple[dict[str, JSON], JSON, Script]] = {
    "task-retry-jitter": (
        {
            "StartAt": "T",
            "States": {"T": _task(LAMBDA.format("f"), Retry=[RETRY_JITTER], End=True)},
        },
        {"a": 1},
        _flaky,
    ),
    "map-retry-concurrency": (
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "MaxConcurrency": 2,
                    "ItemsPath": "$.items",
                    "ItemProcessor": {
                        "StartAt": "T",
                        "States": {"T": _task(Retry=[RETRY_JITTER], End=True)},
                    },
                    "ResultPath": "$.out",
                    "Next": "W",
                },
                "W": {"Type": "Wait", "Seconds": 10, "End": True},
            },
        },
        {"items": [1, 2, 3, 4, 5]},
        _flaky,
    ),
    "map-tolerated-failures-catch": (
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "MaxConcurrency": 3,
                    "ToleratedFailureCount": 1,
                    "ItemsPath": "$.items",
                    "ItemProcessor": {"StartAt": "T", "States": {"T": _task(End=True)}},
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "C"}],
                    "End": True,
                },
                "C": {"Type": "Pass", "End": True},
            },
        },
        {"items": [2, 4, 1, 6, 3, 8]},
        _odd_items_fail,
    ),
    "parallel-wait-retry": (
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [
                        {
                            "StartAt": "W",
                            "States": {
                                "W": {"Type": "Wait", "Seconds": 5, "Next": "T"},
                                "T": _task(Retry=[RETRY_JITTER], End=True),
                            },
                        },
                        {
                            "StartAt": "T2",
                            "States": {
                                "T2": _task(
                                    Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1}],
                                    End=True,
                                )
                            },
                        },
                    ],
                    "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}],
                    "End": True,
                }
            },
        },
        {"x": [1, 2]},
        _flaky,
    ),
    "nested-map-in-parallel": (
        {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Parallel",
                    "Branches": [
                        {
                            "StartAt": "M",
                            "States": {
                                "M": {
                                    "Type": "Map",
                                    "ItemsPath": "$.items",
                                    "MaxConcurrency": 1,
                                    "ItemProcessor": {
                                        "StartAt": "T",
                                        "States": {"T": _task(End=True)},
                                    },
                                    "End": True,
                                }
                            },
                        },
                        {"StartAt": "S", "States": {"S": {"Type": "Succeed"}}},
                    ],
                    "End": True,
                }
            },
        },
        {"items": [1, 2, 3]},
        echo,
    ),
    # Issue 11: the ItemSelector evaluated as each iteration starts (logic version 2).
    "map-item-selector-per-iteration": (
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "MaxConcurrency": 2,
                    "ItemsPath": "$.items",
                    "ItemSelector": {"v.$": "$$.Map.Item.Value", "k.$": "$.k"},
                    "ItemProcessor": {
                        "StartAt": "T",
                        "States": {"T": _task(Retry=[RETRY_JITTER], End=True)},
                    },
                    "End": True,
                }
            },
        },
        {"items": [1, 2, 3, 4, 5], "k": "x"},
        _flaky,
    ),
    "distributed-map-parameters": (
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "MaxConcurrency": 2,
                    "Parameters": {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                        "StartAt": "T",
                        "States": {"T": _task(End=True)},
                    },
                    "End": True,
                }
            },
        },
        [10, 20, 30],
        echo,
    ),
    "execution-timeout-during-retries": (
        {
            "StartAt": "T",
            "TimeoutSeconds": 20,
            "States": {
                "T": _task(
                    Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 8, "MaxAttempts": 9}],
                    End=True,
                )
            },
        },
        {},
        lambda task: ("failed", "Again", ""),
    ),
}


class Run(NamedTuple):
    machine: StateMachine
    script: Script
    events: list[HistoryEvent]
    live: JSON
    boundaries: tuple[int, ...]
    """Event counts at which a decision ended (what the shell commits atomically)."""


def run(definition: dict[str, JSON], input: JSON, script: Script, machine_type: str) -> Run:
    machine = machine_of(definition, machine_type)
    driver = Driver(machine, script)
    events, state = driver.run(input)
    ends = [1]
    for _, decision in driver.decisions:
        ends.append(ends[-1] + len(decision.events))
    return Run(machine, script, events, builtins(state), tuple(sorted(set(ends))))


@cache
def hand_made_run(name: str) -> Run:
    definition, input, script = HAND_MADE[name]
    return run(definition, input, script, "STANDARD")


@cache
def case_run(file_name: str) -> Run | None:
    """The case's run on the pure core, or None if ``decide`` raised on it."""
    case = harness.load_case(harness.CONFORMANCE / "cases" / file_name)
    try:
        return run(
            case["definition"],
            case["input"],
            case_script(case),
            case.get("machine_type") or "STANDARD",
        )
    except Stuck:
        raise
    except Exception:
        jsonata = set(case.get("features") or ()) & harness.JSONATA_TAGS
        if jsonata:  # in-progress JSONata support may still raise; tests/conformance tracks it
            return None
        raise


CASE_FILES = [path.name for path in harness.case_files("cases")]
MISSING = f"AWS conformance data not found at {harness.CONFORMANCE}"


def assert_replays(run: Run) -> None:
    assert builtins(fold(run.events)) == run.live
    for event in run.events:
        assert decode_event(encode_event(event)) == event
    assert [e.id for e in run.events] == list(range(1, len(run.events) + 1))


# -- fold(log) == live state --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_hand_made_execution_replays_to_the_live_state(name: str) -> None:
    found = hand_made_run(name)

    assert_replays(found)
    assert found.live["status"] in ("SUCCEEDED", "FAILED", "TIMED_OUT")


def test_hand_made_executions_end_as_expected() -> None:
    statuses = {name: hand_made_run(name).live["status"] for name in HAND_MADE}

    assert statuses == {
        "task-retry-jitter": "SUCCEEDED",
        "map-retry-concurrency": "SUCCEEDED",
        "map-tolerated-failures-catch": "SUCCEEDED",
        "parallel-wait-retry": "SUCCEEDED",
        "nested-map-in-parallel": "SUCCEEDED",
        "execution-timeout-during-retries": "TIMED_OUT",
        "map-item-selector-per-iteration": "SUCCEEDED",
        "distributed-map-parameters": "SUCCEEDED",
    }
    caught = hand_made_run("map-tolerated-failures-catch").live["output"]
    assert caught["e"]["Error"] == "States.ExceedToleratedFailureThreshold"


@pytest.mark.skipif(not CASE_FILES, reason=MISSING)
def test_every_conformance_case_replays_to_the_live_state() -> None:
    mismatched = []
    replayed = 0
    for name in CASE_FILES:
        found = case_run(name)
        if found is None:
            continue
        try:
            assert_replays(found)
        except AssertionError:
            mismatched.append(name)
        replayed += 1

    assert not mismatched, f"fold(events) != live state for {mismatched}"
    assert replayed >= len(CASE_FILES) * 0.8


# -- resuming from any prefix ---------------------------------------------------------------------


def resumed(found: Run, cut: int) -> list[HistoryEvent]:
    """The log of a run folded from its first ``cut`` events and continued from there."""
    prefix = found.events[:cut]
    state = fold(prefix)
    rest = Driver(found.machine, found.script).resume(state, now=prefix[-1].timestamp)
    return [*prefix, *rest]


@pytest.mark.parametrize("name", sorted(HAND_MADE))
def test_every_prefix_of_a_hand_made_run_resumes_identically(name: str) -> None:
    found = hand_made_run(name)

    for cut in range(1, len(found.events) + 1):
        assert resumed(found, cut) == found.events, f"diverged when resumed after event {cut}"


SCENARIOS = [f"hand:{name}" for name in sorted(HAND_MADE)] + [f"case:{name}" for name in CASE_FILES]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=st.sampled_from(SCENARIOS), data=st.data())
def test_a_run_resumed_from_a_committed_prefix_appends_the_same_events(
    scenario: str, data: st.DataObject
) -> None:
    """Cut after any decision (the unit the shell commits), fold, continue: same log."""
    kind, name = scenario.split(":", 1)
    found = hand_made_run(name) if kind == "hand" else case_run(name)
    if found is None:
        return
    cut = data.draw(st.sampled_from(found.boundaries), label="cut")

    assert resumed(found, cut) == found.events


_DRAWS_MID_DECISION = ("States.UUID", "States.MathRandom", "lambda:invoke", "JitterStrategy")


def _first_divergence(found: Run) -> str | None:
    for cut in range(1, len(found.events) + 1):
        try:
            again = resumed(found, cut)
        except Exception as exc:
            return f"{type(exc).__name__} resuming after {found.events[cut - 1].type} #{cut}"
        if again != found.events:
            return f"diverged resuming after {found.events[cut - 1].type} #{cut}"
    return None


@pytest.mark.skipif(not CASE_FILES, reason=MISSING)
def test_every_event_prefix_of_a_conformance_run_resumes_identically() -> None:
    """Stronger than the committed-prefix property: cut after any single event. Cases whose
    decisions draw random values mid-decision are left out (a resumed decision restarts its
    random stream)."""
    diverged = {}
    for name in CASE_FILES:
        case = harness.load_case(harness.CONFORMANCE / "cases" / name)
        if any(token in json.dumps(case["definition"]) for token in _DRAWS_MID_DECISION):
            continue
        found = case_run(name)
        problem = None if found is None else _first_divergence(found)
        if problem is not None:
            diverged[name] = problem

    assert not diverged, diverged


_SPIN = """
import json, sys
from runtime.core.decide import decide, start_event
from runtime.core.effects import Wake
from runtime.core.evolve import fold
from runtime.definition.load import load_definition

machine = load_definition(sys.argv[1])
first = start_event(execution_arn="e", state_machine_arn="m", name="n", input={"x": 1}, now=0.0)
state = fold([first])
decision = decide(machine, state, Wake(now=0.0))
print(json.dumps({"events": len(decision.events), "status": state.status}))
"""


def test_a_zero_time_cycle_does_not_freeze_decide() -> None:
    definition = {
        "StartAt": "Loop",
        "TimeoutSeconds": 60,
        "States": {
            "Loop": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "NumericEquals": 1, "Next": "Loop"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    root = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(
            [sys.executable, "-c", _SPIN, json.dumps(definition)],
            capture_output=True,
            text=True,
            timeout=3,
            cwd=root,
            check=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("decide did not return within 3 s")
    outcome = json.loads(done.stdout)
    assert outcome["events"] <= 30_000
