"""The 37 actions of the Step Functions API, each over the public ``Runtime`` API.

:data:`ACTIONS` maps an action name (``X-Amz-Target`` without its prefix) to a coroutine taking
the :class:`Service` and the checked request body and returning the response body, with the
field names of botocore's model. Runtime errors become AWS's errors in :mod:`runtime.http.app`.

What Statemill honours behaves as AWS does: state machines (create, describe, list, update:
running executions keep the definition they started with; delete: running executions are
stopped, and a state machine that does not exist is deleted with success), executions
(start, start sync, describe, describe state machine for execution, list, history, stop,
redrive), task tokens, ``TestState`` (by :mod:`runtime.teststate`, in a worker thread),
activities (``GetActivityTask`` long-polls up to 60 s, as AWS does: give boto3 a
``read_timeout`` above 60 s) and ``ValidateStateMachineDefinition``. Map Runs (DescribeMapRun,
ListMapRuns, UpdateMapRun, ListExecutions by ``mapRunArn``, a child's ``mapRunArn`` in
DescribeExecution) are in :mod:`runtime.http.actions_map_runs`; versions, aliases and tags in
:mod:`runtime.http.actions_versions` (here: ``publish`` and ``tags`` of CreateStateMachine,
``publish`` of UpdateStateMachine, DescribeStateMachine of a version, StartExecution and
ListExecutions of a version's or an alias's ARN, and their executions'
``stateMachineVersionArn``/``stateMachineAliasArn``).
``loggingConfiguration``, ``tracingConfiguration`` and ``roleArn`` are accepted and not kept:
describing shows logging OFF, tracing disabled and the runtime's own role.

A state machine's ``revisionId`` is shown once it has been updated (AWS has none before): the
Runtime stores a digest of the definition at creation, an update stores a UUID.

Imports the public ``runtime`` API, ``runtime.errors``, ``runtime.teststate`` (on first use),
``runtime.api_machines``/``api_types`` (the revision and ARN rules) and this package only.
"""

from __future__ import annotations

import base64
import binascii
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, final

import anyio.to_thread
import msgspec

from runtime import (
    ExecutionDescription,
    HistoryEvent,
    InvalidDefinition,
    InvalidExecutionInput,
    Runtime,
    StateMachineRecord,
    load_definition,
)
from runtime.api_machines import is_updated
from runtime.api_types import is_qualified, split_qualified
from runtime.http import actions_map_runs as map_runs
from runtime.http import actions_versions as versions
from runtime.http.protocol import DEFAULT_PAGE, ApiError, check_arn, page_of, tags_of

__all__ = ["ACTIONS", "Service"]

JSON = Any
Body = dict[str, JSON]

#: ``GetActivityTask``'s long poll (AWS: up to 60 seconds).
ACTIVITY_POLL_SECONDS: Final = 60.0
_EXECUTION_KINDS: Final = ("execution", "express")
_REDRIVABLE: Final = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
_DATA_KEYS: Final = frozenset(
    {"input", "output", "inputDetails", "outputDetails", "parameters", "result", "resultDetails"}
)
_PRIVATE: Final = "statemill"
_decoder: Final = msgspec.json.Decoder()
_encoder: Final = msgspec.json.Encoder()


@final
class Service:
    """The API's state: the runtime it speaks for."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def role_arn(self) -> str:
        """The role every state machine shows (Statemill assumes no IAM role)."""
        return f"arn:aws:iam::{self.runtime.account}:role/statemill"


Action = Callable[[Service, Body], Awaitable[Body]]
ACTIONS: Final[dict[str, Action]] = {}


def action(name: str) -> Callable[[Action], Action]:
    """Register the decorated coroutine as action ``name``."""

    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn

    return register


ACTIONS.update(versions.ACTIONS)


# -- helpers --------------------------------------------------------------------------------------


def _with_token(out: Body, token: str | None) -> Body:
    if token is not None:
        out["nextToken"] = token
    return out


def _machine_arn(value: str, *, qualified: bool = False) -> str:
    """A state machine's ARN, checked: a version's or an alias's too when ``qualified``."""
    check_arn(value, "stateMachine")
    if not qualified and is_qualified(value):
        raise ApiError(
            "InvalidArn", f"Invalid Arn: 'Unqualified state machine ARN expected: {value}'"
        )
    return value


def _execution_arn(value: str) -> str:
    check_arn(value, *_EXECUTION_KINDS)
    return value


