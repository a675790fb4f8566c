"""``cli_start``: how long a ``statemill`` command takes from exec to exit (issue 16: "a fast
start": ``statemill validate`` and ``describe`` under 0.2 s on this machine).

Each command runs ``repeats`` times, each a fresh ``python -m runtime ...`` process (as the
``statemill`` script runs it), and the median wall time is reported beside the baseline measured
in the same run: ``python -c pass`` (the interpreter's own start, with the same site-packages).
Bytecode is written by one run before timing and read after (as after an install; the
children's environment drops ``PYTHONDONTWRITEBYTECODE``). The
store is a SQLite file with one finished execution, made by ``statemill run`` in set-up.

Commands: ``--version``, ``validate`` (a definition file), ``describe`` (that execution),
``list`` (a table) and ``machines list``. Checks: each exits 0 and prints what it should.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from benchmarks.common import (
    Comparison,
    Measured,
    Metric,
    Params,
    Progress,
    Scenario,
    as_int,
    median,
)

__all__ = ["SCENARIO"]

_DEFINITION: Final = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
_COMMANDS: Final = ("version", "validate", "describe", "list", "machines")


#: The children's environment: bytecode is written and read, as after an install (a
#: ``PYTHONDONTWRITEBYTECODE`` in the caller's would compile every module on every start).
_ENV: Final = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed(command: list[str], repeats: int) -> tuple[float, subprocess.CompletedProcess[str]]:
    """The median wall time of ``repeats`` runs of ``command``, and its last run."""
    times = []
    run = functools.partial(subprocess.run, capture_output=True, text=True, check=False, env=_ENV)
    done = run(command)  # compiles what is not compiled yet
    for _ in range(repeats):
        start = time.perf_counter()
        done = run(command)
        times.append(time.perf_counter() - start)
    return median(times), done


async def run(params: Params, progress: Progress) -> Measured:
    """Time the commands (in a worker thread: the processes are waited for, not awaited)."""
    return await asyncio.to_thread(_measure, params, progress)


def _measure(params: Params, progress: Progress) -> Measured:
    repeats = as_int(params, "repeats")
    measured = Measured()
    statemill = [sys.executable, "-m", "runtime"]
    with tempfile.TemporaryDirectory(prefix="statemill-cli-") as folder:
        definition = Path(folder) / "pass.asl.json"
        definition.write_text(json.dumps(_DEFINITION))
        store = str(Path(folder) / "cli.db")
        made = subprocess.run(
            [*statemill, "run", str(definition), "--store", store, "--name", "cli"],
            capture_output=True,
            text=True,
            check=False,
            env=_ENV,
        )
        measured.checks["set-up run succeeded"] = made.returncode == 0
        execution = json.loads(made.stdout)["executionArn"] if made.returncode == 0 else ""
        commands = {
            "version": [*statemill, "--version"],
            "validate": [*statemill, "validate", str(definition)],
            "describe": [*statemill, "describe", "--store", store, execution],
            "list": [*statemill, "list", "--store", store],
            "machines": [*statemill, "machines", "list", "--store", store],
        }
        progress.start("commands", len(commands) + 1)
        baseline, _ = _timed([sys.executable, "-c", "pass"], repeats)
        measured.values["python_pass_s"] = baseline
        progress.update(1)
        for index, (key, command) in enumerate(commands.items(), start=2):
            seconds, done = _timed(command, repeats)
            progress.update(index)
            measured.values[f"{key}_s"] = seconds
            measured.values[f"{key}_over_python"] = seconds / baseline
            expected = {"describe": execution, "list": "SUCCEEDED", "machines": "cli"}.get(key)
            printed = done.returncode == 0 and (expected is None or expected in done.stdout)
            measured.checks[f"{key} exits 0 and prints its answer"] = printed
        progress.finish()
    measured.info["repeats"] = repeats
    measured.notes.append(
        "Each figure is the median wall time of fresh processes, after one run compiled the "
        "bytecode; python -c pass is the same interpreter's start, measured in the same run."
    )
    return measured


SCENARIO = Scenario(
    name="cli_start",
    description="wall time of statemill commands, fresh processes (issue 16)",
    quick={"repeats": 5},
    full={"repeats": 21},
    run=run,
    metrics=(
        Metric(key="python_pass_s", label="python -c pass (baseline)", unit="s"),
        Metric(key="version_s", label="statemill --version", unit="s"),
        Metric(key="validate_s", label="statemill validate", unit="s", target=0.2, better="lower"),
        Metric(key="describe_s", label="statemill describe", unit="s", target=0.2, better="lower"),
        Metric(key="list_s", label="statemill list", unit="s"),
        Metric(key="machines_s", label="statemill machines list", unit="s"),
    ),
    comparisons=tuple(
        Comparison(label=f"{key} / python -c pass", value=f"{key}_s", baseline="python_pass_s")
        for key in _COMMANDS
    ),
)
