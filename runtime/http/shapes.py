"""The request shapes of the Step Functions API (botocore's ``stepfunctions`` model, 2016-11-23).

One row per action: each top-level request member with its JSON type, whether it is required
and its length, range or enum constraint, as the service model states them. The table is data
written once from the model; ``tests/http/test_shapes.py`` checks it against botocore's copy,
so the runtime itself never imports botocore.

:func:`check_request` applies a row to a decoded request body the way the service does:
a value of the wrong JSON type is a ``SerializationException``; a missing required member or a
value outside its constraint is a ``ValidationException`` listing every violation in AWS's
wording ("1 validation error detected: Value ... at 'name' failed to satisfy constraint: ...").
Members the model does not list are ignored, as the service ignores them.

Imports only the standard library and :mod:`runtime.http.protocol`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, final

from runtime.http.protocol import ApiError

__all__ = ["REQUESTS", "Member", "check_request"]

JSON = Any


@final
@dataclass(frozen=True, slots=True)
class Member:
    """One request member: its model type and constraints."""

    type: str
    """``string``, ``integer``, ``long``, ``float``, ``boolean``, ``list`` or ``structure``."""
    required: bool = False
    min: int | None = None
    max: int | None = None
    enum: tuple[str, ...] | None = None


REQUESTS: Final[dict[str, dict[str, Member]]] = {
    "CreateActivity": {
        "name": Member("string", required=True, min=1, max=80),
        "tags": Member("list"),
        "encryptionConfiguration": Member("structure"),
    },
    "CreateStateMachine": {
        "name": Member("string", required=True, min=1, max=80),
        "definition": Member("string", required=True, min=1, max=1048576),
        "roleArn": Member("string", required=True, min=1, max=256),
        "type": Member(
            "string",
            enum=(
                "STANDARD",
                "EXPRESS",
            ),
        ),
        "loggingConfiguration": Member("structure"),
        "tags": Member("list"),
        "tracingConfiguration": Member("structure"),
        "publish": Member("boolean"),
        "versionDescription": Member("string", max=256),
        "encryptionConfiguration": Member("structure"),
    },
    "CreateStateMachineAlias": {
        "description": Member("string", max=256),
        "name": Member("string", required=True, min=1, max=80),
        "routingConfiguration": Member("list", required=True, min=1, max=2),
    },
    "DeleteActivity": {
        "activityArn": Member("string", required=True, min=1, max=256),
    },
    "DeleteStateMachine": {
        "stateMachineArn": Member("string", required=True, min=1, max=256),
    },
    "DeleteStateMachineAlias": {
        "stateMachineAliasArn": Member("string", required=True, min=1, max=256),
    },
    "DeleteStateMachineVersion": {
        "stateMachineVersionArn": Member("string", required=True, min=1, max=2000),
    },
    "DescribeActivity": {
        "activityArn": Member("string", required=True, min=1, max=256),
    },
    "DescribeExecution": {
        "executionArn": Member("string", required=True, min=1, max=256),
        "includedData": Member(
            "string",
            enum=(
                "ALL_DATA",
                "METADATA_ONLY",
            ),
        ),
    },
    "DescribeMapRun": {
        "mapRunArn": Member("string", required=True, min=1, max=2000),
    },
    "DescribeStateMachine": {
        "stateMachineArn": Member("string", required=True, min=1, max=256),
        "includedData": Member(
            "string",
            enum=(
                "ALL_DATA",
                "METADATA_ONLY",
            ),
        ),
    },
    "DescribeStateMachineAlias": {
        "stateMachineAliasArn": Member("string", required=True, min=1, max=256),
    },
    "DescribeStateMachineForExecution": {
        "executionArn": Member("string", required=True, min=1, max=256),
        "includedData": Member(
            "string",
            enum=(
                "ALL_DATA",
                "METADATA_ONLY",
            ),
        ),
    },
    "GetActivityTask": {
        "activityArn": Member("string", required=True, min=1, max=256),
        "workerName": Member("string", min=1, max=80),
    },
    "GetExecutionHistory": {
        "executionArn": Member("string", required=True, min=1, max=256),
        "maxResults": Member("integer", min=0, max=1000),
        "reverseOrder": Member("boolean"),
        "nextToken": Member("string", min=1, max=1024),
        "includeExecutionData": Member("boolean"),
    },
    "ListActivities": {
        "maxResults": Member("integer", min=0, max=1000),
        "nextToken": Member("string", min=1, max=1024),
    },
    "ListExecutions": {
        "stateMachineArn": Member("string", min=1, max=256),
        "statusFilter": Member(
            "string",
            enum=(
                "RUNNING",
                "SUCCEEDED",
                "FAILED",
                "TIMED_OUT",
                "ABORTED",
                "PENDING_REDRIVE",
            ),
        ),
        "maxResults": Member("integer", min=0, max=1000),
        "nextToken": Member("string", min=1, max=3096),
        "mapRunArn": Member("string", min=1, max=2000),
        "redriveFilter": Member(
            "string",
            enum=(
                "REDRIVEN",
                "NOT_REDRIVEN",
            ),
        ),
    },
    "ListMapRuns": {
        "executionArn": Member("string", required=True, min=1, max=256),
        "maxResults": Member("integer", min=0, max=1000),
        "nextToken": Member("string", min=1, max=1024),
    },
    "ListStateMachineAliases": {
        "stateMachineArn": Member("string", required=True, min=1, max=256),
        "nextToken": Member("string", min=1, max=1024),
        "maxResults": Member("integer", min=0, max=1000),
    },
    "ListStateMachineVersions": {
        "stateMachineArn": Member("string", required=True, min=1, max=256),
        "nextToken": Member("string", min=1, max=1024),
        "maxResults": Member("integer", min=0, max=1000),
    },
    "ListStateMachines": {
        "maxResults": Member("integer", min=0, max=1000),
        "nextToken": Member("string", min=1, max=1024),
    },
    "ListTagsForResource": {
        "resourceArn": Member("string", required=True, min=1, max=256),
    },
    "PublishStateMachineVersion": {
        "stateMachineArn": Member("string", required=True, min=1, max=256),
        "revisionId": Member("string"),
        "description": Member("string", max=256),
    },
    "RedriveExecution": {
        "executionArn": Member("string", required=True, min=1, max=256),
        "clientToken": Member("string", min=1, max=64),
    },
    "SendTaskFailure": {
        "taskToken": Member("string", required=True, min=1, max=2048),
        "error": Member("string", min=0, max=256),
        "cause": Member("string", min=0, max=32768),
    },
    "SendTaskHeartbeat": {
        "taskToken": Member("string", required=True, min=1, max=2048),
    },
    "SendTaskSuccess": {
        "taskToken": Member("string", required=True, min=1, max=2048),
        "output": Member("string", required=True, max=262144),
    },
    "StartExecution": {
        "stateMachineArn": Member("string", required=True, min=1, max=256),
        "name": Member("string", min=1, max=80),
        "input": Member("string", max=262144),
        "traceHeader": Member("string", min=0, max=256),
    },
    "StartSyncExecution": {
        "stateMachineArn": Member("string", required=True, min=1, max=256),
        "name": Member("string", min=1, max=80),
        "input": Member("string", max=262144),
        "traceHeader": Member("string", min=0, max=256),
        "includedData": Member(
            "string",
            enum=(
                "ALL_DATA",
                "METADATA_ONLY",
            ),
        ),
    },
    "StopExecution": {
        "executionArn": Member("string", required=True, min=1, max=256),
        "error": Member("string", min=0, max=256),
        "cause": Member("string", min=0, max=32768),
    },
    "TagResource": {
        "resourceArn": Member("string", required=True, min=1, max=256),
        "tags": Member("list", required=True),
    },
    "TestState": {
        "definition": Member("string", required=True, min=1, max=1048576),
        "roleArn": Member("string", min=1, max=256),
        "input": Member("string", max=262144),
        "inspectionLevel": Member(
            "string",
            enum=(
                "INFO",
                "DEBUG",
                "TRACE",
            ),
        ),
        "revealSecrets": Member("boolean"),
        "variables": Member("string", max=262144),
        "stateName": Member("string", min=1, max=80),
        "mock": Member("structure"),
        "context": Member("string", max=262144),
        "stateConfiguration": Member("structure"),
    },
    "UntagResource": {
        "resourceArn": Member("string", required=True, min=1, max=256),
        "tagKeys": Member("list", required=True),
    },
    "UpdateMapRun": {
        "mapRunArn": Member("string", required=True, min=1, max=2000),
        "maxConcurrency": Member("integer", min=0),
        "toleratedFailurePercentage": Member("float", min=0, max=100),
        "toleratedFailureCount": Member("long", min=0),
    },
    "UpdateStateMachine": {
        "stateMachineArn": Member("string", required=True, min=1, max=256),
        "definition": Member("string", min=1, max=1048576),
        "roleArn": Member("string", min=1, max=256),
        "loggingConfiguration": Member("structure"),
        "tracingConfiguration": Member("structure"),
        "publish": Member("boolean"),
        "versionDescription": Member("string", max=256),
        "encryptionConfiguration": Member("structure"),
    },
    "UpdateStateMachineAlias": {
        "stateMachineAliasArn": Member("string", required=True, min=1, max=256),
        "description": Member("string", max=256),
        "routingConfiguration": Member("list", min=1, max=2),
    },
    "ValidateStateMachineDefinition": {
        "definition": Member("string", required=True, min=1, max=1048576),
        "type": Member(
            "string",
            enum=(
                "STANDARD",
                "EXPRESS",
            ),
        ),
        "severity": Member(
            "string",
            enum=(
                "ERROR",
                "WARNING",
            ),
        ),
        "maxResults": Member("integer", min=0, max=100),
    },
}

_JSON_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "structure": (dict,),
}


def check_request(action: str, body: JSON) -> dict[str, JSON]:
    """``body`` checked against ``action``'s request shape; returns it as a dict.

    Raises:
        ApiError: ``SerializationException`` (not an object, a member of the wrong JSON
            type) or ``ValidationException`` (required member missing, constraint violated).
    """
    if not isinstance(body, dict):
        raise ApiError("SerializationException", "The request body must be a JSON object")
    shape = REQUESTS[action]
    problems: list[str] = []
    for name, member in shape.items():
        value = body.get(name)
        if value is None:
            if member.required:
                problems.append(
                    f"Value null at '{name}' failed to satisfy constraint: Member must not be null"
                )
            continue
        kinds = _JSON_TYPES[member.type]
        if not isinstance(value, kinds) or (member.type != "boolean" and isinstance(value, bool)):
            raise ApiError(
                "SerializationException",
                f"Unexpected value for '{name}': expected type {member.type}, "
                f"got {type(value).__name__}",
            )
        problems.extend(_violations(name, member, value))
    if problems:
        count = len(problems)
        noun = "error" if count == 1 else "errors"
        raise ApiError(
            "ValidationException", f"{count} validation {noun} detected: " + "; ".join(problems)
        )
    return body


def _violations(name: str, member: Member, value: JSON) -> list[str]:
    """The constraint violations of one present member, in AWS's words."""
    shown = _shown(value)
    at = f"Value {shown} at '{name}' failed to satisfy constraint:"
    out: list[str] = []
    if member.enum is not None and value not in member.enum:
        out.append(f"{at} Member must satisfy enum value set: [{', '.join(member.enum)}]")
    if member.type in ("string", "list"):
        size = len(value)
        if member.min is not None and size < member.min:
            out.append(f"{at} Member must have length greater than or equal to {member.min}")
        if member.max is not None and size > member.max:
            out.append(f"{at} Member must have length less than or equal to {member.max}")
    elif member.type in ("integer", "long", "float"):
        if member.min is not None and value < member.min:
            out.append(f"{at} Member must have value greater than or equal to {member.min}")
        if member.max is not None and value > member.max:
            out.append(f"{at} Member must have value less than or equal to {member.max}")
    return out


def _shown(value: JSON) -> str:
    """A value as a validation message quotes it (long text cut short)."""
    if isinstance(value, str):
        return "'" + (value if len(value) <= 64 else value[:61] + "...") + "'"
    if isinstance(value, (list, dict)):
        return f"<{type(value).__name__} of {len(value)}>"
    return repr(value)
