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

from runtime.lang import jsonata
from runtime.lang.jsonata import (
    Env,
    QueryEvaluationError,
    compile_expression,
    compile_template,
    evaluate,
    evaluate_template,
    is_expression,
)
from runtime.lang.scope import Entropy

JSON = Any


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
        ("{% $range(1, 2, 0) %}", "The step of $range must not be 0."),
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
    assert evaluate_template(template, env({"x": "X"}, v=21), "Arguments") == {
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