def _json_value(text: str | None, code: str, what: str) -> JSON:
    """JSON text from a request, decoded (``None`` stays ``None``)."""
    if text is None:
        return None
    try:
        return _decoder.decode(text)
    except (msgspec.DecodeError, RecursionError):
        raise ApiError(code, f"Invalid {what}: the value is not valid JSON") from None


def _machine_body(service: Service, record: StateMachineRecord, body: Body) -> Body:
    out: Body = {
        "stateMachineArn": record.arn,
        "name": record.name,
        "status": "ACTIVE",
        "definition": record.definition,
        "roleArn": service.role_arn,
        "type": record.type,
        "creationDate": record.creation_date,
        "loggingConfiguration": {"level": "OFF", "includeExecutionData": False},
        "tracingConfiguration": {"enabled": False},
    }
    if body.get("includedData") == "METADATA_ONLY":
        del out["definition"]
    if is_updated(record):
        out["revisionId"] = record.revision_id
    return out


def _execution_body(described: ExecutionDescription, body: Body) -> Body:
    out: Body = {
        "executionArn": described.execution_arn,
        "stateMachineArn": described.state_machine_arn,
        "name": described.name,
        "status": described.status,
        "startDate": described.start_date,
    }
    if described.stop_date is not None:
        out["stopDate"] = described.stop_date
    if body.get("includedData") != "METADATA_ONLY":
        out["input"] = described.input
        out["inputDetails"] = {"included": True}
        if described.output is not None:
            out["output"] = described.output
            out["outputDetails"] = {"included": True}
    if described.error is not None:
        out["error"] = described.error
    if described.cause is not None:
        out["cause"] = described.cause
    _add_qualifiers(out, described)
    return out


def _add_qualifiers(out: Body, described: ExecutionDescription) -> None:
    """The version an execution runs and the alias it came through, when it was started
    from their ARNs."""
    if described.state_machine_version_arn is not None:
        out["stateMachineVersionArn"] = described.state_machine_version_arn
    if described.state_machine_alias_arn is not None:
        out["stateMachineAliasArn"] = described.state_machine_alias_arn


def _redrive_status(described: ExecutionDescription) -> Body:
    if described.execution_arn.split(":")[5] == "express":
        return {
            "redriveStatus": "NOT_REDRIVABLE",
            "redriveStatusReason": "Execution is of type EXPRESS and cannot be redriven",
        }
    if described.status in _REDRIVABLE:
        return {"redriveStatus": "REDRIVABLE"}
    return {
        "redriveStatus": "NOT_REDRIVABLE",
        "redriveStatusReason": f"Execution is {described.status} and cannot be redriven",
    }


def history_event(event: HistoryEvent, *, include_data: bool = True) -> Body:
    """One event as ``GetExecutionHistory`` returns it (epoch-seconds timestamp)."""
    aws = event.to_aws()
    aws["timestamp"] = event.timestamp
    for key, details in aws.items():
        if key.endswith("EventDetails") and isinstance(details, dict):
            kept = {k: v for k, v in details.items() if not k.startswith(_PRIVATE)}
            if not include_data:
                kept = {k: v for k, v in kept.items() if k not in _DATA_KEYS}
            aws[key] = kept
    return aws


# -- state machines -------------------------------------------------------------------------------


def _version_description(body: Body) -> str | None:
    description: str | None = body.get("versionDescription")
    if description is not None and not body.get("publish"):
        raise ApiError(
            "ValidationException", "Version description can only be set when publish is true"
        )
    return description


@action("CreateStateMachine")
async def create_state_machine(service: Service, body: Body) -> Body:
    """CreateStateMachine, with its ``tags`` and, with ``publish``, its first version."""
    description = _version_description(body)
    runtime = service.runtime
    record = await runtime.create_state_machine(
        body["name"], body["definition"], type=body.get("type") or "STANDARD"
    )
    out: Body = {"stateMachineArn": record.arn, "creationDate": record.creation_date}
    if body.get("tags"):
        await runtime.tag_resource(record.arn, tags_of(body.get("tags")))
    if body.get("publish"):
        version = await runtime.publish_state_machine_version(record.arn, description=description)
        out["stateMachineVersionArn"] = version.arn
    return out


@action("DescribeStateMachine")
async def describe_state_machine(service: Service, body: Body) -> Body:
    """A state machine, or the version its ARN names (``<arn>:<n>``)."""
    arn = _machine_arn(body["stateMachineArn"], qualified=True)
    runtime = service.runtime
    if is_qualified(arn):
        version, record = await runtime.describe_state_machine_version(arn)
        out = versions.version_body(service, version, record)
        if body.get("includedData") == "METADATA_ONLY":
            del out["definition"]
        return out
    record = await runtime.describe_state_machine(arn)
    return _machine_body(service, record, body)


