"""Runs the AWS-recorded TestState cases (``../shared/conformance/teststate``) through
:func:`runtime.teststate.test_state`, read from where they live, never copied.

A recorded case names no handlers: the Tasks that ran without a mock called Lambda functions
whose recorded results say what they were (a function ARN returned the raw bytes
``"HelloWorld!"``; ``lambda:invoke`` returned its input), so those behaviours of the execution
cases' harness are registered under the function names a case uses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from runtime.engine.handlers import Handler
from runtime.errors import InvalidDefinition
from runtime.teststate import TestStateError, test_state
from tests.conformance import harness

JSON = Any

FOLDER = harness.CONFORMANCE / "teststate"
#: The role a client sends with its request (the recordings leave it out).
ROLE_ARN = "arn:aws:iam::000000000000:role/StepFunctionsRole"
_FUNCTION_ARN = re.compile(r"arn:aws:lambda:[^:]*:[^:]*:function:([A-Za-z0-9_-]+)")


def available() -> bool:
    """Whether the recorded TestState cases are beside the checkout."""
    return FOLDER.is_dir()


def case_files() -> list[Path]:
    return sorted(FOLDER.glob("*.json")) if available() else []


def handlers_for(params: dict[str, JSON]) -> dict[str, Handler]:
    """The Lambda behaviours a case's unmocked Task calls, under the names it uses."""
    found: dict[str, Handler] = {}
    for name in _FUNCTION_ARN.findall(params.get("definition", "")):
        found[name] = harness.return_bytes_str
    data = json.loads(params.get("input") or "{}")
    if isinstance(data, dict) and isinstance(data.get("FunctionName"), str):
        found[data["FunctionName"]] = harness.id_function
    return found


def run(case: dict[str, JSON]) -> dict[str, JSON]:
    """The case's response, or ``{"Error": {"Code", "Message"}}`` when the call is refused."""
    params = {"roleArn": ROLE_ARN, **case["params"]}
    try:
        return test_state(params, handlers=handlers_for(case["params"]))
    except TestStateError as refused:
        return {"Error": {"Code": refused.code, "Message": refused.message}}
    except InvalidDefinition as invalid:
        return {"Error": {"Code": "InvalidDefinition", "Message": invalid.message}}
