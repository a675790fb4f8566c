"""Handlers of the monthly billing run example (``examples/billing.asl.json``).

The process: load the customers, then for each customer compute the month's price, generate the
invoice and send it by e-mail. Two failures are built in, both deterministic so the run replays
the same way every time:

- **transient**: a customer whose mail server greylists (``"greylisted": true``) rejects the first
  delivery of each invoice: :func:`send_invoice` raises ``TaskFailed("Billing.EmailBounced", ...)``
  on the first attempt only, and the definition's ``Retry`` sends it again.
- **permanent**: a customer with no e-mail address makes :func:`send_invoice` raise
  :class:`NoEmailAddress`; the Task fails with the error name ``NoEmailAddress`` (a raised
  exception's class name, as with AWS Lambda), and the definition's ``Catch`` routes it to
  ``SendByPost``, which sends the invoice to the postal address instead.

The customers come from the execution input's ``customers`` field when it has one, else from
:data:`CUSTOMERS`. Amounts are integer cents; usage is in units.

Imports only the public ``runtime`` API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, final

from runtime import HandlerRegistry, TaskContext, TaskFailed

__all__ = ["CUSTOMERS", "PLANS", "NoEmailAddress", "registry"]

JSON = Any

#: Plan -> monthly base fee, units included in it, price of each started 1,000 extra units.
PLANS: Final[Mapping[str, Mapping[str, int]]] = {
    "starter": {"base_cents": 900, "included_units": 1_000, "cents_per_1000": 200},
    "pro": {"base_cents": 4_900, "included_units": 10_000, "cents_per_1000": 100},
    "enterprise": {"base_cents": 49_000, "included_units": 100_000, "cents_per_1000": 50},
}

#: The customers billed when the input brings none: two greylisted mailboxes (retried) and one
#: customer without an e-mail address (invoiced by post).
CUSTOMERS: Final[tuple[Mapping[str, JSON], ...]] = (
    {
        "id": "C-001",
        "name": "Acme Corp",
        "plan": "pro",
        "usageUnits": 12_500,
        "email": "billing@acme.example",
    },
    {
        "id": "C-002",
        "name": "Globex",
        "plan": "starter",
        "usageUnits": 640,
        "email": "ap@globex.example",
    },
    {
        "id": "C-003",
        "name": "Initech",
        "plan": "starter",
        "usageUnits": 1_800,
        "email": "finance@initech.example",
        "greylisted": True,
    },
    {
        "id": "C-004",
        "name": "Umbrella",
        "plan": "enterprise",
        "usageUnits": 250_000,
        "email": "invoices@umbrella.example",
    },
    {
        "id": "C-005",
        "name": "Hooli",
        "plan": "pro",
        "usageUnits": 9_000,
        "email": None,
        "postalAddress": "1 Hooli Way, Palo Alto, CA",
    },
    {
        "id": "C-006",
        "name": "Stark Industries",
        "plan": "pro",
        "usageUnits": 30_000,
        "email": "accounts@stark.example",
        "greylisted": True,
    },
    {
        "id": "C-007",
        "name": "Wayne Enterprises",
        "plan": "starter",
        "usageUnits": 0,
        "email": "billing@wayne.example",
    },
    {
        "id": "C-008",
        "name": "Tyrell",
        "plan": "enterprise",
        "usageUnits": 120_000,
        "email": "ap@tyrell.example",
    },
)

#: ``TaskContext.attempt`` of a Task's first try (the count of retries before it is 0).
FIRST_ATTEMPT: Final = 0

registry = HandlerRegistry()


@final
class NoEmailAddress(Exception):  # its class name is the error the definition catches
    """The customer has no e-mail address: retrying cannot help (the definition catches it)."""


@registry.handler("LoadCustomers")
async def load_customers(run: JSON, context: TaskContext) -> JSON:
    """The customers to bill this month: the input's ``customers``, else :data:`CUSTOMERS`."""
    customers = run.get("customers") if isinstance(run, Mapping) else None
    return list(customers) if customers is not None else [dict(c) for c in CUSTOMERS]


