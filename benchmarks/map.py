"""``map``: an inline Map at two MaxConcurrency settings and a distributed Map at scale.

Every iteration is a Task calling a trivial async handler (``await asyncio.sleep(0)``) that
counts the calls in flight, so the maximum concurrency the Map allowed is observed, not assumed.
Reported: time to finish, items per second and the maximum concurrency seen, which must never
exceed a non-zero MaxConcurrency.

The distributed Map (``ProcessorConfig.Mode: DISTRIBUTED``) climbs a ladder of sizes,
``distributed_start`` times 10, 100, ... up to ``distributed_items``, within a total budget of
``distributed_budget_s`` seconds per run. Before each size it predicts the time from the sizes
already run (the growth exponent of the last two, at least linear) and stops if the prediction
does not fit in the budget left; a size that overruns is cancelled. The largest size that
finished is reported, and a note says plainly when the target size was not run.

``sqlite=1`` runs on SQLite (``synchronous=FULL``) instead of the memory store.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, Literal

from benchmarks.common import (
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

#: Sizes of the distributed ladder grow by this factor.
LADDER_FACTOR = 10


def definition(max_concurrency: int, *, distributed: bool) -> dict[str, Any]:
    """A Map over ``$.items`` whose iteration is one Task; its output is the item count."""
    processor: dict[str, Any] = {
        "StartAt": "Count",
        "States": {"Count": {"Type": "Task", "Resource": "count", "End": True}},
    }
    if distributed:
        processor["ProcessorConfig"] = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    return {
        "StartAt": "Map",
        "States": {
            "Map": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": max_concurrency,
                "ItemProcessor": processor,
                "ResultSelector": {"count.$": "States.ArrayLength($)"},
                "End": True,
            }
        },
    }


async def run_map(
    items: int,
    max_concurrency: int,
    *,
    distributed: bool,
    store_kind: Literal["memory", "sqlite"],
    progress: Progress,
    label: str,
    timeout: float | None = None,
) -> tuple[float, InFlight, bool]:
    """Run one Map execution over ``items`` items: (seconds, in-flight counter, output right).

    Raises:
        TimeoutError: it did not finish within ``timeout`` seconds.
    """
    counter = InFlight()

    async def count(value: Any, context: TaskContext) -> Any:
        counter.enter()
        try:
            await asyncio.sleep(0)
        finally:
            counter.leave()
        progress.update(counter.calls)
        return value

    async with (
        sqlite_file("map") as path,
        open_store(store_kind, path) as store,
        Runtime(store=store, handlers={"count": count}) as rt,
    ):
        name = "distributed" if distributed else "inline"
        sm = await rt.create_state_machine(
            name, definition(max_concurrency, distributed=distributed)
        )
        progress.start(label, items)
        began = now()
        started = await rt.start_execution(sm.arn, {"items": list(range(items))})
        description = await rt.wait_for_execution(started.execution_arn, timeout=timeout)
        elapsed = now() - began
        progress.finish()
    right = description.status == "SUCCEEDED" and description.output_value == {"count": items}
    return elapsed, counter, right


async def run(params: Params, progress: Progress) -> Measured:
    """Run the inline Maps, then climb the distributed ladder."""
    measured = Measured()
    store_kind: Literal["memory", "sqlite"] = "sqlite" if params["sqlite"] else "memory"
    measured.info["store"] = store_kind
    inline_items = as_int(params, "inline_items")
    for key in ("a", "b"):
        limit = as_int(params, f"inline_mc_{key}")
        elapsed, counter, right = await run_map(
            inline_items,
            limit,
            distributed=False,
            store_kind=store_kind,
            progress=progress,
            label=f"map/inline MaxConcurrency={limit}",
        )
        prefix = f"inline_{key}"
        measured.values[f"{prefix}_seconds"] = elapsed
        measured.values[f"{prefix}_items_per_s"] = inline_items / elapsed
        measured.values[f"{prefix}_max_concurrency"] = counter.peak
        measured.checks[f"{prefix}_output_right"] = right
        if limit:
            measured.checks[f"{prefix}_within_max_concurrency"] = counter.peak <= limit
    measured.info["inline_items"] = inline_items
    await _distributed(params, store_kind, progress, measured)
    return measured


def ladder(start: int, target: int) -> list[int]:
    """``start``, ``start * 10``, ... below ``target``, then ``target``."""
    sizes: list[int] = []
    size = max(1, min(start, target))
    while size < target:
        sizes.append(size)
        size *= LADDER_FACTOR
    sizes.append(target)
    return sizes


def predict(done: list[tuple[int, float]], size: int) -> float:
    """Seconds ``size`` items should take, from the (items, seconds) already run."""
    if not done:
        return 0.0
    last_n, last_t = done[-1]
    exponent = 1.0
    if len(done) >= 2:
        prev_n, prev_t = done[-2]
        if last_n > prev_n and last_t > 0 and prev_t > 0:
            exponent = max(1.0, math.log(last_t / prev_t) / math.log(last_n / prev_n))
    return float(last_t * (size / last_n) ** exponent)


async def _distributed(
    params: Params,
    store_kind: Literal["memory", "sqlite"],
    progress: Progress,
    measured: Measured,
) -> None:
    target = as_int(params, "distributed_items")
    limit = as_int(params, "distributed_mc")
    budget = params["distributed_budget_s"]
    done: list[tuple[int, float]] = []
    peaks: list[int] = []
    stopped = ""
    spent = 0.0
    for size in ladder(as_int(params, "distributed_start"), target):
        left = budget - spent
        expected = predict(done, size)
        if done and expected > left:
            stopped = (
                f"{size:,} items predicted to take {expected:,.0f}s, "
                f"over the {left:,.0f}s left of the {budget:,.0f}s budget"
            )
            break
        try:
            elapsed, counter, right = await run_map(
                size,
                limit,
                distributed=True,
                store_kind=store_kind,
                progress=progress,
                label=f"map/distributed {size:,} items MaxConcurrency={limit}",
                timeout=max(left, 1.0),
            )
        except TimeoutError:
            progress.finish()
            stopped = f"{size:,} items did not finish within the {left:,.0f}s left (cancelled)"
            break
        spent += elapsed
        done.append((size, elapsed))
        peaks.append(counter.peak)
        measured.checks[f"distributed_{size}_output_right"] = right
    measured.info["distributed_ladder"] = [
        {"items": n, "seconds": t, "max_concurrency": p}
        for (n, t), p in zip(done, peaks, strict=True)
    ]
    measured.info["distributed_target_items"] = target
    if not done:
        measured.notes.append(f"distributed Map: no size finished ({stopped})")
        measured.checks["distributed_ran"] = False
        return
    items, seconds = done[-1]
    measured.values["distributed_items_run"] = items
    measured.values["distributed_seconds"] = seconds
    measured.values["distributed_items_per_s"] = items / seconds
    measured.values["distributed_max_concurrency"] = peaks[-1]
    measured.checks["distributed_within_max_concurrency"] = max(peaks) <= limit
    if items < target:
        measured.notes.append(
            f"TARGET SIZE NOT RUN: the distributed Map ran {items:,} items, not the "
            f"{target:,} asked for: {stopped}"
        )


SCENARIO = Scenario(
    name="map",
    description="inline Map (MaxConcurrency 0 and 100) and a distributed Map at scale",
    quick={
        "inline_items": 200,
        "inline_mc_a": 0,
        "inline_mc_b": 20,
        "distributed_start": 300,
        "distributed_items": 300,
        "distributed_mc": 50,
        "distributed_budget_s": 60,
        "sqlite": 0,
    },
    full={
        "inline_items": 10_000,
        "inline_mc_a": 0,
        "inline_mc_b": 100,
        "distributed_start": 1_000,
        "distributed_items": 1_000_000,
        "distributed_mc": 10_000,
        "distributed_budget_s": 300,
        "sqlite": 0,
    },
    metrics=(
        Metric(
            key="inline_a_seconds", label="inline MaxConcurrency {inline_mc_a:.0f}: time", unit="s"
        ),
        Metric(
            key="inline_a_items_per_s",
            label="inline MaxConcurrency {inline_mc_a:.0f}: items/s",
            unit="/s",
        ),
        Metric(
            key="inline_a_max_concurrency",
            label="inline MaxConcurrency {inline_mc_a:.0f}: max seen",
            unit="",
        ),
        Metric(
            key="inline_b_seconds", label="inline MaxConcurrency {inline_mc_b:.0f}: time", unit="s"
        ),
        Metric(
            key="inline_b_items_per_s",
            label="inline MaxConcurrency {inline_mc_b:.0f}: items/s",
            unit="/s",
        ),
        Metric(
            key="inline_b_max_concurrency",
            label="inline MaxConcurrency {inline_mc_b:.0f}: max seen",
            unit="",
        ),
        Metric(
            key="distributed_items_run",
            label="distributed: items run",
            unit="",
            target=1_000_000,
        ),
        Metric(key="distributed_seconds", label="distributed: time", unit="s"),
        Metric(key="distributed_items_per_s", label="distributed: items/s", unit="/s"),
        Metric(key="distributed_max_concurrency", label="distributed: max seen", unit=""),
    ),
    run=run,
)
