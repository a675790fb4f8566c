"""The ``http_start`` benchmark at its smallest size: every way runs and the JSON says so.

Figures are not asserted (they depend on the machine); the document's fields, the invariants
(no call failed, every started execution SUCCEEDED) and that those checks can fail are.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from benchmarks import http_start
from benchmarks.common import Measured
from benchmarks.suite import SCENARIOS, run_suite

#: On top of --quick: a few seconds in all (two child servers, a few dozen calls each way).
TINY = {"calls": 40, "warmup": 5, "concurrency": 10, "boto3_calls": 20}
WAYS = ("api", "http", "sub", "raw")
FIGURES = ("calls_per_s", "p50_ms", "p99_ms", "cpu_us_per_call")


def test_smallest_run_writes_every_figure_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert SCENARIOS["http_start"] is http_start.SCENARIO
    [document] = run_suite(
        ["http_start"],
        quick=True,
        runs=1,
        out=tmp_path,
        loop="asyncio",
        overrides=TINY,
        in_process=True,
        progress=False,
    )
    table = capsys.readouterr().out
    assert "== http_start (" in table
    assert "memory: HTTP, statemill serve child: starts/s" in table
    written = json.loads(Path(document["path"]).read_text(encoding="utf-8"))
    assert written == {k: v for k, v in document.items() if k != "path"}
    assert document["params"] == {**http_start.SCENARIO.quick, **TINY}
    assert {"cpu_count", "git_commit", "python", "loop"} <= set(document["machine"])

    medians = document["medians"]
    for kind in ("memory", "sqlite"):
        for way in WAYS:
            for figure in FIGURES:
                assert medians[f"{kind}_{way}_{figure}"] > 0, (kind, way, figure)
            assert medians[f"{kind}_{way}_p50_ms"] <= medians[f"{kind}_{way}_p99_ms"]
            info = document["runs"][0]["info"]
            started = TINY["calls"] + TINY["warmup"]
            assert info[f"{kind}_{way}_started"] == started
            assert info[f"{kind}_{way}_succeeded"] == started
        for way in ("sub", "raw"):
            assert medians[f"{kind}_{way}_client_cpu_us_per_call"] > 0
    assert medians["memory_boto3_calls_per_s"] > 0
    checks = document["checks"]
    expected = {
        f"{kind}_{way}_{check}"
        for kind in ("memory", "sqlite")
        for way in WAYS
        for check in ("no_call_failed", "every_execution_succeeded")
    } | {"memory_boto3_no_call_failed", "memory_boto3_every_execution_succeeded"}
    assert set(checks) == expected
    assert all(checks.values()), checks
    labels = {comparison["label"] for comparison in document["comparisons"]}
    assert "memory: HTTP child / in-process (starts/s)" in labels
    assert "sqlite: raw child / in-process (starts/s)" in labels
    assert all(comparison["ratio"] > 0 for comparison in document["comparisons"])


def test_a_failed_call_and_a_missing_execution_fail_the_checks() -> None:
    async def call(index: int, loop: int) -> str:
        await asyncio.sleep(0)
        if index == 3:
            raise RuntimeError("HTTP 400: ValidationException")
        return f"arn:{index}"

    driven = asyncio.run(http_start.drive(call, 0, 6, 4))
    assert sorted(driven.arns) == ["arn:0", "arn:1", "arn:2", "arn:4", "arn:5"]
    assert driven.errors == ["RuntimeError: HTTP 400: ValidationException"]
    measured = Measured()
    http_start.record(measured, "x", driven, cpu_s=0.01)
    http_start._check_all_succeeded(measured, "x", driven, {"arn:0", "arn:1", "arn:2"}, 0)
    assert measured.checks == {"x_no_call_failed": False, "x_every_execution_succeeded": False}
    assert "1 calls failed" in measured.notes[0]
    http_start._check_all_succeeded(measured, "y", driven, set(driven.arns), 0)
    assert measured.checks["y_every_execution_succeeded"] is True