@registry.handler("ComputePrice")
async def compute_price(item: JSON, context: TaskContext) -> JSON:
    """The month's price of one customer: base fee plus each started 1,000 units over the plan.

    Raises:
        TaskFailed: ``Billing.UnknownPlan`` for a plan not in :data:`PLANS`.
    """
    customer = item["customer"]
    plan = PLANS.get(customer["plan"])
    if plan is None:
        raise TaskFailed("Billing.UnknownPlan", f"customer {customer['id']}: {customer['plan']!r}")
    over = max(0, customer["usageUnits"] - plan["included_units"])
    blocks = -(-over // 1_000)  # started blocks of 1,000 units (ceiling division)
    overage = blocks * plan["cents_per_1000"]
    return {
        "plan": customer["plan"],
        "baseCents": plan["base_cents"],
        "overageUnits": over,
        "overageCents": overage,
        "totalCents": plan["base_cents"] + overage,
    }


@registry.handler("GenerateMonthlyInvoice")
async def generate_invoice(item: JSON, context: TaskContext) -> JSON:
    """The invoice of one customer for the billing month, from the computed price."""
    customer, price, month = item["customer"], item["price"], item["billingMonth"]
    lines = [{"description": f"{price['plan']} plan, {month}", "amountCents": price["baseCents"]}]
    if price["overageCents"]:
        lines.append(
            {
                "description": f"{price['overageUnits']} units over the plan",
                "amountCents": price["overageCents"],
            }
        )
    return {
        "invoiceId": f"INV-{month}-{customer['id']}",
        "customerId": customer["id"],
        "billingMonth": month,
        "lines": lines,
        "amountCents": price["totalCents"],
    }


@registry.handler("SendInvoice")
async def send_invoice(request: JSON, context: TaskContext) -> JSON:
    """E-mails the invoice to the customer.

    Raises:
        NoEmailAddress: the customer has no e-mail address (permanent).
        TaskFailed: ``Billing.EmailBounced`` on the first attempt for a greylisted mailbox
            (transient: the next attempt is delivered).
    """
    customer, invoice = request["customer"], request["invoice"]
    email = customer.get("email")
    if not email:
        raise NoEmailAddress(f"customer {customer['id']} has no e-mail address on file")
    if customer.get("greylisted") and context.attempt == FIRST_ATTEMPT:
        raise TaskFailed(
            "Billing.EmailBounced", f"451 4.7.1 {email}: greylisted, please try again later"
        )
    return {
        "channel": "email",
        "to": email,
        "invoiceId": invoice["invoiceId"],
        "attempt": context.attempt,
    }


@registry.handler("SendInvoiceByPost")
async def send_invoice_by_post(request: JSON, context: TaskContext) -> JSON:
    """The recovery path: posts the invoice to the customer's postal address.

    Raises:
        TaskFailed: ``Billing.NoPostalAddress`` when the customer has none either.
    """
    customer, invoice = request["customer"], request["invoice"]
    address = customer.get("postalAddress")
    if not address:
        raise TaskFailed("Billing.NoPostalAddress", f"customer {customer['id']} is unreachable")
    return {
        "channel": "post",
        "to": address,
        "invoiceId": invoice["invoiceId"],
        "reason": request["emailError"]["Error"],
    }


@registry.handler("SummarizeBillingRun")
async def summarize(run: JSON, context: TaskContext) -> JSON:
    """The totals of the run: invoices, amount, and how many went by each channel."""
    invoices = run["invoices"]
    by_channel: dict[str, int] = {}
    for invoice in invoices:
        channel = invoice["delivery"]["channel"]
        by_channel[channel] = by_channel.get(channel, 0) + 1
    return {
        "billingMonth": run["billingMonth"],
        "invoiceCount": len(invoices),
        "totalCents": sum(invoice["amountCents"] for invoice in invoices),
        "byChannel": by_channel,
        "invoices": invoices,
    }
