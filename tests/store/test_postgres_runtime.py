"""End to end on PostgreSQL: a Runtime over ``PostgresStore`` runs a Task and a Wait on
virtual time, and a second Runtime (a restarted process) finishes an execution the first left
waiting (a Wait's timer is re-derived from the stored history on open)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from runtime import Runtime, TaskContext
from runtime.store.postgres import PostgresStore

pytestmark = pytest.mark.anyio

MACHINE = {
    "StartAt": "Double",
    "States": {
        "Double": {"Type": "Task", "Resource": "Double", "Next": "Nap"},
        "Nap": {"Type": "Wait", "Seconds": 86_400, "Next": "Again"},
        "Again": {"Type": "Task", "Resource": "Double", "End": True},
    },
}

calls: list[int] = []


async def double(payload: Any, context: TaskContext) -> Any:
    calls.append(payload["n"])
    return {"n": payload["n"] * 2}


async def test_task_and_wait_on_postgres(postgres_dsn: str, postgres_schema: str) -> None:
    calls.clear()
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        async with Runtime(store, handlers={"Double": double}, virtual_time=True) as rt:
            machine = await rt.create_state_machine("Doubler", MACHINE)
            started = await rt.start_execution(machine.arn, {"n": 3})
            done = await rt.wait_for_execution(started.execution_arn, timeout=30)
            history = await rt.get_execution_history(started.execution_arn)
        assert (done.status, done.error, done.cause) == ("SUCCEEDED", None, None)
        assert done.output_value == {"n": 12}
        assert done.stop_date is not None
        assert done.stop_date - done.start_date >= 86_400  # virtual time jumped the Wait
        assert calls == [3, 6]
        stored = await store.read(started.execution_arn)
        assert [e.id for e in stored] == list(range(1, len(stored) + 1))
        assert len(stored) == len(history)
        types = [e.type for e in stored]
        assert types[0] == "ExecutionStarted"
        assert types[-1] == "ExecutionSucceeded"
        assert types.count("TaskSucceeded") == 2
        assert "WaitStateExited" in types
        record = await store.get_execution(started.execution_arn)
        assert record is not None
        assert (record.status, record.last_seq) == ("SUCCEEDED", len(stored))


async def test_a_restarted_runtime_finishes_the_wait(
    postgres_dsn: str, postgres_schema: str
) -> None:
    calls.clear()
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        async with Runtime(store, handlers={"Double": double}) as rt:  # wall clock: it waits
            machine = await rt.create_state_machine("Doubler", MACHINE)
            started = await rt.start_execution(machine.arn, {"n": 5})
            for _ in range(1000):  # until the Wait is entered (its timer is the engine's)
                types = [e.type for e in await store.read(started.execution_arn)]
                if "WaitStateEntered" in types:
                    break
                await anyio.sleep(0.01)
        assert calls == [5]
        assert (await store.read(started.execution_arn))[-1].type == "WaitStateEntered"
    async with (
        PostgresStore.open(postgres_dsn, schema=postgres_schema) as store,
        Runtime(store, handlers={"Double": double}, virtual_time=True) as rt,
    ):
        done = await rt.wait_for_execution(started.execution_arn, timeout=30)
    assert done.status == "SUCCEEDED"
    assert done.output_value == {"n": 20}
    assert calls == [5, 10]


async def test_runtime_opens_a_postgresql_dsn_and_applies_requests(postgres_dsn: str) -> None:
    """``Runtime(store="postgresql://...")`` opens the store itself (the database's default
    schema, used by no other test), and an operator's request recorded in it is applied."""
    calls.clear()
    async with Runtime(
        postgres_dsn, handlers={"Double": double}, virtual_time=True, request_poll_interval=None
    ) as rt:  # no poll: this test applies the request itself
        assert isinstance(rt.store, PostgresStore)
        machine = await rt.create_state_machine("FromDsn", MACHINE)
        request_id = await rt.store.add_request(
            "start",
            json.dumps({"stateMachineArn": machine.arn, "name": "by-request", "input": {"n": 5}}),
            0.0,
        )
        assert await rt.apply_requests() == 1
        arn = machine.arn.replace(":stateMachine:", ":execution:") + ":by-request"
        done = await rt.wait_for_execution(arn, timeout=30)
        request = await rt.store.get_request(request_id)
    assert done.output_value == {"n": 20}
    assert request is not None
    assert request[1] == "DONE"


async def test_a_dsn_names_its_schema(postgres_dsn: str, postgres_schema: str) -> None:
    """``?schema=NAME`` in the URL (Statemill's, not libpq's) keeps the tables in that schema."""
    async with Runtime(f"{postgres_dsn}?schema={postgres_schema}", virtual_time=True) as rt:
        assert isinstance(rt.store, PostgresStore)
        assert rt.store.schema == postgres_schema
        machine = await rt.create_state_machine("InSchema", {"StartAt": "P", "States": {
            "P": {"Type": "Pass", "End": True}}})  # fmt: skip
    async with PostgresStore.open(postgres_dsn, schema=postgres_schema) as store:
        assert [m.arn for m in await store.list_state_machines()] == [machine.arn]
