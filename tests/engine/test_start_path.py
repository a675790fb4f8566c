"""The start path (issue 10 part 4): generated names, the recorded input, and admission.

``start_execution`` names an execution with a version-4 UUID drawn from the engine's pool of OS
randomness, records the input text once (the state is evolved from the value decoded from that
text, never from the caller's objects) and takes its admission slot without a coroutine unless
backpressure applies.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from runtime import Runtime
from runtime.core.decide import dumps
from runtime.engine.entropy import uuid4_text
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
ECHO = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
BLOCK = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "block", "End": True}}}


def test_uuid4_text_is_the_standard_version_4_form() -> None:
    rng = random.Random(10)
    for bits in [0, (1 << 128) - 1, *(rng.getrandbits(128) for _ in range(2000))]:
        assert uuid4_text(bits) == str(uuid.UUID(int=bits, version=4))


async def test_generated_names_are_distinct_version_4_uuids() -> None:
    async with virtual_runtime() as rt:
        sm = await rt.create_state_machine("echo", ECHO)
        names = set()
        for _ in range(300):
            started = await rt.start_execution(sm.arn, {})
            name = started.execution_arn.rsplit(":", 1)[1]
            parsed = uuid.UUID(name)
            assert parsed.version == 4
            assert str(parsed) == name
            names.add(name)
        assert len(names) == 300


async def test_an_empty_name_is_generated_too() -> None:
    async with virtual_runtime() as rt:
        sm = await rt.create_state_machine("echo", ECHO)
        started = await rt.start_execution(sm.arn, {}, name="")
        assert uuid.UUID(started.execution_arn.rsplit(":", 1)[1]).version == 4


async def test_express_arns_end_in_a_version_4_uuid() -> None:
    async with virtual_runtime() as rt:
        sm = await rt.create_state_machine("fast", ECHO, type="EXPRESS")
        started = await rt.start_execution(sm.arn, {}, name="run")
        *_, name, unique = started.execution_arn.split(":")
        assert name == "run"
        assert uuid.UUID(unique).version == 4


async def test_the_input_is_recorded_as_its_text_and_run_from_a_copy() -> None:
    value: dict[str, JSON] = {"b": [1, 2.5, "é"], "a": {"z": None, "y": True}}
    async with virtual_runtime() as rt:
        sm = await rt.create_state_machine("echo", ECHO)
        started = await rt.start_execution(sm.arn, value, name="copy")
        value["b"].append("changed after the start")  # the caller's object is not the state
        done = await rt.wait_for_execution(started.execution_arn)
        history = await rt.get_execution_history(started.execution_arn)
    expected = dumps({"b": [1, 2.5, "é"], "a": {"z": None, "y": True}})
    assert history[0].details["input"] == expected
    assert done.input == expected
    assert done.output == expected


async def test_a_start_waits_while_memory_is_full_and_goes_on_when_room_is_made() -> None:
    release = anyio.Event()

    async def block(payload: JSON, context: object) -> JSON:
        await release.wait()
        return payload

    async with Runtime("memory", handlers={"block": block}) as rt:
        sm = await rt.create_state_machine("block", BLOCK)
        rt.engine.admission_control.max_live = 1
        first = await rt.start_execution(sm.arn, {}, name="first")
        second: list[str] = []

        async def start_second() -> None:
            started = await rt.start_execution(sm.arn, {}, name="second")
            second.append(started.execution_arn)

        async with anyio.create_task_group() as tg:
            tg.start_soon(start_second)
            for _ in range(50):
                await anyio.lowlevel.checkpoint()
            assert second == []  # held back: memory holds max_live executions
            release.set()
        assert (await rt.describe_execution(first.execution_arn)).status == "SUCCEEDED"
        assert len(second) == 1
        assert second[0].endswith(":second")
        assert (await rt.wait_for_execution(second[0])).status == "SUCCEEDED"


CHAIN = {
    "StartAt": "S0",
    "States": {
        **{f"S{i}": {"Type": "Pass", "Next": f"S{i + 1}"} for i in range(9)},
        "S9": {"Type": "Pass", "End": True},
    },
}


async def test_a_start_on_an_idle_memory_engine_returns_with_its_first_decision_made() -> None:
    """The creation is written in the caller's task (no hop to the committer), then the loop
    turns once so that the worker decides first, as it did after the committer's hop: a
    client that describes the execution right after the start sees the chain ended."""
    async with Runtime("memory") as rt:
        sm = await rt.create_state_machine("chain", CHAIN)
        for index in range(3):
            started = await rt.start_execution(sm.arn, {"i": index})
            described = await rt.describe_execution(started.execution_arn)
            assert described.status == "SUCCEEDED"
            assert described.output_value == {"i": index}


async def test_one_execution_at_a_time_costs_one_loop_turn_and_one_future() -> None:
    """``peers`` a, counted (issue 10): the start writes the creation itself, the worker
    decides and writes the events itself, and the client finds the execution ended; it
    was two turns and three futures with the committer's hop and a wait per execution."""
    import asyncio

    loop = asyncio.get_running_loop()
    if not isinstance(loop, asyncio.BaseEventLoop):
        pytest.skip("counts the pure-Python loop's turns")
    counts = {"futures": 0}
    create_future = loop.create_future

    def counted() -> asyncio.Future[Any]:
        counts["futures"] += 1
        return create_future()

    async with Runtime("memory") as rt:
        sm = await rt.create_state_machine("chain", CHAIN)
        for index in range(5):  # warm up (the pool of seeds, the first decision)
            await rt.wait_for_execution(
                (await rt.start_execution(sm.arn, {"i": index})).execution_arn
            )
        loop.create_future = counted  # type: ignore[method-assign]
        turns = loop._selector.select  # type: ignore[attr-defined]
        selects = 0

        def select(timeout: float | None = None) -> Any:
            nonlocal selects
            selects += 1
            return turns(timeout)

        loop._selector.select = select  # type: ignore[attr-defined]
        try:
            for index in range(20):
                started = await rt.start_execution(sm.arn, {"i": index})
                done = await rt.wait_for_execution(started.execution_arn)
                assert done.status == "SUCCEEDED"
        finally:
            loop._selector.select = turns  # type: ignore[attr-defined]
            del loop.create_future
    assert selects <= 20
    assert counts["futures"] <= 20


async def test_a_duplicate_name_started_inline_is_the_running_execution_or_refused() -> None:
    """The creation written in the caller's task raises what the committer's did: a name
    taken by an execution that ended is ExecutionAlreadyExists, whatever the input."""
    from runtime import ExecutionAlreadyExists

    async with Runtime("memory") as rt:
        sm = await rt.create_state_machine("chain", CHAIN)
        first = await rt.start_execution(sm.arn, {"i": 1}, name="once")
        await rt.wait_for_execution(first.execution_arn)
        with pytest.raises(ExecutionAlreadyExists, match="once"):
            await rt.start_execution(sm.arn, {"i": 1}, name="once")
        with pytest.raises(ExecutionAlreadyExists, match="once"):
            await rt.start_execution(sm.arn, {"i": 2}, name="once")
        again = await rt.start_execution(sm.arn, {"i": 3}, name="twice")
        assert (await rt.wait_for_execution(again.execution_arn)).status == "SUCCEEDED"
