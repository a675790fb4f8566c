"""Task-token answers: SendTaskSuccess, SendTaskFailure, SendTaskHeartbeat.

A token names its execution and frame (``core.decide.parse_task_token``); an answer is checked
against the live execution (the frame must still wait for that token, once), handed to the
engine (``Engine.report``) and returned once it is in the log (``Engine.settle``). A token whose
Task already ended says why: ``TaskTimedOut`` if the log shows it timed out, else
``TaskDoesNotExist``. Heartbeats are stored, so that a restarted runtime counts HeartbeatSeconds
from the last one.
"""

from __future__ import annotations

import math
from typing import Final

import msgspec

from runtime.api_base import RuntimeBase
from runtime.api_types import JSON, MAX_INPUT_BYTES, json_text
from runtime.core.decide import parse_task_token
from runtime.core.effects import TaskOutcome
from runtime.core.state import Frame, Phase
from runtime.engine.live import Live
from runtime.errors import (
    InvalidExecutionInput,
    InvalidToken,
    PartitionLost,
    TaskDoesNotExist,
    TaskTimedOut,
)
from runtime.store.partitions import partition_of

_TOKEN_ENDS: Final = frozenset(
    {
        "TaskSucceeded",
        "TaskFailed",
        "TaskTimedOut",
        "ActivitySucceeded",
        "ActivityFailed",
        "ActivityTimedOut",
    }
)


