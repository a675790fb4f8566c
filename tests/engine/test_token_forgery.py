"""Issue 11: a task token cannot be predicted from the random values an execution can observe.

The attack: an execution emits 624 ``States.MathRandom(0, 4294967295)`` values (each one raw
32-bit output of the Mersenne Twister), which give away the generator's whole state; a clone of
the generator then predicts everything it draws next. Before the fix the token's secret was the
next two 128-bit draws of that same generator, so a forged ``send_task_success`` completed
someone else's task. The test shows the clone does predict the observable stream (the attack model
is sound) and that nothing it predicts appears in the token, and that the forged token is refused.
"""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from typing import Any

import msgspec
import pytest

from runtime import InvalidToken, Runtime, TaskContext, TaskDoesNotExist
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
RESOURCE = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
DRAWS = 624


def _untemper(y: int) -> int:
    """Invert the Mersenne Twister's output tempering (one 32-bit output -> one state word)."""
    y ^= y >> 18
    y ^= (y << 15) & 0xEFC60000
    for _ in range(7):
        y ^= (y << 7) & 0x9D2C5680
    y &= 0xFFFFFFFF
    for _ in range(3):
        y ^= y >> 11
    return y & 0xFFFFFFFF


def clone_generator(outputs: list[int]) -> random.Random:
    """A ``random.Random`` in the state that produced ``outputs`` (624 consecutive 32-bit draws)."""
    state = tuple(_untemper(value) for value in outputs)
    clone = random.Random()
    clone.setstate((3, (*state, 624), None))
    return clone


def spy_machine() -> dict[str, JSON]:
    """Draw 624 observable values, then wait for a token (with one more draw beside it)."""
    draws = {f"r{i}.$": "States.MathRandom(0, 4294967295)" for i in range(DRAWS)}
    return {
        "StartAt": "Spy",
        "States": {
            "Spy": {"Type": "Pass", "Parameters": draws, "Next": "Approve"},
            "Approve": {
                "Type": "Task",
                "Resource": RESOURCE,
                "Parameters": {
                    "token.$": "$$.Task.Token",
                    "next.$": "States.MathRandom(0, 4294967295)",
                    "observed.$": "$",
                },
                "End": True,
            },
        },
    }


class Capture:
    def __init__(self) -> None:
        self.event: JSON = None
        self.arrived = asyncio.Event()

    async def __call__(self, event: JSON, context: TaskContext) -> JSON:
        self.event = event
        self.arrived.set()
        return {"MessageId": "m-1"}


def token_secret(token: str) -> str:
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    parts = msgspec.json.decode(raw)
    secret: str = parts[-1]
    return secret


async def test_math_random_does_not_predict_the_task_token() -> None:
    capture = Capture()
    async with virtual_runtime({"arn:aws:states:::sqs:sendMessage": capture}) as rt:
        machine = await rt.create_state_machine("Spy", spy_machine())
        started = await rt.start_execution(machine.arn, {})
        await capture.arrived.wait()
        observed = [int(capture.event["observed"][f"r{i}"]) for i in range(DRAWS)]
        token: str = capture.event["token"]
        clone = clone_generator(observed)

        # The attack model is sound: the clone predicts the generator's next output exactly.
        predicted_next = [clone.getrandbits(32) for _ in range(64)]
        assert int(capture.event["next"]) in predicted_next

        # Nothing the clone can produce appears in the token: not the pre-fix construction (two
        # 128-bit draws as UUID hex), nor any 128-bit window of the next draws.
        clone = clone_generator(observed)
        guesses = set()
        for _ in range(8):
            first = uuid.UUID(int=clone.getrandbits(128), version=4).hex
            second = uuid.UUID(int=clone.getrandbits(128), version=4).hex
            guesses.add(first + second)
            guesses.add(first)
        secret = token_secret(token)
        assert all(guess not in secret and secret not in guess for guess in guesses)

        # A token forged from the best guess is refused, and the real one still works.
        forged_parts = msgspec.json.decode(
            base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        )
        forged_parts[-1] = sorted(guesses)[0]
        forged = base64.urlsafe_b64encode(msgspec.json.encode(forged_parts)).decode().rstrip("=")
        with pytest.raises((InvalidToken, TaskDoesNotExist)):
            await rt.send_task_success(forged, {"forged": True})
        await rt.send_task_success(token, {"approved": True})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert done.status == "SUCCEEDED"
    assert msgspec.json.decode(done.output or "null") == {"approved": True}


async def test_each_token_is_distinct_within_one_decision() -> None:
    """A Map of token Tasks started in one decision: every token has its own secret."""
    capture: list[str] = []
    arrived = asyncio.Event()

    async def handler(event: JSON, context: TaskContext) -> JSON:
        capture.append(event["token"])
        if len(capture) == 5:
            arrived.set()
        return None

    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {
                    "StartAt": "Approve",
                    "States": {
                        "Approve": {
                            "Type": "Task",
                            "Resource": RESOURCE,
                            "Parameters": {"token.$": "$$.Task.Token"},
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }
    rt: Runtime
    async with virtual_runtime({"arn:aws:states:::sqs:sendMessage": handler}) as rt:
        machine = await rt.create_state_machine("Many", definition)
        started = await rt.start_execution(machine.arn, {"items": [1, 2, 3, 4, 5]})
        await arrived.wait()
        secrets = {token_secret(token) for token in capture}
        assert len(secrets) == 5
        for token in capture:
            await rt.send_task_success(token, {})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert done.status == "SUCCEEDED"
