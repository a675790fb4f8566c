"""Run the two example processes end to end on a SQLite file or PostgreSQL; print what happened.

- online order (``order.asl.json``, handlers in :mod:`handlers.orders`): once with every item in
  stock, once with an item out of stock; for each, the status, the state path read back from the
  history (with the failures that were retried or caught) and the output;
- monthly billing (``billing.asl.json``, handlers in :mod:`handlers.billing`, driven by
  :mod:`examples.billing_year`): a schedule starts it at 00:00 on the 1st of every month
  (Europe/Berlin); a year of it runs on virtual time: twelve executions, each a distributed Map
  over the month's customer CSV (ItemReader, ``MaxConcurrency`` 50) whose children generate
  their invoices in nested ``monthly-invoice`` executions, the results written by ResultWriter.
  A short summary per month: customers billed, failures tolerated, where the results are.

Usage::

    python examples/run_examples.py [--db statemill-examples.db] [--objects DIR] [--virtual-time]
    python examples/run_examples.py --db postgresql://USER:PASSWORD@HOST/DATABASE[?schema=NAME]
    python -m examples.run_examples

``--db`` takes what ``statemill worker --store`` takes; ``--objects`` is the object store folder
the billing reads its customer files from and writes its results to
(``statemill-examples-objects``). The executions stay in the store; running again adds new ones
beside them (the billing under a new schedule, ``monthly-billing-2``, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent
ROOT = EXAMPLES.parent
if str(ROOT) not in sys.path:  # `python examples/run_examples.py` from a checkout not installed
    sys.path.insert(0, str(ROOT))

from examples.billing_year import MonthRun, bill_year, report_year  # noqa: E402
from handlers import billing, orders  # noqa: E402
from runtime import HandlerRegistry, Runtime  # noqa: E402
from runtime.tools.stores import StoreUnavailable, redact, runtime_store  # noqa: E402

JSON = Any

DEFAULT_DB = "statemill-examples.db"
DEFAULT_OBJECTS = "statemill-examples-objects"

ORDER_IN_STOCK: JSON = {
    "orderId": "1001",
    "customer": {"id": "C-17", "email": "ada@example.com", "card": "4111111111111111"},
    "items": [{"sku": "BOOK-42", "quantity": 2}, {"sku": "MUG-7", "quantity": 1}],
}
ORDER_OUT_OF_STOCK: JSON = {
    "orderId": "1002",
    "customer": {"id": "C-23", "email": "grace@example.com", "card": "5500000000000004"},
    "items": [{"sku": "MUG-7", "quantity": 5}, {"sku": "POSTER-1", "quantity": 1}],
}

#: History event types that report a failed Task attempt (Lambda ARNs log the Lambda* ones).
FAILED_TYPES = frozenset({"TaskFailed", "LambdaFunctionFailed", "TaskTimedOut"})
SCHEDULED_TYPES = frozenset({"TaskScheduled", "LambdaFunctionScheduled"})


@dataclass(frozen=True)
class Outcome:
    """One finished execution: what to print about it."""

    title: str
    execution_arn: str
    status: str
    output: JSON
    error: str | None
    cause: str | None
    paths: dict[str, list[str]]
    """Frame (``""`` = top level, else a Map iteration or Parallel branch) -> steps."""
    children: dict[str, int]
    """Status -> how many nested executions this execution started."""


def registry() -> HandlerRegistry:
    """The handlers of both examples (their names do not overlap)."""
    both = HandlerRegistry()
    both.update(orders.registry)
    both.update(billing.registry)
    return both


def state_paths(events: Sequence[Any]) -> dict[str, list[str]]:
    """The states each frame went through, in order, from an execution's history.

    A Task attempt that failed is noted on its state: ``SendInvoice [Billing.EmailBounced,
    retried]`` when another attempt followed, ``SendInvoice [NoEmailAddress]`` when the failure
    left the state (caught, or the end of the execution).
    """
    paths: dict[str, list[str]] = {}
    pending: dict[str, str] = {}  # frame -> error of the last failed attempt not yet resolved
    for event in events:
        steps = paths.setdefault(event.frame, [])
        if event.type.endswith("StateEntered"):
            steps.append(event.details["name"])
            pending.pop(event.frame, None)
        elif event.type in FAILED_TYPES and steps:
            pending[event.frame] = event.details.get("error", event.type)
            steps[-1] += f" [{pending[event.frame]}]"
        elif event.type in SCHEDULED_TYPES and event.frame in pending and steps:
            del pending[event.frame]
            steps[-1] = steps[-1][:-1] + ", retried]"
    return {frame: steps for frame, steps in paths.items() if steps}


async def run_all(
    db: str, objects: Path | None = None, *, virtual_time: bool = False
) -> tuple[list[Outcome], list[MonthRun]]:
    """Run the order executions and a year of billing on the store ``db``; read them back."""
    # As the command line opens --store: a PostgreSQL URL's ?schema= is understood there.
    async with runtime_store(db, memory=True) as store:
        outcomes = await run_orders(store, virtual_time=virtual_time)
        # The billing year runs on a runtime of its own: its clock is virtual, from January 2025.
        year = await bill_year(store, Path(DEFAULT_OBJECTS) if objects is None else objects)
    return outcomes, year


async def run_orders(store: Any, *, virtual_time: bool = False) -> list[Outcome]:
    """Run the two order executions on ``store`` and read back their results."""
    async with Runtime(store=store, handlers=registry(), virtual_time=virtual_time) as runtime:
        order = await runtime.create_state_machine(
            "online-order", (EXAMPLES / "order.asl.json").read_text(encoding="utf-8")
        )
        plan = [
            ("Online order, every item in stock", order.arn, ORDER_IN_STOCK),
            ("Online order, an item out of stock", order.arn, ORDER_OUT_OF_STOCK),
        ]
        # Start both first: they run concurrently, then we wait for each.
        started = [
            (title, await runtime.start_execution(arn, execution_input))
            for title, arn, execution_input in plan
        ]
        outcomes = []
        for title, execution in started:
            description = await runtime.wait_for_execution(execution.execution_arn)
            events = await runtime.get_execution_history(execution.execution_arn)
            children: dict[str, int] = {}
            for record in await runtime.store.list_executions(limit=100_000):
                if record.parent_execution_arn == execution.execution_arn:
                    children[record.status] = children.get(record.status, 0) + 1
            outcomes.append(
                Outcome(
                    title=title,
                    execution_arn=execution.execution_arn,
                    status=description.status,
                    output=description.output_value,
                    error=description.error,
                    cause=description.cause,
                    paths=state_paths(events),
                    children=children,
                )
            )
        return outcomes


def report(outcome: Outcome) -> str:
    """A few lines telling what an execution did."""
    lines = [
        f"== {outcome.title}",
        f"   execution  {outcome.execution_arn}",
        f"   status     {outcome.status}",
        f"   path       {' -> '.join(outcome.paths.get('', []))}",
    ]
    for frame, steps in outcome.paths.items():
        if frame:
            lines.append(f"   {_frame_label(frame):<10} {' -> '.join(steps)}")
    if outcome.children:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.children.items()))
        lines.append(f"   nested     {sum(outcome.children.values())} executions ({counts})")
    if outcome.error is not None:
        lines.append(f"   error      {outcome.error}: {outcome.cause}")
    if outcome.output is not None:
        lines.append("   output     " + _layout(outcome.output).replace("\n", "\n              "))
    return "\n".join(lines)


def _layout(value: JSON, level: int = 0) -> str:
    """JSON with the top object and lists one level down spread over lines, the rest compact."""
    pad = "  " * (level + 1)
    if isinstance(value, dict) and value and level == 0:
        items = [f"{pad}{json.dumps(k)}: {_layout(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    if isinstance(value, list) and value and level <= 1:
        items = [f"{pad}{_layout(v, level + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * level + "]"
    return json.dumps(value, ensure_ascii=False)


def _frame_label(frame: str) -> str:
    """``"4:2"`` (iteration 2 of the Map entered at event 4) -> ``"item 2"``."""
    _, _, index = frame.rpartition("/")[2].partition(":")
    return f"item {index}" if index else frame


def main(argv: Sequence[str] | None = None) -> int:
    """Run the examples and print a report for each; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        help=f"SQLite file or postgresql:// URL to keep the executions in ({DEFAULT_DB})",
    )
    parser.add_argument(
        "--objects",
        type=Path,
        default=Path(DEFAULT_OBJECTS),
        help=f"object store folder of the billing's customer and result files ({DEFAULT_OBJECTS})",
    )
    parser.add_argument(
        "--virtual-time",
        action="store_true",
        help="virtual clock for the orders too: retry delays take no real time (the billing "
        "year always runs on virtual time)",
    )
    args = parser.parse_args(argv)
    try:
        outcomes, year = asyncio.run(run_all(args.db, args.objects, virtual_time=args.virtual_time))
    except StoreUnavailable as exc:  # one line, as the command line says it
        print(f"run_examples: {exc}", file=sys.stderr)
        return 3
    for outcome in outcomes:
        print(report(outcome), end="\n\n")
    print(report_year(year), end="\n\n")
    children = sum(run.children_listed for run in year)
    invoices = sum(run.invoices for run in year)
    print(
        f"{len(outcomes)} order executions and {len(year)} monthly billing runs ran (the runs "
        f"started {children} child executions of their Map Runs, which started {invoices} "
        f"invoice executions); their histories are in {redact(args.db)}, the billing files in "
        f"{args.objects}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
