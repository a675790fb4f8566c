"""The ``members`` and ``leases`` tables of a PostgreSQL store: the statements of membership.

A member is a row with an expiry it pushes forward (its heartbeat); a lease is a row per
partition with an owner, an expiry and an epoch. Taking a lease (free, released, or expired)
adds one to its epoch: the epoch is the fencing token. Times come from the database server's
clock (``now()``), so members on machines whose clocks disagree still agree on expiry.

:meth:`LeaseTable.check` is the fence: run inside every write transaction of executions, it
locks the lease rows of the partitions written ``FOR SHARE`` and compares their owner and epoch
with the writer's. A takeover updates the row, so it waits for a write in flight to commit (and
the new owner then reads it), and a write after the takeover sees the new epoch and is refused.
A stale owner paused inside a transaction is cut off by the server after
``idle_in_transaction_session_timeout`` (set by ``PostgresStore``).

Imports asyncpg only through the pool it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, final

__all__ = ["LeaseTable"]

_RENEW: Final = """
UPDATE leases AS l SET expires = now() + make_interval(secs => $2)
FROM unnest($3::int[], $4::bigint[]) AS h(partition, epoch)
WHERE l.partition = h.partition AND l.epoch = h.epoch AND l.owner = $1
RETURNING l.partition
"""

_CLAIM: Final = """
UPDATE leases SET owner = $1, epoch = epoch + 1, expires = now() + make_interval(secs => $2)
WHERE partition IN (
    SELECT partition FROM leases
    WHERE owner IS NULL OR expires < now()
    ORDER BY partition
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
RETURNING partition, epoch
"""

_RELEASE: Final = """
UPDATE leases AS l SET owner = NULL, expires = '-infinity'
FROM unnest($2::int[], $3::bigint[]) AS h(partition, epoch)
WHERE l.partition = h.partition AND l.epoch = h.epoch AND l.owner = $1
"""

_HEARTBEAT: Final = """
WITH beat AS (
    INSERT INTO members (member_id, host, pid, expires)
    VALUES ($1, $2, $3, now() + make_interval(secs => $4))
    ON CONFLICT (member_id) DO UPDATE SET expires = EXCLUDED.expires
    RETURNING member_id
)
SELECT 1 + count(*) FROM members
WHERE expires > now() AND member_id <> $1
"""


@final
class LeaseTable:
    """The membership statements of one member, on a store's asyncpg pool."""

    def __init__(self, pool: Any, member_id: str, host: str, pid: int) -> None:
        self._pool = pool
        self.member_id = member_id
        self.host = host
        self.pid = pid

    async def heartbeat(self, ttl: float) -> int:
        """Register or refresh this member for ``ttl`` seconds; the number of live members
        (itself included)."""
        count = await self._pool.fetchval(_HEARTBEAT, self.member_id, self.host, self.pid, ttl)
        return int(count)

    async def renew(self, held: Mapping[int, int], ttl: float) -> set[int]:
        """Push the expiry of the leases in ``held`` (partition -> epoch) ``ttl`` seconds on;
        returns those still this member's at that epoch (the others were lost)."""
        if not held:
            return set()
        rows = await self._pool.fetch(_RENEW, self.member_id, ttl, list(held), list(held.values()))
        return {int(row[0]) for row in rows}

    async def claim(self, count: int, ttl: float) -> dict[int, int]:
        """Take up to ``count`` free or expired leases; returns partition -> new epoch."""
        if count <= 0:
            return {}
        rows = await self._pool.fetch(_CLAIM, self.member_id, ttl, count)
        return {int(row[0]): int(row[1]) for row in rows}

    async def release(self, leases: Mapping[int, int]) -> None:
        """Hand over ``leases`` (partition -> epoch) at once: free for any member to claim."""
        if leases:
            await self._pool.execute(_RELEASE, self.member_id, list(leases), list(leases.values()))

    async def leave(self, leases: Mapping[int, int]) -> None:
        """Release ``leases`` and remove this member's row (a clean shutdown)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if leases:
                await conn.execute(_RELEASE, self.member_id, list(leases), list(leases.values()))
            await conn.execute("DELETE FROM members WHERE member_id = $1", self.member_id)

    async def stale(self, connection: Any, leases: Mapping[int, int]) -> set[int]:
        """Of ``leases``, those no longer this member's at that epoch: locks the rows FOR SHARE
        in ``connection``'s transaction (the fence; see the module's docstring)."""
        rows = await connection.fetch(
            "SELECT partition, owner, epoch FROM leases WHERE partition = ANY($1::int[]) "
            "ORDER BY partition FOR SHARE",
            list(leases),
        )
        current = {int(p): (owner, int(epoch)) for p, owner, epoch in rows}
        return {p for p, epoch in leases.items() if current.get(p) != (self.member_id, epoch)}

    async def current(self, leases: Mapping[int, int]) -> set[int]:
        """Of ``leases``, those still this member's at that epoch (a plain read)."""
        if not leases:
            return set()
        rows = await self._pool.fetch(
            "SELECT partition, owner, epoch FROM leases WHERE partition = ANY($1::int[])",
            list(leases),
        )
        return {
            int(p)
            for p, owner, epoch in rows
            if (owner, int(epoch)) == (self.member_id, leases[int(p)])
        }

    async def forget_departed(self, after: float) -> None:
        """Remove the rows of members expired more than ``after`` seconds ago (killed ones;
        a clean shutdown removes its own)."""
        await self._pool.execute(
            "DELETE FROM members WHERE expires < now() - make_interval(secs => $1)", after
        )

    async def members(self) -> list[dict[str, Any]]:
        """The live members, oldest first, with the partitions each holds (diagnostics)."""
        rows = await self._pool.fetch(
            "SELECT m.member_id, m.host, m.pid, m.started, "
            "(SELECT count(*) FROM leases l WHERE l.owner = m.member_id "
            " AND l.expires > now()) AS partitions "
            "FROM members m WHERE m.expires > now() ORDER BY m.started, m.member_id"
        )
        return [dict(row) for row in rows]


def partitions_text(partitions: Iterable[int]) -> str:
    """``[1, 2, 3, 7]`` as ``1-3,7`` (log lines)."""
    ordered = sorted(partitions)
    spans: list[str] = []
    start = prev = None
    for p in ordered:
        if start is None:
            start = prev = p
        elif prev is not None and p == prev + 1:
            prev = p
        else:
            spans.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = p
    if start is not None:
        spans.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(spans)
