"""Golden histories: logs recorded by earlier versions must keep their meaning.

``tests/golden/*.jsonl`` are ``statemill export`` files of our own runs (re-record with
``python -m tests.golden.record``). Folding each gives the recorded final status and output, and
re-deciding every step with the recorded definition is compatible: a runtime change that alters
what an old log means fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from runtime import check, diagnose, load_history, replay
from runtime.core.evolve import fold
from runtime.definition.load import load_definition
from runtime.store.base import ExecutionRecord, StateMachineRecord
from runtime.tools.history import format_steps

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
FILES = sorted(p.name for p in GOLDEN.glob("*.jsonl"))


def golden(name: str) -> tuple[StateMachineRecord, ExecutionRecord, list[dict[str, object]]]:
    machine_line, execution_line = (GOLDEN / name).read_text(encoding="utf-8").splitlines()
    machine = msgspec.convert(json.loads(machine_line)["stateMachine"], StateMachineRecord)
    item = json.loads(execution_line)
    return machine, msgspec.convert(item["execution"], ExecutionRecord), item["events"]


def test_the_golden_set_is_there() -> None:
    assert FILES == [
        "billing-retries-exhausted.jsonl",
        "billing-retry-and-catch.jsonl",
        "order-confirmed.jsonl",
        "order-out-of-stock.jsonl",
    ]


@pytest.mark.parametrize("name", FILES)
def test_golden_history_folds_to_its_recorded_end(name: str) -> None:
    _machine, record, raw = golden(name)
    events = load_history(raw)

    state = fold(events)

    assert state.status == record.status
    assert state.error == record.error
    if record.output is not None:
        assert state.output == json.loads(record.output)
    assert len(list(replay(events))) == len(events) == record.last_seq


@pytest.mark.parametrize("name", FILES)
def test_golden_history_is_compatible_with_its_definition(name: str) -> None:
    machine, record, raw = golden(name)

    result = check(load_definition(machine.definition), load_history(raw), record.execution_arn)

    assert result.to_json() == {
        "executionArn": record.execution_arn,
        "result": "compatible",
        "eventsChecked": record.last_seq,
    }


def test_billing_run_shows_its_retry_and_its_caught_failure() -> None:
    events = load_history(golden("billing-retry-and-catch.jsonl")[2])
    steps = list(replay(events))

    retried = [s for s in steps if s.retry_delay is not None]
    caught = [s for s in steps if s.error == "NoEmailAddress"]
    assert {s.state_name for s in retried} == {"SendInvoice"}
    assert {s.error for s in retried} == {"Billing.EmailBounced"}
    assert caught
    assert caught[0].state_name == "SendInvoice"
    assert diagnose(events) is None  # it succeeded


def test_failed_billing_run_is_diagnosable_from_the_replay() -> None:
    events = load_history(golden("billing-retries-exhausted.jsonl")[2])

    failure = diagnose(events)
    text = format_steps(replay(events))

    assert failure is not None
    assert failure.state_name == "SendInvoice"
    assert failure.error == "Billing.EmailBounced"
    assert failure.attempts == 4  # the first attempt and MaxAttempts 3 retries
    assert [error for _, error, _ in failure.retries] == ["Billing.EmailBounced"] * 3
    assert failure.input["customer"]["id"] == "C-9"
    assert "FAILED in state 'SendInvoice'" in failure.lines()[0]
    assert "error:     Billing.EmailBounced" in text
    assert "retry in:" in text
    assert "attempt:   4 (retry 3)" in text
