"""Hostile definitions (issue 11): every one is refused with ``InvalidDefinition``, never an
internal error (``RecursionError``, ``AttributeError``, ``UnicodeEncodeError``, ``ValueError``).

Each case was reproduced against the loader before the limits were added (it escaped as the
exception named in its test); the messages follow AWS's ``SCHEMA_VALIDATION_FAILED: <rule> at
<JSON Pointer>`` form.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from runtime.definition import Map, Parallel, Pass, load_definition
from runtime.errors import InvalidDefinition

SCHEMA = "SCHEMA_VALIDATION_FAILED"


def leaf() -> dict[str, Any]:
    return {"StartAt": "L", "States": {"L": {"Type": "Pass", "End": True}}}


def nested_states(kind: str, levels: int) -> dict[str, Any]:
    """``levels`` Parallel (or Map) states, each the only state of its parent's branch."""
    inner = leaf()
    for index in range(levels):
        state: dict[str, Any] = (
            {"Type": "Parallel", "Branches": [inner], "End": True}
            if kind == "Parallel"
            else {"Type": "Map", "ItemProcessor": inner, "End": True}
        )
        inner = {"StartAt": f"S{index}", "States": {f"S{index}": state}}
    return inner


def chain(levels: int, bottom: Any) -> Any:
    value = bottom
    for _ in range(levels):
        value = {"a": value}
    return value


def pass_with(field: str, value: Any) -> dict[str, Any]:
    return {"StartAt": "P", "States": {"P": {"Type": "Pass", field: value, "End": True}}}


def choice_with(rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "StartAt": "C",
        "States": {
            "C": {"Type": "Choice", "Choices": [{**rule, "Next": "E"}]},
            "E": {"Type": "Succeed"},
        },
    }


def not_chain(levels: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"Variable": "$.x", "IsPresent": True}
    for _ in range(levels):
        rule = {"Not": rule}
    return rule


def and_chain(levels: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"Variable": "$.x", "IsPresent": True}
    for _ in range(levels):
        rule = {"And": [rule]}
    return rule


DEEP_DEFINITIONS = {
    "Parallel nested 170 deep": nested_states("Parallel", 170),
    "Parallel nested 1,000 deep": nested_states("Parallel", 1000),
    "Map nested 200 deep": nested_states("Map", 200),
    "Parameters nested 1,000 deep": pass_with("Parameters", chain(1000, {"x.$": "$.y"})),
    "Result nested 1,000 deep": pass_with("Result", chain(1000, 1)),
    "Assign nested 1,000 deep": pass_with("Assign", {"v": chain(1000, 1)}),
    "Choice Not nested 1,000 deep": choice_with(not_chain(1000)),
    "Choice And nested 600 deep": choice_with(and_chain(600)),
}


@pytest.mark.parametrize("name", list(DEEP_DEFINITIONS))
def test_deep_definition_is_invalid_not_a_recursion_error(name: str) -> None:
    definition = DEEP_DEFINITIONS[name]
    with pytest.raises(
        InvalidDefinition, match="nested more than 128 levels deep at /States/"
    ) as info:
        load_definition(definition)
    assert info.value.code == SCHEMA


@pytest.mark.parametrize("name", ["Parallel nested 1,000 deep", "Result nested 1,000 deep"])
def test_deep_definition_text_is_invalid_before_decoding(name: str) -> None:
    text = _nested_text(name)
    with pytest.raises(
        InvalidDefinition, match=r"The definition is nested \d+ levels deep, more than 128 at /'"
    ):
        load_definition(text)


def _nested_text(name: str) -> str:
    if name.startswith("Parallel"):
        text = json.dumps(leaf())
        for index in range(1000):
            text = (
                f'{{"StartAt": "S{index}", "States": {{"S{index}": '
                f'{{"Type": "Parallel", "Branches": [{text}], "End": true}}}}}}'
            )
        return text
    body = "{" + '"a": {' * 1000 + '"b": 1' + "}" * 1001
    return (
        '{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true, "Result": ' + body + "}}}"
    )


def test_text_nested_100000_deep_is_invalid() -> None:
    with pytest.raises(InvalidDefinition, match="nested 100000 levels deep"):
        load_definition("[" * 100_000 + "]" * 100_000)


def test_brackets_inside_strings_do_not_count() -> None:
    comment = "[{" * 5000 + '\\"' + "]}" * 10
    text = (
        '{"StartAt": "P", "Comment": "'
        + comment
        + '", "States": {"P": {"Type": "Pass", "End": true}}}'
    )
    assert load_definition(text).comment == comment.replace('\\"', '"')


