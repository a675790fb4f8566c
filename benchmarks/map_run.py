"""``map_run``: the monthly billing's distributed Map at scale (issue 14's Done-when).

A CSV of ``rows`` customers is written to a local object store; a distributed Map reads it with
an ``ItemReader`` (CSV, header row), runs one child execution per row within
``max_concurrency``, and its ``ResultWriter`` writes the results in AWS's layout. Each child is
one Task whose handler sleeps ``work_ms`` and counts the calls in flight; the children held in
memory by the engine are sampled every second as well, so the concurrency reported is observed,
never assumed. Store: SQLite with ``synchronous=FULL`` (the default store), or ``sqlite=0`` for
memory.

Reported: time from start to the Map's end, children per second, peak RSS, the most children
in flight at once (must not exceed MaxConcurrency), and checks that every child is listed under
the Map Run, that the result files hold every row and that the manifest is AWS's.
"""

from __future__ import annotations

import asyncio
import csv
import json
import tempfile
from pathlib import Path
from typing import Any, Literal

from benchmarks.common import (
    UNBOUNDED,
    InFlight,
    Measured,
    Metric,
    Params,
    Progress,
    Scenario,
    as_int,
    now,
    open_store,
    peak_rss_bytes,
    sqlite_file,
)
from runtime import Runtime, TaskContext
from runtime.items import LocalObjectStore

JSON = Any


def definition(max_concurrency: int) -> dict[str, JSON]:
    """The billing Map: customers from a CSV, an invoice Task per child, results written."""
    return {
        "StartAt": "Invoices",
        "States": {
            "Invoices": {
                "Type": "Map",
                "Label": "Invoices",
                "MaxConcurrency": max_concurrency,
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
                    "Parameters": {"Bucket": "billing", "Key": "customers.csv"},
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Invoice",
                    "States": {"Invoice": {"Type": "Task", "Resource": "invoice", "End": True}},
                },
                "ResultWriter": {
                    "Resource": "arn:aws:states:::s3:putObject",
                    "Parameters": {"Bucket": "billing", "Prefix": "invoices"},
                },
                "End": True,
            }
        },
    }


def write_customers(root: Path, rows: int) -> int:
    """``root/billing/customers.csv`` with ``rows`` customers; its size in bytes."""
    folder = root / "billing"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "customers.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "plan", "usage"])
        for n in range(rows):
            writer.writerow([f"c{n:07d}", "pro" if n % 3 == 0 else "basic", n % 997])
    return path.stat().st_size


async def run(params: Params, progress: Progress) -> Measured:
    rows = as_int(params, "rows")
    limit = as_int(params, "max_concurrency")
    work = params["work_ms"] / 1000
    kind: Literal["memory", "sqlite"] = "sqlite" if params.get("sqlite", 1) else "memory"
    measured = Measured()
    in_flight = InFlight()

    async def invoice(payload: JSON, context: TaskContext) -> JSON:
        in_flight.enter()
        try:
            await asyncio.sleep(work)
        finally:
            in_flight.leave()
        usage = int(payload["usage"])
        return {
            "customer": payload["customer_id"],
            "due": usage * (3 if payload["plan"] == "pro" else 1),
        }

    with tempfile.TemporaryDirectory(prefix="statemill-maprun-") as folder:
        root = Path(folder)
        csv_bytes = write_customers(root, rows)
        async with sqlite_file("map_run") as path, open_store(kind, path) as store:
            rt = Runtime(
                store,
                handlers={"invoice": invoice},
                limits=UNBOUNDED,
                object_store=LocalObjectStore(root),
            )
            async with rt:
                machine = await rt.create_state_machine("Billing", definition(limit))
                progress.start("map_run", rows)
                began = now()
                started = await rt.start_execution(machine.arn, {})
                held_peak = 0
                while True:
                    done = await rt.describe_execution(started.execution_arn)
                    if done.status != "RUNNING":
                        break
                    held = sum(
                        1
                        for live in list(rt.engine.live.values())
                        if live.record.map_run_arn is not None and not live.state.is_terminal
                    )
                    held_peak = max(held_peak, held)
                    progress.update(in_flight.calls)
                    await asyncio.sleep(1.0)
                seconds = now() - began
                progress.finish()
                peak_rss = peak_rss_bytes()
                (run_,) = await rt.list_map_runs(started.execution_arn)
                summary = await rt.describe_map_run(run_.map_run_arn)
                listed = 0
                after: tuple[float, str] | None = None
                while True:
                    page = await rt.list_executions(
                        map_run_arn=run_.map_run_arn, after=after, max_results=10_000
                    )
                    listed += len(page)
                    if len(page) < 10_000:
                        break
                    after = (page[-1].start_date, page[-1].execution_arn)
        manifest_key = (done.output_value or {}).get("ResultWriterDetails", {}).get("Key", "")
        manifest_path = root / "billing" / manifest_key
        manifest = json.loads(manifest_path.read_text()) if manifest_key else {}
        written = 0
        for entry in manifest.get("ResultFiles", {}).get("SUCCEEDED", []):
            written += len(json.loads((root / "billing" / entry["Key"]).read_text()))

    measured.values["seconds"] = seconds
    measured.values["children_per_s"] = rows / seconds
    measured.values["peak_rss_mib"] = peak_rss / 2**20
    measured.values["handler_in_flight_peak"] = in_flight.peak
    measured.values["children_held_peak"] = held_peak
    measured.info.update(
        rows=rows, max_concurrency=limit, store=kind, csv_mib=round(csv_bytes / 2**20, 1)
    )
    measured.checks["succeeded"] = done.status == "SUCCEEDED"
    measured.checks["within_max_concurrency"] = in_flight.peak <= limit and held_peak <= limit
    measured.checks["every_child_listed"] = listed == rows
    measured.checks["counts_exact"] = (
        summary.execution_counts.succeeded == rows and summary.execution_counts.total == rows
    )
    measured.checks["every_result_written"] = written == rows
    measured.checks["manifest_layout"] = sorted(manifest) == [
        "DestinationBucket",
        "MapRunArn",
        "ResultFiles",
    ]
    return measured


SCENARIO = Scenario(
    name="map_run",
    description="a distributed Map over a CSV of customers (ItemReader), a child execution per "
    "row within MaxConcurrency, results written (ResultWriter), on SQLite",
    quick={"rows": 5_000, "max_concurrency": 500, "work_ms": 5, "sqlite": 1},
    full={"rows": 1_000_000, "max_concurrency": 10_000, "work_ms": 5, "sqlite": 1},
    metrics=(
        Metric(key="seconds", label="time to finish", unit="s"),
        Metric(key="children_per_s", label="children/s", unit="/s"),
        Metric(key="peak_rss_mib", label="peak RSS", unit=" MiB", target=2048, better="lower"),
        Metric(key="handler_in_flight_peak", label="most handler calls at once", unit=""),
        Metric(key="children_held_peak", label="most children running at once", unit=""),
    ),
    run=run,
)
