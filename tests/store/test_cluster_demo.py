"""The README's PostgreSQL commands (issue 12 part 7): ``examples/run_examples.py --db URL`` runs
the examples on PostgreSQL (twice on one database: the second run adds executions beside the
first), and ``examples/cluster_demo.py`` runs three member processes, kills one and finishes
every execution on the others.

Both scripts run as a user runs them (a subprocess) on the session's throwaway server, each test
in its own schema (``?schema=NAME``).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

#: The lease time-to-live of ``statemill worker`` (the default): a takeover after a SIGKILL
#: comes within it plus the 2 s the issue allows.
LEASE_TTL = 10.0
#: Beyond the lease time-to-live, how long the member and lease rows of the stopped survivors
#: may take to be gone or expired (the database's clock against this one's).
ROW_MARGIN = 5.0


def run_script(name: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def fetch(dsn: str, schema: str, query: str) -> list[Any]:
    async def rows() -> list[Any]:
        conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
        try:
            return list(await conn.fetch(query))
        finally:
            await conn.close()

    return asyncio.run(rows())


@pytest.fixture
def url(postgres_dsn: str, postgres_schema: str) -> str:
    return f"{postgres_dsn}?schema={postgres_schema}"


def test_run_examples_on_postgres_twice(url: str, postgres_dsn: str, postgres_schema: str) -> None:
    for _ in range(2):
        done = run_script("run_examples.py", "--db", url, "--virtual-time", timeout=100)
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("   status     SUCCEEDED") == 2
        assert done.stdout.count("  SUCCEEDED monthly-billing-") == 12
        assert (
            "2 order executions and 12 monthly billing runs ran (the runs started 1392 child "
            "executions of their Map Runs, which started 1392 invoice executions)"
        ) in done.stdout
        password = urlsplit(postgres_dsn).password
        assert password is not None
        assert password not in done.stdout + done.stderr
    rows = fetch(
        postgres_dsn,
        postgres_schema,
        "SELECT parent_execution_arn IS NULL AS top, status, count(*) FROM executions "
        "GROUP BY 1, 2",
    )
    assert {(r[0], r[1]): r[2] for r in rows} == {
        (True, "SUCCEEDED"): 28,
        (False, "SUCCEEDED"): 5540,
        (False, "FAILED"): 28,
    }


def wait_for_rows(dsn: str, schema: str, query: str, timeout: float) -> list[Any]:
    """The rows of ``query`` once there are none, or the last read after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        rows = fetch(dsn, schema, query)
        if not rows or time.monotonic() >= deadline:
            return rows
        time.sleep(0.2)


MEMBER_LINE = re.compile(
    r"^  member (\d) \(pid (\d+)\) finished (\d+) runs and (\d+) invoice executions"
    r"( before the kill)?$"
)
DEPARTURE_LINE = re.compile(
    r"^  member (\d) \(pid (\d+)\) (left by itself [\d.]+ s after SIGTERM \(exit code (-?\d+)\)"
    r"|did not leave within \d+ s of SIGTERM: killed \(SIGKILL\)); (.*)$"
)


@pytest.mark.timeout(180)
def test_cluster_demo_survives_a_killed_member(
    url: str, postgres_dsn: str, postgres_schema: str
) -> None:
    done = run_script("cluster_demo.py", "--db", url, timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("3 members on postgresql://"), lines
    assert ":***@" in lines[0]
    killed = re.search(
        r"^SIGKILL member (\d) \(pid (\d+)\) after \d+ runs ended", done.stdout, re.M
    )
    assert killed is not None, done.stdout
    took = re.search(r"were taken over ([\d.]+) s after the kill", done.stdout)
    assert took is not None, done.stdout
    assert float(took.group(1)) <= LEASE_TTL + 2
    members = [m for m in map(MEMBER_LINE.match, lines) if m is not None]
    assert [m.group(1) for m in members] == ["1", "2", "3"], done.stdout
    assert [m.group(1) for m in members if m.group(5)] == [killed.group(1)]
    assert sum(int(m.group(3)) for m in members) == 30
    assert sum(int(m.group(4)) for m in members) == 90
    survivors = [m for m in members if not m.group(5)]
    assert all(int(m.group(3)) > 0 for m in survivors), done.stdout
    assert re.match(
        r"^30/30 runs SUCCEEDED \(and 90/90 invoice executions\) in [\d.]+ s$", lines[-1]
    ), lines[-1]
    # What the demo printed is what the database holds.
    statuses = fetch(
        postgres_dsn,
        postgres_schema,
        "SELECT parent_execution_arn IS NULL AS top, status, count(*) FROM executions "
        "GROUP BY 1, 2",
    )
    assert {(r[0], r[1]): r[2] for r in statuses} == {
        (True, "SUCCEEDED"): 30,
        (False, "SUCCEEDED"): 90,
    }
    # The survivors were stopped cleanly: each left by itself after SIGTERM, handing its
    # partitions back (none needed the SIGKILL that follows 15 s later).
    departures = [m for m in map(DEPARTURE_LINE.match, lines) if m is not None]
    assert [(m.group(1), m.group(2)) for m in departures] == [
        (m.group(1), m.group(2)) for m in survivors
    ], done.stdout
    assert all(m.group(3).startswith("left by itself") for m in departures), done.stdout
    assert all(m.group(4) == "0" for m in departures), done.stdout
    # Their member rows and leases are gone, or expire within the lease time-to-live: read
    # until then, not once (a row read a moment after a member's exit is the database's view
    # of a hand-over that may still be committing).
    live = wait_for_rows(
        postgres_dsn,
        postgres_schema,
        "SELECT pid, expires - now() FROM members WHERE expires > now()",
        LEASE_TTL + ROW_MARGIN,
    )
    assert live == [], done.stdout
    held = wait_for_rows(
        postgres_dsn,
        postgres_schema,
        "SELECT partition, owner FROM leases WHERE owner IS NOT NULL AND expires > now()",
        LEASE_TTL + ROW_MARGIN,
    )
    assert held == [], done.stdout


def test_cluster_demo_names_an_unreachable_database() -> None:
    done = run_script("cluster_demo.py", "--db", "postgresql://u:secret@127.0.0.1:1/x", timeout=60)
    assert done.returncode == 3
    assert "cannot reach PostgreSQL at 127.0.0.1:1" in done.stderr
    assert "secret" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_cluster_demo_takes_only_postgres() -> None:
    done = run_script("cluster_demo.py", "--db", "demo.db", timeout=60)
    assert done.returncode == 2
    assert "--db takes a postgresql:// URL" in done.stderr