@action("ListStateMachines")
async def list_state_machines(service: Service, body: Body) -> Body:
    records = await service.runtime.list_state_machines()
    page, token = page_of("ListStateMachines", records, body)
    items = [
        {"stateMachineArn": r.arn, "name": r.name, "type": r.type, "creationDate": r.creation_date}
        for r in page
    ]
    return _with_token({"stateMachines": items}, token)


@action("UpdateStateMachine")
async def update_state_machine(service: Service, body: Body) -> Body:
    arn = _machine_arn(body["stateMachineArn"])
    description = _version_description(body)
    fields = ("definition", "roleArn", "loggingConfiguration", "tracingConfiguration")
    if all(body.get(name) is None for name in fields):
        raise ApiError(
            "MissingRequiredParameter",
            "Either the definition, the role ARN, the LoggingConfiguration, "
            "or the TracingConfiguration must be specified",
        )
    runtime = service.runtime
    updated = await runtime.update_state_machine(arn, definition=body.get("definition"))
    out: Body = {"updateDate": runtime.clock.now()}
    if is_updated(updated):  # an update that changed nothing made no revision (AWS)
        out["revisionId"] = updated.revision_id
    if body.get("publish"):
        version = await runtime.publish_state_machine_version(arn, description=description)
        out["stateMachineVersionArn"] = version.arn
    return out


@action("DeleteStateMachine")
async def delete_state_machine(service: Service, body: Body) -> Body:
    await service.runtime.delete_state_machine(_machine_arn(body["stateMachineArn"]))
    return {}  # success for a state machine that does not exist too, as AWS answers


@action("ValidateStateMachineDefinition")
async def validate_state_machine_definition(service: Service, body: Body) -> Body:
    try:
        load_definition(body["definition"], machine_type=body.get("type") or "STANDARD")
    except InvalidDefinition as exc:
        message = exc.detail
        if exc.code == "INVALID_JSON_DESCRIPTION":
            # AWS's parser error names its position in the message too.
            message = f"{exc.detail}\n at {exc.pointer}"
        diagnostics = [
            {"severity": "ERROR", "code": exc.code, "message": message, "location": exc.pointer}
        ]
        if body.get("maxResults") == 0 or body.get("maxResults") is None:
            limit = DEFAULT_PAGE
        else:
            limit = body["maxResults"]
        return {"result": "FAIL", "diagnostics": diagnostics[:limit], "truncated": False}
    return {"result": "OK", "diagnostics": [], "truncated": False}


# -- executions -----------------------------------------------------------------------------------


@action("StartExecution")
async def start_execution(service: Service, body: Body) -> Body:
    arn = _machine_arn(body["stateMachineArn"], qualified=True)
    value = _json_value(body.get("input"), "InvalidExecutionInput", "State Machine Execution Input")
    started = await service.runtime.start_execution(arn, value, name=body.get("name"))
    return {"executionArn": started.execution_arn, "startDate": started.start_date}


@action("StartSyncExecution")
async def start_sync_execution(service: Service, body: Body) -> Body:
    arn = _machine_arn(body["stateMachineArn"], qualified=True)
    runtime = service.runtime
    record = await runtime.describe_state_machine(split_qualified(arn)[0])
    if record.type != "EXPRESS":
        raise ApiError(
            "StateMachineTypeNotSupported",
            "This operation is not supported by this type of state machine",
        )
    value = _json_value(body.get("input"), "InvalidExecutionInput", "State Machine Execution Input")
    done = await runtime.start_sync_execution(arn, value, name=body.get("name"))
    out = _execution_body(done, body)
    stop = done.stop_date if done.stop_date is not None else done.start_date
    out["stopDate"] = stop
    out["billingDetails"] = {
        "billedMemoryUsedInMB": 64,
        "billedDurationInMilliseconds": max(100, round((stop - done.start_date) * 1000)),
    }
    return out


@action("DescribeExecution")
async def describe_execution(service: Service, body: Body) -> Body:
    arn = _execution_arn(body["executionArn"])
    described = await service.runtime.describe_execution(arn)
    out = _execution_body(described, body)
    if described.map_run_arn is not None:
        out["mapRunArn"] = described.map_run_arn  # a child execution of a Map Run
    if described.redrive_count:
        out["redriveCount"] = described.redrive_count
    out.update(_redrive_status(described))
    return out


