"""``cluster_map``: one distributed Map over a million items run by two runtime processes on
one PostgreSQL (issue 12: "the distributed Map over 1,000,000 items with 2 processes").

    python -m benchmarks.cluster_map                  # 1,000,000 items, 2 members, 1 run
    python -m benchmarks.cluster_map --quick          # 10,000 items (about a minute)
    python -m benchmarks.cluster_map --members 1,2 --runs 3 --param items=100000

A throwaway PostgreSQL server is started with fsync on (``PostgresServer(durable=True)``), and
a CSV of ``items`` customers is written to a local object store folder (``benchmarks.map_run
.write_customers``; a million items come from S3 on AWS too: a state's input holds 256 KiB).
For each configuration (``--members``, each in a fresh schema) the ``benchmarks.cluster_member``
processes join one after the other on that folder and the driver waits until the 256 partition
leases are spread over all of them; then member 0 starts one execution of the monthly billing
(``benchmarks.map_run.definition``: a distributed Map, ``MaxConcurrency`` ``max_concurrency``,
an ``ItemReader`` over the CSV, a child execution per row, each one Task calling the
``invoice`` handler, a ``ResultWriter``) and waits for its end. The children hash into
partitions like any execution, so each member runs the children of the partitions it holds:
the ``invoice`` calls per member say how the work was shared. Reported: time to finish,
items/s, each member's calls, CPU seconds, store calls and peak RSS, the server's CPU seconds,
commits and WAL bytes, and whether the Map succeeded with every row written by its
ResultWriter.

Needs PostgreSQL's server binaries (``tests/store/postgres_server.py`` finds them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from benchmarks.cluster import (
    ROOT,
    Config,
    durable_server,
    machine_busy_seconds,
    parse_params,
    scratch_folder,
    server_counters,
    server_cpu_seconds,
)
from benchmarks.common import median
from benchmarks.map_run import write_customers
from benchmarks.suite import machine_facts

JSON = Any
DEFAULT_OUT: Final = ROOT / "benchmarks" / "results" / "cluster_map.json"

QUICK: Final[Mapping[str, float]] = {"items": 10_000, "max_concurrency": 1_000, "timeout": 600}
FULL: Final[Mapping[str, float]] = {
    "items": 1_000_000,
    "max_concurrency": 10_000,
    "timeout": 3_600,
}
#: What ``cluster_member`` needs of the ``cluster`` parameters (the Map calls no ``sleepy``).
MEMBER_PARAMS: Final[Mapping[str, float]] = {"limit": 1000, "handler_ms": 0}


def rows_written(output: JSON, objects: Path) -> int:
    """The rows the Map's ResultWriter wrote as succeeded (its manifest's SUCCEEDED files)."""
    key = output.get("ResultWriterDetails", {}).get("Key") if isinstance(output, dict) else None
    if not key:
        return 0
    manifest = json.loads((objects / "billing" / key).read_text())
    return sum(
        len(json.loads((objects / "billing" / entry["Key"]).read_text()))
        for entry in manifest.get("ResultFiles", {}).get("SUCCEEDED", [])
    )


async def _one(
    config: Config, params: Mapping[str, float], conn: Any, postmaster: int, objects: Path
) -> dict[str, JSON]:
    """Member 0 runs the Map; every member's share and the server's counters."""
    before = await server_counters(conn)
    server_cpu = server_cpu_seconds(postmaster)
    busy, total = machine_busy_seconds()
    leader = config.procs[0]
    leader.send({
        "op": "map", "max_concurrency": int(params["max_concurrency"]),
        "timeout": params["timeout"],
    })  # fmt: skip
    answer = await leader.answer(timeout=params["timeout"] + 60)
    members = []
    for proc in config.procs:
        proc.send({"op": "calls"})
        members.append(await proc.answer(timeout=60))
    busy_after, total_after = machine_busy_seconds()
    await asyncio.sleep(1.1)  # the backends publish their statistics once idle
    after = await server_counters(conn)
    seconds = answer["ended"] - answer["began"]
    items = int(params["items"])
    return {
        "seconds": seconds,
        "items_per_s": items / seconds,
        "status": answer["status"],
        "error": answer["error"],
        "cause": answer["cause"],
        "output_right": rows_written(answer["output"], objects) == items,
        "invoice_calls": [m["invoice_calls"] for m in members],
        "calls_made_again": sum(m["invoice_calls"] for m in members) - items,
        "members_max_rss_mib": [round(m["max_rss_mib"], 1) for m in members],
        "members_store_calls": [m["store_calls"] for m in members],
        "leader_cpu_seconds": answer["cpu_seconds"],
        "server_cpu_seconds": server_cpu_seconds(postmaster) - server_cpu,
        "machine_busy_cpu_seconds": busy_after - busy,
        "machine_cpu_seconds": total_after - total,
        "server_commits": after["xact_commit"] - before["xact_commit"],
        "server_wal_mib": (after["wal_bytes"] - before["wal_bytes"]) / 2**20,
        "load_average_1m": os.getloadavg()[0],
    }


async def measure(
    params: Mapping[str, float], *, runs: int, members: Sequence[int], say: Any = print
) -> dict[str, JSON]:
    """Run the Map ``runs`` times for each member count; the JSON document's measurements."""
    rounds: dict[str, list[dict[str, JSON]]] = {}
    logs: dict[str, JSON] = {}
    with scratch_folder("statemill-bench-cmap-") as work:
        (work / "logs").mkdir()
        objects = work / "objects"
        write_customers(objects, int(params["items"]))
        async with durable_server() as (dsn, postmaster, conn):
            version = await conn.fetchval("SHOW server_version")
            for run in range(runs):
                for count in members:
                    config = Config(
                        "postgres", count, dsn, f"map_r{run}m{count}", work / "logs",
                        ["--objects", str(objects)],
                    )  # fmt: skip
                    say(f"run {run + 1}/{runs}: {count} member(s) starting")
                    await config.start(MEMBER_PARAMS, conn)
                    try:
                        result = await _one(config, params, conn, postmaster, objects)
                    finally:
                        logs[f"run{run + 1}-{config.label}"] = config.stop()
                    rounds.setdefault(config.label, []).append(result)
                    say(f"  {config.label}: {result['items_per_s']:,.0f} items/s "
                        f"({result['seconds']:.1f} s, {result['status']}, calls "
                        f"{result['invoice_calls']})")  # fmt: skip
    return {"rounds": rounds, "member_warnings": logs, "postgres_version": version}


