"""The command line's SQLite reader (issue 16: ``describe`` without an event loop).

:class:`SqliteReader` must answer exactly what :class:`SqliteStore` answers on the same file
(both run the statements of ``runtime.store.sqlite_queries``), read beside a store that is
writing, leave an older file to the store (which migrates it) and refuse a newer one; the
reading commands must then import no event loop at all.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.core.events import HistoryEvent
from runtime.store.base import ExecutionRecord, StateMachineRecord
from runtime.store.sqlite import SqliteStore
from runtime.store.sqlite_read import SqliteReader
from runtime.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION
from runtime.tools import store_ops
from runtime.tools.stores import StoreUnavailable, open_reads

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _record(i: int, machine: str, status: str) -> ExecutionRecord:
    return ExecutionRecord(
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:{machine}:e{i}",
        state_machine_arn=MACHINE + machine,
        name=f"e{i}",
        status=status,
        start_date=1000.0 + i % 5,  # ties: the ARN breaks them
        input="{}",
        stop_date=None if status == "RUNNING" else 2000.0,
    )


async def _fill(path: Path) -> SqliteStore:
    """A store file with two machines, 30 executions and three requests (one done)."""
    async with SqliteStore.open(path) as store:
        for name, created in (("b", 2.0), ("a", 1.0)):
            await store.put_state_machine(
                StateMachineRecord(
                    arn=MACHINE + name,
                    name=name,
                    definition='{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}',
                    type="STANDARD",
                    creation_date=created,
                    revision_id=f"r{name}",
                )
            )
        started = HistoryEvent(id=1, type="ExecutionStarted", timestamp=1000.0)
        for i in range(30):
            status = ("RUNNING", "SUCCEEDED", "FAILED")[i % 3]
            await store.create_execution(_record(i, "ab"[i % 2], status), [started])
        first = await store.add_request("stop", '{"executionArn": "x"}', 5.0)
        await store.add_request("start", '{"stateMachineArn": "y"}', 6.0)
        await store.add_request("stop", '{"executionArn": "z"}', 7.0)
        await store.finish_request(first, "DONE", "{}")
    return store


@pytest.mark.anyio
async def test_the_reader_answers_what_the_store_answers(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    await _fill(path)
    with SqliteReader.open(path) as reader:
        assert reader is not None
        async with SqliteStore.open(path) as store:  # beside it, as a worker would be
            queries: list[tuple[str | None, str | None, int]] = [
                (None, None, 1000),
                (None, None, 7),
                (MACHINE + "a", None, 1000),
                (MACHINE + "b", "RUNNING", 1000),
                (None, "FAILED", 3),
                (MACHINE + "nope", None, 10),
                (None, None, 0),
            ]
            for machine, status, limit in queries:
                assert reader.list_executions(machine, status, limit) == (
                    await store.list_executions(machine, status=status, limit=limit)
                ), (machine, status, limit)
            arn = _record(4, "a", "SUCCEEDED").execution_arn
            assert reader.get_execution(arn) == await store.get_execution(arn)
            assert reader.get_execution(arn + "x") is None
            assert reader.list_state_machines() == await store.list_state_machines()
            assert [m.name for m in reader.list_state_machines()] == ["a", "b"]
            assert reader.get_state_machine(MACHINE + "b") == (
                await store.get_state_machine(MACHINE + "b")
            )
            assert reader.get_state_machine(MACHINE + "c") is None
            assert reader.pending_requests(10) == await store.pending_requests(10)
            assert len(reader.pending_requests(10)) == 2
            for request_id in (1, 2, 3, 4):
                assert reader.get_request(request_id) == await store.get_request(request_id)
            # A write the store commits is seen by the reader's next statement.
            late = _record(99, "a", "RUNNING")
            await store.create_execution(
                late, [HistoryEvent(id=1, type="ExecutionStarted", timestamp=1.0)]
            )
            seen = reader.get_execution(late.execution_arn)
            assert seen is not None
            assert seen == await store.get_execution(late.execution_arn)


@pytest.mark.anyio
async def test_the_reader_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    await _fill(path)
    with SqliteReader.open(path) as reader:
        assert reader is not None
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._conn.execute("DELETE FROM executions")
    with SqliteReader.open(path) as reader:
        assert reader is not None
        assert len(reader.list_executions()) == 30


@pytest.mark.anyio
async def test_an_older_file_is_left_to_the_store_which_migrates_it(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    with sqlite3.connect(path) as conn:
        for migration in MIGRATIONS[:6]:
            for statement in migration:
                conn.execute(statement)
        conn.execute(
            "INSERT INTO state_machines (arn, name, definition, type, creation_date) "
            f"VALUES ('{MACHINE}old', 'old', '{{}}', 'STANDARD', 1.0)"
        )
        conn.execute("PRAGMA user_version = 6")
    with SqliteReader.open(path) as reader:
        assert reader is None
    # The command line reads it anyway, through the store (on a loop in a thread).
    assert [m["name"] for m in store_ops.list_state_machines(str(path))] == ["old"]
    with SqliteReader.open(path) as reader:
        assert reader is not None  # migrated by that read
        assert [m.name for m in reader.list_state_machines()] == ["old"]


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer than this Statemill"), SqliteReader.open(path):
        pass
    with pytest.raises(StoreUnavailable, match="newer than this Statemill"), open_reads(str(path)):
        pass


def test_the_reading_commands_import_no_event_loop(tmp_path: Path) -> None:
    """``describe``, ``list``, ``requests`` and ``machines list|describe`` on a SQLite file load
    neither asyncio nor anyio nor aiosqlite (about 0.1 s of a command's start)."""
    path = tmp_path / "s.db"
    pass_machine = tmp_path / "m.json"
    pass_machine.write_text('{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}')
    subprocess.run(
        [sys.executable, "-m", "runtime", "run", str(pass_machine), "--name", "m", "--store", path],
        capture_output=True,
        check=True,
        timeout=120,
    )
    code = (
        "import sys, contextlib, io\n"
        "from runtime.cli import main\n"
        f"store = {str(path)!r}\n"
        "machine = 'arn:aws:states:us-east-1:123456789012:stateMachine:m'\n"
        "for argv in (['list'], ['requests'], ['machines', 'list'],\n"
        "             ['machines', 'describe', machine], ['describe', 'arn:nope']):\n"
        "    quiet = io.StringIO()\n"
        "    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):\n"
        "        main([*argv, '--store', store])\n"
        "loops = ('asyncio', 'anyio', 'aiosqlite', 'uvloop')\n"
        "print(sorted(m for m in loops if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stderr
