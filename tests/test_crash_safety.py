"""Crash safety: SIGKILL the runtime mid-run, restart it on the same SQLite file, and check that
nothing committed was lost (DESIGN.md principle 4, "append before acting")."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.store.sqlite import SqliteStore
from tests.crash.worker import expected_output

ROOT = Path(__file__).resolve().parents[1]
COUNT = 1500
_TASK_OUTCOMES = {"TaskSucceeded", "TaskFailed", "TaskTimedOut"}


def _worker(db: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash.worker", str(db), str(log), str(COUNT)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def _check(db: Path, keys: list[str]) -> None:
    async with SqliteStore.open(db) as store:
        records = await store.list_executions(limit=COUNT * 2)
        assert len(records) == COUNT
        histories = {}
        for record in records:
            index = int(record.name.removeprefix("exec-"))
            assert record.status == "SUCCEEDED", (record.name, record.error, record.cause)
            assert record.output is not None
            assert json.loads(record.output) == expected_output(index)
            events = await store.read(record.execution_arn)
            # No gap, no duplicate: ids are exactly 1..n.
            assert [e.id for e in events] == list(range(1, len(events) + 1))
            assert events[-1].type == "ExecutionSucceeded"
            histories[record.execution_arn] = events
    # Every handler call that completed before the kill has its outcome in the history (it
    # was recorded, or the call was re-run after the restart with the same idempotency key).
    for key in keys:
        arn, rest = key.split("/", 1)
        frame_and_state, scheduled = rest.rsplit("/", 1)
        frame = frame_and_state.rsplit("/", 1)[0] if "/" in frame_and_state else ""
        scheduled_id = int(scheduled)
        events = histories[arn]
        assert events[scheduled_id - 1].type == "TaskScheduled", key
        later = [e for e in events[scheduled_id:] if e.frame == frame]
        outcome = next(e for e in later if e.type in _TASK_OUTCOMES | {"TaskScheduled"})
        assert outcome.type == "TaskSucceeded", key


@pytest.mark.timeout(240)
def test_sigkill_mid_run_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    log = tmp_path / "handlers.log"
    rng = random.Random()
    first = _worker(db, log)
    kill_after = rng.uniform(1.0, 3.0)
    deadline = time.monotonic() + kill_after
    while time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    killed = first.poll() is None
    if killed:
        os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    assert killed, "the first run finished before the kill: make the workload longer"
    second = _worker(db, log)
    out, err = second.communicate(timeout=180)
    assert second.returncode == 0, err.decode()[-2000:]
    assert out.decode().strip().endswith("done")
    keys = [line for line in log.read_text().splitlines() if line]
    asyncio.run(_check(db, keys))
