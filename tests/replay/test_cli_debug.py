"""``statemill history | replay | export | import`` against a SQLite store of golden executions."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from runtime import SqliteStore
from runtime.cli import main
from runtime.store.base import Append, ExecutionRecord
from runtime.tools.aws_history import load_history, to_aws_history

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "golden"
BILLING = HERE.parent.parent / "examples" / "billing_inline.asl.json"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def arn_of(name: str) -> str:
    line = (GOLDEN / name).read_text(encoding="utf-8").splitlines()[1]
    return str(json.loads(line)["execution"]["execution_arn"])


def machine_of(name: str) -> str:
    line = (GOLDEN / name).read_text(encoding="utf-8").splitlines()[0]
    return str(json.loads(line)["stateMachine"]["arn"])


def events_of(name: str) -> list[Any]:
    line = (GOLDEN / name).read_text(encoding="utf-8").splitlines()[1]
    return load_history(json.loads(line)["events"])


@pytest.fixture(scope="module")
def golden_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with every golden execution, imported once through ``statemill import``."""
    directory = tmp_path_factory.mktemp("store")
    db = directory / "golden.db"
    for path in sorted(GOLDEN.glob("*.jsonl")):
        assert main(["import", str(path), "--store", str(db)]) == 0
    return db


@pytest.fixture
def store(golden_store: Path, tmp_path: Path) -> str:
    copy = tmp_path / "golden.db"
    shutil.copy(golden_store, copy)
    return str(copy)


def test_history_json_is_the_aws_shape(capsys: pytest.CaptureFixture[str], store: str) -> None:
    name = "order-confirmed.jsonl"

    code, out, _ = cli(capsys, "history", arn_of(name), "--store", store, "--format", "json")

    assert code == 0
    assert json.loads(out) == json.loads(json.dumps(to_aws_history(events_of(name))))


def test_history_table_names_states(capsys: pytest.CaptureFixture[str], store: str) -> None:
    code, out, _ = cli(
        capsys, "history", arn_of("billing-retries-exhausted.jsonl"), "--store", store
    )

    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["ID", "TIME", "TYPE", "STATE", "INPUT/OUTPUT"]
    assert any(
        "LambdaFunctionFailed" in line and "SendInvoice" in line and "Billing.EmailBounced" in line
        for line in lines
    )
    assert lines[-1].split()[2] == "ExecutionFailed"


