"""Every AWS-recorded TestState call (``../shared/conformance/teststate``) run through
:func:`runtime.teststate.test_state` and compared with ``compare_test_state`` of the shared
``compare.py``.

Cases that still differ are listed in ``known_failures.json`` (file name -> reason) and run as
``xfail(strict=True)``, so the passing set cannot shrink: a listed case that starts passing fails
the suite until its entry is removed. Without the conformance folder every case skips.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import harness
from tests.teststate import cases

KNOWN_FAILURES_FILE = Path(__file__).with_name("known_failures.json")
KNOWN_FAILURES: dict[str, str] = json.loads(KNOWN_FAILURES_FILE.read_text(encoding="utf-8"))
MISSING = (
    f"AWS conformance data not found at {cases.FOLDER} "
    "(expected beside the checkout as ../shared/conformance/teststate)"
)
COMPARE = harness.load_compare() if cases.available() else None

pytestmark = pytest.mark.conformance


def _params() -> list[Any]:
    files = cases.case_files()
    if not files:
        return [pytest.param(None, id="no-cases", marks=pytest.mark.skip(reason=MISSING))]
    return [
        pytest.param(
            path,
            id=path.stem,
            marks=(
                [pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[path.name])]
                if path.name in KNOWN_FAILURES
                else []
            ),
        )
        for path in files
    ]


@pytest.mark.parametrize("path", _params())
def test_recorded_case(path: Path) -> None:
    assert COMPARE is not None
    case = json.loads(path.read_text(encoding="utf-8"))
    response = cases.run(case)
    passed, category, detail = COMPARE.compare_test_state(case, response)
    assert passed, f"{category}: {detail}"


def test_known_failures_name_existing_cases() -> None:
    """Every entry of the known-failures file names a recorded case, with a reason."""
    if not cases.available():
        pytest.skip(MISSING)
    names = {path.name for path in cases.case_files()}
    assert set(KNOWN_FAILURES) <= names
    assert all(reason.strip() for reason in KNOWN_FAILURES.values())
