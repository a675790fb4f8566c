"""The shipped examples (examples/*.asl.json with handlers/) run and give the documented results.

Runs through the public API: memory store and a virtual clock for the behaviour (the billing's
customer files and results in a ``LocalObjectStore`` folder), the SQLite store for a year of
scheduled billing (``examples/billing_year.py``), for the end-to-end script
(``examples/run_examples.py``) and for reading executions back after the runtime that ran them
has closed.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import subprocess
import sys
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from examples import billing_year
from handlers import billing, orders
from runtime import HandlerRegistry, Runtime, TaskContext
from runtime.items import LocalObjectStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ORDER = (EXAMPLES / "order.asl.json").read_text(encoding="utf-8")
BILLING = (EXAMPLES / "billing.asl.json").read_text(encoding="utf-8")
INVOICE = (EXAMPLES / "invoice.asl.json").read_text(encoding="utf-8")

T = TypeVar("T")

CUSTOMER = {"id": "C-17", "email": "ada@example.com", "card": "4111111111111111"}


def run(coro: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await coro

    return asyncio.run(wrapper())


async def execute(
    definition: str, execution_input: Any, handlers: HandlerRegistry
) -> tuple[Any, list[Any]]:
    """Run one execution on a memory store with a virtual clock: (description, history)."""
    async with Runtime(store="memory", handlers=handlers, virtual_time=True) as runtime:
        # The billing run generates each invoice in a nested execution of monthly-invoice.
        await runtime.create_state_machine("monthly-invoice", INVOICE)
        description = await runtime.run(definition, execution_input)
        history = await runtime.get_execution_history(description.execution_arn)
        return description, history


def output_of(description: Any) -> Any:
    assert description.output is not None, (description.error, description.cause)
    return json.loads(description.output)


def entered(history: list[Any], frame: str = "") -> list[str]:
    return [
        e.details["name"] for e in history if e.type.endswith("StateEntered") and e.frame == frame
    ]


# -- online order ---------------------------------------------------------------------------------


def test_order_in_stock_is_confirmed() -> None:
    order = {
        "orderId": "1001",
        "customer": CUSTOMER,
        "items": [{"sku": "BOOK-42", "quantity": 2}, {"sku": "MUG-7", "quantity": 1}],
    }
    description, history = run(execute(ORDER, order, orders.registry))

    assert str(description.status) == "SUCCEEDED"
    out = output_of(description)
    total = 2 * 1999 + 1250
    assert out["status"] == "CONFIRMED"
    assert out["invoice"] == {
        "invoiceId": "INV-1001",
        "orderId": "1001",
        "customerId": "C-17",
        "amountCents": total,
    }
    assert out["payment"]["status"] == "CAPTURED"
    assert out["payment"]["amountCents"] == total
    assert out["confirmation"]["sent"] is True
    assert out["confirmation"]["to"] == "ada@example.com"
    assert out["confirmation"]["subject"] == "Order 1001 confirmed"
    assert entered(history) == [
        "CheckStock",
        "IsInStock",
        "CreateOrder",
        "GenerateInvoice",
        "CollectPayment",
        "SendConfirmation",
        "OrderConfirmed",
    ]
    assert history[0].type == "ExecutionStarted"
    assert history[-1].type == "ExecutionSucceeded"


def test_order_out_of_stock_informs_the_customer() -> None:
    order = {
        "orderId": "1002",
        "customer": CUSTOMER,
        "items": [{"sku": "MUG-7", "quantity": 5}, {"sku": "BOOK-42", "quantity": 1}],
    }
    description, history = run(execute(ORDER, order, orders.registry))

    assert str(description.status) == "SUCCEEDED"
    out = output_of(description)
    assert out["status"] == "OUT_OF_STOCK"
    assert out["missing"] == [{"sku": "MUG-7", "requested": 5, "inStock": 3}]
    assert out["notification"]["sent"] is True
    assert out["notification"]["to"] == "ada@example.com"
    assert "MUG-7" in out["notification"]["body"]
    assert entered(history) == ["CheckStock", "IsInStock", "InformCustomer", "OutOfStock"]


def test_order_stock_comes_from_the_input_inventory() -> None:
    order = {
        "orderId": "1003",
        "customer": CUSTOMER,
        "items": [{"sku": "POSTER-1", "quantity": 1}],
        "inventory": {"POSTER-1": 4},
    }
    description, _ = run(execute(ORDER, order, orders.registry))

    assert output_of(description)["status"] == "CONFIRMED"


def test_order_declined_card_is_caught_and_fails_the_order() -> None:
    order = {
        "orderId": "1004",
        "customer": {**CUSTOMER, "card": "4000000000000000"},
        "items": [{"sku": "BOOK-42", "quantity": 1}],
    }
    description, history = run(execute(ORDER, order, orders.registry))

    assert str(description.status) == "FAILED"
    assert description.error == "Order.PaymentDeclined"
    assert entered(history)[-2:] == ["CollectPayment", "PaymentDeclined"]


# -- monthly billing run -----------------------------------------------------------------------


def write_csv(objects: Path, month: str, customers: list[dict[str, Any]]) -> None:
    """``customers/<month>.csv`` in the billing bucket, as the CRM export would be."""
    folder = objects / "billing" / "customers"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{month}.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=billing.CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for customer in customers:
            writer.writerow({k: "" if v is None else v for k, v in customer.items()})


def named_customers() -> list[dict[str, Any]]:
    """The eight named customers, as the CSV file has them (the first rows of every month)."""
    return list(billing.customers_of_month(0))[: len(billing.CUSTOMERS)]


async def bill_month(
    objects: Path, run_input: Any, handlers: HandlerRegistry = billing.registry
) -> dict[str, Any]:
    """One billing run started by hand, on a memory store with a virtual clock."""
    async with Runtime(
        store="memory",
        handlers=handlers,
        virtual_time=True,
        object_store=LocalObjectStore(objects),
    ) as rt:
        invoice = await rt.create_state_machine("monthly-invoice", INVOICE)
        machine = await rt.create_state_machine("monthly-billing", BILLING)
        started = await rt.start_execution(machine.arn, run_input)
        done = await rt.wait_for_execution(started.execution_arn, timeout=60)
        (map_run,) = await rt.list_map_runs(started.execution_arn)
        return {
            "done": done,
            "map_run": await rt.describe_map_run(map_run.map_run_arn),
            "children": await rt.list_executions(map_run_arn=map_run.map_run_arn),
            "invoices": await rt.store.list_executions(invoice.arn),
            "history": await rt.get_execution_history(started.execution_arn),
        }


def results(objects: Path, output: Any, category: str) -> list[Any]:
    """The records of ResultWriter's files of one category, via its manifest."""
    details = output["results"]
    manifest = json.loads((objects / details["Bucket"] / details["Key"]).read_text())
    records: list[Any] = []
    for entry in manifest["ResultFiles"][category]:
        records += json.loads((objects / manifest["DestinationBucket"] / entry["Key"]).read_text())
    return records


