"""The States.* intrinsic functions: parsing, AWS-recorded results, argument failures."""

# ruff: noqa: E501 - tables of AWS messages read best one case per line

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import StatesError
from runtime.lang.intrinsics import Intrinsic, IntrinsicSyntaxError, is_intrinsic
from runtime.lang.scope import Entropy, Scope

CONTEXT = {"StateMachine": {"Id": "arn:sm", "Name": "sm-name-x"}, "Execution": {"Name": "e1"}}


def run(text: str, data: Any = None, variables: dict[str, Any] | None = None) -> Any:
    return Intrinsic.compile(text).evaluate(data, Scope(CONTEXT, variables, Entropy(7)))


# (call, input, expected output): many taken from AWS recordings (conformance cases).
RESULTS: list[tuple[str, Any, Any]] = [
    ("States.Array()", None, []),
    ("States.Array($.a, $.b)", {"a": "x", "b": 1.1}, ["x", 1.1]),
    ("States.Array('a', 1, -2.5, true, false, null)", None, ["a", 1, -2.5, True, False, None]),
    ("States.ArrayContains($.a, $.b)", {"a": [], "b": None}, False),
    ("States.ArrayContains($.a, $.b)", {"a": [[1, 2, 3], 2], "b": [1, 2, 3]}, True),
    ("States.ArrayContains($.a, $.b)", {"a": [{"1": 2, "2": []}], "b": {"2": [], "1": 2}}, True),
    ("States.ArrayContains($.a, $.b)", {"a": [True, False], "b": False}, True),
    ("States.ArrayContains($.a, 1)", {"a": [True]}, False),
    ("States.ArrayContains($.a, 1)", {"a": [1.0]}, True),
    ("States.ArrayPartition($.a, 1)", {"a": []}, []),
    ("States.ArrayPartition($.a, 2)", {"a": [0, 1, 2]}, [[0, 1], [2]]),
    ("States.ArrayPartition($.a, 4)", {"a": [0, 1, 2, 3]}, [[0, 1, 2, 3]]),
    ("States.ArrayPartition($.a, 5)", {"a": [0, 1]}, [[0, 1]]),
    ("States.ArrayRange(0, 9, 3)", None, [0, 3, 6, 9]),
    ("States.ArrayRange(0, 10, 3)", None, [0, 3, 6, 9]),
    ("States.ArrayRange(1, 9, 9)", None, [1]),
    ("States.ArrayRange(5, 1, -2)", None, [5, 3, 1]),
    ("States.ArrayRange(5, 1, 2)", None, []),
    ("States.ArrayGetItem($.a, 2)", {"a": [1, 2, 3]}, 3),
    ("States.ArrayLength($.a)", {"a": [1, 2, 3]}, 3),
    ("States.ArrayUnique($.a)", {"a": [1, 2, 2, 3, 3, 4, 1.0, True]}, [1, 2, 3, 4, True]),
    ("States.Base64Encode('Hello World')", None, "SGVsbG8gV29ybGQ="),
    ("States.Base64Decode($.s)", {"s": "RGF0YSB0byBlbmNvZGU="}, "Data to encode"),
    ("States.Base64Decode('YQ')", None, "a"),
    ("States.Base64Decode('/w==')", None, "\ufffd"),
    ("States.Hash($.a, $.b)", {"a": "input data", "b": "SHA-1"}, "aaff4a450a104cd177d28d18d74485e8cae074b7"),
    ("States.Hash($.a, 'SHA-256')", {"a": "input data"}, "b4a697a057313163aee33cd8d40c66e9f0f177e00cac2de32475ffff6169c3e3"),
    ("States.Hash('Hash this string', 'SHA-256')", None, "1cac63f39fd68d8c531f27b807610fb3d50f0fc3f186995767fb6316e7200a3e"),
    ("States.Hash('', 'MD5')", None, "d41d8cd98f00b204e9800998ecf8427e"),
    ("States.JsonMerge($.a, $.b, false)",
     {"a": {"a": {"a1": 1, "a2": 2}, "b": 2, "d": 3}, "b": {"a": {"a3": 1, "a4": 2}, "c": 3, "d": 4}},
     {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3, "d": 4}),
    ("States.JsonMerge($.a, $.b, true)",
     {"a": {"a": {"a1": 1}, "b": 2}, "b": {"a": {"a3": 1}, "c": 3}},
     {"a": {"a1": 1, "a3": 1}, "b": 2, "c": 3}),
    ("States.JsonToString($.v)", {"v": None}, "null"),
    ("States.JsonToString($.v)", {"v": 1.1}, "1.1"),
    ("States.JsonToString($.v)", {"v": "HelloWorld"}, '"HelloWorld"'),
    ("States.JsonToString($.v)", {"v": {"test": "object", "n": [1, True]}}, '{"test":"object","n":[1,true]}'),
    ("States.StringToJson($.v)", {"v": '"HelloWorld"'}, "HelloWorld"),
    ("States.StringToJson($.v)", {"v": '[1, 2, "HelloWorld"]'}, [1, 2, "HelloWorld"]),
    ("States.StringToJson($.v)", {"v": '{"Arg1": 1, "Arg2": []}'}, {"Arg1": 1, "Arg2": []}),
    ("States.MathAdd($.a, $.b)", {"a": -9, "b": 3}, -6),
    ("States.MathAdd($.a, $.b)", {"a": -1.51, "b": 0}, -2),
    ("States.MathAdd($.a, $.b)", {"a": 3.5, "b": 0}, 4),
    ("States.MathAdd($.a, $.b)", {"a": -0.5, "b": 0}, 0),
    ("States.MathAdd($.a, $.b)", {"a": -1.5, "b": 0}, -1),
    ("States.MathAdd($.a, $.b)", {"a": -2.5, "b": 0}, -2),
    ("States.MathAdd($.a, $.b)", {"a": 1.5, "b": 1.51}, 4),
    ("States.MathAdd($.a, $.b)", {"a": 1.49, "b": -1.49}, 0),
    ("States.MathAdd($.Iterations, -1)", {"Iterations": 3}, 2),
    ("States.StringSplit($.a, $.b)", {"a": " ", "b": ","}, [" "]),
    ("States.StringSplit($.a, $.b)", {"a": ", , ,", "b": ","}, [" ", " "]),
    ("States.StringSplit($.a, $.b)", {"a": ",,,,", "b": ","}, []),
    ("States.StringSplit($.a, $.b)", {"a": "This.is+a,test=string", "b": ".+,="},
     ["This", "is", "a", "test", "string"]),
    ("States.StringSplit($.a, $.b)", {"a": "split on T and \nnew line", "b": "T\n"},
     ["split on ", " and ", "new line"]),
    ("States.StringSplit('a,b,c,d,e', ',')", None, ["a", "b", "c", "d", "e"]),
    ("States.Format('Formatting argument {}.', $.v)", {"v": " "}, "Formatting argument  ."),
    ("States.Format('Formatting argument {}.', $.v)", {"v": 1}, "Formatting argument 1."),
    ("States.Format('fst={} and snd={}.', $.a, $.b)", {"a": "", "b": 1.1}, "fst= and snd=1.1."),
    ("States.Format('fst={} and snd={}.', $.a, $.a)", {"a": {"Arg1": 1, "Arg2": []}},
     "fst={Arg1=1, Arg2=[]} and snd={Arg1=1, Arg2=[]}."),
    ("States.Format('{} {} {}', $.a, true, null)", {"a": [1, "x", None]}, "[1, x, null] true null"),
    ("States.Format('a={}', $$.StateMachine)", None, "a={Id=arn:sm, Name=sm-name-x}"),
    ("States.Format('\\{\\} {} \\'q\\' \\\\', 1)", None, "{} 1 'q' \\"),
    ("States.Format($t, $$.Execution.Name)", None, "It's e1!"),
    ("States.Format('Hello {}, welcome to {}!', $name, $.place)", {"place": "P"}, "Hello John, welcome to P!"),
    ("States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), 0)", None, "sm"),
    ("States.ArrayGetItem(States.StringSplit($$.StateMachine.Name, '-'), "
     "States.MathAdd(States.ArrayLength(States.StringSplit($$.StateMachine.Name, '-')), -1))",
     None, "x"),
    ("  States.Array( $.a , 'b,c' , $.l[0,1] )  ", {"a": 1, "l": [5, 6, 7]}, [1, "b,c", [5, 6]]),
    ("States.Array($.l[?(@ > 5)], $.l[?(@ == 'x,y')])", {"l": [5, 6, 7]}, [[6, 7], []]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "data", "expected"), RESULTS)
