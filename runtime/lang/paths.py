"""JSONPath as AWS Step Functions evaluates it (Jayway JsonPath semantics), and ResultPath.

Responsibility: compile a path text once into an immutable :class:`Path` and evaluate it against
the state input (``$``), the context object (``$$``) or a workflow variable (``$name``);
apply a ResultPath to an input (:func:`apply_result_path`).

Semantics (ASL "Paths", "Reference Paths", "ResultPath"; AWS uses Jayway JsonPath):

* A *definite* path (only ``.name``, ``['name']``, ``[n]`` steps, or a multi-name leaf
  ``['a','b']``) yields one value or raises :class:`PathNotFound`, whose ``detail`` is Jayway's
  wording (``Missing property in path $['a']``, ``No results for path: $['a']['b']``, ...).
* An *indefinite* path (``*``, ``..``, slices, unions, filters) yields the list of matches, the
  empty list when nothing matched; it never raises.
* ``.length()`` may end a path; it yields the size of the array, object or string it is applied to.

Budgets (issue 11): no evaluation recurses on the input's depth (descendants, ResultPath and
the JSON renderings use explicit stacks); filter expressions nest at most
:data:`MAX_FILTER_NESTING` deep; ``=~`` matches with RE2, in time linear in the string.

Invariants: evaluation never mutates its input; results share structure with the input.
This module imports only the standard library, msgspec and RE2 (``google-re2``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Final, final

import msgspec
import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from runtime.errors import StatesError
from runtime.lang.scope import Scope

__all__ = [
    "JSON",
    "MAX_FILTER_NESTING",
    "Path",
    "PathNotFound",
    "PathSyntaxError",
    "apply_result_path",
    "compact_json",
    "java_string",
]

JSON = Any


class PathSyntaxError(ValueError):
    """A path text is not a valid JSONPath."""


class PathNotFound(Exception):
    """A definite path did not resolve.

    Attributes:
        path: the path text as written in the definition.
        detail: Jayway's explanation, e.g. ``Missing property in path $['no']``.
    """

    def __init__(self, path: str, detail: str = "") -> None:
        self.path = path
        self.detail = detail or f"No results for path: {path}"
        super().__init__(f"Invalid path '{path}' : {self.detail}")


# --------------------------------------------------------------------------------------------
# JSON text helpers shared with the intrinsic functions
# --------------------------------------------------------------------------------------------


def _json_scalar(value: JSON) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _render(
    value: JSON,
    scalar: Callable[[JSON], str],
    key: Callable[[str], str],
    separator: str,
) -> str:
    """Render nested lists and dicts with an explicit stack (issue 11: the input chooses the
    depth, so no recursion): ``[a<sep>b]`` and ``{<key(k)>v<sep>...}``."""
    out: list[str] = []
    # Each frame: the iterator over a container's items, its closing bracket, whether the
    # container is a dict, and whether the next item is its first.
    stack: list[tuple[Iterator[Any], str, bool, list[bool]]] = []
    pending: list[JSON] = [value]
    while pending or stack:
        if pending:
            item = pending.pop()
            if isinstance(item, dict):
                out.append("{")
                stack.append((iter(item.items()), "}", True, [True]))
            elif isinstance(item, list):
                out.append("[")
                stack.append((iter(item), "]", False, [True]))
            else:
                out.append(scalar(item))
            continue
        items, closing, is_dict, first = stack[-1]
        entry: Any = next(items, _MISSING)
        if entry is _MISSING:
            out.append(closing)
            stack.pop()
            continue
        if not first[0]:
            out.append(separator)
        first[0] = False
        if is_dict:
            name, entry = entry
            out.append(key(name))
        pending.append(entry)
    return "".join(out)


def compact_json(value: JSON) -> str:
    """Serialise like AWS (Jackson): compact, key order kept, non-ASCII left as is.

    Values nested deeper than the C encoder's recursion limit are rendered with an explicit
    stack, so no input depth raises ``RecursionError``. Raises ``ValueError`` for NaN or
    infinity and ``TypeError`` for a value that is not JSON.
    """
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError:
        return _render(value, _json_scalar, lambda name: _json_scalar(name) + ":", ",")


def _java_double(x: float) -> str:
    """``Double.toString``: decimal in [1e-3, 1e7), else ``d.dddE±n``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign, digits, exponent = Decimal(repr(x)).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).rstrip("0") or "0"
    point = len(digits) + exponent  # position of the decimal point in the digit string
    prefix = "-" if sign else ""
    if 1e-3 <= abs(x) < 1e7:
        if point <= 0:
            return f"{prefix}0.{'0' * -point}{text}"
        whole = text[:point].ljust(point, "0")
        frac = text[point:] or "0"
        return f"{prefix}{whole}.{frac}"
    return f"{prefix}{text[0]}.{text[1:] or '0'}E{point - 1}"