def test_billing_run_bills_every_customer_of_the_month_file(tmp_path: Path) -> None:
    write_csv(tmp_path, "2024-06", named_customers())
    got = run(bill_month(tmp_path, {"billingMonth": "2024-06"}))
    done, map_run, children = got["done"], got["map_run"], got["children"]

    assert str(done.status) == "SUCCEEDED", (done.error, done.cause)
    out = output_of(done)
    assert out["billingMonth"] == "2024-06"
    assert out["customers"] == {"Bucket": "billing", "Key": "customers/2024-06.csv"}
    assert out["mapRunArn"] == map_run.map_run_arn
    assert out["results"]["Key"].startswith("invoices/2024-06/")
    assert entered(got["history"]) == ["OpenBillingRun", "BillCustomers", "Billed"]
    # One child execution of the Map Run per CSV row, at most 50 at a time.
    assert map_run.max_concurrency == 50
    assert map_run.tolerated_failure_percentage == 5
    assert map_run.execution_counts.succeeded == map_run.execution_counts.total == 8
    assert len(children) == 8

    invoices = {
        json.loads(r["Output"])["customerId"]: json.loads(r["Output"])
        for r in results(tmp_path, out, "SUCCEEDED")
    }
    assert sorted(invoices) == [c["id"] for c in billing.CUSTOMERS]
    assert results(tmp_path, out, "FAILED") == []
    # Prices: base fee + each started 1,000 units over the plan (usage read as CSV text).
    assert invoices["C-001"]["amountCents"] == 4_900 + 3 * 100  # pro, 2,500 over
    assert invoices["C-002"]["amountCents"] == 900  # starter, within the plan
    assert invoices["C-004"]["amountCents"] == 49_000 + 150 * 50  # enterprise, 150,000 over
    assert all(i["invoiceId"] == f"INV-2024-06-{c}" for c, i in invoices.items())
    # The greylisted mailboxes ("true" in the CSV) bounced once and the retry delivered.
    for customer in ("C-003", "C-006"):
        assert invoices[customer]["delivery"]["channel"] == "email"
        assert invoices[customer]["delivery"]["attempt"] == billing.FIRST_ATTEMPT + 1
    assert invoices["C-001"]["delivery"]["attempt"] == billing.FIRST_ATTEMPT
    # The customer without an e-mail address (an empty CSV field) was invoiced by post.
    assert invoices["C-005"]["delivery"] == {
        "channel": "post",
        "to": "1 Hooli Way, Palo Alto, CA",
        "invoiceId": "INV-2024-06-C-005",
        "reason": "NoEmailAddress",
    }
    # Each child generated its invoice in a nested monthly-invoice execution.
    nested = got["invoices"]
    assert len(nested) == 8
    assert {n.parent_execution_arn for n in nested} == {c.execution_arn for c in children}
    assert {n.status for n in nested} == {"SUCCEEDED"}


