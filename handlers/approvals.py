"""Handlers of the manual-release example (``examples/approval.asl.json``).

``RequestApproval`` is a ``.waitForTaskToken`` Task: it hands the task token to a person and
returns at once; the execution then waits, holding nothing in memory, until someone answers with
``statemill send-task-success`` (or ``send-task-failure``), the next day if need be. Here "handing
the token to a person" writes it to ``approvals/<order>.token`` under the working directory (the
``STATEMILL_APPROVALS`` directory if set); a real system would send an e-mail or a chat message.

Imports only the public ``runtime`` API.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from runtime import HandlerRegistry, TaskContext

__all__ = ["registry"]

JSON = Any

registry = HandlerRegistry()


@registry.handler("RequestApproval")
async def request_approval(order: JSON, context: TaskContext) -> JSON:
    """Write the task token where the approver finds it; the answer completes the Task."""
    folder = Path(os.environ.get("STATEMILL_APPROVALS", "approvals"))
    path = folder / f"{order['order']}.token"
    await asyncio.to_thread(_write, path, order["token"])
    return {"tokenFile": str(path)}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