def _java_scalar(value: JSON) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "true" if value else "false"
        case int():
            return str(value)
        case float():
            return _java_double(value)
        case str():
            return value
        case _:
            return str(value)


def java_string(value: JSON) -> str:
    """A JSON value as Java's ``toString`` shows it (``{a=1, b=[x, y]}``), as States.Format does.

    Rendered with an explicit stack: any input depth is fine (issue 11)."""
    if not isinstance(value, list | dict):
        return _java_scalar(value)
    return _render(value, _java_scalar, lambda name: f"{name}=", ", ")


def _java_class(value: JSON) -> str:
    """The Java class Jayway's Jackson provider would report for a value (error messages)."""
    match value:
        case None:
            return "null"
        case bool():
            return "java.lang.Boolean"
        case int():
            return "java.lang.Integer" if -(2**31) <= value < 2**31 else "java.lang.Long"
        case float():
            return "java.lang.Double"
        case str():
            return "java.lang.String"
        case list():
            return "java.util.ArrayList"
        case _:
            return "java.util.LinkedHashMap"


_PROVIDER: Final = "com.jayway.jsonpath.spi.json.JacksonJsonProvider"
_MISSING: Final = object()


_ESCAPES: Final = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "r": "\r",
    "f": "\f",
    "t": "\t",
    "n": "\n",
    "b": "\b",
}


