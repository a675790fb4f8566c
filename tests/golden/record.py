"""Record the golden histories: ``python -m tests.golden.record`` (from the checkout root).

Each ``tests/golden/<name>.jsonl`` is a ``statemill export`` of one execution run on a memory store
with the virtual clock: a ``stateMachine`` line (the definition, verbatim) and an ``execution``
line (its record and every event). ``tests/replay/test_golden.py`` replays them on every run, so a
runtime change that alters the meaning of an old log fails CI. Re-record only on purpose (an
event-schema change is always called out in CHANGELOG.md).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Final

from handlers import billing, orders
from runtime import HandlerRegistry, Runtime, TaskContext, TaskFailed
from runtime.tools.export import export_lines

JSON = Any

HERE: Final = Path(__file__).resolve().parent
EXAMPLES: Final = HERE.parent.parent / "examples"
CUSTOMER: Final = {"id": "C-17", "email": "ada@example.com", "card": "4111111111111111"}


def bouncing_billing() -> HandlerRegistry:
    """The billing handlers, with a mailbox that bounces every attempt (retries run out)."""
    registry = HandlerRegistry()
    registry.update(billing.registry)

    @registry.handler("SendInvoice")
    async def send_invoice(request: JSON, context: TaskContext) -> JSON:
        raise TaskFailed("Billing.EmailBounced", f"550 mailbox full (attempt {context.attempt})")

    return registry


#: name -> (definition file, input, handlers)
GOLDEN: Final[dict[str, tuple[str, JSON, HandlerRegistry]]] = {
    "billing-retry-and-catch": (
        "billing_inline.asl.json",
        {"billingMonth": "2024-06"},
        billing.registry,
    ),
    "billing-retries-exhausted": (
        "billing_inline.asl.json",
        {
            "billingMonth": "2024-06",
            "customers": [{"id": "C-9", "plan": "pro", "usageUnits": 10, "email": "x@y.example"}],
        },
        bouncing_billing(),
    ),
    "order-confirmed": (
        "order.asl.json",
        {
            "orderId": "1001",
            "customer": CUSTOMER,
            "items": [{"sku": "BOOK-42", "quantity": 2}, {"sku": "MUG-7", "quantity": 1}],
        },
        orders.registry,
    ),
    "order-out-of-stock": (
        "order.asl.json",
        {"orderId": "1002", "customer": CUSTOMER, "items": [{"sku": "MUG-7", "quantity": 5}]},
        orders.registry,
    ),
}


async def record(name: str) -> list[str]:
    file_name, execution_input, handlers = GOLDEN[name]
    definition = (EXAMPLES / file_name).read_text(encoding="utf-8")
    async with Runtime(store="memory", handlers=handlers, virtual_time=True) as runtime:
        # billing_inline.asl.json generates each invoice in a nested execution of monthly-invoice.
        invoice = (EXAMPLES / "invoice.asl.json").read_text(encoding="utf-8")
        await runtime.create_state_machine("monthly-invoice", invoice)
        description = await runtime.run(definition, execution_input, name=name)
        return await export_lines(runtime.store, execution_arn=description.execution_arn)


def main() -> None:
    for name in GOLDEN:
        lines = asyncio.run(record(name))
        (HERE / f"{name}.jsonl").write_text("".join(f"{line}\n" for line in lines), "utf-8")
        print(name, json.loads(lines[-1])["execution"]["status"])


if __name__ == "__main__":
    main()