def test_results(text: str, data: Any, expected: Any) -> None:
    before = copy.deepcopy(data)
    assert run(text, data, {"name": "John", "t": "It's {}!"}) == expected
    assert data == before


def test_uuid_is_deterministic_per_seed() -> None:
    call = Intrinsic.compile("States.UUID()")
    first = call.evaluate(None, Scope(entropy=Entropy(1)))
    assert uuid.UUID(first).version == 4
    assert first == call.evaluate(None, Scope(entropy=Entropy(1)))
    assert first != call.evaluate(None, Scope(entropy=Entropy(2)))


def test_math_random() -> None:
    call = Intrinsic.compile("States.MathRandom($.a, $.b)")
    values = {call.evaluate({"a": 1, "b": 4}, Scope(entropy=Entropy(s))) for s in range(200)}
    assert values == {1, 2, 3}
    assert call.evaluate({"a": 12.5, "b": 44.51}, Scope(entropy=Entropy(3))) in range(13, 45)
    assert call.evaluate({"a": -99999, "b": -9999}, Scope()) in range(-99999, -9999)
    seeded = Intrinsic.compile("States.MathRandom(0, 999, 3)")
    assert seeded.evaluate(None, Scope(entropy=Entropy(1))) == seeded.evaluate(
        None, Scope(entropy=Entropy(2))
    )


