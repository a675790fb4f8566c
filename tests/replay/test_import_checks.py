"""``statemill import`` checks a whole file before it writes (issue 11, "stores that always open").

Every definition is validated as CreateStateMachine validates it, every execution must belong to a
known state machine, be new and have a log that folds; a refused line is named, nothing of the
file is stored, and the store still opens afterwards.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from runtime import Runtime
from runtime.cli import main

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
ORDER = GOLDEN / "order-confirmed.jsonl"

JSON = Any


def golden_lines() -> list[dict[str, JSON]]:
    return [json.loads(line) for line in ORDER.read_text(encoding="utf-8").splitlines()]


def write_lines(path: Path, lines: list[dict[str, JSON]]) -> str:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return str(path)


def other_machine(definition: str, name: str = "other", machine_type: str = "STANDARD") -> JSON:
    return {
        "stateMachine": {
            "arn": f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}",
            "name": name,
            "definition": definition,
            "type": machine_type,
            "creation_date": 1700000000.0,
        }
    }


def import_file(capsys: pytest.CaptureFixture[str], file: str, db: Path) -> tuple[int, str, str]:
    code = main(["import", file, "--store", str(db)])
    out, err = capsys.readouterr()
    return code, out, err


def machines_in(db: Path) -> list[str]:
    """The state machines a runtime sees when it opens the store (it reloads every definition)."""

    async def opened() -> list[str]:
        async with Runtime(str(db)) as runtime:
            return [record.name for record in await runtime.list_state_machines()]

    return asyncio.run(opened())


BAD_NEXT = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}})
WAIT_FOR_TOKEN = json.dumps(
    {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "End": True,
            }
        },
    }
)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (other_machine(BAD_NEXT), "/States/A/Next"),
        (other_machine("{not json"), "Invalid State Machine Definition"),
        # valid as STANDARD, refused for EXPRESS, as CreateStateMachine refuses it
        (other_machine(WAIT_FOR_TOKEN, machine_type="EXPRESS"), "Invalid State Machine Definition"),
        (other_machine(BAD_NEXT.replace("Nowhere", "A"), machine_type="BATCH"), "BATCH"),
    ],
)
def test_a_bad_definition_is_refused_by_line_and_nothing_is_stored(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, line: JSON, message: str
) -> None:
    # The good lines of the golden file first: they must not be stored either.
    file = write_lines(tmp_path / "bad.jsonl", [*golden_lines(), line])
    db = tmp_path / "store.db"

    code, out, err = import_file(capsys, file, db)

    assert (code, out) == (2, "")
    assert f"bad.jsonl: line 3: state machine '{line['stateMachine']['arn']}'" in err
    assert message in err
    assert err.count("\n") == 1
    assert machines_in(db) == []  # the store opens, and holds nothing of the file


def test_a_log_that_does_not_fold_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    machine, execution = golden_lines()
    events = execution["events"]
    cases = {
        "not_started": {**execution, "events": events[1:]},
        "gap": {**execution, "events": [events[0], *events[2:]]},
        "foreign_machine": {
            **execution,
            "execution": {**execution["execution"], "state_machine_arn": "arn:nowhere"},
        },
    }
    messages = {
        "not_started": "do not begin with ExecutionStarted",
        "gap": "event ids are not 1, 2, 3",
        "foreign_machine": "is in neither file nor store",
    }
    for name, bad in cases.items():
        db = tmp_path / f"{name}.db"
        code, _, err = import_file(
            capsys, write_lines(tmp_path / f"{name}.jsonl", [machine, bad]), db
        )

        assert code == 2, name
        assert f"line 2: execution '{execution['execution']['execution_arn']}'" in err, name
        assert messages[name] in err, name
        assert machines_in(db) == [], name


def test_an_execution_twice_in_the_file_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    machine, execution = golden_lines()
    file = write_lines(tmp_path / "twice.jsonl", [machine, execution, execution])
    db = tmp_path / "store.db"

    code, _, err = import_file(capsys, file, db)

    assert code == 2
    assert "ExecutionAlreadyExists: line 3: execution" in err
    assert "twice in the file" in err
    assert machines_in(db) == []


def test_a_good_file_still_imports_and_the_store_opens(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "store.db"

    code, out, _ = import_file(capsys, str(ORDER), db)

    assert code == 0
    assert json.loads(out) == {"stateMachines": 1, "executions": 1}
    assert machines_in(db) == ["order-confirmed"]
