"""Running one Task attempt: handler lookup, TimeoutSeconds, and the handler's outcome as data.

A handler fails its Task by raising: ``TaskFailed(error, cause)`` sets both; any other exception
gives error = its class name, and cause = its message, or for Lambda resources the JSON document
AWS Lambda's Python runtime produces (``errorMessage``, ``errorType``, ``requestId``,
``stackTrace``). Cancellation is never converted: it propagates. A handler never fails the
runtime.
"""

from __future__ import annotations

import asyncio
import json
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec

from runtime.core.effects import RunTask
from runtime.engine.clock import Clock
from runtime.engine.handlers import HandlerRegistry, TaskContext, bound_logger
from runtime.errors import TaskFailed

JSON = Any
Outcome = tuple[Literal["succeeded", "failed", "timed_out"], JSON, str | None, str | None]


def lambda_error_cause(exc: BaseException) -> str:
    """The cause AWS Lambda's Python runtime reports for an unhandled exception."""
    frames = traceback.format_tb(exc.__traceback__)
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "requestId": str(uuid.uuid4()),
            "stackTrace": frames,
        }
    )


def missing_handler(task: RunTask) -> Outcome:
    """A resource with no registered handler fails its Task with a catchable error."""
    if task.lambda_function:
        return (
            "failed",
            None,
            "Lambda.ResourceNotFoundException",
            f"Function not found: arn:aws:lambda:us-east-1:000000000000:function:"
            f"{task.handler_name}:$LATEST (Service: AWSLambda; Status Code: 404; Error Code: "
            f"ResourceNotFoundException; Request ID: {uuid.uuid4()}; Proxy: null)",
        )
    return (
        "failed",
        None,
        "States.TaskFailed",
        f"No handler is registered for the resource '{task.resource}'",
    )


async def call_handler(
    task: RunTask,
    registry: HandlerRegistry,
    clock: Clock,
    *,
    execution_arn: str,
    state_machine_arn: str,
    sleep: Callable[[float], Awaitable[None]],
) -> Outcome:
    """Run one attempt to its outcome; never raises except on cancellation."""
    spec = registry.resolve(task.handler_name)
    if spec is None:
        return missing_handler(task)
    context = TaskContext(
        execution_arn=execution_arn,
        state_machine_arn=state_machine_arn,
        state_name=task.state_name,
        resource=task.resource,
        attempt=task.attempt,
        idempotency_key=f"{execution_arn}/{task.frame}/{task.state_name}/{task.scheduled_id}",
        logger=bound_logger(execution_arn, task.state_name, task.attempt),
        sleep_fn=sleep,
    )
    try:
        if task.timeout_seconds is None:
            output = await spec.fn(task.input, context)
        else:
            output = await _with_deadline(
                spec.fn(task.input, context), clock, clock.now() + task.timeout_seconds
            )
        msgspec.json.encode(output)
    except TimeoutError:
        return "timed_out", None, "States.Timeout", None
    except TaskFailed as failure:
        return "failed", None, failure.error, failure.cause
    except Exception as exc:  # a handler's bug fails its Task, never the runtime
        cause = lambda_error_cause(exc) if task.lambda_function else str(exc)
        return "failed", None, type(exc).__name__, cause
    return "succeeded", output, None, None


async def _with_deadline(call: Awaitable[JSON], clock: Clock, deadline: float) -> JSON:
    """Await ``call`` unless ``clock`` reaches ``deadline`` first (then TimeoutError).

    Raw asyncio rather than anyio.fail_after: the deadline must follow the runtime's Clock, which
    may be virtual.
    """
    work = asyncio.ensure_future(call)
    timer = asyncio.ensure_future(clock.sleep_until(deadline))
    try:
        done, _ = await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        work.cancel()
        timer.cancel()
        raise
    if work in done:
        timer.cancel()
        return work.result()
    work.cancel()
    try:
        await work
    except asyncio.CancelledError:
        pass
    except Exception:
        pass
    raise TimeoutError
