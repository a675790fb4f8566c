"""Handlers of the manual-release example (``examples/approval.asl.json``).

``RequestApproval`` is a ``.waitForTaskToken`` Task: it hands the task token to a person and
returns at once; the execution then waits, holding nothing in memory, until someone answers with
``statemill send-task-success`` (or ``send-task-failure``), the next day if need be. Here "handing
the token to a person" writes it to ``approvals/<order>.token`` under the working directory (the
``STATEMILL_APPROVALS`` directory if set); a real system would send an e-mail or a chat message.

The file name comes from the execution's input, so it is confined to that folder (issue 11): an
order is 1 to 128 letters, digits, ``.``, ``_`` or ``-``, not starting with ``.`` (so no ``..``,
no ``/``, no hidden file); any other order fails the Task with ``InvalidOrder`` and writes
nothing. The token file is written owner-only (``0600``: whoever holds the token can answer the
Task), whole (a new file renamed into place), and never through a symlink planted in its place.

Imports only the public ``runtime`` API.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path
from typing import Any, Final

from runtime import HandlerRegistry, TaskContext, TaskFailed

__all__ = ["ORDER_NAME", "registry", "token_path"]

JSON = Any

#: What an order may be called: it becomes a file name in the approvals folder.
ORDER_NAME: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")

registry = HandlerRegistry()


@registry.handler("RequestApproval")
async def request_approval(order: JSON, context: TaskContext) -> JSON:
    """Write the task token where the approver finds it; the answer completes the Task."""
    if not isinstance(order, dict) or not isinstance(order.get("token"), str):
        raise TaskFailed("InvalidOrder", "RequestApproval needs an object with a string 'token'")
    folder = Path(os.environ.get("STATEMILL_APPROVALS", "approvals"))
    path = token_path(folder, order.get("order"))
    await asyncio.to_thread(_write, path, order["token"])
    return {"tokenFile": str(path)}


def token_path(folder: Path, order: JSON) -> Path:
    """``folder/<order>.token``, or ``TaskFailed("InvalidOrder")`` for a name that is not a
    plain file name (see the module docstring)."""
    name = str(order) if isinstance(order, int) and not isinstance(order, bool) else order
    if not isinstance(name, str) or ORDER_NAME.fullmatch(name) is None:
        raise TaskFailed(
            "InvalidOrder",
            f"order {order!r} is not a file name: use 1 to 128 letters, digits, '.', '_' or "
            "'-', not starting with '.'",
        )
    path = folder / f"{name}.token"
    # The pattern already rules out separators and "..": this is the invariant, checked.
    if path.parent != folder or path.name != f"{name}.token":
        raise TaskFailed("InvalidOrder", f"order {order!r} leaves the approvals folder")
    return path


def _write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: a new owner-only file beside it, renamed
    over it (a symlink planted at ``path`` is replaced, never followed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
