"""Static checks AWS performs at CreateStateMachine, with AWS's rule codes and JSON Pointers.

Two kinds of check live here, both pure:

* **field rules** (``SCHEMA_VALIDATION_FAILED``), called by ``definition.load`` while it walks the
  raw JSON: which fields each state type supports in each query language, Task resources, Map
  labels, RFC 3339 timestamps, ``States.ALL`` placement in Retry/Catch;
* **graph rules**, run on the compiled model once every state is built: ``StartAt`` and every
  transition name an existing state of the same level (``MISSING_TRANSITION_TARGET``), every
  state is reachable, and every level has a terminal state (``MISSING_END_STATE``).

AWS reports schema errors before graph errors; each function raises the first error it finds,
in document order, as :class:`~runtime.errors.InvalidDefinition`. This module imports only the
standard library, ``runtime.errors``, ``runtime.lang.choice`` (timestamps) and the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final, cast

from runtime.definition.model import (
    Choice,
    Fail,
    IntegrationPattern,
    Map,
    Parallel,
    ResourceKind,
    State,
    StateMachine,
    Succeed,
    Task,
    TaskResource,
)
from runtime.errors import InvalidDefinition
from runtime.lang.choice import timestamp_instant

__all__ = [
    "JSONATA_ONLY_FIELDS",
    "JSONPATH_ONLY_FIELDS",
    "STATE_FIELDS",
    "STATE_TYPES",
    "check_graph",
    "check_label",
    "check_resource",
    "check_state_fields",
    "check_states_all",
    "check_timestamp",
    "escape_pointer",
    "resolve_resource",
]

JSON = Any

SCHEMA: Final = "SCHEMA_VALIDATION_FAILED"
MISSING_TRANSITION_TARGET: Final = "MISSING_TRANSITION_TARGET"
MISSING_END_STATE: Final = "MISSING_END_STATE"

STATE_TYPES: Final = ("Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map")

_COMMON: Final = frozenset({"Type", "Comment", "QueryLanguage"})
_IO: Final = frozenset({"InputPath", "OutputPath"})
_FLOW: Final = frozenset({"Next", "End"})
_RESULT: Final = frozenset({"ResultPath", "ResultSelector"})
_ERRORS: Final = frozenset({"Retry", "Catch"})

#: Every field each state type supports, in either query language (ASL "State Types").
STATE_FIELDS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "Pass": _COMMON | _IO | _FLOW | {"ResultPath", "Parameters", "Result", "Assign", "Output"},
        "Task": _COMMON
        | _IO
        | _FLOW
        | _RESULT
        | _ERRORS
        | {
            "Resource",
            "Parameters",
            "Arguments",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
            "HeartbeatSeconds",
            "HeartbeatSecondsPath",
            "Credentials",
            "Assign",
            "Output",
        },
        "Choice": _COMMON | _IO | {"Choices", "Default", "Assign", "Output"},
        "Wait": _COMMON
        | _IO
        | _FLOW
        | {"Seconds", "Timestamp", "SecondsPath", "TimestampPath", "Assign", "Output"},
        "Succeed": _COMMON | _IO | {"Output"},
        "Fail": _COMMON | {"Error", "Cause", "ErrorPath", "CausePath"},
        "Parallel": _COMMON
        | _IO
        | _FLOW
        | _RESULT
        | _ERRORS
        | {"Branches", "Parameters", "Arguments", "Assign", "Output"},
        "Map": _COMMON
        | _IO
        | _FLOW
        | _RESULT
        | _ERRORS
        | {
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "Items",
            "ItemSelector",
            "Parameters",
            "ItemReader",
            "ItemBatcher",
            "ResultWriter",
            "MaxConcurrency",
            "MaxConcurrencyPath",
            "ToleratedFailureCount",
            "ToleratedFailureCountPath",
            "ToleratedFailurePercentage",
            "ToleratedFailurePercentagePath",
            "Label",
            "Assign",
            "Output",
        },
    }
)

#: Fields that exist only in JSONPath states (ASL "Transforming data with JSONata").
JSONPATH_ONLY_FIELDS: Final = frozenset(
    {
        "InputPath",
        "OutputPath",
        "ResultPath",
        "Parameters",
        "ResultSelector",
        "Result",
        "ItemsPath",
        "SecondsPath",
        "TimestampPath",
        "TimeoutSecondsPath",
        "HeartbeatSecondsPath",
        "MaxConcurrencyPath",
        "ToleratedFailureCountPath",
        "ToleratedFailurePercentagePath",
        "ErrorPath",
        "CausePath",
    }
)

#: Fields that exist only in JSONata states.
JSONATA_ONLY_FIELDS: Final = frozenset({"Arguments", "Output", "Items"})


def escape_pointer(token: str) -> str:
    """Escape one JSON Pointer reference token (RFC 6901: ``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def _schema(detail: str, pointer: str) -> InvalidDefinition:
    return InvalidDefinition(SCHEMA, detail, pointer)


def language_mismatch(field: str, language: str) -> str:
    """AWS's wording for a field used under the other query language."""
    other = "JSONata" if language == "JSONPath" else "JSONPath"
    return (
        f"The QueryLanguage is set to '{language}', but field '{field}' is only supported "
        f"for the '{other}' QueryLanguage"
    )


def check_state_fields(state: Mapping[str, JSON], kind: str, language: str, pointer: str) -> None:
    """Every field of a state is one its type supports in its query language.

    Raises:
        InvalidDefinition: ``SCHEMA_VALIDATION_FAILED`` at the state's pointer, naming the first
            offending field in document order.
    """
    allowed = STATE_FIELDS[kind]
    foreign = JSONATA_ONLY_FIELDS if language == "JSONPath" else JSONPATH_ONLY_FIELDS
    for field in state:
        if field not in allowed:
            raise _schema(f"Field '{field}' is not supported", pointer)
        if field in foreign:
            raise _schema(language_mismatch(field, language), pointer)


# ---------------------------------------------------------------------------------------------
# Task resources
# ---------------------------------------------------------------------------------------------

#: AWS's optimised service integrations (``arn:aws:states:::SERVICE:ACTION``) by service.
SERVICE_INTEGRATIONS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "lambda": frozenset({"invoke"}),
        "states": frozenset({"startExecution"}),
        "http": frozenset({"invoke"}),
        "dynamodb": frozenset({"getItem", "putItem", "updateItem", "deleteItem"}),
        "sns": frozenset({"publish"}),
        "sqs": frozenset({"sendMessage"}),
        "events": frozenset({"putEvents"}),
        "apigateway": frozenset({"invoke"}),
        "ecs": frozenset({"runTask"}),
        "batch": frozenset({"submitJob"}),
        "glue": frozenset({"startJobRun"}),
        "glue-databrew": frozenset({"startJobRun"}),
        "athena": frozenset(
            {"startQueryExecution", "stopQueryExecution", "getQueryExecution", "getQueryResults"}
        ),
        "codebuild": frozenset(
            {"startBuild", "stopBuild", "batchDeleteBuilds", "batchGetReports", "startBuildBatch"}
        ),
        "sagemaker": frozenset(
            {
                "createTrainingJob",
                "createTransformJob",
                "createModel",
                "createEndpoint",
                "createEndpointConfig",
                "updateEndpoint",
                "createHyperParameterTuningJob",
                "createLabelingJob",
                "createProcessingJob",
            }
        ),
        "eks": frozenset(
            {
                "createCluster",
                "deleteCluster",
                "createFargateProfile",
                "deleteFargateProfile",
                "createNodegroup",
                "deleteNodegroup",
                "runJob",
                "call",
            }
        ),
        "elasticmapreduce": frozenset(
            {
                "createCluster",
                "terminateCluster",
                "addStep",
                "cancelStep",
                "setClusterTerminationProtection",
                "modifyInstanceFleetByName",
                "modifyInstanceGroupByName",
            }
        ),
        "emr-containers": frozenset(
            {"startJobRun", "createVirtualCluster", "deleteVirtualCluster"}
        ),
        "emr-serverless": frozenset(
            {
                "createApplication",
                "startApplication",
                "stopApplication",
                "deleteApplication",
                "startJobRun",
                "cancelJobRun",
            }
        ),
        "mediaconvert": frozenset({"createJob"}),
        "bedrock": frozenset({"invokeModel", "createModelCustomizationJob"}),
    }
)

