"""The ``States.*`` intrinsic functions of JSONPath states: tokenizer, parser, typed function table.

Responsibility: compile an intrinsic call text (``States.Format('{}', $.a)``) once into an
immutable :class:`Intrinsic` and evaluate it against the state input and a :class:`Scope`.

Grammar (ASL "Intrinsic Functions"): ``States.Name(arg, ...)`` where an argument is a
single-quoted string literal (escapes ``\\'`` ``\\{`` ``\\}`` ``\\\\`` only), a number, ``true``,
``false``, ``null``, a path (``$.x``, ``$$.x``, ``$var.x``) or a nested call (at most
:data:`MAX_NESTING` deep). Argument counts are checked at compile time; argument types and
values at run time, failing with ``States.IntrinsicFailure``. A path argument that does not
resolve fails with ``States.Runtime``, like any other path.

Invariants: evaluation never mutates its input; ``States.UUID`` and unseeded
``States.MathRandom`` draw only from ``scope.entropy``. This module imports only the standard
library and msgspec.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Final, final

import msgspec

from runtime.errors import StatesError
from runtime.lang.jsontext import compact_json, java_string
from runtime.lang.paths import (
    JSON,
    Path,
    PathNotFound,
    PathSyntaxError,
)
from runtime.lang.scope import Entropy, Scope

__all__ = ["MAX_NESTING", "Intrinsic", "IntrinsicSyntaxError", "is_intrinsic"]

#: How deep intrinsic calls may nest inside one another (AWS: "up to 10").
MAX_NESTING: Final = 10
#: Longest string States.Base64Encode / Base64Decode / Hash accept.
MAX_INPUT_LENGTH: Final = 10_000
#: Most items States.ArrayRange may produce.
MAX_RANGE_ITEMS: Final = 1000
#: Longest string an intrinsic may build (States.Format): four times AWS's 256 KiB payload
#: limit, so no result that could fit a payload is refused, yet one call cannot take gigabytes.
MAX_RESULT_LENGTH: Final = 4 * 256 * 1024

FAILURE: Final = "States.IntrinsicFailure"


class IntrinsicSyntaxError(ValueError):
    """An intrinsic function call is malformed (a definition error)."""


_CALL_START: Final = re.compile(r"\s*States\.([A-Za-z0-9]+)\s*\(")
_LOOKS_LIKE: Final = re.compile(r"\s*States\.[A-Za-z0-9]+\s*\(.*\)\s*", re.DOTALL)
_NUMBER: Final = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_ESCAPABLE: Final = frozenset("'{}\\")


def is_intrinsic(text: str) -> bool:
    """Whether ``text`` looks like an intrinsic call ``States.Name(...)`` (not that it is valid)."""
    return isinstance(text, str) and _LOOKS_LIKE.fullmatch(text) is not None


# --------------------------------------------------------------------------------------------
# Compiled argument nodes
# --------------------------------------------------------------------------------------------


@final
class _Literal:
    """A number, ``true``, ``false``, ``null`` or a string literal.

    ``pieces`` is set for string literals: the text split at unescaped ``{}`` placeholders
    (States.Format treats escaped braces as plain text).
    """

    __slots__ = ("pieces", "value")

    def __init__(self, value: JSON, pieces: tuple[str, ...] | None = None) -> None:
        self.value = value
        self.pieces = pieces


@final
class _PathArg:
    __slots__ = ("path",)

    def __init__(self, path: Path) -> None:
        self.path = path


@final
class _Call:
    __slots__ = ("args", "function", "name", "text")

    def __init__(self, name: str, function: _Function, args: tuple[_Node, ...], text: str) -> None:
        self.name = name
        self.function = function
        self.args = args
        self.text = text


_Node = _Literal | _PathArg | _Call


@final
class _Env:
    """What one evaluation needs: the input, the scope and the field for path messages."""

    __slots__ = ("data", "field", "scope")

    def __init__(self, data: JSON, scope: Scope, field: str | None) -> None:
        self.data = data
        self.scope = scope
        self.field = field


def _evaluate(node: _Node, env: _Env) -> JSON:
    if isinstance(node, _Literal):
        return node.value
    if isinstance(node, _PathArg):
        try:
            return node.path.evaluate(env.data, env.scope)
        except PathNotFound:
            raise _path_not_found(node.path, env) from None
    values = [_evaluate(arg, env) for arg in node.args]
    return node.function.body(node, values, env)


def _path_not_found(path: Path, env: _Env) -> StatesError:
    try:
        document = env.data if path.variable is not None else path.root(env.data, env.scope)
        shown = compact_json(document)
    except (TypeError, ValueError):  # not JSON-serialisable: show Java's rendering instead
        shown = java_string(env.data)
    where = f" specified for the field '{env.field}'" if env.field else ""
    return StatesError(
        "States.Runtime",
        f"The JSONPath '{path.text}'{where} could not be found in the input '{shown}'",
    )


# --------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------


def _fail(call: _Call, reason: str) -> StatesError:
    return StatesError(FAILURE, f"Invalid arguments in {call.name}: {reason}")


def _type_name(value: JSON) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case _:
            return "object"


def _ordinal(index: int) -> str:
    return ("first", "second", "third", "fourth")[index] if index < 4 else f"#{index + 1}"


def _expect(call: _Call, values: Sequence[JSON], index: int, kind: str) -> Any:
    value = values[index]
    if _type_name(value) != kind:
        raise _fail(
            call,
            f"the {_ordinal(index)} argument must be a {kind}, "
            f"but was a {_type_name(value)}: {compact_json(value)}",
        )
    return value


def _java_round(value: float) -> int:
    """Java ``Math.round``: half rounds up (towards positive infinity)."""
    return math.floor(value + 0.5) if isinstance(value, float) else int(value)


def _integer(call: _Call, values: Sequence[JSON], index: int) -> int:
    value = _expect(call, values, index, "number")
    if isinstance(value, float) and not value.is_integer():
        raise _fail(call, f"the {_ordinal(index)} argument must be an integer, but was {value}")
    return int(value)


def _rounded(call: _Call, values: Sequence[JSON], index: int) -> int:
    value = _expect(call, values, index, "number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(call, f"the {_ordinal(index)} argument must be a finite number")
    return _java_round(value)


def _sized_string(call: _Call, values: Sequence[JSON], index: int) -> str:
    value: str = _expect(call, values, index, "string")
    if len(value) > MAX_INPUT_LENGTH:
        raise _fail(
            call,
            f"the {_ordinal(index)} argument must be at most {MAX_INPUT_LENGTH} characters long",
        )
    return value


def _key(value: JSON) -> Any:
    """A hashable key under which equal JSON values collide (1 == 1.0, true != 1).

    Recursive, and so are the comparisons of the nested tuples it builds: a value nested past
    the recursion limit ends in the ``RecursionError`` that :meth:`Intrinsic.evaluate` turns
    into ``States.IntrinsicFailure``.
    """
    match value:
        case bool():
            return ("b", value)
        case int() | float():
            return ("n", value)
        case str():
            return ("s", value)
        case list():
            return ("a", tuple(_key(v) for v in value))
        case dict():
            return ("o", frozenset((k, _key(v)) for k, v in value.items()))
        case _:
            return ("z",)


# --------------------------------------------------------------------------------------------
# The functions
# --------------------------------------------------------------------------------------------

_Body = Callable[[_Call, list[JSON], _Env], JSON]


@final
class _Function:
    __slots__ = ("body", "max_args", "min_args")

    def __init__(self, body: _Body, min_args: int, max_args: int | None) -> None:
        self.body = body
        self.min_args = min_args
        self.max_args = max_args


def _format(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.Format: ``{}`` placeholders filled in order, values shown as Java does."""
    template = call.args[0]
    if isinstance(template, _Literal) and template.pieces is not None:
        pieces: Sequence[str] = template.pieces
    else:
        pieces = str(_expect(call, values, 0, "string")).split("{}")
    if len(pieces) - 1 != len(values) - 1:
        raise _fail(
            call,
            f"the format string has {len(pieces) - 1} placeholder(s) "
            f"but {len(values) - 1} value(s) were given",
        )
    out = [pieces[0]]
    size = len(pieces[0])
    for value, piece in zip(values[1:], pieces[1:], strict=True):
        shown = java_string(value)
        size += len(shown) + len(piece)
        if size > MAX_RESULT_LENGTH:
            raise _fail(call, f"the result would be longer than {MAX_RESULT_LENGTH} characters")
        out.append(shown)
        out.append(piece)
    return "".join(out)


