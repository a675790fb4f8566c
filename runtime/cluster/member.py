"""One runtime process as a member of a cluster sharing a PostgreSQL store.

Every ``round_seconds`` (a tenth of the lease time-to-live by default) the member refreshes its
row, renews its leases (those it finds lost are given up at once), and follows
:func:`~runtime.cluster.plan.plan_leases`: claims free or expired leases up to its fair share,
or releases the excess after another member joined. Each round also learns when the first lease
another member holds expires; when that comes before the next round, the next round runs right
after it, so a dead member's partitions are claimed as they expire rather than up to a round
later (issue 12: takeover within the lease time-to-live + 2 s). The runtime learns of each
change through :class:`MemberHooks`: ``gained`` loads the open executions of the partitions
taken (folds them, re-arms their timers, re-issues the handler calls they owe), ``lost`` drops
them from memory without a write.

The member is also the store's append guard (``PostgresStore.fence``): every write transaction
of executions checks, under a ``FOR SHARE`` lock of the lease rows, that this member still holds
each partition written at the epoch it took it with; if not, the write is refused with
``PartitionLost`` and the partitions are given up. A process that was paused (SIGSTOP) or cut
off past the time-to-live therefore finds itself fenced on its first write.

Imports the cluster's plan and lease table, the store's ``partition_of`` and errors.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Final, final

import anyio
import structlog

from runtime.cluster.leases import LeaseTable, partitions_text
from runtime.cluster.plan import plan_leases
from runtime.errors import PartitionLost
from runtime.store.postgres import PARTITIONS, PostgresStore, partition_of

__all__ = ["DEFAULT_LEASE_TTL", "Member", "MemberHooks"]

log = structlog.get_logger("statemill.cluster")

#: Seconds a lease (and a member's row) lives without renewal: a member that stops (SIGKILL,
#: SIGSTOP, a cut network) loses its partitions this long after its last round.
DEFAULT_LEASE_TTL: Final = 10.0
#: How long after a lease's expiry (by the database's clock) a member looks for it: the claim
#: takes leases whose expiry is strictly past.
_AFTER_EXPIRY: Final = 0.005
#: Every this many rounds a member removes the rows of members gone for an hour.
_TIDY_EVERY: Final = 600
_DEPARTED_AFTER: Final = 3600.0


@final
class MemberHooks:
    """What the runtime does when partitions come and go."""

    def __init__(
        self,
        gained: Callable[[frozenset[int]], Awaitable[None]],
        lost: Callable[[frozenset[int]], None],
    ) -> None:
        self.gained = gained
        self.lost = lost


@final
class Member:
    """This process's membership: its leases, its rounds, and the fence of its writes."""

    def __init__(
        self,
        store: PostgresStore,
        hooks: MemberHooks,
        *,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        round_seconds: float | None = None,
    ) -> None:
        if lease_ttl <= 0:
            raise ValueError(f"lease_ttl must be positive, not {lease_ttl}")
        host = socket.gethostname()
        pid = os.getpid()
        self.member_id = f"{host}:{pid}:{secrets.token_hex(4)}"
        self.table = LeaseTable(store.pool, self.member_id, host, pid)
        self.hooks = hooks
        self.lease_ttl = lease_ttl
        self.round_seconds = lease_ttl / 10 if round_seconds is None else round_seconds
        self.held: dict[int, int] = {}
        """Partition -> the epoch this member took its lease with (what the fence checks)."""
        self.ready: set[int] = set()
        """Held partitions whose open executions are loaded (:meth:`loaded`): the ones this
        member answers for. A verb about a partition held but not loaded yet would find
        nothing to act on, so it waits as a request until it is."""
        self.members = 1
        """Live members seen at the last round (this one included)."""
        self.takeovers = 0
        """Partitions taken so far (diagnostics, benchmarks)."""
        self._store = store
        self._lock = anyio.Lock()
        self._rounds = 0
        self._look_at: float | None = None
        """When (``time.monotonic()``) the first lease of another member expires, if before
        the next round: the next round runs then."""

    # -- ownership ------------------------------------------------------------------------

    def owns(self, execution_arn: str) -> bool:
        """True while this member holds the partition of ``execution_arn``, loaded."""
        return partition_of(execution_arn) in self.ready

    def owns_partition(self, partition: int) -> bool:
        return partition in self.ready

    def loaded(self, partitions: Iterable[int]) -> None:
        """Say the open executions of ``partitions`` (held) are in memory now."""
        self.ready.update(p for p in partitions if p in self.held)

    async def confirm(self, partition: int) -> bool:
        """Whether this member still holds ``partition``, asked of the database (a verdict
        such as "no task waits for this token" is only this member's to give while it holds
        the partition: a member paused past its lease still has the old state in memory). A
        lost partition is given up."""
        epoch = self.held.get(partition)
        if epoch is None:
            return False
        if partition in await self.table.current({partition: epoch}):
            return True
        self._lose({partition}, why="confirmation refused")
        return False

    # -- the fence (``AppendGuard``) --------------------------------------------------------

    async def check(self, connection: Any, partitions: frozenset[int]) -> None:
        """Refuse the write in ``connection``'s transaction unless this member holds every one
        of ``partitions`` at the epoch it took it with."""
        missing = {p for p in partitions if p not in self.held}
        leases = {p: self.held[p] for p in partitions if p in self.held}
        stale = missing | (await self.table.stale(connection, leases) if leases else set())
        if stale:
            self._lose(stale, why="fenced")
            raise PartitionLost(
                f"partitions {partitions_text(stale)} are no longer held by member "
                f"{self.member_id}: another member took them over; nothing was written",
                frozenset(stale),
            )

    # -- rounds -----------------------------------------------------------------------------

    async def join(self) -> None:
        """Register and take a first share of the partitions, and load them (before the
        runtime serves). :meth:`run` is to be running already: its rounds renew the leases
        meanwhile, as folding a large store's open executions may take longer than a lease
        lives."""
        gained = await self.round()
        if gained:
            await self._load(gained)

    async def run(self) -> None:
        """Round after round until cancelled; partitions gained are loaded beside the rounds
        (which go on renewing). A failed round (database out) is logged and tried again: the
        leases then expire on their own, and the fence refuses late writes."""
        try:
            async with anyio.create_task_group() as tg:
                while True:
                    await anyio.sleep(self.pause())
                    try:
                        async with self._lock:
                            await self.table.keep()
                        gained = await self.round()
                    except Exception:
                        log.exception("cluster.round_failed", member=self.member_id)
                        await self._give_back()
                        continue
                    if gained:
                        tg.start_soon(self._load, gained)
        finally:
            await self._give_back()

    async def _give_back(self) -> None:
        """Return the rounds' connection to the pool (between rounds: under the lock)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            async with self._lock:
                await self.table.give_back()

    def pause(self) -> float:
        """Seconds until the next round: ``round_seconds``, or less when a lease of another
        member expires sooner (its partition is taken as it expires)."""
        if self._look_at is None:
            return self.round_seconds
        return max(0.0, min(self.round_seconds, self._look_at - time.monotonic()))

    async def round(self) -> dict[int, int]:
        """Heartbeat, renew, and claim or release toward the fair share; returns the leases
        taken (partition -> epoch), for :meth:`_load`."""
        async with self._lock:
            began = time.monotonic()
            self.members, expiry = await self.table.heartbeat(self.lease_ttl)
            self._look_at = None if expiry is None else time.monotonic() + expiry + _AFTER_EXPIRY
            self._rounds += 1
            if self._rounds % _TIDY_EVERY == 1:
                await self.table.forget_departed(_DEPARTED_AFTER)
            held = dict(self.held)
            renewed = await self.table.renew(held, self.lease_ttl)
            lost = {p for p in held if p not in renewed and self.held.get(p) == held[p]}
            if lost:
                self._lose(lost, why="renewal refused")
            if time.monotonic() - began > self.lease_ttl / 2:
                # Slow enough that the leases may have lapsed meanwhile: claim next round.
                return {}
            plan = plan_leases(self.held, self.members, PARTITIONS)
            if plan.release:
                await self._release({p: self.held[p] for p in plan.release})
            gained, late = await self.table.claim(plan.claim, self.lease_ttl)
            if gained:
                self.held.update(gained)
                self.takeovers += len(gained)
                log.info(
                    "cluster.partitions_gained",
                    member=self.member_id,
                    partitions=partitions_text(gained),
                    members=self.members,
                    expired_seconds=None if late is None else round(late, 3),
                )
            return gained

    async def _load(self, gained: dict[int, int]) -> None:
        """Have the runtime load the partitions of ``gained``. If that fails (the database
        went away meanwhile), they would be held and never run: they are given back, and a
        later round (or another member) takes them again."""
        try:
            await self.hooks.gained(frozenset(gained))
        except BaseException as exc:
            ours = {p: e for p, e in gained.items() if self.held.get(p) == e}
            self._lose(ours, why="failed to load")
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self.table.release(ours)
            if not isinstance(exc, Exception):
                raise  # cancelled: the runtime is closing
            log.exception("cluster.load_failed", member=self.member_id)

    async def _release(self, leases: dict[int, int]) -> None:
        """Give up ``leases`` for another member: drop their executions from memory first
        (writes still in flight are either committed before the release, under the fence's
        lock, or refused after it)."""
        self._lose(leases, why="rebalanced")
        await self.table.release(leases)

    async def leave(self) -> None:
        """Hand every lease over and remove this member (a clean shutdown)."""
        async with self._lock:
            held, self.held = dict(self.held), {}
            self.ready.clear()
            await self.table.leave(held)

    def _lose(self, partitions: Iterable[int], *, why: str) -> None:
        gone = frozenset(p for p in partitions if self.held.pop(p, None) is not None)
        self.ready.difference_update(gone)
        if gone:
            log.warning(
                "cluster.partitions_lost",
                member=self.member_id,
                partitions=partitions_text(gone),
                why=why,
            )
            self.hooks.lost(gone)
