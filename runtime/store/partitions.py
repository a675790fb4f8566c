"""The partitions executions hash into (scale-out on PostgreSQL: leases are per partition).

Pure and free of asyncpg, so that any part of the runtime can name an execution's partition.
"""

from __future__ import annotations

import zlib
from typing import Final

__all__ = ["PARTITIONS", "partition_of"]

#: How many partitions executions hash into. Fixed for a database by its first migration:
#: changing it would move stored executions.
PARTITIONS: Final = 256


def partition_of(execution_arn: str) -> int:
    """The partition of an execution: CRC-32 of its ARN modulo :data:`PARTITIONS` (stable
    across processes and versions, unlike Python's ``hash`` or PostgreSQL's ``hashtext``)."""
    return zlib.crc32(execution_arn.encode()) % PARTITIONS