def test_billing_map_runs_at_most_fifty_customers_at_once(tmp_path: Path) -> None:
    in_flight = 0
    peak = 0

    async def slow_price(item: Any, context: TaskContext) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.02)  # real time: gives the other children room to start
            return await billing.compute_price(item, context)
        finally:
            in_flight -= 1

    handlers = HandlerRegistry()
    handlers.update(billing.registry)
    handlers.register("ComputePrice", slow_price)
    customers = [
        {"id": f"C-{n:03}", "plan": "starter", "usageUnits": n * 100, "email": f"c{n}@x.example"}
        for n in range(130)
    ]
    write_csv(tmp_path, "2024-07", customers)
    got = run(bill_month(tmp_path, {"billingMonth": "2024-07"}, handlers))

    assert str(got["done"].status) == "SUCCEEDED"
    assert got["map_run"].execution_counts.succeeded == 130
    assert 1 < peak <= 50


def test_billing_tolerates_five_percent_of_unreachable_customers(tmp_path: Path) -> None:
    unreachable = {"id": "C-404", "plan": "pro", "usageUnits": 1, "email": None}
    fine = [
        {"id": f"C-{n:03}", "plan": "pro", "usageUnits": n, "email": f"c{n}@x.example"}
        for n in range(39)
    ]
    write_csv(tmp_path, "2024-08", [*fine, unreachable])  # 1 of 40: 2.5 %
    write_csv(tmp_path, "2024-09", [*fine[:9], unreachable])  # 1 of 10: 10 %

    tolerated = run(bill_month(tmp_path, {"billingMonth": "2024-08"}))
    too_many = run(bill_month(tmp_path, {"billingMonth": "2024-09"}))

    assert str(tolerated["done"].status) == "SUCCEEDED"
    counts = tolerated["map_run"].execution_counts
    assert (counts.succeeded, counts.failed) == (39, 1)
    (failed,) = results(tmp_path, output_of(tolerated["done"]), "FAILED")
    assert failed["Error"] == "Billing.NoPostalAddress"
    assert str(too_many["done"].status) == "FAILED"
    assert too_many["done"].error == "States.ExceedToleratedFailureThreshold"


def test_billing_month_is_the_one_before_the_scheduled_time_in_its_zone() -> None:
    # 00:00 on 1 February in Berlin is 23:00Z on 31 January: it bills January.
    assert billing.billing_month("2025-01-31T23:00:00Z", "Europe/Berlin") == "2025-01"
    assert billing.billing_month("2025-01-31T23:00:00Z", "UTC") == "2024-12"
    assert billing.billing_month("2025-12-31T23:00:00Z", "Europe/Berlin") == "2025-12"


def test_the_inline_variant_still_bills_the_built_in_customers() -> None:
    inline = (EXAMPLES / "billing_inline.asl.json").read_text(encoding="utf-8")
    description, history = run(execute(inline, {"billingMonth": "2024-06"}, billing.registry))

    assert str(description.status) == "SUCCEEDED", (description.error, description.cause)
    out = output_of(description)
    assert out["invoiceCount"] == len(billing.CUSTOMERS) == 8
    assert out["byChannel"] == {"email": 7, "post": 1}
    assert sorted(failures(history)) == [
        "Billing.EmailBounced",
        "Billing.EmailBounced",
        "NoEmailAddress",
    ]


