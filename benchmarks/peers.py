"""``peers``: the same workloads on Statemill and on aws-local-stepfunctions, in the same run.

Issue 10, part 7. When ``node`` is on the PATH, aws-local-stepfunctions 3.x is installed with
npm into a cache folder (``benchmarks/.peers-cache``, or ``$STATEMILL_PEERS_CACHE``; reused when
it holds a 3.x) and every workload runs on both sides, the sides alternating, each run in a
fresh process: ``peers_node.mjs`` under ``node`` for the peer, ``peers_statemill.py`` under this
interpreter (the public ``runtime`` API, memory store; SQLite with ``synchronous=FULL`` for e).
Both read the same spec (definition, input, sizes) and print the same JSON fields.

Workloads (``in_flight`` client loops each start an execution and await its end, after an
untimed warm-up run the same way):

- a. ``length`` chained Pass states, one execution at a time: executions/s and transitions/s;
- b. the same with ``b_in_flight`` executions in flight;
- c. an inline Map (JSONPath, ``MaxConcurrency: 0``) over ``c_items`` items, each iteration a
  Pass, one execution at a time: seconds per Map and items/s;
- d. ``d_executions`` concurrent executions of a Wait of ``d_wait_s`` seconds then a Pass, on a
  real clock on both sides (no wait-time override is passed to the peer): time from the first
  start to the last end, time to start them all, and the process's peak RSS; both sides must be
  seen to wait (shortest execution >= ``d_wait_s``);
- e. workload b on SQLite (``synchronous=FULL``, commit before acting) against the peer's
  in-memory rate of b in the same run (``sqlite=0`` skips it).

Every ratio is Statemill / peer, per run (the suite reports the median and each run's value)
and judged against issue 10's "Done when" at the full size: a >= 1.5x, b >= 2x, c >= 5x,
d finishing first (time ratio < 1) with peak RSS < 0.7x, e >= 0.9x.

Without ``node`` (or ``peer=0``, or when npm fails) a note says so and Statemill is measured
alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, final

from benchmarks.common import (
    JSON,
    Comparison,
    Measured,
    Metric,
    Params,
    Progress,
    Scenario,
    as_int,
    chain_definition,
)

__all__ = ["PEER_PACKAGE", "SCENARIO", "Peer", "cache_dir", "find_peer", "prepare_peer"]

#: What npm installs: the peer, major version 3.
PEER_PACKAGE: Final = "aws-local-stepfunctions@^3"
PEER_NAME: Final = "aws-local-stepfunctions"
ROOT: Final = Path(__file__).resolve().parent.parent
NODE_SCRIPT: Final = Path(__file__).resolve().parent / "peers_node.mjs"
DEFAULT_CACHE: Final = Path(__file__).resolve().parent / ".peers-cache"
#: Seconds one measuring process (either side) may take before it is killed.
CHILD_TIMEOUT_S: Final = 900.0
#: Seconds ``npm install`` may take.
NPM_TIMEOUT_S: Final = 300.0

Side = Literal["peer", "statemill", "sqlite"]


@final
@dataclass(frozen=True, kw_only=True)
class Peer:
    """A usable peer: the node executable, the cache folder holding the package, versions."""

    node: str
    cache: Path
    version: str
    node_version: str


def cache_dir() -> Path:
    """Where the peer is installed: ``$STATEMILL_PEERS_CACHE`` or ``benchmarks/.peers-cache``."""
    configured = os.environ.get("STATEMILL_PEERS_CACHE")
    return Path(configured) if configured else DEFAULT_CACHE


def installed_version(cache: Path) -> str | None:
    """The version of the peer installed in ``cache``, or None."""
    manifest = cache / "node_modules" / PEER_NAME / "package.json"
    try:
        version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


def find_peer(path: str | None = None) -> tuple[str, str] | str:
    """``(node, npm)`` found on ``path`` (default: ``$PATH``), or why the peer cannot run.

    npm may be missing (an empty string) when the cache already holds the package.
    """
    node = shutil.which("node", path=path)
    if node is None:
        return "node is not on the PATH"
    return node, shutil.which("npm", path=path) or ""


async def prepare_peer(path: str | None = None, cache: Path | None = None) -> Peer | str:
    """The peer ready to run (installed into the cache if it is not there), or why not."""
    found = find_peer(path)
    if isinstance(found, str):
        return found
    node, npm = found
    cache = cache if cache is not None else cache_dir()
    version = installed_version(cache)
    if version is None or not version.startswith("3."):
        if not npm:
            return f"npm is not on the PATH (needed to install {PEER_PACKAGE} into {cache})"
        failure = await _npm_install(npm, cache)
        if failure is not None:
            return failure
        version = installed_version(cache)
        if version is None:
            return f"npm reported success but {PEER_NAME} is not in {cache}"
    code, out, err = await _run([node, "--version"], b"", timeout=60.0)
    if code != 0:
        return f"`node --version` failed (exit {code}): {_tail(err)}"
    return Peer(node=node, cache=cache, version=version, node_version=out.decode().strip())


async def _npm_install(npm: str, cache: Path) -> str | None:
    """Install the peer into a fresh folder beside ``cache``, then move it into place.

    A half-finished install never sits in the cache; when two runs install at once, the
    first to finish wins and the other's folder is dropped.
    """
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = cache.parent / f"{cache.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        command = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund"]
        command += ["--loglevel=error", PEER_PACKAGE]
        try:
            code, _, err = await _run(command, b"", timeout=NPM_TIMEOUT_S)
        except TimeoutError:
            return f"npm install {PEER_PACKAGE} took more than {NPM_TIMEOUT_S:.0f} s"
        if code != 0:
            return f"npm install {PEER_PACKAGE} failed (exit {code}): {_tail(err)}"
        if installed_version(cache) is None:
            shutil.rmtree(cache, ignore_errors=True)
            # OSError: another run moved its install into place first
            with contextlib.suppress(OSError):
                staging.rename(cache)
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


async def _run(command: list[str], stdin: bytes, *, timeout: float) -> tuple[int, bytes, bytes]:
    """Run ``command`` with ``stdin``: (exit status, stdout, stderr); killed after ``timeout``."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=_child_env(),
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate(stdin)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode or 0, out, err


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _tail(text: bytes, lines: int = 3) -> str:
    return " | ".join(text.decode(errors="replace").strip().splitlines()[-lines:]) or "no output"


