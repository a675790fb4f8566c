"""Workflow variables (ASL "Assign") in the pure core: given a definition and an input, when the
core decides, then the events carry what AWS records and fold(events) rebuilds the variables."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from runtime.core.decide import decide, start_event
from runtime.core.effects import Decision, TaskResult, Wake
from runtime.core.events import HistoryEvent
from runtime.core.evolve import fold
from runtime.core.state import ExecutionState
from runtime.definition import load_definition
from runtime.definition.model import StateMachine

JSON = Any
NOW = 1_700_000_000.0


def start(
    definition: dict[str, JSON], data: JSON = None
) -> tuple[StateMachine, ExecutionState, list[HistoryEvent]]:
    machine = load_definition(definition)
    first = start_event(
        execution_arn="arn:aws:states:us-east-1:111111111111:execution:m:e",
        state_machine_arn="arn:aws:states:us-east-1:111111111111:stateMachine:m",
        name="e",
        input={} if data is None else data,
        now=NOW,
    )
    return machine, fold([first]), [first]


def run(
    definition: dict[str, JSON], data: JSON = None, seed: int = 7
) -> tuple[ExecutionState, list[HistoryEvent]]:
    """Decide until the execution blocks or ends (Pass/Choice/Parallel/Map machines end at once)."""
    machine, state, events = start(definition, data)
    decision = decide(machine, state, Wake(now=NOW, seed=seed))
    events.extend(decision.events)
    return state, events


def output(events: list[HistoryEvent]) -> JSON:
    last = events[-1]
    assert last.type == "ExecutionSucceeded", last
    return msgspec.json.decode(last.details["output"])


def exited(events: list[HistoryEvent], name: str) -> dict[str, JSON]:
    found = [e for e in events if e.type.endswith("StateExited") and e.details["name"] == name]
    assert found, name
    return found[-1].details


def test_assign_jsonpath_records_aws_details_and_is_read_by_paths() -> None:
    definition = {
        "StartAt": "Set",
        "States": {
            "Set": {
                "Type": "Pass",
                "Result": {"answer": 42},
                "Assign": {"theAnswer.$": "$.answer", "label": "fixed"},
                "Next": "Use",
            },
            "Use": {
                "Type": "Pass",
                "Parameters": {"a.$": "$theAnswer", "l.$": "States.Format('x{}', $label)"},
                "End": True,
            },
        },
    }
    _, events = run(definition)
    details = exited(events, "Set")
    assert details["assignedVariables"] == {"theAnswer": "42", "label": '"fixed"'}
    assert details["assignedVariablesDetails"] == {"truncated": False}
    assert "assignedVariables" not in exited(events, "Use")
    assert output(events) == {"a": 42, "l": "xfixed"}


def test_assign_sees_values_from_before_the_state() -> None:
    """Evaluation order: every reference in a state reads the variables as they were when the
    state was entered, so a swap works and OutputPath reads the old value."""
    definition = {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": {"a": 1, "b": 2}, "Next": "Swap"},
            "Swap": {
                "Type": "Pass",
                "Assign": {"a.$": "$b", "b.$": "$a"},
                "Parameters": {"a.$": "$a"},
                "Next": "Show",
            },
            "Show": {"Type": "Pass", "Parameters": {"a.$": "$a", "b.$": "$b"}, "End": True},
        },
    }
    _, events = run(definition)
    assert msgspec.json.decode(exited(events, "Swap")["output"]) == {"a": 1}
    assert output(events) == {"a": 2, "b": 1}


def test_jsonata_assign_and_output_see_input_not_new_values() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": {"n": 1}, "Next": "Step"},
            "Step": {
                "Type": "Pass",
                "Assign": {"n": "{% $n + 10 %}", "seen": "{% $states.input.x %}"},
                "Output": {"old": "{% $n %}"},
                "Next": "Last",
            },
            "Last": {"Type": "Pass", "Output": "{% [$n, $seen] %}", "End": True},
        },
    }
    _, events = run(definition, {"x": "in"})
    assert msgspec.json.decode(exited(events, "Step")["output"]) == {"old": 1}
    assert output(events) == [11, "in"]


def test_fold_rebuilds_variables() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"x": {"deep": [1, 2]}}, "Next": "W"},
            "W": {"Type": "Wait", "Seconds": 60, "Assign": {"y": "later"}, "End": True},
        },
    }
    machine, live, events = start(definition)
    decision = decide(machine, live, Wake(now=NOW))
    events.extend(decision.events)
    assert live.frames[""].variables == {"x": {"deep": [1, 2]}}
    rebuilt = fold(events)
    assert msgspec.to_builtins(rebuilt) == msgspec.to_builtins(live)
    later = decide(machine, rebuilt, Wake(now=NOW + 60))
    assert exited([*events, *later.events], "W")["assignedVariables"] == {"y": '"later"'}


def test_parallel_branch_reads_outer_variables_but_writes_stay_inside() -> None:
    definition = {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": {"x": "outer"}, "Next": "P"},
            "P": {
                "Type": "Parallel",
                "Branches": [
                    {
                        "StartAt": "B",
                        "States": {
                            "B": {
                                "Type": "Pass",
                                "Assign": {"x": "inner"},
                                "Parameters": {"seen.$": "$x"},
                                "Next": "C",
                            },
                            "C": {"Type": "Pass", "Parameters": {"now.$": "$x"}, "End": True},
                        },
                    }
                ],
                "Next": "After",
            },
            "After": {
                "Type": "Pass",
                "Parameters": {"x.$": "$x", "branch.$": "$[0]"},
                "End": True,
            },
        },
    }
    _, events = run(definition)
    assert output(events) == {"x": "outer", "branch": {"now": "inner"}}


def test_map_iterations_read_outer_variables() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Assign": {"factor": 10}, "Next": "M"},
            "M": {
                "Type": "Map",
                "Items": "{% $states.input.values %}",
                "ItemProcessor": {
                    "StartAt": "Mul",
                    "States": {
                        "Mul": {
                            "Type": "Pass",
                            "Assign": {"factor": 0},
                            "Output": "{% $states.input * $factor %}",
                            "End": True,
                        }
                    },
                },
                "Assign": {"total": "{% $sum($states.result) %}"},
                "Next": "Done",
            },
            "Done": {"Type": "Pass", "Output": "{% [$total, $factor] %}", "End": True},
        },
    }
    _, events = run(definition, {"values": [1, 2, 3]})
    assert output(events) == [60, 10]


def test_catch_assign_sees_error_output() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "work",
                "Assign": {"never": "{% $states.result %}"},
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Assign": {"err": "{% $states.errorOutput.Error %}"},
                        "Output": "{% $states.input %}",
                        "Next": "Done",
                    }
                ],
                "End": True,
            },
            "Done": {
                "Type": "Pass",
                "Output": "{% {'err': $err, 'in': $states.input} %}",
                "End": True,
            },
        },
    }
    machine, state, events = start(definition, {"k": 1})
    first: Decision = decide(machine, state, Wake(now=NOW))
    events.extend(first.events)
    (task,) = first.tasks
    failed = TaskResult(
        now=NOW + 1,
        frame=task.frame,
        scheduled_id=task.scheduled_id,
        outcome="failed",
        error="Boom",
        cause="bad",
    )
    events.extend(decide(machine, state, failed).events)
    assert exited(events, "T")["assignedVariables"] == {"err": '"Boom"'}
    assert output(events) == {"err": "Boom", "in": {"k": 1}}


def test_jsonata_random_and_uuid_are_deterministic_for_a_seed() -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "R",
        "States": {
            "R": {
                "Type": "Pass",
                "Output": {"u": "{% $uuid() %}", "r": "{% $random() %}", "s": "{% $random(5) %}"},
                "End": True,
            }
        },
    }
    _, first = run(definition, seed=11)
    _, again = run(definition, seed=11)
    _, other = run(definition, seed=12)
    assert output(first) == output(again)
    assert output(first)["u"] != output(other)["u"]
    assert output(first)["s"] == output(other)["s"]


def test_undefined_variable_in_a_path_fails_with_states_runtime() -> None:
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"v.$": "$missing"}, "End": True}},
    }
    _, events = run(definition)
    assert events[-1].type == "ExecutionFailed"
    assert events[-1].details["error"] == "States.Runtime"
    assert "$missing" in events[-1].details["cause"]


@pytest.mark.parametrize(
    ("items", "cause"),
    [
        ("{% 1 %}", "returned an unexpected result type. Expected 'array', but was 'number'"),
        ("{% $nothing %}", "returned nothing (undefined)"),
    ],
)
def test_jsonata_evaluation_failure_is_logged(items: str, cause: str) -> None:
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "Items": items,
                "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    _, events = run(definition)
    types = [e.type for e in events]
    assert types[-3:] == ["EvaluationFailed", "MapStateFailed", "ExecutionFailed"]
    failed = events[-3].details
    assert failed["error"] == "States.QueryEvaluationError"
    assert failed["location"] == "Items"
    assert failed["state"] == "M"
    assert cause in events[-1].details["cause"]
    assert (
        events[-1]
        .details["cause"]
        .startswith("An error occurred while executing the state 'M' (entered at the event id #2).")
    )
