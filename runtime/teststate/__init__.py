"""The Step Functions ``TestState`` API: run one state on an input and say what it did.

``test_state(params)`` takes the request's fields as a client sends them (botocore's
``TestStateInput``: ``definition`` as JSON text of one state, or of a whole machine with
``stateName``; ``input``; ``inspectionLevel``; ``mock``; ``stateConfiguration``; ``context``;
``variables``; ``revealSecrets``; ``roleArn``) and returns AWS's ``TestStateOutput`` as a dict:
``status`` (SUCCEEDED, FAILED, RETRIABLE, CAUGHT_ERROR), ``output``, ``error``, ``cause``,
``nextState`` and, at DEBUG and TRACE, ``inspectionData`` (JSON-text fields as AWS returns them).
A call AWS refuses raises :class:`TestStateError` (``code`` ValidationException,
InvalidDefinition or InvalidExecutionInput, with AWS's message) or the definition loader's
:class:`~runtime.errors.InvalidDefinition`.

This package sits beside ``api`` (it may import ``definition``, ``lang``, ``errors`` and the
engine's handler registry); it never imports botocore. Modules: this one (the request: parsing,
AWS's refusals, the state under test, the context object) and ``evaluate`` (the state's data
flow, mocks, Retry and Catch as TestState reports them).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import time
import uuid
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from runtime.definition import Map, Parallel, State, StateMachine, Task, load_definition
from runtime.definition.limits import MAX_PAYLOAD_BYTES, JSONLimitError, check_json_text
from runtime.engine.handlers import Handler, HandlerRegistry
from runtime.errors import InvalidDefinition, StatemillError
from runtime.teststate.evaluate import Evaluation, Mock, Request

__all__ = ["TestStateError", "test_state"]

JSON = Any

#: The name AWS gives the state of a one-state definition (its pointers and ``$$.State.Name``).
STATE_NAME: Final = "StateName"
_LEVELS: Final = ("INFO", "DEBUG", "TRACE")
_FLOW_TYPES: Final = ("Pass", "Wait", "Choice", "Succeed", "Fail")
_UNSUPPORTED_WITHOUT_MOCK: Final = (
    "TestState API does not support Map or Parallel states. Supported state types include: "
    "[Task, Wait, Pass, Succeed, Fail, Choice]"
)
_CONTEXT_FIELDS: Final = ("Execution", "State", "StateMachine", "Task")
_NEEDS_MOCK: Final = (
    "TestState only supports Activity tasks, .sync or .waitForTaskToken service integration "
    "patterns when a mock is specified"
)


class TestStateError(StatemillError):
    """TestState refused the call: ``code`` is the Step Functions API error name
    (``ValidationException``, ``InvalidDefinition``, ``InvalidExecutionInput``) and ``message``
    AWS's wording."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def _validation(message: str) -> TestStateError:
    return TestStateError("ValidationException", message)


# The API's name starts with "test_", which pytest and ruff's pytest rules (PT028) take for a
# test function: its defaults are part of the TestState signature, hence the noqa comments.
def test_state(
    params: Mapping[str, JSON],
    *,
    handlers: HandlerRegistry | Mapping[str, Handler] | None = None,  # noqa: PT028
    region: str = "us-east-1",  # noqa: PT028
    account: str = "000000000000",  # noqa: PT028
) -> dict[str, JSON]:
    """Run the TestState API call ``params`` (botocore's ``TestStateInput`` fields).

    A Task without a mock calls the handler registered for its resource (as the runtime
    resolves it); with a mock nothing is called. The call is synchronous: an async handler is
    run to completion (in a worker thread when an event loop is already running here).

    Returns:
        AWS's ``TestStateOutput`` fields (``status``, ``output``, ``error``, ``cause``,
        ``nextState``, ``inspectionData``); ``output`` and the inspection values are JSON text.

    Raises:
        TestStateError: AWS refuses the call (ValidationException, InvalidDefinition,
            InvalidExecutionInput).
        InvalidDefinition: the definition is not valid ASL.
    """
    registry = handlers if isinstance(handlers, HandlerRegistry) else HandlerRegistry(handlers)
    request = _request(params, region=region, account=account)
    return Evaluation(request, registry, _run_coroutine).run()


test_state.__test__ = False  # type: ignore[attr-defined]  # pytest must not collect it


# ---------------------------------------------------------------------------------------------
# The request
# ---------------------------------------------------------------------------------------------


