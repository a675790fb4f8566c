"""JSONata mode: ``{% %}`` detection, evaluation with ``$states`` and variables, AWS's added
functions, templates, and the closed error set (every failure is States.QueryEvaluationError)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.definition.values import TemplateNode
from runtime.lang import jsonata
from runtime.lang.jsonata import (
    compile_expression,
    compile_template,
    evaluate,
    is_expression,
)
from runtime.lang.jsonata_engine import QueryEvaluationError
from runtime.lang.jsonata_functions import Env
from runtime.lang.scope import Entropy

JSON = Any


def _evaluate_template(template: Any, environment: Env, field: str) -> Any:
    """A template compiled as the loader compiles it, then evaluated."""
    return TemplateNode(template, field).evaluate(environment)


def env(data: JSON = None, seed: int = 0, now: float = 0.0, **variables: JSON) -> Env:
    states = {"input": {} if data is None else data, "context": {"Execution": {"Name": "e"}}}
    return Env(states, variables, Entropy(seed), now)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{% 1 %}", True),
        ("{%1%}", True),
        (" {% 1 %}", False),
        ("{% 1 %} ", False),
        ("$states.input", False),
        ("{% 1", False),
        (1, False),
        (None, False),
    ],
)
def test_is_expression(value: JSON, expected: bool) -> None:
    assert is_expression(value) is expected


@pytest.mark.parametrize(
    ("source", "data", "variables", "expected"),
    [
        ("{% $states.input.a %}", {"a": 1}, {}, 1),
        ("{% $states.input.n %}", {"n": None}, {}, None),
        ("{% $sum($states.input.xs) + $v %}", {"xs": [1, 2, 3]}, {"v": 1}, 7),
        ("{% $states.context.Execution.Name %}", {}, {}, "e"),
        ("{% $merge([{'a': 1}, {'b': 2}]) %}", {}, {}, {"a": 1, "b": 2}),
        ("{% $contains('hello$world', /^hello\\$/) %}", {}, {}, True),
        ("{% $v = '\"' %}", {}, {"v": '"'}, True),
        ("{% $x := 5 %}", {}, {}, 5),
        ("{% [1, 'two', 3] %}", {}, {}, [1, "two", 3]),
        ("{% $partition([1, 2, 3, 4, 5], 2) %}", {}, {}, [[1, 2], [3, 4], [5]]),
        ("{% $range(0, 10, 3) %}", {}, {}, [0, 3, 6, 9]),
        ("{% $range(1, 9, 2) %}", {}, {}, [1, 3, 5, 7, 9]),
        ("{% $range(3, 1, -1) %}", {}, {}, [3, 2, 1]),
        ("{% $parse('{\"a\": [1]}') %}", {}, {}, {"a": [1]}),
        ("{% $parse('-0') %}", {}, {}, 0),
        ("{% $parse('1.1') %}", {}, {}, 1.1),
    ],
)
def test_evaluate(source: str, data: JSON, variables: dict[str, JSON], expected: JSON) -> None:
    assert evaluate(source, env(data, **variables), "Output") == expected


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-1", "SHA-256", "SHA-384", "SHA-512"])
def test_hash(algorithm: str) -> None:
    name = algorithm.replace("-", "").lower()
    expected = hashlib.new(name, b"Hash this string").hexdigest()
    assert evaluate(f"{{% $hash('Hash this string', '{algorithm}') %}}", env(), "x") == expected


def test_random_and_uuid_draw_from_the_entropy() -> None:
    first = [
        evaluate("{% $uuid() %}", env(seed=3), "x"),
        evaluate("{% $random() %}", env(seed=3), "x"),
    ]
    again = [
        evaluate("{% $uuid() %}", env(seed=3), "x"),
        evaluate("{% $random() %}", env(seed=3), "x"),
    ]
    other = evaluate("{% $uuid() %}", env(seed=4), "x")
    assert first == again
    assert other != first[0]
    assert 0 <= first[1] < 1
    seeded = evaluate("{% $random(42) %}", env(seed=1), "x")
    assert seeded == evaluate("{% $random(42) %}", env(seed=2), "x")


def test_now_and_millis_read_the_decision_clock() -> None:
    at = env(now=1_700_000_000.25)
    assert evaluate("{% $now() %}", at, "x") == "2023-11-14T22:13:20.250Z"
    assert evaluate("{% $millis() %}", at, "x") == 1_700_000_000_250
    assert evaluate("{% $now('[Y0001]-[M01]') %}", at, "x") == "2023-11"


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        (
            "{% $states.input.missing %}",
            "The JSONata expression '$states.input.missing' specified for the field 'Output' "
            "returned nothing (undefined).",
        ),
        (
            "{% $fn := function($x){$x} %}",
            "The JSONata expression '$fn := function($x){$x}' specified for the field 'Output' "
            "returned an unsupported result type.",
        ),
        (
            "{% 1 + 'a' %}",
            "The JSONata expression '1 + 'a'' specified for the field 'Output' threw an error "
            "during evaluation. T2002: The right side of the + operator must evaluate to a number",
        ),
        ("{% $eval('1') %}", "The function $eval is not supported. Use $parse instead."),
        (
            "{% $partition([1], 0) %}",
            "The second argument of $partition must be a positive integer.",
        ),
        (
            "{% $range(1, 2, 0) %}",
            "The JSONata expression '$range(1, 2, 0)' specified for the field 'Output' "
            "returned nothing (undefined).",
        ),
        ("{% $range(0, 5000, 1) %}", "The result of $range exceeds the limit of 1000 items."),
        ("{% $parse('{') %}", "The argument of $parse is not valid JSON: {"),
        (
            "{% $hash('a', 'SHA-3') %}",
            "The second argument of $hash must be one of [MD5, SHA-1, SHA-256, SHA-384, "
            'SHA-512], but was: "SHA-3"',
        ),
    ],
)
def test_failures_are_query_evaluation_errors(source: str, cause: str) -> None:
    with pytest.raises(QueryEvaluationError) as raised:
        evaluate(source, env(), "Output")
    assert raised.value.error == "States.QueryEvaluationError"
    assert raised.value.cause == cause
    assert raised.value.location == "Output"


def test_wrong_type_names_jsonata_types() -> None:
    expression = compile_expression("{% $v %}")
    error = expression.wrong_type({"foo": "bar"}, "array", "Items")
    assert error.cause == (
        "The JSONata expression '$v' specified for the field 'Items' returned an unexpected "
        "result type. Expected 'array', but was 'object' for value: {\"foo\":\"bar\"}"
    )


def test_template_evaluates_expressions_at_any_depth_and_keeps_constants() -> None:
    template = {
        "a": "{% $states.input.x %}",
        "b": [1, " {% not evaluated %} ", {"c": "{% $v * 2 %}"}],
        "d": "$states.input",
        "e": None,
    }
    compile_template(template)
    assert _evaluate_template(template, env({"x": "X"}, v=21), "Arguments") == {
        "a": "X",
        "b": [1, " {% not evaluated %} ", {"c": 42}],
        "d": "$states.input",
        "e": None,
    }
    assert template["a"] == "{% $states.input.x %}"


def test_compile_is_cached_and_rejects_bad_syntax() -> None:
    assert compile_expression("{% 1 + 2 %}") is compile_expression("{% 1 + 2 %}")
    with pytest.raises(ValueError, match="not valid"):
        compile_template({"a": ["{% ( %}"]})
    with pytest.raises(ValueError, match="empty"):
        compile_expression("{%  %}")


def test_only_referenced_variables_are_bound() -> None:
    expression = compile_expression("{% $a & $states.input.s %}")
    assert expression.names == frozenset({"a"})
    assert expression.uses_states
    assert expression.evaluate(env({"s": "!"}, a="hi", b="unused"), "x") == "hi!"


class _FakeCompiled:
    def __init__(self, text: str) -> None:
        self.text = text

    def run(self, bindings: dict[str, JSON]) -> JSON:
        return {"text": self.text, "bound": sorted(bindings)}


class _FakeEngine:
    def compile(self, text: str, functions: Mapping[str, Callable[..., JSON]]) -> _FakeCompiled:
        return _FakeCompiled(text)


def test_engine_can_be_swapped() -> None:
    previous = jsonata.set_engine(_FakeEngine())
    try:
        assert evaluate("{% $states.input %}", env(), "x") == {
            "text": "$states.input",
            "bound": ["states"],
        }
    finally:
        jsonata.set_engine(previous)
    assert evaluate("{% 1 + 1 %}", env(), "x") == 2


_TOKENS = st.sampled_from(
    [
        "$states.input",
        ".a",
        "[0]",
        "1",
        "'s'",
        "+",
        "-",
        "&",
        "(",
        ")",
        "$v",
        "=",
        " ",
        "{",
        "}",
        ":",
        ",",
        "$sum(",
        "$parse(",
        "$range(",
        "null",
        "true",
        "/x/",
        "?",
        "~>",
        "$",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TOKENS, min_size=1, max_size=8).map("".join))
def test_closed_error_set(text: str) -> None:
    """Any expression either fails to compile (ValueError, a load-time error) or evaluates to
    JSON or raises QueryEvaluationError: nothing else escapes."""
    try:
        expression = compile_expression("{%" + text + "%}")
    except ValueError:
        return
    with contextlib.suppress(QueryEvaluationError):
        expression.evaluate(env({"a": [1, 2]}, v=3), "Output")


# Issue 15, JSONata sequences: AWS's $range yields a sequence, and a sequence of one value is
# that value (JSONata "Sequences"); $partition yields a plain array of arrays (public cases).
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% $range(0, 2, 3) %}", 0),
        ("{% $range(5, 5, 1) %}", 5),
        ("{% $range(5, 5, -1) %}", 5),
        ("{% $range(4, 0, -7) %}", 4),
        ("{% $type($range(1, 1, 1)) %}", "number"),
        ("{% $count($range(1, 1, 1)) %}", 1),
        ("{% $range(1, 1, 1)[0] %}", 1),
        ("{% [$range(1, 1, 1)] %}", [1]),
        ("{% $range(0, 1, 1) %}", [0, 1]),
        ("{% $partition([0], 2) %}", [[0]]),
        ("{% $states.input.xs[v = 1] %}", {"v": 1}),
        ("{% $states.input.xs[v = 1].v %}", 1),
        ("{% $states.input.xs.v %}", [1, 2]),
        ("{% $filter($states.input.xs, function($x){ $x.v = 2 }) %}", {"v": 2}),
        ("{% $map([7], function($x){ $x }) %}", 7),
    ],
)
def test_one_element_sequences_are_their_value(source: str, expected: JSON) -> None:
    data = {"xs": [{"v": 1}, {"v": 2}]}
    assert evaluate(source, env(data), "Output") == expected


# Issue 15, undefined references: the cause names the field with the way into the template,
# "/key" per object key and "[i]" per array index (AWS's causes: 'Arguments/Input/pushLocation',
# 'Output/v', 'Assign/x'); the EvaluationFailed location is the same name.
@pytest.mark.parametrize(
    ("field", "template", "location"),
    [
        ("Output", "{% $undefinedVariable %}", "Output"),
        ("Output", {"v": "{% $undefinedVariable %}"}, "Output/v"),
        ("Output", {"a": {"b": [1, "{% $undefinedVariable %}"]}}, "Output/a/b[1]"),
        ("Output", ["{% $undefinedVariable %}"], "Output[0]"),
        ("Assign", {"x": "{% $undefinedVariable %}"}, "Assign/x"),
        ("Assign", {"x": {"y": "{% $undefinedVariable.z %}"}}, "Assign/x/y"),
        ("Arguments", {"Input": {"k": "{% $undefinedVariable %}"}}, "Arguments/Input/k"),
        ("Items", ["{% $undefinedVariable %}"], "Items[0]"),
        ("ItemSelector", {"v": "{% $undefinedVariable %}"}, "ItemSelector/v"),
    ],
)
def test_undefined_variable_names_the_field_inside_the_template(
    field: str, template: JSON, location: str
) -> None:
    with pytest.raises(QueryEvaluationError) as raised:
        _evaluate_template(template, env(defined=1), field)
    text = "$undefinedVariable.z" if location == "Assign/x/y" else "$undefinedVariable"
    assert raised.value.cause == (
        f"The JSONata expression '{text}' specified for the field '{location}' "
        "returned nothing (undefined)."
    )
    assert raised.value.location == location


def test_failed_and_wrongly_typed_nested_expressions_name_the_nested_field() -> None:
    with pytest.raises(QueryEvaluationError) as raised:
        _evaluate_template({"a": [{"b": "{% 1 + 'a' %}"}]}, env(), "Output")
    assert raised.value.location == "Output/a[0]/b"
    assert "specified for the field 'Output/a[0]/b' threw an error" in raised.value.cause
    with pytest.raises(QueryEvaluationError) as raised:
        _evaluate_template({"f": "{% function($x){$x} %}"}, env(), "Arguments")
    assert raised.value.location == "Arguments/f"
    assert raised.value.cause.endswith("'Arguments/f' returned an unsupported result type.")


# Issue 15: AWS's $range and $random, argument by argument. Sources: JSONata's sequence rules
# (a sequence of no value is undefined, of one value that value) and what two emulators
# report having measured on Step Functions (non-integers count towards zero; undefined
# arguments give undefined; other values fail JSONata's signature check, T0410).
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{% $exists($range(3, 0, 1)) %}", False),
        ("{% [$range(3, 0, 1)] %}", []),
        ("{% [$range(1, 9, 9)] %}", [1]),
        ("{% $range(1.4, 5.6, 2.2) %}", [1, 3, 5]),
        ("{% $range(-1.5, 2.5, 1) %}", [-1, 0, 1, 2]),
        ("{% $exists($range(1, 10, 0.49)) %}", False),
        ("{% $exists($range(1, 5)) %}", False),
        ("{% $exists($range($nothing, 3, 1)) %}", False),
        ("{% $map([1, 2], function($v){ $range($v, $v + 1, 1) }) %}", [[1, 2], [2, 3]]),
        ("{% ($range := function(){ 42 }; $range()) %}", 42),
        ("{% $random(77) = $random(77) %}", True),
        ("{% $random(1.5) = $random(1.5) and $random(1.5) < 1 %}", True),
        ("{% $random(1.5) != $random(1) %}", True),
        ("{% $random($nothing) < 1 %}", True),
    ],
)
def test_range_and_random_arguments(source: str, expected: JSON) -> None:
    assert evaluate(source, env(), "Output") == expected


@pytest.mark.parametrize(
    ("text", "function", "index"),
    [
        ("$random('seed')", "random", 1),
        ("$random(null)", "random", 1),
        ("$random(true)", "random", 1),
        ("$random([1])", "random", 1),
        ("$random(77, 88)", "random", 2),
        ("$range('a', 5, 1)", "range", 1),
        ("$range(1, null, 1)", "range", 2),
        ("$range(1, 5, null)", "range", 3),
        ("$range(1, 5, 1, 99)", "range", 4),
    ],
)
def test_range_and_random_refuse_what_their_signature_refuses(
    text: str, function: str, index: int
) -> None:
    with pytest.raises(QueryEvaluationError) as raised:
        evaluate("{% " + text + " %}", env(), "Output")
    assert raised.value.cause == (
        f"The JSONata expression '{text}' specified for the field 'Output' threw an error "
        f'during evaluation. T0410: Argument {index} of function "{function}" does not match '
        "function signature"
    )
    assert raised.value.location == "Output"


def test_a_prelude_keeps_syntax_errors_about_the_text_as_written() -> None:
    with pytest.raises(ValueError, match="S0"):
        compile_expression("{% $range( %}")
