"""Replays a recorded API case (``../shared/conformance/api``) through boto3 against a server.

README.md there, "An API case": each call runs in order; ARNs the recording's stand-in returned
(``fake``) are replaced in later ``params`` by the ones this server returned; a call passes when
its error code is AWS's, or when the response has AWS's fields and values (dates become the
``"datetime"`` placeholder, JSON-text fields are compared parsed). Calls AWS recorded nothing
for (``expected`` null) run but are not scored.
"""

from __future__ import annotations

import datetime as dt
from types import ModuleType
from typing import Any

from botocore.exceptions import ClientError, ParamValidationError

JSON = Any


def _dates(value: JSON) -> JSON:
    if isinstance(value, dt.datetime):
        return "datetime"
    if isinstance(value, dict):
        return {k: _dates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_dates(v) for v in value]
    return value


def _arns(fake: JSON, real: JSON, into: dict[str, str]) -> None:
    """Pair each ARN of the stand-in's response with the server's at the same place."""
    if isinstance(fake, dict) and isinstance(real, dict):
        for key, value in fake.items():
            _arns(value, real.get(key), into)
    elif isinstance(fake, list) and isinstance(real, list):
        for a, b in zip(fake, real, strict=False):
            _arns(a, b, into)
    elif isinstance(fake, str) and isinstance(real, str) and fake.startswith("arn:"):
        into[fake] = real


def _replace(value: JSON, arns: dict[str, str]) -> JSON:
    if isinstance(value, str):
        for fake in sorted(arns, key=len, reverse=True):
            if value.startswith(fake):
                return arns[fake] + value[len(fake) :]
        return value
    if isinstance(value, dict):
        return {k: _replace(v, arns) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, arns) for v in value]
    return value


def replay(case: dict[str, JSON], client: Any, compare: ModuleType) -> list[tuple[int, str, str]]:
    """Run the case's calls; returns (index, op, mismatch) of each scored call that failed
    (empty: every scored call passed)."""
    arns: dict[str, str] = {}
    failures: list[tuple[int, str, str]] = []
    ctx = compare.Ctx(case)
    for index, call in enumerate(case["calls"]):
        op, expected = call["op"], call["expected"]
        params = _replace(call["params"], arns)
        try:
            response = getattr(client, op)(**params)
        except ParamValidationError as exc:
            got: JSON = {"Error": {"Code": "ParamValidationError", "Message": str(exc)}}
        except ClientError as exc:
            got = {"Error": dict(exc.response["Error"])}
        else:
            got = _dates({k: v for k, v in response.items() if k != "ResponseMetadata"})
            if call.get("fake"):
                _arns(call["fake"], got, arns)
        if expected is None:
            continue
        if "Error" in expected:
            code = got.get("Error", {}).get("Code") if isinstance(got, dict) else None
            if code != expected["Error"]["Code"]:
                failures.append((index, op, f"expected {expected['Error']['Code']} got {got}"))
            continue
        actual = compare._parse_json_strings(expected, got)
        mismatch = compare.match(expected, actual, ctx)
        if mismatch:
            failures.append((index, op, mismatch))
    return failures
