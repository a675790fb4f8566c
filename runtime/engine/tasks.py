"""Running one Task attempt: handler lookup, TimeoutSeconds, and the handler's outcome as data.

A handler fails its Task by raising: ``TaskFailed(error, cause)`` sets both; any other exception
gives error = its class name, and cause = its message, or for Lambda resources the JSON document
AWS Lambda's Python runtime produces (``errorMessage``, ``errorType``, ``requestId``,
``stackTrace``). Cancellation is never converted: it propagates. A handler never fails the
runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from runtime.core.effects import RunTask
from runtime.definition.limits import JSONLimitError, check_json
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
    if spec is None and task.task_token is not None:
        # ``Resource.waitForTaskToken`` runs the handler registered for ``Resource``.
        spec = registry.resolve(task.handler_name.removesuffix(".waitForTaskToken"))
    if spec is None:
        return missing_handler(task)
    beat = _Heartbeat(clock.now())

    async def heartbeat() -> None:
        beat.last = clock.now()

    context = TaskContext(
        execution_arn=execution_arn,
        state_machine_arn=state_machine_arn,
        state_name=task.state_name,
        resource=task.resource,
        attempt=task.attempt,
        idempotency_key=f"{execution_arn}/{task.frame}/{task.state_name}/{task.scheduled_id}",
        logger=bound_logger(execution_arn, task.state_name, task.attempt),
        sleep_fn=sleep,
        heartbeat_fn=heartbeat,
        task_token=task.task_token,
    )
    try:
        # A token Task's deadlines run in the core (durable timers), not around the call.
        unsupervised = task.timeout_seconds is None and task.heartbeat_seconds is None
        if unsupervised or task.task_token is not None:
            output = await spec.fn(task.input, context)
        else:
            deadline = None
            if task.timeout_seconds is not None:
                deadline = clock.now() + task.timeout_seconds
            output = await _supervise(
                spec.fn(task.input, context), clock, deadline, task.heartbeat_seconds, beat
            )
    except _Expired as expired:
        return "timed_out", None, expired.error, None
    except TaskFailed as failure:
        return "failed", None, failure.error, failure.cause
    except Exception as exc:  # a handler's bug fails its Task, never the runtime
        cause = lambda_error_cause(exc) if task.lambda_function else str(exc)
        return "failed", None, type(exc).__name__, cause
    try:
        # Not the handler's exception: a result the service cannot process (States.Runtime,
        # which no Catch matches). Its size is the core's (States.DataLimitExceeded).
        check_json(output, what="The task result")
    except JSONLimitError as exc:
        return "failed", None, "States.Runtime", str(exc)
    return "succeeded", output, None, None


async def within_timeout(call: Awaitable[Outcome], clock: Clock, seconds: float) -> Outcome:
    """``call``'s outcome, or ``States.Timeout`` once ``seconds`` passed on ``clock`` (for the
    built-in resources, which are not handlers)."""
    try:
        outcome: Outcome = await _supervise(
            call, clock, clock.now() + seconds, None, _Heartbeat(clock.now())
        )
    except _Expired as expired:
        return "timed_out", None, expired.error, None
    return outcome


class _Heartbeat:
    """When the handler last reported progress."""

    __slots__ = ("last",)

    def __init__(self, last: float) -> None:
        self.last = last


class _Expired(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


async def _supervise(
    call: Awaitable[JSON],
    clock: Clock,
    deadline: float | None,
    heartbeat_seconds: float | None,
    beat: _Heartbeat,
) -> JSON:
    """Await ``call`` under TimeoutSeconds (``deadline``) and HeartbeatSeconds.

    Raw asyncio rather than anyio.fail_after: the deadlines follow the runtime's Clock, which
    may be virtual. Raises ``_Expired("States.Timeout" | "States.HeartbeatTimeout")``.
    """
    work = asyncio.ensure_future(call)
    try:
        while True:
            limits = [] if deadline is None else [deadline]
            if heartbeat_seconds is not None:
                limits.append(beat.last + heartbeat_seconds)
            timer = asyncio.ensure_future(clock.sleep_until(min(limits)))
            try:
                await asyncio.wait({work, timer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                timer.cancel()
            if work.done():
                return work.result()
            now = clock.now()
            if deadline is not None and now >= deadline:
                raise _Expired("States.Timeout")
            if heartbeat_seconds is not None and now >= beat.last + heartbeat_seconds:
                raise _Expired("States.HeartbeatTimeout")
    finally:
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
        elif not work.cancelled():
            # Cancelled (the execution ended) just after the handler raised: its exception is
            # read here, or asyncio logs "Task exception was never retrieved" (fuzz: 1,669 times).
            work.exception()