@action("DescribeStateMachineForExecution")
async def describe_state_machine_for_execution(service: Service, body: Body) -> Body:
    arn = _execution_arn(body["executionArn"])
    record = await service.runtime.describe_state_machine_for_execution(arn)
    out = _machine_body(service, record, body)  # the revision the execution runs or ran
    for key in ("status", "type", "creationDate"):
        out.pop(key)
    out["updateDate"] = record.creation_date
    return out


@action("ListExecutions")
async def list_executions(service: Service, body: Body) -> Body:
    """Executions of a state machine, or the child executions of a Map Run (``mapRunArn``),
    newest first, by keyset pagination (issue 13): ``nextToken`` is the sort key of the last
    execution listed, so executions started between two pages never shift a row into the next
    page again; ``statusFilter`` and ``redriveFilter`` are applied before the page is cut, so
    a page holds ``maxResults`` executions whenever that many remain. A Map Run's children
    carry its ``mapRunArn``, as AWS lists them (and only then)."""
    machine, map_run = map_runs.listing_target(body)
    runtime = service.runtime
    if machine is not None:
        await _check_listed(runtime, _machine_arn(machine, qualified=True))
    after = _listing_cursor(body.get("nextToken"))
    size = body.get("maxResults") or DEFAULT_PAGE
    found = await runtime.list_executions(
        machine,
        status_filter=body.get("statusFilter"),
        redrive_filter=body.get("redriveFilter"),
        after=after,
        max_results=size + 1,
        map_run_arn=map_run,
    )
    if map_run is not None and not found:
        await map_runs.map_run_exists(runtime, map_run)  # an unknown Map Run: ResourceNotFound
    items = []
    for described in found[:size]:
        item = _execution_body(described, {"includedData": "METADATA_ONLY"})
        if map_run is not None:
            item["mapRunArn"] = map_run
        if described.redrive_count:
            item["redriveCount"] = described.redrive_count
        _add_qualifiers(item, described)
        items.append(item)
    last = found[size - 1] if len(found) > size else None
    token = None if last is None else _listing_token((last.start_date, last.execution_arn))
    return _with_token({"executions": items}, token)


async def _check_listed(runtime: Runtime, arn: str) -> None:
    """Raise unless ListExecutions' ``stateMachineArn`` exists: a state machine, one of its
    versions or one of its aliases."""
    qualifier = split_qualified(arn)[1]
    if qualifier is None:
        await runtime.describe_state_machine(arn)
    elif qualifier.isdigit():
        await runtime.describe_state_machine_version(arn)
    else:
        await runtime.describe_state_machine_alias(arn)


def _listing_token(key: tuple[float, str]) -> str:
    """ListExecutions' ``nextToken``: base64 of the JSON ``["ListExecutions", start_date,
    execution_arn]`` of the last execution listed (opaque to clients)."""
    return base64.urlsafe_b64encode(_encoder.encode(["ListExecutions", *key])).decode()


