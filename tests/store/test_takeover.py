"""Takeover time on PostgreSQL (issue 12: "from the kill to the first event the new owner
appends, at most the lease time-to-live plus 2 s").

A member that stops renewing (here: one whose rounds are simply not run any more, as after a
SIGKILL) loses its partitions when its leases expire; a surviving member claims them as they
expire, not up to a round later, and never before. The stopped member, would it wake, is
fenced. ``benchmarks/chaos.py`` measures the whole takeover with killed processes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import anyio
import pytest

from runtime import Runtime
from runtime.cluster.member import Member, MemberHooks
from runtime.errors import PartitionLost
from runtime.store.postgres import PARTITIONS, PostgresStore, partition_of

pytestmark = pytest.mark.anyio

TTL = 2.0
#: The survivor's rounds: long enough that a claim a round late shows (without looking at the
#: expiry it would come about a second late here), short enough to renew its own leases.
SURVIVOR_ROUND = 1.5


def _ignore(_partitions: frozenset[int]) -> None:
    return None


async def _nothing(_partitions: frozenset[int]) -> None:
    return None


async def _until(condition: Callable[[], bool], *, timeout: float, step: float) -> None:
    with anyio.fail_after(timeout):
        while True:
            if condition():
                return
            await anyio.sleep(step)


async def test_a_dead_members_partitions_are_claimed_as_its_leases_expire(
    postgres_dsn: str, postgres_schema: str
) -> None:
    gained: list[tuple[float, frozenset[int]]] = []

    async def record(partitions: frozenset[int]) -> None:
        gained.append((time.time(), partitions))

    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        doomed = Member(store, MemberHooks(gained=_nothing, lost=_ignore), lease_ttl=TTL)
        await doomed.round()
        assert len(doomed.held) == PARTITIONS
        survivor = Member(
            store,
            MemberHooks(gained=record, lost=_ignore),
            lease_ttl=TTL,
            round_seconds=SURVIVOR_ROUND,
        )
        await survivor.round()  # registers; every lease is the doomed member's, fresh
        assert survivor.held == {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(survivor.run)
            # The doomed member's last renewal comes just after one of the survivor's
            # rounds: its leases then expire half a round before the survivor's round after
            # next, which without looking at the expiry would claim them that late.
            await _until(lambda: survivor._rounds >= 2, timeout=10, step=0.002)
            await doomed.table.heartbeat(TTL)
            renewed = await doomed.table.renew(doomed.held, TTL)
            assert len(renewed) == PARTITIONS
            expires = await store.pool.fetchval(
                "SELECT extract(epoch FROM max(expires))::float8 FROM leases WHERE owner = $1",
                doomed.member_id,
            )
            await _until(lambda: len(survivor.held) == PARTITIONS, timeout=4 * TTL, step=0.01)
            tg.cancel_scope.cancel()
        claimed_at = gained[0][0]
        assert 0 <= claimed_at - expires < 0.5, (claimed_at - expires, gained)
        assert {p: e - 1 for p, e in survivor.held.items()} == doomed.held  # epochs moved on
        # The doomed member, would it wake, is fenced on its first write.
        async with store.pool.acquire() as connection, connection.transaction():
            with pytest.raises(PartitionLost, match="no longer held"):
                await doomed.check(connection, frozenset({0, PARTITIONS - 1}))
        assert 0 not in doomed.held  # given up
        assert PARTITIONS - 1 not in doomed.held
        await survivor.leave()


NAP = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 1, "End": True}}}
QUICK = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


async def test_a_takeover_lets_executions_no_request_is_about_decide_before_the_requests(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """The partitions' pending requests (here: 300 starts) are applied during a takeover;
    an open execution none of them is about decides at once (its Wait fell due during the
    gap), not after them. Before: after the first 100 (a takeover applies up to 100)."""
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        async with Runtime(store, lease_ttl=TTL, request_poll_interval=0.2) as first:
            napper = await first.create_state_machine("Napper", NAP)
            quick = await first.create_state_machine("Quick", QUICK)
            started = await first.start_execution(napper.arn, {}, name="napping")
        # ``first`` left (its leases handed over at once); starts recorded since then
        # wait for the next owner of the napping execution's partition.
        partition = partition_of(started.execution_arn)
        for i in range(300):
            body = {"stateMachineArn": quick.arn, "name": f"q{i}", "input": "{}"}
            await store.add_request("start", json.dumps(body), time.time(), partition)
        await anyio.sleep(1.2)  # the Wait is due
        async with Runtime(store, lease_ttl=TTL, request_poll_interval=0.2) as second:
            done = await second.wait_for_execution(started.execution_arn, timeout=30)
            assert done.status == "SUCCEEDED"
            assert done.stop_date is not None
            before = await store.pool.fetchval(
                "SELECT count(*) FROM executions WHERE state_machine_arn = $1 AND start_date < $2",
                quick.arn,
                done.stop_date,
            )
            assert before < 100, before
