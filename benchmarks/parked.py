"""``parked``: N executions that each Wait ``wait_s`` seconds then Pass, on SQLite (FULL).

Measured:

- start: time to start all N (``wave`` starts handed to the runtime at once) and starts/s;
- memory: peak RSS of the process (``ru_maxrss``) and bytes per parked execution, the growth
  of the resident set from before the first start to the moment most executions were held,
  divided by how many were held then (parked plus live);
- drain: time from the first timer being due (first start + ``wait_s``) until the last
  execution ended, and the tail, from the last timer being due until the last end;
- timer lateness: for a sample of executions spread over the run (``lateness_sample``),
  WaitStateExited's timestamp minus (WaitStateEntered's timestamp + ``wait_s``), p50/p99/max.

The client keeps no per-execution state (names are ``p<i>`` and ARNs are derived from the first
one) so that the resident set measures the runtime, not the benchmark.
"""

from __future__ import annotations

import asyncio

from benchmarks.common import (
    UNBOUNDED,
    Measured,
    Metric,
    Params,
    Progress,
    Scenario,
    as_int,
    current_rss_bytes,
    now,
    open_store,
    peak_rss_bytes,
    percentile,
    sqlite_file,
)
from runtime import Runtime

#: Statuses an execution of this scenario must not end with (or still have).
_NOT_SUCCEEDED = ("RUNNING", "FAILED", "TIMED_OUT", "ABORTED")


def definition(wait_s: int) -> dict[str, object]:
    """Wait ``wait_s`` seconds (ASL: a whole number), then Pass."""
    return {
        "Comment": "wait, then pass",
        "StartAt": "Park",
        "States": {
            "Park": {"Type": "Wait", "Seconds": wait_s, "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    }


async def run(params: Params, progress: Progress) -> Measured:
    """Start N waiting executions, let their timers fire, and measure."""
    measured = Measured()
    n = as_int(params, "n")
    wait_s = as_int(params, "wait_s")
    wave = as_int(params, "wave")
    sample = min(n, as_int(params, "lateness_sample"))
    measured.info.update(n=n, wait_s=wait_s, wave=wave, lateness_sample=sample)
    async with (
        sqlite_file("parked") as path,
        open_store("sqlite", path) as store,
        Runtime(store=store, tune_gc=True, limits=UNBOUNDED) as rt,
    ):
        engine = rt.engine
        sm = await rt.create_state_machine("parked", definition(wait_s))
        rss_before = current_rss_bytes()
        held_peak = 0
        parked_peak = 0
        rss_at_peak: int | None = None

        def observe() -> None:
            nonlocal held_peak, parked_peak, rss_at_peak
            parked_now = len(engine.parked)
            held = parked_now + len(engine.live)
            parked_peak = max(parked_peak, parked_now)
            if held >= held_peak:
                held_peak = held
                rss_at_peak = current_rss_bytes()

        progress.start("parked/start", n)
        began = now()
        first_arn = (await rt.start_execution(sm.arn, {}, name="p0")).execution_arn
        prefix = first_arn.rsplit(":", 1)[0]
        for first in range(1, n, wave):
            last = min(n, first + wave)
            await asyncio.gather(
                *(rt.start_execution(sm.arn, {}, name=f"p{i}") for i in range(first, last))
            )
            progress.update(last)
            observe()
        started_at = now()
        progress.finish()

        progress.start("parked/drain", n)
        zero_seen = 0
        while zero_seen < 2:  # twice, 10 ms apart: an execution being revived is in neither
            remaining = len(engine.live) + len(engine.parked)
            zero_seen = zero_seen + 1 if remaining == 0 else 0
            observe()
            progress.update(n - remaining)
            await asyncio.sleep(0.01)
        ended_at = now() - 0.01
        progress.finish()
        peak_rss = peak_rss_bytes()

        stragglers = 0
        for status in _NOT_SUCCEEDED:
            stragglers += len(await rt.list_executions(sm.arn, status_filter=status))
        lateness = await _lateness(rt, prefix, n, sample, wait_s, progress)

    start_s = started_at - began
    measured.values["start_seconds"] = start_s
    measured.values["starts_per_s"] = n / start_s
    measured.values["peak_rss_mib"] = peak_rss / 2**20
    measured.values["held_peak"] = held_peak
    measured.values["parked_peak"] = parked_peak
    if rss_before is not None and rss_at_peak is not None and held_peak:
        measured.values["bytes_per_parked"] = (rss_at_peak - rss_before) / held_peak
    measured.values["drain_seconds"] = ended_at - (began + wait_s)
    measured.values["tail_seconds"] = ended_at - (started_at + wait_s)
    measured.values["total_seconds"] = ended_at - began
    measured.values["lateness_p50_s"] = percentile(lateness, 0.50)
    measured.values["lateness_p99_s"] = percentile(lateness, 0.99)
    measured.values["lateness_max_s"] = max(lateness, default=0.0)
    measured.checks["all_succeeded"] = stragglers == 0
    measured.checks["lateness_sampled"] = len(lateness) == sample
    measured.checks["never_early"] = min(lateness, default=0.0) >= -1e-3
    if start_s > wait_s:
        measured.notes.append(
            f"starting took {start_s:.1f}s, longer than the {wait_s:g}s Wait: timers fired "
            "while executions were still being started, so fewer were parked at once than n"
        )
    return measured


async def _lateness(
    rt: Runtime, prefix: str, n: int, sample: int, wait_s: float, progress: Progress
) -> list[float]:
    """Timer lateness of ``sample`` executions spread evenly over the N started."""
    lateness: list[float] = []
    if sample <= 0:
        return lateness
    step = n / sample
    progress.start("parked/lateness", sample)
    for k in range(sample):
        events = await rt.get_execution_history(f"{prefix}:p{int(k * step)}")
        entered = next((e.timestamp for e in events if e.type == "WaitStateEntered"), None)
        exited = next((e.timestamp for e in events if e.type == "WaitStateExited"), None)
        if entered is not None and exited is not None:
            lateness.append(exited - (entered + wait_s))
        progress.update(k + 1)
    progress.finish()
    return lateness


SCENARIO = Scenario(
    name="parked",
    description="executions that Wait then Pass on SQLite: memory per parked execution, "
    "timer lateness, drain",
    quick={"n": 300, "wait_s": 1, "wave": 100, "lateness_sample": 100},
    full={"n": 1_000_000, "wait_s": 30, "wave": 10_000, "lateness_sample": 10_000},
    metrics=(
        Metric(key="start_seconds", label="time to start all", unit="s"),
        Metric(key="starts_per_s", label="starts/s", unit="/s"),
        Metric(key="held_peak", label="most executions held at once", unit=""),
        Metric(key="peak_rss_mib", label="peak RSS", unit=" MiB", target=2048, better="lower"),
        Metric(key="bytes_per_parked", label="bytes per parked execution", unit=" B"),
        Metric(key="drain_seconds", label="drain (first timer due -> last end)", unit="s"),
        Metric(key="tail_seconds", label="tail (last timer due -> last end)", unit="s"),
        Metric(key="lateness_p50_s", label="timer lateness p50", unit="s"),
        Metric(
            key="lateness_p99_s", label="timer lateness p99", unit="s", target=1, better="lower"
        ),
        Metric(key="lateness_max_s", label="timer lateness max", unit="s"),
    ),
    run=run,
)
