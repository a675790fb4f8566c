"""``chain``: executions of 10 chained Pass states, many in flight, on the memory and SQLite stores.

``in_flight`` client loops each start an execution and wait for its end, then start the next,
so exactly that many executions are in flight until ``executions`` have run. Reported: state
transitions per second (one per Pass state) and executions per second, from the first start to
the last end, on the memory store (no durability: the baseline) and on SQLite with
``synchronous=FULL`` (every group commit is fsynced before its effects run).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from benchmarks.common import (
    Comparison,
    Measured,
    Metric,
    Params,
    Progress,
    Scenario,
    as_int,
    chain_definition,
    now,
    open_store,
    sqlite_file,
)
from runtime import Runtime

STORES: tuple[Literal["memory", "sqlite"], ...] = ("memory", "sqlite")


async def run(params: Params, progress: Progress) -> Measured:
    """Run the chain on each store once."""
    measured = Measured()
    executions = as_int(params, "executions")
    in_flight = as_int(params, "in_flight")
    length = as_int(params, "length")
    measured.info.update(executions=executions, in_flight=in_flight, length=length)
    for kind in STORES:
        async with sqlite_file("chain") as path:
            await _run_store(kind, path, executions, in_flight, length, progress, measured)
    return measured


async def _run_store(
    kind: Literal["memory", "sqlite"],
    path: str,
    executions: int,
    in_flight: int,
    length: int,
    progress: Progress,
    measured: Measured,
) -> None:
    async with open_store(kind, path) as store, Runtime(store=store, tune_gc=True) as rt:
        sm = await rt.create_state_machine("chain", chain_definition(length))
        next_index = 0
        done = 0
        failed = 0
        first_arn: list[str] = []

        async def client() -> None:
            nonlocal next_index, done, failed
            while next_index < executions:
                index = next_index
                next_index += 1
                started = await rt.start_execution(sm.arn, {"i": index})
                if not first_arn:
                    first_arn.append(started.execution_arn)
                description = await rt.wait_for_execution(started.execution_arn)
                if description.status != "SUCCEEDED":
                    failed += 1
                done += 1
                progress.update(done)

        progress.start(f"chain/{kind}", executions)
        began = now()
        await asyncio.gather(*(client() for _ in range(min(in_flight, executions))))
        elapsed = now() - began
        progress.finish()

        history = await rt.get_execution_history(first_arn[0]) if first_arn else []
        transitions = sum(1 for event in history if event.type.endswith("StateEntered"))
    measured.values[f"{kind}_transitions_per_s"] = executions * length / elapsed
    measured.values[f"{kind}_executions_per_s"] = executions / elapsed
    measured.values[f"{kind}_seconds"] = elapsed
    measured.checks[f"{kind}_all_succeeded"] = failed == 0
    measured.checks[f"{kind}_transitions_per_execution_is_{length}"] = transitions == length
    measured.info[f"{kind}_events_per_execution"] = len(history)


SCENARIO = Scenario(
    name="chain",
    description="10 chained Pass states, many executions in flight; memory and SQLite stores",
    quick={"executions": 400, "in_flight": 200, "length": 10},
    full={"executions": 100_000, "in_flight": 10_000, "length": 10},
    metrics=(
        Metric(
            key="memory_transitions_per_s",
            label="memory: transitions/s",
            unit="/s",
            target=150_000,
        ),
        Metric(key="memory_executions_per_s", label="memory: executions/s", unit="/s"),
        Metric(
            key="sqlite_transitions_per_s",
            label="sqlite FULL: transitions/s",
            unit="/s",
            target=40_000,
        ),
        Metric(key="sqlite_executions_per_s", label="sqlite FULL: executions/s", unit="/s"),
    ),
    comparisons=(
        Comparison(
            label="sqlite FULL / memory (transitions/s)",
            value="sqlite_transitions_per_s",
            baseline="memory_transitions_per_s",
        ),
    ),
    run=run,
)