def render(document: Mapping[str, JSON]) -> str:
    """The table: per configuration, the medians over its runs."""
    lines = [
        f"== cluster_map ({int(document['params']['items']):,} items, MaxConcurrency "
        f"{int(document['params']['max_concurrency']):,}; {document['runs_requested']} run(s))",
        f"{'configuration':<14}{'seconds':>10}{'items/s':>10}  {'calls per member':<24}"
        f"{'peak RSS MiB':<18}{'server CPU s':>13}{'commits':>10}{'WAL MiB':>9}  right",
    ]
    for label, results in document["rounds"].items():
        lines.append(
            f"{label:<14}{median([r['seconds'] for r in results]):>10.1f}"
            f"{median([r['items_per_s'] for r in results]):>10,.0f}  "
            f"{results[-1]['invoice_calls']!s:<24}{results[-1]['members_max_rss_mib']!s:<18}"
            f"{median([r['server_cpu_seconds'] for r in results]):>13.1f}"
            f"{median([r['server_commits'] for r in results]):>10,.0f}"
            f"{median([r['server_wal_mib'] for r in results]):>9,.0f}  "
            f"{all(r['output_right'] for r in results)}"
        )
    for name, ok in document["checks"].items():
        lines.append(f"check: {name:<44} {'ok' if ok else 'FAILED'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 items")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--members", default="2", help="process counts (default: 2)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--out", type=Path, default=None, help=f"JSON file (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args(argv)
    params = parse_params(parser, QUICK if args.quick else FULL, args.param)
    members = [int(n) for n in args.members.split(",")]
    facts = machine_facts("uvloop")
    began = time.monotonic()
    measured = asyncio.run(
        measure(params, runs=args.runs, members=members,
                say=lambda text: print(text, file=sys.stderr, flush=True))
    )  # fmt: skip
    every = [r for results in measured["rounds"].values() for r in results]
    checks = {
        "every Map SUCCEEDED": all(r["status"] == "SUCCEEDED" for r in every),
        "every row written by the ResultWriter": all(r["output_right"] for r in every),
        # At least once: a member that lost a partition's lease (late renewals on a starved
        # CPU) hands the calls its executions owe to the new owner, which makes them again.
        "every item's call ran": all(
            sum(r["invoice_calls"]) >= int(params["items"]) for r in every
        ),
        "with 2+ members, each ran children": all(
            min(r["invoice_calls"]) > 0 for r in every if len(r["invoice_calls"]) > 1
        ),
    }
    document: dict[str, JSON] = {
        "scenario": "cluster_map",
        "description": __doc__.split("\n\n")[0],
        "date": facts["date"],
        "params": params,
        "runs_requested": args.runs,
        "members": members,
        "wall_seconds": round(time.monotonic() - began, 1),
        "checks": checks,
        **measured,
        "machine": facts,
    }
    out = args.out if args.out is not None else DEFAULT_OUT
    print(render(document), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"results: {out}")
    return 0 if all(checks.values()) else 1


__all__ = ["main", "measure", "render"]

if __name__ == "__main__":
    raise SystemExit(main())
