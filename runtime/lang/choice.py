"""Choice rules (ASL "Choice Rules"): compiled once into closures, evaluated many times.

A Choice state's ``Choices`` array holds rules. A rule is either a *comparison* (``Variable`` plus
exactly one operator such as ``NumericGreaterThanEquals`` or ``StringMatches``), a boolean
combination (``And``/``Or`` over a non-empty array of rules, ``Not`` over one rule) or, in a
JSONata state, a ``Condition``. Only top-level rules carry ``Next`` (and ``Assign``/``Output``).

AWS semantics implemented here:

* a comparison whose ``Variable`` (or ``...Path`` operand) has the wrong JSON type is *false*,
  never an error (``NumericEquals`` on ``"1"``, ``BooleanEquals`` on ``1``, ...);
* numbers compare by value (``1`` equals ``1.0``); booleans are not numbers;
* strings compare by UTF-16 code units, as the Java service does;
* timestamps are RFC 3339 strings with an upper-case ``T`` and ``Z`` (or a numeric offset) and
  compare as instants;
* a ``Variable`` that selects nothing raises ``States.Runtime`` except under ``IsPresent``.

Compilation raises :class:`~runtime.errors.InvalidDefinition` with the JSON Pointer of the faulty
field; evaluation never parses. This module imports only the standard library and the sibling
``paths`` module; it must not import ``definition``, ``core`` or ``engine``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Protocol, final

from runtime.errors import InvalidDefinition, StatesError
from runtime.lang.jsonata import JsonataExpression, compile_expression
from runtime.lang.jsonata_functions import Env
from runtime.lang.paths import Path, PathNotFound
from runtime.lang.scope import Scope

__all__ = ["COMPARISON_OPERATORS", "ChoiceRule", "parse_timestamp", "timestamp_instant"]

JSON = Any
_Test = Callable[[JSON, Scope], bool]


class ChoiceBindings(Protocol):
    """What a rule is evaluated in (the shape of ``runtime.definition.values.Bindings``): the
    Choice state's effective input and JSONPath scope, or its JSONata environment (``$states``,
    variables), the last two built only when asked for."""

    @property
    def data(self) -> JSON: ...

    def scope(self) -> Scope: ...

    def env(self) -> Env: ...


_Match = Callable[[ChoiceBindings], bool]

_SCHEMA: Final = "SCHEMA_VALIDATION_FAILED"

_ORDERINGS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "GreaterThan": operator.gt,
    "LessThanEquals": operator.le,
    "GreaterThanEquals": operator.ge,
}

_FAMILIES: Final = ("String", "Numeric", "Timestamp")

#: Every comparison operator name (without the ``Path`` variants), mapped to its operand kind.
COMPARISON_OPERATORS: Final[dict[str, str]] = {
    **{f"{family}{suffix}": family for family in _FAMILIES for suffix in _ORDERINGS},
    "BooleanEquals": "Boolean",
    "StringMatches": "Matches",
    "IsNull": "Is",
    "IsPresent": "Is",
    "IsNumeric": "Is",
    "IsString": "Is",
    "IsBoolean": "Is",
    "IsTimestamp": "Is",
}

_PATH_OPERATORS: Final = frozenset(
    f"{name}Path"
    for name, kind in COMPARISON_OPERATORS.items()
    if kind in ("String", "Numeric", "Timestamp", "Boolean")
)

_ALL_OPERATORS: Final = frozenset(COMPARISON_OPERATORS) | _PATH_OPERATORS

_BOOLEAN_OPERATORS: Final = ("And", "Or", "Not")

# ---------------------------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------------------------

_TIMESTAMP: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})",
    re.ASCII,  # digits are 0-9 only, as in Java; Python's \d would also take other scripts' digits
)


def parse_timestamp(text: str) -> datetime | None:
    """Parse an ASL timestamp (ASL "Timestamps"), or return ``None`` when it is not one.

    ASL requires the RFC 3339 profile of ISO 8601 with an upper-case ``T`` between date and
    time and an upper-case ``Z`` when no numeric offset is given. Fractions of a second beyond
    microseconds are truncated in the returned ``datetime`` (see :func:`timestamp_instant`
    for an exact comparison key).
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone == "Z":
        tz = UTC
    else:
        offset_h, offset_m = int(zone[1:3]), int(zone[4:6])
        if offset_h > 23 or offset_m > 59:
            return None
        delta = timedelta(hours=offset_h, minutes=offset_m)
        tz = timezone(-delta if zone[0] == "-" else delta)
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz
        )
    except ValueError:
        return None


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp_instant(text: str) -> tuple[int, int] | None:
    """An exact, totally ordered key for an ASL timestamp: (UTC epoch seconds, nanoseconds).

    ``None`` when ``text`` is not a valid ASL timestamp. Two timestamps naming the same instant
    in different offsets get equal keys.
    """
    parsed = parse_timestamp(text)
    if parsed is None:
        return None
    match = _TIMESTAMP.fullmatch(text)
    assert match is not None  # parse_timestamp succeeded, so the pattern matched
    fraction = match.group(7) or ""
    whole = parsed.replace(microsecond=0) - _EPOCH
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0
    return (whole.days * 86400 + whole.seconds, nanos)


