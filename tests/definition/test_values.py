"""Compiled values (``runtime.definition.values``): each field that takes a value is one object
whatever the query language, read through one method per kind of result, raising what AWS
raises for its form (issue 10)."""

from __future__ import annotations

from typing import Any

import pytest

from runtime.definition import Map, Wait, load_definition
from runtime.definition.values import (
    Constant,
    Expression,
    Reference,
    ReferenceOrCall,
    StateInput,
    Template,
)
from runtime.errors import InvalidDefinition, StatesError
from runtime.lang.jsonata import compile_expression
from runtime.lang.jsonata_engine import QueryEvaluationError
from runtime.lang.jsonata_functions import Env
from runtime.lang.paths import Path
from runtime.lang.scope import Entropy, Scope

JSON = Any


class _Bindings:
    """The effective input ``data``; ``$$`` empty, no variables."""

    def __init__(self, data: JSON) -> None:
        self.data = data

    def scope(self) -> Scope:
        return Scope({}, {}, Entropy(0))

    def env(self) -> Env:
        return Env({"input": self.data}, {}, Entropy(0), 0.0, context=dict)


def _state(language: str, **fields: JSON) -> JSON:
    body = {
        "Type": "Map",
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    }
    if (
        "Seconds" in fields
        or "SecondsPath" in fields
        or "Timestamp" in fields
        or "TimestampPath" in fields
    ):
        body = {"Type": "Wait"}
    definition = {
        "QueryLanguage": language,
        "StartAt": "S",
        "States": {"S": {**body, **fields, "End": True}},
    }
    return load_definition(definition).states["S"]


def test_both_languages_compile_a_field_into_one_value() -> None:
    jsonpath = _state("JSONPath", MaxConcurrencyPath="$.n", ItemsPath="$.xs")
    jsonata = _state("JSONata", MaxConcurrency="{% $states.input.n %}")
    assert isinstance(jsonpath, Map)
    assert isinstance(jsonata, Map)
    assert isinstance(jsonpath.max_concurrency, Reference)
    assert isinstance(jsonata.max_concurrency, Expression)
    assert isinstance(jsonpath.items, Reference)
    assert isinstance(jsonata.items, StateInput)
    data = {"n": 3, "xs": [1]}
    assert jsonpath.max_concurrency.count(_Bindings(data)) == 3
    assert jsonata.max_concurrency.count(_Bindings(data)) == 3
    assert jsonpath.items.items(_Bindings(data)) == [1]
    assert jsonata.items.items(_Bindings([2])) == [2]


def test_constants_give_themselves_and_say_so() -> None:
    wait = _state("JSONata", Seconds=5)
    assert isinstance(wait, Wait)
    assert wait.seconds == Constant(field="Seconds", value=5)
    assert wait.seconds.constant == 5
    assert wait.seconds.seconds(_Bindings(None)) == 5
    assert (
        Reference(field="Seconds", path=_state("JSONPath", SecondsPath="$.s").seconds.path).constant
        is None
    )


@pytest.mark.parametrize(
    ("fields", "data", "cause"),
    [
        (
            {"SecondsPath": "$.s"},
            {"s": -1},
            "The SecondsPath parameter references a negative value: $.s == -1",
        ),
        (
            {"SecondsPath": "$.s"},
            {"s": "x"},
            "The SecondsPath parameter cannot be parsed as a long value: $.s == x",
        ),
        (
            {"TimestampPath": "$.t"},
            {"t": 1},
            "The TimestampPath parameter does not reference a valid ISO-8601 extended offset "
            "date-time format string: $.t == 1",
        ),
    ],
)
def test_a_wait_reference_fails_with_aws_cause(
    fields: dict[str, str], data: JSON, cause: str
) -> None:
    wait = _state("JSONPath", **fields)
    assert isinstance(wait, Wait)
    value = wait.seconds or wait.timestamp
    assert value is not None
    read = value.seconds if wait.seconds is not None else value.moment
    with pytest.raises(StatesError) as failure:
        read(_Bindings(data))
    assert (failure.value.error, failure.value.cause) == ("States.Runtime", cause)