FAILURES: list[tuple[str, Any, str]] = [
    ("States.Format($.v)", {"v": 1}, "the first argument must be a string, but was a number: 1"),
    ("States.Format('{} {}', 1)", None, "the format string has 2 placeholder(s) but 1 value(s) were given"),
    ("States.Format('{}', 1, 2)", None, "the format string has 1 placeholder(s) but 2 value(s) were given"),
    ("States.StringToJson($.v)", {"v": "{nope"}, "the argument is not a valid JSON string: {nope"),
    ("States.StringToJson($.v)", {"v": 1}, "the first argument must be a string, but was a number: 1"),
    ("States.ArrayPartition($.v, 0)", {"v": [1]}, "the chunk size must be a positive integer, but was 0"),
    ("States.ArrayPartition($.v, 1.5)", {"v": [1]}, "the second argument must be an integer, but was 1.5"),
    ("States.ArrayPartition($.v, 1)", {"v": {}}, "the first argument must be a array, but was a object: {}"),
    ("States.ArrayRange(1, 5, 0)", None, "the step must not be 0"),
    ("States.ArrayRange(0, 1000, 1)", None, "the range would have 1001 items; the maximum is 1000"),
    ("States.ArrayRange('a', 5, 1)", None, 'the first argument must be a number, but was a string: "a"'),
    ("States.ArrayGetItem($.v, 3)", {"v": [1]}, "the index 3 is out of bounds for an array of 1 items"),
    ("States.ArrayGetItem($.v, -1)", {"v": [1]}, "the index -1 is out of bounds for an array of 1 items"),
    ("States.ArrayLength($.v)", {"v": "abc"}, 'the first argument must be a array, but was a string: "abc"'),
    ("States.ArrayUnique($.v)", {"v": None}, "the first argument must be a array, but was a null: null"),
    ("States.Base64Encode($.v)", {"v": "a" * 10001}, "the first argument must be at most 10000 characters long"),
    ("States.Base64Decode($.v)", {"v": "*"}, "the argument is not a valid base64 string: *"),
    ("States.Hash($.v, 'SHA-3')", {"v": "x"}, "the hashing algorithm must be one of MD5, SHA-1, SHA-256, SHA-384, SHA-512, but was SHA-3"),
    ("States.Hash($.v, 'MD5')", {"v": [1]}, "the first argument must be a string, but was a array: [1]"),
    ("States.JsonMerge($.v, $.v, 1)", {"v": {}}, "the third argument must be a boolean, but was a number: 1"),
    ("States.JsonMerge($.v, 1, false)", {"v": {}}, "the second argument must be a object, but was a number: 1"),
    ("States.MathRandom(5, 5)", None, "the start (5) must be less than the end (5)"),
    ("States.MathAdd($.v, 1)", {"v": True}, "the first argument must be a number, but was a boolean: true"),
    ("States.StringSplit($.v, 1)", {"v": "a"}, "the second argument must be a string, but was a number: 1"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "data", "reason"), FAILURES)
