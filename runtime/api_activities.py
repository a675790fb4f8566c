"""Activities: CreateActivity, DescribeActivity, ListActivities, DeleteActivity, GetActivityTask.

Activities are stored (they survive a restart on the same store). An activity Task waits in the
engine until a worker takes it (``Engine.take_activity_task``: handed out once, GetActivityTask's
long poll); the worker answers with the task-token verbs (``api_tokens``).
"""

from __future__ import annotations

from runtime.api_base import RuntimeBase
from runtime.api_types import NAME, ActivityDescription, ActivityTask
from runtime.core.decide import dumps
from runtime.errors import ActivityDoesNotExist, InvalidName
from runtime.store.base import ActivityRecord


class ActivityVerbs(RuntimeBase):
    """The activity verbs of ``Runtime``."""

    async def create_activity(self, name: str) -> ActivityDescription:
        """Create (or return the existing) activity ``name`` (CreateActivity).

        Activities are stored: they survive a restart of the runtime on the same store.
        """
        if not NAME.fullmatch(name):
            raise InvalidName(f"Invalid Name: '{name}'")
        arn = f"arn:aws:states:{self.region}:{self.account}:activity:{name}"
        stored = await self._log.put_activity(
            ActivityRecord(arn=arn, name=name, creation_date=self.clock.now())
        )
        return ActivityDescription.of(stored)

    async def describe_activity(self, activity_arn: str) -> ActivityDescription:
        """DescribeActivity. Raises ActivityDoesNotExist."""
        found = await self._log.get_activity(activity_arn)
        if found is None:
            raise ActivityDoesNotExist(f"Activity Does Not Exist: '{activity_arn}'")
        return ActivityDescription.of(found)

    async def list_activities(self) -> list[ActivityDescription]:
        """ListActivities, newest first."""
        stored = await self._log.list_activities()
        return [ActivityDescription.of(r) for r in reversed(stored)]

    async def delete_activity(self, activity_arn: str) -> None:
        """DeleteActivity (deleting an unknown activity is not an error, as in AWS)."""
        await self._log.delete_activity(activity_arn)

    async def get_activity_task(
        self, activity_arn: str, worker_name: str = "", *, timeout: float = 60.0
    ) -> ActivityTask | None:
        """Take the next task of an activity (GetActivityTask): waits up to ``timeout``
        wall-clock seconds (AWS: 60) and returns None if none came. Each task is handed out
        once; answer with ``send_task_success``/``failure``/``heartbeat`` and its token.

        Raises:
            ActivityDoesNotExist: no such activity.
        """
        await self.describe_activity(activity_arn)
        if self._cluster is not None:  # tasks of every member's executions, through the store
            taken = await self._cluster.take_activity_task(activity_arn, worker_name, timeout)
            return None if taken is None else ActivityTask(task_token=taken[0], input=taken[1])
        task = await self.engine.take_activity_task(activity_arn, worker_name, timeout)
        if task is None or task.task_token is None:
            return None
        return ActivityTask(task_token=task.task_token, input=dumps(task.input))
