"""A ``Runtime`` on a shared PostgreSQL store: a member of the cluster, and its requests.

Opened by ``Runtime`` when its store is a ``PostgresStore``. The process becomes a
:class:`~runtime.cluster.member.Member` holding leases on a share of the partitions; the engine
runs the executions of those partitions only (``Engine.owns``) and every write is fenced by the
member. When partitions are gained, their open executions are folded from the store, their
pending requests applied, and they are woken (timers that fell due meanwhile fire at once,
handler calls they owe are re-issued with the same idempotency key); when partitions are lost,
their executions are dropped from memory.

A verb about an execution this process does not own (start, stop, redrive, a task-token answer)
is recorded as a request for the owner of its partition (:meth:`ClusterLink.ask`), which
applies it and records the result; the asker waits for that result. A notification on
``REQUESTS_CHANNEL`` wakes the owners at once; correctness never depends on it (the owners
poll every ``request_poll_interval``, and askers collect the results of all their requests in
one query a round). The requests a process asks are recorded a batch at a time
(:class:`~runtime.batches.GroupWriter`); waiting for executions run elsewhere looks at all of
them in one query a round.

Imports the cluster member, the PostgreSQL store and the errors.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, final

import anyio
import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import msgspec
import structlog

from runtime import errors
from runtime.api_requests import request_subject
from runtime.batches import GroupWriter
from runtime.cluster.member import Member, MemberHooks
from runtime.core.decide import dumps
from runtime.core.effects import RunTask
from runtime.definition.model import StateMachine
from runtime.engine.scheduler import Engine
from runtime.store.base import ExecutionRecord, StateMachineRecord
from runtime.store.postgres import REQUESTS_CHANNEL, RESULTS_CHANNEL, PostgresStore, partition_of

__all__ = ["ClusterLink", "ClusterRuntime"]

JSON = Any
log = structlog.get_logger("statemill.cluster")

#: How long an asker waits for the owner's answer to a request: several lease lifetimes (the
#: owner may die and its partition be taken over meanwhile), then ``TimeoutError``.
_ASK_TTLS: Final = 6
_ASK_SLACK: Final = 30.0
#: The longest an asker's result waits to be collected without a notification.
_COLLECT_SECONDS: Final = 0.05
#: How often a waiter for an execution run elsewhere looks whether it runs here now.
_WATCH_RECHECK: Final = 1.0
#: How long a claimed activity task is kept from other workers while its owner hands it out.
_CLAIM_SECONDS: Final = 30.0
#: The most pending requests a takeover reads to tell which executions they are about.
_SUBJECTS_READ: Final = 10_000


class ClusterRuntime(Protocol):
    """What the link needs of its ``Runtime``."""

    @property
    def engine(self) -> Engine: ...

    def machines_for_recovery(self) -> dict[str, StateMachine]: ...

    async def machine_record(self, arn: str) -> StateMachineRecord | None: ...

    async def load_revisions(self, records: Iterable[ExecutionRecord]) -> None: ...

    async def apply_requests(self, partitions: frozenset[int] | None = None) -> int: ...


@final
class ClusterLink:
    """One runtime's membership, partition hooks and requests to other members."""

    def __init__(self, runtime: ClusterRuntime, store: PostgresStore, *, lease_ttl: float) -> None:
        self._runtime = runtime
        self._store = store
        self.member = Member(
            store, MemberHooks(gained=self._gained, lost=self._lost), lease_ttl=lease_ttl
        )
        self.requests_posted = anyio.Event()
        """Set when a notification says a request was recorded (a wake-up hint)."""
        self._listener: Any = None
        self._asked: dict[int, asyncio.Future[tuple[str, str | None]]] = {}
        """Requests this process waits for, by id: collected by :meth:`_collect`."""
        self._answers = anyio.Event()
        """Set when a notification says a request was applied, or a new one is asked."""
        self._posts: GroupWriter[tuple[str, str, float, int], int] = GroupWriter(store.add_requests)
        """The requests this process asks, recorded a batch at a time (one commit each
        made a Map Run's children on other members wait for each other's WAL flushes)."""
        self._watched: dict[str, list[asyncio.Future[ExecutionRecord | None]]] = {}
        """Executions run elsewhere that this process waits for: :meth:`_watch` looks at
        them all in one query a round."""
        self._watching = False
        store.fence(self.member)
        runtime.engine.calls.activities.published = self._publish_activity

    # -- lifecycle --------------------------------------------------------------------------

    async def join(self) -> None:
        """Register and take a first share of the partitions, with :meth:`run` already
        running (the runtime has pointed ``Engine.owns`` at :meth:`owns` first)."""
        await self.member.join()

    async def run(self) -> None:
        """The member's rounds, the notification listener and the collector of answers to
        this process's requests, until cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.member.run)
            tg.start_soon(self._listen)
            tg.start_soon(self._collect)
            tg.start_soon(self._posts.run)
            tg.start_soon(self._watch)

    async def leave(self) -> None:
        """Hand the partitions over (the engine has stopped: nothing more is written)."""
        try:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await self.member.leave()
        except Exception:  # the database is gone: the leases expire on their own
            log.exception("cluster.leave_failed", member=self.member.member_id)
        finally:
            self._store.fence(None)
            if self._listener is not None:
                with anyio.CancelScope(shield=True):
                    await self._listener.close()

    async def _listen(self) -> None:
        """Keep a connection listening on ``REQUESTS_CHANNEL`` and ``RESULTS_CHANNEL``
        (reconnecting when it drops)."""
        dsn = self._store.dsn
        if dsn is None:
            return
        while True:
            closed = anyio.Event()
            try:
                self._listener = await asyncpg.connect(dsn)
                self._listener.add_termination_listener(lambda _conn, ended=closed: ended.set())
                await self._listener.add_listener(REQUESTS_CHANNEL, self._notified)
                await self._listener.add_listener(RESULTS_CHANNEL, self._applied)
                await closed.wait()
            except Exception:
                log.warning("cluster.listen_failed", member=self.member.member_id)
            finally:
                if self._listener is not None and not self._listener.is_closed():
                    await self._listener.close()
            await anyio.sleep(1.0)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit() and self.member.owns_partition(int(payload)):
            self.requests_posted.set()

    def _applied(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit() and int(payload) in self._asked:
            self._answers.set()

    async def _collect(self) -> None:
        """Resolve the requests this process waits for, all of them in one query a round:
        at once when a notification says one was applied, and every 50 ms at the latest."""
        while True:
            with anyio.move_on_after(_COLLECT_SECONDS):
                await self._answers.wait()
            self._answers = anyio.Event()
            if not self._asked:
                continue
            try:
                done = await self._store.finished_requests(list(self._asked))
            except Exception:
                log.exception("cluster.collect_failed", member=self.member.member_id)
                await anyio.sleep(_COLLECT_SECONDS)
                continue
            for request_id, status, result in done:
                waiter = self._asked.pop(request_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result((status, result))

    async def wait_for_requests(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less if a request for this member is notified."""
        with anyio.move_on_after(seconds):
            await self.requests_posted.wait()
        self.requests_posted = anyio.Event()

    # -- partitions coming and going --------------------------------------------------------

    async def _gained(self, partitions: frozenset[int]) -> None:
        """Fold the open executions of ``partitions``, wake those no pending request is
        about, apply the requests, wake the others; log the time of each step."""
        runtime, engine = self._runtime, self._runtime.engine
        phases = _Phases()
        records = await self._store.open_executions_in(partitions)
        mine = [r for r in records if not engine.holds(r.execution_arn)]
        phases.mark("read")
        await self._know_machines(mine)
        phases.mark("machines")
        recovered = await engine.recover(mine, runtime.machines_for_recovery())
        phases.mark("fold")
        beats = await self._store.heartbeats(recovered)
        engine.restore_heartbeats(beats)
        phases.mark("heartbeats")
        # Answer for them from now on; their requests first (an answer recorded while no
        # member held them beats a deadline that passed since), then let them decide. Those
        # no request waits for decide at once: applying the others' (starts above all) took
        # seconds after a kill, and held the whole takeover (benchmarks/chaos.py).
        self.member.loaded(partitions)
        waited_for = await self._subjects_of_requests(partitions)
        if waited_for is None:
            later = recovered
        else:
            engine.wake([arn for arn in recovered if arn not in waited_for])
            later = [arn for arn in recovered if arn in waited_for]
        phases.mark("wake")
        applied = await runtime.apply_requests(partitions)
        phases.mark("requests")
        engine.wake(later)
        log.info(
            "cluster.partitions_loaded",
            member=self.member.member_id,
            partitions=len(partitions),
            executions=len(recovered),
            requests=applied,
            **phases.milliseconds(),
        )

    async def _subjects_of_requests(self, partitions: frozenset[int]) -> set[str] | None:
        """The executions of ``partitions`` that pending requests are about (their ARNs);
        None when there are too many pending requests to tell (all wait for them then)."""
        pending = await self._store.pending_requests(_SUBJECTS_READ, partitions=partitions)
        if len(pending) >= _SUBJECTS_READ:
            return None
        subjects: set[str] = set()
        for _id, kind, payload, _created in pending:
            try:
                body = msgspec.json.decode(payload)
            except msgspec.DecodeError:
                return None  # applied (and failed) in order: nothing known about it
            subject = request_subject(kind, body)
            if subject is not None:
                subjects.add(subject)
            elif kind != "start":  # a start without a name is about no execution yet
                return None
        return subjects

    async def _know_machines(self, records: list[ExecutionRecord]) -> None:
        """Load the state machines of ``records`` created by other members since this one
        opened, and the revisions they started on."""
        known = self._runtime.machines_for_recovery()
        for arn in {r.state_machine_arn for r in records} - set(known):
            await self._runtime.machine_record(arn)
        await self._runtime.load_revisions(records)

    def _lost(self, partitions: frozenset[int]) -> None:
        engine = self._runtime.engine
        held = [*engine.live, *engine.parked]
        engine.release([arn for arn in held if partition_of(arn) in partitions])

    # -- asking the owner -------------------------------------------------------------------

    def owns(self, execution_arn: str) -> bool:
        return self.member.owns(execution_arn)

    async def pending_requests(
        self, partitions: frozenset[int]
    ) -> list[tuple[int, str, str, float]]:
        """The pending requests for ``partitions`` (held by this member), oldest first."""
        if not partitions:
            return []
        return await self._store.pending_requests(partitions=partitions)

    # -- activity tasks for the workers of every member ---------------------------------------

    def _publish_activity(self, execution_arn: str, task: RunTask) -> None:
        if task.task_token is not None:
            publish = self._store.publish_activity_task(
                task.task_token, task.resource, execution_arn
            )
            self._runtime.engine.spawn(publish)

    async def take_activity_task(
        self, activity_arn: str, worker_name: str, timeout: float
    ) -> tuple[str, str] | None:
        """GetActivityTask on any member: claim the oldest published task of ``activity_arn``
        and have its execution's owner hand it out (recording ``ActivityStarted``); (token,
        input text), or None after ``timeout`` seconds without one. A claim whose owner cannot
        be reached runs out and is claimed again later."""
        store, engine = self._store, self._runtime.engine
        deadline = anyio.current_time() + timeout
        delay = 0.01
        while True:
            claimed = await store.claim_activity_task(activity_arn, _CLAIM_SECONDS)
            if claimed is not None:
                token, execution_arn = claimed
                if self.owns(execution_arn):
                    task = await engine.take_activity_token(activity_arn, token, worker_name)
                    handed = None if task is None else dumps(task.input)
                else:
                    handed = await self._started_elsewhere(
                        activity_arn, token, execution_arn, worker_name
                    )
                await store.drop_activity_task(token)  # handed out, or stale: done with it
                if handed is not None:
                    return token, handed
                continue
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                return None
            await anyio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.2)

    async def _started_elsewhere(
        self, activity_arn: str, token: str, execution_arn: str, worker_name: str
    ) -> str | None:
        body = {"activityArn": activity_arn, "taskToken": token, "workerName": worker_name}
        try:
            started = await self.ask(
                "activity-started", body, execution_arn, self._runtime.engine.clock.now()
            )
        except errors.TaskDoesNotExist:
            return None
        return str(started["input"])

    async def confirm(self, execution_arn: str) -> bool:
        """Whether this member still holds the partition of ``execution_arn`` (asked of the
        database; see ``Member.confirm``)."""
        return await self.member.confirm(partition_of(execution_arn))

    async def ask(
        self, kind: str, body: dict[str, JSON], execution_arn: str, created: float
    ) -> JSON:
        """Record request ``kind`` for the owner of ``execution_arn``'s partition and return
        its result, raising the error it failed with (``TimeoutError`` if no owner answers
        within several lease lifetimes). ``created``: the runtime clock's now (an answer
        recorded after its Task's deadline gets TaskTimedOut, as on the owner)."""
        request_id = await self._posts.submit(
            (kind, msgspec.json.encode(body).decode(), created, partition_of(execution_arn))
        )
        limit = _ASK_TTLS * self.member.lease_ttl + _ASK_SLACK
        with anyio.fail_after(limit):
            status, result = await self._result_of(request_id)
        value = None if result is None else msgspec.json.decode(result)
        if status == "FAILED":
            raise _error_of(value)
        return value

    async def _result_of(self, request_id: int) -> tuple[str, str | None]:
        """Wait for request ``request_id`` to be applied (:meth:`_collect` finds it):
        (status, result)."""
        waiter: asyncio.Future[tuple[str, str | None]]
        waiter = asyncio.get_running_loop().create_future()
        self._asked[request_id] = waiter
        self._answers.set()  # a first look at once (the owner may be quick)
        try:
            return await waiter
        finally:
            self._asked.pop(request_id, None)

    async def wait_elsewhere(
        self, execution_arn: str, still_elsewhere: Callable[[], bool], timeout: float | None
    ) -> ExecutionRecord | None:
        """Wait until execution ``execution_arn`` (run by another member) has ended, or until
        ``still_elsewhere`` says this process took it over: its final record when it was read
        (``None``: taken over, or not stored)."""
        deadline = math.inf if timeout is None else anyio.current_time() + timeout
        delay = 0.01
        while still_elsewhere():
            remaining = deadline - anyio.current_time()
            if not self._watching:  # before the rounds start, after they stop: one by one
                record = await self._store.get_execution(execution_arn)
                if record is None or record.status != "RUNNING":
                    return record
                if remaining <= 0:
                    raise TimeoutError(f"execution {execution_arn} is still running")
                await anyio.sleep(min(delay, remaining))
                delay = min(delay * 2, 0.5)
                continue
            if remaining <= 0:
                raise TimeoutError(f"execution {execution_arn} is still running")
            waiter: asyncio.Future[ExecutionRecord | None]
            waiter = asyncio.get_running_loop().create_future()
            waiters = self._watched.setdefault(execution_arn, [])
            waiters.append(waiter)
            try:
                # Looked at again now and then: this process may have taken it over.
                with anyio.move_on_after(min(_WATCH_RECHECK, remaining)):
                    return await waiter
            finally:
                waiters.remove(waiter)
                if not waiters and self._watched.get(execution_arn) is waiters:
                    del self._watched[execution_arn]
        return None

    async def _watch(self) -> None:
        """Every :data:`_COLLECT_SECONDS`, wake the waiters of the watched executions that are
        no longer running (ended, or gone), all of them found in one query."""
        self._watching = True
        try:
            while True:
                await anyio.sleep(_COLLECT_SECONDS)
                if not self._watched:
                    continue
                try:
                    ended = await self._store.ended_among(list(self._watched))
                except Exception:
                    log.exception("cluster.watch_failed", member=self.member.member_id)
                    continue
                for arn, record in ended.items():
                    for waiter in self._watched.pop(arn, ()):
                        if not waiter.done():
                            waiter.set_result(record)
        finally:
            self._watching = False


@final
class _Phases:
    """Wall time of the steps of a takeover's load, for its log line (issue 12 measures the
    takeover; this says where its time went)."""

    def __init__(self) -> None:
        self._began = self._last = time.monotonic()
        self._steps: dict[str, float] = {}

    def mark(self, step: str) -> None:
        now = time.monotonic()
        self._steps[step] = now - self._last
        self._last = now

    def milliseconds(self) -> dict[str, float]:
        total = {"total": self._last - self._began}
        return {f"{k}_ms": round(v * 1000, 1) for k, v in (self._steps | total).items()}


def _error_of(value: JSON) -> Exception:
    """The exception a request failed with (by its recorded class name), as the owner raised."""
    name = value.get("error") if isinstance(value, dict) else None
    message = value.get("message", "") if isinstance(value, dict) else str(value)
    kind = getattr(errors, name, None) if isinstance(name, str) else None
    if isinstance(kind, type) and issubclass(kind, errors.StatemillError):
        return kind(message)
    return errors.StatemillError(f"{name}: {message}")
