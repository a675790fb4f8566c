"""A year of the monthly billing run (``billing.asl.json``), started by a schedule, on virtual time.

The seed's process: "the state machine is started automatically at the beginning of the
month". A schedule (``cron(0 0 1 * ? *)`` in ``Europe/Berlin``: 00:00 on the 1st, local time)
targets ``monthly-billing`` with an input whose ``scheduledTime`` is Scheduler's context
attribute ``<aws.scheduler.scheduled-time>``, so each run knows the month it bills (the one just
ended). Each run reads that month's customer file (``customers/<YYYY-MM>.csv`` in the
``billing`` bucket of a local object store folder: the customer base grows by a quarter every
month) with the distributed Map's ItemReader, bills every customer in a child execution of the
Map Run (``MaxConcurrency`` 50; each child generates its invoice in a nested ``monthly-invoice``
execution), tolerates up to 5 % of failed customers, and has ResultWriter write the results
(``invoices/<YYYY-MM>/<map run id>/``: SUCCEEDED/FAILED files and ``manifest.json``).

:func:`bill_year` runs the twelve months on a ``ManualClock``: the runtime jumps from one fire
to the next (and over the e-mail retries' backoff) whenever nothing is left to do, so a year
takes seconds. It returns one :class:`MonthRun` per month, read back from the store and the
object store. A store used before keeps its schedules and executions: each call creates a
schedule of a name not used yet (``monthly-billing``, ``monthly-billing-2``, ...), whose
execution names (derived from the schedule and the fire) are therefore new.

Imports the public ``runtime`` API, ``runtime.schedules`` (the execution naming rule) and
``runtime.items`` (the local object store); the handlers are :mod:`handlers.billing`'s.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from handlers import billing
from runtime import ManualClock, Runtime
from runtime.items import LocalObjectStore
from runtime.schedules import execution_name
from runtime.store.base import EventStore

__all__ = [
    "BUCKET",
    "CRON",
    "MONTHS",
    "SCHEDULE_NAME",
    "ZONE",
    "MonthRun",
    "bill_year",
    "fire_times",
    "write_customer_files",
]

JSON = Any

EXAMPLES: Final = Path(__file__).resolve().parent
SCHEDULE_NAME: Final = "monthly-billing"
CRON: Final = "cron(0 0 1 * ? *)"
ZONE: Final = "Europe/Berlin"
BUCKET: Final = billing.DEFAULT_BUCKET
#: The months billed: January to December 2025 (fires from 1 February 2025 to 1 January 2026).
MONTHS: Final = tuple(f"2025-{month:02}" for month in range(1, 13))
#: The schedule's Target.Input: Scheduler replaces the keywords when it fires.
TARGET_INPUT: Final = {
    "scheduledTime": "<aws.scheduler.scheduled-time>",
    "schedule": "<aws.scheduler.schedule-arn>",
    "timeZone": ZONE,
    "bucket": BUCKET,
}
#: A fire that cannot start at once is tried again for up to an hour.
RETRY_POLICY: Final = {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10}


@dataclass(frozen=True)
class MonthRun:
    """One month's billing run, as read back after the year."""

    billing_month: str
    execution_name: str
    execution_arn: str
    status: str
    start_date: float
    map_run_arn: str
    customers: int
    """Items the Map Run read (rows of the month's CSV file)."""
    billed: int
    """Child executions that succeeded."""
    failed: int
    """Child executions that failed (tolerated: the run still succeeded)."""
    children_listed: int
    """Child executions ``list_executions(map_run_arn=...)`` lists."""
    invoices: int
    """Nested ``monthly-invoice`` executions the children started."""
    amount_cents: int
    """The total of the invoices sent (read from ResultWriter's SUCCEEDED files)."""
    manifest: Path
    """ResultWriter's ``manifest.json``."""
    result_files: tuple[Path, ...]
    """ResultWriter's result files (SUCCEEDED, FAILED), as the manifest lists them."""


def fire_times(months: Sequence[str] = MONTHS) -> list[datetime]:
    """The fires that bill ``months``: 00:00 local time on the 1st of the month after each."""
    zone = ZoneInfo(ZONE)
    fires = []
    for month in months:
        year, number = (int(part) for part in month.split("-"))
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)
        fires.append(datetime(year, number, 1, tzinfo=zone).astimezone(UTC))
    return fires


def write_customer_files(objects: Path, months: Sequence[str] = MONTHS) -> list[Path]:
    """Write each month's customer file (:func:`handlers.billing.customers_of_month`) into the
    object store folder: ``<objects>/billing/customers/<YYYY-MM>.csv``."""
    folder = objects / BUCKET / "customers"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, month in enumerate(months):
        path = folder / f"{month}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=billing.CSV_FIELDS)
            writer.writeheader()
            writer.writerows(billing.customers_of_month(index))
        written.append(path)
    return written