@contextmanager
def stack_headroom(frames: int) -> Iterator[None]:
    """Run with only ``frames`` Python frames left before the recursion limit."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


DEEPEST_ACCEPTED = {
    "Parallel nested 31 deep": nested_states("Parallel", 31),
    "Map nested 41 deep": nested_states("Map", 41),
    "Parameters nested 124 deep": pass_with("Parameters", chain(124, {"x.$": "$.y"})),
    "Assign nested 124 deep": pass_with("Assign", chain(124, {"x.$": "$.y"})),
    "Choice Not nested 123 deep": choice_with(not_chain(123)),
    "Choice And nested 61 deep": choice_with(and_chain(61)),
}


@pytest.mark.parametrize("name", list(DEEPEST_ACCEPTED))
def test_deepest_accepted_definitions_load_with_500_frames(name: str) -> None:
    """The limit keeps every recursive pass shallow: the deepest definitions accepted load with
    500 frames to spare (the measured need is under 400), from text and from a mapping, so a
    definition accepted at a shallow call depth also loads from a deep one."""
    definition = DEEPEST_ACCEPTED[name]
    text = json.dumps(definition)
    with stack_headroom(500):
        from_text = load_definition(text)
        from_mapping = load_definition(definition)
    assert from_text.start_at == from_mapping.start_at == definition["StartAt"]


def test_deepest_parallel_is_accepted_one_more_level_is_not() -> None:
    machine = load_definition(nested_states("Parallel", 31))
    assert isinstance(machine.states["S30"], Parallel)
    with pytest.raises(InvalidDefinition, match="nested more than 128 levels deep"):
        load_definition(nested_states("Parallel", 32))
    assert isinstance(load_definition(nested_states("Map", 41)).states["S40"], Map)


def test_non_string_key_in_states_is_invalid_not_an_attribute_error() -> None:
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}, 3: {}}}
    with pytest.raises(
        InvalidDefinition,
        match=r"SCHEMA_VALIDATION_FAILED: The definition has an object key that is not a "
        r"string: 3 \(int\) at /States'",
    ):
        load_definition(definition)


@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        ({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True, 1: 2}}}, "/States/P"),
        (pass_with("Parameters", {"a": [{(1, 2): "x"}]}), "/States/P/Parameters/a[0]"),
        ({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}, None: 1}, "/"),
    ],
)
def test_non_string_keys_name_their_object(definition: dict[Any, Any], pointer: str) -> None:
    with pytest.raises(InvalidDefinition, match="object key that is not a string") as info:
        load_definition(definition)
    assert info.value.pointer == pointer


@pytest.mark.parametrize("form", ["mapping", "text"])
@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        (pass_with("Result", "\ud800"), "/States/P/Result"),
        (pass_with("Result", {"k\udfff": 1}), "/States/P/Result/k\\udfff"),
        ({"StartAt": "\udc00", "States": {"\udc00": {"Type": "Pass", "End": True}}}, "/StartAt"),
        (pass_with("Parameters", {"x.$": "$.a\ud800"}), "/States/P/Parameters/x.$"),
    ],
)
def test_lone_surrogates_are_invalid(definition: dict[str, Any], pointer: str, form: str) -> None:
    source = definition if form == "mapping" else json.dumps(definition)  # \\uXXXX escapes
    with pytest.raises(InvalidDefinition, match="lone surrogate") as info:
        load_definition(source)
    assert info.value.pointer == pointer
    info.value.message.encode("utf-8")  # the message itself is printable


def test_lone_surrogate_character_in_text_is_invalid() -> None:
    text = '{"StartAt": "P", "States": {"P": {"Type": "Pass", "Comment": "\ud800", "End": true}}}'
    with pytest.raises(InvalidDefinition, match="lone surrogate"):
        load_definition(text)


def test_not_finite_numbers_are_invalid() -> None:
    with pytest.raises(InvalidDefinition, match=r"not finite \(nan\) at /States/P/Result'"):
        load_definition(pass_with("Result", float("nan")))
    with pytest.raises(InvalidDefinition, match=r"not finite \(inf\) at /States/P/Result"):
        load_definition('{"StartAt":"P","States":{"P":{"Type":"Pass","Result":1e999,"End":true}}}')


def test_huge_integers_are_invalid_not_a_value_error() -> None:
    text = '{"StartAt":"P","States":{"P":{"Type":"Pass","Result":' + "9" * 5000 + ',"End":true}}}'
    with pytest.raises(InvalidDefinition, match="integer of 5000 digits"):
        load_definition(text)
    with pytest.raises(InvalidDefinition, match=r"integer of \d+ bits.* at /States/P/Result"):
        load_definition(pass_with("Result", 10**400))
    big = load_definition(json.dumps(pass_with("Result", 2**64))).states["P"]
    assert isinstance(big, Pass)
    assert big.result == 2**64  # big integers a double can hold are kept exactly


def test_definition_over_1_mib_is_invalid() -> None:
    comment = "x" * (1024 * 1024)
    definition = {
        "StartAt": "P",
        "Comment": comment,
        "States": {"P": {"Type": "Pass", "End": True}},
    }
    for source in (definition, json.dumps(definition), json.dumps(definition).encode()):
        with pytest.raises(InvalidDefinition, match=r"over the limit of 1048576 bytes at /'"):
            load_definition(source)
    definition["Comment"] = "x" * (1024 * 1024 - 200)
    assert load_definition(json.dumps(definition)).comment == definition["Comment"]


def test_values_that_are_not_json_are_invalid() -> None:
    with pytest.raises(InvalidDefinition, match="type set, which is not JSON at /States/P/Result"):
        load_definition(pass_with("Result", {1, 2}))
