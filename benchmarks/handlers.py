"""``handlers``: many executions share one async handler that takes 10 ms, limited to 1,000 calls.

Each execution is one Task state calling a handler that sleeps ``handler_ms`` (``asyncio.sleep``:
real time) and counts the calls in flight. The handler is registered with
``max_concurrency=limit``. ``in_flight`` client loops each start an execution and wait for it, so
the limiter always has a queue. Reported: executions per second, that figure as a percentage of
the ideal ``limit / handler_ms`` (100,000/s for 1,000 and 10 ms), and the most calls ever seen
in flight, which must never exceed the limit. SQLite (``synchronous=FULL``) is the store users
get by default; the memory store is the baseline.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from benchmarks.common import (
    Comparison,
    InFlight,
    Measured,
    Metric,
    Params,
    Progress,
    Scenario,
    as_int,
    now,
    open_store,
    sqlite_file,
)
from runtime import Runtime, TaskContext

DEFINITION = {
    "Comment": "one Task calling a 10 ms handler",
    "StartAt": "Call",
    "States": {"Call": {"Type": "Task", "Resource": "sleepy", "End": True}},
}

STORES: tuple[Literal["memory", "sqlite"], ...] = ("memory", "sqlite")


async def run(params: Params, progress: Progress) -> Measured:
    """Run the executions on each store once."""
    measured = Measured()
    executions = as_int(params, "executions")
    limit = as_int(params, "limit")
    in_flight = as_int(params, "in_flight")
    seconds = params["handler_ms"] / 1000
    ideal = limit / seconds
    measured.info.update(
        executions=executions, limit=limit, in_flight=in_flight, ideal_executions_per_s=ideal
    )
    for kind in STORES:
        counter = InFlight()
        failed, elapsed = await _run_store(
            kind, executions, limit, in_flight, seconds, counter, progress
        )
        rate = executions / elapsed
        measured.values[f"{kind}_executions_per_s"] = rate
        measured.values[f"{kind}_percent_of_ideal"] = 100 * rate / ideal
        measured.values[f"{kind}_max_in_flight"] = counter.peak
        measured.values[f"{kind}_seconds"] = elapsed
        measured.checks[f"{kind}_max_in_flight_within_limit"] = counter.peak <= limit
        measured.checks[f"{kind}_all_succeeded"] = failed == 0
        measured.checks[f"{kind}_one_call_per_execution"] = counter.calls == executions
    return measured


async def _run_store(
    kind: Literal["memory", "sqlite"],
    executions: int,
    limit: int,
    in_flight: int,
    seconds: float,
    counter: InFlight,
    progress: Progress,
) -> tuple[int, float]:
    """Run every execution on one store: (executions not SUCCEEDED, seconds)."""

    async def sleepy(value: Any, context: TaskContext) -> Any:
        counter.enter()
        try:
            await asyncio.sleep(seconds)
        finally:
            counter.leave()
        return value

    async with (
        sqlite_file("handlers") as path,
        open_store(kind, path) as store,
        Runtime(store=store, tune_gc=True) as rt,
    ):
        rt.register_handler("sleepy", sleepy, max_concurrency=limit)
        sm = await rt.create_state_machine("handlers", DEFINITION)
        next_index = 0
        done = 0
        failed = 0

        async def client() -> None:
            nonlocal next_index, done, failed
            while next_index < executions:
                index = next_index
                next_index += 1
                started = await rt.start_execution(sm.arn, {"i": index})
                description = await rt.wait_for_execution(started.execution_arn)
                if description.status != "SUCCEEDED":
                    failed += 1
                done += 1
                progress.update(done)

        progress.start(f"handlers/{kind}", executions)
        began = now()
        await asyncio.gather(*(client() for _ in range(min(in_flight, executions))))
        elapsed = now() - began
        progress.finish()
    return failed, elapsed


SCENARIO = Scenario(
    name="handlers",
    description="executions calling a 10 ms async handler limited to 1,000 calls in flight",
    quick={"executions": 600, "limit": 50, "in_flight": 300, "handler_ms": 10},
    full={"executions": 100_000, "limit": 1_000, "in_flight": 10_000, "handler_ms": 10},
    metrics=(
        Metric(key="sqlite_executions_per_s", label="sqlite FULL: executions/s", unit="/s"),
        Metric(
            key="sqlite_percent_of_ideal",
            label="sqlite FULL: % of limit/handler time",
            unit="%",
            target=80,
        ),
        Metric(key="sqlite_max_in_flight", label="sqlite FULL: max calls in flight", unit=""),
        Metric(key="memory_executions_per_s", label="memory: executions/s", unit="/s"),
        Metric(
            key="memory_percent_of_ideal",
            label="memory: % of limit/handler time",
            unit="%",
            target=80,
        ),
        Metric(key="memory_max_in_flight", label="memory: max calls in flight", unit=""),
    ),
    comparisons=(
        Comparison(
            label="sqlite FULL / memory (executions/s)",
            value="sqlite_executions_per_s",
            baseline="memory_executions_per_s",
        ),
    ),
    run=run,
)
