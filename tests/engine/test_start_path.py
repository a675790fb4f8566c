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
