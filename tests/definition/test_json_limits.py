"""``runtime.definition.limits``: JSON values and text checked without recursion (issue 11)."""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

import pytest

from runtime.definition import limits
from runtime.definition.limits import JSONLimitError, check_json, check_json_text, check_payload


def chain(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def rule_of(value: Any, **options: Any) -> tuple[str, str]:
    with pytest.raises(JSONLimitError) as info:
        check_json(value, what="The execution input", **options)
    return info.value.rule, info.value.pointer


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        2**64,
        limits.MAX_INTEGER,
        1.5e308,
        "text é 😀",
        [],
        {},
        (1, [2]),
        OrderedDict(a=[1, {"b": None}]),
        chain(256),
    ],
)
def test_json_values_within_the_limits_pass(value: Any) -> None:
    check_json(value)


@pytest.mark.parametrize(
    ("value", "rule", "pointer"),
    [
        (chain(257), "depth", "/a" * 256),
        ([[[[]]]], "depth", "/[0][0][0]"),
        ({"a": [1, {2: "x"}]}, "key", "/a[1]"),
        ({None: 1}, "key", "/"),
        ({"ok": "\ud800"}, "surrogate", "/ok"),
        ({"k\udc00": 1}, "surrogate", "/k\\udc00"),
        (["é\udfff"], "surrogate", "/[0]"),
        ({"n": limits.MAX_INTEGER + 1}, "number", "/n"),
        ([-(10**400)], "number", "/[0]"),
        ({"x": float("nan")}, "number", "/x"),
        (float("-inf"), "number", "/"),
        ({"s": {1, 2}}, "type", "/s"),
        ([b"bytes"], "type", "/[0]"),
        ({"a~b/c": [object()]}, "type", "/a~0b~1c[0]"),
    ],
)
def test_each_rule_names_the_path(value: Any, rule: str, pointer: str) -> None:
    options = {"max_depth": 3} if value == [[[[]]]] else {}
    assert rule_of(value, **options) == (rule, pointer)


def test_message_reads_what_detail_and_pointer() -> None:
    with pytest.raises(JSONLimitError) as info:
        check_json({"a": {"b": float("inf")}}, what="The execution input")
    assert (
        str(info.value) == "The execution input contains a number that is not finite (inf) at /a/b"
    )
    assert info.value.path == ("a", "b")
    assert isinstance(info.value, ValueError)


def test_depth_is_counted_from_the_outermost_container() -> None:
    check_json([], max_depth=1)
    check_json(1, max_depth=0)
    assert rule_of([], max_depth=0) == ("depth", "/")
    assert rule_of({"a": []}, max_depth=1) == ("depth", "/a")


def test_a_million_levels_are_checked_without_recursion() -> None:
    value: Any = []
    for _ in range(1_000_000):
        value = [value]
    assert rule_of(value) == ("depth", "/" + "[0]" * 256)


def test_integer_bound_is_configurable() -> None:
    check_json(2**53, max_integer=2**53)
    assert rule_of(2**53 + 1, max_integer=2**53)[0] == "number"


def test_payload_size_is_utf8_bytes_of_compact_json() -> None:
    assert limits.encoded_size({"a": "é"}) == len('{"a":"é"}'.encode())
    assert check_payload(["x" * 12], max_bytes=16) == 16
    with pytest.raises(JSONLimitError, match="is 17 bytes of JSON, over the limit of 16") as info:
        check_payload(["x" * 13], what="The result", max_bytes=16)
    assert info.value.rule == "size"
    assert limits.MAX_PAYLOAD_BYTES == 262_144
    assert limits.MAX_DEFINITION_BYTES == 1_048_576


def test_encoded_size_of_an_unchecked_value_raises_a_limit_error() -> None:
    with pytest.raises(JSONLimitError) as info:
        limits.encoded_size(["\ud800"])
    assert info.value.rule == "surrogate"


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("[" * 257 + "]" * 257, 257),
        ('{"a": ' * 300 + "1" + "}" * 300, 300),
        ("[" * 100_000, 100_000),
    ],
)
def test_text_too_deep(text: str, depth: int) -> None:
    for source in (text, text.encode()):
        with pytest.raises(JSONLimitError, match=f"is nested {depth} levels deep, more than 256"):
            check_json_text(source)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(["[" * 1000, {"k{{{{": "]]"}]),
        json.dumps({"s": '\\"[[[[' * 300}),
        '"\\\\' + "[" * 300 + '"',
        '["unterminated \\" [[[[[',
        "",
        "[]" * 100_000,
    ],
)
def test_brackets_in_strings_and_flat_text_pass(text: str) -> None:
    check_json_text(text)


def test_text_size_encoding_and_surrogates() -> None:
    with pytest.raises(JSONLimitError, match="is 12 bytes, over the limit of 11"):
        check_json_text('"' + "é" * 5 + '"', max_bytes=11)
    check_json_text('"' + "é" * 5 + '"', max_bytes=12)
    with pytest.raises(JSONLimitError, match=r"not valid UTF-8 \(byte 1\)"):
        check_json_text(b'"\xff"')
    with pytest.raises(JSONLimitError, match="lone surrogate"):
        check_json_text('"\ud800"')


def test_pointer_escapes_surrogates_and_rfc6901_characters() -> None:
    assert limits.format_path(()) == "/"
    assert limits.format_path(("States", "a/b~c", "Branches", 0)) == "/States/a~1b~0c/Branches[0]"
    assert limits.format_path((2, "x\ud800")) == "/[2]/x\\ud800"