_DECODER: Final = msgspec.json.Decoder()


#: The whitespace JSON allows around and between tokens (RFC 8259 section 2); Jackson, which
#: AWS parses with, refuses any other character there.
_JSON_WHITESPACE: Final = " \t\n\r"


def _string_to_json(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.StringToJson: parse a JSON text.

    Every value JSON allows is accepted (objects, arrays, strings with their escapes, numbers,
    ``true``, ``false``, ``null``), with JSON's whitespace around and between tokens. A text
    that holds no token at all (empty, or only whitespace) is ``null``: there is no content
    to bind, which Jackson's tree reader gives as no value (issue 15).
    """
    text: str = _expect(call, values, 0, "string")
    if not text.strip(_JSON_WHITESPACE):
        return None
    try:
        return _DECODER.decode(text.encode())
    except (msgspec.DecodeError, ValueError, OverflowError, RecursionError):
        # msgspec refuses depths past its limit with RecursionError (issue 11).
        raise _fail(call, f"the argument is not a valid JSON string: {text}") from None


def _json_to_string(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.JsonToString: compact JSON text of a value."""
    return compact_json(values[0])


def _array(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.Array: the arguments as an array."""
    return values


def _array_partition(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.ArrayPartition: chunks of ``size`` items, the last one possibly shorter."""
    items: list[JSON] = _expect(call, values, 0, "array")
    size = _integer(call, values, 1)
    if size <= 0:
        raise _fail(call, f"the chunk size must be a positive integer, but was {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]


def _array_contains(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.ArrayContains: whether the array holds a value equal to the second argument."""
    items: list[JSON] = _expect(call, values, 0, "array")
    wanted = _key(values[1])
    return any(_key(item) == wanted for item in items)


def _array_range(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.ArrayRange: ``start`` to ``end`` inclusive by ``step`` (at most 1000 items)."""
    start, end, step = (_integer(call, values, i) for i in range(3))
    if step == 0:
        raise _fail(call, "the step must not be 0")
    count = max(0, (end - start) // step + 1)
    if count > MAX_RANGE_ITEMS:
        raise _fail(call, f"the range would have {count} items; the maximum is {MAX_RANGE_ITEMS}")
    return [start + i * step for i in range(count)]


def _array_get_item(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.ArrayGetItem: the item at a zero-based index."""
    items: list[JSON] = _expect(call, values, 0, "array")
    index = _integer(call, values, 1)
    if not 0 <= index < len(items):
        raise _fail(call, f"the index {index} is out of bounds for an array of {len(items)} items")
    return items[index]


def _array_length(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.ArrayLength: the number of items."""
    return len(_expect(call, values, 0, "array"))


def _array_unique(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.ArrayUnique: the items without duplicates, first occurrences kept in order."""
    seen: set[Any] = set()
    out: list[JSON] = []
    for item in _expect(call, values, 0, "array"):
        key = _key(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _base64_encode(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.Base64Encode: base64 of the UTF-8 bytes of a string."""
    text = _sized_string(call, values, 0)
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


def _base64_decode(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.Base64Decode: a base64 string decoded as UTF-8 (bad bytes become U+FFFD)."""
    text = _sized_string(call, values, 0)
    padded = text + "=" * (-len(text) % 4)  # like Java's decoder, padding is optional
    try:
        raw = base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _fail(call, f"the argument is not a valid base64 string: {text}") from None
    return raw.decode("utf-8", "replace")


_HASHES: Final = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}


def _hash(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.Hash: hex digest of the UTF-8 bytes of a string with MD5 or SHA-1/256/384/512."""
    text = _sized_string(call, values, 0)
    algorithm: str = _expect(call, values, 1, "string")
    if algorithm not in _HASHES:
        raise _fail(
            call,
            f"the hashing algorithm must be one of {', '.join(_HASHES)}, but was {algorithm}",
        )
    return hashlib.new(_HASHES[algorithm], text.encode("utf-8", "surrogatepass")).hexdigest()


def _deep_merge(left: dict[str, JSON], right: dict[str, JSON]) -> dict[str, JSON]:
    merged = dict(left)
    for key, value in right.items():
        old = merged.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            merged[key] = _deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def _json_merge(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.JsonMerge: keys of the second object win; ``true`` merges nested objects too."""
    left: dict[str, JSON] = _expect(call, values, 0, "object")
    right: dict[str, JSON] = _expect(call, values, 1, "object")
    if _expect(call, values, 2, "boolean"):
        return _deep_merge(left, right)
    return {**left, **right}


def _math_random(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.MathRandom: an integer in [start, end); seeded when a third argument is given."""
    start, end = _rounded(call, values, 0), _rounded(call, values, 1)
    if start >= end:
        raise _fail(call, f"the start ({start}) must be less than the end ({end})")
    entropy = env.scope.entropy if len(values) < 3 else Entropy(_rounded(call, values, 2))
    return entropy.randint(start, end - 1)


def _math_add(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.MathAdd: the sum of two numbers, each first rounded to an integer like Java."""
    return _rounded(call, values, 0) + _rounded(call, values, 1)


def _string_split(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.StringSplit: split at any delimiter character; empty pieces are dropped."""
    text: str = _expect(call, values, 0, "string")
    delimiters: str = _expect(call, values, 1, "string")
    if not delimiters:
        return [text] if text else []
    pattern = "[" + re.escape(delimiters) + "]"
    return [piece for piece in re.split(pattern, text) if piece]


def _uuid(call: _Call, values: list[JSON], env: _Env) -> JSON:
    """States.UUID: a version-4 UUID drawn from the recorded entropy."""
    return env.scope.entropy.uuid4()


_FUNCTIONS: Final[dict[str, _Function]] = {
    "States.Format": _Function(_format, 1, None),
    "States.StringToJson": _Function(_string_to_json, 1, 1),
    "States.JsonToString": _Function(_json_to_string, 1, 1),
    "States.Array": _Function(_array, 0, None),
    "States.ArrayPartition": _Function(_array_partition, 2, 2),
    "States.ArrayContains": _Function(_array_contains, 2, 2),
    "States.ArrayRange": _Function(_array_range, 3, 3),
    "States.ArrayGetItem": _Function(_array_get_item, 2, 2),
    "States.ArrayLength": _Function(_array_length, 1, 1),
    "States.ArrayUnique": _Function(_array_unique, 1, 1),
    "States.Base64Encode": _Function(_base64_encode, 1, 1),
    "States.Base64Decode": _Function(_base64_decode, 1, 1),
    "States.Hash": _Function(_hash, 2, 2),
    "States.JsonMerge": _Function(_json_merge, 3, 3),
    "States.MathRandom": _Function(_math_random, 2, 3),
    "States.MathAdd": _Function(_math_add, 2, 2),
    "States.StringSplit": _Function(_string_split, 2, 2),
    "States.UUID": _Function(_uuid, 0, 0),
}


# --------------------------------------------------------------------------------------------
# Parser
# --------------------------------------------------------------------------------------------


@final
class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, why: str) -> IntrinsicSyntaxError:
        return IntrinsicSyntaxError(
            f"Invalid intrinsic function call '{self.text}': {why} (at position {self.pos})"
        )

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def call(self, depth: int) -> _Call:
        if depth > MAX_NESTING:
            raise self.fail(f"intrinsic functions nest at most {MAX_NESTING} deep")
        start = self.pos
        match = _CALL_START.match(self.text, self.pos)
        if not match:
            raise self.fail("expected States.<Function>(")
        name = "States." + match.group(1)
        function = _FUNCTIONS.get(name)
        if function is None:
            raise self.fail(f"unknown intrinsic function {name}")
        self.pos = match.end()
        args: list[_Node] = []
        self.skip_ws()
        if self.text.startswith(")", self.pos):
            self.pos += 1
        else:
            while True:
                args.append(self.argument(depth))
                self.skip_ws()
                char = self.text[self.pos : self.pos + 1]
                self.pos += 1
                if char == ")":
                    break
                if char != ",":
                    self.pos -= 1
                    raise self.fail("expected ',' or ')' after an argument")
        count, low, high = len(args), function.min_args, function.max_args
        if count < low or (high is not None and count > high):
            if low == high:
                expected = str(low)
            elif high is None:
                expected = f"at least {low}"
            else:
                expected = f"{low} to {high}"
            given = "1 was" if count == 1 else f"{count} were"
            raise self.fail(f"{name} takes {expected} arguments but {given} given")
        return _Call(name, function, tuple(args), self.text[start : self.pos].strip())

    def argument(self, depth: int) -> _Node:
        self.skip_ws()
        rest = self.text[self.pos :]
        if rest.startswith("'"):
            return self.string()
        if rest.startswith("$"):
            return self.path()
        if rest.startswith("States."):
            return self.call(depth + 1)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if rest.startswith(word) and not rest[len(word) : len(word) + 1].isalnum():
                self.pos += len(word)
                return _Literal(value)
        match = _NUMBER.match(self.text, self.pos)
        if match:
            try:
                number = _DECODER.decode(match.group().encode())
            except msgspec.DecodeError:
                raise self.fail(f"number out of range: {match.group()}") from None
            self.pos = match.end()
            return _Literal(number)
        raise self.fail("expected a string, number, boolean, null, path or intrinsic call")

    def string(self) -> _Literal:
        """A single-quoted literal; also split at unescaped ``{}`` for States.Format."""
        self.pos += 1  # opening quote
        value: list[str] = []
        pieces: list[str] = []
        current: list[str] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\":
                escaped = text[self.pos + 1 : self.pos + 2]
                if not escaped or escaped not in _ESCAPABLE:
                    raise self.fail(f"illegal escape sequence '\\{escaped}' in a string literal")
                value.append(escaped)
                current.append(escaped)
                self.pos += 2
            elif char == "'":
                self.pos += 1
                pieces.append("".join(current))
                return _Literal("".join(value), tuple(pieces))
            elif text.startswith("{}", self.pos):
                value.append("{}")
                pieces.append("".join(current))
                current = []
                self.pos += 2
            else:
                value.append(char)
                current.append(char)
                self.pos += 1
        raise self.fail("unterminated string literal")

    def path(self) -> _PathArg:
        start = self.pos
        depth = 0
        quote = ""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if quote:
                if char == "\\":
                    self.pos += 1
                elif char == quote:
                    quote = ""
            elif char in "'\"" and depth:
                quote = char
            elif char in "[(":
                depth += 1
            elif char in "])":
                if depth == 0:
                    break
                depth -= 1
            elif char == "," and depth == 0:
                break
            self.pos += 1
        source = text[start : self.pos].rstrip()
        try:
            return _PathArg(Path.compile(source))
        except PathSyntaxError as exc:
            raise self.fail(str(exc)) from None


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@final
class Intrinsic:
    """A compiled intrinsic function call. Build with :meth:`compile`; immutable.

    Attributes:
        text: the call as written.
        name: the outermost function, e.g. ``States.Format``.
    """

    __slots__ = ("_call", "name", "text")

    text: str
    name: str
    _call: _Call

    def __init__(self) -> None:
        raise TypeError("use Intrinsic.compile(text)")

    @classmethod
    def compile(cls, text: str) -> Intrinsic:
        """Parse and check a call; raises :class:`IntrinsicSyntaxError` with the reason."""
        if not isinstance(text, str):
            raise IntrinsicSyntaxError(f"Invalid intrinsic function call: {text!r}")
        parser = _Parser(text)
        call = parser.call(1)
        parser.skip_ws()
        if parser.pos != len(text):
            raise parser.fail("unexpected text after the closing ')'")
        finished = call
        self = object.__new__(cls)
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "name", finished.name)
        object.__setattr__(self, "_call", finished)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Intrinsic is immutable")

    def __repr__(self) -> str:
        return f"Intrinsic({self.text!r})"

    def evaluate(self, data: JSON, scope: Scope, *, field: str | None = None) -> JSON:
        """Evaluate against the state input ``data`` and ``scope``.

        Args:
            field: the definition field holding the call (``"value.$"``), named in the message
                when a path argument does not resolve.

        Raises:
            StatesError: ``States.IntrinsicFailure`` for bad argument types or values,
                ``States.Runtime`` when a path argument does not resolve.
        """
        call: _Call = self._call
        try:
            return _evaluate(call, _Env(data, scope, field))
        except RecursionError:
            # Bounded, with a clear error (issue 11): States.ArrayContains, ArrayUnique and
            # JsonMerge recurse on their arguments' depth (paths, JsonToString and Format
            # render any depth without recursion).
            raise StatesError(
                FAILURE, f"Invalid arguments in {call.name}: the values are nested too deeply"
            ) from None
