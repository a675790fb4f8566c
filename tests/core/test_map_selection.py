"""A Map's ItemSelector evaluated as each iteration starts (issue 11, logic version 2).

Selecting every item at MapStateStarted held the event loop and the memory for all of them at
once (40,000 items of 256 KiB each: gigabytes). Now each iteration's input is selected when the
iteration starts, within MaxConcurrency, and recorded in its MapIterationStarted
(``statemillInput``, stripped on export), so the fold stays deterministic; an ItemSelector that
fails on item k fails the Map with the error and cause the selection at the start gave; and logs
written before (version 1, ``tests/golden/v1``) fold and go on as they were written.

Given events / when an incoming fact / then events; synchronous, no event loop.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from runtime import check, load_history
from runtime.core.decide import decide
from runtime.core.effects import Wake
from runtime.core.events import HistoryEvent, encode_event
from runtime.core.evolve import fold
from runtime.definition.load import load_definition
from tests.core.core_support import (
    T0,
    Driver,
    builtins,
    given,
    machine_of,
    started,
    types,
)

JSON = Any

V1_LOGS = Path(__file__).resolve().parent.parent / "golden" / "v1"

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
DISTRIBUTED = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}


def map_machine(
    selector: JSON, *, language: str = "JSONPath", processor: JSON = PASS, **fields: JSON
) -> JSON:
    state = {"Type": "Map", "ItemSelector": selector, "ItemProcessor": processor, "End": True}
    return machine_of(
        {"QueryLanguage": language, "StartAt": "M", "States": {"M": {**state, **fields}}}
    )


def selected_indices(events: list[HistoryEvent] | tuple[HistoryEvent, ...]) -> set[int]:
    """The items whose selected input appears anywhere in ``events`` (each selection carries
    ``selected-<index>``), whatever event or field holds it."""
    found: set[int] = set()
    for event in events:
        found.update(int(n) for n in re.findall(rb"selected-(\d+)", encode_event(event)))
    return found


# -- selection per iteration ----------------------------------------------------------------------


def test_item_selector_is_evaluated_only_for_the_iterations_that_started() -> None:
    """Fails before the change: MapStateStarted recorded all 1,000 selections at once."""
    machine = map_machine(
        {"v.$": "States.Format('selected-{}', $$.Map.Item.Index)"},
        processor={"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "W", "End": True}}},
        MaxConcurrency=10,
    )
    state = given([started(list(range(1000)))])

    first = decide(machine, state, Wake(now=T0))

    assert types(first.events).count("MapIterationStarted") == 10
    assert selected_indices(first.events) == set(range(10))
    assert state.frames[""].items == list(range(1000))  # the items, not 1,000 selections


def test_by_the_time_the_first_iteration_ends_only_max_concurrency_items_were_selected() -> None:
    machine = map_machine(
        {"v.$": "States.Format('selected-{}', $$.Map.Item.Index)", "i.$": "$$.Map.Item.Index"},
        processor={"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "W", "End": True}}},
        MaxConcurrency=10,
    )
    events, state = Driver(machine).run(list(range(1000)))

    first_end = types(events).index("MapIterationSucceeded")
    assert selected_indices(events[:first_end]) == set(range(10))
    assert state.status == "SUCCEEDED"
    assert [item["i"] for item in state.output] == list(range(1000))


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_each_iteration_records_its_selected_input_and_aws_sees_no_change(language: str) -> None:
    if language == "JSONata":
        selector: JSON = {
            "v": "{% $states.context.Map.Item.Value %}",
            "i": "{% $states.context.Map.Item.Index %}",
            "k": "{% $states.input.k %}",
        }
        fields: dict[str, JSON] = {"Items": "{% $states.input.items %}"}
    else:
        selector = {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index", "k.$": "$.k"}
        fields = {"ItemsPath": "$.items"}
    machine = map_machine(selector, language=language, MaxConcurrency=2, **fields)

    events, state = Driver(machine).run({"items": ["a", "b", "c"], "k": 7})

    expected = [{"v": v, "i": i, "k": 7} for i, v in enumerate("abc")]
    assert state.output == expected
    map_started = next(e for e in events if e.type == "MapStateStarted")
    assert map_started.details["statemillItems"] == ["a", "b", "c"]
    iterations = [e for e in events if e.type == "MapIterationStarted"]
    assert [e.details["statemillInput"] for e in iterations] == expected
    # AWS's events are as before: private fields are stripped on export.
    assert [e.to_aws()["mapIterationStartedEventDetails"] for e in iterations] == [
        {"name": "M", "index": i} for i in range(3)
    ]
    assert builtins(fold(events)) == builtins(state)


def test_a_map_without_item_selector_records_no_input_per_iteration() -> None:
    machine = machine_of(
        {"StartAt": "M", "States": {"M": {"Type": "Map", "ItemProcessor": PASS, "End": True}}}
    )

    events, state = Driver(machine).run([1, 2])

    assert state.output == [1, 2]
    iterations = [e for e in events if e.type == "MapIterationStarted"]
    assert [e.details for e in iterations] == [{"name": "M", "index": i} for i in range(2)]


def test_random_values_drawn_by_a_selector_are_replayed_from_the_log() -> None:
    machine = map_machine(
        {"id.$": "States.UUID()", "i.$": "$$.Map.Item.Index"},
        processor={"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "W", "End": True}}},
        MaxConcurrency=1,
    )
    events, state = Driver(machine, seed=3).run([0, 1, 2])

    cut = [e.type for e in events].index("MapIterationStarted") + 1  # iteration 0 started
    resumed = fold(events[:cut])
    rest = Driver(machine, seed=99).resume(resumed, now=events[cut - 1].timestamp)

    assert builtins(fold(events)) == builtins(state)
    assert types(rest) == types(events)[cut:]
    # Iteration 0's draw is the recorded one; the later iterations drew in later decisions.
    assert resumed.output[0] == state.output[0]
    assert resumed.output[1] != state.output[1]


def test_batched_items_are_still_selected_when_the_map_starts() -> None:
    machine = map_machine(
        {"v.$": "$$.Map.Item.Value"},
        processor={**PASS, "ProcessorConfig": DISTRIBUTED},
        ItemBatcher={"MaxItemsPerBatch": 2},
    )

    events, state = Driver(machine).run([1, 2, 3])

    assert state.output == [{"Items": [1, 2]}, {"Items": [3]}]
    assert all("statemillInput" not in e.details for e in events)


# -- an ItemSelector that fails on item k --------------------------------------------------------

ITEMS = [{"a": 1}, {"b": 2}, {"a": 3}]
#: The cause the selection at MapStateStarted gave (logic version 1), for item 1.
JSONPATH_CAUSE = (
    "An error occurred while executing the state 'M' (entered at the event id #2). The JSONPath "
    "'$$.Map.Item.Value.a' specified for the field 'x.$' could not be found in the input "
    '\'{"Execution":{"Id":"arn:aws:states:us-east-1:123456789012:execution:Machine:run-1",'
    '"Input":[{"a":1},{"b":2},{"a":3}],"Name":"run-1","RoleArn":"",'
    '"StartTime":"2023-11-14T22:13:20.000Z","RedriveCount":0},"State":{"EnteredTime":'
    '"2023-11-14T22:13:20.000Z","Name":"M","RetryCount":0},"StateMachine":{"Id":'
    '"arn:aws:states:us-east-1:123456789012:stateMachine:Machine","Name":"Machine"},'
    '"Map":{"Item":{"Index":1,"Value":{"b":2}}}}\''
)
JSONATA_CAUSE = (
    "An error occurred while executing the state 'M' (entered at the event id #2). The JSONata "
    "expression '$states.context.Map.Item.Value.a' specified for the field 'ItemSelector/x' "
    "returned nothing (undefined)."
)


def test_a_jsonpath_selector_failing_on_item_k_fails_the_execution_as_before() -> None:
    machine = map_machine({"x.$": "$$.Map.Item.Value.a"}, MaxConcurrency=1)

    events, state = Driver(machine).run(ITEMS)

    assert (state.status, state.error, state.cause) == ("FAILED", "States.Runtime", JSONPATH_CAUSE)
    assert types(events)[-3:] == ["PassStateExited", "MapIterationSucceeded", "ExecutionFailed"]
    assert types(events).count("MapIterationStarted") == 1  # item 1 never started


def test_a_jsonata_selector_failing_on_item_k_fails_the_map_state() -> None:
    machine = machine_of(
        {
            "QueryLanguage": "JSONata",
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "ItemSelector": {"x": "{% $states.context.Map.Item.Value.a %}"},
                    "ItemProcessor": PASS,
                    "Catch": [{"ErrorEquals": ["States.QueryEvaluationError"], "Next": "F"}],
                    "Next": "F",
                },
                "F": {"Type": "Pass", "End": True},
            },
        }
    )

    events, state = Driver(machine).run(ITEMS)

    assert state.output == {"Error": "States.QueryEvaluationError", "Cause": JSONATA_CAUSE}
    kinds = types(events)
    at = kinds.index("EvaluationFailed")
    assert kinds[at : at + 3] == ["EvaluationFailed", "MapStateFailed", "MapStateExited"]
    failed = events[at]
    assert failed.details["location"] == "ItemSelector/x"
    assert failed.frame == ""  # the Map's own frame, as when it could not start


def test_a_jsonata_selector_failure_is_retried_with_the_whole_map() -> None:
    machine = map_machine(
        {"x": "{% $states.context.Map.Item.Value.a %}"},
        language="JSONata",
        Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1, "IntervalSeconds": 1}],
    )

    events, state = Driver(machine).run(ITEMS)

    assert (state.error, state.cause) == ("States.QueryEvaluationError", JSONATA_CAUSE)
    assert types(events).count("MapStateStarted") == 2
    assert types(events).count("MapStateFailed") == 2


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_a_distributed_map_whose_selector_fails_ends_its_map_run(language: str) -> None:
    selector = (
        {"x": "{% $states.context.Map.Item.Value.a %}"}
        if language == "JSONata"
        else {"x.$": "States.StringToJson($$.Map.Item.Value.s)"}
    )
    machine = map_machine(
        selector,
        language=language,
        processor={**PASS, "ProcessorConfig": DISTRIBUTED},
        MaxConcurrency=1,
    )
    items = [{"a": 1, "s": "1"}, {"b": 2, "s": "{"}]

    events, state = Driver(machine).run(items)

    assert state.status == "FAILED"
    kinds = types(events)
    assert "MapRunFailed" in kinds
    assert kinds.index("MapRunStarted") < kinds.index("MapRunFailed")
    if language == "JSONata":
        assert kinds[-3:] == ["MapRunFailed", "MapStateFailed", "ExecutionFailed"]
        assert (state.error, state.cause) == ("States.QueryEvaluationError", JSONATA_CAUSE)
    else:
        assert kinds[-2:] == ["MapRunFailed", "ExecutionFailed"]
        assert state.error == "States.IntrinsicFailure"


def test_every_prefix_of_a_run_whose_selector_fails_resumes_identically() -> None:
    """Retried once, then failed; MaxConcurrency 2 with Tasks, so iterations are in flight when
    item 2's selection fails. (Not among ``test_replay.HAND_MADE``: exported to AWS's shape,
    such a history is imported as logic version 1, which selected at the start.)"""
    machine = map_machine(
        {"v": "{% $states.context.Map.Item.Value.a %}"},
        language="JSONata",
        processor={"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "W", "End": True}}},
        MaxConcurrency=2,
        Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}],
    )
    items = [{"a": 1}, {"a": 2}, {"b": 3}, {"a": 4}]
    events, state = Driver(machine).run(items)
    assert state.error == "States.QueryEvaluationError"
    assert state.cause == JSONATA_CAUSE.replace("ItemSelector/x", "ItemSelector/v")
    assert types(events).count("MapStateFailed") == 2

    for cut in range(1, len(events) + 1):
        prefix = events[:cut]
        rest = Driver(machine).resume(fold(prefix), now=prefix[-1].timestamp)
        assert [*prefix, *rest] == events, f"diverged when resumed after event {cut}"


def test_a_history_cut_after_the_selector_failed_resumes_into_the_map_failure() -> None:
    machine = map_machine({"x": "{% $states.context.Map.Item.Value.a %}"}, language="JSONata")
    events, _ = Driver(machine).run(ITEMS)
    cut = types(events).index("EvaluationFailed") + 1

    state = fold(events[:cut])
    rest = Driver(machine).resume(state, now=events[cut - 1].timestamp)

    assert [*events[:cut], *rest] == events
    assert types(rest) == ["MapStateFailed", "ExecutionFailed"]


# -- logs written before the change (logic version 1) ---------------------------------------------


def v1_log(name: str) -> tuple[JSON, JSON, list[HistoryEvent]]:
    machine_line, execution_line = (V1_LOGS / f"{name}.jsonl").read_text("utf-8").splitlines()
    definition = json.loads(machine_line)["stateMachine"]["definition"]
    item = json.loads(execution_line)
    return definition, item["execution"], load_history(item["events"])


V1_NAMES = sorted(p.stem for p in V1_LOGS.glob("*.jsonl"))


def test_the_version_1_logs_are_there() -> None:
    assert V1_NAMES == [
        "map-item-selector-jsonata",
        "map-item-selector-jsonpath",
        "map-parameters-distributed",
    ]


@pytest.mark.parametrize("name", V1_NAMES)
def test_a_version_1_log_folds_to_its_recorded_end_and_checks_compatible(name: str) -> None:
    definition, record, events = v1_log(name)
    assert events[0].details["statemillLogicVersion"] == 1

    state = fold(events)

    assert state.status == record["status"] == "SUCCEEDED"
    assert state.output == json.loads(record["output"])
    result = check(load_definition(definition), events, record["execution_arn"])
    assert result.to_json()["result"] == "compatible"


@pytest.mark.parametrize("name", V1_NAMES)
def test_a_version_1_log_cut_inside_its_map_goes_on_with_the_recorded_selections(
    name: str,
) -> None:
    definition, record, events = v1_log(name)
    machine = load_definition(definition)
    kinds = types(events)
    begun = kinds.index("MapStateStarted") + 1
    for cut in (begun, kinds.index("MapIterationStarted") + 2, len(events) - 3):
        state = fold(events[:cut])

        rest = Driver(machine).resume(state, now=events[cut - 1].timestamp)

        assert state.output == json.loads(record["output"]), f"cut after event {cut}"
        assert all("statemillInput" not in e.details for e in rest)
        assert types(rest) == kinds[cut:], f"cut after event {cut}"


def test_a_new_execution_records_logic_version_4() -> None:
    assert started().details["statemillLogicVersion"] == 4
    assert fold([started()]).logic_version == 4
