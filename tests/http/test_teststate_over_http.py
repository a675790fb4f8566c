"""The recorded TestState calls (``../shared/conformance/teststate``) through boto3's
``test_state`` against a server: the API answers as :func:`runtime.teststate.test_state` does.

Read in place (skipped when the folder is absent). The Lambda behaviours the cases' unmocked
Tasks call are registered on the server's runtime under the names the cases use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conformance.harness import load_compare
from tests.http.sfn_server import Server, client_for
from tests.teststate.cases import FOLDER, ROLE_ARN, available, case_files

JSON = Any
FILES = case_files()

pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(not available(), reason=f"the TestState cases are absent ({FOLDER})"),
]


@pytest.fixture(scope="module")
def teststate_server() -> Iterator[Server]:
    running = Server()
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def compare() -> ModuleType:
    return load_compare()


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_recorded_test_state_call(
    path: Path, teststate_server: Server, compare: ModuleType
) -> None:
    case = json.loads(path.read_text())
    sfn = client_for(teststate_server.url)
    try:
        response = sfn.test_state(**{"roleArn": ROLE_ARN, **case["params"]})
    except ClientError as refused:
        response = {"Error": dict(refused.response["Error"])}
    passed, category, detail = compare.compare_test_state(case, response)
    assert passed, f"{category}: {detail}"
