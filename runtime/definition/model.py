"""The compiled, immutable model of a state machine definition (the IR).

``definition.load`` turns ASL JSON into these frozen Structs after validation; every path,
payload template, intrinsic call and Choice rule is compiled once, here, so evaluation never
parses. Nothing in this module does I/O or mutates anything. Field names are ASL's, in
snake_case; ``None`` means "field absent" unless a docstring says otherwise.

Invariants: a ``StateMachine``'s ``states`` holds every state of its own level (Parallel
branches and Map processors are nested ``StateMachine``s); ``start_at`` and every ``next`` name a
state of the same level (checked by ``definition.validate``).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any, Literal, TypeAlias

import msgspec

from runtime.definition.values import Value
from runtime.lang.choice import ChoiceRule
from runtime.lang.paths import Path
from runtime.lang.payload import Payload

JSON: TypeAlias = Any
"""Any JSON value (dict, list, str, int, float, bool, None), never mutated once built."""

QueryLanguage: TypeAlias = Literal["JSONPath", "JSONata"]

ResourceKind: TypeAlias = Literal[
    "lambda", "lambda-invoke", "activity", "start-execution", "http", "service", "handler"
]
"""What a Task's ``Resource`` names (see :class:`TaskResource`)."""

IntegrationPattern: TypeAlias = Literal["request-response", ".sync", ".sync:2", ".waitForTaskToken"]
"""ASL "Service integration patterns": the ``Resource`` suffix, or none (request-response)."""


class Retrier(msgspec.Struct, frozen=True, kw_only=True):
    """One element of a ``Retry`` array (ASL "Retrying after error")."""

    error_equals: tuple[str, ...]
    interval_seconds: int = 1
    max_attempts: int = 3
    backoff_rate: float = 2.0
    max_delay_seconds: int | None = None
    jitter_strategy: Literal["FULL", "NONE"] = "NONE"


class Catcher(msgspec.Struct, frozen=True, kw_only=True):
    """One element of a ``Catch`` array (ASL "Fallback states")."""

    error_equals: tuple[str, ...]
    next: str
    result_path: Path | None = None
    """Where the error output goes; ``None`` when ``ResultPath`` is JSON null (discard)."""
    result_path_set: bool = False
    """True when the definition gave ``ResultPath`` explicitly (absent means ``$``)."""
    assign_value: Value | None = None
    """``Assign`` over the error output: a payload template (JSONPath) or a JSONata template
    seeing ``$states.errorOutput``; ``None`` when absent."""
    output_value: Value | None = None
    """The JSONata ``Output`` (which may be JSON null); ``None`` when absent: the error
    output."""


class IOPaths(msgspec.Struct, frozen=True, kw_only=True):
    """Input/output processing fields shared by most state types.

    Absent ``InputPath``/``OutputPath``/``ResultPath`` default to ``$``; JSON ``null`` is kept
    as ``None`` with the matching ``*_null`` flag set, which ASL gives distinct meanings
    (``InputPath: null`` passes ``{}``, ``ResultPath: null`` discards the result, ``OutputPath:
    null`` emits ``{}``).
    """

    input_path: Path | None = None
    output_path: Path | None = None
    result_path: Path | None = None
    input_path_null: bool = False
    output_path_null: bool = False
    result_path_null: bool = False


class StateBase(msgspec.Struct, frozen=True, kw_only=True):
    """Fields every state type has."""

    name: str
    comment: str | None = None
    query_language: QueryLanguage = "JSONPath"
    next: str | None = None
    end: bool = False
    io: IOPaths = msgspec.field(default_factory=IOPaths)
    assign_value: Value | None = None
    """``Assign`` (workflow variables), compiled once: a payload template (JSONPath, over the
    state's result, or its effective input for Choice and Wait) or a JSONata template;
    ``None`` when absent."""
    output_value: Value | None = None
    """The JSONata ``Output`` (which may be JSON null), compiled once; ``None`` when absent
    (the state's result, else its input) and in JSONPath. A Choice always has one."""
    pointer: str = ""
    """JSON Pointer of this state in the definition, e.g. ``/States/Foo``."""


class Pass(StateBase, frozen=True, kw_only=True, tag="Pass"):
    """A Pass state: copies input to output, optionally injecting ``Result``."""

    parameters: Payload | None = None
    result: JSON = None
    has_result: bool = False
    is_plain: bool = False
    """No ``Parameters``, ``Result``, ``Assign`` or ``Output``, and ``InputPath``,
    ``ResultPath``, ``OutputPath`` absent or ``$``: the output is the input (a fast path)."""


