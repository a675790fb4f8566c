"""The shipped examples (examples/*.asl.json with handlers/) run and give the documented results.

Runs through the public API: memory store and a virtual clock for the behaviour, the SQLite store
for the end-to-end script (``examples/run_examples.py``) and for reading executions back after the
runtime that ran them has closed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from handlers import billing, orders
from runtime import HandlerRegistry, Runtime, TaskContext

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


def failures(history: list[Any]) -> list[str]:
    return [
        e.details.get("error", "")
        for e in history
        if e.type in {"TaskFailed", "LambdaFunctionFailed"}
    ]


def test_billing_run_sends_every_invoice() -> None:
    description, history = run(execute(BILLING, {"billingMonth": "2024-06"}, billing.registry))

    assert str(description.status) == "SUCCEEDED", (description.error, description.cause)
    out = output_of(description)
    invoices = {invoice["customerId"]: invoice for invoice in out["invoices"]}
    assert list(invoices) == [c["id"] for c in billing.CUSTOMERS]  # Map keeps the item order
    assert out["invoiceCount"] == len(billing.CUSTOMERS) == 8
    assert out["byChannel"] == {"email": 7, "post": 1}
    assert out["totalCents"] == sum(i["amountCents"] for i in invoices.values())

    # Prices: base fee + each started 1,000 units over the plan.
    assert invoices["C-001"]["amountCents"] == 4_900 + 3 * 100  # pro, 2,500 over
    assert invoices["C-002"]["amountCents"] == 900  # starter, within the plan
    assert invoices["C-004"]["amountCents"] == 49_000 + 150 * 50  # enterprise, 150,000 over
    assert all(i["invoiceId"] == f"INV-2024-06-{c}" for c, i in invoices.items())

    # The greylisted mailboxes bounced once and the retry delivered the invoice.
    for customer in ("C-003", "C-006"):
        assert invoices[customer]["delivery"]["channel"] == "email"
        assert invoices[customer]["delivery"]["attempt"] == billing.FIRST_ATTEMPT + 1
    assert invoices["C-001"]["delivery"]["attempt"] == billing.FIRST_ATTEMPT
    # The customer without an e-mail address was caught and invoiced by post.
    assert invoices["C-005"]["delivery"] == {
        "channel": "post",
        "to": "1 Hooli Way, Palo Alto, CA",
        "invoiceId": "INV-2024-06-C-005",
        "reason": "NoEmailAddress",
    }

    # The history records both: two bounces (retried) and one permanent failure (caught).
    assert sorted(failures(history)) == [
        "Billing.EmailBounced",
        "Billing.EmailBounced",
        "NoEmailAddress",
    ]
    assert entered(history) == ["LoadCustomers", "BillCustomers", "Summarize"]
    iteration_paths = {
        tuple(entered(history, frame)) for frame in {e.frame for e in history} if frame
    }
    assert iteration_paths == {
        ("ComputePrice", "GenerateInvoice", "SendInvoice", "Invoiced"),
        ("ComputePrice", "GenerateInvoice", "SendInvoice", "SendByPost", "Invoiced"),
    }
    types = [e.type for e in history]
    assert types.count("MapIterationStarted") == types.count("MapIterationSucceeded") == 8


def test_billing_generates_each_invoice_in_a_nested_execution() -> None:
    async def go() -> tuple[Any, list[Any], list[Any]]:
        async with Runtime(store="memory", handlers=billing.registry, virtual_time=True) as rt:
            invoice = await rt.create_state_machine("monthly-invoice", INVOICE)
            description = await rt.run(BILLING, {"billingMonth": "2024-06"})
            history = await rt.get_execution_history(description.execution_arn)
            children = await rt.store.list_executions(invoice.arn)
            return description, history, children

    description, history, children = run(go())

    assert str(description.status) == "SUCCEEDED"
    assert len(children) == len(billing.CUSTOMERS)
    assert {c.parent_execution_arn for c in children} == {description.execution_arn}
    assert {c.status for c in children} == {"SUCCEEDED"}
    outputs = sorted(json.loads(c.output)["invoiceId"] for c in children)
    assert outputs == [f"INV-2024-06-{c['id']}" for c in billing.CUSTOMERS]
    nested = [
        e
        for e in history
        if e.type == "TaskScheduled" and "startExecution" in e.details["resource"]
    ]
    assert len(nested) == len(billing.CUSTOMERS)
    assert {e.details["resource"] for e in nested} == {"startExecution.sync:2"}


def test_billing_map_runs_at_most_five_customers_at_once() -> None:
    in_flight = 0
    peak = 0

    async def slow_price(item: Any, context: TaskContext) -> Any:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.02)  # real time: gives the other iterations room to start
            return await billing.compute_price(item, context)
        finally:
            in_flight -= 1

    handlers = HandlerRegistry()
    handlers.update(billing.registry)
    handlers.register("ComputePrice", slow_price)
    customers = [
        {"id": f"C-{n:03}", "plan": "starter", "usageUnits": n * 100, "email": f"c{n}@x.example"}
        for n in range(12)
    ]
    run_input = {"billingMonth": "2024-07", "customers": customers}
    description, _ = run(execute(BILLING, run_input, handlers))

    assert output_of(description)["invoiceCount"] == 12
    assert 1 <= peak <= 5


def test_billing_unreachable_customer_fails_the_run() -> None:
    customers = [{"id": "C-404", "plan": "pro", "usageUnits": 1, "email": None}]
    description, _ = run(
        execute(BILLING, {"billingMonth": "2024-06", "customers": customers}, billing.registry)
    )

    assert str(description.status) == "FAILED"
    assert description.error == "Billing.NoPostalAddress"


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
    assert completed.stdout.count("status     SUCCEEDED") == 3
    assert "CheckStock -> IsInStock -> CreateOrder" in completed.stdout
    assert "CheckStock -> IsInStock -> InformCustomer -> OutOfStock" in completed.stdout
    assert "SendInvoice [Billing.EmailBounced, retried]" in completed.stdout
    assert "SendInvoice [NoEmailAddress] -> SendByPost" in completed.stdout
    assert db.is_file()

    assert "nested     8 executions (8 SUCCEEDED)" in completed.stdout
    assert "3 executions ran (and 8 nested ones they started)" in completed.stdout

    async def read_back() -> list[Any]:
        # A new runtime on the same file sees the executions the script ran.
        async with Runtime(store=str(db), handlers=HandlerRegistry()) as runtime:
            executions = await runtime.list_executions()
            return [await runtime.describe_execution(e.execution_arn) for e in executions]

    described = run(read_back())
    assert len(described) == 3 + 8  # the invoices are nested executions of their own
    assert {str(d.status) for d in described} == {"SUCCEEDED"}
    assert sum(":monthly-invoice:" in d.execution_arn for d in described) == 8