def _request(params: Mapping[str, JSON], *, region: str, account: str) -> Request:
    """Parse and check the request's fields in the order AWS refuses them."""
    definition = params.get("definition")
    if not isinstance(definition, str):
        raise _validation(
            "1 validation error detected: Value null at 'definition' failed to "
            "satisfy constraint: Member must not be null"
        )
    level = params.get("inspectionLevel") or "INFO"
    if level not in _LEVELS:
        raise _validation(
            f"1 validation error detected: Value '{level}' at 'inspectionLevel' failed to satisfy "
            "constraint: Member must satisfy enum value set: [INFO, DEBUG, TRACE]"
        )
    mock = _mock(params.get("mock"))
    if mock is not None and params.get("revealSecrets"):
        raise _validation("TestState does not support RevealSecrets when a mock is specified.")
    state_name = params.get("stateName")
    name, state = _state_under_test(definition, state_name)
    _check_mock(state, mock)
    data = _json_text(params.get("input"), "input", default={})
    variables = _json_text(params.get("variables"), "variables", default=None)
    if variables is not None and not isinstance(variables, dict):
        raise _validation("Invalid variables provided: the variables must be a JSON object")
    configuration = params.get("stateConfiguration") or {}
    role_arn = params.get("roleArn")
    context_text = params.get("context")
    if context_text is not None:
        context = _json_text(context_text, "context", default=None)
        _check_context(context)
    else:
        context = _default_context(state, data, role_arn, configuration, region, account)
    item_reader_data = configuration.get("mapItemReaderData")
    return Request(
        state=state,
        name=name,
        input=data,
        level=level,
        mock=mock,
        context=context,
        variables=variables,
        retry_count=int(configuration.get("retrierRetryCount") or 0),
        error_caused_by=configuration.get("errorCausedByState"),
        iteration_failures=configuration.get("mapIterationFailureCount"),
        item_reader_data=(
            None
            if item_reader_data is None
            else _json_text(item_reader_data, "mapItemReaderData", default=None)
        ),
        execution_arn=str(context.get("Execution", {}).get("Id") or ""),
        region=region,
        account=account,
        now=time.time(),
        seed=int.from_bytes(os.urandom(8), "big"),
    )


def _json_text(text: JSON, field: str, *, default: JSON) -> JSON:
    """A JSON-text field of the request (``input``, ``variables``, ``context``...)."""
    if text is None:
        return default
    if not isinstance(text, str):
        raise _validation(f"Invalid {field} provided: the value must be JSON text")
    try:
        # Depth and size before decoding: a decoder recurses once per level.
        check_json_text(text, what=f"The {field}", max_bytes=MAX_PAYLOAD_BYTES)
        return json.loads(text)
    except JSONLimitError as exc:
        if field == "input":
            raise TestStateError(
                "InvalidExecutionInput", f"Invalid State Machine Execution Input: {exc}"
            ) from None
        raise _validation(f"Invalid {field} provided: {exc}") from None
    except ValueError:
        if field == "input":
            raise TestStateError(
                "InvalidExecutionInput", f"Invalid State Machine Execution Input: '{text[:100]}'"
            ) from None
        raise _validation(f"Invalid {field} provided: the value is not valid JSON") from None


def _mock(raw: JSON) -> Mock | None:
    """``mock``: exactly one of ``result`` (JSON text) and ``errorOutput``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _validation("Invalid mock provided: the value must be an object")
    has_result = raw.get("result") is not None
    error_output = raw.get("errorOutput")
    if error_output is not None and not isinstance(error_output, dict):
        raise _validation("Invalid mock provided: errorOutput must be an object")
    if has_result and not isinstance(raw["result"], str):
        raise _validation("Invalid mock provided: result must be JSON text")
    if has_result == (error_output is not None):
        raise _validation(
            "A test mock should have only one of the following fields: [result, errorOutput]."
        )
    mode: Literal["STRICT", "PRESENT", "NONE"] = raw.get("fieldValidationMode") or "STRICT"
    if error_output is not None:
        return Mock(
            error=str(error_output.get("error") or ""),
            cause=str(error_output.get("cause") or ""),
            is_error=True,
            field_validation_mode=mode,
        )
    try:
        check_json_text(raw["result"], what="The mocked result", max_bytes=MAX_PAYLOAD_BYTES)
        result = json.loads(raw["result"])
    except ValueError:  # JSONLimitError is one
        raise _validation("Mocked result must be valid JSON.") from None
    return Mock(result=result, field_validation_mode=mode)


def _state_under_test(definition: str, state_name: str | None) -> tuple[str, State]:
    """The state to run: the one state of ``definition``, or ``stateName`` of a whole machine
    (at any depth: a Parallel branch's or a Map processor's states count)."""
    if state_name is None:
        try:
            raw = json.loads(definition)
        except ValueError:
            load_definition(definition)  # raises AWS's INVALID_JSON_DESCRIPTION
            raise
        if not isinstance(raw, dict):
            raise InvalidDefinition(
                "SCHEMA_VALIDATION_FAILED", "The value must be an OBJECT", f"/States/{STATE_NAME}"
            )
        machine = load_definition(
            {"StartAt": STATE_NAME, "States": {STATE_NAME: raw, **_stubs(raw)}}
        )
        return STATE_NAME, machine.states[STATE_NAME]
    found = _find(load_definition(definition), state_name)
    if found is None:
        raise _validation(f"State '{state_name}' does not exist in the definition.")
    return state_name, found


def _stubs(raw: Mapping[str, JSON]) -> dict[str, JSON]:
    """Succeed states named after every transition target of a lone state, so the graph checks
    of the loader accept it (AWS does not run them)."""
    targets: list[JSON] = [raw.get("Next"), raw.get("Default")]
    for field in ("Choices", "Catch"):
        entries = raw.get(field)
        if isinstance(entries, list):
            targets += [entry.get("Next") for entry in entries if isinstance(entry, dict)]
    return {
        target: {"Type": "Succeed"}
        for target in targets
        if isinstance(target, str) and target != STATE_NAME
    }


def _find(machine: StateMachine, name: str) -> State | None:
    """The state called ``name`` in ``machine`` or any machine nested in it (breadth first)."""
    for current in machine.machines():
        if name in current.states:
            return current.states[name]
    return None


def _check_mock(state: State, mock: Mock | None) -> None:
    """AWS's rules on which state takes which mock."""
    kind = type(state).__name__
    if mock is None:
        if isinstance(state, Map | Parallel):
            raise TestStateError("InvalidDefinition", _UNSUPPORTED_WITHOUT_MOCK)
        if isinstance(state, Task) and (
            state.resolved_resource.kind == "activity"
            or state.resolved_resource.pattern != "request-response"
        ):
            raise TestStateError("InvalidDefinition", _NEEDS_MOCK)
        return
    if kind in _FLOW_TYPES:
        raise _validation(f"State type '{kind}' is not supported when a mock is specified")
    if mock.is_error:
        return
    if isinstance(state, Parallel):
        if not isinstance(mock.result, list) or len(mock.result) != len(state.branches):
            raise _validation(
                "Mocked result must contain the same number of items as number of Parallel "
                "branches."
            )
    elif isinstance(state, Map):
        if state.result_writer is not None:
            if not isinstance(mock.result, dict):
                raise _validation("Mocked result must be a JSON object.")
        elif not isinstance(mock.result, list):
            raise _validation("Mocked result must be an array.")


