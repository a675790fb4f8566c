"""The bounded fuzz of issue 11 in the normal suite (the long one is ``benchmarks/fuzz.py``).

Hypothesis draws a family and a seed; ``benchmarks.fuzz_gen`` turns them into a definition and an
input (so a failing example prints a reproducible ``(family, seed)``). Properties:

- every generated definition, and every mutation of it, loads or raises ``InvalidDefinition``,
  never anything else;
- every generated execution ends (or is rejected with ``InvalidExecutionInput``) without an
  internal error, an exception escaping the public API, a hang or a runaway history, and the
  canary (10 Pass states) still finishes in the same runtime afterwards.

Families whose hostile inputs still break the runtime (issue 11 is being fixed) are run as
``xfail(strict=True)`` cases naming the failure, so that each turns into an error the day its
fix lands and the lead moves it into ``PASSING``.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.fuzz_families import FAMILIES, make_case
from benchmarks.fuzz_gen import mutate
from benchmarks.fuzz_worker import HANDLERS, Outcome, quiet_logs, run_case, try_load
from runtime import Runtime

#: Every family's definitions load or are refused cleanly today.
LOAD_PASSING = tuple(FAMILIES)
#: Families whose executions end cleanly today (the long fuzz of 2026-12-01 found no failure in
#: them). Left out until their fixes land: ``jsonata_blowup`` (freezes the event loop inside
#: the JSONata engine, which no in-process test can survive) and the families the report lists.
RUN_PASSING = (
    "random",
    "jsonata",
    "corpus",
    "deep",
    "huge",
    "regex",
    "string_matches",
    "intrinsic_blowup",
)

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


async def _run(family: str, seed: int) -> tuple[Outcome, str | None]:
    quiet_logs()
    case = make_case(family, seed)
    async with Runtime(
        "memory", handlers=HANDLERS, virtual_time=True, request_poll_interval=None
    ) as rt:
        canary = await rt.create_state_machine(
            "Canary",
            {
                "StartAt": "P0",
                "States": {
                    f"P{i}": {"Type": "Pass", **({"Next": f"P{i + 1}"} if i < 9 else {"End": True})}
                    for i in range(10)
                },
            },
        )
        outcome = await run_case(rt, case)
        started = await rt.start_execution(canary.arn, {})
        after = await rt.wait_for_execution(started.execution_arn, timeout=5)
        for arn in list(rt.engine.live):
            await rt.stop_execution(arn)
    return outcome, after.status


@pytest.mark.parametrize("family", RUN_PASSING)
@settings(settings.get_profile("fuzz"), max_examples=3)
@given(seed=seeds)
def test_generated_executions_end_without_internal_errors(family: str, seed: int) -> None:
    outcome, canary = asyncio.run(_run(family, seed))
    assert outcome.kind is None, (family, seed, outcome)
    assert canary == "SUCCEEDED"


#: Each still-failing family with one seed that fails today and why (found by the long fuzz);
#: only failures that end (an internal error, a hang the watchdog reports), never a family that
#: freezes the event loop.
KNOWN_FAILING_RUNS = [
    pytest.param(
        "malformed",
        47,
        marks=pytest.mark.xfail(
            strict=True,
            reason="issue 11: a lone surrogate in a definition escapes create_state_machine as "
            "UnicodeEncodeError (runtime/core/session.py dumps)",
        ),
    ),
]


@pytest.mark.parametrize(("family", "seed"), KNOWN_FAILING_RUNS)
def test_known_failing_run_families(family: str, seed: int) -> None:
    outcome, canary = asyncio.run(_run(family, seed))
    assert outcome.kind is None, (family, seed, outcome)
    assert canary == "SUCCEEDED"