_INTEGRATION: Final = re.compile(r"arn:[a-z-]+:states:::(.*)")
_PATTERN_SUFFIX: Final = re.compile(r"(.*?)(\.sync(?::2)?|\.waitForTaskToken)?")
_ACTIVITY: Final = re.compile(r"arn:[a-z-]+:states:[a-z0-9-]*:\d*:activity:.+")
_SDK: Final = re.compile(r"aws-sdk:[a-z0-9-]+:[A-Za-z0-9]+")


_LAMBDA_FUNCTION: Final = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:[^:]*:[^:]*:function:([^:]+)(?::([^:]+))?"
)
_ACTIVITY_TASK: Final = re.compile(r"arn:aws[a-zA-Z-]*:states:[^:]*:[^:]*:activity:[^:]+")
_WAIT_FOR_TASK_TOKEN: Final = ".waitForTaskToken"
_INTEGRATION_KINDS: Final[Mapping[tuple[str, str], ResourceKind]] = MappingProxyType(
    {
        ("lambda", "invoke"): "lambda-invoke",
        ("states", "startExecution"): "start-execution",
        ("http", "invoke"): "http",
    }
)


def resolve_resource(resource: str) -> TaskResource:
    """What a Task's ``Resource`` names, resolved once (ASL "Task state"; AWS's service
    integration patterns), so run time never parses it. Total: every string resolves (the
    rules on which strings are allowed are :func:`check_resource`'s).

    * an activity ARN is an ``activity`` (a worker answers with its task token);
    * a Lambda function ARN is ``lambda``, its handler the function ``NAME``;
    * ``arn:PARTITION:states:::SERVICE:ACTION`` with an optional ``.sync``, ``.sync:2`` or
      ``.waitForTaskToken`` is ``lambda-invoke`` (``lambda:invoke``), ``start-execution``
      (``states:startExecution``), ``http`` (``http:invoke``) or ``service``;
    * any other string is a ``handler`` registered under that name; a ``.waitForTaskToken``
      suffix gives it the callback pattern.
    """
    if _ACTIVITY_TASK.fullmatch(resource):
        return TaskResource(
            kind="activity",
            handler_name=resource,
            base=resource,
            resource_action=resource,
            has_task_token=True,
        )
    integration = _INTEGRATION.fullmatch(resource)
    if integration is not None:
        suffix_match = _PATTERN_SUFFIX.fullmatch(integration.group(1))
        assert suffix_match is not None  # the pattern accepts every string
        target, suffix = suffix_match.group(1), suffix_match.group(2) or ""
        service, _, action = target.partition(":")
        pattern = cast("IntegrationPattern", suffix or "request-response")
        kind = _INTEGRATION_KINDS.get((service, action), "service")
        return TaskResource(
            kind=kind,
            pattern=pattern,
            handler_name=None if kind == "lambda-invoke" else resource,
            base=resource[: len(resource) - len(suffix)],
            resource_type=service,
            resource_action=action + suffix,
            has_task_token=suffix == _WAIT_FOR_TASK_TOKEN,
        )
    token = resource.endswith(_WAIT_FOR_TASK_TOKEN)
    function = _LAMBDA_FUNCTION.fullmatch(resource)
    return TaskResource(
        kind="handler" if function is None else "lambda",
        pattern=".waitForTaskToken" if token else "request-response",
        handler_name=resource if function is None else function.group(1),
        base=resource.removesuffix(_WAIT_FOR_TASK_TOKEN),
        function_qualifier=None if function is None else function.group(2),
        resource_action=resource,
        has_task_token=token,
    )