# ---------------------------------------------------------------------------------------------
# Operand kinds: which JSON values a family accepts, and the comparison key for each
# ---------------------------------------------------------------------------------------------


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_bmp(text: str) -> bool:
    return text.isascii() or max(text) <= "\uffff"


def _utf16_order(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    """Java orders strings by UTF-16 code units; only astral characters make that differ."""
    if compare is operator.eq:
        return compare

    def ordered(left: str, right: str) -> bool:
        if _is_bmp(left) and _is_bmp(right):
            return compare(left, right)
        return compare(left.encode("utf-16-be"), right.encode("utf-16-be"))

    return ordered


def _string_key(value: JSON) -> Any:
    return value if isinstance(value, str) else None


def _number_key(value: JSON) -> Any:
    return value if _is_number(value) else None


def _timestamp_key(value: JSON) -> Any:
    return timestamp_instant(value) if isinstance(value, str) else None


def _boolean_key(value: JSON) -> Any:
    return value if isinstance(value, bool) else None


_KEYS: Final[dict[str, Callable[[JSON], Any]]] = {
    "String": _string_key,
    "Numeric": _number_key,
    "Timestamp": _timestamp_key,
    "Boolean": _boolean_key,
}

_TYPE_NAMES: Final = {"String": "STRING", "Numeric": "NUMBER", "Boolean": "BOOLEAN"}


@final
class _Wildcard:
    """``StringMatches`` (ASL "Choice Rules"): ``*`` matches any run of characters (newlines
    included); ``\\*`` and ``\\\\`` stand for a literal ``*`` and ``\\``.

    The pattern is compiled into its literal pieces between the stars and matched without
    backtracking (issue 11: a backtracking regex took exponential time on a pattern of many
    ``*`` against a long string): the first piece must be a prefix, the last a suffix, and each
    piece in between is found at its leftmost place after the previous one. Taking the
    leftmost place is never wrong, since a later piece only needs some text after it, so the
    cost is that of one left-to-right scan (``str.find``), linear in practice.
    """

    __slots__ = ("_middle", "_prefix", "_starred", "_suffix")

    def __init__(self, pattern: str) -> None:
        pieces: list[str] = []
        current: list[str] = []
        i = 0
        while i < len(pattern):
            char = pattern[i]
            if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
                current.append(pattern[i + 1])
                i += 2
                continue
            if char == "*":
                pieces.append("".join(current))
                current = []
            else:
                current.append(char)
            i += 1
        pieces.append("".join(current))
        self._starred = len(pieces) > 1
        self._prefix = pieces[0]
        self._suffix = pieces[-1] if self._starred else ""
        self._middle = tuple(piece for piece in pieces[1:-1] if piece)

    def fullmatch(self, value: str) -> bool:
        """Whether the whole of ``value`` matches the pattern."""
        prefix = self._prefix
        if not self._starred:
            return value == prefix
        suffix = self._suffix
        end = len(value) - len(suffix)
        if end < len(prefix) or not value.startswith(prefix) or not value.endswith(suffix):
            return False
        position = len(prefix)
        for piece in self._middle:
            found = value.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True


# ---------------------------------------------------------------------------------------------
# Compilation helpers
# ---------------------------------------------------------------------------------------------


def _fail(detail: str, pointer: str) -> InvalidDefinition:
    return InvalidDefinition(_SCHEMA, detail, pointer)


def _compile_path(text: JSON, field: str, pointer: str) -> Path:
    if not isinstance(text, str):
        raise _fail(f"The value for the field '{field}' must be a STRING", pointer)
    try:
        path = Path.compile(text)
    except ValueError:
        path = None
    if path is None or not path.is_reference:
        raise _fail(f"The value for the field '{field}' must be a valid JSONPath", pointer)
    return path


def _missing_variable(variable: Path) -> StatesError:
    return StatesError(
        "States.Runtime",
        f"Invalid path '{variable.text}': The choice state's condition path references an "
        "invalid value.",
    )


def _read(variable: Path, data: JSON, scope: Scope) -> JSON:
    try:
        return variable.evaluate(data, scope)
    except PathNotFound:
        raise _missing_variable(variable) from None


def _is_test(name: str, variable: Path, expected: bool) -> _Test:
    """The type tests (ASL "IsNull", "IsPresent", "IsNumeric", "IsString", ...)."""
    if name == "IsPresent":

        def is_present(data: JSON, scope: Scope) -> bool:
            try:
                variable.evaluate(data, scope)
            except PathNotFound:
                return not expected
            return expected

        return is_present

    predicates: dict[str, Callable[[JSON], bool]] = {
        "IsNull": lambda v: v is None,
        "IsNumeric": _is_number,
        "IsString": lambda v: isinstance(v, str),
        "IsBoolean": lambda v: isinstance(v, bool),
        "IsTimestamp": lambda v: isinstance(v, str) and timestamp_instant(v) is not None,
    }
    predicate = predicates[name]

    def is_type(data: JSON, scope: Scope) -> bool:
        return predicate(_read(variable, data, scope)) is expected

    return is_type


def _literal_test(
    key: Callable[[JSON], Any], compare: Callable[[Any, Any], bool], variable: Path, operand: Any
) -> _Test:
    def test(data: JSON, scope: Scope) -> bool:
        value = key(_read(variable, data, scope))
        return value is not None and compare(value, operand)

    return test


def _path_test(
    key: Callable[[JSON], Any], compare: Callable[[Any, Any], bool], variable: Path, operand: Path
) -> _Test:
    def test(data: JSON, scope: Scope) -> bool:
        value = key(_read(variable, data, scope))
        other = key(_read(operand, data, scope))
        return value is not None and other is not None and compare(value, other)

    return test


def _compare(family: str, name: str) -> Callable[[Any, Any], bool]:
    compare = _ORDERINGS[name[len(family) :]]
    return _utf16_order(compare) if family == "String" else compare


def _compile_comparison(name: str, operand: JSON, variable: Path, pointer: str) -> _Test:
    """One comparison operator applied to ``Variable`` (ASL "Choice Rules", comparison)."""
    if name in _PATH_OPERATORS:
        base = name[: -len("Path")]
        family = COMPARISON_OPERATORS[base]
        other = _compile_path(operand, name, pointer)
        return _path_test(_KEYS[family], _compare(family, base), variable, other)
    family = COMPARISON_OPERATORS[name]
    if family == "Is":
        if not isinstance(operand, bool):
            raise _fail(f"The value for the field '{name}' must be a BOOLEAN", pointer)
        return _is_test(name, variable, operand)
    if family == "Matches":
        if not isinstance(operand, str):
            raise _fail(f"The value for the field '{name}' must be a STRING", pointer)
        wildcard = _Wildcard(operand)

        def matches(data: JSON, scope: Scope) -> bool:
            value = _read(variable, data, scope)
            return isinstance(value, str) and wildcard.fullmatch(value)

        return matches
    key = _KEYS[family]
    if family == "Timestamp":
        literal = timestamp_instant(operand) if isinstance(operand, str) else None
        if literal is None:
            raise _fail("String does not match RFC3339 timestamp", f"{pointer}/{name}")
    else:
        literal = key(operand)
        if literal is None:
            raise _fail(
                f"The value for the field '{name}' must be a {_TYPE_NAMES[family]}", pointer
            )
    return _literal_test(key, _compare(family, name), variable, literal)


def _all(tests: tuple[_Test, ...]) -> _Test:
    def test(data: JSON, scope: Scope) -> bool:
        return all(t(data, scope) for t in tests)

    return test


def _any(tests: tuple[_Test, ...]) -> _Test:
    def test(data: JSON, scope: Scope) -> bool:
        return any(t(data, scope) for t in tests)

    return test


def _not(inner: _Test) -> _Test:
    def test(data: JSON, scope: Scope) -> bool:
        return not inner(data, scope)

    return test


def _path_match(test: _Test) -> _Match:
    """A JSONPath rule's test over the effective input and the scope."""

    def match(bindings: ChoiceBindings) -> bool:
        return test(bindings.data, bindings.scope())

    return match


def _condition_value(expression: JsonataExpression, env: Env, field: str) -> bool:
    """A ``Condition`` expression's value, which must be a boolean."""
    value = expression.evaluate(env, field)
    if not isinstance(value, bool):
        raise expression.wrong_type(value, "boolean", field)
    return value


def _condition_match(condition: JsonataExpression | bool, field: str) -> _Match:
    """A JSONata rule's ``Condition`` (a boolean constant or a compiled expression) over the
    environment."""
    if isinstance(condition, bool):

        def constant(bindings: ChoiceBindings) -> bool:
            return condition

        return constant

    def match(bindings: ChoiceBindings) -> bool:
        return _condition_value(condition, bindings.env(), field)

    return match


_TOP_LEVEL_FIELDS: Final = frozenset({"Next", "Assign", "Output", "Comment"})


@final
class ChoiceRule:
    """A compiled Choice rule: one test, built at load time, whichever the query language (a
    rule's ``Assign`` and ``Output`` are compiled values of the loader,
    :mod:`runtime.definition.values`).

    Attributes:
        next: the state to go to when a top-level rule matches (``None`` for nested rules).
        pointer: JSON Pointer of the rule in the definition.
        source: the rule's JSON, as written.
    """

    __slots__ = ("_match", "next", "pointer", "source")

    def __init__(self, *, match: _Match, next: str | None, pointer: str, source: JSON) -> None:
        self._match = match
        self.next = next
        self.pointer = pointer
        self.source = source

    def __repr__(self) -> str:
        return f"ChoiceRule({self.source!r}, pointer={self.pointer!r})"

    @classmethod
    def compile(
        cls,
        rule: JSON,
        pointer: str,
        *,
        top_level: bool = True,
        query_language: str = "JSONPath",
    ) -> ChoiceRule:
        """Compile one Choice rule (ASL "Choice Rules").

        Args:
            rule: the rule's JSON object.
            pointer: its JSON Pointer, e.g. ``/States/Check/Choices[0]``.
            top_level: ``True`` for an element of ``Choices`` (which must carry ``Next``),
                ``False`` for a rule nested in ``And``/``Or``/``Not`` (which must not).
            query_language: the state's effective query language; a JSONata rule is a
                ``Condition``.

        Raises:
            InvalidDefinition: the rule is malformed (``SCHEMA_VALIDATION_FAILED``).
        """
        if not isinstance(rule, Mapping):
            raise _fail("The value must be an OBJECT", pointer)
        next_state: str | None = None
        if top_level:
            if "Next" not in rule:
                raise _fail("The field 'Next' is required but was missing", pointer)
            next_state = rule["Next"]
            if not isinstance(next_state, str):
                raise _fail("The value for the field 'Next' must be a STRING", pointer)
        if query_language == "JSONata":
            condition = cls._compile_condition(rule, pointer, top_level)
            match = _condition_match(condition, _rule_field(pointer, "Condition"))
        else:
            match = _path_match(cls._compile_jsonpath(rule, pointer, top_level))
        return cls(match=match, next=next_state, pointer=pointer, source=rule)

    @staticmethod
    def _check_fields(rule: Mapping[str, JSON], allowed: frozenset[str], pointer: str) -> None:
        for field in rule:
            if field not in allowed:
                raise _fail(f"Field '{field}' is not supported", pointer)

    @classmethod
    def _compile_condition(
        cls, rule: Mapping[str, JSON], pointer: str, top_level: bool
    ) -> JsonataExpression | bool:
        """A JSONata rule: ``Condition`` plus ``Next``/``Assign``/``Output``; the condition
        compiled (or its boolean constant)."""
        allowed = frozenset({"Condition"}) | (_TOP_LEVEL_FIELDS if top_level else frozenset())
        for field in rule:
            if field in _ALL_OPERATORS or field in _BOOLEAN_OPERATORS or field == "Variable":
                raise _fail(
                    "The QueryLanguage is set to 'JSONata', but field "
                    f"'{field}' is only supported for the 'JSONPath' QueryLanguage",
                    pointer,
                )
        cls._check_fields(rule, allowed, pointer)
        if "Condition" not in rule:
            raise _fail("The field 'Condition' is required but was missing", pointer)
        condition = rule["Condition"]
        if isinstance(condition, bool):
            return condition
        if not isinstance(condition, str):
            raise _fail("The value for the field 'Condition' must be a STRING", pointer)
        text = condition.strip()
        if not (text.startswith("{%") and text.endswith("%}")):
            raise _fail(
                "The value for the field 'Condition' must be a JSONata expression "
                "enclosed in '{%' and '%}'",
                pointer,
            )
        try:
            compiled = compile_expression(text)
        except ValueError as exc:
            raise _fail(f"The JSONata expression '{text}' is not valid: {exc}", pointer) from None
        return compiled

    @classmethod
    def _compile_jsonpath(cls, rule: Mapping[str, JSON], pointer: str, top_level: bool) -> _Test:
        """A JSONPath rule: a comparison, or ``And``/``Or``/``Not``."""
        if "Condition" in rule:
            raise _fail(
                "The QueryLanguage is set to 'JSONPath', but field 'Condition' is only "
                "supported for the 'JSONata' QueryLanguage",
                pointer,
            )
        extra = _TOP_LEVEL_FIELDS if top_level else frozenset({"Comment"})
        if not top_level and "Next" in rule:
            raise _fail("Field 'Next' is not supported", pointer)
        if not top_level and "Assign" in rule:
            raise _fail("Field 'Assign' is not supported", pointer)
        if "Output" in rule:
            raise _fail(
                "The QueryLanguage is set to 'JSONPath', but field 'Output' is only "
                "supported for the 'JSONata' QueryLanguage",
                pointer,
            )
        combinators = [name for name in _BOOLEAN_OPERATORS if name in rule]
        operators = [name for name in rule if name in _ALL_OPERATORS]
        if combinators:
            cls._check_fields(rule, frozenset(combinators) | extra, pointer)
            if len(combinators) > 1:
                raise _fail("A choice rule must have exactly one comparison operator", pointer)
            return cls._compile_combinator(combinators[0], rule[combinators[0]], pointer)
        cls._check_fields(rule, _ALL_OPERATORS | {"Variable"} | extra, pointer)
        if not operators:
            raise _fail("A choice rule must have exactly one comparison operator", pointer)
        if len(operators) > 1:
            raise _fail("A choice rule must have exactly one comparison operator", pointer)
        if "Variable" not in rule:
            raise _fail("The field 'Variable' is required but was missing", pointer)
        variable = _compile_path(rule["Variable"], "Variable", pointer)
        name = operators[0]
        return _compile_comparison(name, rule[name], variable, pointer)

    @classmethod
    def _compile_combinator(cls, name: str, value: JSON, pointer: str) -> _Test:
        """``And``/``Or`` over a non-empty array, ``Not`` over one rule."""
        here = f"{pointer}/{name}"
        if name == "Not":
            if not isinstance(value, Mapping):
                raise _fail("The value for the field 'Not' must be an OBJECT", pointer)
            return _not(cls._compile_jsonpath(value, here, top_level=False))
        if not isinstance(value, list):
            raise _fail(f"The value for the field '{name}' must be an ARRAY", pointer)
        if not value:
            raise _fail(f"The field '{name}' must have at least 1 item", pointer)
        tests: list[_Test] = []
        for index, item in enumerate(value):
            item_pointer = f"{here}[{index}]"
            if not isinstance(item, Mapping):
                raise _fail("The value must be an OBJECT", item_pointer)
            tests.append(cls._compile_jsonpath(item, item_pointer, top_level=False))
        return _all(tuple(tests)) if name == "And" else _any(tuple(tests))

    def matches(self, bindings: ChoiceBindings) -> bool:
        """Whether the rule matches, in either query language: a JSONPath rule over the
        effective input and scope, a JSONata ``Condition`` over the environment (each compiled
        at load time into one test).

        Raises:
            StatesError: ``States.Runtime`` when ``Variable`` selects nothing (except under
                ``IsPresent``); ``QueryEvaluationError`` when a ``Condition`` fails or gives no
                boolean.
        """
        return self._match(bindings)


def _rule_field(pointer: str, name: str) -> str:
    """How AWS names a field of the rule at ``pointer`` in a cause and an ``EvaluationFailed``
    ``location``: relative to the state, under the rule (``Choices[1]/Condition``; issue 15)."""
    rule = pointer.rpartition("/")[2]
    return f"{rule}/{name}" if rule.startswith("Choices[") else name