def test_history_follow_ends_with_the_execution(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    code, out, _ = cli(
        capsys, "history", arn_of("order-out-of-stock.jsonl"), "--store", store, "--follow"
    )

    assert code == 0
    assert out.splitlines()[-1].split()[2] == "ExecutionSucceeded"


def test_history_of_an_unknown_execution(capsys: pytest.CaptureFixture[str], store: str) -> None:
    code, out, err = cli(
        capsys, "history", "arn:aws:states:us-east-1:1:execution:x:y", "--store", store
    )

    assert (code, out) == (2, "")
    assert "Execution Does Not Exist" in err


def test_history_needs_an_existing_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = cli(capsys, "history", "arn", "--store", str(tmp_path / "none.db"))

    assert code == 3  # EXIT_STORE
    assert "no such store" in err
    assert not (tmp_path / "none.db").exists()


def test_replay_diagnoses_the_failed_billing_run(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    code, out, _ = cli(
        capsys, "replay", "--store", store, "--execution", arn_of("billing-retries-exhausted.jsonl")
    )

    assert code == 0
    assert "FAILED in state 'SendInvoice' (frame " in out
    assert "    error:    Billing.EmailBounced" in out
    assert "    attempts: 4" in out
    assert out.count("retry after event") == 3
    assert '"id": "C-9"' in out  # the failing state's input


def test_replay_at_shows_the_whole_state(capsys: pytest.CaptureFixture[str], store: str) -> None:
    name = "billing-retry-and-catch.jsonl"
    map_started = next(e for e in events_of(name) if e.type == "MapIterationStarted")

    code, out, _ = cli(
        capsys,
        "replay",
        "--store",
        store,
        "--execution",
        arn_of(name),
        "--at",
        str(map_started.id + 3),
    )

    found = json.loads(out)
    assert code == 0
    assert found["event"]["id"] == map_started.id + 3
    execution = found["execution"]
    assert execution["status"] == "RUNNING"
    assert len(execution["currentStates"]) >= 2  # the Map and an iteration
    # the state as a user thinks of it: no internal bookkeeping
    assert "frames" not in execution
    assert "phase" not in out
    assert "task_beat_at" not in out


def test_replay_json_steps(capsys: pytest.CaptureFixture[str], store: str) -> None:
    name = "order-confirmed.jsonl"

    code, out, _ = cli(
        capsys, "replay", "--store", store, "--execution", arn_of(name), "--format", "json"
    )

    steps = json.loads(out)
    assert code == 0
    assert len(steps) == len(events_of(name))
    assert steps[1]["state"] == "CheckStock"
    assert "input" in steps[1]


def test_replay_check_every_execution_of_a_machine(
    capsys: pytest.CaptureFixture[str], store: str, tmp_path: Path
) -> None:
    machine = machine_of("billing-retry-and-catch.jsonl")
    # The definition the golden executions ran (examples/billing.asl.json has changed since:
    # it now generates each invoice in a nested execution).
    line = (GOLDEN / "billing-retry-and-catch.jsonl").read_text(encoding="utf-8").splitlines()[0]
    recorded = tmp_path / "recorded.json"
    recorded.write_text(json.loads(line)["stateMachine"]["definition"])
    changed = tmp_path / "changed.json"
    changed.write_text(recorded.read_text().replace('"MaxAttempts": 3', '"MaxAttempts": 0'))

    same = cli(
        capsys, "replay", "--store", store, "--state-machine", machine, "--check", str(recorded)
    )
    nested = cli(
        capsys, "replay", "--store", store, "--state-machine", machine, "--check", str(BILLING)
    )
    diverged = cli(
        capsys,
        "replay",
        "--store",
        store,
        "--state-machine",
        machine,
        "--check",
        str(changed),
        "--format",
        "json",
    )

    assert same[0] == 0
    assert same[1].strip().endswith(": compatible")
    assert diverged[0] == 1
    report = json.loads(diverged[1])
    assert report["compatible"] is False
    assert report["executions"][0]["result"] == "divergent"
    assert report["executions"][0]["divergence"]["state_name"] == "SendInvoice"
    assert nested[0] == 1  # the old logs called GenerateMonthlyInvoice directly
    assert "GenerateInvoice" in nested[1]


def test_replay_an_aws_history_file(capsys: pytest.CaptureFixture[str]) -> None:
    history = str(HERE / "aws_pass_task_choice.json")
    definition = str(HERE / "aws_pass_task_choice.asl.json")

    code, out, _ = cli(capsys, "replay", "--definition", definition, "--history", history)
    checked = cli(capsys, "replay", "--history", history, "--check", definition)

    assert code == 0
    assert "#7 LambdaFunctionFailed  state='Double'" in out
    assert "retry in:  2.018s" in out
    assert checked[0] == 0
    assert checked[1].strip().endswith(": compatible")


def test_replay_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "replay", "--at", "3")

    assert code == 2
    assert "give --store PATH --execution ARN" in err


def test_export_then_import_into_another_store(
    capsys: pytest.CaptureFixture[str], store: str, tmp_path: Path
) -> None:
    exported = tmp_path / "out.jsonl"
    other = str(tmp_path / "other.db")
    arn = arn_of("order-confirmed.jsonl")

    assert cli(capsys, "export", "--store", store, "-o", str(exported))[0] == 0
    code, out, _ = cli(capsys, "import", str(exported), "--store", other)
    again = cli(capsys, "import", str(exported), "--store", other)
    first = cli(capsys, "history", arn, "--store", store, "--format", "json")[1]
    second = cli(capsys, "history", arn, "--store", other, "--format", "json")[1]

    assert code == 0
    assert json.loads(out) == {"stateMachines": 4, "executions": 4}
    assert again[0] == 2
    assert "already exists" in again[2]
    assert first == second
    assert len(exported.read_text().splitlines()) == 8


def test_export_one_execution_to_stdout(capsys: pytest.CaptureFixture[str], store: str) -> None:
    arn = arn_of("order-out-of-stock.jsonl")

    code, out, _ = cli(capsys, "export", "--store", store, "--execution", arn)

    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [next(iter(line)) for line in lines] == ["stateMachine", "execution"]
    assert lines[1]["execution"]["execution_arn"] == arn


def test_replay_interactive_steps_forward_and_back(
    capsys: pytest.CaptureFixture[str], store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("n\nn\np\ng 6\ns\nq\n"))

    code, out, _ = cli(
        capsys, "replay", "--store", store, "--execution", arn_of("order-confirmed.jsonl"), "-i"
    )

    heads = [line.split()[0] for line in out.splitlines() if line.startswith("#")]
    assert code == 0
    assert heads == ["#1", "#2", "#3", "#2", "#6"]
    assert '"status": "RUNNING"' in out  # the "s" command: the whole state after event 6


def test_history_follow_prints_events_as_they_come(tmp_path: Path) -> None:
    db = str(tmp_path / "running.db")
    events = events_of("order-confirmed.jsonl")
    line = (GOLDEN / "order-confirmed.jsonl").read_text(encoding="utf-8").splitlines()
    record = msgspec.convert(json.loads(line[1])["execution"], ExecutionRecord)
    running = msgspec.structs.replace(
        record, status="RUNNING", output=None, stop_date=None, last_seq=0
    )

    async def create() -> None:
        async with SqliteStore.open(db) as store:
            await store.create_execution(running, events[:5])

    async def finish() -> None:
        async with SqliteStore.open(db) as store:
            await store.append(
                [
                    Append(
                        execution_arn=record.execution_arn,
                        expected_seq=5,
                        events=tuple(events[5:]),
                        record=record,
                    )
                ]
            )

    asyncio.run(create())
    out = io.StringIO()

    def follow() -> None:
        with contextlib.redirect_stdout(out):
            main(["history", record.execution_arn, "--store", db, "--follow", "--interval", "0.02"])

    thread = threading.Thread(target=follow)
    thread.start()
    deadline = time.monotonic() + 10
    while out.getvalue().count("\n") < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # a few more polls: nothing new may be printed while the execution waits
    printed_before = out.getvalue().count("\n")
    asyncio.run(finish())
    thread.join(timeout=10)

    rows = out.getvalue().splitlines()
    assert not thread.is_alive()
    assert printed_before == 6  # the header and the first five events
    assert [row.split()[0] for row in rows[1:]] == [str(e.id) for e in events]


def test_history_follow_as_json_lines(capsys: pytest.CaptureFixture[str], store: str) -> None:
    name = "order-out-of-stock.jsonl"

    code, out, _ = cli(
        capsys, "history", arn_of(name), "--store", store, "--follow", "--format", "json"
    )

    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert lines == json.loads(json.dumps(to_aws_history(events_of(name))))["events"]