def check_resource(resource: str, machine_type: str, pointer: str) -> None:
    """A Task's ``Resource`` (ASL "Task state", "Resource"; Service integration patterns).

    ``arn:<partition>:states:::`` resources must name a known optimised integration or an
    ``aws-sdk`` integration, optionally with ``.sync``, ``.sync:2`` or ``.waitForTaskToken``;
    an EXPRESS machine supports neither pattern, nor activities. Any other resource string
    names a handler (a Lambda function ARN, an activity ARN, or a name registered with the
    runtime).

    Raises:
        InvalidDefinition: ``SCHEMA_VALIDATION_FAILED`` at ``pointer`` (the Resource field).
    """
    match = _INTEGRATION.fullmatch(resource)
    if match is None:
        if machine_type == "EXPRESS" and _ACTIVITY.fullmatch(resource):
            raise _schema("Express state machine does not support Activity ARN", pointer)
        return
    suffix_match = _PATTERN_SUFFIX.fullmatch(match.group(1))
    assert suffix_match is not None  # the pattern accepts every string
    target, suffix = suffix_match.group(1), suffix_match.group(2)
    service, _, action = target.partition(":")
    known = _SDK.fullmatch(target) is not None or action in SERVICE_INTEGRATIONS.get(
        service, frozenset()
    )
    if not known:
        raise _schema(
            f"The resource provided {resource} is not recognized. The value is not a valid "
            "resource ARN, or the resource is not available in this region.",
            pointer,
        )
    if suffix and machine_type == "EXPRESS":
        pattern = ".waitForTaskToken" if suffix == ".waitForTaskToken" else ".sync"
        raise _schema(
            f"Express state machine does not support '{pattern}' service integration", pointer
        )


# ---------------------------------------------------------------------------------------------
# Map labels, timestamps, Retry/Catch
# ---------------------------------------------------------------------------------------------

_LABEL_MAX: Final = 40
_LABEL_FORBIDDEN: Final = frozenset(' <>{}[]?*"#%\\^|~`$&,;:/')


def _is_forbidden_label_char(char: str) -> bool:
    code = ord(char)
    return char in _LABEL_FORBIDDEN or char.isspace() or code <= 0x1F or 0x7F <= code <= 0x9F