def failures(history: list[Any]) -> list[str]:
    return [
        e.details.get("error", "")
        for e in history
        if e.type in {"TaskFailed", "LambdaFunctionFailed"}
    ]


# -- a year of billing, started by the schedule --------------------------------------------


def expected_name(fire: datetime) -> str:
    """The schedule's execution naming rule written out: ``<name>-<hash>-<UTC time>``."""
    digest = hashlib.sha256(b"default/monthly-billing").hexdigest()[:8]
    return f"monthly-billing-{digest}-{fire.strftime('%Y%m%dT%H%M%SZ')}"


def test_a_year_of_billing_starts_twelve_runs_at_local_midnight(tmp_path: Path) -> None:
    runs = run(billing_year.bill_year(str(tmp_path / "year.db"), tmp_path / "objects"))

    berlin = ZoneInfo("Europe/Berlin")
    assert [r.billing_month for r in runs] == [f"2025-{m:02}" for m in range(1, 13)]
    for k, month_run in enumerate(runs):
        local = datetime.fromtimestamp(month_run.start_date, berlin)
        month = k + 2
        assert (local.year, local.month, local.day, local.hour) == (
            2025 + month // 13,
            (month - 1) % 12 + 1,
            1,
            0,
        )
        fire = datetime.fromtimestamp(month_run.start_date, UTC)
        assert month_run.execution_name == expected_name(fire)
        assert month_run.status == "SUCCEEDED"
        rows = len(billing.CUSTOMERS) + int(24 * 1.25**k)
        assert month_run.customers == rows  # every row of the month's CSV file
        assert month_run.children_listed == rows == month_run.billed + month_run.failed
        assert month_run.invoices == rows  # each child's nested monthly-invoice
        # Every 60th generated customer has neither an e-mail nor a postal address.
        assert month_run.failed == int(24 * 1.25**k) // 60 <= rows * 0.05
        assert month_run.manifest.is_file()
        assert month_run.manifest.parent.parent.name == month_run.billing_month
        assert {p.name for p in month_run.result_files} <= {"SUCCEEDED_0.json", "FAILED_0.json"}
        assert all(p.is_file() for p in month_run.result_files)
    # Summer time: 1 April to 1 October start at 22:00Z, the others at 23:00Z.
    assert [datetime.fromtimestamp(r.start_date, UTC).hour for r in runs] == (
        [23, 23] + [22] * 7 + [23] * 3
    )
    assert runs[-1].failed == 4


# -- end to end on SQLite ------------------------------------------------------------------------


def test_run_examples_script_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "examples.db"
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "run_examples.py"), "--db", str(db), "--virtual-time"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )

    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert out.count("status     SUCCEEDED") == 2
    assert "CheckStock -> IsInStock -> CreateOrder" in out
    assert "CheckStock -> IsInStock -> InformCustomer -> OutOfStock" in out
    assert "== Monthly billing, a year on virtual time: schedule cron(0 0 1 * ? *) in" in out
    assert out.count("  SUCCEEDED monthly-billing-") == 12
    assert "2025-01  SUCCEEDED monthly-billing-" in out
    assert "(started 2025-02-01 00:00 CET)" in out
    assert "(started 2025-07-01 00:00 CEST)" in out
    assert "287 customers: 283 billed, 4 failed (tolerated)" in out
    children = sum(8 + int(24 * 1.25**k) for k in range(12))
    assert (
        f"2 order executions and 12 monthly billing runs ran (the runs started {children} "
        f"child executions of their Map Runs, which started {children} invoice executions)"
    ) in out
    assert db.is_file()
    manifests = sorted(
        (tmp_path / "statemill-examples-objects").glob("billing/invoices/*/*/manifest.json")
    )
    assert len(manifests) == 12

    async def read_back() -> list[Any]:
        # A new runtime on the same file sees the executions the script ran.
        async with Runtime(store=str(db), handlers=HandlerRegistry()) as runtime:
            return await runtime.list_executions(max_results=100_000)

    described = run(read_back())
    arns = [d.execution_arn for d in described]
    assert sum(":online-order:" in arn for arn in arns) == 2
    assert sum(":monthly-billing:" in arn for arn in arns) == 12
    assert sum(":monthly-invoice:" in arn for arn in arns) == children
    assert len(described) == 2 + 12 + 2 * children  # the Map Runs' children too
