"""Every AWS-recorded execution case (``../shared/conformance/cases``) run through the runtime.

One test per case file, compared with the shared ``compare.py`` rules. Cases the runtime does not
pass yet are listed in ``known_failures.json`` (file name -> reason) and run as
``xfail(strict=True)``: a listed case that starts passing fails the suite until its entry is
removed. Two aggregate tests hold the bar of issue 2 for the cases outside the JSONata work: at
least 98% pass, and at least 90% of those with a recorded history log AWS's event types in AWS's
order. Each case runs once per session; the aggregates reuse the per-case results (and run any
case that was deselected).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.conformance import harness

MISSING = (
    f"AWS conformance data not found at {harness.CONFORMANCE} "
    "(expected beside the checkout as ../shared/conformance)"
)
KNOWN_FAILURES_FILE = Path(__file__).with_name("known_failures.json")
KNOWN_FAILURES: dict[str, str] = json.loads(KNOWN_FAILURES_FILE.read_text(encoding="utf-8"))
CASES = harness.case_files("cases")
COMPARE = harness.load_compare() if harness.available() else None

#: Bars from issue 2 ("Done when") for the cases not tagged with a JSONata feature.
MIN_PASS_RATE = 0.98
MIN_HISTORY_ORDER_RATE = 0.90

pytestmark = pytest.mark.conformance


class Outcome(NamedTuple):
    passed: bool
    category: str
    detail: str
    history: tuple[bool, bool] | None
    """``compare_history``: (same types in the same order, same types as a multiset)."""
    jsonata: bool


RESULTS: dict[str, Outcome] = {}
"""File name -> outcome, so each case runs once per session."""


async def _run(case: dict[str, Any]) -> dict[str, Any]:
    try:
        return await harness.run_case(case)
    except Exception as exc:  # the comparison reports it as the case's failure
        return {"status": "ADAPTER_ERROR", "detail": f"{type(exc).__name__}: {exc}"}


def outcome(path: Path) -> Outcome:
    """Run the case at ``path`` (once) and compare it with AWS's recording."""
    cached = RESULTS.get(path.name)
    if cached is not None:
        return cached
    assert COMPARE is not None
    case = harness.load_case(path)
    result = asyncio.run(_run(case))
    passed, category, detail = COMPARE.compare_execution(case, result)
    history = COMPARE.compare_history(case, result)
    jsonata = bool(set(case.get("features") or ()) & harness.JSONATA_TAGS)
    found = Outcome(bool(passed), str(category), str(detail), history, jsonata)
    RESULTS[path.name] = found
    return found


def _params() -> list[Any]:
    if not CASES or COMPARE is None:
        skip = pytest.mark.skip(reason=MISSING)
        return [pytest.param(None, id="no-conformance-data", marks=skip)]
    params = []
    for path in CASES:
        reason = KNOWN_FAILURES.get(path.name)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("path", _params())
def test_case(path: Path) -> None:
    found = outcome(path)
    assert found.passed, f"{found.category}: {found.detail}"


needs_data = pytest.mark.skipif(not CASES or COMPARE is None, reason=MISSING)


def _core_outcomes() -> dict[str, Outcome]:
    """Outcomes of every case outside the JSONata work (running those not yet run)."""
    out: dict[str, Outcome] = {}
    for path in CASES:
        found = outcome(path)
        if not found.jsonata:
            out[path.name] = found
    return out


@needs_data
@pytest.mark.timeout(600)
def test_pass_rate_of_non_jsonata_cases() -> None:
    outcomes = _core_outcomes()
    failing = sorted(name for name, found in outcomes.items() if not found.passed)
    rate = 1 - len(failing) / len(outcomes)
    assert rate >= MIN_PASS_RATE, f"{rate:.1%} of {len(outcomes)} pass; failing: {failing}"


@needs_data
@pytest.mark.timeout(600)
def test_history_order_of_non_jsonata_cases() -> None:
    compared = {n: f.history for n, f in _core_outcomes().items() if f.history is not None}
    assert compared, "no case with a recorded history"
    out_of_order = sorted(name for name, (exact, _) in compared.items() if not exact)
    rate = 1 - len(out_of_order) / len(compared)
    assert rate >= MIN_HISTORY_ORDER_RATE, (
        f"{rate:.1%} of {len(compared)} histories in AWS order; differing: {out_of_order}"
    )


@needs_data
def test_known_failures_name_existing_cases() -> None:
    names = {path.name for path in CASES}
    stale = sorted(set(KNOWN_FAILURES) - names)
    assert not stale, f"known_failures.json lists cases that do not exist: {stale}"