def test_failures(text: str, data: Any, reason: str) -> None:
    name = text.split("(")[0]
    with pytest.raises(StatesError) as info:
        run(text, data)
    assert info.value.error == "States.IntrinsicFailure"
    assert info.value.cause == f"Invalid arguments in {name}: {reason}"


def test_path_argument_not_found() -> None:
    call = Intrinsic.compile("States.Format('{}', $.missing)")
    with pytest.raises(StatesError, match=re.escape("The JSONPath '$.missing' specified for the field 'v.$' could not be found in the input '{\"a\":1}'")) as info:  # fmt: skip
        call.evaluate({"a": 1}, Scope(), field="v.$")
    assert info.value.error == "States.Runtime"
    with pytest.raises(StatesError, match="The JSONPath '\\$undefinedVar' could not be found"):
        Intrinsic.compile("States.Array($undefinedVar)").evaluate({}, Scope())


SYNTAX_ERRORS = [
    ("States.Nope()", "unknown intrinsic function States.Nope"),
    ("States.UUID(1)", "States.UUID takes 0 arguments but 1 was given"),
    ("States.ArrayGetItem($.a)", "States.ArrayGetItem takes 2 arguments but 1 was given"),
    ("States.MathRandom(1)", "States.MathRandom takes 2 to 3 arguments but 1 was given"),
    ("States.Format()", "States.Format takes at least 1 arguments but 0 were given"),
    ("States.StringToJson('{\"text\":\"An \\\"escaped\\\" here\"}')", "illegal escape sequence '\\\\\"'"),
    ("States.Format('He said, \\\"Hello, {}!\\\"', 'x')", "illegal escape sequence"),
    ("States.Format('\\n')", "illegal escape sequence '\\\\n'"),
    ("States.Array('abc)", "unterminated string literal"),
    ("States.Array(", "expected a string, number"),
    ("States.Array(1 2)", "expected ',' or '\\)' after an argument"),
    ("States.Array(1) x", "unexpected text after the closing"),
    ("States.Array(abc)", "expected a string, number"),
    ("States.Array($.a[)", "Invalid JSONPath"),
    ("States.Array(1,)", "expected a string, number"),
    ("States.Array(1e400)", "number out of range: 1e400"),
    ("Foo.Array(1)", "expected States.<Function>\\("),
    ("States.Array(" * 11 + ")" * 11, "nest at most 10 deep"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), SYNTAX_ERRORS)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(IntrinsicSyntaxError, match=message):
        Intrinsic.compile(text)


def test_nesting_up_to_ten_is_allowed() -> None:
    nested = "States.Array(" * 10 + "1" + ")" * 10
    value: Any = run(nested)
    for _ in range(10):
        assert isinstance(value, list)
        value = value[0]
    assert value == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("States.Format('x')", True),
        ("  States.UUID()  ", True),
        ("States.Nope(1)", True),
        ("$.a", False),
        ("States.Format", False),
        ("states.Format('x')", False),
        ("Hello States.UUID()", False),
    ],
)
def test_is_intrinsic(text: str, expected: bool) -> None:
    assert is_intrinsic(text) is expected


