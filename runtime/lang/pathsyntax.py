"""JSONPath syntax: the compiled form of a path and the parser that builds it.

Responsibility: parse a path text, as Jayway JsonPath reads it, into a tuple of immutable
steps (:data:`Step`: ``.name``/``['a','b']``, ``[n]``, slices, ``*``, filters, ``..``) and
filter expressions (:data:`Expr`); :func:`steps_definite` tells a definite path from an
indefinite one. :class:`~runtime.lang.paths.Path` wraps the result; evaluation lives in
:mod:`runtime.lang.patheval`.

Budgets (issue 11): filters, parentheses and ``!`` nest at most :data:`MAX_FILTER_NESTING`
deep (the parser and the filter evaluation recurse on that nesting, never on the input).
This module imports only the standard library, msgspec and :mod:`runtime.lang.pathregex`.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, Final, final

import msgspec

from runtime.lang.pathregex import REGEX_FLAGS, compile_regex

__all__ = [
    "MAX_FILTER_NESTING",
    "Compare",
    "Expr",
    "Filter",
    "Index",
    "Logic",
    "Operand",
    "Parser",
    "PathSyntaxError",
    "Prop",
    "Scan",
    "Slice",
    "Step",
    "Wildcard",
    "quote_name",
    "steps_definite",
]

JSON = Any


class PathSyntaxError(ValueError):
    """A path text is not a valid JSONPath."""


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


def quote_name(name: str, quote: str = "'") -> str:
    """A name as Jayway writes it in a path fragment: between the quotes the path used
    (``'`` for dot notation), with nothing escaped (Jayway's ``Utils.join``)."""
    return f"[{quote}{name}{quote}]"


# --------------------------------------------------------------------------------------------
# Compiled steps
# --------------------------------------------------------------------------------------------


class Prop(msgspec.Struct, frozen=True):
    """``.name`` / ``['a']`` / ``['a','b']``; ``quote`` is the quote the bracket used."""

    names: tuple[str, ...]
    quote: str = "'"

    def fragment(self) -> str:
        return "[" + ",".join(quote_name(n, self.quote)[1:-1] for n in self.names) + "]"


class Index(msgspec.Struct, frozen=True):
    """``[n]`` / ``[n,m]`` (negative counts from the end)."""

    indices: tuple[int, ...]

    def fragment(self) -> str:
        return "[" + ",".join(map(str, self.indices)) + "]"


class Slice(msgspec.Struct, frozen=True):
    """``[a:b]`` with either bound optional."""

    start: int | None
    end: int | None


class Wildcard(msgspec.Struct, frozen=True):
    """``*`` / ``[*]``."""


class Filter(msgspec.Struct, frozen=True):
    """``[?(expr)]``."""

    expr: Expr


class Scan(msgspec.Struct, frozen=True):
    """``..step``: apply ``step`` to the node and every descendant."""

    step: Step


Step = Prop | Index | Slice | Wildcard | Filter | Scan


def _is_definite_step(step: Step, leaf: bool) -> bool:
    if isinstance(step, Prop):
        return len(step.names) == 1 or leaf
    if isinstance(step, Index):
        return len(step.indices) == 1
    return False


# --------------------------------------------------------------------------------------------
# Filter expressions (Jayway inline predicates)
# --------------------------------------------------------------------------------------------


class Operand(msgspec.Struct, frozen=True):
    """A value in a filter: a literal, ``@...`` (current node) or ``$...`` (document root)."""

    literal: Any = None
    root: str = ""  # "" (a literal), "@" or "$"
    steps: tuple[Step, ...] = ()


class Compare(msgspec.Struct, frozen=True):
    left: Operand
    op: str
    right: Operand | None


class Logic(msgspec.Struct, frozen=True):
    op: str  # "&&", "||" or "!"
    parts: tuple[Expr, ...]


Expr = Compare | Logic


def steps_definite(steps: tuple[Step, ...]) -> bool:
    last = len(steps) - 1
    return all(_is_definite_step(s, i == last) for i, s in enumerate(steps))


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------

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
class Parser:
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

    def steps(self, stop: frozenset[str]) -> tuple[tuple[Step, ...], str | None]:
        """Steps until the end of text or a ``stop`` character; returns (steps, function name)."""
        steps: list[Step] = []
        names_stop = _NAME_STOP | stop
        while self.pos < len(self.text) and self.text[self.pos] not in stop:
            char = self.text[self.pos]
            if char == "[":
                steps.append(self.bracket())
            elif char == ".":
                if self.peek(2) == "..":
                    self.pos += 2
                    if self.peek() == "[":
                        steps.append(Scan(self.bracket()))
                    elif self.peek() == "*":
                        self.pos += 1
                        steps.append(Scan(Wildcard()))
                    else:
                        steps.append(Scan(Prop((self.name(names_stop),))))
                    continue
                self.pos += 1
                if self.peek() == "*":
                    self.pos += 1
                    steps.append(Wildcard())
                    continue
                if self.peek() == "[":
                    # Jayway reads the token after a single '.' afresh, so '.' may precede
                    # bracket notation: AWS's own example of a name with a space is
                    # "$.abc.['def ghi']" (Step Functions guide, "Using JSONPath paths").
                    steps.append(self.bracket())
                    continue
                name = self.name(names_stop)
                if self.peek() == "(":
                    if name not in _FUNCTIONS or self.peek(2) != "()":
                        raise self.fail(f"unknown function '{name}'")
                    self.pos += 2
                    return tuple(steps), name
                steps.append(Prop((name,)))
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

    def bracket(self) -> Step:
        self.pos += 1  # "["
        self.skip_ws()
        if self.peek() == "*":
            self.pos += 1
            step: Step = Wildcard()
        elif self.peek(2) == "?(":
            self.pos += 2
            self.enter()
            expr = self.expr()
            self.leave()
            self.skip_ws()
            if self.peek() != ")":
                raise self.fail("expected ')' closing the filter")
            self.pos += 1
            step = Filter(expr)
        elif self.peek() in ("'", '"'):
            quote = self.peek()
            names = [self.quoted()]
            self.skip_ws()
            while self.peek() == ",":
                self.pos += 1
                self.skip_ws()
                if self.peek() != quote:
                    # Jayway closes names only on the quote that opened the bracket: in
                    # ['a',"b"] the second name is never read and the comma is left empty.
                    raise self.fail(f"expected a property name quoted with {quote}")
                names.append(self.quoted())
                self.skip_ws()
            step = Prop(tuple(names), quote)
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

    def indices(self, body: str) -> Step:
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
            return Slice(bounds[0], bounds[1])
        indices: list[int] = []
        for part in body.split(","):
            match = _INT.fullmatch(part)
            if not match:
                raise self.fail(f"invalid array index {part.strip()!r}")
            indices.append(int(match.group(1)))
        return Index(tuple(indices))

    # Filter expressions ---------------------------------------------------------------------

    def expr(self) -> Expr:
        parts = [self.conjunction()]
        self.skip_ws()
        while self.peek(2) == "||":
            self.pos += 2
            parts.append(self.conjunction())
            self.skip_ws()
        return parts[0] if len(parts) == 1 else Logic("||", tuple(parts))

    def conjunction(self) -> Expr:
        parts = [self.unary()]
        self.skip_ws()
        while self.peek(2) == "&&":
            self.pos += 2
            parts.append(self.unary())
            self.skip_ws()
        return parts[0] if len(parts) == 1 else Logic("&&", tuple(parts))

    def unary(self) -> Expr:
        self.skip_ws()
        if self.peek() == "!" and self.peek(2) != "!=":
            self.pos += 1
            self.enter()
            negated = self.unary()
            self.leave()
            return Logic("!", (negated,))
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
                return Compare(left, op, right)
        if not left.root:
            raise self.fail("a literal cannot stand alone in a filter")
        return Compare(left, "exists", None)

    def regex(self) -> Operand:
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
        while self.peek() in REGEX_FLAGS and self.peek():
            self.pos += 1
        try:
            return Operand(literal=compile_regex(pattern, self.text[start : self.pos]))
        except ValueError as exc:
            raise self.fail(f"invalid regex: {exc}") from None

    def operand(self) -> Operand:
        self.skip_ws()
        char = self.peek()
        if char in ("@", "$"):
            self.pos += 1
            steps, function = self.steps(_FILTER_STOP)
            if function:
                raise self.fail("functions are not supported inside filters")
            return Operand(root=char, steps=steps)
        if char in ("'", '"'):
            return Operand(literal=self.quoted())
        if char == "[":
            self.enter()
            items = self.json_array()
            self.leave()
            return Operand(literal=items)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return Operand(literal=value)
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            number = json.loads(match.group())
            return Operand(literal=number)
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
