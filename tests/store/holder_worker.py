"""A runtime process that holds a SQLite file, for ``test_sqlite_holder.py``.

``python -m tests.store.holder_worker DB CALLS`` opens a ``Runtime`` on the SQLite file DB,
starts the execution ``held`` of :data:`DEFINITION` (three Tasks in a row on the ``step``
handler) and runs until it is killed: the third Task's call never returns here. Every call of
``step`` appends ``start <State> <pid>`` to CALLS when it begins and ``done <State> <pid>``
when it completes (one ``os.write`` each, so a SIGKILL cannot tear a line).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio

from runtime import Runtime, TaskContext
from runtime.definition.model import JSON

DEFINITION: dict[str, Any] = {
    "StartAt": "One",
    "States": {
        "One": {"Type": "Task", "Resource": "step", "Next": "Two"},
        "Two": {"Type": "Task", "Resource": "step", "Next": "Three"},
        "Three": {"Type": "Task", "Resource": "step", "End": True},
    },
}
MACHINE = "held"
EXECUTION = "held"
#: The Task whose call this process never completes.
BLOCKED = "Three"


def record(calls: str, line: str) -> None:
    """Append one line to the CALLS file in one write."""
    fd = os.open(calls, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def step_handler(calls: str, *, block: str | None) -> Any:
    """The ``step`` handler: records its call; the ``block`` state's call never completes."""

    async def step(value: JSON, context: TaskContext) -> JSON:
        record(calls, f"start {context.state_name}")
        if context.state_name == block:
            await anyio.sleep_forever()
        record(calls, f"done {context.state_name}")
        return value

    return step


async def main(db: str, calls: str) -> None:
    async with Runtime(db, handlers={"step": step_handler(calls, block=BLOCKED)}) as runtime:
        machine = await runtime.create_state_machine(MACHINE, DEFINITION)
        started = await runtime.start_execution(machine.arn, {"n": 1}, name=EXECUTION)
        await runtime.wait_for_execution(started.execution_arn)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2])
