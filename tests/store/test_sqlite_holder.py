"""One runtime per SQLite file (issue 12, part 6): a second ``Runtime`` on a held file is refused.

Real files, real processes: a second runtime in the same process, and a runtime in a child
process that is SIGKILLed mid-execution; no handler call is made twice and nothing hangs. The
CLI's request commands open the store without the lock and keep working.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from runtime import Runtime
from runtime.errors import StoreLocked
from runtime.store import SqliteStore
from runtime.store.holder import hold_writer, lock_path
from runtime.tools import store_ops
from tests.store.holder_worker import DEFINITION, EXECUTION, MACHINE, step_handler

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
PASS_MACHINE = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def held_by(pid: int) -> str:
    """The ``match=`` pattern of the refusal naming holder ``pid`` on this host."""
    host = re.escape(socket.gethostname())
    return rf"held by another runtime: pid {pid} on host {host} since {ISO_UTC}$"


def relative_to_cwd(path: Path) -> str:
    return os.path.relpath(path)


def names_in(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def test_a_second_runtime_in_the_same_process_is_refused_until_the_first_closes(
    tmp_path: Path,
) -> None:
    db = tmp_path / "one.db"
    async with Runtime(str(db)) as first:
        with pytest.raises(StoreLocked, match=held_by(os.getpid())) as refused:
            async with Runtime(str(db)):
                pytest.fail("two runtimes opened one file")
        assert f"store file '{db}'" in str(refused.value)
        # The refusal left the holder running.
        done = await first.run(PASS_MACHINE, {"a": 1}, name="after-refusal", timeout=30)
        assert done.status == "SUCCEEDED"
    async with Runtime(str(db)) as again:
        described = await again.describe_execution(done.execution_arn)
        assert described.status == "SUCCEEDED"


async def test_another_spelling_of_the_path_names_the_same_lock(tmp_path: Path) -> None:
    db = tmp_path / "real.db"
    link = tmp_path / "link.db"
    link.symlink_to(db)
    async with Runtime(str(db)):
        with pytest.raises(StoreLocked, match=held_by(os.getpid())):
            async with Runtime(str(link)):
                pytest.fail("a symlink opened a held file")
        with pytest.raises(StoreLocked):
            async with Runtime(relative_to_cwd(db)):
                pytest.fail("a relative path opened a held file")


async def test_the_lock_file_is_0600_and_names_the_holder_only_while_held(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    sidecar = lock_path(db)
    assert sidecar == tmp_path / "s.db.lock"
    previous = os.umask(0)
    try:
        async with Runtime(str(db)):
            assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600
            holder = json.loads(sidecar.read_text())
            assert holder["pid"] == os.getpid()
            assert holder["host"] == socket.gethostname()
            assert re.fullmatch(ISO_UTC, holder["since"])
    finally:
        os.umask(previous)
    assert sidecar.read_text() == ""  # cleared before the lock was released


async def test_the_lock_file_of_a_group_shared_store_takes_its_mode(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    db.touch()
    db.chmod(0o660)  # shared with a group on purpose: its members must be able to lock it too
    async with Runtime(str(db)):
        assert stat.S_IMODE(lock_path(db).stat().st_mode) == 0o660


async def test_a_symlink_planted_at_the_lock_path_is_refused_not_followed(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    lock_path(db).symlink_to(target)
    with pytest.raises(OSError, match="symbolic links"):
        async with Runtime(str(db)):
            pytest.fail("opened through a planted symlink")
    assert target.read_text() == "keep me"


async def test_memory_stores_take_no_lock(tmp_path: Path) -> None:
    async with Runtime("memory"), Runtime("memory"), Runtime(":memory:"), Runtime(":memory:"):
        pass
    with hold_writer(":memory:") as held, hold_writer(":memory:") as again:
        assert held is again is None
    assert names_in(tmp_path) == []


async def test_the_cli_records_requests_while_a_runtime_holds_the_file(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    async with Runtime(db, request_poll_interval=0.05) as runtime:
        machine = await runtime.create_state_machine("m", PASS_MACHINE)
        # What ``statemill start`` does: SqliteStore.open + add_request, no runtime lock.
        recorded = await store_ops.request(
            db, "start", {"stateMachineArn": machine.arn, "name": "from-cli", "input": {"x": 1}}
        )
        assert recorded["status"] == "PENDING"
        async with SqliteStore.open(db) as store:
            assert await store.get_request(recorded["requestId"]) is not None
        # The holding runtime applies it.
        applied = await store_ops.wait_for_request(db, recorded["requestId"], timeout=30)
        assert applied["status"] == "DONE", applied
        done = await runtime.wait_for_execution(recorded["executionArn"], timeout=30)
        assert done.status == "SUCCEEDED"
        assert json.loads(done.output or "null") == {"x": 1}


# -- a runtime in another process --------------------------------------------------------------


@pytest.fixture
def calls(tmp_path: Path) -> Path:
    return tmp_path / "calls.log"


def lines(calls: Path) -> list[tuple[str, str, int]]:
    """The handler calls recorded so far: (``start``/``done``, state, pid)."""
    if not calls.exists():
        return []
    found = []
    for line in calls.read_text().splitlines():
        what, state, pid = line.split()
        found.append((what, state, int(pid)))
    return found


@pytest.fixture
def worker(tmp_path: Path, calls: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``holder_worker`` on ``tmp_path/shared.db``, SIGKILLed at the end whatever happens."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.store.holder_worker",
            str(tmp_path / "shared.db"),
            str(calls),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


@pytest.mark.timeout(120)
async def test_a_runtime_in_another_process_is_refused_and_its_execution_taken_over_after_sigkill(
    tmp_path: Path, calls: Path, worker: subprocess.Popen[bytes]
) -> None:
    db = str(tmp_path / "shared.db")
    with anyio.fail_after(60):  # the worker starts and reaches its third Task
        while ("start", "Three", worker.pid) not in lines(calls):
            assert worker.poll() is None, worker.communicate()[1].decode()
            await anyio.sleep(0.05)
    handlers = {"step": step_handler(str(calls), block=None)}
    for _ in range(3):  # refused every time, not only once
        with pytest.raises(StoreLocked, match=held_by(worker.pid)):
            async with Runtime(db, handlers=handlers):
                pytest.fail("two runtimes ran one file")
    # The refused runtimes made no call: every call so far is the worker's, each made once.
    assert lines(calls) == [
        ("start", "One", worker.pid),
        ("done", "One", worker.pid),
        ("start", "Two", worker.pid),
        ("done", "Two", worker.pid),
        ("start", "Three", worker.pid),
    ]
    os.kill(worker.pid, signal.SIGKILL)
    assert worker.wait(timeout=30) == -signal.SIGKILL
    # The kernel released the lock with the process: no stale lock to clean up.
    async with Runtime(db, handlers=handlers) as runtime:
        arn = (await runtime.create_state_machine(MACHINE, DEFINITION)).arn
        execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{EXECUTION}"
        done = await runtime.wait_for_execution(execution_arn, timeout=60)
    assert done.status == "SUCCEEDED", (done.error, done.cause)
    me = os.getpid()
    # The call the kill interrupted is made again (at-least-once); every completed call once.
    assert lines(calls)[5:] == [("start", "Three", me), ("done", "Three", me)]
    completed = [state for what, state, _ in lines(calls) if what == "done"]
    assert completed == ["One", "Two", "Three"]
