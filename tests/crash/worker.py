"""A runtime process for the crash-safety test: start (or resume) a batch of executions.

``python -m tests.crash.worker DB HANDLER_LOG COUNT`` opens a Runtime on the SQLite file DB
(resuming whatever is open there), starts executions ``exec-0 .. exec-{COUNT-1}`` that do not
exist yet, and waits until every one has ended. Each completed handler call appends its
idempotency key to HANDLER_LOG (one ``os.write`` per line, so a SIGKILL cannot tear it).
The test kills this process at a random moment and runs it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import Any

from runtime import ExecutionAlreadyExists, HandlerRegistry, Runtime, TaskContext

DEFINITION: dict[str, Any] = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {
            "Type": "Pass",
            "Parameters": {"n.$": "$.n", "wait.$": "$.wait", "items.$": "$.items"},
            "Next": "Pause",
        },
        "Pause": {"Type": "Wait", "SecondsPath": "$.wait", "Next": "Fan"},
        "Fan": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 2,
            "ItemSelector": {"n.$": "$.n", "i.$": "$$.Map.Item.Value"},
            "ItemProcessor": {
                "StartAt": "Work",
                "States": {
                    "Work": {
                        "Type": "Task",
                        "Resource": "work",
                        "Retry": [
                            {"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "BackoffRate": 1}
                        ],
                        "End": True,
                    }
                },
            },
            "ResultPath": "$.parts",
            "Next": "Sum",
        },
        "Sum": {"Type": "Task", "Resource": "sum", "End": True},
    },
}


def execution_input(index: int) -> dict[str, Any]:
    """The input of execution ``exec-{index}``: deterministic, so outputs are known."""
    return {"n": index, "wait": index % 3, "items": [0, 1, 2]}


def expected_output(index: int) -> dict[str, Any]:
    """What ``exec-{index}`` must output, crash or no crash."""
    return {"total": sum(index * 10 + i for i in range(3))}


class Flaky(Exception):
    """A transient failure on the first attempt of some items."""


def build_handlers(log_fd: int) -> HandlerRegistry:
    registry = HandlerRegistry()

    @registry.handler("work")
    async def work(event: Any, context: TaskContext) -> Any:
        n, i = event["n"], event["i"]
        if (n + i) % 4 == 0 and context.attempt == 0:
            raise Flaky("first attempt fails")
        await asyncio.sleep(0.001 * ((n + i) % 7))
        os.write(log_fd, f"{context.idempotency_key}\n".encode())
        return n * 10 + i

    @registry.handler("sum")
    async def total(event: Any, context: TaskContext) -> Any:
        os.write(log_fd, f"{context.idempotency_key}\n".encode())
        return {"total": sum(event["parts"])}

    return registry


async def main(db: str, handler_log: str, count: int) -> None:
    log_fd = os.open(handler_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    async with Runtime(db, handlers=build_handlers(log_fd)) as rt:
        machine = await rt.create_state_machine("crashy", DEFINITION)
        arns = []

        async def start(index: int) -> None:
            name = f"exec-{index}"
            arn = machine.arn.replace(":stateMachine:", ":execution:") + f":{name}"
            with contextlib.suppress(ExecutionAlreadyExists):
                await rt.start_execution(machine.arn, execution_input(index), name=name)
            arns.append(arn)

        await asyncio.gather(*(start(i) for i in range(count)))
        for arn in arns:
            await rt.wait_for_execution(arn)
    os.close(log_fd)
    print("done", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
