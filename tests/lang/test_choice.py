"""Choice rules: one table per operator family, compile errors, and the AWS-recorded cases.

The recorded cases (``cases/*.json`` whose machine is a JSONPath Choice state leading to Pass
states) are replayed through :meth:`ChoiceRule.evaluate` alone: the first matching rule's
``Next`` (else ``Default``) names the Pass state whose ``Result`` AWS returned.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from runtime.errors import InvalidDefinition, StatesError
from runtime.lang.choice import ChoiceRule, parse_timestamp, timestamp_instant
from runtime.lang.jsonata_engine import QueryEvaluationError
from runtime.lang.jsonata_functions import Env
from runtime.lang.scope import Scope
from tests.conformance.harness import CONFORMANCE
from tests.lang.given import Given

SCOPE = Scope(context={"Execution": {"Input": {"n": 0}}}, variables={"limit": 10, "name": "x"})


def rule(op: str, operand: Any, variable: str = "$.v") -> ChoiceRule:
    return ChoiceRule.compile(
        {"Variable": variable, op: operand, "Next": "N"}, "/States/C/Choices/0"
    )


def check(op: str, operand: Any, value: Any, expected: bool) -> None:
    compiled = rule(op, operand)
    assert compiled.matches(Given({"v": value, "other": operand}, SCOPE)) is expected
    if op.startswith(("String", "Numeric", "Boolean", "Timestamp")) and op != "StringMatches":
        by_path = rule(f"{op}Path", "$.other")
        assert by_path.matches(Given({"v": value, "other": operand}, SCOPE)) is expected


NUMERIC = [
    ("NumericEquals", 1, 1, True),
    ("NumericEquals", 1, 1.0, True),
    ("NumericEquals", 1.0, 1, True),
    ("NumericEquals", 0, 0.0, True),
    ("NumericEquals", 1, 1.1, False),
    ("NumericEquals", 1, "1", False),
    ("NumericEquals", 1, True, False),
    ("NumericEquals", 0, False, False),
    ("NumericEquals", 0, None, False),
    ("NumericEquals", 0, [], False),
    ("NumericEquals", 0, {}, False),
    ("NumericLessThan", 1, 0, True),
    ("NumericLessThan", 1, 1, False),
    ("NumericGreaterThan", 1, 2.5, True),
    ("NumericGreaterThan", 1, 1, False),
    ("NumericLessThanEquals", 1, 1.0, True),
    ("NumericLessThanEquals", 1, 2, False),
    ("NumericGreaterThanEquals", -1, -1, True),
    ("NumericGreaterThanEquals", 1, 0.5, False),
    ("NumericGreaterThanEquals", 1, "2", False),
]

STRING = [
    ("StringEquals", "HelloWorld", "HelloWorld", True),
    ("StringEquals", "     ", " ", False),
    ("StringEquals", "1", 1, False),
    ("StringEquals", "null", None, False),
    ("StringLessThan", "B", "A", True),
    ("StringLessThan", "A", "A", False),
    ("StringGreaterThan", "A ", "A", False),
    ("StringGreaterThan", "AB", "ABC", True),
    ("StringGreaterThan", "", "", False),
    ("StringLessThanEquals", "A", "A", True),
    ("StringLessThanEquals", "A", "AB", False),
    ("StringGreaterThanEquals", "", "", True),
    ("StringGreaterThanEquals", "A", "AB", True),
    # UTF-16 order (as Java compares): an astral character sorts below U+FFFF.
    ("StringLessThan", "\uffff", "\U0001f600", True),
]

BOOLEAN = [
    ("BooleanEquals", True, True, True),
    ("BooleanEquals", False, False, True),
    ("BooleanEquals", True, False, False),
    ("BooleanEquals", True, 1, False),
    ("BooleanEquals", False, 0, False),
    ("BooleanEquals", True, "true", False),
    ("BooleanEquals", False, None, False),
]

TIMESTAMP = [
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T20:00:55+01:00", True),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55.000Z", True),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:56Z", False),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55", False),
    ("TimestampEquals", "2012-10-09T19:00:55Z", "2023-02-24 12:15:56.832957", False),
    ("TimestampEquals", "2012-10-09T19:00:55Z", 0, False),
    ("TimestampEquals", "2012-10-09T19:00:55Z", None, False),
    ("TimestampLessThan", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", True),
    ("TimestampLessThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55.1Z", False),
    ("TimestampGreaterThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55.000000001Z", True),
    ("TimestampGreaterThan", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", False),
    ("TimestampLessThanEquals", "2012-10-09T19:00:55Z", "2012-10-09T19:00:55Z", True),
    ("TimestampGreaterThanEquals", "2012-10-09T19:00:56Z", "2012-10-09T19:00:55Z", False),
]


@pytest.mark.parametrize(
    ("op", "operand", "value", "expected"), NUMERIC + STRING + BOOLEAN + TIMESTAMP
)
def test_comparison(op: str, operand: Any, value: Any, expected: bool) -> None:
    check(op, operand, value, expected)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("log-*.txt", "log-2024.txt", True),
        ("log-*.txt", "log-.txt", True),
        ("log-*.txt", "log-2024.txt.gz", False),
        ("*", "", True),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "acb", False),
        (r"literal\*star", "literal*star", True),
        (r"literal\*star", "literalXstar", False),
        (r"back\\slash*", "back\\slash-and-more", True),
        ("exact", "exact", True),
        ("exact", "exactly", False),
        ("multi*line", "multi\nline", True),
        ("x", 1, False),
    ],
)
def test_string_matches(pattern: str, value: Any, expected: bool) -> None:
    check("StringMatches", pattern, value, expected)


TYPE_VALUES: list[Any] = [None, 0, 1.5, True, False, "", "text", "2012-10-09T19:00:55Z", [], {}]


@pytest.mark.parametrize(
    ("op", "accepts"),
    [
        ("IsNull", lambda v: v is None),
        ("IsNumeric", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
        ("IsString", lambda v: isinstance(v, str)),
        ("IsBoolean", lambda v: isinstance(v, bool)),
        ("IsTimestamp", lambda v: v == "2012-10-09T19:00:55Z"),
        ("IsPresent", lambda v: True),
    ],
)
@pytest.mark.parametrize("value", TYPE_VALUES, ids=repr)
@pytest.mark.parametrize("flag", [True, False])
def test_type_tests(op: str, accepts: Any, value: Any, flag: bool) -> None:
    assert rule(op, flag).matches(Given({"v": value}, SCOPE)) is (accepts(value) == flag)


def test_is_present_on_missing_variable() -> None:
    assert rule("IsPresent", True).matches(Given({}, SCOPE)) is False
    assert rule("IsPresent", False).matches(Given({}, SCOPE)) is True
    assert rule("IsPresent", True, "$.a.b.c").matches(Given({"a": 1}, SCOPE)) is False


@pytest.mark.parametrize(
    ("op", "operand"),
    [("NumericEquals", 1), ("StringEquals", "x"), ("IsNull", True), ("IsString", False)],
)
def test_missing_variable_is_a_runtime_error(op: str, operand: Any) -> None:
    with pytest.raises(StatesError, match=r"Invalid path '\$\.v'") as caught:
        rule(op, operand).matches(Given({}, SCOPE))
    assert caught.value.error == "States.Runtime"


def test_missing_operand_path_is_a_runtime_error() -> None:
    with pytest.raises(StatesError, match=r"Invalid path"):
        rule("NumericEqualsPath", "$.nope").matches(Given({"v": 1}, SCOPE))


def test_variables_and_context_object() -> None:
    assert rule("NumericLessThanEqualsPath", "$limit").matches(Given({"v": 10}, SCOPE))
    assert rule("StringEquals", "x", "$name").matches(Given({}, SCOPE))
    assert rule("NumericEquals", 0, "$$.Execution.Input.n").matches(Given({}, SCOPE))


def test_and_or_not() -> None:
    compiled = ChoiceRule.compile(
        {
            "And": [
                {"Variable": "$.value", "NumericGreaterThanEquals": 20},
                {
                    "Or": [
                        {"Variable": "$.value", "NumericLessThan": 30},
                        {"Variable": "$.x", "IsPresent": True},
                    ]
                },
                {"Not": {"Variable": "$.type", "StringEquals": "Private"}},
            ],
            "Next": "InTwenties",
            "Assign": {"seen": True},
        },
        "/States/C/Choices/0",
    )
    assert compiled.next == "InTwenties"
    assert compiled.matches(Given({"value": 22, "type": "Public"}, SCOPE))
    assert not compiled.matches(Given({"value": 22, "type": "Private"}, SCOPE))
    assert not compiled.matches(Given({"value": 32, "type": "Public"}, SCOPE))
    assert compiled.matches(Given({"value": 32, "type": "Public", "x": None}, SCOPE))


def test_short_circuit_avoids_missing_paths() -> None:
    compiled = ChoiceRule.compile(
        {
            "And": [
                {"Variable": "$.a", "IsPresent": True},
                {"Variable": "$.a", "NumericEquals": 1},
            ],
            "Next": "N",
        },
        "/States/C/Choices/0",
    )
    assert compiled.matches(Given({}, SCOPE)) is False


def test_jsonata_condition_reads_the_environment_not_the_jsonpath_input() -> None:
    compiled = ChoiceRule.compile(
        {"Condition": "{% $states.input.n = 1 %}", "Next": "N", "Output": {"a": 1}},
        "/States/C/Choices/0",
        query_language="JSONata",
    )
    assert compiled.matches(Given({"n": 2}, SCOPE, Env({"input": {"n": 1}}))) is True
    assert compiled.matches(Given({"n": 1}, SCOPE, Env({"input": {"n": 2}}))) is False
    constant = ChoiceRule.compile({"Condition": True, "Next": "N"}, "/p", query_language="JSONata")
    assert constant.matches(Given({}, SCOPE)) is True


@pytest.mark.parametrize(
    ("source", "top_level", "language", "pointer", "detail"),
    [
        ({"Variable": "$.v", "NumericEquals": 1}, True, "JSONPath", "/r", "'Next' is required"),
        (
            {"Variable": "$.v", "NumericEquals": 1, "Next": "N"},
            False,
            "JSONPath",
            "/r",
            "'Next' is not supported",
        ),
        ({"Variable": "$.v", "Next": "N"}, True, "JSONPath", "/r", "exactly one"),
        (
            {"Variable": "$.v", "IsNull": True, "IsString": True, "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "exactly one",
        ),
        ({"NumericEquals": 1, "Next": "N"}, True, "JSONPath", "/r", "'Variable' is required"),
        (
            {"Variable": "v", "NumericEquals": 1, "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "'Variable' must be a valid",
        ),
        (
            {"Variable": "$.a[*]", "NumericEquals": 1, "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "'Variable' must be a valid",
        ),
        (
            {"Variable": "$.v", "NumericEquals": "1", "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "must be a NUMBER",
        ),
        (
            {"Variable": "$.v", "NumericEquals": True, "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "must be a NUMBER",
        ),
        (
            {"Variable": "$.v", "StringEquals": 1, "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "must be a STRING",
        ),
        (
            {"Variable": "$.v", "BooleanEquals": "true", "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "must be a BOOLEAN",
        ),
        (
            {"Variable": "$.v", "IsPresent": 1, "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "must be a BOOLEAN",
        ),
        (
            {"Variable": "$.v", "TimestampEquals": "2020-01-01", "Next": "N"},
            True,
            "JSONPath",
            "/r/TimestampEquals",
            "RFC3339",
        ),
        (
            {"Variable": "$.v", "StringEqualsPath": "nope", "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "'StringEqualsPath' must be a valid",
        ),
        (
            {"Variable": "$.v", "Nonsense": 1, "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "Field 'Nonsense' is not supported",
        ),
        ({"And": [], "Next": "N"}, True, "JSONPath", "/r", "at least 1"),
        ({"And": {}, "Next": "N"}, True, "JSONPath", "/r", "must be an ARRAY"),
        ({"Not": [], "Next": "N"}, True, "JSONPath", "/r", "must be an OBJECT"),
        (
            {"And": [{"Variable": "$.v", "IsNull": True, "Next": "N"}], "Next": "N"},
            True,
            "JSONPath",
            "/r/And[0]",
            "'Next' is not supported",
        ),
        (
            {"Condition": "{% true %}", "Next": "N"},
            True,
            "JSONPath",
            "/r",
            "field 'Condition' is only supported",
        ),
        (
            {"Variable": "$.v", "IsNull": True, "Next": "N"},
            True,
            "JSONata",
            "/r",
            "field 'Variable' is only supported",
        ),
        ({"Next": "N"}, True, "JSONata", "/r", "'Condition' is required"),
        ({"Condition": "true", "Next": "N"}, True, "JSONata", "/r", "JSONata expression"),
        ("rule", True, "JSONPath", "/r", "OBJECT"),
    ],
)
def test_compile_errors(
    source: Any, top_level: bool, language: str, pointer: str, detail: str
) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        ChoiceRule.compile(source, "/r", top_level=top_level, query_language=language)
    assert caught.value.code == "SCHEMA_VALIDATION_FAILED"
    assert caught.value.pointer == pointer
    assert detail in caught.value.detail


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("2016-03-14T01:59:00Z", True),
        ("2016-03-14T01:59:00.123456789Z", True),
        ("2016-03-14T01:59:00+05:30", True),
        ("2016-03-14T01:59:00-00:00", True),
        ("2016-03-14t01:59:00Z", False),
        ("2016-03-14T01:59:00z", False),
        ("2016-03-14T01:59:00", False),
        ("2016-03-14 01:59:00Z", False),
        ("2016-13-14T01:59:00Z", False),
        ("2016-02-30T01:59:00Z", False),
        ("2016-03-14T25:59:00Z", False),
        ("05-12-2016T21:29:29Z", False),
        ("2016-03-14", False),
    ],
)
def test_timestamps(text: str, valid: bool) -> None:
    assert (parse_timestamp(text) is not None) is valid
    assert (timestamp_instant(text) is not None) is valid


# ---------------------------------------------------------------------------------------------
# AWS-recorded cases
# ---------------------------------------------------------------------------------------------

CASES_DIR = CONFORMANCE / "cases"


def _choice_cases() -> list[tuple[str, dict[str, Any]]]:
    """Recorded executions of the shape Choice -> Pass(Result, End) under JSONPath."""
    found = []
    for path in sorted(CASES_DIR.glob("*.json")) if CASES_DIR.is_dir() else []:
        case = json.loads(path.read_text(encoding="utf-8"))
        definition = case["definition"]
        states = definition["States"]
        start = states[definition["StartAt"]]
        if start.get("Type") != "Choice" or definition.get("QueryLanguage") == "JSONata":
            continue
        if start.get("QueryLanguage") == "JSONata" or case["expected"]["status"] != "SUCCEEDED":
            continue
        targets = [c["Next"] for c in start["Choices"]] + [start.get("Default")]
        if all(
            t in states
            and states[t]["Type"] == "Pass"
            and set(states[t]) <= {"Type", "Result", "End"}
            for t in targets
            if t is not None
        ):
            found.append((path.stem, case))
    return found


CHOICE_CASES = _choice_cases()


@pytest.mark.conformance
@pytest.mark.skipif(not CHOICE_CASES, reason=f"AWS conformance cases not found at {CASES_DIR}")
@pytest.mark.parametrize(("name", "case"), CHOICE_CASES, ids=[name for name, _ in CHOICE_CASES])
def test_recorded_choice_case(name: str, case: dict[str, Any]) -> None:
    definition = case["definition"]
    state = definition["States"][definition["StartAt"]]
    base = f"/States/{definition['StartAt']}/Choices"
    rules = [ChoiceRule.compile(r, f"{base}/{i}") for i, r in enumerate(state["Choices"])]
    scope = Scope(context={"Execution": {"Input": case["input"]}})
    target = next(
        (r.next for r in rules if r.matches(Given(case["input"], scope))), state.get("Default")
    )
    chosen = definition["States"][target]
    output = chosen.get("Result", case["input"])
    assert output == case["expected"]["output"]


def test_recorded_choice_cases_found() -> None:
    if not CASES_DIR.is_dir():
        pytest.skip(f"AWS conformance cases not found at {CASES_DIR}")
    assert len(CHOICE_CASES) >= 250


def test_jsonata_condition_failures_name_the_rule() -> None:
    """Issue 15: AWS names a rule's Condition relative to the state, ``Choices[i]/Condition``."""
    rule = ChoiceRule.compile(
        {"Condition": "{% $undefinedVariable %}", "Next": "N"},
        "/States/C/Choices[1]",
        query_language="JSONata",
    )
    with pytest.raises(QueryEvaluationError) as raised:
        rule.matches(Given({}))
    assert raised.value.location == "Choices[1]/Condition"
    assert raised.value.cause == (
        "The JSONata expression '$undefinedVariable' specified for the field "
        "'Choices[1]/Condition' returned nothing (undefined)."
    )
    typed = ChoiceRule.compile(
        {"Condition": "{% 1 %}", "Next": "N"}, "/States/C/Choices[0]", query_language="JSONata"
    )
    expected = r"field 'Choices\[0\]/Condition' returned an unexpected"
    with pytest.raises(QueryEvaluationError, match=expected):
        typed.matches(Given({}))