def test_a_jsonata_timestamp_that_is_no_timestamp_is_a_query_evaluation_error() -> None:
    wait = _state("JSONata", Timestamp="{% $states.input %}")
    assert isinstance(wait, Wait)
    assert wait.timestamp is not None
    with pytest.raises(QueryEvaluationError) as failure:
        wait.timestamp.moment(_Bindings("nope"))
    assert failure.value.cause == (
        "The Timestamp field cannot be parsed as an ISO-8601 extended offset date-time format "
        "string: nope"
    )


def test_map_counts_and_percentages_keep_each_language_s_causes() -> None:
    jsonpath = _state(
        "JSONPath", ToleratedFailureCountPath="$.c", ToleratedFailurePercentagePath="$.p"
    )
    assert isinstance(jsonpath, Map)
    assert jsonpath.tolerated_failure_count is not None
    assert jsonpath.tolerated_failure_percentage is not None
    with pytest.raises(
        StatesError, match=r"^States\.Runtime: ToleratedFailureCount cannot be negative\.$"
    ):
        jsonpath.tolerated_failure_count.count(_Bindings({"c": "-2"}))
    with pytest.raises(
        StatesError, match=r'refers to value "\[1\]" which is not a valid float: \$\.p'
    ):
        jsonpath.tolerated_failure_percentage.percentage(_Bindings({"p": [1]}))
    assert jsonpath.tolerated_failure_percentage.percentage(_Bindings({"p": "12.5"})) == 12.5
    jsonata = _state("JSONata", ToleratedFailurePercentage="{% $states.input %}")
    assert isinstance(jsonata, Map)
    assert jsonata.tolerated_failure_percentage is not None
    with pytest.raises(QueryEvaluationError) as failure:
        jsonata.tolerated_failure_percentage.percentage(_Bindings(101))
    assert failure.value.cause == "ToleratedFailurePercentage must be between 0 and 100."


def test_jsonata_items_that_are_no_array_name_their_form() -> None:
    expression = _state("JSONata", Items="{% $states.input %}")
    template = _state("JSONata", Items={"a": "{% 1 %}"})
    assert isinstance(expression, Map)
    assert isinstance(template, Map)
    assert isinstance(template.items, Template)
    with pytest.raises(QueryEvaluationError, match="Expected 'array'"):
        expression.items.items(_Bindings(1))
    with pytest.raises(
        QueryEvaluationError, match=r"The field 'Items' must be an array but was: \{\"a\":1\}"
    ):
        template.items.items(_Bindings(None))
    with pytest.raises(QueryEvaluationError, match="Map state input must be an array but was: 7"):
        StateInput(field="Items").items(_Bindings(7))


def test_a_jsonata_item_batcher_compiles_like_a_jsonpath_one() -> None:
    jsonata = _state(
        "JSONata",
        ItemProcessor={
            "ProcessorConfig": {"Mode": "DISTRIBUTED"},
            "StartAt": "P",
            "States": {"P": {"Type": "Pass", "End": True}},
        },
        ItemBatcher={
            "MaxItemsPerBatch": "{% $states.input.size %}",
            "BatchInput": {"k": "{% 1 %}"},
        },
    )
    assert isinstance(jsonata, Map)
    batcher = jsonata.item_batcher
    assert batcher is not None
    assert batcher.max_items_per_batch is not None
    assert batcher.batch_input is not None
    assert batcher.max_items_per_batch.count(_Bindings({"size": 2})) == 2
    assert batcher.batch_input.evaluate(_Bindings({})) == {"k": 1}


def _fail(language: str, **fields: JSON) -> JSON:
    definition = {
        "QueryLanguage": language,
        "StartAt": "F",
        "States": {"F": {"Type": "Fail", **fields}},
    }
    return load_definition(definition).states["F"]