class TaskTokenVerbs(RuntimeBase):
    """The task-token verbs of ``Runtime``."""

    async def send_task_success(self, task_token: str, output: JSON) -> None:
        """Complete a ``.waitForTaskToken`` Task with ``output`` (SendTaskSuccess).

        Raises:
            InvalidToken: the token is malformed.
            TaskDoesNotExist: no Task waits for it (unknown, already answered, or ended).
            TaskTimedOut: its Task timed out.
            InvalidExecutionInput: ``output`` is not JSON or exceeds 256 KiB (InvalidOutput).
        """
        text = json_text(output, "Invalid output")
        if len(text.encode()) > MAX_INPUT_BYTES:
            raise InvalidExecutionInput("Task output exceeds the 256 KiB limit")
        body = {"taskToken": task_token, "output": msgspec.json.decode(text)}
        if await self._answered_elsewhere("send-task-success", body):
            return
        try:
            live, frame = await self._waiting_task(task_token)
        except PartitionLost:
            await self._ask_owner("send-task-success", body)
            return
        value = msgspec.json.decode(text)
        await self._deliver(live, frame, "succeeded", value, None, None, "send-task-success", body)

    async def send_task_failure(
        self, task_token: str, error: str | None = None, cause: str | None = None
    ) -> None:
        """Fail a ``.waitForTaskToken`` Task (SendTaskFailure); Retry and Catch see ``error``.

        Raises:
            InvalidToken, TaskDoesNotExist, TaskTimedOut: as :meth:`send_task_success`.
        """
        body = {"taskToken": task_token, "error": error, "cause": cause}
        if await self._answered_elsewhere("send-task-failure", body):
            return
        try:
            live, frame = await self._waiting_task(task_token)
        except PartitionLost:
            await self._ask_owner("send-task-failure", body)
            return
        await self._deliver(live, frame, "failed", None, error, cause, "send-task-failure", body)

    async def _deliver(
        self,
        live: Live,
        frame: Frame,
        outcome: TaskOutcome,
        output: JSON,
        error: str | None,
        cause: str | None,
        kind: str,
        body: dict[str, JSON],
    ) -> None:
        """Hand an answer to its execution and return once it is in the log; its Task's
        stored heartbeat is then moot.

        The decision that took the answer may not reach the log: its commit failed (the
        execution is then rebuilt from the log, without the answer), or in a cluster the
        execution was taken over first (this member was fenced). The answer is then given
        again, or to the new owner, unless the log shows the Task ended meanwhile."""
        arn = live.record.execution_arn
        token = str(body["taskToken"])
        for _ in range(_ANSWER_ATTEMPTS):
            self._answer(live, frame, token, outcome, output, error, cause)
            await self.engine.settle(arn)
            if live.state.is_terminal:
                break
            if not self.engine.holds_live(live):
                if self._cluster is not None and not await self._task_ended(arn, frame.id, token):
                    await self._ask(kind, body, arn, self.clock.now())
                    return
                break
            if not _waits_for(live, frame.id, token):
                break  # in the log
            live.answered.discard(token)  # lost with a failed commit: answer again
        if frame.task_heartbeat is not None:
            await self._log.delete_heartbeats([(arn, frame.id)])

    async def send_task_heartbeat(self, task_token: str) -> None:
        """Report progress of a ``.waitForTaskToken`` Task (SendTaskHeartbeat): its
        HeartbeatSeconds window starts again.

        Raises:
            InvalidToken, TaskDoesNotExist, TaskTimedOut: as :meth:`send_task_success`.
        """
        body = {"taskToken": task_token}
        if await self._answered_elsewhere("send-task-heartbeat", body):
            return
        try:
            live, frame = await self._waiting_task(task_token)
        except PartitionLost:
            await self._ask_owner("send-task-heartbeat", body)
            return
        arn = live.record.execution_arn
        # Stored, so that a restarted runtime counts HeartbeatSeconds from this heartbeat.
        await self._log.put_heartbeat(arn, frame.id, self.clock.now())
        self.engine.heartbeat(arn, frame.id)

    async def _ask_owner(self, kind: str, body: dict[str, JSON]) -> None:
        """Hand an answer to the member that owns the token's execution now."""
        parsed = parse_task_token(str(body["taskToken"]))
        if parsed is None:  # pragma: no cover - parsed before: a PartitionLost names one
            raise InvalidToken("Invalid Token: the task token is malformed")
        await self._ask(kind, body, parsed[0], self.clock.now())

    async def _answered_elsewhere(self, kind: str, body: dict[str, JSON]) -> bool:
        """In a cluster, hand an answer for a Task another member runs to that member (the
        owner of the token's execution); True once it has applied it."""
        parsed = parse_task_token(str(body["taskToken"]))
        if parsed is None or not self._elsewhere(parsed[0]):
            return False
        await self._ask(kind, body, parsed[0], self.clock.now())
        return True

    def _answer(
        self,
        live: Live,
        frame: Frame,
        token: str,
        outcome: TaskOutcome,
        output: JSON,
        error: str | None,
        cause: str | None,
    ) -> None:
        live.answered.add(token)
        self.engine.report(
            live.record.execution_arn, frame.id, frame.scheduled_id, outcome, output, error,
            cause, task_token=token,
        )  # fmt: skip

    async def _waiting_task(self, token: str) -> tuple[Live, Frame]:
        """The live execution and frame whose Task waits for ``token``, or AWS's error."""
        parsed = parse_task_token(token)
        if parsed is None:
            raise InvalidToken("Invalid Token: the task token is malformed")
        arn, frame_id = parsed
        live = await self.engine.live_execution(arn)
        if live is not None and token not in live.answered and _waits_for(live, frame_id, token):
            return live, live.state.frames[frame_id]
        if self._cluster is not None and not await self._cluster.confirm(arn):
            # Not this member's to answer any more (it was paused past its lease, say): what
            # it holds in memory is stale.
            raise PartitionLost(
                f"the execution's partition moved to another member: '{arn}'",
                frozenset({partition_of(arn)}),
            )
        if await self._log.get_execution(arn) is None:
            raise TaskDoesNotExist("Task Does Not Exist: the task token names no execution")
        if await self._timed_out(arn, frame_id, token):
            raise TaskTimedOut("Task Timed Out: the task of this token timed out")
        raise TaskDoesNotExist("Task Does Not Exist: no task waits for this token")

    def _token_deadline(self, live: Live, frame: Frame) -> float:
        """When a waiting token Task times out: TimeoutSeconds from its scheduling, or
        HeartbeatSeconds from its last heartbeat (``inf``: never)."""
        deadline = math.inf
        if frame.task_timeout is not None:
            deadline = frame.task_scheduled_at + frame.task_timeout
        if frame.task_heartbeat is not None and frame.phase == Phase.STARTED:
            last = self.engine.last_heartbeat(live.record.execution_arn, frame.id)
            beat = frame.task_beat_at if last is None else max(frame.task_beat_at, last)
            deadline = min(deadline, beat + frame.task_heartbeat)
        return deadline

    async def _timed_out(self, arn: str, frame_id: str, token: str) -> bool:
        """True if the log shows the token's Task ended by timing out."""
        return await self._token_end(arn, frame_id, token) in ("TaskTimedOut", "ActivityTimedOut")

    async def _task_ended(self, arn: str, frame_id: str, token: str) -> bool:
        """True if the log shows the token's Task ended (answered, failed or timed out)."""
        return await self._token_end(arn, frame_id, token) is not None

    async def _token_end(self, arn: str, frame_id: str, token: str) -> str | None:
        """The type of the event that ended the token's Task in the log, or None."""
        scheduled = False
        for event in await self._log.read(arn):
            if event.frame != frame_id:
                continue
            if not scheduled:
                scheduled = event.details.get("statemillTaskToken") == token
            elif event.type in _TOKEN_ENDS:
                return event.type
        return None


#: How often an answer lost with a failed commit is given again before giving up.
_ANSWER_ATTEMPTS: Final = 5


def _waits_for(live: Live, frame_id: str, token: str) -> bool:
    """True while the Task of ``frame_id`` in ``live``'s state still waits for ``token``."""
    frame = live.state.frames.get(frame_id)
    return (
        frame is not None
        and frame.task_token == token
        and (
            frame.phase == Phase.STARTED
            or (frame.phase == Phase.SCHEDULED and frame.task_token_activity)
        )
    )