def _unescape(raw: str) -> str:
    """The escape sequences of a quoted JSONPath name or literal, as Jayway's ``unescape``
    reads them: ``\\\\``, ``\\'``, ``\\"``, ``\\r``, ``\\f``, ``\\t``, ``\\n``, ``\\b``, ``\\uXXXX``
    (four hex digits, else an error); a backslash before any other character stands for that
    character, a backslash at the very end for itself, and an unfinished ``\\u`` at the end
    for nothing.

    Raises:
        ValueError: ``\\u`` is followed by four characters that are not hex digits.
    """
    if "\\" not in raw:
        return raw
    out: list[str] = []
    i, end = 0, len(raw)
    while i < end:
        char = raw[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 == end:
            out.append("\\")
            break
        code = raw[i + 1]
        if code != "u":
            out.append(_ESCAPES.get(code, code))
            i += 2
            continue
        digits = raw[i + 2 : i + 6]
        if len(digits) < 4:
            break
        if not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError(f"Unable to parse unicode value: {digits}")
        out.append(chr(int(digits, 16)))
        i += 6
    text = "".join(out)
    if any("\ud800" <= c <= "\udfff" for c in text):
        # Java strings are UTF-16: a surrogate pair written as two escapes is one character.
        with contextlib.suppress(UnicodeDecodeError):  # a lone surrogate stays as it is
            text = text.encode("utf-16", "surrogatepass").decode("utf-16")
    return text


def _quote(name: str, quote: str = "'") -> str:
    """A name as Jayway writes it in a path fragment: between the quotes the path used
    (``'`` for dot notation), with nothing escaped (Jayway's ``Utils.join``)."""
    return f"[{quote}{name}{quote}]"


# --------------------------------------------------------------------------------------------
# Compiled steps
# --------------------------------------------------------------------------------------------


class _Prop(msgspec.Struct, frozen=True):
    """``.name`` / ``['a']`` / ``['a','b']``; ``quote`` is the quote the bracket used."""

    names: tuple[str, ...]
    quote: str = "'"

    def fragment(self) -> str:
        return "[" + ",".join(_quote(n, self.quote)[1:-1] for n in self.names) + "]"


class _Index(msgspec.Struct, frozen=True):
    """``[n]`` / ``[n,m]`` (negative counts from the end)."""

    indices: tuple[int, ...]

    def fragment(self) -> str:
        return "[" + ",".join(map(str, self.indices)) + "]"


class _Slice(msgspec.Struct, frozen=True):
    """``[a:b]`` with either bound optional."""

    start: int | None
    end: int | None


class _Wildcard(msgspec.Struct, frozen=True):
    """``*`` / ``[*]``."""


class _Filter(msgspec.Struct, frozen=True):
    """``[?(expr)]``."""

    expr: _Expr


class _Scan(msgspec.Struct, frozen=True):
    """``..step``: apply ``step`` to the node and every descendant."""

    step: _Step


_Step = _Prop | _Index | _Slice | _Wildcard | _Filter | _Scan


def _is_definite_step(step: _Step, leaf: bool) -> bool:
    if isinstance(step, _Prop):
        return len(step.names) == 1 or leaf
    if isinstance(step, _Index):
        return len(step.indices) == 1
    return False


# --------------------------------------------------------------------------------------------
# Filter expressions (Jayway inline predicates)
# --------------------------------------------------------------------------------------------


class _Operand(msgspec.Struct, frozen=True):
    """A value in a filter: a literal, ``@...`` (current node) or ``$...`` (document root)."""

    literal: Any = None
    root: str = ""  # "" (a literal), "@" or "$"
    steps: tuple[_Step, ...] = ()

    def value(self, current: JSON, root: JSON) -> JSON:
        """The operand's value, or ``_MISSING`` when its path does not resolve."""
        if not self.root:
            return self.literal
        start = current if self.root == "@" else root
        if _steps_definite(self.steps):
            return _walk_definite(start, self.steps)
        return list(_walk(start, self.steps, 0, root))


@final
class _Regex:
    """The right side of ``=~``: ``/pattern/flags``, matched in linear time by RE2 (issue 11).

    Jayway matches with ``java.util.regex`` (a backtracking engine: ``/(a+)+b/`` on 30
    characters never ends). RE2 accepts the same syntax for everything but backreferences,
    lookaround, possessive and atomic groups and the ``x`` flag; a pattern that needs one of
    those (valid for Java, so AWS accepts the definition) fails the state at run time with
    ``States.Runtime`` instead of risking an exponential match. ``compiled`` is ``None`` then
    and ``unsupported`` says why.
    """

    __slots__ = ("compiled", "source", "unsupported")

    def __init__(self, source: str, compiled: Any, unsupported: str) -> None:
        self.source = source
        self.compiled = compiled
        self.unsupported = unsupported

    def fullmatch(self, value: str) -> bool:
        """Jayway ``=~``: the whole string matches (``Matcher.matches()``).

        Raises:
            StatesError: ``States.Runtime`` when RE2 cannot run the pattern.
        """
        if self.compiled is None:
            raise StatesError(
                "States.Runtime",
                f"The regular expression {self.source} in a JSONPath filter cannot be "
                f"evaluated: {self.unsupported}. Regular expressions are matched in linear "
                "time, without backreferences, lookaround, possessive or atomic groups.",
            )
        try:
            return self.compiled.fullmatch(value) is not None
        except UnicodeEncodeError:  # lone surrogates: RE2 matches UTF-8 text
            text = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return self.compiled.fullmatch(text) is not None


_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is reported by the exception, not on stderr
_REGEX_FLAGS: Final = {"i": re.I, "m": re.M, "s": re.S, "x": re.X}


def _compile_regex(pattern: str, flags: str) -> _Regex:
    """Compile ``/pattern/flags`` with RE2; a pattern RE2 rejects but Python's backtracking
    engine (standing in for Java's) accepts compiles to an unsupported :class:`_Regex`.

    Raises:
        ValueError: neither engine accepts the pattern (a definition error).
    """
    source = f"/{pattern}/{flags}"
    inline = "".join(sorted(set(flags)))
    try:
        if "x" in inline:
            raise re2.error("the 'x' flag (comments) is not supported")
        text = f"(?{inline}){pattern}" if inline else pattern
        return _Regex(source, re2.compile(text, _RE2_OPTIONS), "")
    except re2.error as exc:
        reason = exc.args[0] if exc.args else str(exc)
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        python_flags = 0
        for flag in flags:
            python_flags |= _REGEX_FLAGS[flag]
        try:
            re.compile(pattern, python_flags)
        except re.error as invalid:
            raise ValueError(str(invalid)) from None
        return _Regex(source, None, str(reason))


class _Compare(msgspec.Struct, frozen=True):
    left: _Operand
    op: str
    right: _Operand | None


class _Logic(msgspec.Struct, frozen=True):
    op: str  # "&&", "||" or "!"
    parts: tuple[_Expr, ...]


_Expr = _Compare | _Logic


def _steps_definite(steps: tuple[_Step, ...]) -> bool:
    last = len(steps) - 1
    return all(_is_definite_step(s, i == last) for i, s in enumerate(steps))


def _walk_definite(node: JSON, steps: tuple[_Step, ...]) -> JSON:
    """Follow definite steps; ``_MISSING`` when any step fails (filters never raise)."""
    for step in steps:
        if isinstance(step, _Prop):
            if not isinstance(node, dict):
                return _MISSING
            if len(step.names) > 1:
                return {n: node[n] for n in step.names if n in node}
            node = node.get(step.names[0], _MISSING)
            if node is _MISSING:
                return _MISSING
        else:
            assert isinstance(step, _Index)
            index = step.indices[0]
            if not isinstance(node, list) or not -len(node) <= index < len(node):
                return _MISSING
            node = node[index]
    return node


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(value: JSON) -> float | int | None:
    if _is_number(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return None if math.isnan(number) or math.isinf(number) else number
    return None


def _equal(left: JSON, right: JSON) -> bool:
    """Jayway ``==``: a number equals a string holding the same number; bools are not numbers."""
    if _is_number(left) or _is_number(right):
        a, b = _as_number(left), _as_number(right)
        return a is not None and b is not None and a == b
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return type(left) is type(right) and bool(left == right)


def _order(left: JSON, right: JSON, op: str) -> bool:
    if _is_number(left) and _is_number(right):
        pair: tuple[Any, Any] = (left, right)
    elif isinstance(left, str) and isinstance(right, str):
        pair = (left, right)
    else:
        return False
    a, b = pair
    match op:
        case "<":
            return bool(a < b)
        case "<=":
            return bool(a <= b)
        case ">":
            return bool(a > b)
        case _:
            return bool(a >= b)


def _contains(container: JSON, item: JSON) -> bool:
    return isinstance(container, list) and any(_equal(v, item) for v in container)


def _test(expr: _Expr, current: JSON, root: JSON) -> bool:
    if isinstance(expr, _Logic):
        if expr.op == "!":
            return not _test(expr.parts[0], current, root)
        if expr.op == "&&":
            return all(_test(p, current, root) for p in expr.parts)
        return any(_test(p, current, root) for p in expr.parts)
    left = expr.left.value(current, root)
    if expr.op == "exists":
        if _steps_definite(expr.left.steps):
            return left is not _MISSING
        return bool(left)  # an indefinite path exists when it matched something
    assert expr.right is not None
    right = expr.right.value(current, root)
    if left is _MISSING or right is _MISSING:
        return False
    return _relate(expr.op, left, right)


def _relate(op: str, left: JSON, right: JSON) -> bool:
    match op:
        case "==":
            return _equal(left, right)
        case "!=":
            return not _equal(left, right)
        case "<" | "<=" | ">" | ">=":
            return _order(left, right, op)
        case "=~":
            return isinstance(left, str) and isinstance(right, _Regex) and right.fullmatch(left)
        case "in":
            return _contains(right, left)
        case "nin":
            return isinstance(right, list) and not _contains(right, left)
        case "subsetof":
            return isinstance(left, list) and all(_contains(right, v) for v in left)
        case "anyof":
            return isinstance(left, list) and any(_contains(right, v) for v in left)
        case "noneof":
            return isinstance(left, list) and not any(_contains(right, v) for v in left)
        case "contains":
            if isinstance(left, str):
                return isinstance(right, str) and right in left
            return _contains(left, right)
        case "size":
            return isinstance(left, list | str) and _is_number(right) and len(left) == right
        case "empty":
            return isinstance(left, list | str) and isinstance(right, bool) and (not left) == right
        case _:
            return False


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _children(node: JSON) -> Iterator[JSON]:
    if isinstance(node, dict):
        yield from node.values()
    elif isinstance(node, list):
        yield from node


def _apply(step: _Step, node: JSON, root: JSON, leaf: bool) -> Iterator[JSON]:
    """The matches of one step on one node, in Jayway's order (indefinite evaluation)."""
    if isinstance(step, _Prop):
        if isinstance(node, dict):
            if len(step.names) > 1 and leaf:
                yield {n: node[n] for n in step.names if n in node}
            else:
                yield from (node[n] for n in step.names if n in node)
    elif isinstance(step, _Index):
        if isinstance(node, list):
            size = len(node)
            yield from (node[i] for i in step.indices if -size <= i < size)
    elif isinstance(step, _Slice):
        if isinstance(node, list):
            yield from node[step.start : step.end]
    elif isinstance(step, _Wildcard):
        yield from _children(node)
    elif isinstance(step, _Filter):
        if isinstance(node, list):
            yield from (v for v in node if _test(step.expr, v, root))
        elif isinstance(node, dict) and _test(step.expr, node, root):
            yield node
    else:
        yield from _scan(step.step, node, root, leaf)


def _scan(step: _Step, node: JSON, root: JSON, leaf: bool) -> Iterator[JSON]:
    """``..step``: ``step`` applied to ``node`` and to every descendant, parents before
    children, with an explicit stack (issue 11: the input chooses the depth)."""
    if isinstance(step, _Wildcard):
        # ``..*``: every descendant, parents before children.
        stack = [_children(node)]
        while stack:
            child = next(stack[-1], _MISSING)
            if child is _MISSING:
                stack.pop()
                continue
            yield child
            if isinstance(child, dict | list):
                stack.append(_children(child))
        return
    stack = [iter((node,))]
    while stack:
        current = next(stack[-1], _MISSING)
        if current is _MISSING:
            stack.pop()
            continue
        if isinstance(current, dict | list):
            yield from _apply(step, current, root, leaf)
            stack.append(_children(current))


def _walk(node: JSON, steps: tuple[_Step, ...], position: int, root: JSON) -> Iterator[JSON]:
    """The matches of ``steps[position:]`` from ``node``, depth first, without recursion."""
    last = len(steps)
    if position == last:
        yield node
        return
    stack = [_apply(steps[position], node, root, position == last - 1)]
    while stack:
        match = next(stack[-1], _MISSING)
        if match is _MISSING:
            stack.pop()
            continue
        applied = position + len(stack)  # how many steps ``match`` has gone through
        if applied == last:
            yield match
        else:
            stack.append(_apply(steps[applied], match, root, applied == last - 1))


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------

_VARIABLE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INT: Final = re.compile(r"\s*(-?[0-9]+)\s*")
_NAME_STOP: Final = frozenset(".[()") | frozenset(" \t\r\n")
_FILTER_STOP: Final = frozenset(" \t\r\n()=!<>&|,]")
_OPERATORS: Final = (
    "==", "!=", "<=", ">=", "=~", "<", ">",
    "subsetof", "noneof", "anyof", "contains", "empty", "size", "nin", "in",
)  # fmt: skip
_FUNCTIONS: Final = frozenset({"length"})
#: How deep filters, parentheses and ``!`` may nest in one path (the parser and the filter
#: evaluation recurse on it; issue 11). Jayway sets no limit; real paths nest two or three deep.
MAX_FILTER_NESTING: Final = 32


@final
class _Parser:
    """Recursive descent over one path text; ``pos`` indexes ``text``."""

    def __init__(self, text: str, pos: int) -> None:
        self.text = text
        self.pos = pos
        self.depth = 0

    def enter(self) -> None:
        """One level deeper into a filter, parenthesis or ``!`` (bounded: see
        :data:`MAX_FILTER_NESTING`); :meth:`leave` undoes it."""
        self.depth += 1
        if self.depth > MAX_FILTER_NESTING:
            raise self.fail(f"filter expressions nest at most {MAX_FILTER_NESTING} deep")

    def leave(self) -> None:
        self.depth -= 1

    def fail(self, why: str) -> PathSyntaxError:
        return PathSyntaxError(f"Invalid JSONPath '{self.text}': {why} at position {self.pos}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def steps(self, stop: frozenset[str]) -> tuple[tuple[_Step, ...], str | None]:
        """Steps until the end of text or a ``stop`` character; returns (steps, function name)."""
        steps: list[_Step] = []
        names_stop = _NAME_STOP | stop
        while self.pos < len(self.text) and self.text[self.pos] not in stop:
            char = self.text[self.pos]
            if char == "[":
                steps.append(self.bracket())
            elif char == ".":
                if self.peek(2) == "..":
                    self.pos += 2
                    if self.peek() == "[":
                        steps.append(_Scan(self.bracket()))
                    elif self.peek() == "*":
                        self.pos += 1
                        steps.append(_Scan(_Wildcard()))
                    else:
                        steps.append(_Scan(_Prop((self.name(names_stop),))))
                    continue
                self.pos += 1
                if self.peek() == "*":
                    self.pos += 1
                    steps.append(_Wildcard())
                    continue
                name = self.name(names_stop)
                if self.peek() == "(":
                    if name not in _FUNCTIONS or self.peek(2) != "()":
                        raise self.fail(f"unknown function '{name}'")
                    self.pos += 2
                    return tuple(steps), name
                steps.append(_Prop((name,)))
            else:
                raise self.fail(f"unexpected character {char!r}")
        return tuple(steps), None

    def name(self, stop: frozenset[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in stop:
            self.pos += 1
        if self.pos == start:
            raise self.fail("expected a property name")
        return self.text[start : self.pos]

    def quoted(self) -> str:
        """A quoted name or string literal, as Jayway reads it: the text up to the first
        unescaped quote of the kind that opened it (the other kind is an ordinary character),
        then :func:`_unescape`."""
        quote = self.text[self.pos]
        self.pos += 1
        start = self.pos
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
                continue
            if char == quote:
                raw = self.text[start : self.pos]
                self.pos += 1
                try:
                    return _unescape(raw)
                except ValueError as exc:
                    raise self.fail(str(exc)) from None
            self.pos += 1
        raise self.fail("unterminated string")

    def bracket(self) -> _Step:
        self.pos += 1  # "["
        self.skip_ws()
        if self.peek() == "*":
            self.pos += 1
            step: _Step = _Wildcard()
        elif self.peek(2) == "?(":
            self.pos += 2
            self.enter()
            expr = self.expr()
            self.leave()
            self.skip_ws()
            if self.peek() != ")":
                raise self.fail("expected ')' closing the filter")
            self.pos += 1
            step = _Filter(expr)
        elif self.peek() in ("'", '"'):
            quote = self.peek()
            names = [self.quoted()]
            self.skip_ws()
            while self.peek() == ",":
                self.pos += 1
                self.skip_ws()
                if self.peek() not in ("'", '"'):
                    raise self.fail("expected a quoted property name")
                names.append(self.quoted())
                self.skip_ws()
            step = _Prop(tuple(names), quote)
        else:
            end = self.text.find("]", self.pos)
            if end < 0:
                raise self.fail("unterminated '['")
            step = self.indices(self.text[self.pos : end])
            self.pos = end
        self.skip_ws()
        if self.peek() != "]":
            raise self.fail("expected ']'")
        self.pos += 1
        return step

    def indices(self, body: str) -> _Step:
        if ":" in body:
            parts = body.split(":")
            if len(parts) != 2:
                raise self.fail("slices take at most two bounds")
            bounds: list[int | None] = []
            for part in parts:
                if not part.strip():
                    bounds.append(None)
                elif match := _INT.fullmatch(part):
                    bounds.append(int(match.group(1)))
                else:
                    raise self.fail(f"invalid slice bound {part!r}")
            return _Slice(bounds[0], bounds[1])
        indices: list[int] = []
        for part in body.split(","):
            match = _INT.fullmatch(part)
            if not match:
                raise self.fail(f"invalid array index {part.strip()!r}")
            indices.append(int(match.group(1)))
        return _Index(tuple(indices))

    # Filter expressions ---------------------------------------------------------------------

    def expr(self) -> _Expr:
        parts = [self.conjunction()]
        self.skip_ws()
        while self.peek(2) == "||":
            self.pos += 2
            parts.append(self.conjunction())
            self.skip_ws()
        return parts[0] if len(parts) == 1 else _Logic("||", tuple(parts))

    def conjunction(self) -> _Expr:
        parts = [self.unary()]
        self.skip_ws()
        while self.peek(2) == "&&":
            self.pos += 2
            parts.append(self.unary())
            self.skip_ws()
        return parts[0] if len(parts) == 1 else _Logic("&&", tuple(parts))

    def unary(self) -> _Expr:
        self.skip_ws()
        if self.peek() == "!" and self.peek(2) != "!=":
            self.pos += 1
            self.enter()
            negated = self.unary()
            self.leave()
            return _Logic("!", (negated,))
        if self.peek() == "(":
            self.pos += 1
            self.enter()
            inner = self.expr()
            self.leave()
            self.skip_ws()
            if self.peek() != ")":
                raise self.fail("expected ')'")
            self.pos += 1
            return inner
        left = self.operand()
        self.skip_ws()
        for op in _OPERATORS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                self.skip_ws()
                right = self.regex() if op == "=~" else self.operand()
                return _Compare(left, op, right)
        if not left.root:
            raise self.fail("a literal cannot stand alone in a filter")
        return _Compare(left, "exists", None)

    def regex(self) -> _Operand:
        if self.peek() != "/":
            raise self.fail("expected a /regex/")
        end = self.pos + 1
        while end < len(self.text) and self.text[end] != "/":
            end += 2 if self.text[end] == "\\" else 1
        if end >= len(self.text):
            raise self.fail("unterminated regex")
        pattern = self.text[self.pos + 1 : end]
        self.pos = end + 1
        start = self.pos
        while self.peek() in _REGEX_FLAGS and self.peek():
            self.pos += 1
        try:
            return _Operand(literal=_compile_regex(pattern, self.text[start : self.pos]))
        except ValueError as exc:
            raise self.fail(f"invalid regex: {exc}") from None

    def operand(self) -> _Operand:
        self.skip_ws()
        char = self.peek()
        if char in ("@", "$"):
            self.pos += 1
            steps, function = self.steps(_FILTER_STOP)
            if function:
                raise self.fail("functions are not supported inside filters")
            return _Operand(root=char, steps=steps)
        if char in ("'", '"'):
            return _Operand(literal=self.quoted())
        if char == "[":
            self.enter()
            items = self.json_array()
            self.leave()
            return _Operand(literal=items)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return _Operand(literal=value)
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            number = json.loads(match.group())
            return _Operand(literal=number)
        raise self.fail("expected a value")

    def json_array(self) -> list[JSON]:
        self.pos += 1
        items: list[JSON] = []
        self.skip_ws()
        if self.peek() == "]":
            self.pos += 1
            return items
        while True:
            item = self.operand()
            if item.root:
                raise self.fail("paths are not allowed inside an array literal")
            items.append(item.literal)
            self.skip_ws()
            if self.peek() == "]":
                self.pos += 1
                return items
            if self.peek() != ",":
                raise self.fail("expected ',' or ']'")
            self.pos += 1


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@final
class Path:
    """A compiled JSONPath (ASL "Paths"). Build with :meth:`compile`; immutable.

    Attributes:
        text: the path as written.
        is_reference: a Reference Path (only ``.name``, ``['name']``, ``[n]`` steps).
        is_context: starts with ``$$``: evaluated against the context object.
        variable: the workflow variable name for ``$name...`` paths, else ``None``.
        is_definite: yields one value (or raises); otherwise yields a list of matches.
    """

    __slots__ = ("_function", "_keys", "_steps", "is_context", "is_definite", "is_reference",
                 "text", "variable")  # fmt: skip

    text: str
    is_reference: bool
    is_context: bool
    variable: str | None
    is_definite: bool
    _steps: tuple[_Step, ...]
    _function: str | None
    _keys: tuple[str | int, ...] | None

    def __init__(self) -> None:
        raise TypeError("use Path.compile(text)")

    @classmethod
    def compile(cls, text: str) -> Path:
        """Compile a path text; raises :class:`PathSyntaxError` when it is malformed."""
        if not isinstance(text, str) or not text.startswith("$"):
            raise PathSyntaxError(f"Invalid JSONPath '{text}': a path must start with '$'")
        variable: str | None = None
        if text.startswith("$$"):
            start = 2
        elif match := _VARIABLE.match(text, 1):
            variable = match.group()
            start = match.end()
        else:
            start = 1
        parser = _Parser(text, start)
        steps, function = parser.steps(frozenset())
        if parser.pos != len(text):
            raise parser.fail("unexpected trailing text")
        self = object.__new__(cls)
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "variable", variable)
        object.__setattr__(self, "is_context", text.startswith("$$"))
        object.__setattr__(self, "_steps", steps)
        object.__setattr__(self, "_function", function)
        object.__setattr__(self, "is_definite", _steps_definite(steps))
        reference = function is None and all(
            (isinstance(s, _Prop) and len(s.names) == 1)
            or (isinstance(s, _Index) and len(s.indices) == 1)
            for s in steps
        )
        object.__setattr__(self, "is_reference", reference)
        keys: tuple[str | int, ...] | None = None
        if reference:  # the hot path: plain lookups, no bookkeeping for error messages
            keys = tuple(s.names[0] if isinstance(s, _Prop) else s.indices[0] for s in steps)  # type: ignore[union-attr]
        object.__setattr__(self, "_keys", keys)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Path is immutable")

    def __repr__(self) -> str:
        return f"Path({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Path) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def root(self, data: JSON, scope: Scope | None = None) -> JSON:
        """The document this path reads: the input, the context object or the variable.

        Raises:
            PathNotFound: the path names a workflow variable that is not defined.
        """
        if self.is_context:
            return {} if scope is None else scope.context
        if self.variable is not None:
            variables: Mapping[str, JSON] = {} if scope is None else scope.variables
            if self.variable not in variables:
                raise PathNotFound(self.text, f"The variable '${self.variable}' is not defined")
            return variables[self.variable]
        return data

    def evaluate(self, data: JSON, scope: Scope | None = None) -> JSON:
        """Select from ``data`` (or the context object / a variable).

        Returns the value for a definite path, the list of matches otherwise.

        Raises:
            PathNotFound: a definite path does not resolve.
        """
        document = self.root(data, scope)
        steps: tuple[_Step, ...] = self._steps
        keys = self._keys
        if keys is not None:
            node = document
            for key in keys:
                if isinstance(key, str):
                    if isinstance(node, dict) and key in node:
                        node = node[key]
                        continue
                elif isinstance(node, list) and -len(node) <= key < len(node):
                    node = node[key]
                    continue
                return self._definite(document)  # raises PathNotFound with Jayway's detail
            result = node
        elif self.is_definite:
            result = self._definite(document)
        else:
            result = list(_walk(document, steps, 0, document))
        if self._function == "length":
            if isinstance(result, list | dict | str):
                return len(result)
            raise PathNotFound(
                self.text, "Aggregation function attempted to calculate value using empty array"
            )
        return result

    def _definite(self, node: JSON) -> JSON:
        """Definite evaluation with Jayway's error details."""
        steps: tuple[_Step, ...] = self._steps
        current = "$"
        last = len(steps) - 1
        for position, step in enumerate(steps):
            if isinstance(step, _Prop):
                if not isinstance(node, dict):
                    raise PathNotFound(
                        self.text,
                        f"Expected to find an object with property {step.fragment()} in path "
                        f"{current} but found '{_java_class(node)}'. This is not a json object "
                        f"according to the JsonProvider: '{_PROVIDER}'.",
                    )
                if len(step.names) > 1:  # a multi-name leaf merges the present properties
                    return {n: node[n] for n in step.names if n in node}
                name = step.names[0]
                current += _quote(name, step.quote)
                if name not in node:
                    if position == last:
                        raise PathNotFound(self.text, f"No results for path: {current}")
                    raise PathNotFound(self.text, f"Missing property in path {current}")
                node = node[name]
            else:
                assert isinstance(step, _Index)
                if node is None:
                    raise PathNotFound(self.text, f"The path {current} is null")
                if not isinstance(node, list):
                    raise PathNotFound(
                        self.text,
                        f"Filter: {step.fragment()} can only be applied to arrays. "
                        f"Current context is: {java_string(node)}",
                    )
                index = step.indices[0]
                current += step.fragment()
                if not -len(node) <= index < len(node):
                    raise PathNotFound(self.text, f"No results for path: {current}")
                node = node[index]
        return node


def _set(node: JSON, steps: tuple[_Step, ...], value: JSON) -> JSON:
    """A copy of ``node`` with ``value`` at ``steps``; copies only the spine. Raises KeyError.

    Missing objects on the way are created. Iterative: a path of any length is fine."""
    spine: list[tuple[JSON, str | int]] = []
    last = len(steps) - 1
    for position, step in enumerate(steps):
        if isinstance(step, _Prop):
            name = step.names[0]
            if not isinstance(node, dict):
                raise KeyError(name)
            spine.append((node, name))
            node = node.get(name, {} if position < last else None)
        else:
            assert isinstance(step, _Index)
            index = step.indices[0]
            if not isinstance(node, list) or not -len(node) <= index < len(node):
                raise KeyError(index)
            spine.append((node, index))
            node = node[index]
    result = value
    for container, key in reversed(spine):
        updated: Any = dict(container) if isinstance(container, dict) else list(container)
        updated[key] = result
        result = updated
    return result


def apply_result_path(path: Path | None, data: JSON, result: JSON) -> JSON:
    """ASL ResultPath: where a state's result goes in its input.

    ``None`` (``"ResultPath": null``) discards the result and returns ``data``; ``$`` returns the
    result; otherwise a copy of ``data`` with the result at the path, creating missing
    intermediate objects. Neither argument is mutated.

    Raises:
        ValueError: ``path`` is not a reference path on the input (a definition bug).
        StatesError: ``States.ResultPathMatchFailure`` when the path cannot be applied (the
            input or an intermediate node is not an object, or an index is out of range).
    """
    if path is None:
        return data
    if not path.is_reference or path.is_context or path.variable is not None:
        raise ValueError(f"ResultPath must be a reference path on the input: {path.text}")
    steps: tuple[_Step, ...] = path._steps
    try:
        return _set(data, steps, result)
    except KeyError:
        raise StatesError(
            "States.ResultPathMatchFailure",
            f"Unable to apply ReferencePath {path.text} to input {compact_json(data)}",
        ) from None