# -- workloads ------------------------------------------------------------------------------------


def map_definition() -> dict[str, JSON]:
    """An inline Map over ``$.items`` (no concurrency limit) whose iteration is one Pass."""
    return {
        "Comment": "inline Map, each iteration a Pass",
        "StartAt": "Map",
        "States": {
            "Map": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 0,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Item",
                    "States": {"Item": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        },
    }


def wait_definition(wait_s: int) -> dict[str, JSON]:
    """Wait ``wait_s`` seconds, then Pass."""
    return {
        "Comment": "wait, then pass",
        "StartAt": "Park",
        "States": {
            "Park": {"Type": "Wait", "Seconds": wait_s, "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    }


def specs(params: Params) -> dict[str, dict[str, JSON]]:
    """The spec of each workload (a to d), as both sides read it."""
    length = as_int(params, "length")
    chain = chain_definition(length)
    items = as_int(params, "c_items")

    def spec(
        definition: dict[str, JSON],
        input: dict[str, JSON],
        *,
        executions: int,
        in_flight: int,
        warmup: int,
        transitions: int,
        expect: str = "input",
    ) -> dict[str, JSON]:
        return {
            "definition": definition,
            "input": input,
            "executions": executions,
            "in_flight": in_flight,
            "warmup": warmup,
            "transitions_per_execution": transitions,
            "expect": expect,
        }

    return {
        "a": spec(
            chain,
            {},
            executions=as_int(params, "a_executions"),
            in_flight=1,
            warmup=as_int(params, "a_warmup"),
            transitions=length,
        ),
        "b": spec(
            chain,
            {},
            executions=as_int(params, "b_executions"),
            in_flight=as_int(params, "b_in_flight"),
            warmup=as_int(params, "b_warmup"),
            transitions=length,
        ),
        "c": spec(
            map_definition(),
            {"items": list(range(items))},
            executions=as_int(params, "c_executions"),
            in_flight=1,
            warmup=as_int(params, "c_warmup"),
            transitions=items + 1,
            expect="items",
        ),
        "d": spec(
            wait_definition(as_int(params, "d_wait_s")),
            {},
            executions=as_int(params, "d_executions"),
            in_flight=as_int(params, "d_executions"),
            warmup=0,
            transitions=2,
        ),
    }


def _loop_name() -> str:
    """The running event loop's kind, so that the Statemill side runs on the same one."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"


async def measure(side: Side, spec: dict[str, JSON], peer: Peer | None) -> dict[str, JSON]:
    """One measurement of ``spec`` on ``side``, in a fresh process; its JSON figures.

    Raises:
        RuntimeError: the measuring process failed or printed no result.
    """
    if side == "peer":
        assert peer is not None
        command = [peer.node, str(NODE_SCRIPT), str(peer.cache)]
    else:
        store = "memory" if side == "statemill" else "sqlite"
        command = [sys.executable, "-m", "benchmarks.peers_statemill"]
        command += ["--loop", _loop_name(), "--store", store]
    code, out, err = await _run(command, json.dumps(spec).encode(), timeout=CHILD_TIMEOUT_S)
    lines = out.decode().strip().splitlines()
    if code != 0 or not lines:
        raise RuntimeError(f"peers: the {side} process exited with status {code}: {_tail(err)}")
    result: dict[str, JSON] = json.loads(lines[-1])
    return result


# -- the scenario ---------------------------------------------------------------------------------

#: The order of the sides per workload: alternating who goes first.
ORDER: Final[dict[str, tuple[Side, ...]]] = {
    "a": ("peer", "statemill"),
    "b": ("statemill", "peer", "sqlite"),
    "c": ("peer", "statemill"),
    "d": ("statemill", "peer"),
}


async def run(params: Params, progress: Progress) -> Measured:
    """Prepare the peer, then run each workload on each side once."""
    measured = Measured()
    peer: Peer | None = None
    if params["peer"]:
        progress.note(f"peers: preparing {PEER_PACKAGE} in {cache_dir()}")
        prepared = await prepare_peer()
        if isinstance(prepared, Peer):
            peer = prepared
            measured.info.update(
                peer_version=peer.version, node_version=peer.node_version, cache=str(peer.cache)
            )
        else:
            measured.notes.append(f"PEER NOT RUN: {prepared}; Statemill measured alone")
            measured.info["peer_not_run"] = prepared
    else:
        measured.notes.append("PEER NOT RUN: peer=0 asked for; Statemill measured alone")
        measured.info["peer_not_run"] = "peer=0"
    workloads = specs(params)
    measured.info["specs"] = {
        name: {k: v for k, v in spec.items() if k not in ("definition", "input")}
        for name, spec in workloads.items()
    }
    results: dict[str, dict[str, JSON]] = {}
    sides_per_workload = {
        name: [
            side
            for side in ORDER[name]
            if (side != "peer" or peer is not None) and (side != "sqlite" or params["sqlite"])
        ]
        for name in workloads
    }
    progress.start("peers", sum(len(sides) for sides in sides_per_workload.values()))
    done = 0
    for name, spec in workloads.items():
        for side in sides_per_workload[name]:
            # workload b on SQLite is workload e, on the Statemill side
            key = "e_statemill" if side == "sqlite" else f"{name}_{side}"
            results[key] = await measure(side, spec, peer)
            done += 1
            progress.update(done)
    progress.finish()
    measured.info["results"] = results
    _figures(results, as_int(params, "d_wait_s"), measured)
    return measured


def _figures(results: dict[str, dict[str, JSON]], wait_s: int, measured: Measured) -> None:
    """Values, ratios and checks from the raw results of one run."""
    values = measured.values
    for key, result in results.items():
        seconds = float(result["seconds"])
        executions = int(result["executions"])
        values[f"{key}_executions_per_s"] = executions / seconds
        values[f"{key}_transitions_per_s"] = int(result["transitions"]) / seconds
        values[f"{key}_seconds"] = seconds
        values[f"{key}_seconds_per_execution"] = seconds / executions
        values[f"{key}_start_seconds"] = float(result["started_seconds"])
        values[f"{key}_rss_mib"] = int(result["peak_rss_bytes"]) / 2**20
        measured.checks[f"{key}_all_succeeded"] = result["failures"] == 0
        measured.checks[f"{key}_outputs_right"] = result["wrong_outputs"] == 0
        if result.get("last_error"):
            measured.notes.append(f"{key}: an execution failed: {result['last_error']}")
        if key.startswith("d_"):
            shortest = result["min_duration_s"]
            # The shortest execution took the whole Wait: nobody skipped or shortened it
            # (1 ms of slack for the two clocks' rounding).
            waited = isinstance(shortest, int | float) and shortest >= wait_s - 0.001
            measured.checks[f"{key}_waited_{wait_s}s"] = waited
    for key in ("c_peer", "c_statemill"):
        if key in results:
            # items/s: every transition but the Map state's own, one per execution
            items = int(results[key]["transitions"]) - int(results[key]["executions"])
            values[f"{key}_items_per_s"] = items / values[f"{key}_seconds"]
    ratios = {
        "a_ratio": ("a_statemill_executions_per_s", "a_peer_executions_per_s"),
        "b_ratio": ("b_statemill_executions_per_s", "b_peer_executions_per_s"),
        "c_ratio": ("c_statemill_items_per_s", "c_peer_items_per_s"),
        "d_time_ratio": ("d_statemill_seconds", "d_peer_seconds"),
        "d_start_ratio": ("d_statemill_start_seconds", "d_peer_start_seconds"),
        "d_rss_ratio": ("d_statemill_rss_mib", "d_peer_rss_mib"),
        "e_ratio": ("e_statemill_executions_per_s", "b_peer_executions_per_s"),
    }
    for key, (value, baseline) in ratios.items():
        if value in values and values.get(baseline):
            values[key] = values[value] / values[baseline]


def _side_metrics(workload: str, figure: str, label: str, unit: str) -> tuple[Metric, ...]:
    return (
        Metric(key=f"{workload}_peer_{figure}", label=f"{label}: peer", unit=unit),
        Metric(key=f"{workload}_statemill_{figure}", label=f"{label}: Statemill", unit=unit),
    )


SCENARIO = Scenario(
    name="peers",
    description="the same workloads on Statemill and aws-local-stepfunctions, side by side",
    quick={
        "length": 10,
        "a_executions": 500,
        "a_warmup": 50,
        "b_executions": 2_000,
        "b_in_flight": 200,
        "b_warmup": 200,
        "c_items": 200,
        "c_executions": 3,
        "c_warmup": 1,
        "d_executions": 1_000,
        "d_wait_s": 1,
        "sqlite": 1,
        "peer": 1,
    },
    full={
        "length": 10,
        "a_executions": 10_000,
        "a_warmup": 1_000,
        "b_executions": 20_000,
        "b_in_flight": 1_000,
        "b_warmup": 2_000,
        "c_items": 1_000,
        "c_executions": 10,
        "c_warmup": 2,
        "d_executions": 10_000,
        "d_wait_s": 1,
        "sqlite": 1,
        "peer": 1,
    },
    metrics=(
        *_side_metrics("a", "executions_per_s", "a. {length:.0f} Pass, 1 at a time: exec/s", "/s"),
        *_side_metrics("a", "transitions_per_s", "a. transitions/s", "/s"),
        Metric(key="a_ratio", label="a. Statemill/peer (rate)", unit="x", target=1.5),
        *_side_metrics(
            "b", "executions_per_s", "b. {length:.0f} Pass, {b_in_flight:.0f} in flight", "/s"
        ),
        *_side_metrics("b", "transitions_per_s", "b. transitions/s", "/s"),
        Metric(key="b_ratio", label="b. Statemill/peer (rate)", unit="x", target=2.0),
        *_side_metrics("c", "seconds_per_execution", "c. inline Map of {c_items:.0f}: time", "s"),
        *_side_metrics("c", "items_per_s", "c. inline Map: items/s", "/s"),
        Metric(key="c_ratio", label="c. Statemill/peer (items/s)", unit="x", target=5.0),
        *_side_metrics("d", "seconds", "d. {d_executions:.0f} x Wait {d_wait_s:.0f}s: finish", "s"),
        *_side_metrics("d", "start_seconds", "d. time to start all", "s"),
        *_side_metrics("d", "rss_mib", "d. peak RSS", " MiB"),
        Metric(
            key="d_time_ratio",
            label="d. Statemill/peer (time to finish)",
            unit="x",
            target=1.0,
            better="lower",
        ),
        Metric(key="d_start_ratio", label="d. Statemill/peer (time to start)", unit="x"),
        Metric(
            key="d_rss_ratio",
            label="d. Statemill/peer (peak RSS)",
            unit="x",
            target=0.7,
            better="lower",
        ),
        Metric(
            key="e_statemill_executions_per_s",
            label="e. b on SQLite FULL: Statemill exec/s",
            unit="/s",
        ),
        Metric(
            key="e_ratio", label="e. Statemill SQLite / peer memory (rate)", unit="x", target=0.9
        ),
    ),
    comparisons=(
        Comparison(
            label="Statemill: b on SQLite FULL / memory (exec/s)",
            value="e_statemill_executions_per_s",
            baseline="b_statemill_executions_per_s",
        ),
    ),
    run=run,
)
