"""The bounded fuzz of issue 11 in the normal suite (the long one is ``benchmarks/fuzz.py``).

Hypothesis draws a family and a seed; ``benchmarks.fuzz_families`` turns them into a definition
and an input (so a failing example prints a reproducible ``(family, seed)``). Properties:

- every generated definition, and every mutation of it, loads or raises ``InvalidDefinition``,
  never anything else; a mutation never modifies the definition it was made from;
- every generated execution ends (or is rejected with ``InvalidExecutionInput``) without an
  internal error, an exception escaping the public API, a hang or a runaway, and the canary
  (10 Pass states) still finishes in the same runtime afterwards;
- the fuzz's own judge reports a hang when an execution makes no progress.

Families whose hostile inputs still break the runtime are ``xfail(strict=True)`` cases naming
the failure, so that each turns into an error the day its fix lands and moves into
``RUN_PASSING``.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fuzz_families import FAMILIES, make_case
from benchmarks.fuzz_gen import Case, mutate
from benchmarks.fuzz_worker import Outcome, fuzz_runtime, quiet_logs, run_batch, run_case, try_load
from runtime import TaskContext

#: Every family's definitions load or are refused cleanly today.
LOAD_PASSING = tuple(FAMILIES)
#: Families whose executions end cleanly today (the long fuzz of 2026-12-01 found no failure in
#: them). Left out: ``jsonata_blowup`` (memory) and ``map`` (event loop held for seconds), see
#: ``KNOWN_FAILING``; an in-process test would not survive them.
RUN_PASSING = tuple(family for family in FAMILIES if family not in ("jsonata_blowup", "map"))

settings.register_profile(
    "fuzz",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)

seeds = st.integers(0, 2**31)


def _load_outcomes(family: str, seed: int) -> list[Outcome]:
    case = make_case(family, seed)
    outcomes = [try_load(case.definition, case.machine_type)]
    for variant in range(1, 4):
        mutated = mutate(case.definition, random.Random(f"{family}:{seed}:{variant}"))
        outcomes.append(try_load(mutated, case.machine_type))
    return outcomes


@pytest.mark.parametrize("family", LOAD_PASSING)
@settings(settings.get_profile("fuzz"), max_examples=12)
@given(seed=seeds)
def test_generated_definitions_load_or_raise_invalid_definition(family: str, seed: int) -> None:
    for outcome in _load_outcomes(family, seed):
        assert outcome.kind is None, (family, seed, outcome)
        assert outcome.status in ("loaded", "invalid")


@pytest.mark.parametrize("family", ["random", "jsonata", "corpus", "deep", "map"])
@settings(settings.get_profile("fuzz"), max_examples=10)
@given(seed=seeds, variant=st.integers(1, 10**6))
def test_mutation_copies_only_what_it_changes(family: str, seed: int, variant: int) -> None:
    case = make_case(family, seed)
    if not isinstance(case.definition, dict):
        return
    before = _fingerprint(case.definition)
    first = mutate(case.definition, random.Random(variant))
    again = mutate(case.definition, random.Random(variant))
    assert _fingerprint(case.definition) == before
    assert _fingerprint(first) == _fingerprint(again)


def _fingerprint(root: Any) -> list[str]:
    """Every node of a JSON value in order (iteratively: values nest 5,000 deep)."""
    out: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            out.append(f"{{{len(node)}")
            for key, child in node.items():
                out.append(repr(key))
                stack.append(child)
        elif isinstance(node, list):
            out.append(f"[{len(node)}")
            stack.extend(node)
        else:
            out.append(repr(node))
    return out


_CANARY = {
    "StartAt": "P0",
    "States": {
        f"P{i}": {"Type": "Pass", **({"Next": f"P{i + 1}"} if i < 9 else {"End": True})}
        for i in range(10)
    },
}


async def _run(family: str, seed: int) -> tuple[Outcome, str | None]:
    quiet_logs()
    case = make_case(family, seed)
    async with fuzz_runtime() as rt:
        canary = await rt.create_state_machine("Canary", _CANARY)
        outcome = await run_case(rt, case)
        for arn in [*rt.engine.live, *rt.engine.parked]:
            await rt.stop_execution(arn)
        started = await rt.start_execution(canary.arn, {})
        after = await rt.wait_for_execution(started.execution_arn, timeout=5)
    return outcome, after.status


@pytest.mark.parametrize("family", RUN_PASSING)
@settings(settings.get_profile("fuzz"), max_examples=3)
@given(seed=seeds)
def test_generated_executions_end_without_internal_errors(family: str, seed: int) -> None:
    outcome, canary = asyncio.run(_run(family, seed))
    assert outcome.kind is None, (family, seed, outcome)
    assert canary == "SUCCEEDED"


def test_a_batch_reports_an_execution_that_makes_no_progress_as_a_hang() -> None:
    never = asyncio.Event()

    async def stuck(event: Any, context: TaskContext) -> Any:
        await never.wait()  # not the runtime's clock: virtual time cannot move it
        return event

    async def go() -> list[Outcome]:
        quiet_logs()
        rt = fuzz_runtime()
        rt.handlers.update({"Stuck": stuck})
        async with rt:
            cases = [
                Case(
                    family="test",
                    seed=0,
                    name="Stuck",
                    definition={
                        "StartAt": "T",
                        "States": {"T": {"Type": "Task", "Resource": "Stuck", "End": True}},
                    },
                    input={},
                ),
                make_case("loops", 0),
            ]
            outcomes = await run_batch(rt, cases, stall_seconds=0.3)
            for arn in [*rt.engine.live, *rt.engine.parked]:
                await rt.stop_execution(arn)
            return outcomes

    stuck_outcome, loop_outcome = asyncio.run(go())
    assert stuck_outcome.kind == "hang"
    # The zero-time loop beside it ended by the fuzz runtime's history quota, not the judge.
    assert loop_outcome.kind is None
    assert loop_outcome.status == "FAILED"


_ROOT = Path(__file__).resolve().parent.parent

#: Cases that held the event loop or blew the memory up (found by the long fuzz of 2026-12-01),
#: with the memory each may take (MiB) and the longest it may hold the loop (s). Each runs in a
#: child process: a frozen event loop cannot be interrupted from inside. The case is a seed of
#: the family, or a definition written out.
KNOWN_FAILING = [
    pytest.param(
        "jsonata_blowup",
        10000769,
        # Bounded in time, not in memory: the Items $map([1..10000], function($v) {
        # [1..10000] }) allocates 400-800 MiB within its 500 ms budget, depending on how much
        # of the budget the machine gives it (runtime/lang/jsonata_engine.py). It stays within half
        # the 2 GiB the issue allows a process; a tighter bound would pass or fail by machine
        # speed (the strict xfail at 512 MiB passed on 2 of 3 runs here). It holds the loop
        # for its whole budget: 0.6 s was passed on a loaded machine.
        1024,
        1.0,
    ),
    pytest.param(
        "map",
        10001191,
        # A DISTRIBUTED Map over 40,000 items without MaxConcurrency: it held the event loop
        # for seconds, and stopping it took 5.5 s (the stop waited behind ~40,000 queued Task
        # results, then one decision aborted 40,000 iterations in flight). Now at most 10,000
        # run at once (AWS's default), and a stop goes ahead of the queue.
        512,
        0.6,
    ),
]


def _held_and_peak(build: str, timeout: float = 5) -> tuple[float, int, int]:
    """Run the case ``build`` makes in a child process for at most 2 s beside a 10 ms ticker:
    the longest time the ticker waited (how long the event loop was held at once), the
    child's peak RSS in bytes and how many executions the store then held (a distributed
    Map's children are executions). A frozen event loop cannot be interrupted from inside."""
    code = textwrap.dedent(
        """
        import asyncio, contextlib, time
        from benchmarks.fuzz_families import make_case
        from benchmarks.fuzz_gen import Case
        from benchmarks.fuzz_worker import fuzz_runtime, quiet_logs, run_case
        quiet_logs()
        {build}
        longest = 0.0
        async def tick():
            global longest
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                longest, last = max(longest, now - last), now
        async def go():
            ticker = asyncio.ensure_future(tick())
            async with fuzz_runtime() as rt:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(run_case(rt, case), 2)
                import resource
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                executions = len(await rt.list_executions(max_results=10**7))
                print(longest, rss, executions, flush=True)
                ticker.cancel()
                # Executions the case started (not children: a Map Run's are stopped with it).
                for arn in [*rt.engine.live, *rt.engine.parked]:
                    record = rt.engine.record_of(arn)
                    if record is None or record.parent_execution_arn is None:
                        await rt.stop_execution(arn)
        asyncio.run(go())
        """
    ).replace("{build}", build)
    began = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the event loop was still held after {time.monotonic() - began:.1f} s")
    longest, rss, executions = done.stdout.split()
    return float(longest), int(rss), int(executions)


