"""Every definition of an AWS-recorded execution (``cases/*.json``) ran on AWS, so it must load."""

from __future__ import annotations

from typing import Any

import pytest
from definition_data import MISSING, load_cases

from runtime.definition import StateMachine, load_definition

CASES = load_cases("cases")


@pytest.mark.conformance
@pytest.mark.skipif(not CASES, reason=MISSING)
@pytest.mark.parametrize(("name", "case"), CASES, ids=[name for name, _ in CASES])
def test_recorded_definition_loads(name: str, case: dict[str, Any]) -> None:
    machine = load_definition(
        case["definition"], machine_type=case.get("machine_type") or "STANDARD"
    )
    assert isinstance(machine, StateMachine)
    assert machine.start_at in machine.states