class TaskResource(msgspec.Struct, frozen=True, kw_only=True):
    """A Task's ``Resource``, resolved once at load time (ASL "Task state", "Resource"; AWS's
    service integration patterns).

    ``kind`` is one of:

    * ``lambda``: a Lambda function ARN
      (``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]``);
    * ``lambda-invoke``: ``arn:aws:states:::lambda:invoke``, the function named at run time by
      ``Parameters.FunctionName``/``Arguments.FunctionName``; its result is wrapped as AWS does;
    * ``activity``: an activity ARN; a worker takes the task (GetActivityTask) with a token;
    * ``start-execution``: ``arn:aws:states:::states:startExecution``, a nested execution;
    * ``http``: ``arn:aws:states:::http:invoke``, the HTTP Task;
    * ``service``: any other optimised or ``aws-sdk`` integration
      (``arn:aws:states:::SERVICE:ACTION``);
    * ``handler``: any other string: a name registered with the runtime.
    """

    kind: ResourceKind
    pattern: IntegrationPattern = "request-response"
    handler_name: str | None = None
    """The name the handler registry is asked for: a Lambda ARN's function ``NAME``, the
    resource itself for the other kinds; ``None`` for ``lambda-invoke`` (the function comes
    from ``FunctionName`` at run time). For ``.waitForTaskToken`` the engine also tries the
    name without the suffix (``base``)."""
    base: str = ""
    """The resource without its integration-pattern suffix."""
    function_qualifier: str | None = None
    """A Lambda ARN's version or alias (``...:function:NAME:QUALIFIER``)."""
    resource_type: str = "statemill"
    """``resourceType`` of TaskScheduled/TaskStarted events: the service of an
    ``arn:aws:states:::SERVICE:ACTION`` integration, ``statemill`` for others."""
    resource_action: str = ""
    """``resource`` of those events: ``ACTION`` plus the pattern suffix for an integration
    (``invoke.waitForTaskToken``), the whole resource for others."""
    has_task_token: bool = False
    """The Task waits for a task-token answer: ``.waitForTaskToken``, or an activity."""

    @property
    def is_lambda(self) -> bool:
        """A Lambda call (function ARN or ``lambda:invoke``): failures are formatted as AWS
        Lambda's Python runtime formats them."""
        return self.kind in ("lambda", "lambda-invoke")


class Task(StateBase, frozen=True, kw_only=True, tag="Task"):
    """A Task state: calls the handler named by ``Resource``."""

    resource: str
    resolved_resource: TaskResource
    """``resource`` resolved at load time: kind, handler name, integration pattern."""
    parameters: Payload | None = None
    arguments: Value | None = None
    """JSONata's ``Arguments`` (a template, compiled at load time; ``Parameters`` in JSONPath)."""
    result_selector: Payload | None = None
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    timeout_seconds: Value | None = None
    """``TimeoutSeconds``/``TimeoutSecondsPath``, one compiled value in either query language."""
    heartbeat_seconds: Value | None = None
    """``HeartbeatSeconds``/``HeartbeatSecondsPath``, likewise."""
    credentials: JSON = None


class Choice(StateBase, frozen=True, kw_only=True, tag="Choice"):
    """A Choice state: the first matching rule's ``Next`` wins, else ``Default``; the state's
    ``assign_value`` applies whichever rule matched (the rule's comes on top)."""

    choices: tuple[ChoiceRule, ...] = ()
    default: str | None = None
    rule_assign: tuple[Value | None, ...] = ()
    """Each rule's ``Assign`` (a JSONPath payload template over the effective input, or a
    JSONata template), in the order of ``choices``; ``None`` for a rule without one."""
    rule_output: tuple[Value | None, ...] = ()
    """Each rule's JSONata ``Output``, in the order of ``choices``; ``None`` for a rule without
    one (and for every rule of a JSONPath Choice)."""
    output_value: Value
    """The state output when the matching rule gives no ``Output``: ``OutputPath`` over the
    effective input (JSONPath), the state's ``Output``, else its input (JSONata)."""


class Wait(StateBase, frozen=True, kw_only=True, tag="Wait"):
    """A Wait state: exactly one of ``Seconds``/``SecondsPath`` (``seconds``) and
    ``Timestamp``/``TimestampPath`` (``timestamp``) is set, compiled as one value whatever the
    query language (a JSONata ``{% %}`` string is an expression)."""

    seconds: Value | None = None
    timestamp: Value | None = None


