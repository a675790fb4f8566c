"""Bad input never crashes the runtime.

Hypothesis generates random, mostly well-shaped ASL definitions (every state type, paths,
payload templates with intrinsics, Retry/Catch, nested Parallel and Map) and random JSON inputs,
and runs them on virtual time with handlers that succeed, fail, raise, sleep or return random
JSON. The only acceptable outcomes are ``InvalidDefinition`` from ``create_state_machine`` or an
execution that ends SUCCEEDED, FAILED (with clean error and cause strings) or TIMED_OUT: no other
exception, no hang.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from runtime import InvalidDefinition, TaskContext, TaskFailed
from runtime.testing import virtual_runtime
from tests.conformance.harness import stalled

JSON = Any

NAMES = ["A", "B", "C", "D"]
RESULT_PATHS = ["$", "$.a", "$.b", "$.a.b", "$.list[0]", "$.new.deep"]
PATHS = ["$", "$.a", "$.b", "$.a.b", "$.list[0]", "$.list[1:]", "$$.Execution.Id", "$.missing"]
RESOURCES = [
    "Ok",
    "Fail",
    "Boom",
    "Random",
    "Slow",
    "Missing",
    "arn:aws:lambda:us-east-1:123456789012:function:Ok",
    "arn:aws:lambda:us-east-1:123456789012:function:Boom",
]
ERRORS = ["States.ALL", "States.TaskFailed", "States.Timeout", "Handler.Failed", "ValueError"]
INTRINSICS = [
    "States.Format('x={}', $.a)",
    "States.StringToJson($.a)",
    "States.JsonToString($)",
    "States.Array($.a, 1, 'two')",
    "States.ArrayLength($.list)",
    "States.ArrayGetItem($.list, 0)",
    "States.MathAdd($.a, 1)",
    "States.Hash($.a, 'SHA-256')",
    "States.Base64Decode($.a)",
    "States.UUID()",
]
# Error names a runtime bug would leak; handlers here raise only TaskFailed and ValueError.
INTERNAL_ERRORS = {
    "AssertionError",
    "AttributeError",
    "IndexError",
    "KeyError",
    "NotImplementedError",
    "RecursionError",
    "RuntimeError",
    "TypeError",
    "ZeroDivisionError",
}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-1000, 1000)
    | st.floats(-1e6, 1e6, allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)
inputs = json_values | st.fixed_dictionaries(
    {"a": json_values, "list": st.lists(json_values, max_size=4)},
    optional={"b": json_values},
)
templates = st.dictionaries(
    st.sampled_from(["x", "y", "z"]),
    json_values,
    max_size=2,
).flatmap(
    lambda fixed: st.dictionaries(
        st.sampled_from(["p.$", "q.$", "r.$"]),
        st.sampled_from(PATHS + INTRINSICS),
        max_size=2,
    ).map(lambda dynamic: {**fixed, **dynamic})
)


error_equals = st.just(["States.ALL"]) | st.lists(
    st.sampled_from(ERRORS[1:]), min_size=1, max_size=2, unique=True
)


def _optional(draw: st.DrawFn, strategy: st.SearchStrategy[Any], p: float = 0.3) -> Any:
    return draw(strategy) if draw(st.floats(0, 1)) < p else None


@st.composite
def retriers(draw: st.DrawFn) -> dict[str, JSON]:
    retrier: dict[str, JSON] = {"ErrorEquals": draw(error_equals)}
    for key, strategy in (
        ("IntervalSeconds", st.integers(1, 30)),
        ("MaxAttempts", st.integers(0, 4)),
        ("BackoffRate", st.sampled_from([1, 1.5, 2.0])),
        ("MaxDelaySeconds", st.integers(1, 60)),
        ("JitterStrategy", st.sampled_from(["FULL", "NONE"])),
    ):
        value = _optional(draw, strategy, 0.4)
        if value is not None:
            retrier[key] = value
    return retrier


@st.composite
def catchers(draw: st.DrawFn, names: list[str]) -> dict[str, JSON]:
    catcher: dict[str, JSON] = {
        "ErrorEquals": draw(error_equals),
        "Next": draw(st.sampled_from(names)),
    }
    result_path = _optional(draw, st.sampled_from(["$.error", "$", None, "$.a.err"]), 0.5)
    if result_path is not None:
        catcher["ResultPath"] = result_path
    return catcher


def _next(draw: st.DrawFn, names: list[str], index: int) -> str:
    """Mostly the following state (so most states are reachable), else any later one.

    Transitions only go forward: a cycle whose states take no time would loop forever, which
    is the definition's fault, not the runtime's (see the cycle tests in tests/core).
    """
    if draw(st.floats(0, 1)) < 0.85:
        return names[index + 1]
    return draw(st.sampled_from(names[index + 1 :]))


def _flow(draw: st.DrawFn, state: dict[str, JSON], names: list[str], index: int) -> None:
    if index + 1 < len(names) and draw(st.floats(0, 1)) < 0.95:
        state["Next"] = _next(draw, names, index)
    else:
        state["End"] = True


def _io(draw: st.DrawFn, state: dict[str, JSON], *, result: bool) -> None:
    for key in ("InputPath", "OutputPath") + (("ResultPath",) if result else ()):
        choices = RESULT_PATHS if key == "ResultPath" else PATHS
        value = _optional(draw, st.sampled_from([*choices, None]), 0.25)
        if value is not None or draw(st.floats(0, 1)) < 0.05:
            state[key] = value


@st.composite
def machines(draw: st.DrawFn, depth: int = 0, prefix: str = "") -> dict[str, JSON]:
    count = draw(st.integers(1, 4 if depth == 0 else 2))
    names = [prefix + name for name in NAMES[:count]]
    kinds = ["Pass", "Task", "Choice", "Wait", "Succeed", "Fail"]
    if depth < 1:
        kinds += ["Parallel", "Map"]
    states: dict[str, JSON] = {}
    for index, name in enumerate(names):
        last = index + 1 == len(names)
        terminal_ok = last or draw(st.floats(0, 1)) < 0.1
        allowed = kinds if terminal_ok else kinds[:4] + kinds[6:]
        if last:
            allowed = [kind for kind in allowed if kind != "Choice"]
        kind = draw(st.sampled_from(allowed))
        state: dict[str, JSON] = {"Type": kind}
        if kind == "Pass":
            if draw(st.booleans()):
                state["Result"] = draw(json_values)
            if draw(st.booleans()):
                state["Parameters"] = draw(templates)
            _io(draw, state, result=True)
            _flow(draw, state, names, index)
        elif kind == "Task":
            state["Resource"] = draw(st.sampled_from(RESOURCES))
            if draw(st.booleans()):
                state["Parameters"] = draw(templates)
            if draw(st.booleans()):
                state["ResultSelector"] = draw(templates)
            timeout = _optional(draw, st.integers(1, 200), 0.3)
            if timeout is not None:
                state["TimeoutSeconds"] = timeout
                if timeout > 1 and draw(st.booleans()):
                    state["HeartbeatSeconds"] = draw(st.integers(1, timeout - 1))
            _io(draw, state, result=True)
            _flow(draw, state, names, index)
        elif kind == "Choice":
            variable = draw(st.sampled_from([p for p in PATHS if ":" not in p]))
            tests: list[dict[str, JSON]] = [
                {"NumericGreaterThan": 0},
                {"StringEquals": "x"},
                {"IsPresent": True},
                {"IsNumeric": True},
                {"BooleanEquals": True},
                {"StringMatches": "*a*"},
                {"NumericLessThanPath": "$.a"},
            ]
            test = draw(st.sampled_from(tests))
            state["Choices"] = [{"Variable": variable, **test, "Next": _next(draw, names, index)}]
            if draw(st.booleans()):
                state["Default"] = draw(st.sampled_from(names[index + 1 :]))
        elif kind == "Wait":
            waits: list[dict[str, JSON]] = [
                {"Seconds": draw(st.integers(0, 10**6))},
                {"SecondsPath": "$.a"},
                {"Timestamp": "2030-01-01T00:00:00Z"},
                {"TimestampPath": "$.a"},
            ]
            wait = draw(st.sampled_from(waits))
            state.update(wait)
            _flow(draw, state, names, index)
        elif kind == "Fail":
            if draw(st.booleans()):
                state["Error"] = "Custom.Error"
            if draw(st.booleans()):
                state["CausePath"] = draw(st.sampled_from(PATHS))
        elif kind == "Parallel":
            state["Branches"] = [
                draw(machines(depth + 1, f"{name}{branch}_"))
                for branch in range(draw(st.integers(1, 2)))
            ]
            _io(draw, state, result=True)
            _flow(draw, state, names, index)
        elif kind == "Map":
            state["ItemProcessor"] = draw(machines(depth + 1, f"{name}_"))
            if draw(st.booleans()):
                state["ItemsPath"] = draw(st.sampled_from(["$.list", "$", "$.a"]))
            for key, strategy in (
                ("MaxConcurrency", st.integers(0, 3)),
                ("ToleratedFailureCount", st.integers(0, 2)),
                ("ToleratedFailurePercentage", st.integers(0, 100)),
            ):
                value = _optional(draw, strategy, 0.3)
                if value is not None:
                    state[key] = value
            if draw(st.booleans()):
                state["ItemSelector"] = {"v.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"}
            _io(draw, state, result=True)
            _flow(draw, state, names, index)
        if kind in ("Task", "Parallel", "Map"):
            if draw(st.booleans()):
                retry = draw(st.lists(retriers(), min_size=1, max_size=2))
                catch_all = [r for r in retry if r["ErrorEquals"] == ["States.ALL"]]
                retry = [r for r in retry if r not in catch_all] + catch_all[:1]
                state["Retry"] = retry
            if not last and draw(st.booleans()):
                state["Catch"] = [draw(catchers(names[index + 1 :]))]
        states[name] = state
    definition: dict[str, JSON] = {"StartAt": names[0], "States": states}
    if depth == 0 and draw(st.floats(0, 1)) < 0.2:
        definition["TimeoutSeconds"] = draw(st.integers(1, 500))
    return definition


async def _run(definition: dict[str, JSON], input: JSON, returned: JSON) -> str:
    async def ok(event: JSON, context: TaskContext) -> JSON:
        return event

    async def fail(event: JSON, context: TaskContext) -> JSON:
        raise TaskFailed("Handler.Failed", "it failed")

    async def boom(event: JSON, context: TaskContext) -> JSON:
        raise ValueError("boom")

    async def random(event: JSON, context: TaskContext) -> JSON:
        return returned

    async def slow(event: JSON, context: TaskContext) -> JSON:
        await context.sleep(100)
        return event

    handlers = {"Ok": ok, "Fail": fail, "Boom": boom, "Random": random, "Slow": slow}
    async with virtual_runtime(handlers) as rt:
        try:
            machine = await rt.create_state_machine("Random", definition)
        except InvalidDefinition:
            return "INVALID"
        started = await rt.start_execution(machine.arn, input)
        assert not await stalled(rt, started.execution_arn, timeout=3), "execution stalled"
        result = await rt.describe_execution(started.execution_arn)
    assert result.status in ("SUCCEEDED", "FAILED", "TIMED_OUT"), result
    if result.status == "SUCCEEDED":
        assert result.output is not None
        json.loads(result.output)
    else:
        assert result.error is None or isinstance(result.error, str)
        assert result.cause is None or isinstance(result.cause, str)
        assert result.error not in INTERNAL_ERRORS, result
        assert "Traceback" not in (result.cause or ""), result
    return result.status


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(definition=machines(), input=inputs, returned=json_values)
def test_random_definitions_and_inputs_end_cleanly(
    definition: dict[str, JSON], input: JSON, returned: JSON
) -> None:
    event(asyncio.run(_run(definition, input, returned)))
