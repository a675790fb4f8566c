"""A small activity worker: poll an activity, run a function, answer with the task token.

    async def resize(image: dict, task: ActivityContext) -> dict:
        await task.heartbeat()
        return {"url": ...}

    await run_activity_worker(runtime, activity.activity_arn, resize, worker_name="w-1")

The function fails its task by raising: ``TaskFailed(error, cause)`` sets both, any other
exception gives (class name, message), as handlers do. Cancellation propagates (the task is then
answered by nobody: its TimeoutSeconds/HeartbeatSeconds ends it, as when a worker dies).

Imports the public ``runtime`` API only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, final

from runtime.api import Runtime
from runtime.errors import TaskFailed

__all__ = ["ActivityContext", "run_activity_worker"]

JSON = Any


@final
class ActivityContext:
    """What a worker function knows about the task it runs."""

    def __init__(self, runtime: Runtime, task_token: str) -> None:
        self.runtime = runtime
        self.task_token = task_token

    async def heartbeat(self) -> None:
        """SendTaskHeartbeat: the task's HeartbeatSeconds window starts again."""
        await self.runtime.send_task_heartbeat(self.task_token)


async def run_activity_worker(
    runtime: Runtime,
    activity_arn: str,
    fn: Callable[[JSON, ActivityContext], Awaitable[JSON]],
    *,
    worker_name: str = "statemill-worker",
    max_tasks: int | None = None,
    poll_timeout: float = 60.0,
) -> int:
    """Serve ``activity_arn`` with ``fn`` until ``max_tasks`` tasks ran (forever if None) or
    the caller cancels; returns the number of tasks run."""
    done = 0
    while max_tasks is None or done < max_tasks:
        task = await runtime.get_activity_task(activity_arn, worker_name, timeout=poll_timeout)
        if task is None:
            continue
        context = ActivityContext(runtime, task.task_token)
        try:
            output = await fn(task.input_value, context)
        except TaskFailed as failure:
            await runtime.send_task_failure(task.task_token, failure.error, failure.cause)
        except Exception as exc:  # the worker's bug fails its task, never the worker
            await runtime.send_task_failure(task.task_token, type(exc).__name__, str(exc))
        else:
            await runtime.send_task_success(task.task_token, output)
        done += 1
    return done
