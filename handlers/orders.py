"""Handlers of the online order example (``examples/order.asl.json``).

The process, as the AWS Step Functions introduction tells it: check the stock; if every item is
available, create the order, generate the invoice, collect the payment and send a confirmation;
otherwise tell the customer what is out of stock.

Every handler is a deterministic function of its input: the stock levels come from the order's
``inventory`` field (``{sku: units}``) when it has one, else from :data:`CATALOG`, so an execution
replays to the same result and the examples and tests need no external system. Amounts are
integer cents.

Failures a definition can catch:
- ``Payment.CardDeclined`` (:class:`runtime.TaskFailed`): the card on the order is declined
  (any card number ending in ``0000``, a test convention).

Imports only the public ``runtime`` API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from runtime import HandlerRegistry, TaskContext, TaskFailed

__all__ = ["CATALOG", "registry"]

JSON = Any

#: SKU -> unit price in cents and units in stock (used when an order brings no ``inventory``).
CATALOG: Final[Mapping[str, Mapping[str, int]]] = {
    "BOOK-42": {"price_cents": 1999, "stock": 12},
    "MUG-7": {"price_cents": 1250, "stock": 3},
    "POSTER-1": {"price_cents": 800, "stock": 0},
}

registry = HandlerRegistry()


def _stock_levels(order: Mapping[str, JSON]) -> Mapping[str, int]:
    inventory = order.get("inventory")
    if isinstance(inventory, Mapping):
        return {str(sku): int(units) for sku, units in inventory.items()}
    return {sku: item["stock"] for sku, item in CATALOG.items()}


def _unit_price(sku: str) -> int:
    item = CATALOG.get(sku)
    if item is None:
        raise TaskFailed("Order.UnknownItem", f"no item with SKU {sku!r} in the catalog")
    return item["price_cents"]


@registry.handler("CheckStock")
async def check_stock(order: JSON, context: TaskContext) -> JSON:
    """Whether every line of the order is in stock; lists the lines that are not."""
    stock = _stock_levels(order)
    missing = [
        {"sku": line["sku"], "requested": line["quantity"], "inStock": stock.get(line["sku"], 0)}
        for line in order["items"]
        if stock.get(line["sku"], 0) < line["quantity"]
    ]
    return {"available": not missing, "missing": missing}


@registry.handler("CreateOrder")
async def create_order(order: JSON, context: TaskContext) -> JSON:
    """Prices the order's lines and gives the order its total."""
    lines = [
        {
            "sku": line["sku"],
            "quantity": line["quantity"],
            "unitPriceCents": _unit_price(line["sku"]),
            "amountCents": _unit_price(line["sku"]) * line["quantity"],
        }
        for line in order["items"]
    ]
    return {
        "orderId": order["orderId"],
        "customerId": order["customer"]["id"],
        "lines": lines,
        "totalCents": sum(line["amountCents"] for line in lines),
        "status": "CREATED",
    }


@registry.handler("GenerateInvoice")
async def generate_invoice(order: JSON, context: TaskContext) -> JSON:
    """An invoice for a created order (its input is the order record)."""
    return {
        "invoiceId": f"INV-{order['orderId']}",
        "orderId": order["orderId"],
        "customerId": order["customerId"],
        "amountCents": order["totalCents"],
    }


@registry.handler("CollectPayment")
async def collect_payment(request: JSON, context: TaskContext) -> JSON:
    """Charges the invoice amount to the customer's card.

    Raises:
        TaskFailed: ``Payment.CardDeclined`` when the card number ends in ``0000``.
    """
    card = str(request["customer"].get("card", ""))
    invoice = request["invoice"]
    if card.endswith("0000"):
        raise TaskFailed(
            "Payment.CardDeclined",
            f"card ending {card[-4:]} declined for {invoice['amountCents']} cents",
        )
    # A real gateway call would pass context.idempotency_key, which is stable across
    # re-deliveries of one attempt (handler calls are at-least-once), so it charges only once.
    return {
        "paymentId": f"PAY-{invoice['invoiceId']}",
        "amountCents": invoice["amountCents"],
        "status": "CAPTURED",
    }


@registry.handler("SendConfirmation")
async def send_confirmation(request: JSON, context: TaskContext) -> JSON:
    """The order confirmation sent to the customer."""
    invoice = request["invoice"]
    return {
        "to": request["customer"]["email"],
        "subject": f"Order {invoice['orderId']} confirmed",
        "invoiceId": invoice["invoiceId"],
        "paymentId": request["payment"]["paymentId"],
        "sent": True,
    }


@registry.handler("InformCustomer")
async def inform_customer(request: JSON, context: TaskContext) -> JSON:
    """Tells the customer which items of the order are out of stock."""
    skus = ", ".join(line["sku"] for line in request["missing"])
    return {
        "to": request["customer"]["email"],
        "subject": f"Order {request['orderId']}: out of stock",
        "body": f"Sorry, these items are out of stock: {skus}.",
        "sent": True,
    }
