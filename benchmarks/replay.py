"""``replay``: how fast a history folds, and how fast a restarted runtime resumes open executions.

Fold rate: one execution with a long history is run on the memory store, its history read back,
then ``fold(events)`` is timed (the median of ``fold_repeats`` folds). Two shapes:

- ``map``: an inline Map (MaxConcurrency 1) of Pass states over ``fold_events / 4`` items:
  4 events per iteration, each in its own frame, as AWS logs a Map;
- ``loop``: a Pass and a Choice looping ``fold_events / 4`` times at the top level.

Resume: ``resume_n`` executions parked on a Wait of an hour are started on a SQLite file
(``synchronous=FULL``); the runtime is closed, then a new one is opened on the file. Reported:
the time until ``async with Runtime(...)`` returns (every open execution's log read and folded,
its pending work re-derived) and the time until every execution is parked again on its re-armed
timer (``resume_seconds``, the figure issue 4 asks to be under 10 s).
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.common import (
    UNBOUNDED,
    Measured,
    Metric,
    Params,
    Progress,
    Scenario,
    as_int,
    median,
    now,
    sqlite_file,
)
from runtime import HistoryEvent, Runtime, SqliteStore
from runtime.core.evolve import fold

#: Events per Map iteration / loop turn.
_EVENTS_PER_ITEM = 4


def map_definition() -> dict[str, Any]:
    """An inline Map of one Pass state, one iteration at a time; output: the item count."""
    return {
        "StartAt": "Map",
        "States": {
            "Map": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "StartAt": "Item",
                    "States": {"Item": {"Type": "Pass", "End": True}},
                },
                "ResultSelector": {"count.$": "States.ArrayLength($)"},
                "End": True,
            }
        },
    }


def loop_definition(turns: int) -> dict[str, Any]:
    """A Pass that counts and a Choice that loops back ``turns`` times."""
    return {
        "StartAt": "Count",
        "States": {
            "Count": {
                "Type": "Pass",
                "Parameters": {"i.$": "States.MathAdd($.i, 1)"},
                "Next": "More",
            },
            "More": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.i", "NumericLessThan": turns, "Next": "Count"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


WAIT_AN_HOUR = {
    "StartAt": "Park",
    "States": {
        "Park": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
        "Done": {"Type": "Pass", "End": True},
    },
}


async def run(params: Params, progress: Progress) -> Measured:
    """Measure the fold rate on both shapes, then the resume time."""
    measured = Measured()
    items = max(1, as_int(params, "fold_events") // _EVENTS_PER_ITEM)
    repeats = max(1, as_int(params, "fold_repeats"))
    async with Runtime(store="memory", tune_gc=True, limits=UNBOUNDED) as rt:
        shapes: dict[str, tuple[dict[str, Any], Any]] = {
            "map": (map_definition(), list(range(items))),
            "loop": (loop_definition(items), {"i": 0}),
        }
        for shape, (definition, value) in shapes.items():
            sm = await rt.create_state_machine(f"replay-{shape}", definition)
            progress.start(f"replay/build {shape} history", 1)
            started = await rt.start_execution(sm.arn, value)
            description = await rt.wait_for_execution(started.execution_arn)
            events = await rt.get_execution_history(started.execution_arn, include_map_runs=True)
            progress.update(1)
            progress.finish()
            seconds, state = _time_fold(events, repeats, progress, shape)
            measured.values[f"fold_{shape}_events_per_s"] = len(events) / seconds
            measured.values[f"fold_{shape}_events"] = len(events)
            measured.checks[f"fold_{shape}_succeeded"] = (
                description.status == "SUCCEEDED" and state.status == "SUCCEEDED"
            )
    await _resume(params, progress, measured)
    return measured


def _time_fold(
    events: list[HistoryEvent], repeats: int, progress: Progress, shape: str
) -> tuple[float, Any]:
    """The median time of ``repeats`` folds of ``events``, and the state folded."""
    times: list[float] = []
    state: Any = None
    progress.start(f"replay/fold {shape} {len(events):,} events", repeats)
    for k in range(repeats):
        began = now()
        state = fold(events)
        times.append(now() - began)
        progress.update(k + 1)
    progress.finish()
    return median(times), state


async def _resume(params: Params, progress: Progress, measured: Measured) -> None:
    n = as_int(params, "resume_n")
    wave = as_int(params, "resume_wave")
    measured.info.update(resume_n=n)
    async with sqlite_file("replay") as path:
        async with (
            SqliteStore.open(path, synchronous="FULL") as store,
            Runtime(store=store, tune_gc=True, limits=UNBOUNDED) as rt,
        ):
            sm = await rt.create_state_machine("resume", WAIT_AN_HOUR)
            progress.start("replay/start executions to resume", n)
            for first in range(0, n, wave):
                last = min(n, first + wave)
                await asyncio.gather(*(rt.start_execution(sm.arn, {}) for _ in range(first, last)))
                progress.update(last)
            await _settle(rt, n)
            progress.finish()

        progress.start("replay/resume", n)
        began = now()
        async with (
            SqliteStore.open(path, synchronous="FULL") as store,
            Runtime(store=store, tune_gc=True, limits=UNBOUNDED) as rt,
        ):
            opened = now() - began
            held = len(rt.engine.live) + len(rt.engine.parked)
            await _settle(rt, n, progress)
            settled = now() - began
            parked = len(rt.engine.parked)
        progress.finish()
    measured.values["resume_open_seconds"] = opened
    measured.values["resume_seconds"] = settled
    measured.values["resumed_per_s"] = n / settled
    measured.checks["resume_holds_every_open_execution"] = held == n
    measured.checks["resume_parks_every_execution_again"] = parked == n


async def _settle(rt: Runtime, n: int, progress: Progress | None = None) -> None:
    """Wait until the engine holds no live execution and ``n`` parked ones (at most 10 min)."""
    engine = rt.engine
    deadline = now() + 600
    while now() < deadline:
        if not engine.live and len(engine.parked) >= n:
            return
        if progress is not None:
            progress.update(len(engine.parked))
        await asyncio.sleep(0.001)


SCENARIO = Scenario(
    name="replay",
    description="fold rate over a long history; resuming open executions from SQLite",
    quick={"fold_events": 4_000, "fold_repeats": 3, "resume_n": 300, "resume_wave": 100},
    full={"fold_events": 100_000, "fold_repeats": 3, "resume_n": 100_000, "resume_wave": 10_000},
    metrics=(
        Metric(
            key="fold_map_events_per_s",
            label="fold: events/s (Map of Pass)",
            unit="/s",
            target=500_000,
        ),
        Metric(key="fold_map_events", label="fold: history length (Map)", unit=""),
        Metric(
            key="fold_loop_events_per_s",
            label="fold: events/s (Pass/Choice loop)",
            unit="/s",
            target=500_000,
        ),
        Metric(key="fold_loop_events", label="fold: history length (loop)", unit=""),
        Metric(key="resume_open_seconds", label="resume: until async with returns", unit="s"),
        Metric(
            key="resume_seconds",
            label="resume: until all parked again",
            unit="s",
            target=10,
            better="lower",
        ),
        Metric(key="resumed_per_s", label="resume: executions/s", unit="/s"),
    ),
    run=run,
)
