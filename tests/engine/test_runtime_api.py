"""The Runtime API on asyncio: stores, virtual time, handlers and their failures, API shapes."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from runtime import (
    ExecutionAlreadyExists,
    InvalidDefinition,
    Runtime,
    TaskContext,
    TaskFailed,
)
from runtime.testing import history_types, virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:{}"
DAY = 24 * 3600


def task_machine(resource: str, **fields: JSON) -> dict[str, JSON]:
    task = {"Type": "Task", "Resource": resource, "End": True, **fields}
    return {"StartAt": "Work", "States": {"Work": task}}


async def double(event: JSON, context: TaskContext) -> JSON:
    return {"n": event["n"] * 2}


# -- stores -------------------------------------------------------------------------------------


async def test_sqlite_store_keeps_executions_across_runtimes(tmp_path: Path) -> None:
    path = str(tmp_path / "statemill.db")
    async with Runtime(path, handlers={"Double": double}, virtual_time=True) as rt:
        machine = await rt.create_state_machine("Doubler", task_machine("Double"))
        started = await rt.start_execution(machine.arn, {"n": 21}, name="first")
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        history = [event.to_aws() for event in await rt.get_execution_history(done.execution_arn)]
    assert done.status == "SUCCEEDED"

    async with Runtime(path, virtual_time=True) as reopened:
        described = await reopened.describe_execution(started.execution_arn)
        again = [e.to_aws() for e in await reopened.get_execution_history(started.execution_arn)]
        listed = await reopened.list_executions(machine.arn)
        machines = await reopened.list_state_machines()

    assert described == done
    assert described.output_value == {"n": 42}
    assert again == history
    assert [e.name for e in listed] == ["first"]
    assert [m.name for m in machines] == ["Doubler"]


async def test_memory_store_runs_and_describes() -> None:
    async with Runtime("memory", handlers={"Double": double}, virtual_time=True) as rt:
        result = await rt.run(task_machine("Double"), {"n": 2}, timeout=10)

    assert result.status == "SUCCEEDED"
    assert result.output_value == {"n": 4}
    assert json.loads(result.input) == {"n": 2}
    assert result.stop_date is not None
    assert result.stop_date >= result.start_date


# -- virtual time -------------------------------------------------------------------------------


async def test_a_thirty_day_wait_takes_no_real_time() -> None:
    definition = {
        "StartAt": "W",
        "States": {"W": {"Type": "Wait", "Seconds": 30 * DAY, "End": True}},
    }
    began = time.monotonic()
    async with virtual_runtime() as rt:
        result = await rt.run(definition, {"a": 1}, timeout=10)

    assert time.monotonic() - began < 5
    assert result.status == "SUCCEEDED"
    assert result.stop_date is not None
    assert result.stop_date - result.start_date == pytest.approx(30 * DAY)


async def test_task_timeout_seconds_on_a_sleeping_handler_is_states_timeout() -> None:
    async def slow(event: JSON, context: TaskContext) -> JSON:
        await context.sleep(3600)
        return event

    async with virtual_runtime({"Slow": slow}) as rt:
        result = await rt.run(task_machine("Slow", TimeoutSeconds=5), {}, timeout=10)
        history = await rt.get_execution_history(result.execution_arn)

    assert (result.status, result.error) == ("FAILED", "States.Timeout")
    assert "TaskTimedOut" in history_types(history)
    assert result.stop_date is not None
    assert result.stop_date - result.start_date == pytest.approx(5)


async def test_retries_back_off_on_the_virtual_clock() -> None:
    calls: list[float] = []

    async with virtual_runtime() as rt:

        @rt.handler("Flaky")
        async def flaky(event: JSON, context: TaskContext) -> JSON:
            calls.append(rt.clock.now())
            if context.attempt < 2:
                raise TaskFailed("Flaky", f"attempt {context.attempt}")
            return "ok"

        retry = [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 10, "BackoffRate": 2}]
        result = await rt.run(task_machine("Flaky", Retry=retry), {}, timeout=10)

    assert result.output_value == "ok"
    assert [round(b - a) for a, b in itertools.pairwise(calls)] == [10, 20]


# -- handler failures ---------------------------------------------------------------------------


class PaymentDeclined(Exception):
    pass


async def declined(event: JSON, context: TaskContext) -> JSON:
    raise PaymentDeclined("card expired")


async def task_failed(event: JSON, context: TaskContext) -> JSON:
    raise TaskFailed("Billing.Declined", "the card expired")


async def test_task_failed_sets_error_and_cause() -> None:
    async with virtual_runtime({"Pay": task_failed}) as rt:
        result = await rt.run(task_machine("Pay"), {}, timeout=10)

    assert (result.status, result.error, result.cause) == (
        "FAILED",
        "Billing.Declined",
        "the card expired",
    )


async def test_a_plain_exception_gives_its_class_name_and_message() -> None:
    async with virtual_runtime({"Pay": declined}) as rt:
        result = await rt.run(task_machine("Pay"), {}, timeout=10)

    assert (result.error, result.cause) == ("PaymentDeclined", "card expired")


async def test_a_lambda_resource_gives_aws_lambdas_error_cause() -> None:
    async with virtual_runtime({"pay": declined}) as rt:
        result = await rt.run(task_machine(LAMBDA.format("pay")), {}, timeout=10)
        history = history_types(await rt.get_execution_history(result.execution_arn))

    assert result.error == "PaymentDeclined"
    assert result.cause is not None
    cause = json.loads(result.cause)
    assert cause["errorMessage"] == "card expired"
    assert cause["errorType"] == "PaymentDeclined"
    assert isinstance(cause["requestId"], str)
    assert isinstance(cause["stackTrace"], list)
    assert "LambdaFunctionFailed" in history


async def test_a_lambda_task_failed_keeps_the_chosen_error() -> None:
    async with virtual_runtime({"pay": task_failed}) as rt:
        result = await rt.run(task_machine(LAMBDA.format("pay")), {}, timeout=10)

    assert (result.error, result.cause) == ("Billing.Declined", "the card expired")


@pytest.mark.parametrize(
    ("resource", "error", "named"),
    [
        ("Nowhere", "States.TaskFailed", "Nowhere"),
        (LAMBDA.format("ghost"), "Lambda.ResourceNotFoundException", "ghost"),
    ],
)
async def test_a_missing_handler_is_a_catchable_failure_naming_the_resource(
    resource: str, error: str, named: str
) -> None:
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": resource,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    async with virtual_runtime() as rt:
        result = await rt.run(definition, {}, timeout=10)

    assert result.status == "SUCCEEDED"
    caught = result.output_value
    assert caught["Error"] == error
    assert named in caught["Cause"]


class NotJson:
    pass


async def test_misbehaving_handlers_never_break_the_runtime() -> None:
    async def raises_base(event: JSON, context: TaskContext) -> JSON:
        raise LookupError(object())

    async def returns_garbage(event: JSON, context: TaskContext) -> JSON:
        return NotJson()

    async def returns_huge(event: JSON, context: TaskContext) -> JSON:
        return "x" * (300 * 1024)

    handlers = {"Raise": raises_base, "Garbage": returns_garbage, "Huge": returns_huge}
    async with virtual_runtime(handlers) as rt:
        outcomes = {}
        for name in handlers:
            result = await rt.run(task_machine(name), {}, timeout=10)
            outcomes[name] = (result.status, result.error)
        rt.register_handler("Double", double)
        healthy = await rt.run(task_machine("Double"), {"n": 1}, timeout=10)

    assert outcomes["Raise"] == ("FAILED", "LookupError")
    assert outcomes["Garbage"][0] == "FAILED"
    assert outcomes["Huge"] == ("FAILED", "States.DataLimitExceeded")
    assert healthy.output_value == {"n": 2}


# -- API errors ---------------------------------------------------------------------------------


async def test_starting_an_execution_name_twice_is_execution_already_exists() -> None:
    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine(
            "M", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
        )
        await rt.start_execution(machine.arn, {}, name="once")
        # Another input: the same input while RUNNING is AWS's idempotent start (issue 5).
        with pytest.raises(ExecutionAlreadyExists, match="Execution Already Exists"):
            await rt.start_execution(machine.arn, {"other": 1}, name="once")


async def test_invalid_definition_names_the_rule_and_the_json_pointer() -> None:
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}
    async with virtual_runtime() as rt:
        with pytest.raises(InvalidDefinition) as raised:
            await rt.create_state_machine("Bad", definition)
        assert await rt.list_state_machines() == []

    error = raised.value
    assert error.code == "MISSING_TRANSITION_TARGET"
    assert error.pointer == "/States/A/Next"
    assert str(error) == (
        f"Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: {error.detail} "
        "at /States/A/Next'"
    )


# -- concurrency --------------------------------------------------------------------------------


FAN_OUT = {
    "StartAt": "M",
    "States": {
        "M": {
            "Type": "Map",
            "ItemProcessor": {
                "StartAt": "T",
                "States": {"T": {"Type": "Task", "Resource": "Counted", "End": True}},
            },
            "End": True,
        }
    },
}


async def _peak_in_flight(rt: Runtime, limit: int, pause: float, timeout: float) -> int:
    """Three executions of a 4-item Map over a handler capped at ``limit`` calls in flight;
    the most calls that were ever in flight together."""
    in_flight = 0
    peak = 0

    async def counted(event: JSON, context: TaskContext) -> JSON:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await context.sleep(pause)
        finally:
            in_flight -= 1
        return event

    rt.register_handler("Counted", counted, max_concurrency=limit)
    machine = await rt.create_state_machine("Fan", FAN_OUT)
    started = [await rt.start_execution(machine.arn, list(range(4))) for _ in range(3)]
    results = [await rt.wait_for_execution(s.execution_arn, timeout=timeout) for s in started]
    assert [r.output_value for r in results] == [list(range(4))] * 3
    return peak


@pytest.mark.parametrize("limit", [1, 3])
async def test_per_handler_max_concurrency_holds_exactly(limit: int) -> None:
    async with Runtime("memory") as rt:  # the system clock: a few short real sleeps
        peak = await _peak_in_flight(rt, limit, pause=0.01, timeout=10)

    assert peak == limit


@pytest.mark.parametrize("limit", [1, 2])
async def test_per_handler_max_concurrency_holds_on_virtual_time(limit: int) -> None:
    """Calls queued on the limiter must not stop the clock for those holding it."""
    async with virtual_runtime() as rt:
        peak = await _peak_in_flight(rt, limit, pause=60, timeout=5)

    assert peak == limit


# -- shapes -------------------------------------------------------------------------------------


async def test_describe_list_and_history_shapes() -> None:
    async with virtual_runtime({"Double": double}) as rt:
        machine = await rt.create_state_machine("Doubler", task_machine("Double"))
        ok = await rt.start_execution(machine.arn, {"n": 1}, name="ok")
        await rt.wait_for_execution(ok.execution_arn, timeout=10)
        bad = await rt.start_execution(machine.arn, {}, name="bad")
        await rt.wait_for_execution(bad.execution_arn, timeout=10)
        described = await rt.describe_execution(ok.execution_arn)
        everything = await rt.list_executions(machine.arn)
        failed = await rt.list_executions(machine.arn, status_filter="FAILED")
        history = [event.to_aws() for event in await rt.get_execution_history(ok.execution_arn)]

    assert ok.execution_arn == ("arn:aws:states:us-east-1:123456789012:execution:Doubler:ok")
    assert described.state_machine_arn == machine.arn
    assert (described.name, described.status) == ("ok", "SUCCEEDED")
    assert json.loads(described.output or "null") == {"n": 2}
    assert {e.name for e in everything} == {"ok", "bad"}
    assert [e.name for e in failed] == ["bad"]
    assert failed[0].error == "KeyError"

    assert [e["type"] for e in history] == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    for index, event in enumerate(history, start=1):
        assert event["id"] == index
        assert event["previousEventId"] == index - 1
        assert isinstance(event["timestamp"], str)
        assert all(not key.startswith("statemill") for key in _keys(event))
    first, entered, scheduled = history[:3]
    assert json.loads(first["executionStartedEventDetails"]["input"]) == {"n": 1}
    assert first["executionStartedEventDetails"]["stateMachineArn"] == machine.arn
    assert entered["stateEnteredEventDetails"]["name"] == "Work"
    assert scheduled["taskScheduledEventDetails"]["resource"] == "Double"
    assert json.loads(history[-1]["executionSucceededEventDetails"]["output"]) == {"n": 2}


def _keys(value: JSON) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(k for v in value.values() for k in _keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


async def test_stop_execution_aborts_a_waiting_execution() -> None:
    definition = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    async with Runtime("memory", virtual_time=False) as rt:
        machine = await rt.create_state_machine("Waiter", definition)
        started = await rt.start_execution(machine.arn, {})
        stopped = await rt.stop_execution(started.execution_arn, error="Halt", cause="test")
        history = history_types(await rt.get_execution_history(started.execution_arn))

    assert (stopped.status, stopped.error, stopped.cause) == ("ABORTED", "Halt", "test")
    assert history[-1] == "ExecutionAborted"


async def test_start_sync_execution_returns_the_result() -> None:
    async with virtual_runtime({"Double": double}) as rt:
        machine = await rt.create_state_machine("Sync", task_machine("Double"), type="EXPRESS")
        result = await rt.start_sync_execution(machine.arn, {"n": 5})

    assert result.status == "SUCCEEDED"
    assert result.output_value == {"n": 10}
    assert ":express:" in result.execution_arn


async def test_an_exception_in_decide_fails_the_execution_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runtime.core.decide import decide as real_decide

    def broken_decide(machine: Any, state: Any, incoming: Any, **options: Any) -> Any:
        if state.name == "doomed":
            raise RuntimeError("a bug in the core")
        return real_decide(machine, state, incoming, **options)

    monkeypatch.setattr("runtime.engine.deciding.decide", broken_decide)
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    async with virtual_runtime() as rt:
        machine = await rt.create_state_machine("M", definition)
        started = await rt.start_execution(machine.arn, {}, name="doomed")
        result = await rt.wait_for_execution(started.execution_arn, timeout=1)
        healthy = await rt.run(definition, {"ok": True}, timeout=5)

    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert "RuntimeError: a bug in the core" in (result.cause or "")
    assert healthy.status == "SUCCEEDED"
