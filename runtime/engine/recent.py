"""The records of recently ended executions, so that describing one needs no store read.

Bounded (``capacity`` records and ``max_text`` characters of input and output, oldest dropped
first). An ``OrderedDict``: dropping the oldest of a plain
dict that is always deleted from the front makes ``next(iter(...))`` skip ever more dead slots
(``benchmarks parked``). Imports the store's record only.
"""

from __future__ import annotations

import collections
from typing import Final, final

from runtime.store.base import ExecutionRecord

#: Ended executions whose records are kept.
RECENT_CAPACITY: Final = 10_000
#: The most input and output text (characters) the kept records hold: 10,000 children of a Map
#: Run with 16 KiB inputs held 160 MiB here (``tests/test_fuzz.py``'s large selection).
RECENT_TEXT: Final = 32 * 1024 * 1024


def _size(record: ExecutionRecord) -> int:
    return len(record.input) + len(record.output or "")


@final
class RecentRecords:
    """Execution arn -> final record, for the last ``capacity`` executions that ended."""

    __slots__ = ("_records", "_text", "capacity", "max_text")

    def __init__(self, capacity: int = RECENT_CAPACITY, max_text: int = RECENT_TEXT) -> None:
        self.capacity = capacity
        self.max_text = max_text
        self._records: collections.OrderedDict[str, ExecutionRecord] = collections.OrderedDict()
        self._text = 0

    def get(self, arn: str) -> ExecutionRecord | None:
        """The final record of ``arn`` if it ended recently."""
        return self._records.get(arn)

    def add(self, record: ExecutionRecord) -> None:
        """Remember ``record`` of an execution that just ended."""
        records = self._records
        replaced = records.pop(record.execution_arn, None)
        if replaced is not None:
            self._text -= _size(replaced)
        records[record.execution_arn] = record
        self._text += _size(record)
        while len(records) > self.capacity or (self._text > self.max_text and len(records) > 1):
            _, oldest = records.popitem(last=False)
            self._text -= _size(oldest)

    def forget(self, arn: str) -> None:
        """Drop ``arn`` (it runs again: redriven)."""
        dropped = self._records.pop(arn, None)
        if dropped is not None:
            self._text -= _size(dropped)
