"""JSONPath evaluation (Jayway semantics as AWS uses them) and ResultPath application."""

# ruff: noqa: E501 - tables of AWS messages read best one case per line

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import StatesError
from runtime.lang.jsontext import compact_json, java_string
from runtime.lang.paths import (
    Path,
    PathNotFound,
    PathSyntaxError,
    apply_result_path,
)
from runtime.lang.scope import Scope

DOC: dict[str, Any] = {
    "items": [{"item_key": 0, "v": 1}, {"item_key": 1}, {"item_key": 2, "v": 3}],
    "users": [{"year": 1997, "status": 0}, {"year": 1998, "status": 1, "tag": "x"}],
    "a": {"b": None, "c": "s"},
    "delivery-partner": "UQS",
    "odd key": 7,
    "store": {"book": [{"price": 8, "t": "A"}, {"price": 12, "t": "B"}], "bike": {"price": 20}},
}

EVALUATE = [
    ("$", DOC),
    ("$.items[0]", {"item_key": 0, "v": 1}),
    ("$.items[-1]", {"item_key": 2, "v": 3}),
    ("$['odd key']", 7),
    ('$["odd key"]', 7),
    ("$.delivery-partner", "UQS"),
    ("$.a.b", None),
    ("$.items[*].v", [1, 3]),
    ("$.items[*].item_key", [0, 1, 2]),
    ("$.items[0,2].item_key", [0, 2]),
    ("$.items[0:2].item_key", [0, 1]),
    ("$.items[:1].item_key", [0]),
    ("$.items[1:].item_key", [1, 2]),
    ("$.items[-2:].item_key", [1, 2]),
    ("$.items[5:9]", []),
    ("$..price", [8, 12, 20]),
    ("$.store..price", [8, 12, 20]),
    ("$..book[0].t", ["A"]),
    ("$.users[?(@.status == 0)]", [{"year": 1997, "status": 0}]),
    ("$.users[?(@.status == '1')].year", [1998]),
    ("$.users[?(@.year > 1997)].year", [1998]),
    ("$.users[?(@.year >= 1997 && @.status < 1)].year", [1997]),
    ("$.users[?(@.year == 1 || @.tag)].year", [1998]),
    ("$.users[?(!(@.tag))].year", [1997]),
    ("$.users[?(@.tag == 'x')].year", [1998]),
    ('$.users[?(@.tag == "x")].year', [1998]),
    ("$.users[?(@.tag =~ /X/i)].year", [1998]),
    ("$.users[?(@.year in [1997, 2000])].year", [1997]),
    ("$.users[?(@.year nin [1997])].year", [1998]),
    ("$.users[?(@.status != 0)].year", [1998]),
    ("$.store.book[?(@.price < $.store.bike.price)].t", ["A", "B"]),
    ("$.store.book[?(@.price > 10)]", [{"price": 12, "t": "B"}]),
    ("$.items.length()", 3),
    ("$.a.c.length()", 1),
    ("$['a','delivery-partner']", {"a": {"b": None, "c": "s"}, "delivery-partner": "UQS"}),
    ("$['a','missing']", {"a": {"b": None, "c": "s"}}),
    ("$.a.*", [None, "s"]),
    ("$.a[*]", [None, "s"]),
    ("$.missing[*]", []),
    ("$.missing..x", []),
    ("$.a.c[*]", []),
]


@pytest.mark.parametrize(("text", "expected"), EVALUATE)
def test_evaluate(text: str, expected: Any) -> None:
    before = copy.deepcopy(DOC)
    assert Path.compile(text).evaluate(DOC) == expected
    assert before == DOC


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("$[*]", {}),
        ("$.item.items[:1]", {}),
        ("$.item.items[1:]", {}),
        ("$.item.items[1:5].itemValue", {}),
        ("$.items[*].itemValue", {}),
        ("$.items[:1].itemValue", {}),
    ],
)
def test_indefinite_paths_on_missing_input_give_empty_list(text: str, data: Any) -> None:
    """Recorded: test_json_path_array_wildcard_or_slice_with_no_input_* all output []."""
    assert Path.compile(text).evaluate(data) == []


