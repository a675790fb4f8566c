"""``statemill schedule create|list|get|delete`` on a SQLite file, and a runtime opened on the
file afterwards firing what the command stored."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import anyio
import pytest

from runtime import Runtime
from runtime.cli import main
from runtime.engine.clock import ManualClock

PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Billing"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_schedule_commands_store_what_a_runtime_fires(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store.db")

    async def prepare() -> None:
        async with Runtime(store, virtual_time=True) as rt:
            await rt.create_state_machine("Billing", PASS)

    anyio.run(prepare)

    def create(name: str) -> tuple[str, ...]:
        return ("schedule", "create", name, "--store", store, "--target", MACHINE)

    code, out, err = run(
        capsys,
        *create("monthly"),
        "--expression",
        "cron(0 0 1 * ? *)",
        "--timezone",
        "Europe/Berlin",
        "--input",
        '{"run": "monthly"}',
    )
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "ScheduleArn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/monthly"
    }
    code, out, err = run(capsys, *create("bad"), "--expression", "rate(1 days)")
    assert code == 2
    assert "ValidationException: Invalid Schedule Expression rate(1 days)." in err
    code, out, err = run(capsys, *create("monthly"), "--expression", "rate(1 day)")
    assert code == 2
    assert "ConflictException: Schedule monthly already exists." in err
    code, out, _ = run(capsys, "schedule", "get", "monthly", "--store", store)
    got = json.loads(out)
    assert code == 0
    assert (got["ScheduleExpression"], got["ScheduleExpressionTimezone"]) == (
        "cron(0 0 1 * ? *)",
        "Europe/Berlin",
    )
    assert json.loads(got["Target"]["Input"]) == {"run": "monthly"}
    assert (got["LastFire"], got["MissedFires"]) == (None, 0)
    code, out, _ = run(capsys, "schedule", "list", "--store", store)
    assert code == 0
    assert "monthly" in out
    assert "Europe/Berlin" in out

    # A runtime on the file fires it: a year of monthly billing, at 00:00 in Berlin.
    async def fire() -> list[float]:
        async with Runtime(store, clock=ManualClock(time.time())) as rt:
            await rt.clock.sleep_until(rt.clock.now() + 366 * 86400)
            return sorted(d.start_date for d in await rt.list_executions(MACHINE))

    starts = anyio.run(fire)
    berlin = ZoneInfo("Europe/Berlin")
    local = [datetime.fromtimestamp(start, berlin) for start in starts]
    assert len(local) in (12, 13)  # a year from today: 12 first days of months, 13 on one
    assert all((t.day, t.hour, t.minute, t.second) == (1, 0, 0, 0) for t in local)
    assert len({t.month for t in local}) == 12
    code, out, _ = run(capsys, "schedule", "list", "--store", store, "--format", "json")
    last = json.loads(out)["Schedules"][0]["LastFire"]
    assert datetime.fromisoformat(last).timestamp() == starts[-1]
    assert run(capsys, "schedule", "delete", "monthly", "--store", store)[0] == 0
    code, _, err = run(capsys, "schedule", "delete", "monthly", "--store", store)
    assert code == 2
    assert "ResourceNotFoundException: Schedule monthly does not exist." in err
    assert run(capsys, "schedule", "get", "--store", store)[0] == 2  # no NAME
