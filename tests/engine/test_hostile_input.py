"""Malformed values at the API's edges get AWS's errors, never Python's (issue 11 part 5):
inputs nested deeper than the encoder goes escaped ``start_execution`` as ``RecursionError``,
lone surrogates as ``UnicodeEncodeError``."""

from __future__ import annotations

from typing import Any

import pytest

from runtime import InvalidExecutionInput, TaskContext
from runtime.core.decide import parse_task_token
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}


def nested(depth: int) -> JSON:
    value: JSON = 1
    for _ in range(depth):
        value = [value]
    return value


HOSTILE = {
    "nested-1000": nested(1000),
    "nested-100000": nested(100_000),
    "lone-surrogate": "\ud800",
    "surrogate-key": {"\udfff": 1},
    "not-json": {"a": object()},
    "non-string-key": {1: "one"},
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
async def test_start_execution_refuses_hostile_input_with_invalid_execution_input(
    kind: str,
) -> None:
    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine("Plain", PASS)
        with pytest.raises(InvalidExecutionInput, match="Invalid execution input"):
            await rt.start_execution(machine.arn, HOSTILE[kind])
        with pytest.raises(InvalidExecutionInput, match="Invalid execution input"):
            await rt.start_sync_execution(machine.arn, HOSTILE[kind])
        # Nothing was started, and the runtime goes on.
        assert await rt.list_executions(machine.arn) == []
        assert (await rt.start_sync_execution(machine.arn, {"ok": 1})).status == "SUCCEEDED"


TOKEN_TASK = {
    "StartAt": "Ask",
    "States": {
        "Ask": {
            "Type": "Task",
            "Resource": "ask.waitForTaskToken",
            "Parameters": {"token.$": "$$.Task.Token"},
            "End": True,
        }
    },
}


@pytest.mark.parametrize("kind", ["nested-1000", "lone-surrogate", "not-json"])
async def test_send_task_success_refuses_a_hostile_output(kind: str) -> None:
    tokens: list[str] = []

    async def ask(value: JSON, context: TaskContext) -> JSON:
        tokens.append(value["token"])
        return None

    async with virtual_runtime({"ask": ask}) as rt:
        machine = await rt.create_state_machine("Asker", TOKEN_TASK)
        started = await rt.start_execution(machine.arn, {})
        while not tokens:
            await rt.clock.sleep_until(rt.clock.now() + 1)
        assert parse_task_token(tokens[0]) is not None
        with pytest.raises(InvalidExecutionInput, match="Invalid output"):
            await rt.send_task_success(tokens[0], HOSTILE[kind])
        # The Task still waits, and a proper answer completes it.
        await rt.send_task_success(tokens[0], {"fine": True})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        assert done.status == "SUCCEEDED"
        assert done.output_value == {"fine": True}


@pytest.mark.parametrize("kind", ["nested-1000", "lone-surrogate", "surrogate-key", "not-json"])
async def test_a_handler_result_that_is_not_json_fails_the_execution_with_states_runtime(
    kind: str,
) -> None:
    async def hostile(value: JSON, context: TaskContext) -> JSON:
        return HOSTILE[kind]

    task = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": "hostile",
                # States.ALL does not catch States.Runtime (ASL "Error names").
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }
    async with virtual_runtime({"hostile": hostile}) as rt:
        done = await rt.run(task, {})
        assert done.status == "FAILED"
        assert done.error == "States.Runtime"
        assert done.cause is not None
        assert done.cause.startswith("The task result ")
        assert (await rt.run(PASS, {})).status == "SUCCEEDED"
