"""Group commit: many executions' events appended in one store transaction.

Work (an ``Append`` to an execution, or a new execution to create) is enqueued with a
completion; one committer task takes as much as ``MAX_BATCH_EVENTS`` allows, writes it in one
transaction and resolves each completion. A transaction sunk by one item (a duplicate name, a
lost race) is retried item by item so that only the guilty one fails.

Interface: :meth:`GroupCommit.enqueue` (fire and be called back), :meth:`GroupCommit.commit`
(await durability) and :meth:`GroupCommit.run` (the committer, owned by the engine's task
group). Imports the store's protocol and the errors only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Final, Protocol, TypeVar, final

from runtime.core.events import HistoryEvent
from runtime.errors import ConcurrencyConflict, ExecutionAlreadyExists
from runtime.store.base import Append, EventStore, ExecutionRecord

#: Most events appended in one group-commit transaction.
MAX_BATCH_EVENTS: Final = 4096


class Completion(Protocol):
    """Told how a piece of work's commit ended (an ``asyncio.Future`` is one)."""

    def done(self) -> bool: ...

    def set_result(self, result: None, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


def _settle(done: Completion, exc: BaseException | None = None) -> None:
    """Resolve ``done`` unless its waiter gave up already: a ``start_execution`` cancelled while
    its creation was being committed left a cancelled future, and resolving it raised
    ``InvalidStateError`` inside the committer, which took the whole engine down (fuzz)."""
    if done.done():
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)


@final
class Create:
    """A new execution waiting for the group commit."""

    __slots__ = ("events", "record")

    def __init__(self, record: ExecutionRecord, events: list[HistoryEvent]) -> None:
        self.record = record
        self.events = events


Work = Append | Create


@final
class GroupCommit:
    """The commit pipeline: a list of pending work and the one task that writes it."""

    __slots__ = ("_busy", "_inline", "_pending", "_wakeup", "_writing", "events_written", "store")

    def __init__(self, store: EventStore, busy: Callable[[int], None]) -> None:
        self.store = store
        self._busy = busy
        """Counts each pending piece of work busy until it is written (virtual time waits)."""
        self.events_written = 0
        """Events handed to the store so far (for a worker's commit rate)."""
        self._pending: list[tuple[Work, Completion]] = []
        self._wakeup: asyncio.Future[None] | None = None
        """The committer's wait for work, while it waits (a bare future: an ``asyncio.Event``
        cost two calls more per enqueue and a future per wait anyway)."""
        self._inline = not store.durable
        """Whether :meth:`write_now` may be used: only on a store that keeps nothing across
        the process (it writes in memory, so a write alone costs what it costs in a batch). On
        a durable store a write alone is a transaction of its own (an fsync on SQLite) that
        the work queued meanwhile waits behind: batching is the point there."""
        self._writing = False
        """A transaction is in flight (the committer's, or a :meth:`write_now`): one at a
        time, so that work is written in the order it was queued."""

    def enqueue(self, work: Work, done: Completion) -> None:
        """Queue ``work`` for the next transaction; ``done`` is told how it ended."""
        self._pending.append((work, done))
        self._wake()
        self._busy(+1)

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)

    def can_write_now(self) -> bool:
        """True when :meth:`write_now` may be used: the store writes in memory and nothing is
        pending or being written."""
        return self._inline and not self._writing and not self._pending

    async def write_now(self, work: Work, done: Completion) -> None:
        """Write ``work`` in the caller's task, at once (see :meth:`can_write_now`).

        The same transaction the committer would have made of it alone, without the two
        task hand-overs (to the committer and back): one execution at a time, that was a fifth
        of the loop's turns per execution (``peers`` a), and a start's creation another hop
        (``peers`` a: one loop turn, a future and the committer's batch sorting per start).
        Work queued meanwhile waits for it and is then written by the committer. A store that
        is not durable (:class:`~runtime.store.memory.MemoryStore`) writes without suspending,
        so the caller cannot be cancelled half-way (a created execution that nobody adopts)."""
        self._writing = True
        self._busy(+1)
        try:
            # A batch of one: the store is called directly (``_write_batch`` would only try
            # the same single item again when it fails).
            if isinstance(work, Create):
                await self.store.create_executions([(work.record, work.events)])
            else:
                await self.store.append((work,))
        except Exception as exc:
            _settle(done, exc)
        else:
            _settle(done)
        finally:
            self.events_written += len(work.events)
            self._writing = False
            self._busy(-1)
            if self._pending:
                self._wake()

    async def commit(self, work: Work) -> None:
        """Queue ``work`` and return once it is durable (or raise why it is not)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.enqueue(work, future)
        await future

    async def run(self) -> None:
        """The committer: write pending work in batches until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            while self._writing or not self._pending:
                wakeup = self._wakeup = loop.create_future()
                try:
                    await wakeup
                finally:
                    self._wakeup = None
            self._writing = True
            try:
                await self._write_pending()
            finally:
                self._writing = False

    async def _write_pending(self) -> None:
        """Write pending work in batches of at most ``MAX_BATCH_EVENTS`` until none is left."""
        while self._pending:
            creates: list[tuple[Create, Completion]] = []
            appends: list[tuple[Append, Completion]] = []
            count = 0
            taken = 0
            for work, done in self._pending:  # one pass: measure and sort the batch
                taken += 1
                count += len(work.events)
                if isinstance(work, Create):
                    creates.append((work, done))
                else:
                    appends.append((work, done))
                if count >= MAX_BATCH_EVENTS:
                    break
            batch = self._pending
            if taken == len(batch):
                self._pending = []
            else:
                batch, self._pending = batch[:taken], batch[taken:]
            try:
                if creates:
                    await self._create_batch(creates)
                if appends:
                    await self._append(appends)
            finally:
                self.events_written += count
                self._busy(-len(batch))

    async def _create_works(self, works: list[Create]) -> None:
        await self.store.create_executions([(w.record, w.events) for w in works])

    async def _create_batch(self, batch: list[tuple[Create, Completion]]) -> None:
        # A duplicate name fails the whole transaction: the others are then created alone.
        await _write_batch(batch, self._create_works, ExecutionAlreadyExists)

    async def _append(self, batch: list[tuple[Append, Completion]]) -> None:
        # One execution that lost a race fails the whole transaction: the others commit alone.
        await _write_batch(batch, self.store.append, ConcurrencyConflict)


_W = TypeVar("_W")


async def _write_batch(
    batch: list[tuple[_W, Completion]],
    write: Callable[[list[_W]], Awaitable[None]],
    one_item_fails: type[Exception],
) -> None:
    """Group commit of ``batch`` with ``write`` (one transaction), resolving each item's
    completion. When ``one_item_fails`` sinks the transaction, the items are written one by one
    so that only the guilty one fails; any other error fails them all."""
    try:
        await write([work for work, _ in batch])
    except one_item_fails:
        for work, done in batch:
            try:
                await write([work])
            except Exception as exc:
                _settle(done, exc)
            else:
                _settle(done)
        return
    except Exception as exc:
        for _, done in batch:
            _settle(done, exc)
        return
    for _, done in batch:
        _settle(done)
