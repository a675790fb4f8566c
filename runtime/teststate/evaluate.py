"""TestState's evaluation of one state: its data flow, the mock, Retry and Catch, and the
``inspectionData`` AWS reports for it.

The state runs once: a mocked or real Task result, a mocked Map or Parallel result (their
iterations and branches never run), and no waiting. A failure is matched against the state's
``Retry`` (with ``stateConfiguration.retrierRetryCount`` as the attempts already made: RETRIABLE
with the backoff the next attempt would wait), then its ``Catch`` (CAUGHT_ERROR with the
catcher's output and ``nextState``), else FAILED. Which inspection fields appear for which state
type and query language follows AWS's recorded responses (tests/teststate).

Pure apart from the handler call, which the caller supplies as ``run`` (a coroutine runner).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, final

from runtime.core.tasks import lambda_invoke_wrapper, lambda_payload
from runtime.definition import (
    Catcher,
    Choice,
    Fail,
    Map,
    Parallel,
    Pass,
    Retrier,
    State,
    Succeed,
    Task,
    Wait,
)
from runtime.definition.values import Reference, Value
from runtime.engine.handlers import HandlerRegistry, TaskContext
from runtime.engine.tasks import lambda_error_cause
from runtime.errors import StatesError, TaskFailed, error_matches
from runtime.lang.jsonata_functions import Env
from runtime.lang.paths import Path, PathNotFound, apply_result_path
from runtime.lang.scope import Entropy, Scope

__all__ = ["Evaluation", "Mock", "Request"]

JSON = Any

THRESHOLD_ERROR: Final = "States.ExceedToleratedFailureThreshold"
THRESHOLD_CAUSE: Final = "The specified tolerated failure threshold was exceeded"


@dataclass(frozen=True, kw_only=True)
class Mock:
    """``mock``: a ``result`` (decoded) or an ``errorOutput`` (``is_error``)."""

    result: JSON = None
    error: str = ""
    cause: str = ""
    is_error: bool = False
    field_validation_mode: Literal["STRICT", "PRESENT", "NONE"] = "STRICT"


@dataclass(frozen=True, kw_only=True)
class Request:
    """A checked TestState request, its JSON-text fields decoded."""

    state: State
    name: str
    input: JSON
    level: str
    mock: Mock | None
    context: JSON
    variables: dict[str, JSON] | None
    retry_count: int = 0
    error_caused_by: str | None = None
    iteration_failures: int | None = None
    item_reader_data: JSON = None
    execution_arn: str = ""
    region: str = "us-east-1"
    account: str = "000000000000"
    now: float = 0.0
    seed: int = 0


class _Failed(Exception):
    """The state failed with (error, cause)."""

    def __init__(self, error: str, cause: str) -> None:
        self.error = error
        self.cause = cause
        super().__init__(error, cause)


def _text(value: JSON) -> str:
    """JSON text as TestState returns it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _lambda_invoke_result(payload: JSON) -> dict[str, JSON]:
    """``arn:aws:states:::lambda:invoke`` wraps the function's result as AWS does (TestState
    names no request: a fixed id)."""
    return lambda_invoke_wrapper(payload, "00000000-0000-0000-0000-000000000000")


@final
class _Bindings:
    """The :class:`runtime.definition.values.Bindings` of the state under test."""

    __slots__ = ("data", "evaluation", "states")

    def __init__(self, evaluation: Evaluation, data: JSON, states: dict[str, JSON]) -> None:
        self.evaluation = evaluation
        self.data = data
        self.states = states

    def scope(self) -> Scope:
        return self.evaluation.scope()

    def env(self) -> Env:
        return self.evaluation.env(**self.states)


