"""Every definition AWS accepted or rejected (``validation/*.json``) gets AWS's verdict here.

Where AWS's message is in the CreateStateMachine form (``Invalid State Machine Definition:
'CODE: detail at /pointer'``) or a ValidateStateMachineDefinition diagnostic, the rule code,
the JSON Pointer and the wording are asserted too; recording placeholders such as
``<partition>`` match anything.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from definition_data import MISSING, load_cases, load_compare

from runtime.definition import load_definition
from runtime.errors import InvalidDefinition

CASES = load_cases("validation")
COMPARE = load_compare()

_AWS_MESSAGE = re.compile(r"Invalid State Machine Definition: '(\w+): (.*) at (\S*)'", re.S)
_PLACEHOLDER = re.compile(r"<[A-Za-z_][A-Za-z0-9_\-.: +]*>")


def _matches(expected: str, actual: str) -> bool:
    """Equality where ``<token>`` placeholders in ``expected`` match any text."""
    parts = _PLACEHOLDER.split(expected)
    pattern = ".*?".join(re.escape(part) for part in parts)
    return re.fullmatch(pattern, actual, re.S) is not None


def _run(case: dict[str, Any]) -> tuple[str, InvalidDefinition | None]:
    try:
        load_definition(
            case["definition_text"], machine_type=case.get("machine_type") or "STANDARD"
        )
    except InvalidDefinition as error:
        return "INVALID", error
    return "VALID", None


@pytest.mark.conformance
@pytest.mark.skipif(not CASES or COMPARE is None, reason=MISSING)
@pytest.mark.parametrize(("name", "case"), CASES, ids=[name for name, _ in CASES])
def test_validation_case(name: str, case: dict[str, Any]) -> None:
    assert COMPARE is not None
    status, error = _run(case)
    passed, category, detail = COMPARE.compare_validation(case, {"status": status})
    assert passed, f"{category}: {detail}; got {error.message if error else 'VALID'}"
    expected = case["expected"]
    if error is None:
        return
    if "message" in expected and (match := _AWS_MESSAGE.fullmatch(expected["message"])):
        code, wording, pointer = match.groups()
        assert (error.code, error.pointer) == (code, pointer)
        assert _matches(wording, error.detail), error.detail
    for diagnostic in expected.get("diagnostics", [])[:1]:
        assert error.code == diagnostic["code"]
        assert error.pointer == diagnostic["location"]
        message = diagnostic["message"].split("\n at [Source:")[0]
        assert _matches(message.strip(), error.detail), error.detail


def test_cases_present_or_skipped_clearly() -> None:
    """The data folder is optional; when present it must hold the recorded cases."""
    if not CASES:
        pytest.skip(MISSING)
    assert len(CASES) >= 68