async def _free_schedule_name(runtime: Runtime) -> str:
    """``monthly-billing``, or the first ``monthly-billing-<n>`` not used yet."""
    taken = {d.name for d in await runtime.list_schedules(name_prefix=SCHEDULE_NAME)}
    if SCHEDULE_NAME not in taken:
        return SCHEDULE_NAME
    n = 2
    while f"{SCHEDULE_NAME}-{n}" in taken:
        n += 1
    return f"{SCHEDULE_NAME}-{n}"


async def bill_year(store: EventStore | str, objects: Path) -> list[MonthRun]:
    """Schedule the billing, let virtual time run over the twelve fires, read the runs back.

    Raises:
        RuntimeError: a month's run did not start, or did not end.
    """
    write_customer_files(objects)
    fires = fire_times()
    clock = ManualClock(fires[0].timestamp() - 3600)
    async with Runtime(
        store=store,
        handlers=billing.registry,
        clock=clock,
        object_store=LocalObjectStore(objects),
    ) as runtime:
        invoice = await runtime.create_state_machine(
            "monthly-invoice", (EXAMPLES / "invoice.asl.json").read_text(encoding="utf-8")
        )
        machine = await runtime.create_state_machine(
            "monthly-billing", (EXAMPLES / "billing.asl.json").read_text(encoding="utf-8")
        )
        name = await _free_schedule_name(runtime)
        await runtime.create_schedule(
            name,
            CRON,
            {"Arn": machine.arn, "Input": TARGET_INPUT, "RetryPolicy": RETRY_POLICY},
            schedule_expression_timezone=ZONE,
            start_date=fires[0],
            end_date=fires[-1] + timedelta(days=1),
            description="Bill the month just ended, at 00:00 on the 1st (Berlin time).",
        )
        schedule = (await runtime.get_schedule(name)).schedule
        # Virtual time: the runtime jumps to the next deadline (a fire, a retry's backoff)
        # whenever nothing else can run, so the year passes as fast as the work allows.
        await clock.sleep_until((fires[-1] + timedelta(days=1)).timestamp())
        runs = []
        invoices: Counter[str | None] = Counter()
        prefix = machine.arn.replace(":stateMachine:", ":execution:")
        for month, fire in zip(MONTHS, fires, strict=True):
            arn = f"{prefix}:{execution_name(schedule, fire)}"
            await runtime.wait_for_execution(arn, timeout=60)
            if not invoices:  # every run has ended: count the nested invoices once
                for record in await runtime.store.list_executions(invoice.arn, limit=10**7):
                    invoices[record.parent_execution_arn] += 1
            runs.append(await _read_month(runtime, objects, month, arn, invoices))
        return runs


async def _read_month(
    runtime: Runtime,
    objects: Path,
    month: str,
    arn: str,
    invoices_by_parent: Mapping[str | None, int],
) -> MonthRun:
    """One month's run, its Map Run and its result files, read back."""
    description = await runtime.wait_for_execution(arn, timeout=60)
    output = description.output_value
    if description.status != "SUCCEEDED" or not isinstance(output, dict):
        raise RuntimeError(f"{month}: {arn} {description.status}: {description.cause}")
    map_run_arn = output["mapRunArn"]
    counts = (await runtime.describe_map_run(map_run_arn)).execution_counts
    children = await runtime.list_executions(map_run_arn=map_run_arn, max_results=100_000)
    invoices = sum(invoices_by_parent.get(child.execution_arn, 0) for child in children)
    details = output["results"]
    manifest = objects / details["Bucket"] / details["Key"]
    files = json.loads(manifest.read_text(encoding="utf-8"))["ResultFiles"]
    result_files = []
    amount = 0
    for category in ("SUCCEEDED", "FAILED"):
        for entry in files[category]:
            path = objects / details["Bucket"] / entry["Key"]
            result_files.append(path)
            if category == "SUCCEEDED":
                for result in json.loads(path.read_text(encoding="utf-8")):
                    amount += json.loads(result["Output"])["amountCents"]
    return MonthRun(
        billing_month=month,
        execution_name=description.name,
        execution_arn=arn,
        status=description.status,
        start_date=description.start_date,
        map_run_arn=map_run_arn,
        customers=counts.total,
        billed=counts.succeeded,
        failed=counts.failed,
        children_listed=len(children),
        invoices=invoices,
        amount_cents=amount,
        manifest=manifest,
        result_files=tuple(result_files),
    )


def report_year(runs: Sequence[MonthRun]) -> str:
    """A few lines per month: the run, its customers, what failed, where the results are."""
    zone = ZoneInfo(ZONE)
    lines = [f"== Monthly billing, a year on virtual time: schedule {CRON} in {ZONE}"]
    for run in runs:
        started = datetime.fromtimestamp(run.start_date, zone).strftime("%Y-%m-%d %H:%M %Z")
        lines.append(
            f"   {run.billing_month}  {run.status} {run.execution_name} (started {started})"
        )
        lines.append(
            f"            {run.customers} customers: {run.billed} billed, {run.failed} failed "
            f"(tolerated), {run.amount_cents / 100:,.2f} invoiced; results in {run.manifest.parent}"
        )
    return "\n".join(lines)