def test_a_fails_error_path_and_cause_path_compile_into_reference_or_call() -> None:
    fail = _fail("JSONPath", ErrorPath="States.Format('E{}', $.n)", CausePath="$.why")
    assert isinstance(fail.error, ReferenceOrCall)
    assert isinstance(fail.cause, ReferenceOrCall)
    bindings = _Bindings({"n": 3, "why": {"a": [1]}})
    assert fail.error.text(bindings) == "E3"
    assert fail.cause.text(bindings) == '{"a":[1]}'  # a non-string value as JSON text
    assert fail.cause.evaluate(bindings) == {"a": [1]}


def test_a_missing_cause_path_fails_with_states_runtime_naming_the_field() -> None:
    fail = _fail("JSONPath", Error="E", CausePath="$.why")
    assert fail.error == Constant(field="Error", value="E")
    with pytest.raises(StatesError, match="specified for the field 'CausePath'") as raised:
        fail.cause.text(_Bindings({}))
    assert raised.value.error == "States.Runtime"


def test_a_jsonata_error_must_evaluate_to_a_string() -> None:
    fail = _fail("JSONata", Error="{% $states.input.n %}")
    assert isinstance(fail.error, Expression)
    assert fail.error.text(_Bindings({"n": "x"})) == "x"
    with pytest.raises(QueryEvaluationError):
        fail.error.text(_Bindings({"n": 1}))


def _task(language: str, **fields: JSON) -> JSON:
    definition = {
        "QueryLanguage": language,
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": "DoWork", "End": True, **fields}},
    }
    return load_definition(definition).states["T"]


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (99_999_999, 99_999_999)])
def test_a_duration_is_a_positive_integer_within_the_fields_maximum(
    value: int, expected: int
) -> None:
    path = _task("JSONPath", TimeoutSecondsPath="$.t").timeout_seconds
    expression = _task("JSONata", HeartbeatSeconds="{% $states.input.t %}").heartbeat_seconds
    assert isinstance(path, Reference)
    assert isinstance(expression, Expression)
    assert path.duration(_Bindings({"t": value})) == expected
    assert expression.duration(_Bindings({"t": value})) == expected


@pytest.mark.parametrize("value", [0, 100_000_000, 2.5, "5", None])
def test_a_duration_out_of_bounds_fails_in_each_form(value: JSON) -> None:
    path = _task("JSONPath", TimeoutSecondsPath="$.t").timeout_seconds
    expression = _task("JSONata", TimeoutSeconds="{% $states.input.t %}").timeout_seconds
    with pytest.raises(StatesError) as raised:
        path.duration(_Bindings({"t": value}))
    assert raised.value.error == "States.Runtime"
    with pytest.raises(QueryEvaluationError):
        expression.duration(_Bindings({"t": value}))


def test_constant_task_seconds_are_checked_against_each_other_at_load_time() -> None:
    task = _task("JSONata", TimeoutSeconds=10, HeartbeatSeconds="{% 20 %}")
    assert task.timeout_seconds == Constant(field="TimeoutSeconds", value=10)
    with pytest.raises(InvalidDefinition, match="must be smaller than the value for the field"):
        _task("JSONPath", TimeoutSeconds=10, HeartbeatSeconds=10)


def test_an_integer_read_leaves_its_range_to_the_reader_but_a_count_is_never_negative() -> None:
    reference = Reference(field="MaxItems", path=Path.compile("$.n"))
    expression = Expression(
        field="MaxItems", expression=compile_expression("{% $states.input.n %}")
    )

    # ReaderConfig.MaxItemsPath: the item reader checks 1..100,000,000 where it reads.
    assert reference.integer(_Bindings({"n": -3})) == -3
    assert reference.integer(_Bindings({"n": "12"})) == 12
    assert Constant(field="MaxItems", value=5).integer(_Bindings({})) == 5
    with pytest.raises(StatesError, match="MaxItems cannot be negative"):
        reference.count(_Bindings({"n": -3}))
    with pytest.raises(StatesError, match='refers to value "true" which is not a valid integer'):
        reference.integer(_Bindings({"n": True}))
    # An expression's integer is checked as its count is (AWS's JSONata causes).
    assert expression.integer(_Bindings({"n": 7})) == 7
    with pytest.raises(QueryEvaluationError, match="returned a value smaller than 0: -3"):
        expression.integer(_Bindings({"n": -3}))
