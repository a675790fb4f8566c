"""``check``: re-deciding recorded steps with a changed definition finds the first divergence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime import check, load_history
from runtime.core.decide import decide
from runtime.core.effects import StopRequested
from runtime.core.evolve import fold
from runtime.definition.load import load_definition
from tests.core import test_replay as recorded

JSON = Any
GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def golden(name: str) -> tuple[str, list[Any]]:
    machine_line, execution_line = (GOLDEN / name).read_text(encoding="utf-8").splitlines()
    definition = json.loads(machine_line)["stateMachine"]["definition"]
    return definition, load_history(json.loads(execution_line)["events"])


def test_unchanged_definitions_are_compatible_with_every_recorded_run() -> None:
    runs = [recorded.hand_made_run(name) for name in recorded.HAND_MADE]
    runs += [r for r in map(recorded.case_run, recorded.CASE_FILES) if r is not None]

    divergent = {
        i: result.to_json()
        for i, result in enumerate(check(run.machine, run.events) for run in runs)
        if not result.compatible
    }

    assert divergent == {}
    assert len(runs) >= len(recorded.HAND_MADE)


def test_a_changed_choice_rule_is_reported_at_the_exact_event() -> None:
    definition, events = golden("order-confirmed.jsonl")
    changed = definition.replace('"BooleanEquals": true', '"BooleanEquals": false')
    assert changed != definition
    choice_exit = next(
        e for e in events if e.type == "ChoiceStateExited" and e.details["name"] == "IsInStock"
    )

    result = check(load_definition(changed), events)

    assert not result.compatible
    divergence = result.divergence
    assert divergence is not None
    assert divergence.event_id == choice_exit.id
    assert divergence.state_name == "IsInStock"
    assert divergence.recorded["next"] == "CreateOrder"
    assert divergence.now is not None
    assert divergence.now["next"] == "InformCustomer"
    assert divergence.message == (
        f"event {choice_exit.id} (state 'IsInStock'): recorded ChoiceStateExited 'IsInStock' "
        "-> 'CreateOrder', the new definition writes ChoiceStateExited 'IsInStock' "
        "-> 'InformCustomer'"
    )


def test_the_other_branch_is_still_compatible_with_an_unrelated_change() -> None:
    definition, events = golden("order-out-of-stock.jsonl")
    changed = json.loads(definition)
    changed["States"]["CreateOrder"]["Comment"] = "a comment changes nothing"

    assert check(load_definition(json.dumps(changed)), events).compatible


def test_a_retry_removed_is_reported_where_the_recorded_run_retried() -> None:
    definition, events = golden("billing-retry-and-catch.jsonl")
    changed = definition.replace('"MaxAttempts": 3', '"MaxAttempts": 0')
    first_retry = next(e for e in events if "statemillRetryDelay" in e.details)

    result = check(load_definition(changed), events)

    assert result.divergence is not None
    assert result.divergence.event_id == first_retry.id
    assert result.divergence.state_name == "SendInvoice"
    assert result.divergence.recorded["retried"] is True
    assert result.divergence.now is not None
    assert result.divergence.now["retried"] is False


def test_a_longer_wait_writes_nothing_where_the_recorded_run_went_on() -> None:
    definition = {
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "Seconds": 10, "Next": "P"},
            "P": {"Type": "Pass", "End": True},
        },
    }
    run = recorded.run(definition, {}, recorded.echo, "STANDARD")
    definition["States"]["W"]["Seconds"] = 60

    result = check(load_definition(json.dumps(definition)), run.events)

    assert result.divergence is not None
    assert result.divergence.recorded["type"] == "WaitStateExited"
    assert result.divergence.now is None
    assert "writes nothing" in result.divergence.message


@pytest.mark.parametrize("cut", [2, 5, 9])
def test_a_running_execution_is_checked_up_to_its_last_event(cut: int) -> None:
    definition, events = golden("order-confirmed.jsonl")

    result = check(load_definition(definition), events[:cut])

    assert result.compatible
    assert result.events_checked == cut


def test_a_history_without_its_start_is_not_checked() -> None:
    definition, events = golden("order-confirmed.jsonl")

    result = check(load_definition(definition), events[1:])

    assert not result.compatible
    assert result.error == "no ExecutionStarted"


def test_a_stopped_execution_with_aborted_children_is_compatible() -> None:
    run = recorded.hand_made_run("nested-map-in-parallel")
    cut = next(b for b in run.boundaries if b >= 12)  # a decision boundary inside the Map
    prefix = run.events[:cut]
    state = fold(prefix)
    stop = decide(
        run.machine, state, StopRequested(now=prefix[-1].timestamp, error="Op", cause="x")
    )
    events = [*prefix, *stop.events]
    assert [e.type for e in stop.events][-1] == "ExecutionAborted"
    assert len(stop.events) > 1  # the Map and Parallel are aborted first

    result = check(run.machine, events)

    assert result.to_json() == {
        "executionArn": state.execution_arn,
        "result": "compatible",
        "eventsChecked": len(events),
    }


def test_a_changed_task_resource_is_a_divergence() -> None:
    definition, events = golden("order-confirmed.jsonl")
    changed = definition.replace("function:CheckStock", "function:CheckStockV2")
    assert changed != definition

    result = check(load_definition(changed), events)

    assert result.divergence is not None
    assert result.divergence.recorded["type"] == "LambdaFunctionScheduled"
    assert result.divergence.now is not None
    assert result.divergence.now["resource"].endswith("function:CheckStockV2")


def test_a_state_removed_under_a_running_execution_diverges_where_the_path_differs() -> None:
    definition, events = golden("order-confirmed.jsonl")
    entered = next(e for e in events if e.type == "TaskStateEntered" and e.id > 8)
    running = events[: entered.id + 2]  # scheduled, started: waits for its handler
    assert entered.details["name"] == "CreateOrder"
    changed = json.loads(definition)
    changed["States"] = {
        "CheckStock": changed["States"]["CheckStock"],
        "IsInStock": {"Type": "Choice", "Choices": [], "Default": "Done"},
        "Done": {"Type": "Succeed"},
    }
    changed["States"]["IsInStock"]["Choices"] = [
        {"Variable": "$.stock.available", "BooleanEquals": True, "Next": "Done"}
    ]

    result = check(load_definition(json.dumps(changed)), [*running, events[entered.id + 2]])

    assert not result.compatible
    assert result.divergence is not None
    assert result.divergence.event_id == entered.id - 1  # IsInStock chose CreateOrder
    assert result.divergence.now == {
        "type": "ChoiceStateExited",
        "frame": "",
        "name": "IsInStock",
        "next": "Done",
    }
