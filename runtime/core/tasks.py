"""Task states and task tokens (ASL "Task", "Wait for a Callback with Task Token", activities):
scheduling an attempt, its effect for the shell, its result, and the token deadlines.

A task token names its execution and frame and carries a secret derived from the decision's
seed by a keyed hash, never from the stream an execution can observe (issue 11). Imports only
the standard library, msgspec, ``runtime.lang``, ``runtime.definition.model`` and
``runtime.core``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any, Final

import msgspec

from runtime.core.effects import RunTask, TaskResult, Wake
from runtime.core.failures import Failures
from runtime.core.session import MAX_PAYLOAD_BYTES, StateFailure, dumps
from runtime.core.state import Frame, Phases
from runtime.definition.model import State, Task

__all__ = [
    "LAMBDA_INVOKE",
    "WAIT_FOR_TASK_TOKEN",
    "Tasks",
    "arn_region",
    "has_task_token",
    "is_activity",
    "is_activity_frame",
    "is_wait_for_task_token",
    "lambda_payload",
    "make_task_token",
    "parse_task_token",
    "resource_parts",
    "task_token_secret",
]

JSON = Any


LAMBDA_INVOKE: Final = "arn:aws:states:::lambda:invoke"


WAIT_FOR_TASK_TOKEN: Final = ".waitForTaskToken"


_ACTIVITY_ARN: Final = re.compile(r"^arn:aws[a-zA-Z-]*:states:[^:]*:[^:]*:activity:[^:]+$")


_TOKEN_VERSION: Final = 1


_LAMBDA_ARN: Final = re.compile(r"^arn:aws[a-zA-Z-]*:lambda:[^:]*:[^:]*:function:([^:]+)(:[^:]+)?$")


_SERVICE_ARN: Final = re.compile(r"^arn:aws[a-zA-Z-]*:states:::([a-zA-Z0-9-]+):([^.]+)(\..*)?$")


def is_wait_for_task_token(resource: str) -> bool:
    """True for a Task using the ``.waitForTaskToken`` integration pattern."""
    return resource.endswith(WAIT_FOR_TASK_TOKEN)


def is_activity(resource: str) -> bool:
    """True for an activity ARN: the Task waits for a worker (GetActivityTask)."""
    return bool(_ACTIVITY_ARN.match(resource))


def has_task_token(resource: str) -> bool:
    """True for Tasks that wait for a task-token answer (``.waitForTaskToken``, activities)."""
    return is_wait_for_task_token(resource) or is_activity(resource)


def is_activity_frame(frame: Frame) -> bool:
    """An activity Task (its token is issued at scheduling; the raw input is the task input)."""
    return frame.task_token is not None and frame.task_token_activity


def make_task_token(execution_arn: str, frame: str, secret: str) -> str:
    """An opaque task token: names its execution and frame (so a callback finds them with no
    index) and carries a random ``secret`` recorded in TaskScheduled (so it is unguessable and
    each attempt's token differs)."""
    raw = msgspec.json.encode([_TOKEN_VERSION, execution_arn, frame, secret])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def task_token_secret(seed: int, frame: str, n: int) -> str:
    """The secret of the ``n``-th task token a decision issues, for ``frame``: a keyed BLAKE2b of
    the decision seed (128 bits from the OS's cryptographic generator, drawn by the shell), with a
    personalisation of its own. The observable stream (:class:`~runtime.lang.scope.Entropy`:
    ``States.MathRandom``, ``States.UUID``, jitter) is seeded by a different one-way hash of the
    same seed, so nothing an execution can see predicts a token (issue 11)."""
    key = (seed % (1 << 256)).to_bytes(32, "big")
    digest = hashlib.blake2b(
        f"{frame}\x00{n}".encode(), key=key, digest_size=16, person=b"sm-task-token"
    )
    return digest.hexdigest()


def parse_task_token(token: object) -> tuple[str, str] | None:
    """(execution arn, frame) of a token made by :func:`make_task_token`, or None if malformed."""
    if not isinstance(token, str) or not 1 <= len(token) <= 1024:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        value = msgspec.json.decode(raw)
    except (ValueError, msgspec.DecodeError):
        return None
    if (
        not isinstance(value, list)
        or len(value) != 4
        or value[0] != _TOKEN_VERSION
        or not all(isinstance(part, str) for part in value[1:])
    ):
        return None
    return value[1], value[2]


class Tasks(Failures):
    """Task states: attempts, their effects and results, task-token deadlines."""

    def new_task_token(self, frame: Frame, state: Task) -> str | None:
        """A fresh token for a ``.waitForTaskToken`` attempt (derived from the decision's seed by
        :func:`task_token_secret`, never from the observable stream; recorded in TaskScheduled),
        or None for other Tasks."""
        if not has_task_token(state.resource):
            return None
        self.tokens_issued += 1
        secret = task_token_secret(self.incoming.seed, frame.id, self.tokens_issued)
        return make_task_token(self.state.execution_arn, frame.id, secret)

    def check_token_deadlines(self, frame: Frame) -> bool:
        """A Task waiting for its token: TimeoutSeconds runs from TaskScheduled,
        HeartbeatSeconds from its start, submission or last heartbeat (ASL "Task state
        timeouts and heartbeats"). Times out (True) or arms the earliest deadline (False)."""
        deadlines: list[tuple[float, str]] = []
        if frame.task_timeout is not None:
            deadlines.append((frame.task_scheduled_at + frame.task_timeout, "States.Timeout"))
        if frame.task_heartbeat is not None and frame.phase == Phases.STARTED:
            beat = frame.task_beat_at
            if isinstance(self.incoming, Wake):
                beat = max(beat, self.incoming.beats.get(frame.id, beat))
            deadlines.append((beat + frame.task_heartbeat, "States.HeartbeatTimeout"))
        if not deadlines:
            return False
        at, error = min(deadlines)
        if self.now < at:
            self.timers[frame.id] = at
            return False
        self.apply_task_result(
            TaskResult(
                now=self.now,
                frame=frame.id,
                scheduled_id=frame.scheduled_id,
                outcome="timed_out",
                error=error,
                cause="",
                task_token=frame.task_token,
            )
        )
        return True

    def schedule(
        self, frame: Frame, state: Task, effective: JSON, *, token: str | None = None
    ) -> None:
        """A Task attempt (ASL "Task State"): the payload quota, TimeoutSeconds(Path) and
        HeartbeatSeconds(Path), then ActivityScheduled, LambdaFunctionScheduled or TaskScheduled."""
        size = len(dumps(effective).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise StateFailure(
                "States.DataLimitExceeded",
                self.cause(
                    frame,
                    f"The state/task '{state.resource}' input exceeds the maximum number of "
                    "bytes service limit.",
                ),
            )
        timeout, heartbeat = self.task_seconds(frame, state)
        resource = state.resource
        details: dict[str, JSON]
        if is_activity(resource):
            details = {"resource": resource, "input": dumps(effective)}
            details["inputDetails"] = {"truncated": False}
            if timeout is not None:
                details["timeoutInSeconds"] = timeout
            if heartbeat is not None:
                details["heartbeatInSeconds"] = heartbeat
            details["statemillTaskToken"] = token
            self.emit("ActivityScheduled", frame.id, details)
            self.tasks.append(self.run_task_effect(frame))  # queued for GetActivityTask
            return
        if _LAMBDA_ARN.match(resource):
            details = {
                "resource": resource,
                "input": dumps(effective),
                "inputDetails": {"truncated": False},
            }
            if timeout is not None:
                details["timeoutInSeconds"] = timeout
            if heartbeat is not None:
                details["heartbeatInSeconds"] = heartbeat
            self.emit("LambdaFunctionScheduled", frame.id, details)
            return
        resource_type, action = resource_parts(resource)
        details = {
            "resourceType": resource_type,
            "resource": action,
            "region": arn_region(self.state.execution_arn),
            "parameters": dumps(effective),
        }
        if timeout is not None:
            details["timeoutInSeconds"] = timeout
        if heartbeat is not None:
            details["heartbeatInSeconds"] = heartbeat
        if token is not None:
            details["statemillTaskToken"] = token
        self.emit("TaskScheduled", frame.id, details)

    def task_seconds(self, frame: Frame, state: Task) -> tuple[int | None, int | None]:
        """Task (ASL "Task state timeouts and heartbeats"): TimeoutSeconds(Path) and
        HeartbeatSeconds(Path), each a positive integer no larger than the fields' maximum
        (99,999,999), read over the state's raw input in either query language; ``None`` for
        one the definition does not give."""
        timeout, heartbeat = state.timeout_seconds, state.heartbeat_seconds
        if timeout is None and heartbeat is None:
            return None, None
        bindings = self.bindings(frame, frame.data)
        return (
            None if timeout is None else timeout.duration(bindings),
            None if heartbeat is None else heartbeat.duration(bindings),
        )

    def start_task(self, frame: Frame, state: State) -> None:
        """LambdaFunctionStarted/TaskStarted, and the effect that runs the handler."""
        assert isinstance(state, Task)
        if _LAMBDA_ARN.match(state.resource):
            self.emit("LambdaFunctionStarted", frame.id, {})
        else:
            resource_type, action = resource_parts(state.resource)
            self.emit("TaskStarted", frame.id, {"resourceType": resource_type, "resource": action})
        self.tasks.append(self.run_task_effect(frame))

    def run_task_effect(self, frame: Frame) -> RunTask:
        """The RunTask effect of the attempt in ``frame``: the handler name resolved from the
        resource (a Lambda function ARN, ``lambda:invoke`` FunctionName), its input and
        deadlines."""
        state = self.state_of(frame)
        assert isinstance(state, Task)
        resource = state.resource
        handler_input = frame.task_input
        handler_name = resource
        lambda_invoke = resource.startswith(LAMBDA_INVOKE)
        match = _LAMBDA_ARN.match(resource)
        if lambda_invoke:
            params = frame.task_input if isinstance(frame.task_input, dict) else {}
            function = str(params.get("FunctionName", ""))
            arn_match = _LAMBDA_ARN.match(function)
            handler_name = arn_match.group(1) if arn_match else function.split(":")[0]
            handler_input = lambda_payload(params.get("Payload"))
        elif match:
            handler_name = match.group(1)
        return RunTask(
            frame=frame.id,
            scheduled_id=frame.scheduled_id,
            state_name=state.name,
            resource=resource,
            handler_name=handler_name,
            input=handler_input,
            attempt=frame.retry_total,
            timeout_seconds=frame.task_timeout,
            heartbeat_seconds=frame.task_heartbeat,
            lambda_invoke=lambda_invoke,
            lambda_function=bool(match) or lambda_invoke,
            task_token=frame.task_token,
        )

    def apply_task_result(self, result: TaskResult) -> None:
        """A Task attempt's outcome: a token Task's handler return only submits it (TaskSubmitted);
        a success is checked against the payload quota; a failure or timeout records the retrier
        that applies."""
        frame = self.state.frames.get(result.frame)
        if frame is None or frame.scheduled_id != result.scheduled_id:
            return
        activity = is_activity_frame(frame)
        if frame.phase != Phases.STARTED and not (activity and frame.phase == Phases.SCHEDULED):
            return
        state = self.state_of(frame)
        assert isinstance(state, Task)
        if activity:
            self.apply_activity_result(frame, state, result)
            return
        is_lambda = bool(_LAMBDA_ARN.match(state.resource))
        resource_type, action = resource_parts(state.resource)
        base: dict[str, JSON] = (
            {} if is_lambda else {"resourceType": resource_type, "resource": action}
        )
        outcome = result.outcome
        error = result.error or ""
        cause = result.cause or ""
        if frame.task_token is not None and result.task_token is None and not frame.task_submitted:
            # The handler of a token Task returned: the task is submitted, not done. (Once
            # submitted, the handler is never called again, so a token-less result is the
            # answer: that is how ``replay.check`` rebuilds it from TaskSucceeded.)
            if outcome == "succeeded":
                if not frame.task_submitted:
                    self.emit(
                        "TaskSubmitted",
                        frame.id,
                        {
                            **base,
                            "output": dumps(result.output),
                            "outputDetails": {"truncated": False},
                        },
                    )
                return
            if outcome == "timed_out":
                return  # the core owns a token Task's deadlines
        elif result.task_token is not None and result.task_token != frame.task_token:
            return
        if outcome == "succeeded":
            output = result.output
            if state.resource.startswith(LAMBDA_INVOKE) and frame.task_token is None:
                output = self.lambda_invoke_result(output, frame.task_input)
            text = dumps(output)
            if len(text.encode()) <= MAX_PAYLOAD_BYTES:
                self.emit(
                    "LambdaFunctionSucceeded" if is_lambda else "TaskSucceeded",
                    frame.id,
                    {**base, "output": text, "outputDetails": {"truncated": False}},
                )
                return
            shown = state.resource if is_lambda else resource_type
            outcome, error = "failed", "States.DataLimitExceeded"
            cause = (
                f"The state/task '{shown}' returned a result with a size exceeding the "
                "maximum number of bytes service limit."
            )
        details: dict[str, JSON] = {**base, "error": error, "cause": cause}
        retry = self.retry_delay(frame, state, error)
        if retry is not None:
            details["statemillRetrier"], details["statemillRetryDelay"] = retry
        if outcome == "timed_out":
            kind = "LambdaFunctionTimedOut" if is_lambda else "TaskTimedOut"
        else:
            kind = "LambdaFunctionFailed" if is_lambda else "TaskFailed"
        self.emit(kind, frame.id, details)

    def apply_activity_result(self, frame: Frame, state: Task, result: TaskResult) -> None:
        """An activity task: a worker took it (ActivityStarted), answered through its token
        (ActivitySucceeded/Failed) or ran out of time (ActivityTimedOut)."""
        if result.task_token not in (None, frame.task_token):
            return  # None: rebuilt from the log by ``replay.check``; the shell always sends one
        if result.outcome == "started":
            if frame.phase == Phases.SCHEDULED:
                worker = (
                    result.output.get("workerName") if isinstance(result.output, dict) else None
                )
                self.emit("ActivityStarted", frame.id, {"workerName": worker or ""})
            return
        if result.outcome == "succeeded":
            text = dumps(result.output)
            if len(text.encode()) <= MAX_PAYLOAD_BYTES:
                details = {"output": text, "outputDetails": {"truncated": False}}
                self.emit("ActivitySucceeded", frame.id, details)
                return
            error = "States.DataLimitExceeded"
            cause = (
                "The state/task 'activity' returned a result with a size exceeding the "
                "maximum number of bytes service limit."
            )
            kind = "ActivityFailed"
        else:
            error, cause = result.error or "", result.cause or ""
            kind = "ActivityTimedOut" if result.outcome == "timed_out" else "ActivityFailed"
        failed: dict[str, JSON] = {"error": error, "cause": cause}
        retry = self.retry_delay(frame, state, error)
        if retry is not None:
            failed["statemillRetrier"], failed["statemillRetryDelay"] = retry
        self.emit(kind, frame.id, failed)

    def lambda_invoke_result(self, payload: JSON, parameters: JSON) -> JSON:
        """``arn:aws:states:::lambda:invoke`` wraps the function's result as AWS does."""
        wrapped = lambda_invoke_wrapper(payload, self.entropy.uuid4())
        if isinstance(parameters, dict) and parameters.get("LogType") == "Tail":
            log_tail = f"START RequestId: {self.entropy.uuid4()} Version: $LATEST\n"
            wrapped["LogResult"] = base64.b64encode(log_tail.encode()).decode()
        return wrapped


def lambda_invoke_wrapper(payload: JSON, request_id: str) -> dict[str, JSON]:
    """The result of ``arn:aws:states:::lambda:invoke`` as AWS shapes it: the function's result
    as ``Payload``, with the invocation's version, status and transport metadata."""
    return {
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "X-Amz-Executed-Version": ["$LATEST"],
                "Content-Type": ["application/json"],
            },
            "HttpHeaders": {
                "X-Amz-Executed-Version": "$LATEST",
                "Content-Type": "application/json",
            },
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    }


def arn_region(arn: str) -> str:
    """The Region of an ARN (``arn:partition:service:region:account:...``), or "" if it has
    none: a TaskScheduled names the Region the runtime gave its execution ARN."""
    parts = arn.split(":", 4)
    return parts[3] if len(parts) == 5 else ""


def resource_parts(resource: str) -> tuple[str, str]:
    """(resourceType, resource) as TaskScheduled details show them."""
    match = _SERVICE_ARN.match(resource)
    if match:
        return match.group(1), match.group(2) + (match.group(3) or "")
    return "statemill", resource


def lambda_payload(payload: JSON) -> JSON:
    """Lambda receives ``Payload`` as raw bytes: a string holding JSON arrives parsed, and no
    payload at all arrives as an empty object."""
    if payload is None:
        return {}
    if isinstance(payload, str):
        try:
            return msgspec.json.decode(payload)
        except msgspec.DecodeError:
            return payload
    return payload
