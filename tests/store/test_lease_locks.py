"""Lease rows are locked in partition order by every statement that locks several (issue 12).

The fence of every write locks its partitions' lease rows ``FOR SHARE`` in partition order; a
renewal or a release that locked them in another order deadlocked with such a write, and
PostgreSQL then failed one of the two (seen as a Map Run child whose creation failed with
``DeadlockDetectedError`` in ``benchmarks/cluster_map.py``). Each test holds the first of two
rows the way a fence does, runs the statement over both, listed in the other order, and then
locks the second row: one ordered lock order never deadlocks.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from runtime.cluster.leases import LeaseTable
from runtime.store.postgres import PostgresStore

pytestmark = pytest.mark.anyio

FIRST, SECOND = 5, 6


async def _held_by_me(store: PostgresStore) -> None:
    await store.pool.execute(
        "UPDATE leases SET owner = 'me', epoch = 1, expires = now() + interval '1 hour' "
        "WHERE partition = ANY($1::int[])",
        [FIRST, SECOND],
    )


async def _fenced_meanwhile(store: PostgresStore, statement: asyncio.Future[Any]) -> None:
    """A write's fence over both rows, row by row, with ``statement`` started in between."""
    async with store.pool.acquire() as fence, fence.transaction():
        await fence.execute("SET LOCAL deadlock_timeout = '100ms'")
        await fence.fetch("SELECT 1 FROM leases WHERE partition = $1 FOR SHARE", FIRST)
        await anyio.sleep(0.5)  # the statement runs now and waits for the first row
        assert not statement.done()
        await fence.fetch("SELECT 1 FROM leases WHERE partition = $1 FOR SHARE", SECOND)


async def test_a_renewal_and_a_fenced_write_never_deadlock(
    postgres_dsn: str, postgres_schema: str
) -> None:
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        await _held_by_me(store)
        table = LeaseTable(store.pool, "me", "host", 1)
        renewal = asyncio.ensure_future(table.renew({SECOND: 1, FIRST: 1}, 60.0))
        await _fenced_meanwhile(store, renewal)
        with anyio.fail_after(10):
            assert await renewal == {FIRST, SECOND}


async def test_a_release_and_a_fenced_write_never_deadlock(
    postgres_dsn: str, postgres_schema: str
) -> None:
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        await _held_by_me(store)
        table = LeaseTable(store.pool, "me", "host", 1)
        release = asyncio.ensure_future(table.release({SECOND: 1, FIRST: 1}))
        await _fenced_meanwhile(store, release)
        with anyio.fail_after(10):
            await release
        owners = await store.pool.fetch(
            "SELECT owner FROM leases WHERE partition = ANY($1::int[])", [FIRST, SECOND]
        )
        assert [row[0] for row in owners] == [None, None]