def _check_context(context: JSON) -> None:
    """A mocked context object: an object of the fields a state sees, with AWS's types."""
    prefix = "Invalid Context object provided: "
    if not isinstance(context, dict):
        raise _validation(prefix + "the Context object must be a JSON object")
    for field in context:
        if field not in _CONTEXT_FIELDS:
            raise _validation(
                prefix + f"'{field}' field is not supported when mocking a Context object"
            )
    for section, value in context.items():
        if not isinstance(value, dict):
            raise _validation(prefix + f"{section} must be an object")
    for section, field in (
        ("Execution", "Id"),
        ("Execution", "Name"),
        ("Execution", "RoleArn"),
        ("Execution", "StartTime"),
        ("State", "Name"),
        ("State", "EnteredTime"),
        ("StateMachine", "Id"),
        ("StateMachine", "Name"),
        ("Task", "Token"),
    ):
        value = context.get(section, {}).get(field)
        if value is not None and not isinstance(value, str):
            raise _validation(prefix + f"{section}.{field} must be a string")
    retry_count = context.get("State", {}).get("RetryCount")
    if retry_count is not None and (
        isinstance(retry_count, bool) or not isinstance(retry_count, int)
    ):
        raise _validation(prefix + "State.RetryCount must be an integer")


def _default_context(
    state: State,
    data: JSON,
    role_arn: str | None,
    configuration: Mapping[str, JSON],
    region: str,
    account: str,
) -> dict[str, JSON]:
    """The context object AWS builds when the request gives none: an express execution of a
    one-state machine, the state called ``StateName``. A state that does work (Task, Map,
    Parallel) sees the role and ``RetryCount``; the flow states see ``RoleArn`` null and no
    ``RetryCount`` (as AWS's recording of a Pass state shows)."""
    machine_name = str(uuid.uuid4())
    execution_name = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    works = type(state).__name__ not in _FLOW_TYPES
    state_fields: dict[str, JSON] = {"Name": STATE_NAME, "EnteredTime": now}
    if works:
        state_fields["RetryCount"] = int(configuration.get("retrierRetryCount") or 0)
    return {
        "Execution": {
            "Id": f"arn:aws:states:{region}:{account}:express:{machine_name}:{execution_name}",
            "Input": data,
            "Name": execution_name,
            "RoleArn": role_arn if works else None,
            "StartTime": now,
        },
        "StateMachine": {
            "Id": f"arn:aws:states:{region}:{account}:stateMachine:{machine_name}",
            "Name": machine_name,
        },
        "State": state_fields,
    }


def _run_coroutine(call: Awaitable[JSON]) -> JSON:
    """Run a handler's coroutine to completion from synchronous code."""

    async def wrapped() -> JSON:
        return await call

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrapped())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, wrapped()).result()
