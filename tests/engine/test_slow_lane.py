"""The slow lane (issue 11): a step whose JSONata outlasts the event loop's slice is decided again
in a worker process with the full budget, so one heavy expression never holds every other
execution of the runtime; the outcome and the history are those of a loop without a slice.

On asyncio and on uvloop (the worker is an asyncio subprocess)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from runtime import Runtime
from runtime.core.limits import ExecutionLimits
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any

#: 90,000 lambda calls: tens of milliseconds on the loop, far within the 500 ms budget.
HEAVY_TEXT = (
    "{% $sum($map([1..300], function($i) { $count($map([1..300], function($j) { $i * $j })) })) %}"
)
HEAVY = {
    "QueryLanguage": "JSONata",
    "StartAt": "Heavy",
    "States": {
        "Heavy": {"Type": "Pass", "Output": {"n": HEAVY_TEXT}, "Next": "Light"},
        "Light": {"Type": "Pass", "Output": "{% $states.input.n + 1 %}", "End": True},
    },
}
LIGHT = {
    "StartAt": "P0",
    "States": {
        f"P{i}": {"Type": "Pass", "Next": f"P{i + 1}"} if i < 9 else {"Type": "Pass", "End": True}
        for i in range(10)
    },
}
#: Past the budget wherever it runs: the step fails with the engine's own timeout error.
ENDLESS = {
    "QueryLanguage": "JSONata",
    "StartAt": "Loop",
    "States": {
        "Loop": {
            "Type": "Pass",
            "Output": "{% ($f := function($n) { $n > 0 ? $f($n - 1) + $f($n - 1) : 1 }; $f(40)) %}",
            "End": True,
        }
    },
}


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"use_uvloop": False}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


def sliced(slice_ms: float | None, **limits: Any) -> Runtime:
    return virtual_runtime(limits=ExecutionLimits(evaluation_slice_ms=slice_ms, **limits))


async def outcome(rt: Runtime, definition: JSON, name: str) -> tuple[str, str | None, list[Any]]:
    machine = await rt.create_state_machine(name, definition)
    started = await rt.start_execution(machine.arn, {}, name="one")
    done = await rt.wait_for_execution(started.execution_arn)
    history = [
        (event.type, event.details)
        for event in await rt.get_execution_history(started.execution_arn)
    ]
    return done.status, done.output or done.cause, history


async def test_a_step_past_the_slice_is_decided_in_the_slow_lane_with_the_same_outcome() -> None:
    async with sliced(None) as rt:
        expected = await outcome(rt, HEAVY, "heavy")
        assert rt.engine.decider.slow_decisions == 0
    async with sliced(1) as rt:
        assert await outcome(rt, HEAVY, "heavy") == expected
        assert rt.engine.decider.slow_decisions == 1  # the heavy step only
    assert expected[:2] == ("SUCCEEDED", "90001")


async def test_an_evaluation_past_the_budget_fails_alike_in_the_slow_lane() -> None:
    async with sliced(None) as rt:
        expected = await outcome(rt, ENDLESS, "endless")
    async with sliced(1) as rt:
        assert await outcome(rt, ENDLESS, "endless") == expected
        assert rt.engine.decider.slow_decisions == 1
    status, cause, _ = expected
    assert status == "FAILED"
    assert cause is not None
    assert "D1012" in cause


async def test_other_executions_go_on_while_a_step_is_in_the_slow_lane() -> None:
    async with Runtime("memory", limits=ExecutionLimits(evaluation_slice_ms=1)) as rt:
        heavy = await rt.create_state_machine("heavy", HEAVY)
        light = await rt.create_state_machine("light", LIGHT)
        ended: list[str] = []

        async def run(arn: str, label: str) -> None:
            started = await rt.start_execution(arn, {})
            done = await rt.wait_for_execution(started.execution_arn)
            assert done.status == "SUCCEEDED"
            ended.append(label)

        slow = asyncio.ensure_future(run(heavy.arn, "heavy"))
        while rt.engine.decider.slow_lane_busy is False:  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.001)
        await asyncio.gather(*(run(light.arn, f"light{i}") for i in range(20)))
        await slow
    assert ended[-1] == "heavy"  # 20 light executions ran while the heavy step was decided
    assert len(ended) == 21


#: 8,191 calls of a recursive function: slow (milliseconds), and next to no memory.
DOUBLING = {
    "QueryLanguage": "JSONata",
    "StartAt": "Doubling",
    "States": {
        "Doubling": {
            "Type": "Pass",
            "Output": "{% ($f := function($n) { $n > 0 ? $f($n - 1) + $f($n - 1) : 1 }; $f(12)) %}",
            "End": True,
        }
    },
}
#: 400,000 engine values at once: about 30 MiB, in about 100 ms.
HUNGRY = {
    "QueryLanguage": "JSONata",
    "StartAt": "Hungry",
    "States": {
        "Hungry": {
            "Type": "Pass",
            "Output": "{% $count($map([1..100000], function($v) { [$v, $v, $v, $v] })) %}",
            "End": True,
        }
    },
}


async def test_a_worker_past_its_memory_fails_its_execution_and_the_next_starts_afresh() -> None:
    async with sliced(1, slow_lane_memory_bytes=16 * 1024 * 1024) as rt:
        status, cause, _ = await outcome(rt, HUNGRY, "hungry")
        assert status == "FAILED"
        assert cause is not None
        assert "SlowLaneFailed" in cause
        assert "more than when it began, past the 16777216 it may" in cause
        # The runtime goes on, and the next slow step gets a fresh worker.
        assert (await outcome(rt, LIGHT, "light"))[0] == "SUCCEEDED"
        assert (await outcome(rt, DOUBLING, "doubling"))[:2] == ("SUCCEEDED", "4096")
        assert rt.engine.decider.slow_decisions == 1
    async with sliced(1) as rt:  # within the default allowance it succeeds
        assert (await outcome(rt, HUNGRY, "hungry"))[:2] == ("SUCCEEDED", "100000")


#: A distributed Map whose ItemSelector is heavy: the slow decision starts Map Run children,
#: whose effect names the (compiled, unpicklable) ItemProcessor.
DISTRIBUTED = {
    "QueryLanguage": "JSONata",
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "Items": "{% [1, 2, 3] %}",
            "ItemSelector": {"v": "{% $states.context.Map.Item.Value %}", "n": HEAVY_TEXT},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "Add",
                "States": {
                    "Add": {
                        "Type": "Pass",
                        "Output": "{% $states.input.v + $states.input.n %}",
                        "End": True,
                    }
                },
            },
            "End": True,
        }
    },
}


async def test_a_slow_step_that_starts_map_run_children_comes_back_whole() -> None:
    async with sliced(None) as rt:
        expected = await outcome(rt, DISTRIBUTED, "each")
    async with sliced(1) as rt:
        got = await outcome(rt, DISTRIBUTED, "each")
        assert rt.engine.decider.slow_decisions >= 1
    assert got[:2] == expected[:2] == ("SUCCEEDED", "[90001,90002,90003]")


async def test_heavy_steps_waiting_for_the_slow_lane_leave_the_workers_free() -> None:
    async with Runtime("memory", limits=ExecutionLimits(evaluation_slice_ms=1)) as rt:
        heavy = await rt.create_state_machine("heavy", HEAVY)
        light = await rt.create_state_machine("light", LIGHT)
        heavies = [await rt.start_execution(heavy.arn, {}) for _ in range(8)]  # > 4 workers
        while rt.engine.decider.slow_lane_busy is False:  # noqa: ASYNC110 - no event to await
            await asyncio.sleep(0.001)
        for _ in range(5):
            started = await rt.start_execution(light.arn, {})
            done = await rt.wait_for_execution(started.execution_arn)
            assert done.status == "SUCCEEDED"
        # The light executions ran while heavy steps still waited for the lane.
        assert rt.engine.decider.slow_decisions < len(heavies)
        for started in heavies:
            done = await rt.wait_for_execution(started.execution_arn)
            assert (done.status, done.output) == ("SUCCEEDED", "90001")
