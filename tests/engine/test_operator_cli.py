"""The operator's command line: requests recorded in the store file, applied by a runtime.

The manual-release flow end to end (as the README shows it): start an order that waits for
approval, stop the process, approve from the command line with no runtime running, run a worker,
see the order finish.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from handlers import approvals
from runtime import Runtime
from runtime.cli import main

ROOT = Path(__file__).resolve().parents[2]
APPROVAL = ROOT / "examples" / "approval.asl.json"
HANDLERS = str(ROOT / "handlers" / "approvals.py")

JSON = Any


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, JSON]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


async def run_until_waiting(db: str, arn: str) -> None:
    """A runtime on the file (what `statemill worker` runs) until the order waits for its token."""
    async with Runtime(db, handlers=approvals.registry) as runtime:
        for _ in range(2000):
            events = await runtime.store.read(arn)
            if any(event.type == "TaskSubmitted" for event in events):
                return
            await asyncio.sleep(0.005)
    raise AssertionError("the order never waited for approval")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STATEMILL_APPROVALS", str(tmp_path / "approvals"))
    return str(tmp_path / "orders.db")


def test_manual_release_end_to_end(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    order = json.dumps({"order": "A-1", "amount": 1200})
    code, started = cli(
        capsys, "start", "--store", db, "--definition", str(APPROVAL), "--input", order,
        "--name", "A-1",
    )  # fmt: skip
    assert code == 0
    assert started["status"] == "PENDING"
    arn = started["executionArn"]
    assert arn.endswith(":execution:approval:A-1")

    asyncio.run(run_until_waiting(db, arn))  # the process stops while the order waits
    token = (tmp_path / "approvals" / "A-1.token").read_text()
    code, waiting = cli(capsys, "describe", arn, "--store", db)
    assert waiting["status"] == "RUNNING"

    output = json.dumps({"by": "ada"})
    code, sent = cli(
        capsys, "send-task-success", "--store", db, "--task-token", token, "--output", output
    )
    assert code == 0
    assert sent["status"] == "PENDING"  # recorded; no runtime runs on the file right now

    code, worker = cli(capsys, "worker", "--store", db, "--handlers", HANDLERS,
                       "--exit-when-idle", "--poll", "0.05")  # fmt: skip
    assert (code, worker) == (0, {"status": "idle"})

    code, done = cli(capsys, "describe", arn, "--store", db)
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"]) == {"order": "A-1", "releasedBy": "ada"}
    code, listed = cli(capsys, "list", "--store", db, "--status", "SUCCEEDED", "--format", "json")
    assert [e["executionArn"] for e in listed["executions"]] == [arn]


def test_rejecting_from_the_command_line_fails_the_order(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    order = json.dumps({"order": "B-2", "amount": 5})
    _, started = cli(capsys, "start", "--store", db, "--definition", str(APPROVAL),
                     "--input", order, "--name", "B-2")  # fmt: skip
    arn = started["executionArn"]
    asyncio.run(run_until_waiting(db, arn))
    token = (tmp_path / "approvals" / "B-2.token").read_text()
    cli(capsys, "send-task-failure", "--store", db, "--task-token", token,
        "--error", "Rejected", "--cause", "too expensive")  # fmt: skip
    cli(capsys, "send-task-success", "--store", db, "--task-token", "garbage")
    cli(capsys, "worker", "--store", db, "--handlers", HANDLERS, "--exit-when-idle",
        "--poll", "0.05")  # fmt: skip
    _, done = cli(capsys, "describe", arn, "--store", db)
    assert (done["status"], done["error"]) == ("FAILED", "OrderRejected")

    async def requests() -> list[tuple[str, str, str | None] | None]:
        async with Runtime(db, request_poll_interval=None) as runtime:
            store = runtime.store
            assert hasattr(store, "get_request")
            return [await store.get_request(i) for i in (1, 2, 3)]

    start, failure, garbage = asyncio.run(requests())
    assert start is not None
    assert start[:2] == ("start", "DONE")
    assert failure is not None
    assert failure[:2] == ("send-task-failure", "DONE")
    assert garbage is not None
    assert garbage[:2] == ("send-task-success", "FAILED")
    assert json.loads(garbage[2] or "{}")["error"] == "InvalidToken"


def test_stop_from_the_command_line(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    order = json.dumps({"order": "C-3", "amount": 1})
    _, started = cli(capsys, "start", "--store", db, "--definition", str(APPROVAL),
                     "--input", order, "--name", "C-3")  # fmt: skip
    arn = started["executionArn"]
    asyncio.run(run_until_waiting(db, arn))
    code, _ = cli(capsys, "stop", arn, "--store", db, "--cause", "customer left")
    assert code == 0
    cli(capsys, "worker", "--store", db, "--handlers", HANDLERS, "--exit-when-idle",
        "--poll", "0.05")  # fmt: skip
    _, done = cli(capsys, "describe", arn, "--store", db)
    assert (done["status"], done["cause"]) == ("ABORTED", "customer left")


def test_operator_commands_report_bad_requests(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.db")
    arn = "arn:aws:states:us-east-1:123456789012:execution:approval:nope"
    assert main(["describe", arn, "--store", missing]) == 3  # EXIT_STORE
    assert "no such store" in capsys.readouterr().err
    cli(capsys, "start", "--store", db, "--definition", str(APPROVAL), "--name", "D-4",
        "--input", json.dumps({"order": "D-4", "amount": 1}))  # fmt: skip
    assert main(["describe", arn, "--store", db]) == 2
    assert "Execution Does Not Exist" in capsys.readouterr().err
    assert main(["stop", arn, "--store", db]) == 2
    assert "ExecutionDoesNotExist" in capsys.readouterr().err
    sm = "arn:aws:states:us-east-1:123456789012:stateMachine:nope"
    assert main(["start", "--store", db, "--state-machine", sm]) == 2
    assert "StateMachineDoesNotExist" in capsys.readouterr().err


def test_redrive_from_the_command_line(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    order = json.dumps({"order": "E-5", "amount": 1})
    _, started = cli(capsys, "start", "--store", db, "--definition", str(APPROVAL),
                     "--input", order, "--name", "E-5")  # fmt: skip
    arn = started["executionArn"]
    asyncio.run(run_until_waiting(db, arn))
    cli(capsys, "stop", arn, "--store", db)
    cli(capsys, "worker", "--store", db, "--handlers", HANDLERS, "--exit-when-idle",
        "--poll", "0.05")  # fmt: skip
    code, _ = cli(capsys, "redrive", arn, "--store", db)
    assert code == 0
    asyncio.run(run_until_redriven(db, arn))
    _, described = cli(capsys, "describe", arn, "--store", db)
    assert (described["status"], described["redriveCount"]) == ("RUNNING", 1)


async def run_until_redriven(db: str, arn: str) -> None:
    async with Runtime(db, handlers=approvals.registry) as runtime:
        for _ in range(2000):
            types = [event.type for event in await runtime.store.read(arn)]
            if "ExecutionRedriven" in types and types[-1] == "TaskSubmitted":
                return
            await asyncio.sleep(0.005)
    raise AssertionError("the order was not redriven")


def test_starting_an_express_machine_from_the_command_line(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = tmp_path / "express.json"
    definition.write_text(
        json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    )
    _, started = cli(capsys, "start", "--store", db, "--definition", str(definition),
                     "--type", "EXPRESS", "--input", '{"a": 1}')  # fmt: skip
    assert "executionArn" not in started  # drawn when it starts: the request's result has it
    cli(capsys, "worker", "--store", db, "--exit-when-idle", "--poll", "0.05")

    async def result() -> JSON:
        async with Runtime(db, request_poll_interval=None) as runtime:
            store = runtime.store
            assert hasattr(store, "get_request")
            return await store.get_request(started["requestId"])

    kind, status, text = asyncio.run(result())
    assert (kind, status) == ("start", "DONE")
    assert ":express:" in json.loads(text)["executionArn"]
