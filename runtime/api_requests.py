"""Requests recorded in the store for the runtime that runs on it, and how they are applied.

The command line (``statemill start|stop|redrive|send-task-*``) records a request in the store
with no runtime; so does a member of a cluster asking the owner of an execution's partition
(``runtime.api_cluster``). The runtime on the store applies each pending request through its
own verbs and records the result (DONE, or FAILED with the error's class name and message) for
the asker. A request is applied, then marked: after a crash in between it is applied again,
which starts and stops tolerate (an idempotent start) and a task-token answer reports as
TaskDoesNotExist. A request about a partition this member no longer holds is left pending for
its new owner.

Imports the runtime's verbs only through :class:`RequestTarget`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, final

import anyio
import msgspec
import structlog

from runtime.api_types import ExecutionDescription, StartExecutionOutput, split_qualified
from runtime.batches import GroupWriter
from runtime.core.decide import dumps, parse_task_token
from runtime.core.state import Frame
from runtime.engine.live import Live
from runtime.engine.scheduler import Engine
from runtime.errors import PartitionLost, StatemillError, TaskDoesNotExist, TaskTimedOut
from runtime.store.base import EventStore, StateMachineRecord
from runtime.store.requests import RequestLog

if TYPE_CHECKING:
    from runtime.api_cluster import ClusterLink

__all__ = ["RequestLog", "RequestTarget", "Requests", "request_subject"]

JSON = Any
log = structlog.get_logger("statemill.api")


#: Requests (of different executions) applied at once.
_AT_ONCE: Final = 64
#: How old (seconds) the record of a state machine held here may be when a start request of
#: it is applied: an update another process made is seen at most this late (as on AWS, an
#: execution started just after an update may run the previous definition).
_MACHINE_RECHECK: Final = 1.0


def request_subject(kind: str, body: JSON) -> str | None:
    """What a request is about (requests about one thing are applied in order): its
    execution, named by ARN, by task token, or by the machine and name of a start; None for a
    request about nothing known yet (a start without a name)."""
    if not isinstance(body, dict):
        return None
    arn = body.get("executionArn")
    if isinstance(arn, str):
        return arn
    token = body.get("taskToken")
    if isinstance(token, str):
        parsed = parse_task_token(token)
        return None if parsed is None else parsed[0]
    machine, name = body.get("stateMachineArn"), body.get("name")
    if kind == "start" and isinstance(machine, str) and isinstance(name, str) and name:
        # The execution's ARN, as a later stop of it names it (a version's or an alias's
        # executions are named after their state machine).
        unqualified = split_qualified(machine)[0]
        return f"{unqualified.replace(':stateMachine:', ':execution:', 1)}:{name}"
    return None


async def _finish_all(store: RequestLog, results: Sequence[tuple[int, str, str]]) -> list[None]:
    """Mark applied requests (id, status, result) in one transaction."""
    await store.finish_requests(results)
    return [None] * len(results)


class RequestTarget(Protocol):
    """The verbs of a ``Runtime`` that requests are applied with."""

    @property
    def store(self) -> EventStore: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def cluster(self) -> ClusterLink | None: ...

    async def machine_record(
        self, arn: str, *, max_age: float = 0.0
    ) -> StateMachineRecord | None: ...

    async def start_child_or_execution(
        self,
        state_machine_arn: str,
        input: JSON,
        name: str | None,
        parent: str | None,
        map_run_arn: str | None = None,
        alias_arn: str | None = None,
    ) -> StartExecutionOutput: ...

    async def stop_execution(
        self, execution_arn: str, *, error: str | None = None, cause: str | None = None
    ) -> ExecutionDescription: ...

    async def redrive_execution(self, execution_arn: str) -> float: ...

    async def update_map_run(
        self,
        map_run_arn: str,
        *,
        max_concurrency: int | None = None,
        tolerated_failure_count: int | None = None,
        tolerated_failure_percentage: float | None = None,
    ) -> None: ...

    async def send_task_success(self, task_token: str, output: JSON) -> None: ...

    async def send_task_failure(
        self, task_token: str, error: str | None = None, cause: str | None = None
    ) -> None: ...

    async def send_task_heartbeat(self, task_token: str) -> None: ...

    async def waiting_task(self, token: str) -> tuple[Live, Frame]: ...

    def token_deadline(self, live: Live, frame: Frame) -> float: ...


@final
class Requests:
    """Applies the requests recorded in a runtime's store."""

    def __init__(self, runtime: RequestTarget) -> None:
        self._runtime = runtime
        self._applying = anyio.Lock()

    def log(self) -> RequestLog | None:
        """The store requests are recorded in (SQLite, PostgreSQL), if it keeps them."""
        store = self._runtime.store
        return store if isinstance(store, RequestLog) else None

    async def serve(self, interval: float) -> None:
        """Apply recorded requests every ``interval`` wall-clock seconds (not the runtime's
        clock: a virtual clock must not jump to a poll), or at once when a member of a
        cluster is notified of one."""
        while True:
            cluster = self._runtime.cluster
            if cluster is not None:
                await cluster.wait_for_requests(interval)
            else:
                await anyio.sleep(interval)
            try:
                await self.apply()
            except Exception:  # a broken request must not stop the runtime
                log.exception("requests.apply_failed")

    async def apply(self, partitions: frozenset[int] | None = None) -> int:
        """Apply the pending requests (of ``partitions`` only, for a member of a cluster);
        returns how many."""
        store = self.log()
        if store is None:
            return 0
        async with self._applying:  # the poll and a partition's takeover: never both at once
            cluster = self._runtime.cluster
            if cluster is None:
                pending = await store.pending_requests()
            else:
                ready = frozenset(cluster.member.ready)
                mine = ready if partitions is None else partitions & ready
                pending = await cluster.pending_requests(mine)
            # Requests about one execution in the order recorded; different executions at
            # once, so that their starts and answers share group commits (one at a time, each
            # waiting for its commit, a cluster's requests waited seconds: benchmarks/cluster).
            groups: dict[str, list[tuple[int, str, JSON, float]]] = {}
            for request_id, kind, payload, created in pending:
                try:
                    body = msgspec.json.decode(payload)
                except msgspec.DecodeError:
                    body = None
                key = request_subject(kind, body) or f"request:{request_id}"
                groups.setdefault(key, []).append((request_id, kind, body, created))
            limiter = anyio.CapacityLimiter(_AT_ONCE)
            # The results are marked a batch at a time (group commit): on PostgreSQL, one
            # commit each made a cluster's requests wait for each other's WAL flushes.
            finished: GroupWriter[tuple[int, str, str], None] = GroupWriter(
                functools.partial(_finish_all, store)
            )
            async with anyio.create_task_group() as outer:
                outer.start_soon(finished.run)
                async with anyio.create_task_group() as tg:
                    for group in groups.values():
                        tg.start_soon(self._apply_group, finished, group, limiter)
                outer.cancel_scope.cancel()  # every group has waited for its results' commit
        return len(pending)

    async def _apply_group(
        self,
        finished: GroupWriter[tuple[int, str, str], None],
        group: list[tuple[int, str, JSON, float]],
        limiter: anyio.CapacityLimiter,
    ) -> None:
        async with limiter:
            for request_id, kind, body, created in group:
                try:
                    if not isinstance(body, dict):
                        raise TypeError("a request's payload must be a JSON object")
                    result = await self._apply(kind, body, created)
                except PartitionLost:
                    continue  # no longer this member's: left for the partition's new owner
                except (StatemillError, KeyError, TypeError) as exc:
                    failure = {"error": type(exc).__name__, "message": str(exc)}
                    await self._finish(finished, request_id, "FAILED", dumps(failure))
                except Exception:
                    # The store failed under it (a lost connection): left pending, applied
                    # again next round; the other requests go on.
                    log.exception("requests.apply_failed", request=request_id, kind=kind)
                    return
                else:
                    await self._finish(finished, request_id, "DONE", dumps(result))

    @staticmethod
    async def _finish(
        finished: GroupWriter[tuple[int, str, str], None],
        request_id: int,
        status: str,
        result: str,
    ) -> None:
        try:
            await finished.submit((request_id, status, result))
        except Exception:  # applied, not marked: applied again next round (see the module)
            log.exception("requests.finish_failed", request=request_id)

    async def _apply(self, kind: str, body: dict[str, JSON], created: float) -> JSON:
        runtime = self._runtime
        if kind == "start":
            arn = body["stateMachineArn"]
            # Created or changed since this runtime opened (a version's ARN: its machine's),
            # looked at again at most every _MACHINE_RECHECK seconds.
            await runtime.machine_record(split_qualified(arn)[0], max_age=_MACHINE_RECHECK)
            started = await runtime.start_child_or_execution(
                arn,
                body.get("input"),
                body.get("name"),
                body.get("parentExecutionArn"),
                body.get("mapRunArn"),
                body.get("stateMachineAliasArn"),
            )
            return {"executionArn": started.execution_arn, "startDate": started.start_date}
        if kind == "stop":
            stopped = await runtime.stop_execution(
                body["executionArn"], error=body.get("error"), cause=body.get("cause")
            )
            return {"executionArn": stopped.execution_arn, "status": stopped.status}
        if kind.startswith("send-task-"):
            # Answered when recorded: an answer recorded after its Task's deadline passed
            # (while no runtime ran) gets TaskTimedOut, as it would have then.
            live, frame = await runtime.waiting_task(body["taskToken"])
            if created >= runtime.token_deadline(live, frame):
                raise TaskTimedOut("Task Timed Out: the task of this token timed out")
        if kind == "send-task-success":
            await runtime.send_task_success(body["taskToken"], body.get("output"))
            return {}
        if kind == "send-task-failure":
            await runtime.send_task_failure(body["taskToken"], body.get("error"), body.get("cause"))
            return {}
        if kind == "send-task-heartbeat":
            await runtime.send_task_heartbeat(body["taskToken"])
            return {}
        if kind == "redrive":
            return {"redriveDate": await runtime.redrive_execution(body["executionArn"])}
        if kind == "update-map-run":  # the Map Run's execution runs on this member
            await runtime.update_map_run(
                body["mapRunArn"],
                max_concurrency=body.get("maxConcurrency"),
                tolerated_failure_count=body.get("toleratedFailureCount"),
                tolerated_failure_percentage=body.get("toleratedFailurePercentage"),
            )
            return {}
        if kind == "activity-started":  # a worker of another member claimed this one's task
            task = await runtime.engine.take_activity_token(
                body["activityArn"], body["taskToken"], body.get("workerName") or ""
            )
            if task is None:
                raise TaskDoesNotExist("Task Does Not Exist: the activity task is not waiting")
            return {"input": dumps(task.input)}
        raise KeyError(f"unknown request kind: {kind}")
