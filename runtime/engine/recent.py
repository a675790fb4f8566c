"""The records of recently ended executions, so that describing one needs no store read.

Bounded (``capacity``, oldest dropped first). An ``OrderedDict``: dropping the oldest of a plain
dict that is always deleted from the front makes ``next(iter(...))`` skip ever more dead slots
(``benchmarks parked``). Imports the store's record only.
"""

from __future__ import annotations

import collections
from typing import Final, final

from runtime.store.base import ExecutionRecord

#: Ended executions whose records are kept.
RECENT_CAPACITY: Final = 10_000


@final
class RecentRecords:
    """Execution arn -> final record, for the last ``capacity`` executions that ended."""

    __slots__ = ("_records", "capacity")

    def __init__(self, capacity: int = RECENT_CAPACITY) -> None:
        self.capacity = capacity
        self._records: collections.OrderedDict[str, ExecutionRecord] = collections.OrderedDict()

    def get(self, arn: str) -> ExecutionRecord | None:
        """The final record of ``arn`` if it ended recently."""
        return self._records.get(arn)

    def add(self, record: ExecutionRecord) -> None:
        """Remember ``record`` of an execution that just ended."""
        records = self._records
        records[record.execution_arn] = record
        if len(records) > self.capacity:
            records.popitem(last=False)

    def forget(self, arn: str) -> None:
        """Drop ``arn`` (it runs again: redriven)."""
        self._records.pop(arn, None)
