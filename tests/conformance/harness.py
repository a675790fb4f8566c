"""Runs the AWS-recorded conformance cases (``../shared/conformance``) through the runtime.

The cases are read from where they live, never copied. Lambda behaviours named by a case are
implemented here as Python handlers the way AWS Lambda's Python runtime ran them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from runtime import InvalidDefinition, ManualClock, Runtime, TaskContext
from runtime.api import ExecutionDescription

JSON = Any

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = Path(os.environ.get("STATEMILL_CONFORMANCE", ROOT.parent / "shared" / "conformance"))
JSONATA_TAGS = frozenset({"jsonata", "variables", "assign", "arguments", "output-decl"})


def available() -> bool:
    """Whether the conformance folder is beside the checkout."""
    return (CONFORMANCE / "cases").is_dir()


def load_compare() -> ModuleType:
    """The comparison rules, imported from the conformance folder itself."""
    spec = importlib.util.spec_from_file_location("conformance_compare", CONFORMANCE / "compare.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def case_files(folder: str) -> list[Path]:
    if not available():
        return []
    return sorted((CONFORMANCE / folder).glob("*.json"))


def load_case(path: Path) -> dict[str, JSON]:
    data: dict[str, JSON] = json.loads(path.read_text())
    return data


class CustomException(Exception):
    """The exception class ``raise_custom_exception`` raises."""


async def id_function(event: JSON, context: TaskContext) -> JSON:
    return event


async def echo_function(event: JSON, context: TaskContext) -> JSON:
    return {"Return": "HelloWorld"}


async def raise_exception(event: JSON, context: TaskContext) -> JSON:
    raise Exception("Some exception was raised.")


async def raise_custom_exception(event: JSON, context: TaskContext) -> JSON:
    raise CustomException()


async def large_output_string(event: JSON, context: TaskContext) -> JSON:
    return "a" * (257 * 1024)


async def return_bytes_str(event: JSON, context: TaskContext) -> JSON:
    return "HelloWorld!"


async def return_decorated_input(event: JSON, context: TaskContext) -> JSON:
    return "input-event-" + (event if isinstance(event, str) else json.dumps(event))


async def wait_60_seconds(event: JSON, context: TaskContext) -> JSON:
    await context.sleep(60)
    return event


BEHAVIOURS = {
    "id_function": id_function,
    "echo_function": echo_function,
    "raise_exception": raise_exception,
    "raise_custom_exception": raise_custom_exception,
    "large_output_string": large_output_string,
    "return_bytes_str": return_bytes_str,
    "return_decorated_input": return_decorated_input,
    "wait_60_seconds": wait_60_seconds,
}


async def stalled(rt: Runtime, execution_arn: str, *, timeout: float = 30.0) -> bool:
    """Wait for the execution to end on a virtual-time runtime; True if it stalled instead.

    On virtual time, an execution that is not done while nobody sleeps on the clock and its
    log does not grow can never move again (e.g. its decision raised): report that after a few
    polls rather than waiting out ``timeout``. Raises ``TimeoutError`` after ``timeout`` seconds
    of real time.
    """
    clock = rt.clock
    assert isinstance(clock, ManualClock)
    idle_polls = 0
    last: tuple[int | None, float] | None = None
    async with asyncio.timeout(timeout):
        while True:
            try:
                await rt.wait_for_execution(execution_arn, timeout=0.02)
            except TimeoutError:
                pass
            else:
                return False
            live = rt.engine.live.get(execution_arn)
            marker = (None if live is None else live.state.last_event_id, clock.now())
            idle = clock.next_deadline() is None and marker == last
            idle_polls = idle_polls + 1 if idle else 0
            if idle_polls >= 5:
                return True
            last = marker


async def run_case(case: dict[str, JSON], *, timeout: float = 30.0) -> dict[str, JSON]:
    """Run one execution case; the result has ``status``, ``output``/``error``/``cause`` and
    ``history_types`` as ``compare.py`` expects."""
    handlers = {name: BEHAVIOURS[b] for name, b in (case.get("handlers") or {}).items()}
    async with Runtime("memory", handlers=handlers, virtual_time=True) as rt:
        try:
            machine = await rt.create_state_machine(
                "conformance", case["definition"], type=case.get("machine_type", "STANDARD")
            )
        except InvalidDefinition as exc:
            return {"status": "ADAPTER_ERROR", "detail": f"rejected definition: {exc}"}
        started = await rt.start_execution(machine.arn, case["input"])
        if await stalled(rt, started.execution_arn, timeout=timeout):
            return {"status": "ADAPTER_ERROR", "detail": "the execution stalled: no pending work"}
        desc: ExecutionDescription = await rt.describe_execution(started.execution_arn)
        history = await rt.get_execution_history(started.execution_arn)
    result: dict[str, JSON] = {
        "status": desc.status,
        "history_types": [event.type for event in history],
    }
    if desc.output is not None:
        result["output"] = json.loads(desc.output)
    if desc.error is not None:
        result["error"] = desc.error
    if desc.cause is not None:
        result["cause"] = desc.cause
    return result