def test_intrinsic_is_immutable() -> None:
    call = Intrinsic.compile("States.UUID()")
    assert call.name == "States.UUID"
    assert call.text == "States.UUID()"
    with pytest.raises(AttributeError):
        call.text = "x"
    with pytest.raises(TypeError):
        Intrinsic()


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=5), children, max_size=5),
    max_leaves=15,
)  # fmt: skip
CALLS = [
    "States.Format($.a, $.b, $.c)",
    "States.Format('{} and {}', $.a, $.b)",
    "States.StringToJson($.a)",
    "States.JsonToString($.a)",
    "States.Array($.a, $.b)",
    "States.ArrayPartition($.a, $.b)",
    "States.ArrayContains($.a, $.b)",
    "States.ArrayRange($.a, $.b, $.c)",
    "States.ArrayGetItem($.a, $.b)",
    "States.ArrayLength($.a)",
    "States.ArrayUnique($.a)",
    "States.Base64Encode($.a)",
    "States.Base64Decode($.a)",
    "States.Hash($.a, $.b)",
    "States.JsonMerge($.a, $.b, $.c)",
    "States.MathRandom($.a, $.b)",
    "States.MathRandom($.a, $.b, $.c)",
    "States.MathAdd($.a, $.b)",
    "States.StringSplit($.a, $.b)",
    "States.UUID()",
    "States.ArrayGetItem(States.StringSplit($.a, $.b), States.ArrayLength($.c))",
]


@given(
    call=st.sampled_from(CALLS),
    data=st.one_of(JSON_VALUES, st.fixed_dictionaries({"a": JSON_VALUES, "b": JSON_VALUES, "c": JSON_VALUES})),
)  # fmt: skip
def test_only_states_errors_escape(call: str, data: Any) -> None:
    before = copy.deepcopy(data)
    try:
        run(call, data)
    except StatesError as exc:
        error: str | None = exc.error
    else:
        error = None
    assert error in {None, "States.IntrinsicFailure", "States.Runtime"}
    assert data == before


CALL_PIECES = st.sampled_from(
    [*"$@.[]()*?'\",:-0123456789abc {}\\", "States.Array(", "States.Format(", "true", "null"]
)


@given(tail=st.lists(CALL_PIECES, max_size=20).map("".join))
def test_compile_raises_only_intrinsic_syntax_error(tail: str) -> None:
    try:
        call = Intrinsic.compile("States.Array(" + tail)
    except IntrinsicSyntaxError:
        return
    try:
        call.evaluate({"a": [1]}, Scope())
    except StatesError as exc:
        error: str | None = exc.error
    else:
        error = None
    assert error in {None, "States.IntrinsicFailure", "States.Runtime"}


# Issue 15: States.StringToJson takes every JSON text: any value (numbers, literals, strings
# with their escapes, containers), JSON whitespace around and between tokens; a text with no
# token at all is null; characters JSON does not count as whitespace are refused.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        (" ", None),
        ("\t\r\n ", None),
        ("null", None),
        ("true", True),
        ("false", False),
        ("-0", 0),
        ("1", 1),
        ("1.1", 1.1),
        ("-2.5e-3", -0.0025),
        ("1E2", 100.0),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        (" \n 7 \t", 7),
        ('"HelloWorld"', "HelloWorld"),
        ('"a\\"b\\\\c\\/d\\n\\u00e9\\ud83c\\udd97"', 'a"b\\c/d\né\U0001f197'),
        ('"{\\"nested\\": \\"esc\\\\\\"aped\\"}"', '{"nested": "esc\\"aped"}'),
        ('{ "a" :\n [ 1 ,\t{"b" : null} ] }', {"a": [1, {"b": None}]}),
        ("[]", []),
        ("{}", {}),
    ],
)
def test_string_to_json_reads_every_json_text(text: str, expected: Any) -> None:
    assert run("States.StringToJson($.v)", {"v": text}) == expected


@pytest.mark.parametrize("text", ["\x0b1", "\u00a01", "1\u2028", "\x0c", "01", "[1,]", "NaN"])
def test_string_to_json_refuses_what_json_does_not_allow(text: str) -> None:
    with pytest.raises(StatesError, match="the argument is not a valid JSON string"):
        run("States.StringToJson($.v)", {"v": text})