@dataclass
class Evaluation:
    """One TestState run: :meth:`run` returns the response."""

    request: Request
    registry: HandlerRegistry
    run_coroutine: Callable[[Awaitable[JSON]], JSON]
    inspection: dict[str, JSON] = field(default_factory=dict)
    variables: dict[str, JSON] = field(default_factory=dict)
    assigned: bool = False

    def __post_init__(self) -> None:
        self.variables = dict(self.request.variables or {})
        self.entropy = Entropy(self.request.seed)
        self.inspect("input", self.request.input)

    # -- the response ----------------------------------------------------------------------

    def run(self) -> dict[str, JSON]:
        """Evaluate the state and build AWS's response."""
        state = self.request.state
        try:
            match state:
                case Pass():
                    response = self.pass_state(state)
                case Task():
                    response = self.task(state)
                case Choice():
                    response = self.choice(state)
                case Wait():
                    response = self.flow(state, state.next)
                case Succeed():
                    response = self.flow(state, None)
                case Fail():
                    response = self.fail(state)
                case Parallel():
                    response = self.parallel(state)
                case Map():
                    response = self.map_state(state)
        except _Failed as failed:
            response = self.failed(failed.error, failed.cause)
        except (StatesError, PathNotFound) as error:
            response = self.failed(*self.reason(error))
        if self.request.level != "INFO":
            if self.assigned or self.request.variables is not None:
                self.inspect("variables", self.variables)
            response["inspectionData"] = self.inspection
        return response

    def inspect(self, name: str, value: JSON) -> None:
        """Record an inspection field (JSON text, as AWS returns ``SensitiveData``)."""
        self.inspection[name] = _text(value)

    @staticmethod
    def reason(error: StatesError | PathNotFound) -> tuple[str, str]:
        if isinstance(error, PathNotFound):
            return "States.Runtime", str(error)
        return error.error, error.cause

    @staticmethod
    def succeeded(output: JSON, next_state: str | None) -> dict[str, JSON]:
        response: dict[str, JSON] = {"status": "SUCCEEDED", "output": _text(output)}
        if next_state is not None:
            response["nextState"] = next_state
        return response

    @staticmethod
    def failed(error: str, cause: str, status: str = "FAILED") -> dict[str, JSON]:
        return {"status": status, "error": error, "cause": cause}

    # -- shared pieces ---------------------------------------------------------------------

    @property
    def jsonpath(self) -> bool:
        return self.request.state.query_language == "JSONPath"

    def scope(self) -> Scope:
        return Scope(self.request.context, self.variables, self.entropy)

    def env(self, **states: JSON) -> Env:
        context = self.request.context
        return Env(
            {"input": self.request.input, **states},
            self.variables,
            self.entropy,
            self.request.now,
            context=lambda: context,
        )

    def bindings(self, data: JSON, **states: JSON) -> _Bindings:
        """What the state's compiled values are evaluated in, ``data`` its effective input
        (``states``: ``$states.result`` or ``$states.errorOutput``)."""
        return _Bindings(self, data, states)

    def select(self, path: Path | None, data: JSON) -> JSON:
        if path is None:
            return data
        return path.evaluate(data, self.scope())

    def effective_input(self, state: State) -> JSON:
        """InputPath (JSON null gives ``{}``)."""
        if state.io.input_path_null:
            return {}
        return self.select(state.io.input_path, self.request.input)

    def result_path(self, state: State, result: JSON) -> JSON:
        if state.io.result_path_null:
            return self.request.input
        if state.io.result_path is None:
            return result
        return apply_result_path(state.io.result_path, self.request.input, result)

    def output_path(self, state: State, data: JSON) -> JSON:
        if state.io.output_path_null:
            return {}
        return self.select(state.io.output_path, data)

    def assign_jsonpath(self, value: Value | None, data: JSON) -> None:
        """JSONPath ``Assign`` over ``data``; every value reads the variables as they were."""
        if value is not None:
            self.assign_values(value.evaluate(self.bindings(data)))

    def assign_values(self, values: dict[str, JSON]) -> None:
        """Set the variables an ``Assign`` gave."""
        self.variables = {**self.variables, **values}
        self.assigned = True

    def exit_jsonata(
        self,
        output: Value | None,
        assigns: tuple[Value | None, ...],
        bindings: _Bindings,
        default: JSON,
    ) -> JSON:
        """JSONata ``Assign`` (each of ``assigns``, the later on top) then ``Output`` (absent:
        ``default``), all over the same ``$states`` and variables, as an execution reads them."""
        values: dict[str, JSON] | None = None
        for assign in assigns:
            if assign is not None:
                assigned = assign.evaluate(bindings)
                values = assigned if values is None else {**values, **assigned}
        result = default if output is None else output.evaluate(bindings)
        if values is not None:
            self.assign_values(values)
        return result

    # -- flow states -----------------------------------------------------------------------

    def pass_state(self, state: Pass) -> dict[str, JSON]:
        """Pass: ``Result`` or the (Parameters-shaped) effective input, then ResultPath."""
        if not self.jsonpath:
            output = self.exit_jsonata(
                state.output_value,
                (state.assign_value,),
                self.bindings(self.request.input),
                self.request.input,
            )
            return self.succeeded(output, state.next)
        if state.has_result:
            result = state.result
            self.inspect("result", result)
        else:
            effective = self.effective_input(state)
            self.inspect("afterInputPath", effective)
            result = (
                effective
                if state.parameters is None
                else state.parameters.evaluate(effective, self.scope())
            )
            self.inspect("afterParameters", result)
        self.inspect("afterResultSelector", result)
        merged = self.result_path(state, result)
        self.inspect("afterResultPath", merged)
        self.assign_jsonpath(state.assign_value, result)
        return self.succeeded(self.output_path(state, merged), state.next)

    def flow(self, state: Wait | Succeed, next_state: str | None) -> dict[str, JSON]:
        """Wait (which TestState does not wait out) and Succeed: the effective input passes."""
        if not self.jsonpath:
            output = self.exit_jsonata(
                state.output_value,
                (state.assign_value,),
                self.bindings(self.request.input),
                self.request.input,
            )
            return self.succeeded(output, next_state)
        effective = self.effective_input(state)
        self.inspect("afterInputPath", effective)
        self.assign_jsonpath(state.assign_value, effective)
        return self.succeeded(self.output_path(state, effective), next_state)

    def choice(self, state: Choice) -> dict[str, JSON]:
        """Choice: the first rule that matches names ``nextState`` (else ``Default``)."""
        if not self.jsonpath:
            bindings = self.bindings(self.request.input)
            for index, rule in enumerate(state.choices):
                if rule.matches(bindings):
                    # The state's Assign applies whichever rule matched, the rule's on top
                    # (AWS guide, "Choice workflow state"); the rule's Output replaces the
                    # state's: as in an execution.
                    result = self.exit_jsonata(
                        state.rule_output[index] or state.output_value,
                        (state.assign_value, state.rule_assign[index]),
                        bindings,
                        self.request.input,
                    )
                    return self.succeeded(result, rule.next)
            if state.default is None:
                raise _Failed("States.NoChoiceMatched", "No Matches!")
            output = self.exit_jsonata(
                state.output_value, (state.assign_value,), bindings, self.request.input
            )
            return self.succeeded(output, state.default)
        effective = self.effective_input(state)
        self.inspect("afterInputPath", effective)
        bindings = self.bindings(effective)
        target = state.default
        rule_assign: Value | None = None
        for index, rule in enumerate(state.choices):
            if rule.matches(bindings):
                target = rule.next
                rule_assign = state.rule_assign[index]
                break
        if target is None:
            raise _Failed("States.NoChoiceMatched", "No Matches!")
        self.assign_jsonpath(state.assign_value, effective)
        if rule_assign is not None:
            # Over the variables the state's Assign just set, as in an execution.
            self.assign_values(rule_assign.evaluate(bindings))
        return self.succeeded(self.output_path(state, effective), target)

    def fail(self, state: Fail) -> dict[str, JSON]:
        """Fail: ``Error``/``Cause``, from their paths or expressions when given (each one
        compiled value, read as an execution reads it)."""
        data = self.request.input
        if self.jsonpath:
            self.inspect("afterInputPath", data)
        bindings = self.bindings(data)
        error = None if state.error is None else state.error.text(bindings)
        cause = None if state.cause is None else state.cause.text(bindings)
        response: dict[str, JSON] = {"status": "FAILED"}
        if error is not None:
            response["error"] = error
        if cause is not None:
            response["cause"] = cause
        return response

    # -- states that do work ---------------------------------------------------------------

    def task(self, state: Task) -> dict[str, JSON]:
        """Task: the call's input, the mocked or real result, then the result's processing."""
        if self.jsonpath:
            effective = self.effective_input(state)
            self.inspect("afterInputPath", effective)
            call_input = (
                effective
                if state.parameters is None
                else state.parameters.evaluate(effective, self.scope())
            )
            self.inspect("afterParameters", call_input)
        else:
            call_input = self.request.input
            if state.arguments is not None:
                call_input = state.arguments.evaluate(self.bindings(call_input))
                self.inspect("afterArguments", call_input)
        mock = self.request.mock
        if mock is not None and mock.is_error:
            return self.handle_failure(state, mock.error, mock.cause)
        if mock is not None:
            result = mock.result
        else:
            try:
                result = self.call(state, call_input)
            except _Failed as failed:
                return self.handle_failure(state, failed.error, failed.cause)
        self.inspect("result", result)
        return self.finish(state, result)

    def call(self, state: Task, call_input: JSON) -> JSON:
        """Run the handler registered for the Task's resource (as the runtime resolves it)."""
        resource = state.resolved_resource
        name = resource.handler_name
        payload = call_input
        if resource.kind == "lambda-invoke":
            # The function comes from FunctionName (a name or an ARN the registry resolves);
            # Lambda receives Payload as raw bytes.
            arguments = call_input if isinstance(call_input, dict) else {}
            function = arguments.get("FunctionName")
            name = function if isinstance(function, str) else None
            payload = lambda_payload(arguments.get("Payload"))
        spec = self.registry.resolve(name) if name else None
        if spec is None and resource.pattern == ".waitForTaskToken":
            spec = self.registry.resolve(resource.base)
        if spec is None:
            if resource.is_lambda:
                arn = name or ""
                if not arn.startswith("arn:"):
                    arn = (
                        f"arn:aws:lambda:{self.request.region}:{self.request.account}:"
                        f"function:{arn}"
                    )
                raise _Failed(
                    "Lambda.ResourceNotFoundException",
                    f"Function not found: {arn} (Service: AWSLambda; Status Code: 404; "
                    "Error Code: ResourceNotFoundException)",
                )
            raise _Failed(
                "States.TaskFailed", f"No handler is registered for the resource '{state.resource}'"
            )
        token = self.request.context.get("Task", {}).get("Token")
        task_token = token if isinstance(token, str) else None
        context = TaskContext(
            execution_arn=self.request.execution_arn,
            state_machine_arn="",
            state_name=self.request.name,
            resource=state.resource,
            attempt=self.request.retry_count + 1,
            idempotency_key=f"{self.request.execution_arn}/{self.request.name}/teststate",
            task_token=task_token,
        )
        try:
            output = self.run_coroutine(spec.fn(payload, context))
        except TaskFailed as failure:
            raise _Failed(failure.error, failure.cause) from None
        except Exception as exc:  # a handler's bug fails its Task, never the API
            cause = lambda_error_cause(exc) if resource.is_lambda else str(exc)
            raise _Failed(type(exc).__name__, cause) from None
        if resource.kind == "lambda-invoke":
            return _lambda_invoke_result(output)
        return output

    def finish(self, state: Task | Parallel | Map, result: JSON) -> dict[str, JSON]:
        """ResultSelector, ResultPath, OutputPath (or JSONata Output) of a result."""
        if not self.jsonpath:
            output = self.exit_jsonata(
                state.output_value,
                (state.assign_value,),
                self.bindings(self.request.input, result=result),
                result,
            )
            return self.succeeded(output, state.next)
        selected = result
        if state.result_selector is not None:
            selected = state.result_selector.evaluate(result, self.scope())
        self.inspect("afterResultSelector", selected)
        merged = self.result_path(state, selected)
        self.inspect("afterResultPath", merged)
        self.assign_jsonpath(state.assign_value, selected)
        return self.succeeded(self.output_path(state, merged), state.next)

    def parallel(self, state: Parallel) -> dict[str, JSON]:
        """Parallel: the mocked list of branch outputs (the branches never run)."""
        mock = self.request.mock
        assert mock is not None  # checked with the request
        if self.jsonpath:
            effective = self.effective_input(state)
            if state.parameters is not None:
                state.parameters.evaluate(effective, self.scope())
        elif state.arguments is not None:
            state.arguments.evaluate(self.bindings(self.request.input))
        if mock.is_error:
            return self.handle_failure(state, mock.error, mock.cause)
        return self.finish(state, mock.result)

    def map_state(self, state: Map) -> dict[str, JSON]:
        """Map: items, MaxConcurrency and the failure tolerance evaluated; the mocked result
        stands for the iterations' outputs; ``mapIterationFailureCount`` failed iterations
        beyond the tolerance fail the state with States.ExceedToleratedFailureThreshold."""
        mock = self.request.mock
        assert mock is not None  # checked with the request
        items = self.map_items(state)
        self.map_settings(state)
        if mock.is_error:
            return self.handle_failure(state, mock.error, mock.cause)
        if self.exceeds_tolerance(state, items):
            return self.handle_failure(state, THRESHOLD_ERROR, THRESHOLD_CAUSE)
        return self.finish(state, mock.result)

    def map_items(self, state: Map) -> JSON:
        """The Map's items: ``mapItemReaderData`` for an ItemReader, else ItemsPath/Items (the
        execution's compiled value; TestState words a value that is no array its own way)."""
        reader = self.request.item_reader_data
        if state.item_reader is not None and reader is not None:
            return reader
        effective = self.effective_input(state)
        if self.jsonpath:
            self.inspect("afterInputPath", effective)
        items = state.items.evaluate(self.bindings(effective))
        if not isinstance(items, list):
            if not isinstance(state.items, Reference):
                raise _Failed(
                    "States.QueryEvaluationError", "The Items field must evaluate to a JSON array"
                )
            shown = state.items.path.text.replace("$$", "$", 1)
            raise _Failed("States.Runtime", f'Reference path "{shown}" must point to array.')
        if self.jsonpath:
            self.inspect("afterItemsPath", items)
            selector = state.item_selector
            if selector is not None:
                self.inspect(
                    "afterItemSelector",
                    [selector.evaluate(self.bindings(item)) for item in items],
                )
        return items

    def map_settings(self, state: Map) -> None:
        """MaxConcurrency and the failure tolerance (ASL "Map state failure threshold"), as an
        execution evaluates them, reported in the inspection data."""
        bindings = self.bindings(self.effective_input(state))
        concurrency = state.max_concurrency
        self.inspection["maxConcurrency"] = (
            0 if concurrency is None else concurrency.count(bindings)
        )
        if state.tolerated_failure_count is not None:
            count = state.tolerated_failure_count.count(bindings)
            self.inspection["toleratedFailureCount"] = count
        if state.tolerated_failure_percentage is not None:
            percentage = state.tolerated_failure_percentage.percentage(bindings)
            self.inspection["toleratedFailurePercentage"] = percentage

    def exceeds_tolerance(self, state: Map, items: JSON) -> bool:
        """``mapIterationFailureCount`` failures against ToleratedFailureCount/Percentage."""
        failures = self.request.iteration_failures
        if not failures:
            return False
        count = self.inspection.get("toleratedFailureCount")
        percentage = self.inspection.get("toleratedFailurePercentage")
        if count is None and percentage is None:
            return False
        if count is not None and failures > count:
            return True
        total = len(items) if isinstance(items, list) else 0
        return percentage is not None and total > 0 and failures * 100 / total > percentage

    # -- Retry and Catch -------------------------------------------------------------------

    def handle_failure(
        self, state: Task | Parallel | Map, error: str, cause: str
    ) -> dict[str, JSON]:
        """A failure against the state's Retry (the attempts made so far being
        ``retrierRetryCount``), then its Catch."""
        details: dict[str, JSON] = {}
        for index, retrier in enumerate(state.retry):
            if any(error_matches(pattern, error) for pattern in retrier.error_equals):
                details["retryIndex"] = index
                if self.request.retry_count < retrier.max_attempts:
                    details["retryBackoffIntervalSeconds"] = self.backoff(retrier)
                    self.inspection["errorDetails"] = details
                    return self.failed(error, cause, "RETRIABLE")
                break
        for index, catcher in enumerate(state.catch):
            if any(error_matches(pattern, error) for pattern in catcher.error_equals):
                details["catchIndex"] = index
                self.inspection["errorDetails"] = details
                response = self.failed(error, cause, "CAUGHT_ERROR")
                response["output"] = _text(self.caught_output(catcher, error, cause))
                response["nextState"] = catcher.next
                return response
        if details:
            self.inspection["errorDetails"] = details
        return self.failed(error, cause)

    def backoff(self, retrier: Retrier) -> int | float:
        """The wait before the next attempt: IntervalSeconds x BackoffRate^attempts made,
        capped by MaxDelaySeconds."""
        delay = retrier.interval_seconds * retrier.backoff_rate ** min(self.request.retry_count, 64)
        if retrier.max_delay_seconds is not None:
            delay = min(delay, retrier.max_delay_seconds)
        return int(delay) if float(delay).is_integer() else delay

    def caught_output(self, catcher: Catcher, error: str, cause: str) -> JSON:
        """The catcher's output: the error output at its ResultPath (JSONPath) or its
        ``Output`` over ``$states.errorOutput`` (JSONata)."""
        error_output = {"Error": error, "Cause": cause}
        if not self.jsonpath:
            return self.exit_jsonata(
                catcher.output_value,
                (catcher.assign_value,),
                self.bindings(self.request.input, errorOutput=error_output),
                error_output,
            )
        self.assign_jsonpath(catcher.assign_value, error_output)
        if not catcher.result_path_set:
            return error_output
        if catcher.result_path is None:
            return self.request.input
        return apply_result_path(catcher.result_path, self.request.input, error_output)
