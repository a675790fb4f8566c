"""The HTML report in a real headless browser: it loads, its script runs, it shows the graph and
the event table. Skips (saying so) when Chromium is not installed; ``.ci/run`` installs Debian's
``chromium`` when it runs as root."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from runtime import load_history
from runtime.definition.load import load_definition
from runtime.tools.report import render_report

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
BROWSER = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no headless browser: install Debian's chromium (`apt-get install -y chromium`, "
    "as .ci/run does when root) to check the HTML report in a real browser",
)


def run_browser(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert BROWSER is not None
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    return subprocess.run(
        [BROWSER, *flags, *extra, page.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, int]:
    machine_line, execution_line = (
        (GOLDEN / "billing-retries-exhausted.jsonl").read_text(encoding="utf-8").splitlines()
    )
    machine = load_definition(json.loads(machine_line)["stateMachine"]["definition"])
    item = json.loads(execution_line)
    events = load_history(item["events"])
    page = tmp_path / "report.html"
    page.write_text(
        render_report(machine, events, execution_arn=item["execution"]["execution_arn"]),
        encoding="utf-8",
    )
    return page, len(events)


def test_report_loads_and_shows_the_graph_and_the_table(
    tmp_path: Path, report: tuple[Path, int]
) -> None:
    page, event_count = report

    completed = run_browser(tmp_path, page, "--dump-dom")

    dom = completed.stdout
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert 'data-ready="yes"' in dom  # the inline script ran to its end
    assert not re.search(r"Uncaught|SyntaxError|ReferenceError|TypeError", completed.stderr)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="statemill-graph"' in dom
    assert dom.count('class="state"') == 8
    events_table = dom[dom.index('id="events"') :]
    assert events_table.count("<tr") == event_count + 1  # the header row and one per event
    assert "FAILED in state 'SendInvoice'" in dom


def test_report_renders_to_a_screenshot(tmp_path: Path, report: tuple[Path, int]) -> None:
    page, _ = report
    shot = tmp_path / "report.png"

    completed = run_browser(tmp_path, page, f"--screenshot={shot}", "--window-size=1200,1600")

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # not a blank page
