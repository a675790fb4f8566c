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

Imports asyncpg only through the pool it is given; a member's rounds keep one connection of it
(:meth:`LeaseTable.keep`), so that they never queue behind the runtime's writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, final

__all__ = ["LeaseTable"]


# Renewals and releases lock their rows in partition order first (the subquery's ORDER BY ...
# FOR UPDATE), as the fence locks them (FOR SHARE, ORDER BY partition): a renewal updating
# them in the order of its arrays deadlocked with a write fencing the same partitions, which
# failed that write (a Map Run child's creation: benchmarks/cluster_map.py).
def _held_rows(partitions: str, epochs: str) -> str:
    """The lease rows of member ``$1`` at the given partitions and epochs (the statement's
    parameter names), locked in partition order."""
    return f"""
    SELECT x.partition, x.epoch FROM leases AS x
    JOIN unnest({partitions}::int[], {epochs}::bigint[]) AS h(partition, epoch)
        ON x.partition = h.partition AND x.epoch = h.epoch
    WHERE x.owner = $1
    ORDER BY x.partition
    FOR UPDATE OF x
"""


_RENEW: Final = f"""
UPDATE leases AS l SET expires = now() + make_interval(secs => $2)
FROM ({_held_rows("$3", "$4")}) AS h
WHERE l.partition = h.partition AND l.epoch = h.epoch AND l.owner = $1
RETURNING l.partition
"""

# The third column: seconds since the lease taken had expired (NULL for one that was free),
# how late the takeover came (diagnostics).
_CLAIM: Final = """
UPDATE leases AS l SET owner = $1, epoch = l.epoch + 1, expires = now() + make_interval(secs => $2)
FROM (
    SELECT partition, owner AS was_owner, expires AS was_expires FROM leases
    WHERE owner IS NULL OR expires < now()
    ORDER BY partition
    LIMIT $3
    FOR UPDATE SKIP LOCKED
) AS c
WHERE l.partition = c.partition
RETURNING l.partition, l.epoch,
    CASE WHEN c.was_owner IS NULL OR c.was_expires = '-infinity' THEN NULL
         ELSE extract(epoch FROM now() - c.was_expires)::float8 END
"""

_RELEASE: Final = f"""
UPDATE leases AS l SET owner = NULL, expires = '-infinity'
FROM ({_held_rows("$2", "$3")}) AS h
WHERE l.partition = h.partition AND l.epoch = h.epoch AND l.owner = $1
"""

# The second column: seconds until the first lease another member holds expires (NULL when
# none is held), so that a member can look again right then instead of a round later.
_HEARTBEAT: Final = """
WITH beat AS (
    INSERT INTO members (member_id, host, pid, expires)
    VALUES ($1, $2, $3, now() + make_interval(secs => $4))
    ON CONFLICT (member_id) DO UPDATE SET expires = EXCLUDED.expires
    RETURNING member_id
)
SELECT
    (SELECT 1 + count(*) FROM members WHERE expires > now() AND member_id <> $1),
    (SELECT extract(epoch FROM min(expires) - now())::float8 FROM leases
     WHERE owner IS NOT NULL AND owner <> $1 AND expires >= now())
"""


@final
class LeaseTable:
    """The membership statements of one member, on a store's asyncpg pool."""

    def __init__(self, pool: Any, member_id: str, host: str, pid: int) -> None:
        self._pool = pool
        self._rounds: Any = None
        """A connection of the pool kept for the rounds' statements (:meth:`keep`), or None:
        the pool's other connections may all be busy with commits and requests, and a round
        waiting for one renews late and claims late (issue 12, the takeover time)."""
        self.member_id = member_id
        self.host = host
        self.pid = pid

    @property
    def _db(self) -> Any:
        return self._pool if self._rounds is None else self._rounds

    async def keep(self) -> None:
        """Keep a connection of the pool for :meth:`heartbeat`, :meth:`renew`, :meth:`claim`
        and :meth:`forget_departed` (one round at a time: the member's lock)."""
        if self._rounds is None:
            self._rounds = await self._pool.acquire()

    async def give_back(self) -> None:
        """Return the kept connection to the pool (after a failed round: it may be broken;
        the next :meth:`keep` takes a sound one)."""
        kept, self._rounds = self._rounds, None
        if kept is not None:
            await self._pool.release(kept)

    async def heartbeat(self, ttl: float) -> tuple[int, float | None]:
        """Register or refresh this member for ``ttl`` seconds; the number of live members
        (itself included), and the seconds until the first lease held by another member
        expires (None when other members hold none)."""
        row = await self._db.fetchrow(_HEARTBEAT, self.member_id, self.host, self.pid, ttl)
        return int(row[0]), None if row[1] is None else float(row[1])

    async def renew(self, held: Mapping[int, int], ttl: float) -> set[int]:
        """Push the expiry of the leases in ``held`` (partition -> epoch) ``ttl`` seconds on;
        returns those still this member's at that epoch (the others were lost)."""
        if not held:
            return set()
        rows = await self._db.fetch(_RENEW, self.member_id, ttl, list(held), list(held.values()))
        return {int(row[0]) for row in rows}

    async def claim(self, count: int, ttl: float) -> tuple[dict[int, int], float | None]:
        """Take up to ``count`` free or expired leases; returns partition -> new epoch, and
        how many seconds the longest expired of those taken had been expired (None when
        all were free)."""
        if count <= 0:
            return {}, None
        rows = await self._db.fetch(_CLAIM, self.member_id, ttl, count)
        late = [float(row[2]) for row in rows if row[2] is not None]
        return {int(row[0]): int(row[1]) for row in rows}, max(late, default=None)

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
        await self._db.execute(
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