NOT_FOUND = [
    ("$.no.such.result.path", {}, "Missing property in path $['no']"),
    ("$.x", {}, "No results for path: $['x']"),
    ("$.items[9]", DOC, "No results for path: $['items'][9]"),
    ("$.a.b.c", DOC, "Expected to find an object with property ['c'] in path $['a']['b'] but found 'null'"),
    ("$.items.x", DOC, "Expected to find an object with property ['x'] in path $['items'] but found 'java.util.ArrayList'"),
    ("$.a[0]", DOC, "Filter: [0] can only be applied to arrays. Current context is: {b=null, c=s}"),
    ("$.a.b[0]", DOC, "The path $['a']['b'] is null"),
    ("$.x", "text", "Expected to find an object with property ['x'] in path $ but found 'java.lang.String'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "data", "detail"), NOT_FOUND)
def test_definite_path_not_found(text: str, data: Any, detail: str) -> None:
    with pytest.raises(PathNotFound) as info:
        Path.compile(text).evaluate(data)
    assert info.value.path == text
    assert info.value.detail.startswith(detail)
    assert str(info.value).startswith(f"Invalid path '{text}' : {detail}")


def test_context_and_variable_paths() -> None:
    scope = Scope(context={"Execution": {"Input": {"k": 1}}}, variables={"v": {"a": [5, 6]}})
    context = Path.compile("$$.Execution.Input.k")
    assert context.is_context
    assert context.variable is None
    assert context.evaluate({"ignored": True}, scope) == 1
    assert Path.compile("$$").evaluate(None, scope) == scope.context
    variable = Path.compile("$v.a[1]")
    assert variable.variable == "v"
    assert not variable.is_context
    assert variable.is_reference
    assert variable.evaluate(None, scope) == 6
    assert Path.compile("$v").evaluate(None, scope) == {"a": [5, 6]}
    with pytest.raises(PathNotFound, match=r"The variable '\$w' is not defined"):
        Path.compile("$w.a").evaluate(None, scope)


@pytest.mark.parametrize(
    ("text", "reference", "definite"),
    [
        ("$", True, True),
        ("$.a.b[0]['c d']", True, True),
        ("$$.Map.Item.Value", True, True),
        ("$.a[*]", False, False),
        ("$..a", False, False),
        ("$.a[0:1]", False, False),
        ("$.a[0,1]", False, False),
        ("$.a[?(@.x)]", False, False),
        ("$.a.length()", False, True),
        ("$['a','b']", False, True),
    ],
)
def test_classification(text: str, reference: bool, definite: bool) -> None:
    path = Path.compile(text)
    assert path.text == text
    assert path.is_reference is reference
    assert path.is_definite is definite


@pytest.mark.parametrize(
    "text",
    ["", "a", "$.", "$a b", "$.a b", "$[", "$['a'", "$[a]", "$.a[1:2:3]", "$..", "$[?(@.a ==)]",
     "$.a.nope()", "$[?(@.a =~ 'x')]", "$.a)"],
)  # fmt: skip
def test_syntax_errors(text: str) -> None:
    with pytest.raises(PathSyntaxError, match="Invalid JSONPath"):
        Path.compile(text)


def test_path_is_immutable_and_hashable() -> None:
    path = Path.compile("$.a")
    with pytest.raises(AttributeError):
        path.text = "$.b"
    assert path == Path.compile("$.a")
    assert len({path, Path.compile("$.a")}) == 1
    with pytest.raises(TypeError):
        Path()


RESULT_PATH = [
    (None, {"a": 1}, 9, {"a": 1}),
    ("$", {"a": 1}, 9, 9),
    ("$.r", {"a": 1}, 9, {"a": 1, "r": 9}),
    ("$.a", {"a": 1}, {"x": 1}, {"a": {"x": 1}}),
    ("$.n.m.o", {"a": 1}, 9, {"a": 1, "n": {"m": {"o": 9}}}),
    ("$.n.m", {"n": {"k": 0}}, 9, {"n": {"k": 0, "m": 9}}),
    ("$['odd key']", {}, 9, {"odd key": 9}),
    ("$.l[1]", {"l": [1, 2]}, 9, {"l": [1, 9]}),
    ("$.l[-1].x", {"l": [{}, {}]}, 9, {"l": [{}, {"x": 9}]}),
]


@pytest.mark.parametrize(("text", "data", "result", "expected"), RESULT_PATH)
def test_apply_result_path(text: str | None, data: Any, result: Any, expected: Any) -> None:
    before = copy.deepcopy(data)
    path = None if text is None else Path.compile(text)
    assert apply_result_path(path, data, result) == expected
    assert data == before


@pytest.mark.parametrize(
    ("text", "data", "shown"),
    [
        ("$.x", "text", '"text"'),
        ("$.x", [1], "[1]"),
        ("$.a.b", {"a": 1}, '{"a":1}'),
        ("$.a.b", {"a": [1]}, '{"a":[1]}'),
        ("$.l[2]", {"l": [1]}, '{"l":[1]}'),
        ("$.l[0]", {"l": {}}, '{"l":{}}'),
    ],
)
def test_result_path_match_failure(text: str, data: Any, shown: str) -> None:
    with pytest.raises(StatesError) as info:
        apply_result_path(Path.compile(text), data, 1)
    assert info.value.error == "States.ResultPathMatchFailure"
    assert info.value.cause == f"Unable to apply ReferencePath {text} to input {shown}"


@pytest.mark.parametrize("text", ["$$.a", "$.a[*]", "$v.a"])
def test_result_path_must_be_an_input_reference_path(text: str) -> None:
    with pytest.raises(ValueError, match="ResultPath must be a reference path"):
        apply_result_path(Path.compile(text), {}, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (1, "1"),
        (1.1, "1.1"),
        (1.0, "1.0"),
        (-0.5, "-0.5"),
        (1e20, "1.0E20"),
        (1.5e-5, "1.5E-5"),
        (12345678.0, "1.2345678E7"),
        (0.001, "0.001"),
        ("s", "s"),
        ([1, "a", None], "[1, a, null]"),
        ({"Arg1": 1, "Arg2": []}, "{Arg1=1, Arg2=[]}"),
    ],
)
def test_java_string(value: Any, expected: str) -> None:
    assert java_string(value) == expected


def test_compact_json_keeps_order_and_unicode() -> None:
    assert compact_json({"b": 1, "a": ["é", 1.5]}) == '{"b":1,"a":["é",1.5]}'


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
PATHS = [text for text, _ in EVALUATE] + [text for text, _, _ in NOT_FOUND]


@given(data=JSON_VALUES, index=st.integers(0, len(PATHS) - 1))
def test_evaluate_raises_only_path_not_found(data: Any, index: int) -> None:
    path = Path.compile(PATHS[index])
    try:
        result = path.evaluate(data)
    except PathNotFound:
        assert path.is_definite
    else:
        assert path.is_definite or isinstance(result, list)


PATH_PIECES = st.sampled_from(
    [*"$@.[]()*?'\",:-0123456789abc =!<>&|/\\~", "..", "[?(", ")]", "length()", "[*]", "['a']"]
)


@given(tail=st.lists(PATH_PIECES, max_size=20).map("".join))
def test_compile_raises_only_path_syntax_error(tail: str) -> None:
    try:
        path = Path.compile("$" + tail)
    except PathSyntaxError:
        return
    try:
        path.evaluate({"a": [1, {"b": 2}], "c": "x"}, Scope(variables={"abc": [1]}))
    except PathNotFound:
        assert path.is_definite or path.variable is not None


# Issue 15: quoted names in bracket notation are read as Jayway reads them (the text up to the
# first unescaped quote of the opening kind, then Jayway's ``unescape``).
ESCAPED_KEYS: dict[str, Any] = {
    "a'b": 1,
    'a"b': 2,
    "a.b": 3,
    "a\\b": 4,
    "a\nb": 5,
    "a\tb\rc": 6,
    "\U0001f197": 7,
    "é": 8,
    "a]b": 9,
    "a,b": 10,
    'Test\\""Name"': 11,
    "a\fb\bc": 12,
    "q": 13,
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$['a\\'b']", 1),
        ('$["a\\"b"]', 2),
        ("$['a\"b']", 2),
        ('$["a\'b"]', 1),
        ("$['a.b']", 3),
        ('$["a.b"]', 3),
        ("$['a\\\\b']", 4),
        ("$['a\\nb']", 5),
        ('$["a\\tb\\rc"]', 6),
        ("$['a\\fb\\bc']", 12),
        ("$['\\ud83c\\udd97']", 7),
        ("$['\\u00e9']", 8),
        ("$['\\u00E9']", 8),
        ("$['a]b']", 9),
        ("$['a,b']", 10),
        ("$['\\q']", 13),
        ('$[\'Test\\\\\\""Name"\']', 11),
        ("$['a\\'b','a.b']", {"a'b": 1, "a.b": 3}),
    ],
)
def test_bracket_names_with_escapes(text: str, expected: Any) -> None:
    assert Path.compile(text).evaluate(ESCAPED_KEYS) == expected


def test_filter_literals_with_escapes() -> None:
    data = [{"k": "a\nb"}, {"k": "a'b"}, {"k": "anb"}]
    assert Path.compile("$[?(@.k == 'a\\nb')]").evaluate(data) == [{"k": "a\nb"}]
    assert Path.compile("$[?(@.k == 'a\\'b')]").evaluate(data) == [{"k": "a'b"}]


@pytest.mark.parametrize("text", ["$['\\uZZZZ']", "$['a\\']", "$['a'b']"])
def test_bad_escapes_are_syntax_errors(text: str) -> None:
    with pytest.raises(PathSyntaxError):
        Path.compile(text)


@pytest.mark.parametrize(
    ("text", "data", "detail"),
    [
        ('$["x"]', {}, 'No results for path: $["x"]'),
        ('$["x"].y', {"x": {}}, "No results for path: $[\"x\"]['y']"),
        ('$["a"]["b"].c', {"a": {}}, 'Missing property in path $["a"]["b"]'),
        ("$['a\\'b'].c", {}, "Missing property in path $['a'b']"),
        ('$["a\\"b"]', {}, 'No results for path: $["a"b"]'),
        ("$.a", {}, "No results for path: $['a']"),
    ],
)
def test_fragments_keep_the_quote_of_the_path_and_escape_nothing(
    text: str, data: Any, detail: str
) -> None:
    """Jayway writes a property fragment between the quotes the path used (``'`` for dot
    notation) and does not escape the name (``PropertyPathToken``, ``Utils.join``)."""
    with pytest.raises(PathNotFound) as info:
        Path.compile(text).evaluate(data)
    assert str(info.value) == f"Invalid path '{text}' : {detail}"
