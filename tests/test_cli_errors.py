"""The first hour as a user (issue 16): each store mistake is one line on stderr and exit 3.

A missing store for a command that only reads (never created by it), a missing folder, a folder,
a file that is not SQLite, a damaged one, a schema newer than the code, a store another runtime
holds, an unknown URL scheme: one line, the documented exit code, no traceback unless
``--debug``. And the worker: its status line, and ``--exit-when-idle`` exiting while executions
wait for a task token, naming them. PostgreSQL's errors are in ``tests/store/test_cli_postgres.py``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runtime.cli import EXIT_STORE, main
from runtime.tools.stores import StoreUnavailable

ROOT = Path(__file__).resolve().parent.parent
APPROVAL = ROOT / "examples" / "approval.asl.json"
APPROVAL_HANDLERS = str(ROOT / "handlers" / "approvals.py")
PASS_MACHINE = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
NAP_MACHINE = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "End": True}}}
ARN = "arn:aws:states:us-east-1:123456789012:execution:sm:x"
SM_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:sm"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


def a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str = "ok.db") -> str:
    """A store file with one finished execution."""
    db = str(tmp_path / name)
    code, _, err = cli(capsys, "run", write(tmp_path, "pass.json", PASS_MACHINE), "--store", db)
    assert code == 0, err
    return db


def assert_one_line(code: int, out: str, err: str, *expected: str) -> None:
    assert (code, out) == (EXIT_STORE, "")
    assert err.count("\n") == 1, err
    assert err.endswith("\n")
    for text in expected:
        assert text in err


#: Every command that only reads a store, with the arguments it needs beside ``--store``.
READERS = {
    "history": ("history", ARN),
    "describe": ("describe", ARN),
    "list": ("list",),
    "machines list": ("machines", "list"),
    "machines describe": ("machines", "describe", SM_ARN),
    "requests": ("requests",),
    "export": ("export",),
    "replay": ("replay", "--execution", ARN),
    "report": ("report", ARN, "-o", "/dev/null"),
    "stop": ("stop", ARN),
    "redrive": ("redrive", ARN),
    "send-task-success": ("send-task-success", "--task-token", "t"),
    "send-task-failure": ("send-task-failure", "--task-token", "t"),
    "start --state-machine": ("start", "--state-machine", SM_ARN),
}


@pytest.mark.parametrize("argv", READERS.values(), ids=READERS.keys())
def test_a_reader_never_creates_a_store(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    typo = tmp_path / "typo.db"
    code, out, err = cli(capsys, *argv, "--store", str(typo))
    assert_one_line(code, out, err, f"no such store: {typo}", "never creates one")
    assert not typo.exists()


def test_graph_of_an_execution_in_a_missing_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    definition = write(tmp_path, "pass.json", PASS_MACHINE)
    typo = tmp_path / "typo.db"
    code, out, err = cli(capsys, "graph", definition, "--execution", ARN, "--store", str(typo))
    assert_one_line(code, out, err, "no such store")
    assert not typo.exists()


@pytest.mark.parametrize(
    "argv",
    [("run", "DEFINITION"), ("worker", "--exit-when-idle"), ("import", "EXPORT"),
     ("start", "--definition", "DEFINITION"), ("list",)],
    ids=["run", "worker", "import", "start --definition", "list"],
)  # fmt: skip
def test_a_missing_folder_is_named(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    definition = write(tmp_path, "pass.json", PASS_MACHINE)
    export = tmp_path / "export.jsonl"
    export.write_text("", encoding="utf-8")
    args = [definition if a == "DEFINITION" else str(export) if a == "EXPORT" else a for a in argv]
    code, out, err = cli(capsys, *args, "--store", str(tmp_path / "nofolder" / "x.db"))
    assert_one_line(code, out, err, f"no such folder {tmp_path / 'nofolder'}", "create the folder")


def test_the_commands_that_create_a_store_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    definition = write(tmp_path, "pass.json", PASS_MACHINE)
    for argv in (
        ("run", definition),
        ("worker", "--exit-when-idle", "--poll", "0.01"),
        ("start", "--definition", definition),
    ):
        db = tmp_path / f"{argv[0]}.db"
        code, _, err = cli(capsys, *argv, "--store", str(db))
        assert code == 0, err
        assert db.is_file()


def test_a_folder_is_not_a_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = cli(capsys, "list", "--store", str(tmp_path))
    assert_one_line(code, out, err, f"store {tmp_path} is a folder, not a store file")


def test_a_file_that_is_not_sqlite(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("these are my notes, not a database\n" * 10, encoding="utf-8")
    for argv in (("list",), ("run", write(tmp_path, "pass.json", PASS_MACHINE))):
        code, out, err = cli(capsys, *argv, "--store", str(notes))
        assert_one_line(code, out, err, f"store {notes} is not a SQLite database file")
    assert notes.read_text(encoding="utf-8").startswith("these are my notes")


def test_a_damaged_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = a_store(tmp_path, capsys)
    with open(db, "r+b") as file:  # keep the header, wreck the pages after the first
        file.seek(4096)
        file.write(b"\xff" * 4096 * 4)
    code, out, err = cli(capsys, "list", "--store", db)
    assert_one_line(code, out, err, f"store {db} is damaged", "restore it from a backup")


def test_a_schema_newer_than_the_code(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = a_store(tmp_path, capsys)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 999")
    for argv in (("list",), ("worker", "--exit-when-idle")):
        code, out, err = cli(capsys, *argv, "--store", db)
        assert_one_line(code, out, err, "schema version 999 is newer than this Statemill")


def test_an_unknown_url_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "list", "--store", "mysql://u:secret@db/x")
    assert_one_line(code, out, err, "no store has the scheme mysql://")
    assert "secret" not in err


def test_memory_where_it_means_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "list", "--store", "memory")
    assert_one_line(code, out, err, "--store memory keeps nothing between commands")


def test_debug_shows_the_error_itself(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="no such store"):
        main(["--debug", "list", "--store", str(tmp_path / "typo.db")])


def test_the_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out
    assert "3  the store cannot be opened" in out


def test_no_traceback_reaches_the_user(tmp_path: Path) -> None:
    """The issue's first report: a traceback ending in `Event loop is closed`, exit 1."""
    for argv in (("worker", "--exit-when-idle"), ("list",)):
        done = subprocess.run(
            [sys.executable, "-m", "runtime", *argv, "--store", str(tmp_path / "no" / "x.db")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == EXIT_STORE
        assert done.stderr.count("\n") == 1, done.stderr
        assert "Traceback" not in done.stderr


def test_help_does_not_load_the_database_drivers() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from runtime.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "print(sorted(m for m in ('asyncpg', 'aiosqlite') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_a_store_another_runtime_holds(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = a_store(tmp_path, capsys)
    holder = subprocess.Popen(
        [sys.executable, "-m", "runtime", "worker", "--store", db, "--status-interval", "0.1"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stderr is not None
        assert holder.stderr.readline().startswith("statemill worker: 0 running")  # it runs
        code, out, err = cli(capsys, "worker", "--store", db, "--exit-when-idle")
        assert_one_line(code, out, err, "StoreLocked", f"pid {holder.pid}")
        # A command that only records a request works while the runtime holds the file.
        code, out, err = cli(capsys, "requests", "--store", db)
        assert code == 0, err
    finally:
        holder.terminate()
        holder.communicate(timeout=30)  # reaps it and closes its stderr pipe


# -- the worker ------------------------------------------------------------------------------


def test_exit_when_idle_exits_while_an_execution_waits_for_a_token(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's manual release flow: the first worker used to hang here."""
    monkeypatch.setenv("STATEMILL_APPROVALS", str(tmp_path / "approvals"))
    db = str(tmp_path / "orders.db")
    order = json.dumps({"order": "A-1", "amount": 1200})
    code, out, err = cli(
        capsys, "start", "--store", db, "--definition", str(APPROVAL), "--name", "A-1",
        "--input", order,
    )  # fmt: skip
    assert code == 0, err
    arn = json.loads(out)["executionArn"]
    code, out, err = cli(
        capsys, "worker", "--store", db, "--handlers", APPROVAL_HANDLERS, "--exit-when-idle",
        "--poll", "0.05",
    )  # fmt: skip
    waits = "task token in 'WaitForApproval'"
    assert code == 0
    assert json.loads(out) == {
        "status": "idle",
        "waiting": [{"executionArn": arn, "waitsFor": waits}],
    }
    assert f"statemill worker: {arn} waits for {waits}\n" in err
    assert (tmp_path / "approvals" / "A-1.token").is_file()


def test_exit_when_idle_waits_for_a_timer_and_the_status_line_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "nap.db")
    nap = write(tmp_path, "nap.json", NAP_MACHINE)
    code, out, err = cli(capsys, "start", "--store", db, "--definition", nap, "--name", "n1")
    assert code == 0, err
    arn = json.loads(out)["executionArn"]
    code, out, err = cli(
        capsys, "worker", "--store", db, "--exit-when-idle", "--poll", "0.05",
        "--status-interval", "0.1",
    )  # fmt: skip
    assert (code, json.loads(out)) == (0, {"status": "idle"})
    lines = err.splitlines()
    on_timer = "statemill worker: 1 running (0 in a handler, 1 on a timer, 0 waiting for"
    assert any(line.startswith(on_timer) for line in lines), err
    rates = [re.search(r"; (\d+) handler calls in flight, ([\d,]+) events/s committed$", line)
             for line in lines if " running (" in line]  # fmt: skip
    assert rates, err
    assert all(rate is not None and rate[1] == "0" for rate in rates), err  # no handler here
    # The Wait's exit and the execution's end were committed while the worker ran.
    assert any(rate is not None and int(rate[2].replace(",", "")) > 0 for rate in rates), err
    code, out, _ = cli(capsys, "describe", arn, "--store", db)
    assert json.loads(out)["status"] == "SUCCEEDED"  # it did not exit while the Wait waited