class Succeed(StateBase, frozen=True, kw_only=True, tag="Succeed"):
    """A Succeed state: ends its (sub)machine successfully."""


class Fail(StateBase, frozen=True, kw_only=True, tag="Fail"):
    """A Fail state: ends its (sub)machine with ``Error``/``Cause`` (or their paths), each one
    compiled value: a constant string, a JSONata expression or, in JSONPath, ``ErrorPath``/
    ``CausePath`` (a reference path or an intrinsic call)."""

    error: Value | None = None
    cause: Value | None = None


class Parallel(StateBase, frozen=True, kw_only=True, tag="Parallel"):
    """A Parallel state: runs every branch on the same input; output is the list of outputs."""

    branches: tuple[StateMachine, ...]
    parameters: Payload | None = None
    arguments: Value | None = None
    """JSONata's ``Arguments``, compiled at load time, like a Task's."""
    result_selector: Payload | None = None
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()


class ItemBatcher(msgspec.Struct, frozen=True, kw_only=True):
    """A distributed Map's ``ItemBatcher``, in either query language: each field (with its
    ``...Path`` form in JSONPath) one compiled value."""

    max_items_per_batch: Value | None = None
    max_input_bytes_per_batch: Value | None = None
    batch_input: Value | None = None
    """``BatchInput``: a payload template (JSONPath) or a JSONata template."""


class Map(StateBase, frozen=True, kw_only=True, tag="Map"):
    """A Map state, inline or distributed (``ProcessorConfig.Mode``)."""

    processor: StateMachine
    mode: Literal["INLINE", "DISTRIBUTED"] = "INLINE"
    execution_type: Literal["STANDARD", "EXPRESS"] = "STANDARD"
    items: Value
    """``ItemsPath`` (default ``$``) or JSONata's ``Items`` (default: the state input)."""
    item_selector: Value | None = None
    """``ItemSelector`` (a payload template in JSONPath, where the legacy ``Parameters`` field
    means the same; a JSONata template), evaluated with ``$$.Map.Item`` /
    ``$states.context.Map.Item`` bound to each iteration's item."""
    result_selector: Payload | None = None
    retry: tuple[Retrier, ...] = ()
    catch: tuple[Catcher, ...] = ()
    max_concurrency: Value | None = None
    """``MaxConcurrency``/``MaxConcurrencyPath``; absent means 0 (no limit)."""
    tolerated_failure_count: Value | None = None
    """``ToleratedFailureCount``/``ToleratedFailureCountPath``."""
    tolerated_failure_percentage: Value | None = None
    """``ToleratedFailurePercentage``/``ToleratedFailurePercentagePath``."""
    label: str | None = None
    item_batcher: ItemBatcher | None = None
    item_reader: JSON = None
    item_reader_arguments: Value | None = None
    """The ItemReader's ``Parameters`` (a JSONPath payload template) or ``Arguments`` (a
    JSONata template); the value's ``field`` is the key the resolved reader gives it."""
    item_reader_max_items: Value | None = None
    """``ReaderConfig.MaxItemsPath`` (JSONPath) or a ``{% %}`` ``ReaderConfig.MaxItems``
    (JSONata); a constant ``MaxItems`` stays in ``item_reader``, checked where it is read."""
    result_writer: JSON = None
    result_writer_arguments: Value | None = None
    """The ResultWriter's ``Parameters`` (JSONPath) or ``Arguments`` (JSONata), as
    :attr:`item_reader_arguments`."""


State: TypeAlias = Pass | Task | Choice | Wait | Succeed | Fail | Parallel | Map


class StateMachine(msgspec.Struct, frozen=True, kw_only=True):
    """A (sub)machine: the top-level definition, a Parallel branch or a Map processor."""

    start_at: str
    states: dict[str, State]
    comment: str | None = None
    timeout_seconds: int | None = None
    query_language: QueryLanguage = "JSONPath"
    version: str | None = None
    source: JSON = None
    """The ASL JSON this was compiled from (kept for export and hashing)."""
    pointer: str = ""
    """JSON Pointer of this (sub)machine: ``""`` at top level, ``/States/P/Branches[0]`` or
    ``/States/M/ItemProcessor`` (``/Iterator``) when nested."""

    def machines(self) -> Iterator[StateMachine]:
        """This machine and every machine nested in it (Parallel branches, Map processors),
        breadth first."""
        pending = collections.deque([self])
        while pending:
            current = pending.popleft()
            yield current
            for state in current.states.values():
                if isinstance(state, Parallel):
                    pending.extend(state.branches)
                elif isinstance(state, Map):
                    pending.append(state.processor)
