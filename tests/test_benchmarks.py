"""The benchmark suite: every scenario runs at a tiny size and reports well-formed results.

Figures are not asserted (they depend on the machine); the shape of the JSON document, the
invariants (a concurrency limit never exceeded, every execution succeeded) and the plumbing
(table, file, command line) are.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest

from benchmarks import map as map_scenario
from benchmarks import peers
from benchmarks.common import Metric, Progress, percentile
from benchmarks.suite import SCENARIOS, git_commit, machine_facts, main, run_suite
from runtime.cli import main as statemill

#: Per scenario: overrides on top of --quick that keep the whole file well under 20 s.
TINY: dict[str, dict[str, float]] = {
    "chain": {"executions": 60, "in_flight": 20},
    "map": {
        "inline_items": 40,
        "inline_mc_b": 7,
        "distributed_start": 10,
        "distributed_items": 100,
        "distributed_mc": 9,
    },
    "parked": {"n": 40, "wait_s": 1, "wave": 15, "lateness_sample": 10},
    "handlers": {"executions": 120, "limit": 8, "in_flight": 40, "handler_ms": 2},
    "replay": {"fold_events": 400, "resume_n": 40, "resume_wave": 15},
    "cli_start": {"repeats": 1},
    "peers": {
        "a_executions": 30,
        "a_warmup": 5,
        "b_executions": 60,
        "b_in_flight": 20,
        "b_warmup": 10,
        "c_items": 20,
        "c_executions": 2,
        "c_warmup": 1,
        "d_executions": 20,
    },
}

DOCUMENT_KEYS = {
    "scenario",
    "description",
    "date",
    "quick",
    "runs_requested",
    "params",
    "full_params",
    "at_full_size",
    "metrics",
    "medians",
    "comparisons",
    "checks",
    "notes",
    "runs",
    "machine",
    "path",
}
MACHINE_KEYS = {
    "date",
    "python",
    "implementation",
    "platform",
    "cpu_count",
    "total_memory_bytes",
    "loop",
    "statemill_version",
    "git_commit",
}


def run_tiny(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    [document] = run_suite(
        [name],
        quick=True,
        runs=1,
        out=tmp_path,
        loop="asyncio",
        overrides=TINY[name],
        in_process=True,
        progress=False,
    )
    table = capsys.readouterr().out
    assert f"== {name} (" in table
    assert "reduced size: targets not judged" in table
    written = json.loads(Path(document["path"]).read_text(encoding="utf-8"))
    assert written == {k: v for k, v in document.items() if k != "path"}
    assert Path(document["path"]).name.startswith(f"{name}-")
    return document


def assert_shape(document: dict[str, Any], name: str) -> None:
    assert set(document) >= DOCUMENT_KEYS
    assert set(document["machine"]) >= MACHINE_KEYS
    assert document["scenario"] == name
    assert document["at_full_size"] is False
    assert len(document["runs"]) == 1
    assert document["params"] == {**SCENARIOS[name].quick, **TINY[name]}
    for metric in document["metrics"]:
        assert {"key", "label", "unit", "median", "runs", "target", "met"} <= set(metric)
        assert math.isfinite(metric["median"])
        assert metric["met"] is None  # never judged at a reduced size
        assert metric["runs"] == [document["runs"][0]["values"][metric["key"]]]
    for comparison in document["comparisons"]:
        assert comparison["ratio"] is not None
        assert comparison["ratio"] > 0
    assert document["checks"]
    assert all(document["checks"].values()), document["checks"]


def test_chain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = run_tiny("chain", tmp_path, capsys)
    assert_shape(document, "chain")
    medians = document["medians"]
    for store in ("memory", "sqlite"):
        assert medians[f"{store}_transitions_per_s"] == pytest.approx(
            10 * medians[f"{store}_executions_per_s"]
        )


def test_map_never_exceeds_max_concurrency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = run_tiny("map", tmp_path, capsys)
    assert_shape(document, "map")
    medians = document["medians"]
    assert 1 <= medians["inline_b_max_concurrency"] <= 7
    assert medians["inline_a_max_concurrency"] >= 1
    assert 1 <= medians["distributed_max_concurrency"] <= 9
    ladder = document["runs"][0]["info"]["distributed_ladder"]
    assert [step["items"] for step in ladder] == [10, 100]
    assert medians["distributed_items_run"] == 100
    assert any("TARGET SIZE NOT RUN" in note for note in document["notes"]) is False


def test_parked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = run_tiny("parked", tmp_path, capsys)
    assert_shape(document, "parked")
    medians = document["medians"]
    assert medians["held_peak"] >= 1
    assert medians["peak_rss_mib"] > 0
    assert medians["lateness_p50_s"] <= medians["lateness_p99_s"] <= medians["lateness_max_s"]


def test_handlers_never_exceed_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = run_tiny("handlers", tmp_path, capsys)
    assert_shape(document, "handlers")
    for store in ("memory", "sqlite"):
        assert 1 <= document["medians"][f"{store}_max_in_flight"] <= 8


def test_cli_start_times_each_command_beside_python(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = run_tiny("cli_start", tmp_path, capsys)
    assert_shape(document, "cli_start")
    medians = document["medians"]
    for command in ("version", "validate", "describe", "list", "machines"):
        # A command does what python -c pass does and more: it cannot start faster.
        assert medians[f"{command}_s"] > medians["python_pass_s"] > 0


def test_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = run_tiny("replay", tmp_path, capsys)
    assert_shape(document, "replay")
    assert document["medians"]["fold_map_events"] >= 400
    assert document["medians"]["fold_map_events_per_s"] > 0


def test_peers_runs_the_same_workloads_on_both_sides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = run_tiny("peers", tmp_path, capsys)
    assert_shape(document, "peers")
    medians = document["medians"]
    for workload in ("a", "b", "c", "d", "e"):
        assert medians[f"{workload}_statemill_executions_per_s"] > 0
    # a real clock: the shortest of the Waits took the whole second
    assert document["checks"]["d_statemill_waited_1s"] is True
    assert medians["d_statemill_seconds"] >= 1.0
    assert medians["c_statemill_items_per_s"] == pytest.approx(
        20 / medians["c_statemill_seconds_per_execution"]
    )
    info = document["runs"][0]["info"]
    reason = info.get("peer_not_run")
    if reason is not None:
        assert any(note.startswith("PEER NOT RUN: ") for note in document["notes"])
        assert "a_peer_executions_per_s" not in medians
        # only a missing node or npm (or an unreachable registry) excuses the peer
        assert reason.startswith(("node is not on the PATH", "npm ")), reason
        pytest.skip(f"aws-local-stepfunctions not run: {reason}")
    assert info["peer_version"].startswith("3.")
    assert document["checks"]["d_peer_waited_1s"] is True
    assert medians["d_peer_seconds"] >= 1.0
    for key in ("a_ratio", "b_ratio", "c_ratio", "d_time_ratio", "d_rss_ratio", "e_ratio"):
        assert medians[key] > 0
    assert medians["a_ratio"] == pytest.approx(
        medians["a_statemill_executions_per_s"] / medians["a_peer_executions_per_s"]
    )
    assert medians["e_ratio"] == pytest.approx(
        medians["e_statemill_executions_per_s"] / medians["b_peer_executions_per_s"]
    )


def test_peers_says_so_without_node(tmp_path: Path) -> None:
    assert peers.find_peer(path=str(tmp_path)) == "node is not on the PATH"
    reason = asyncio.run(peers.prepare_peer(path=str(tmp_path), cache=tmp_path / "cache"))
    assert reason == "node is not on the PATH"
    assert not (tmp_path / "cache").exists()


def test_command_line_runs_a_scenario_in_a_child_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["chain", "--quick", "--out", str(tmp_path), "--no-progress", "--loop", "asyncio"]
    argv += ["--param", "executions=30", "--param", "in_flight=10"]
    assert main(argv) == 0
    assert "== chain (executions=30, in_flight=10" in capsys.readouterr().out
    [path] = tmp_path.glob("chain-*.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["runs"][0]["checks"]["sqlite_all_succeeded"] is True


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc_info:
        main(["nosuch"])
    assert exc_info.value.code == 2
    with pytest.raises(SystemExit) as exc_info:
        main(["chain", "--param", "nosuch=1"])
    assert exc_info.value.code == 2
    assert "nosuch" in capsys.readouterr().err


def test_statemill_bench_is_a_thin_call(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert statemill(["bench", "--help"]) == 0
    assert "--quick" in capsys.readouterr().out
    assert statemill(["bench", "nosuch", "--out", str(tmp_path)]) == 2


def test_ladder_and_prediction() -> None:
    assert map_scenario.ladder(1_000, 1_000_000) == [1_000, 10_000, 100_000, 1_000_000]
    assert map_scenario.ladder(300, 300) == [300]
    assert map_scenario.ladder(300, 2_000) == [300, 2_000]
    # quadratic growth between the last two sizes predicts quadratic growth onwards
    assert map_scenario.predict([(1_000, 1.0), (10_000, 100.0)], 100_000) == pytest.approx(10_000)
    # never assumes better than linear
    assert map_scenario.predict([(1_000, 2.0), (10_000, 4.0)], 100_000) == pytest.approx(40.0)


def test_helpers() -> None:
    assert percentile([], 0.99) == 0.0
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert percentile([float(i) for i in range(1, 101)], 0.50) == 50.0
    assert Metric(key="x", label="x", unit="s", target=1, better="lower").meets(0.5) is True
    assert Metric(key="x", label="x", unit="/s", target=10).meets(9) is False
    assert Metric(key="x", label="x", unit="").meets(9) is None
    facts = machine_facts("asyncio")
    assert facts["cpu_count"] >= 1
    root = Path(__file__).resolve().parent.parent
    commit = git_commit(root)
    assert commit is None or len(commit) == 40


def test_progress_bar_is_quiet_when_disabled(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(enabled=False)
    progress.start("x", 3)
    progress.update(3)
    progress.finish()
    assert capsys.readouterr().err == ""


def test_cluster_runs_chain_and_handlers_on_one_and_two_processes(tmp_path: Path) -> None:
    """``benchmarks.cluster`` at a tiny size: SQLite, then 1 and 2 member processes on one
    PostgreSQL; with 2, random names go through the request path and local ones never do."""
    from benchmarks import cluster
    from tests.store.postgres_server import INSTALL_HINT, find_bin_dir

    if find_bin_dir() is None:
        pytest.skip(INSTALL_HINT)
    out = tmp_path / "cluster.json"
    sizes = {"chain_executions": 40, "handlers_executions": 40, "random_executions": 20,
             "in_flight": 10, "warmup": 4, "profile_executions": 10, "handler_ms": 2}  # fmt: skip
    argv = ["--quick", "--members", "1,2", "--out", str(out)]
    argv += [arg for key, value in sizes.items() for arg in ("--param", f"{key}={value}")]
    assert cluster.main(argv) == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["postgres"]["fsync"] == "on"
    assert document["checks"]
    assert all(document["checks"].values()), document["checks"]
    figures = document["figures"]
    for workload, length in (("chain", 10), ("handlers", 1)):
        for label in ("sqlite", "postgres_1/random", "postgres_2/random", "postgres_2/local"):
            numbers = figures[f"{workload}/{label}"]
            assert numbers["transitions_per_s"] == pytest.approx(
                length * numbers["executions_per_s"]
            )
        assert figures[f"{workload}/postgres_1/random"]["ratio_to_1_process"] == 1.0
        assert figures[f"{workload}/postgres_2/local"]["requested_starts_percent"] == 0
        assert figures[f"{workload}/postgres_2/random"]["requested_starts_percent"] > 0
        assert figures[f"{workload}/postgres_2/random"]["executions"] == 20
        profile = document["profile"][workload]
        assert profile["members"] == 2
        assert sum(profile["own_time_percent_by_area"].values()) == pytest.approx(100, abs=1)
