"""The command line on PostgreSQL (issue 12 part 1): every ``--store`` takes a ``postgresql://``
URL, ``?schema=NAME`` chooses the tables' schema, and requests recorded by ``start`` and
``send-task-success`` are applied by a worker on the same database.

Runs on the session's throwaway server (``postgres_server.py``); each test has its own schema.
"""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest

from runtime.cli import EXIT_STORE, main
from tests.store.postgres_server import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
APPROVAL = ROOT / "examples" / "approval.asl.json"
APPROVAL_HANDLERS = str(ROOT / "handlers" / "approvals.py")

PASS_MACHINE = {
    "StartAt": "Greet",
    "States": {"Greet": {"Type": "Pass", "Parameters": {"hi.$": "$.name"}, "End": True}},
}

JSON = Any


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> JSON:
    code, out, err = cli(capsys, *argv)
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def url(postgres_dsn: str, postgres_schema: str) -> str:
    return f"{postgres_dsn}?schema={postgres_schema}"


def test_run_then_read_it_back_from_postgres(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    definition = tmp_path / "greet.asl.json"
    definition.write_text(json.dumps(PASS_MACHINE), encoding="utf-8")
    done = cli_json(
        capsys, "run", str(definition), "--store", url, "--name", "greet", "--input",
        '{"name": "ada"}',
    )  # fmt: skip
    assert (done["status"], done["output"]) == ("SUCCEEDED", {"hi": "ada"})
    arn = done["executionArn"]

    assert cli_json(capsys, "describe", arn, "--store", url)["status"] == "SUCCEEDED"
    listed = cli_json(capsys, "list", "--store", url, "--format", "json")["executions"]
    assert [item["executionArn"] for item in listed] == [arn]
    machines = cli_json(capsys, "machines", "list", "--store", url, "--format", "json")
    assert [m["name"] for m in machines["stateMachines"]] == ["greet"]
    code, out, _ = cli(capsys, "history", arn, "--store", url)
    assert code == 0
    assert "ExecutionSucceeded" in out

    # export from PostgreSQL, import into a SQLite file.
    exported = tmp_path / "out.jsonl"
    assert cli(capsys, "export", "--store", url, "-o", str(exported))[0] == 0
    sqlite = str(tmp_path / "copy.db")
    assert cli_json(capsys, "import", str(exported), "--store", sqlite)["executions"] == 1
    copied = cli_json(capsys, "describe", arn, "--store", sqlite)
    assert json.loads(copied["output"]) == done["output"]


def test_the_schema_parameter_keeps_stores_apart(
    postgres_dsn: str, postgres_schema: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    definition = tmp_path / "greet.asl.json"
    definition.write_text(json.dumps(PASS_MACHINE), encoding="utf-8")
    one, two = (
        f"{postgres_dsn}?schema={postgres_schema}a",
        f"{postgres_dsn}?schema={postgres_schema}b",
    )
    cli_json(capsys, "run", str(definition), "--store", one)
    assert len(cli_json(capsys, "list", "--store", one, "--format", "json")["executions"]) == 1
    assert cli_json(capsys, "list", "--store", two, "--format", "json") == {"executions": []}


def test_manual_release_on_postgres(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start, worker, send-task-success (a request, no runtime running), worker, describe."""
    monkeypatch.setenv("STATEMILL_APPROVALS", str(tmp_path / "approvals"))
    order = json.dumps({"order": "P-1", "amount": 1200})
    started = cli_json(
        capsys, "start", "--store", url, "--definition", str(APPROVAL), "--name", "P-1",
        "--input", order,
    )  # fmt: skip
    assert started["status"] == "PENDING"
    arn = started["executionArn"]
    pending = cli_json(capsys, "requests", "--store", url, "--format", "json")["requests"]
    assert [(r["kind"], r["status"]) for r in pending] == [("start", "PENDING")]

    worker = ("worker", "--store", url, "--handlers", APPROVAL_HANDLERS, "--exit-when-idle")
    code, out, err = cli(capsys, *worker, "--poll", "0.05")
    waits = "task token in 'WaitForApproval'"
    assert (code, json.loads(out)) == (
        0,
        {"status": "idle", "waiting": [{"executionArn": arn, "waitsFor": waits}]},
    )
    assert f"statemill worker: {arn} waits for {waits}\n" in err
    token = (tmp_path / "approvals" / "P-1.token").read_text()
    assert cli_json(capsys, "describe", arn, "--store", url)["status"] == "RUNNING"

    sent = cli_json(
        capsys, "send-task-success", "--store", url, "--task-token", token, "--output",
        '{"by": "ada"}',
    )  # fmt: skip
    assert sent["status"] == "PENDING"
    assert cli_json(capsys, *worker, "--poll", "0.05") == {"status": "idle"}
    done = cli_json(capsys, "describe", arn, "--store", url)
    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["releasedBy"] == "ada"
    assert cli_json(capsys, "requests", "--store", url, "--format", "json") == {"requests": []}


def test_a_server_that_is_not_there_is_one_line_naming_host_and_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as sock:  # a port nothing listens on (bound, never listening)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        code, out, err = cli(capsys, "list", "--store", f"postgresql://u:pw@127.0.0.1:{port}/db")
    assert (code, out) == (EXIT_STORE, "")
    assert err == (
        f"statemill list: error: cannot reach PostgreSQL at 127.0.0.1:{port}: connection "
        "refused (is the server running, on that port?)\n"
    )


def test_a_refused_login_is_one_line_without_the_password(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = postgres_server.dsn().replace(postgres_server.password, "not-the-password")
    code, _, err = cli(capsys, "list", "--store", wrong)
    assert code == EXIT_STORE
    assert err.count("\n") == 1
    assert "password authentication failed" in err
    assert "not-the-password" not in err
    assert ":***@127.0.0.1" in err


def test_a_database_that_does_not_exist_is_one_line(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(capsys, "list", "--store", postgres_server.dsn("nosuchdb"))
    assert code == EXIT_STORE
    assert err.count("\n") == 1
    assert 'database "nosuchdb" does not exist' in err


async def _skip_request_ids(dsn: str, schema: str, count: int) -> None:
    """Draw ``count`` ids from the requests sequence, as inserts that rolled back do."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        for _ in range(count):
            await conn.fetchval("SELECT nextval(pg_get_serial_sequence('requests', 'id'))")
    finally:
        await conn.close()


def test_requests_past_a_gap_in_the_ids_are_listed(
    url: str,
    postgres_dsn: str,
    postgres_schema: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    definition = tmp_path / "greet.asl.json"
    definition.write_text(json.dumps(PASS_MACHINE), encoding="utf-8")
    first = cli_json(capsys, "start", "--store", url, "--definition", str(definition))
    asyncio.run(_skip_request_ids(postgres_dsn, postgres_schema, 5))
    second = cli_json(capsys, "start", "--store", url, "--definition", str(definition))
    assert second["requestId"] == first["requestId"] + 6
    listed = cli_json(capsys, "requests", "--store", url, "--format", "json")["requests"]
    assert [r["requestId"] for r in listed] == [first["requestId"], second["requestId"]]
