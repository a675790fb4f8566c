"""Reading a distributed Map's items for the core: the ``ITEM_READER`` effect (issue 14).

A Map with an ItemReader asks for its items a few at a time as its children start
(``runtime.core.children``: ``ItemRead(start, count)``); this reads them from the object
store with ``runtime.items.read_items``, keeping each data set's place, so that reading a
million rows in a thousand reads costs one pass over the file, not a thousand. The first read
(from item 0) also counts the data set (one more pass: the Map Run's total, as AWS reports it,
within ``MaxItems``). A read that cannot go on (a missing object, a malformed file, a store that
fails half way) is the iteration source's failure: ``States.ItemReaderFailed``.

Imports ``runtime.items`` and the core's effects; the object store is the runtime's
(``Runtime(object_store=...)``).
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from typing import Any, Final, final

import msgspec

from runtime.core.effects import ItemRead, RunTask
from runtime.engine.tasks import Outcome
from runtime.items import InvalidSpec, ItemReaderFailed, ObjectStore, parse_item_reader, read_items

__all__ = ["ItemReads"]

JSON = Any

#: Data sets kept open between reads (the oldest is closed; reading it again reopens it).
_OPEN_AT_ONCE: Final = 64

_NO_STORE: Final = (
    "This runtime has no object store for an ItemReader: open it with "
    "Runtime(object_store=runtime.items.LocalObjectStore(folder)) or an S3ObjectStore."
)


@final
class _Place:
    """An open data set, the index of the item it yields next, and the last read's answer
    (the core may ask for the same items again before it has taken that answer in)."""

    __slots__ = ("items", "last", "last_start", "next")

    def __init__(self, items: AsyncIterator[JSON] | None, start: int) -> None:
        self.items = items
        """None once the data set is read to its end."""
        self.next = start
        self.last_start = -1
        self.last: list[JSON] = []


@final
class ItemReads:
    """Answers the core's ``ItemRead`` effects from one object store."""

    def __init__(self, store: ObjectStore | None) -> None:
        self.store = store
        self._places: collections.OrderedDict[tuple[str, str, bytes], _Place] = (
            collections.OrderedDict()
        )

    async def read(self, execution_arn: str, task: RunTask) -> Outcome:
        """The items ``task`` asks for: ``{"items": [...]}``, plus ``"total"`` when it reads
        from the first item."""
        request = task.input
        assert isinstance(request, ItemRead)
        if self.store is None:
            return "failed", None, "States.ItemReaderFailed", _NO_STORE
        try:
            spec = parse_item_reader(request.reader)
            output: dict[str, JSON] = {}
            if request.start == 0:
                output["total"] = await self._count(spec)
            output["items"] = await self._take(execution_arn, task, request, spec)
        except ItemReaderFailed as failure:
            return "failed", None, failure.error, failure.cause
        except InvalidSpec as invalid:
            return "failed", None, "States.ItemReaderFailed", str(invalid)
        return "succeeded", output, None, None

    async def _count(self, spec: Any) -> int:
        assert self.store is not None
        count = 0
        items = read_items(spec, self.store)
        try:
            async for _ in items:
                count += 1
        finally:
            await _close(items)
        return count

    async def _take(
        self, execution_arn: str, task: RunTask, request: ItemRead, spec: Any
    ) -> list[JSON]:
        assert self.store is not None
        key = (execution_arn, task.frame, msgspec.json.encode(request.reader))
        place = self._places.pop(key, None)
        if place is not None and request.start == place.last_start:
            # Asked again for the items just read (a decision ran before the answer was
            # taken in): the same answer, not a new pass over the file up to them.
            self._places[key] = place
            return list(place.last)
        if place is None or place.next != request.start:
            if place is not None and place.items is not None:
                await _close(place.items)
            place = _Place(read_items(spec, self.store, start=request.start), request.start)
        taken: list[JSON] = []
        items = place.items
        try:
            while items is not None and len(taken) < request.count:
                try:
                    taken.append(await anext(items))
                except StopAsyncIteration:
                    await _close(items)  # read to its end: nothing more to keep open
                    place.items = items = None
                    break
                place.next += 1
        except BaseException:
            if items is not None:
                await _close(items)
            raise
        place.last_start, place.last = request.start, taken
        self._places[key] = place
        while len(self._places) > _OPEN_AT_ONCE:
            _, oldest = self._places.popitem(last=False)
            if oldest.items is not None:
                await _close(oldest.items)
        return taken

    async def close(self) -> None:
        """Close every data set kept open (the runtime is closing)."""
        while self._places:
            _, place = self._places.popitem()
            if place.items is not None:
                await _close(place.items)


async def _close(items: AsyncIterator[JSON]) -> None:
    close = getattr(items, "aclose", None)
    if close is not None:
        await close()
