"""The benchmark suite's driver: ``python -m benchmarks [SCENARIO ...]`` and ``statemill bench``.

For each scenario it runs the measurement ``--runs`` times (3 by default, 1 with ``--quick``),
each in a fresh Python process so that peak RSS and the heap belong to that run alone
(``--in-process`` runs them here instead), then reports:

- a progress bar on stderr while it works;
- a table on stdout: the median of every figure, every run's value, the target from issue 4
  and whether the median meets it (only judged at the full size), ratios to the baselines
  measured in the same run, and invariant checks (which must hold in every run);
- a JSON document per scenario in ``benchmarks/results/<scenario>-<timestamp>.json`` (or
  ``--out DIR``) with the machine facts.

Exit status: 0 when every invariant check held, 1 when one failed, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import functools
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TextIO, TypeVar

from benchmarks import chain, cli_start, handlers, http_start, map_run, parked, peers, replay
from benchmarks import map as map_scenario
from benchmarks.common import JSON, Measured, Progress, Scenario, median

__all__ = ["SCENARIOS", "default_loop", "machine_facts", "main", "run_suite"]

T = TypeVar("T")
Loop = Literal["asyncio", "uvloop"]

SCENARIOS: Final[dict[str, Scenario]] = {
    scenario.name: scenario
    for scenario in (
        chain.SCENARIO,
        map_scenario.SCENARIO,
        map_run.SCENARIO,
        parked.SCENARIO,
        handlers.SCENARIO,
        replay.SCENARIO,
        peers.SCENARIO,
        http_start.SCENARIO,
        cli_start.SCENARIO,
    )
}

ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_OUT: Final = Path(__file__).resolve().parent / "results"


def default_loop() -> Loop:
    """uvloop where it is installed (as the runtime's own entry points do), else asyncio."""
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite from the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.child is not None:
        return _child(args.child, json.loads(args.child_params), args.loop)
    if args.store == "postgres":
        return _on_postgres(parser, args)
    names: list[str] = args.scenarios or list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    overrides: dict[str, float] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--param expects KEY=VALUE, not {item!r}")
        try:
            overrides[key] = float(value)
        except ValueError:
            parser.error(f"--param {key}: {value!r} is not a number")
    if args.parked_n is not None:
        overrides["n"] = float(args.parked_n)
        if "parked" not in names:
            parser.error("--parked-n needs the parked scenario")
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if runs < 1:
        parser.error("--runs must be at least 1")
    try:
        documents = run_suite(
            names,
            quick=args.quick,
            runs=runs,
            out=Path(args.out),
            loop=args.loop,
            overrides=overrides,
            in_process=args.in_process,
            progress=not args.no_progress,
        )
    except KeyError as exc:
        parser.error(str(exc.args[0]))
    ok = all(all(doc["checks"].values()) for doc in documents)
    return 0 if ok else 1


def _on_postgres(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--store postgres``: ``chain`` and ``handlers`` with 1, 2 and 3 member processes on
    one PostgreSQL (``benchmarks.cluster``, which also measures SQLite in the same run)."""
    wanted = set(args.scenarios or ("chain", "handlers"))
    if not wanted <= {"chain", "handlers"}:
        parser.error("--store postgres runs the chain and handlers scenarios only")
    from benchmarks import cluster

    forwarded = ["--quick"] if args.quick else []
    if args.runs is not None:
        forwarded += ["--runs", str(args.runs)]
    forwarded += [f"--param={item}" for item in args.param]
    return cluster.main(forwarded)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Statemill's benchmark suite (issue 4): "
        + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()),
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"scenarios to run (default: all of {', '.join(SCENARIOS)})",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (CI)")
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per scenario (default: 3; 1 with --quick)"
    )
    parser.add_argument(
        "--out",
        default=str(DEFAULT_OUT),
        metavar="DIR",
        help=f"directory for the JSON results (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default=default_loop(),
        help=f"event loop (default: {default_loop()})",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a size parameter of the scenarios that have it (repeatable); "
        "the table's header lists each scenario's parameters",
    )
    parser.add_argument(
        "--parked-n", type=int, default=None, metavar="N", help="parked: number of executions"
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="measure in this process instead of a fresh process per run "
        "(peak RSS then includes earlier runs)",
    )
    parser.add_argument(
        "--store",
        choices=("memory-and-sqlite", "postgres"),
        default="memory-and-sqlite",
        help="postgres: chain and handlers with 1, 2 and 3 runtime processes sharing one "
        "PostgreSQL, beside SQLite (benchmarks/cluster.py)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-params", default="{}", help=argparse.SUPPRESS)
    return parser


def run_suite(
    names: Sequence[str],
    *,
    quick: bool = False,
    runs: int = 1,
    out: Path | None = DEFAULT_OUT,
    loop: Loop | None = None,
    overrides: Mapping[str, float] | None = None,
    in_process: bool = False,
    progress: bool = True,
    stdout: TextIO | None = None,
) -> list[dict[str, JSON]]:
    """Run scenarios ``names``; print a table each; write (unless ``out`` is None) and return
    their JSON documents.

    ``overrides`` apply to every scenario that has the parameter; a name that no selected
    scenario has raises ``KeyError``.
    """
    loop = loop or default_loop()
    overrides = dict(overrides or {})
    scenarios = [SCENARIOS[name] for name in names]
    for key in overrides:
        if not any(key in scenario.full for scenario in scenarios):
            raise KeyError(f"no selected scenario has a parameter {key!r}")
    facts = machine_facts(loop)
    stream = stdout if stdout is not None else sys.stdout
    documents: list[dict[str, JSON]] = []
    for scenario in scenarios:
        relevant = {k: v for k, v in overrides.items() if k in scenario.full}
        params = scenario.params(quick=quick, overrides=relevant)
        measured: list[Measured] = []
        for index in range(runs):
            prefix = f"{scenario.name} run {index + 1}/{runs}: "
            if in_process:
                bar = Progress(enabled=progress, prefix=prefix)
                measured.append(run_in_loop(loop, functools.partial(scenario.run, params, bar)))
                bar.finish()
            else:
                measured.append(_run_child(scenario, params, loop, prefix, progress=progress))
        document = summarize(scenario, params, measured, facts, quick=quick, runs=runs)
        if out is not None:
            document["path"] = str(write_document(document, out))
        print(render_table(document), file=stream, flush=True)
        documents.append(document)
    return documents


def run_in_loop(loop: Loop, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``make()`` to its end on a fresh event loop of kind ``loop``."""
    if loop == "uvloop":
        import uvloop  # optional: imported only when asked for

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(make())
    with asyncio.Runner() as runner:
        return runner.run(make())


def _child(name: str, params: Mapping[str, float], loop: Loop) -> int:
    """Measure once and print the ``Measured`` as the last line of stdout (parent reads it)."""
    scenario = SCENARIOS[name]
    prefix = os.environ.get("STATEMILL_BENCH_PREFIX", "")
    progress = Progress(enabled=os.environ.get("STATEMILL_BENCH_PROGRESS") == "1", prefix=prefix)
    result = run_in_loop(loop, functools.partial(scenario.run, params, progress))
    progress.finish()
    sys.stdout.write(json.dumps(result.to_json()) + "\n")
    return 0


def _run_child(
    scenario: Scenario, params: Mapping[str, float], loop: Loop, prefix: str, *, progress: bool
) -> Measured:
    """Measure once in a fresh interpreter (so peak RSS and the heap are this run's alone)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["STATEMILL_BENCH_PREFIX"] = prefix
    env["STATEMILL_BENCH_PROGRESS"] = "1" if progress else "0"
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "--child",
        scenario.name,
        "--child-params",
        json.dumps(dict(params)),
        "--loop",
        loop,
    ]
    completed = subprocess.run(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False
    )
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        raise RuntimeError(
            f"{scenario.name}: the measuring process exited with status {completed.returncode}"
        )
    return Measured.from_json(json.loads(lines[-1]))


# -- results --------------------------------------------------------------------------------------


def summarize(
    scenario: Scenario,
    params: Mapping[str, float],
    measured: Sequence[Measured],
    facts: Mapping[str, JSON],
    *,
    quick: bool,
    runs: int,
) -> dict[str, JSON]:
    """The JSON document of a scenario: medians, every run, comparisons, targets, checks."""
    at_full_size = dict(params) == dict(scenario.full)
    keys: list[str] = []
    for run in measured:
        keys.extend(key for key in run.values if key not in keys)
    medians = {
        key: median(run.values[key] for run in measured if key in run.values) for key in keys
    }
    metrics: list[dict[str, JSON]] = []
    for metric in scenario.metrics:
        if metric.key not in medians:
            continue
        value = medians[metric.key]
        metrics.append(
            {
                "key": metric.key,
                "label": metric.label.format(**params),
                "unit": metric.unit,
                "median": value,
                "runs": [run.values.get(metric.key) for run in measured],
                "target": metric.target,
                "better": metric.better,
                "met": metric.meets(value) if at_full_size else None,
            }
        )
    comparisons = [
        {
            "label": c.label,
            "value": c.value,
            "baseline": c.baseline,
            "ratio": medians[c.value] / medians[c.baseline] if medians.get(c.baseline) else None,
        }
        for c in scenario.comparisons
        if c.value in medians and c.baseline in medians
    ]
    check_names: list[str] = []
    for run in measured:
        check_names.extend(name for name in run.checks if name not in check_names)
    checks = {name: all(run.checks.get(name, False) for run in measured) for name in check_names}
    notes: list[str] = []
    for run in measured:
        notes.extend(note for note in run.notes if note not in notes)
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "date": facts["date"],
        "quick": quick,
        "runs_requested": runs,
        "params": dict(params),
        "full_params": dict(scenario.full),
        "at_full_size": at_full_size,
        "metrics": metrics,
        "medians": medians,
        "comparisons": comparisons,
        "checks": checks,
        "notes": notes,
        "runs": [run.to_json() for run in measured],
        "machine": dict(facts),
    }


def write_document(document: Mapping[str, JSON], out: Path) -> Path:
    """Write ``document`` as ``<out>/<scenario>-<timestamp>.json``; returns the path."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = str(document["date"]).replace("-", "").replace(":", "").replace("+0000", "Z")
    path = out / f"{document['scenario']}-{stamp}.json"
    counter = 1
    while path.exists():  # two scenarios in the same second: never overwrite a result
        counter += 1
        path = out / f"{document['scenario']}-{stamp}-{counter}.json"
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def render_table(document: Mapping[str, JSON]) -> str:
    """The terminal table of one scenario's document."""
    params = ", ".join(f"{k}={_number(v)}" for k, v in document["params"].items())
    size = "full size" if document["at_full_size"] else "reduced size: targets not judged"
    runs = len(document["runs"])
    lines = [f"== {document['scenario']} ({params}; {runs} run(s); {size})"]
    header = ("figure", "median", "runs", "target", "met")
    rows: list[tuple[str, str, str, str, str]] = []
    for metric in document["metrics"]:
        unit = metric["unit"]
        target = ""
        if metric["target"] is not None:
            sign = ">=" if metric["better"] == "higher" else "<"
            target = f"{sign} {_number(metric['target'])}{unit}"
        met = {True: "yes", False: "NO", None: "-"}[metric["met"]]
        every = " ".join(_number(v) for v in metric["runs"] if v is not None)
        rows.append((metric["label"], f"{_number(metric['median'])}{unit}", every, target, met))
    for comparison in document["comparisons"]:
        ratio = comparison["ratio"]
        rows.append((comparison["label"], "-" if ratio is None else f"{ratio:.2f}x", "", "", ""))
    for name, ok in document["checks"].items():
        rows.append((f"check: {name}", "ok" if ok else "FAILED", "", "", ""))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    )
    lines.extend(f"note: {note}" for note in document["notes"])
    if "path" in document:
        lines.append(f"results: {document['path']}")
    return "\n".join(line.rstrip() for line in lines)


def _number(value: object) -> str:
    if not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


# -- machine facts --------------------------------------------------------------------------------


def machine_facts(loop: Loop) -> dict[str, JSON]:
    """Facts that make a result comparable: interpreter, platform, CPUs, memory, loop, versions."""
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "total_memory_bytes": _total_memory(),
        "load_average_1m": _load_average(),
        "loop": loop,
        "uvloop_version": _version("uvloop"),
        "statemill_version": _statemill_version(),
        "git_commit": git_commit(ROOT),
    }


def _load_average() -> float | None:
    """The 1-minute load average when the suite started: other work skews every figure."""
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def _total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _statemill_version() -> str | None:
    """The version in the checkout's pyproject.toml (what is measured), else the installed one."""
    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        with pyproject.open("rb") as file:
            version = tomllib.load(file).get("project", {}).get("version")
        if isinstance(version, str):
            return version
    return _version("statemill")


def git_commit(root: Path) -> str | None:
    """The checked-out commit, read from ``.git`` directly (no git process), or None."""
    git = root / ".git"
    try:
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (root / git.read_text(encoding="utf-8").split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return head
        ref = head.split(":", 1)[1].strip()
        for base in (git, _common_dir(git)):
            ref_file = base / ref
            if ref_file.is_file():
                return ref_file.read_text(encoding="utf-8").strip()
            packed = base / "packed-refs"
            if packed.is_file():
                for line in packed.read_text(encoding="utf-8").splitlines():
                    sha, _, name = line.partition(" ")
                    if name == ref:
                        return sha
    except (OSError, IndexError):
        return None
    return None


def _common_dir(git: Path) -> Path:
    common = git / "commondir"
    if common.is_file():
        return (git / common.read_text(encoding="utf-8").strip()).resolve()
    return git
