"""The recorded API sequences (``../shared/conformance/api``) replayed through boto3.

Read from the shared folder in place (skipped with a message when it is absent). Each case is a
test; the cases known to fail are listed with their reasons in ``api_known_failures.json`` and
are ``xfail(strict=True)``: a fixed one must leave the list, so the passing set never shrinks.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conformance.harness import CONFORMANCE, available, case_files, load_case, load_compare
from tests.http.api_replay import replay
from tests.http.sfn_server import Server, client_for

JSON = Any
KNOWN: dict[str, str] = json.loads((Path(__file__).parent / "api_known_failures.json").read_text())
FILES = case_files("api")

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(not available(), reason=f"the conformance folder is absent ({CONFORMANCE})"),
]


def _param(path: Path) -> Any:
    case_id = path.stem
    marks = []
    if case_id in KNOWN:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[case_id]))
    return pytest.param(path, id=case_id, marks=marks)


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    return load_compare()


def test_every_known_failure_is_a_case() -> None:
    assert set(KNOWN) <= {path.stem for path in FILES}


@pytest.mark.parametrize("path", [_param(path) for path in FILES])
def test_api_case(path: Path, server: Server, compare: ModuleType) -> None:
    case = load_case(path)
    failures = replay(case, client_for(server.url), compare)
    assert not failures, failures