def _listing_cursor(token: str | None) -> tuple[float, str] | None:
    """The sort key a ListExecutions ``nextToken`` stands for (``None`` without one).

    Raises:
        ApiError: ``InvalidToken`` for a token this action did not issue.
    """
    if token is None:
        return None
    try:
        decoded = _decoder.decode(base64.b64decode(token, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        decoded = None
    match decoded:
        case ["ListExecutions", int() | float() as start, str(arn)] if not isinstance(start, bool):
            return float(start), arn
    raise ApiError("InvalidToken", f"Invalid Token: '{token}'")


@action("GetExecutionHistory")
async def get_execution_history(service: Service, body: Body) -> Body:
    arn = _execution_arn(body["executionArn"])
    events = await service.runtime.get_execution_history(arn)
    if body.get("reverseOrder"):
        events = events[::-1]
    page, token = page_of("GetExecutionHistory", events, body)
    include = body.get("includeExecutionData", True)
    return _with_token({"events": [history_event(e, include_data=include) for e in page]}, token)


@action("StopExecution")
async def stop_execution(service: Service, body: Body) -> Body:
    arn = _execution_arn(body["executionArn"])
    stopped = await service.runtime.stop_execution(
        arn, error=body.get("error"), cause=body.get("cause")
    )
    return {"stopDate": stopped.stop_date if stopped.stop_date is not None else time.time()}


@action("RedriveExecution")
async def redrive_execution(service: Service, body: Body) -> Body:
    arn = _execution_arn(body["executionArn"])
    return {"redriveDate": await service.runtime.redrive_execution(arn)}


# -- Map Runs -------------------------------------------------------------------------------------


@action("DescribeMapRun")
async def describe_map_run(service: Service, body: Body) -> Body:
    return await map_runs.describe_map_run(service.runtime, body["mapRunArn"])


@action("UpdateMapRun")
async def update_map_run(service: Service, body: Body) -> Body:
    """A running Map Run's MaxConcurrency and failure tolerance (the shapes check ranges)."""
    await map_runs.update_map_run(service.runtime, body)
    return {}


@action("ListMapRuns")
async def list_map_runs(service: Service, body: Body) -> Body:
    """The Map Runs an execution started, oldest first, by ``nextToken``/``maxResults`` as
    the other offset-paged lists (an execution starts few Map Runs)."""
    found = await service.runtime.list_map_runs(_execution_arn(body["executionArn"]))
    page, token = page_of("ListMapRuns", found, body)
    return _with_token({"mapRuns": [map_runs.map_run_list_item(run) for run in page]}, token)


# -- TestState ------------------------------------------------------------------------------------


@action("TestState")
async def test_state(service: Service, body: Body) -> Body:
    """TestState by :func:`runtime.teststate.test_state`, in a worker thread: it is synchronous
    and runs a Task's handler to completion on its own event loop."""
    from runtime.teststate import TestStateError  # on first use: it is large
    from runtime.teststate import test_state as run_test_state

    runtime = service.runtime
    call = functools.partial(
        run_test_state,
        body,
        handlers=runtime.handlers,
        region=runtime.region,
        account=runtime.account,
    )
    try:
        result: Body = await anyio.to_thread.run_sync(call)
    except TestStateError as exc:
        raise ApiError(exc.code, exc.message) from None
    return result


test_state.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, whatever its name


# -- task tokens ----------------------------------------------------------------------------------


@action("SendTaskSuccess")
async def send_task_success(service: Service, body: Body) -> Body:
    output = _json_value(body["output"], "InvalidOutput", "Output")
    try:
        await service.runtime.send_task_success(body["taskToken"], output)
    except InvalidExecutionInput as exc:  # the Runtime's name for an output it refuses
        raise ApiError("InvalidOutput", str(exc)) from None
    return {}


@action("SendTaskFailure")
async def send_task_failure(service: Service, body: Body) -> Body:
    await service.runtime.send_task_failure(body["taskToken"], body.get("error"), body.get("cause"))
    return {}


@action("SendTaskHeartbeat")
async def send_task_heartbeat(service: Service, body: Body) -> Body:
    await service.runtime.send_task_heartbeat(body["taskToken"])
    return {}


# -- activities -----------------------------------------------------------------------------------


@action("CreateActivity")
async def create_activity(service: Service, body: Body) -> Body:
    runtime = service.runtime
    created = await runtime.create_activity(body["name"])
    if body.get("tags"):
        await runtime.tag_resource(created.activity_arn, tags_of(body.get("tags")))
    return {"activityArn": created.activity_arn, "creationDate": created.creation_date}


@action("DescribeActivity")
async def describe_activity(service: Service, body: Body) -> Body:
    arn = body["activityArn"]
    check_arn(arn, "activity")
    found = await service.runtime.describe_activity(arn)
    return {
        "activityArn": found.activity_arn,
        "name": found.name,
        "creationDate": found.creation_date,
    }


@action("ListActivities")
async def list_activities(service: Service, body: Body) -> Body:
    found = await service.runtime.list_activities()
    page, token = page_of("ListActivities", found, body)
    items = [
        {"activityArn": a.activity_arn, "name": a.name, "creationDate": a.creation_date}
        for a in page
    ]
    return _with_token({"activities": items}, token)


@action("DeleteActivity")
async def delete_activity(service: Service, body: Body) -> Body:
    arn = body["activityArn"]
    check_arn(arn, "activity")
    await service.runtime.delete_activity(arn)
    return {}


@action("GetActivityTask")
async def get_activity_task(service: Service, body: Body) -> Body:
    arn = body["activityArn"]
    check_arn(arn, "activity")
    task = await service.runtime.get_activity_task(
        arn, body.get("workerName") or "", timeout=ACTIVITY_POLL_SECONDS
    )
    if task is None:
        return {}
    return {"taskToken": task.task_token, "input": task.input}
