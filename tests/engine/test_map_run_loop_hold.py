"""A distributed Map whose ItemSelector builds a large input for every child must not hold the
event loop while it starts them (issue 11, map-family fuzz seed 10002713: 1,000 children of
229 KiB each, ``States.JsonToString($)`` rendered for each, held it for 7.4 s in one decision).

A decision counts the children's inputs as text it encoded and stops starting children at
``CHILD_INPUT_TEXT_PER_DECISION``; the next decision starts the next ones. Also here: a Map
Run's child released to another member is waited for there (``Engine.spawn`` from the
callback ``when_ended`` runs).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from runtime.core.decide import decide, start_event
from runtime.core.effects import MAP_RUN_CHILD, Wake
from runtime.core.evolve import fold
from runtime.core.mapruns import CHILD_INPUT_TEXT_PER_DECISION
from runtime.definition.load import load_definition
from runtime.testing import virtual_runtime

JSON = Any

#: Integers render slowly (Python's encoder, for Jackson's number format): 10,000 of them take
#: about 2 ms to render, 40 times the cost of a string of the same length.
PADDING = list(range(10_000))
ITEMS = 600


def selecting_map(max_concurrency: int) -> dict[str, JSON]:
    """A distributed Map over ``$.items`` whose ItemSelector renders the whole input."""
    return {
        "StartAt": "Fan",
        "States": {
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": max_concurrency,
                "ItemSelector": {"whole.$": "States.JsonToString($)", "n.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Keep",
                    "States": {"Keep": {"Type": "Pass", "OutputPath": "$.n", "End": True}},
                },
                "End": True,
            }
        },
    }


def test_a_decision_stops_starting_children_at_its_text_budget() -> None:
    machine = load_definition(json.dumps(selecting_map(ITEMS)))
    data = {"items": list(range(ITEMS)), "padding": PADDING}
    first = start_event(
        execution_arn="arn:aws:states:us-east-1:123456789012:execution:Fan:run-1",
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:Fan",
        name="run-1",
        input=data,
        now=1_700_000_000.0,
    )
    state = fold([first])
    child_input = len(json.dumps({"whole": json.dumps(data, separators=(",", ":")), "n": 0}))

    decision = decide(machine, state, Wake(now=1_700_000_000.0, seed=1))

    children = [task for task in decision.tasks if task.resource == MAP_RUN_CHILD]
    # Each child's input is ~60,000 characters: the budget admits a few dozen, not 600.
    assert 1 <= len(children) <= CHILD_INPUT_TEXT_PER_DECISION // child_input + 1
    assert decision.more  # asks to be called again for the others
    # The next decisions go on where it stopped: each child started once, in order.
    indexes = [task.input.index for task in children]
    while decision.more:
        decision = decide(machine, state, Wake(now=1_700_000_000.0, seed=1))
        more = [task for task in decision.tasks if task.resource == MAP_RUN_CHILD]
        indexes += [task.input.index for task in more]
    assert indexes == list(range(ITEMS))


@pytest.mark.anyio
@pytest.mark.timeout(120)
async def test_starting_large_selected_children_leaves_the_event_loop_free() -> None:
    holds: list[float] = []

    async def sample() -> None:
        # The longest gap between two wake-ups of a 5 ms sleeper: how long the loop was held.
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            holds.append(now - last - 0.005)
            last = now

    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine("Fan", selecting_map(ITEMS))
        sampler = asyncio.ensure_future(sample())
        try:
            started = await rt.start_execution(
                machine.arn, {"items": list(range(ITEMS)), "padding": PADDING}
            )
            done = await rt.wait_for_execution(started.execution_arn, timeout=100)
        finally:
            sampler.cancel()

    assert done.status == "SUCCEEDED", done.cause
    assert done.output_value == list(range(ITEMS))
    # Before: the first decision rendered all 600 inputs in one turn (1.2 s here, 7.4 s for
    # the fuzz's 40,000-item Map); now a few dozen per decision, each turn tens of ms.
    assert max(holds) < 0.4, f"the event loop was held for {max(holds) * 1000:.0f} ms"


def test_work_spawned_when_a_released_execution_is_let_go_runs() -> None:
    # A Map Run's child handed to another member (``Engine.release``) wakes the parent's
    # ``when_ended`` callback, which spawns a wait for the child's end there. Spawned from that
    # plain event-loop callback, anyio could not tell its backend (NoEventLoopError) under a
    # plain ``asyncio.run`` (as the fuzz and an embedding service run it; anyio's own runner
    # marks its context): the wait was lost and the iteration never ended.
    waiting = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 60, "End": True}}}

    async def scenario() -> None:
        async with virtual_runtime() as rt:
            machine = await rt.create_state_machine("Nap", waiting)
            started = await rt.start_execution(machine.arn, {})
            ran = asyncio.Event()

            async def look_again() -> None:
                ran.set()

            engine = rt.engine
            assert engine.when_ended(started.execution_arn, lambda: engine.spawn(look_again()))
            engine.release([started.execution_arn])
            await asyncio.wait_for(ran.wait(), 5)

    asyncio.run(scenario())
