"""Histories with task tokens, activities, stops, redrives and children re-decide unchanged
(``runtime.replayer.check``): every new event is the decision's, or the shell's applied as is."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from runtime import Runtime, TaskContext, TaskFailed, check, load_definition
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any


async def assert_replays(rt: Runtime, definition: dict[str, JSON], arn: str) -> None:
    events = await rt.get_execution_history(arn, include_map_runs=True)
    result = check(load_definition(json.dumps(definition)), events)
    assert result.compatible, result


async def test_token_task_with_heartbeat_retry_replays() -> None:
    tokens: list[str] = []
    arrived = asyncio.Event()

    async def ask(event: JSON, context: TaskContext) -> JSON:
        assert context.task_token is not None
        tokens.append(context.task_token)
        arrived.set()
        return {"sent": True}

    definition = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "Ask.waitForTaskToken",
                "HeartbeatSeconds": 10,
                "Retry": [{"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 1}],
                "End": True,
            }
        },
    }
    async with virtual_runtime({"Ask": ask}) as rt:
        machine = await rt.create_state_machine("M", definition)
        started = await rt.start_execution(machine.arn, {})
        while len(tokens) < 2:
            arrived.clear()
            await arrived.wait()
        await rt.send_task_success(tokens[1], {"ok": 1})
        await rt.wait_for_execution(started.execution_arn, timeout=10)
        await assert_replays(rt, definition, started.execution_arn)


async def test_activity_history_replays() -> None:
    async with virtual_runtime() as rt:
        activity = await rt.create_activity("a")
        definition = {
            "StartAt": "Work",
            "States": {
                "Work": {
                    "Type": "Task",
                    "Resource": activity.activity_arn,
                    "Retry": [{"ErrorEquals": ["Again"], "IntervalSeconds": 1}],
                    "End": True,
                }
            },
        }
        machine = await rt.create_state_machine("M", definition)
        started = await rt.start_execution(machine.arn, {})
        first = await rt.get_activity_task(activity.activity_arn, "w", timeout=5)
        assert first is not None
        await rt.send_task_failure(first.task_token, "Again", "once more")
        second = await rt.get_activity_task(activity.activity_arn, "w", timeout=5)
        assert second is not None
        await rt.send_task_success(second.task_token, {"done": True})
        await rt.wait_for_execution(started.execution_arn, timeout=10)
        await assert_replays(rt, definition, started.execution_arn)


async def test_stopped_map_and_redrive_replay() -> None:
    calls: list[JSON] = []

    async def work(event: JSON, context: TaskContext) -> JSON:
        calls.append(event)
        if len(calls) <= 2:
            raise TaskFailed("Broken", "first run")
        return event

    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Work",
                    "States": {"Work": {"Type": "Task", "Resource": "Work", "End": True}},
                },
                "End": True,
            }
        },
    }
    async with virtual_runtime({"Work": work}) as rt:
        machine = await rt.create_state_machine("M", definition)
        started = await rt.start_execution(machine.arn, [1, 2])
        failed = await rt.wait_for_execution(started.execution_arn, timeout=10)
        assert failed.status == "FAILED"
        await rt.redrive_execution(started.execution_arn)
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        assert done.output_value == [1, 2]
        await assert_replays(rt, definition, started.execution_arn)