@pytest.mark.parametrize(("family", "case", "rss_mib", "held_s"), KNOWN_FAILING)
def test_known_failing_family_neither_holds_the_loop_nor_blows_up(
    family: str, case: Any, rss_mib: int, held_s: float
) -> None:
    if isinstance(case, int):
        build = f"case = make_case({family!r}, {case})"
    else:
        build = f"case = Case(family={family!r}, seed=0, definition={case!r}, input={{}}, name='B')"
    longest, rss, _ = _held_and_peak(build)
    assert longest < held_s, f"the event loop was held for {longest:.2f} s at once"
    assert rss < rss_mib * 1024**2, f"the process grew to {rss / 2**20:.0f} MiB"


#: A Map of 40,000 items whose ItemSelector builds 16 KiB per item (issue 11): selecting every
#: item when the Map started built 640 MiB of inputs in one decision (2.5 GiB peak, the loop
#: held 3.5 s); selected as each iteration starts, within MaxConcurrency 10, it stays small.
_LARGE_SELECTION = {
    "StartAt": "M",
    "States": {
        "M": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 10,
            "ItemSelector": {"blob.$": "States.Format('{}-{}', $.blob, $$.Map.Item.Value)"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                "StartAt": "P",
                "States": {"P": {"Type": "Pass", "Result": 1, "End": True}},
            },
            "End": True,
        }
    },
}


def test_a_map_selecting_a_large_input_per_item_stays_within_memory() -> None:
    build = (
        f"case = Case(family='map', seed=0, definition={_LARGE_SELECTION!r}, "
        "input={'items': list(range(40_000)), 'blob': 'x' * 16_384}, name='B')"
    )
    # Memory only: the loop's longest hold is noisy on a shared machine (measured 0.15 s).
    # The memory store keeps every finished child's log (its 16 KiB input more than once), so
    # the peak grows with the children run in the 2 s, which a faster machine runs more of:
    # the bound allows 64 KiB per execution held beyond a fixed 320 MiB. Measured: 27-38 KiB
    # an execution beyond 160 MiB alone, but 421 MiB for 4,141 executions in a CI run beside
    # other work (the fixed part, the process and the parent's 40,000 items, is what a
    # starved run shows). Selecting every item at the start (the bug) built 640 MiB more in
    # one decision, whatever the progress: past this bound at any count of executions.
    _, rss, executions = _held_and_peak(build, timeout=60)
    bound = 320 * 1024**2 + executions * 64 * 1024
    assert rss < bound, f"the process grew to {rss / 2**20:.0f} MiB ({executions} executions)"