def check_label(label: JSON, pointer: str) -> str:
    """A Map state's ``Label`` (Distributed Map "Label"): 1-40 characters, none of whitespace,
    ``< > { } [ ] ? * " # % \\ ^ | ~ ` $ & , ; : /`` or control characters.

    Raises:
        InvalidDefinition: ``SCHEMA_VALIDATION_FAILED`` at the Label field.
    """
    if not isinstance(label, str):
        raise _schema("The value for the field 'Label' must be a STRING", pointer)
    if not label:
        raise _schema("Label cannot be empty", pointer)
    if len(label) > _LABEL_MAX:
        raise _schema(f"Label cannot exceed {_LABEL_MAX} characters", pointer)
    for char in label:
        if _is_forbidden_label_char(char):
            raise _schema(f"Label contains invalid character: {char!r}", pointer)
    return label


def check_timestamp(value: JSON, pointer: str) -> str:
    """A literal timestamp (Wait ``Timestamp``): RFC 3339 with upper-case ``T`` and ``Z``.

    Raises:
        InvalidDefinition: ``SCHEMA_VALIDATION_FAILED`` at the field.
    """
    if not isinstance(value, str) or timestamp_instant(value) is None:
        raise _schema("String does not match RFC3339 timestamp", pointer)
    return value


def check_states_all(
    error_equals: tuple[str, ...], is_last: bool, field: str, pointer: str
) -> None:
    """``States.ALL`` must appear alone in its ``ErrorEquals`` and only in the last retrier or
    catcher (ASL "Retrying after error", "Fallback states").

    Raises:
        InvalidDefinition: ``SCHEMA_VALIDATION_FAILED`` at the retrier/catcher.
    """
    if "States.ALL" not in error_equals:
        return
    if len(error_equals) > 1:
        raise _schema(
            "States.ALL must appear alone in the ErrorEquals array", f"{pointer}/ErrorEquals"
        )
    if not is_last:
        raise _schema(f"States.ALL must be the last element of the {field} array", pointer)


# ---------------------------------------------------------------------------------------------
# Graph rules on the compiled model
# ---------------------------------------------------------------------------------------------


def _transitions(state: State) -> Iterator[tuple[str, str]]:
    """(target, pointer) for every transition out of ``state``, in document order."""
    if isinstance(state, Choice):
        for rule in state.choices:
            if rule.next is not None:
                yield rule.next, f"{rule.pointer}/Next"
        if state.default is not None:
            yield state.default, f"{state.pointer}/Default"
        return
    if state.next is not None:
        yield state.next, f"{state.pointer}/Next"
    if isinstance(state, Task | Parallel | Map):
        for index, catcher in enumerate(state.catch):
            yield catcher.next, f"{state.pointer}/Catch[{index}]/Next"


def _is_terminal(state: State) -> bool:
    return state.end or isinstance(state, Succeed | Fail)


def _children(state: State) -> Iterator[StateMachine]:
    if isinstance(state, Parallel):
        yield from state.branches
    elif isinstance(state, Map):
        yield state.processor


def check_graph(machine: StateMachine) -> None:
    """Transitions, reachability and termination of one level, then of nested levels.

    AWS's order: ``StartAt``, then every transition target, then the terminal-state rule
    (which, when broken, suppresses the reachability rule), then reachability.

    Raises:
        InvalidDefinition: ``MISSING_TRANSITION_TARGET`` for a ``StartAt``/``Next``/``Default``
            naming no state of the level (the detail always says ``'Next'``) or for an
            unreachable state; ``MISSING_END_STATE`` (pointer ``null``, as AWS prints it)
            when no state of the level has ``End``, nor is a Succeed or Fail state.
    """
    states = machine.states
    pointer = machine.pointer
    if machine.start_at not in states:
        raise InvalidDefinition(
            MISSING_TRANSITION_TARGET,
            f"Missing 'Next' target: {machine.start_at}",
            f"{pointer}/StartAt",
        )
    for state in states.values():
        for target, where in _transitions(state):
            if target not in states:
                raise InvalidDefinition(
                    MISSING_TRANSITION_TARGET, f"Missing 'Next' target: {target}", where
                )
    if not any(_is_terminal(state) for state in states.values()):
        # AWS gives this diagnostic no location ("at null") and skips the reachability walk.
        raise InvalidDefinition(MISSING_END_STATE, "Workflow has no terminal state", "null")
    reachable = {machine.start_at}
    frontier = [machine.start_at]
    while frontier:
        for target, _ in _transitions(states[frontier.pop()]):
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    for name, state in states.items():
        if name not in reachable:
            raise InvalidDefinition(
                MISSING_TRANSITION_TARGET, f'State "{name}" is not reachable.', state.pointer
            )
    for state in states.values():
        if isinstance(state, Parallel):
            for branch in state.branches:
                check_graph(branch)
        elif isinstance(state, Map):
            check_graph(state.processor)
