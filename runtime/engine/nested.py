"""Nested state machines: the built-in ``arn:aws:states:::states:startExecution`` resource.

Three integration patterns, as AWS runs them:

* request-response: start the child, the Task's result is ``{ExecutionArn, StartDate}``;
* ``.sync`` / ``.sync:2``: start the child and wait for it to end; the result is the child's
  DescribeExecution, with ``Output`` as JSON text (``.sync``) or as JSON (``.sync:2``). A child
  that fails, times out or is aborted fails the Task with ``States.TaskFailed`` and that
  description as the cause;
* ``.waitForTaskToken``: start the child (its input carries the token) and let the token path
  finish the Task.

The child's input, when it is an object, carries ``AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID``
(the parent's arn) unless the definition set it. Starts are idempotent across restarts: without
a ``Name`` the child's name derives from the parent's attempt (execution, frame, scheduled id),
so re-running an owed call after a crash finds the same child instead of starting another.
If the parent is aborted while it waits on a ``.sync`` child, the child is stopped too.

Imports ``core.effects``, ``engine.tasks`` and ``errors`` only; the runtime is reached through
``NestedHost``. A failed child's cause is bounded to AWS's 32,768 characters.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from typing import Any, Final, Protocol

import msgspec

from runtime.core.effects import RunTask
from runtime.engine.tasks import Outcome
from runtime.errors import ExecutionLimitExceeded, StatemillError

JSON = Any

START_EXECUTION: Final = "arn:aws:states:::states:startExecution"
#: AWS's bound on a failure's cause ("Length Constraints: Maximum length of 32768", in every
#: ``*FailedEventDetails``). A failed ``.sync`` child's cause holds its own child's cause,
#: escaped once more at every level: unbounded, it grew ~3x per level (46 MB at depth 20).
MAX_CAUSE_LENGTH: Final = 32_768
STARTED_BY: Final = "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"


class ChildDescription(Protocol):
    """What the host tells about a child execution (DescribeExecution's fields)."""

    @property
    def execution_arn(self) -> str: ...

    @property
    def state_machine_arn(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def start_date(self) -> float: ...

    @property
    def input(self) -> str: ...

    @property
    def stop_date(self) -> float | None: ...

    @property
    def output(self) -> str | None: ...

    @property
    def error(self) -> str | None: ...

    @property
    def cause(self) -> str | None: ...


class NestedHost(Protocol):
    """The runtime services a nested execution needs."""

    async def start_child(
        self, state_machine_arn: str, input: JSON, name: str, parent: str
    ) -> tuple[str, float]: ...

    async def wait_child(self, execution_arn: str) -> ChildDescription: ...

    def stop_child(self, execution_arn: str, error: str | None, cause: str | None) -> None:
        """Ask for the child to stop (in the background: the caller is being cancelled)."""


def is_nested(resource: str) -> bool:
    """True for the built-in ``states:startExecution`` resource (any pattern)."""
    return resource == START_EXECUTION or resource.startswith(START_EXECUTION + ".")


def _millis(timestamp: float) -> int:
    return round(timestamp * 1000)


def _child_name(parent: str, task: RunTask) -> str:
    digest = hashlib.sha256(f"{parent}/{task.frame}/{task.scheduled_id}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


async def run_nested(
    task: RunTask, host: NestedHost, *, parent: str, parent_aborted: Callable[[], bool]
) -> Outcome:
    """Run one ``states:startExecution`` attempt to its outcome.

    ``parent_aborted`` is a callable telling whether the parent has been aborted (then a
    cancelled ``.sync`` wait stops the child).
    """
    pattern = task.resource[len(START_EXECUTION) :]
    params = task.input if isinstance(task.input, dict) else {}
    machine_arn = params.get("StateMachineArn")
    if not isinstance(machine_arn, str):
        return "failed", None, "States.Runtime", "StateMachineArn is required"
    child_input = params.get("Input", {})
    if isinstance(child_input, str):
        try:
            child_input = msgspec.json.decode(child_input)
        except msgspec.DecodeError:
            return "failed", None, "StepFunctions.InvalidExecutionInputException", child_input
    if isinstance(child_input, dict) and STARTED_BY not in child_input:
        child_input = {**child_input, STARTED_BY: parent}
    name = params.get("Name")
    if not isinstance(name, str):
        name = _child_name(parent, task)
    try:
        child_arn, start_date = await host.start_child(machine_arn, child_input, name, parent)
    except ExecutionLimitExceeded as exc:
        # The name AWS's nested-workflow guide retries on ("StepFunctions.ExecutionLimitExceeded").
        return "failed", None, "StepFunctions.ExecutionLimitExceeded", str(exc)
    except StatemillError as exc:
        return "failed", None, f"StepFunctions.{type(exc).__name__}Exception", str(exc)
    if pattern not in (".sync", ".sync:2"):
        # Request-response, or .waitForTaskToken (the token callback completes the Task).
        return (
            "succeeded",
            {"ExecutionArn": child_arn, "StartDate": _millis(start_date)},
            None,
            None,
        )
    try:
        child = await host.wait_child(child_arn)
    except asyncio.CancelledError:
        if parent_aborted():
            host.stop_child(child_arn, "States.Aborted", "The parent execution was aborted")
        raise
    described: dict[str, JSON] = {
        "ExecutionArn": child.execution_arn,
        "Input": child.input,
        "InputDetails": {"Included": True},
        "Name": child.name,
        "StartDate": _millis(child.start_date),
        "StateMachineArn": child.state_machine_arn,
        "Status": child.status,
        "StopDate": _millis(child.stop_date or child.start_date),
    }
    if child.status == "SUCCEEDED":
        output = child.output or "null"
        described["Output"] = msgspec.json.decode(output) if pattern == ".sync:2" else output
        described["OutputDetails"] = {"Included": True}
        if pattern == ".sync:2":
            described["Input"] = msgspec.json.decode(child.input)
        return "succeeded", described, None, None
    if child.error is not None:
        described["Error"] = child.error
    if child.cause is not None:
        described["Cause"] = child.cause
    return "failed", None, "States.TaskFailed", bounded_cause(described)


def bounded_cause(described: dict[str, JSON]) -> str:
    """``described`` as JSON text of at most ``MAX_CAUSE_LENGTH`` characters: the child's
    ``Cause``, then its ``Input``, are shortened until it fits (it stays valid JSON)."""
    text = msgspec.json.encode(described).decode()
    for key in ("Cause", "Input"):
        value = described.get(key)
        if len(text) <= MAX_CAUSE_LENGTH or not isinstance(value, str):
            continue
        keep = len(value)
        while len(text) > MAX_CAUSE_LENGTH and keep > 0:
            # Each character of ``value`` takes at least one in ``text``: cut by the excess.
            keep = max(0, keep - (len(text) - MAX_CAUSE_LENGTH))
            described[key] = value[:keep]
            text = msgspec.json.encode(described).decode()
    return text[:MAX_CAUSE_LENGTH]
