"""Group commit for small writes: the items queued while one batch is written go in the next.

A cluster member's requests to other members (one row each) and the results of the requests it
applied (one update each) were written one transaction at a time, each waiting for its own
commit and WAL flush: a distributed Map whose children run on another member spent most of its
time there (``benchmarks/cluster_map.py``). A :class:`GroupWriter` hands its ``write`` every
item queued so far as one batch, one batch at a time, so a burst of N items costs a few commits
instead of N, and a lone item is written at once.

Its owner runs :meth:`GroupWriter.run` in a task group for as long as items may come;
:meth:`GroupWriter.submit` queues an item and returns its result once its batch is written (or
raises what the write raised). Imports ``runtime.errors`` and the standard library only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar, final

import anyio

from runtime.errors import StatemillError

__all__ = ["GroupWriter"]

T = TypeVar("T")
R = TypeVar("R")


@final
class GroupWriter(Generic[T, R]):
    """Items written by ``write`` a batch at a time: ``write(items)`` returns one result per
    item, in order."""

    __slots__ = ("_posted", "_queue", "_running", "_write")

    def __init__(self, write: Callable[[Sequence[T]], Awaitable[Sequence[R]]]) -> None:
        self._write = write
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._posted = anyio.Event()
        self._running = False

    async def submit(self, item: T) -> R:
        """Queue ``item`` and return its result once its batch is written; written at once,
        alone, when :meth:`run` is not running (before it starts, after it stopped).

        Raises:
            Exception: what ``write`` raised for the item's batch.
        """
        if not self._running:
            return (await self._write([item]))[0]
        waiter: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, waiter))
        self._posted.set()
        return await waiter

    async def run(self) -> None:
        """Write the queued items, a batch at a time, until cancelled; items still queued then
        fail with ``StatemillError``."""
        self._running = True
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while True:
                await self._posted.wait()
                self._posted = anyio.Event()
                while self._queue:
                    batch, self._queue = self._queue, []
                    try:
                        results = await self._write([item for item, _ in batch])
                    except Exception as exc:
                        for _, waiter in batch:
                            if not waiter.done():
                                waiter.set_exception(exc)
                        continue
                    for (_, waiter), result in zip(batch, results, strict=True):
                        if not waiter.done():
                            waiter.set_result(result)
                    batch = []
        finally:
            self._running = False
            for _, waiter in [*batch, *self._queue]:
                if not waiter.done():
                    waiter.set_exception(StatemillError("the writer stopped before this item"))
            self._queue = []
