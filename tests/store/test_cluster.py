"""Scale-out on PostgreSQL (issue 12): runtimes as members sharing partitions of one store.

Two members in this process share the partitions fairly; a verb on either one reaches the
execution wherever it runs; a member whose lease moved on is fenced (its write refused, nothing
stored) and lets the execution go; a member that leaves hands its partitions over at once. The
chaos run (three processes, SIGKILL and SIGSTOP) is ``benchmarks/chaos.py``, small here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import asyncpg  # type: ignore[import-untyped]
import pytest

from benchmarks.chaos import chaos
from runtime import Runtime, TaskContext
from runtime.errors import PartitionLost
from runtime.store.postgres import PARTITIONS, PostgresStore, partition_of

pytestmark = pytest.mark.anyio

TTL = 1.0

APPROVAL = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "Ask.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token"},
            "Next": "Nap",
        },
        "Nap": {"Type": "Wait", "Seconds": 1, "End": True},
    },
}

tokens: dict[str, str] = {}


async def ask(payload: Any, context: TaskContext) -> Any:
    tokens[context.execution_arn] = payload["token"]
    return None


@asynccontextmanager
async def member(dsn: str, schema: str) -> AsyncIterator[Runtime]:
    async with (
        PostgresStore.open(dsn, schema=schema) as store,
        Runtime(store, handlers={"Ask": ask}, lease_ttl=TTL, request_poll_interval=0.2) as rt,
    ):
        yield rt


def held(rt: Runtime) -> dict[int, int]:
    assert rt._cluster is not None
    return rt._cluster.member.held


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    with anyio.fail_after(timeout):
        while True:
            if condition():
                return
            await anyio.sleep(0.05)


def name_owned_by(rt: Runtime, machine: str, prefix: str) -> str:
    """An execution name of ``machine`` whose partition ``rt`` holds."""
    mine = held(rt)
    for i in range(10_000):
        arn = f"arn:aws:states:us-east-1:123456789012:execution:{machine}:{prefix}{i}"
        if partition_of(arn) in mine:
            return f"{prefix}{i}"
    raise AssertionError("no name found")


async def test_two_members_share_the_partitions_and_answer_for_each_other(
    postgres_dsn: str, postgres_schema: str
) -> None:
    tokens.clear()
    async with member(postgres_dsn, postgres_schema) as a:
        assert len(held(a)) == PARTITIONS  # alone: everything
        machine = await a.create_state_machine("Approval", APPROVAL)
        async with member(postgres_dsn, postgres_schema) as b:
            # b joins: a hands half over, b takes it; no partition is held twice.
            await until(lambda: len(held(a)) == len(held(b)) == PARTITIONS // 2)
            assert not set(held(a)) & set(held(b))
            # Started on a, owned by b: b runs it (a recorded a request for b).
            name = name_owned_by(b, "Approval", "on-b-")
            started = await a.start_execution(machine.arn, {}, name=name)
            arn = started.execution_arn
            await until(lambda: arn in tokens)
            assert b.engine.holds(arn)
            assert not a.engine.holds(arn)
            # Answered on a, applied by b; waited for on a.
            await a.send_task_success(tokens[arn], {"ok": True})
            done = await a.wait_for_execution(arn, timeout=20)
            assert done.status == "SUCCEEDED"
            assert done.output_value == {"ok": True}
            history = await a.get_execution_history(arn)
            assert [e.id for e in history] == list(range(1, len(history) + 1))
            assert [e.type for e in history].count("TaskSucceeded") == 1
            # b waits on another execution b owns; then b leaves cleanly.
            second = await b.start_execution(machine.arn, {}, name=name + "-2")
            if not b.engine.holds(second.execution_arn):  # the name hashed to a's share
                await until(lambda: a.engine.holds(second.execution_arn))
            await until(lambda: second.execution_arn in tokens)
        # b handed its partitions over at once (no lease time-to-live to wait out) ...
        await until(lambda: len(held(a)) == PARTITIONS, timeout=5)
        # ... and a folds the execution b ran and finishes it.
        await a.send_task_success(tokens[second.execution_arn], {"ok": 2})
        done = await a.wait_for_execution(second.execution_arn, timeout=20)
        assert done.output_value == {"ok": 2}


async def test_an_activity_task_goes_to_one_worker_of_any_member(
    postgres_dsn: str, postgres_schema: str
) -> None:
    async with member(postgres_dsn, postgres_schema) as a:
        activity = await a.create_activity("Check")
        machine = await a.create_state_machine(
            "Checked",
            {
                "StartAt": "Check",
                "States": {
                    "Check": {"Type": "Task", "Resource": activity.activity_arn, "End": True}
                },
            },
        )
        async with member(postgres_dsn, postgres_schema) as b:
            await until(lambda: len(held(a)) == len(held(b)) == PARTITIONS // 2)
            name = name_owned_by(b, "Checked", "on-b-")
            started = await a.start_execution(machine.arn, {"n": 7}, name=name)
            # Workers poll both members at once; b owns the execution, a's worker may win.
            async with anyio.create_task_group() as tg:
                got: list[Any] = []

                async def poll(rt: Runtime, worker: str) -> None:
                    task = await rt.get_activity_task(activity.activity_arn, worker, timeout=3)
                    if task is not None:
                        got.append((worker, task))
                        await rt.send_task_success(task.task_token, {"checked": worker})

                tg.start_soon(poll, a, "on-a")
                tg.start_soon(poll, b, "on-b")
            assert len(got) == 1  # handed out once, across both members
            worker, task = got[0]
            assert task.input == '{"n":7}'
            done = await a.wait_for_execution(started.execution_arn, timeout=20)
            assert done.output_value == {"checked": worker}
            history = await b.get_execution_history(started.execution_arn)
            started_events = [e for e in history if e.type == "ActivityStarted"]
            assert [e.details.get("workerName") for e in started_events] == [worker]


async def test_a_member_whose_lease_moved_on_is_fenced_and_writes_nothing(
    postgres_dsn: str, postgres_schema: str
) -> None:
    tokens.clear()
    async with member(postgres_dsn, postgres_schema) as rt:
        machine = await rt.create_state_machine("Approval", APPROVAL)
        started = await rt.start_execution(machine.arn, {}, name="fenced")
        arn = started.execution_arn
        await until(lambda: arn in tokens)
        stored = len(await rt.store.read(arn))
        # Another member takes the partition over (as after this one paused past its lease):
        # a new owner and epoch, written behind this member's back.
        connection = await asyncpg.connect(
            postgres_dsn, server_settings={"search_path": postgres_schema}
        )
        try:
            await connection.execute(
                "UPDATE leases SET owner = 'someone-else', epoch = epoch + 1, "
                "expires = now() + interval '1 hour' WHERE partition = $1",
                partition_of(arn),
            )
        finally:
            await connection.close()
        # The answer's write is refused inside its transaction: nothing is stored, the
        # member gives the partition and the execution up, and hands the answer to the
        # partition's owner (a request; nobody serves it here, so the wait times out).
        assert rt._cluster is not None
        rt._cluster.member.lease_ttl = 0.1  # the asker's wait: several lease lifetimes + slack
        with pytest.raises(TimeoutError):
            with anyio.fail_after(5):
                await rt.send_task_success(tokens[arn], {"late": True})
        assert not rt.engine.holds(arn)
        assert partition_of(arn) not in held(rt)
        assert len(await rt.store.read(arn)) == stored
        pending = await rt.store.pending_requests(partitions=[partition_of(arn)])
        assert [kind for _, kind, _, _ in pending] == ["send-task-success"]
        # Any write to that partition is refused the same way.
        with pytest.raises(PartitionLost, match="no longer held"):
            await rt._cluster.member.check(None, frozenset({partition_of(arn)}))


@pytest.mark.timeout(300)  # ~20 s alone; more on a loaded machine
async def test_the_chaos_run_loses_and_duplicates_nothing(
    postgres_dsn: str, postgres_schema: str, tmp_path: Path
) -> None:
    """Three member processes; a random one killed (SIGKILL) or paused (SIGSTOP) every few
    seconds; every execution ends as in an uncrashed run."""
    result = await chaos(
        postgres_dsn, postgres_schema, executions=60, seconds=150, every=1.25, lease_ttl=2.0,
        seed=7, workdir=tmp_path,
    )  # fmt: skip
    assert result["kills"] + result["pauses"] >= 2, result
    assert result["not_succeeded"] == 0, result
    assert result["stuck"] == 0, result
    assert result["wrong_output"] == 0, result
    assert result["histories_with_gaps"] == 0, result
    assert result["histories_with_lost_or_duplicated_events"] == 0, result
    assert result["handler_calls_distinct"] == result["handler_results_recorded"], result
    assert result["child_executions"] == 60, result
    takeover = result["takeover_seconds"]
    if takeover["max"] is not None:
        # Every kill was taken over. How fast is measured by benchmarks/chaos.py, not here: on
        # a loaded machine, and when a paused member's row keeps the survivors at their fair
        # share for one more lease, a takeover took up to 7.1 s in CI (lease 2 s); the bound
        # only says none was left waiting for longer than a few leases.
        assert takeover["max"] <= 5 * 2.0 + 5.0, result


async def test_leases_are_renewed_while_a_slow_takeover_loads(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """Folding a large store's open executions may take longer than a lease lives: the member
    renews meanwhile, so no other member can take the partitions it is loading."""
    from runtime.cluster.member import Member, MemberHooks

    async def slow_load(partitions: frozenset[int]) -> None:
        await anyio.sleep(4 * TTL)

    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        member = Member(store, MemberHooks(gained=slow_load, lost=lambda _: None), lease_ttl=TTL)
        async with anyio.create_task_group() as tg:
            tg.start_soon(member.run)  # as the runtime runs it: beside the join
            await member.join()  # took 4 lease lifetimes
            tg.cancel_scope.cancel()
        assert len(member.held) == PARTITIONS
        live = await store.pool.fetchval(
            "SELECT count(*) FROM leases WHERE owner = $1 AND expires > now()", member.member_id
        )
        assert live == PARTITIONS
        await member.leave()


async def test_a_distributed_maps_children_spread_over_the_members(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """A Map Run's children hash to every partition: each member runs the ones it owns, the
    parent (on one member) waits for the others' through the store, and every child runs
    once."""
    ran: dict[str, list[Any]] = {"a": [], "b": []}

    def recorder(who: str) -> Any:
        async def work(payload: Any, context: TaskContext) -> Any:
            ran[who].append(payload)
            return payload * 2

        return work

    definition = {
        "StartAt": "Spread",
        "States": {
            "Spread": {
                "Type": "Map",
                "MaxConcurrency": 8,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Work",
                    "States": {"Work": {"Type": "Task", "Resource": "Work", "End": True}},
                },
                "End": True,
            }
        },
    }
    async with (
        PostgresStore.open(postgres_dsn, schema=postgres_schema) as store_a,
        Runtime(
            store_a, handlers={"Work": recorder("a")}, lease_ttl=TTL, request_poll_interval=0.2
        ) as a,
        PostgresStore.open(postgres_dsn, schema=postgres_schema) as store_b,
        Runtime(
            store_b, handlers={"Work": recorder("b")}, lease_ttl=TTL, request_poll_interval=0.2
        ) as b,
    ):
        await until(lambda: len(held(a)) == len(held(b)) == PARTITIONS // 2)
        machine = await a.create_state_machine("Spreading", definition)
        name = name_owned_by(a, "Spreading", "parent-")
        started = await a.start_execution(machine.arn, list(range(24)), name=name)
        done = await a.wait_for_execution(started.execution_arn, timeout=60)
        (run,) = await b.list_map_runs(started.execution_arn)
        children = await b.list_executions(map_run_arn=run.map_run_arn)

    assert done.status == "SUCCEEDED"
    assert done.output_value == [n * 2 for n in range(24)]
    assert len(children) == 24
    assert sorted(ran["a"] + ran["b"]) == list(range(24))  # each child's Task ran once
    assert ran["a"], "member a ran no child"
    assert ran["b"], "member b ran no child"


async def test_a_start_through_an_alias_routed_to_another_member_runs_the_drawn_version(
    postgres_dsn: str, postgres_schema: str
) -> None:
    """The alias draws the version where the start is asked for; the owner of the execution's
    partition starts that version and records the alias (issue 13)."""
    old = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "v1", "End": True}}}
    new = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "v2", "End": True}}}
    async with member(postgres_dsn, postgres_schema) as a:
        machine = await a.create_state_machine("Aliased", old)
        v1 = await a.publish_state_machine_version(machine.arn)
        await a.update_state_machine(machine.arn, definition=new)
        alias = await a.create_state_machine_alias("stable", [(v1.arn, 100)])
        async with member(postgres_dsn, postgres_schema) as b:
            await until(lambda: len(held(a)) == len(held(b)) == PARTITIONS // 2)
            name = name_owned_by(b, "Aliased", "via-alias-")
            started = await a.start_execution(alias.arn, {}, name=name)
            done = await a.wait_for_execution(started.execution_arn, timeout=20)
            assert partition_of(started.execution_arn) in held(b)  # b started it, asked by a
            assert done.output_value == "v1"
            assert done.state_machine_alias_arn == alias.arn
            assert done.state_machine_version_arn == v1.arn
            history = await b.get_execution_history(started.execution_arn)
            details = history[0].to_aws()["executionStartedEventDetails"]
            assert details["stateMachineAliasArn"] == alias.arn
            assert details["stateMachineVersionArn"] == v1.arn
