"""Limits of JSON values and JSON text, checked without recursion (issue 11).

Responsibility: tell whether a JSON-like Python value (as decoded from JSON text, or handed in by
a Python caller) or a piece of JSON text is one the runtime can hold, encode, evaluate and
replay, *before* any recursive pass (a decoder, an encoder, a path or template evaluator, the
definition loader) touches it. Every check walks the value with an explicit stack, so the
nesting depth an input chooses never becomes Python call depth; a failure is a
:class:`JSONLimitError` naming the rule broken and the path of the offending element.

The limits, and where each comes from:

* **Payload size** :data:`MAX_PAYLOAD_BYTES` = 262,144 bytes (256 KiB) of UTF-8 JSON for an
  execution input, a state's input or output, a task result (AWS Step Functions quotas:
  "Maximum input or output size for a task, state, or execution"; the API reference gives
  ``input`` a maximum length of 262144).
* **Definition size** :data:`MAX_DEFINITION_BYTES` = 1,048,576 bytes (1 MiB), a hard quota
  (AWS: "Maximum size of state machine definition"; CreateStateMachine's ``definition`` has a
  maximum length of 1048576).
* **Nesting depth** :data:`MAX_DEPTH` = 256 nested arrays/objects for inputs, outputs and
  results, :data:`MAX_DEFINITION_DEPTH` = 128 for a definition. AWS documents no depth limit;
  these are ours. They are far above real documents (a definition with Parallel states nested
  30 deep is about 120 levels; a Map level costs 3) and far below the point where recursive
  readers fail: Python's default recursion limit is 1,000 frames, the C readers (``json``,
  ``msgspec``) count against it, and the definition loader and payload compiler recurse up to
  three frames per level. The depth of a value is the number of arrays/objects on the way to
  its deepest element, the outermost one included: ``1`` is 0 deep, ``[]`` and ``{"a": 1}``
  are 1 deep.
* **Numbers**: every number must have a finite IEEE-754 double value, so an integer's magnitude
  is at most :data:`MAX_INTEGER` (the largest finite double, about 1.8e308) and a float is
  neither NaN nor infinite. JSON has no NaN or Infinity; msgspec would write them as ``null``,
  silently changing the data. Integers beyond 2^53 are kept exactly (JSONPath states pass them
  through unchanged, as AWS's Jackson parser keeps big integers); readers that only know doubles
  (JSONata) see them rounded.
* **Text**: every string and key is Unicode without lone surrogates (``"\\ud800"`` decodes in
  Python to a string that cannot be written as UTF-8, so it could never be stored or sent).
  Object keys are strings: a Python ``{1: "x"}`` has no JSON text (msgspec would turn the key
  into ``"1"``, another value).
* **Types**: ``dict``/``Mapping`` (objects), ``list``/``tuple`` (arrays), ``str``, ``int``,
  ``float``, ``bool`` and ``None``. Anything else (a set, bytes, a datetime, an object) is not
  JSON and is refused rather than converted.

Paths are written as the definition's JSON Pointers are in AWS's messages: object keys joined by
``/`` (``~`` and ``/`` escaped as RFC 6901 says), array indices as ``[i]``, e.g.
``/States/P/Branches[0]``; the whole value is ``/``.

This module is pure (no I/O, no clock) and imports only the standard library and msgspec.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Mapping
from itertools import accumulate
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias, final

import msgspec

__all__ = [
    "MAX_DEFINITION_BYTES",
    "MAX_DEFINITION_DEPTH",
    "MAX_DEPTH",
    "MAX_INTEGER",
    "MAX_PAYLOAD_BYTES",
    "JSONLimitError",
    "Rule",
    "check_json",
    "check_json_text",
    "check_payload",
    "encoded_size",
    "format_path",
]

JSON: TypeAlias = Any

#: AWS's payload quota: 256 KiB of UTF-8 JSON for any input, output or result.
MAX_PAYLOAD_BYTES: Final = 256 * 1024
#: AWS's hard quota on a state machine definition: 1 MiB of UTF-8 JSON text.
MAX_DEFINITION_BYTES: Final = 1024 * 1024
#: Nested arrays/objects allowed in an input, output or result (ours: AWS documents no limit).
MAX_DEPTH: Final = 256
#: Nested arrays/objects allowed in a definition (ours): the loader recurses about three frames
#: per level of a ``Parameters`` or ``Assign`` template and four to five per level of nested
#: Parallel or Map states, so at this depth a load needs under 400 frames of Python's 1,000.
MAX_DEFINITION_DEPTH: Final = 128
#: The largest integer magnitude accepted: the largest finite IEEE-754 double.
MAX_INTEGER: Final = int(sys.float_info.max)

Rule: TypeAlias = Literal["depth", "key", "surrogate", "number", "type", "size", "encoding"]
"""Which limit a value breaks: nesting ``depth``, a non-string ``key``, a lone ``surrogate``, a
``number`` out of range or not finite, a ``type`` that is not JSON, the ``size`` in bytes, or
text that is not UTF-8 (``encoding``)."""

PathPart: TypeAlias = str | int
_Link: TypeAlias = "tuple[_Link, PathPart] | None"
"""A path as a linked list from the leaf: ``((None, "States"), "P")`` is ``/States/P``."""

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
#: Every byte but the four brackets (``bytes.translate`` deletes them).
_NOT_BRACKETS: Final = bytes(set(range(256)) - set(b"[]{}"))
_STEP: Final[Mapping[int, int]] = MappingProxyType(
    {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
)

_SURROGATE_IN_STRING: Final = "contains a lone surrogate in a string"

_encode: Final = msgspec.json.encode


@final
class JSONLimitError(ValueError):
    """A value or text breaks one of this module's limits.

    ``str(error)`` reads ``"<what> <detail> at <pointer>"``, e.g. ``"The execution input is
    nested more than 256 levels deep at /a/a/a"``.

    Attributes:
        rule: which limit (:data:`Rule`).
        what: the subject named in the message, e.g. ``"The execution input"``.
        detail: what is wrong, worded to follow ``what`` (``"is nested more than ..."``).
        path: keys and indices from the root to the offending element (``()`` for the root, or
            when the error is about the whole text).
        pointer: ``path`` formatted (:func:`format_path`), lone surrogates escaped.
    """

    def __init__(self, rule: Rule, what: str, detail: str, path: tuple[PathPart, ...]) -> None:
        self.rule: Rule = rule
        self.what = what
        self.detail = detail
        self.path = path
        self.pointer = format_path(path)
        super().__init__(f"{what} {detail} at {self.pointer}")


def format_path(path: tuple[PathPart, ...]) -> str:
    """``("States", "P", "Branches", 0)`` -> ``/States/P/Branches[0]``; ``()`` -> ``/``.

    Keys are escaped as RFC 6901 says (``~`` -> ``~0``, ``/`` -> ``~1``) and lone surrogates are
    written as ``\\udXXX`` escapes, so the pointer itself is always printable UTF-8.
    """
    if not path:
        return "/"
    parts: list[str] = ["/"] if isinstance(path[0], int) else []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append("/" + _printable(part).replace("~", "~0").replace("/", "~1"))
    return "".join(parts)


def _printable(text: str) -> str:
    """``text`` with lone surrogates as backslash escapes (everything else kept)."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _key_repr(key: object) -> str:
    if isinstance(key, str):
        return repr(_printable(key))
    try:
        shown = repr(key)
    except ValueError:  # an int too large for repr (Python's 4,300-digit limit)
        shown = "<int>"
    return shown if len(shown) <= 40 else f"{shown[:37]}..."


def check_json(
    value: JSON,
    *,
    what: str = "The value",
    max_depth: int = MAX_DEPTH,
    max_integer: int = MAX_INTEGER,
) -> None:
    """Check that ``value`` is a JSON value within the limits, without recursion.

    Visits every element once with an explicit stack of open containers, so the cost is linear
    in the number of elements and the Python call depth is constant whatever the nesting.

    Args:
        value: the value to check; it is not modified.
        what: the subject of the error message, e.g. ``"The execution input"``.
        max_depth: how many arrays/objects may nest (:data:`MAX_DEPTH`).
        max_integer: the largest integer magnitude allowed (:data:`MAX_INTEGER`).

    Raises:
        JSONLimitError: for one offending element (the elements of an array or object are
            checked before the containers inside it): nested too deep (``depth``), an object key
            that is not a string (``key``), a string or key with a lone surrogate
            (``surrogate``), an integer beyond ``max_integer`` or a float that is NaN or
            infinite (``number``), or a value of a type JSON does not have (``type``).
    """
    kind = type(value)
    if kind is not dict and kind is not list and not isinstance(value, Mapping | list | tuple):
        _check_scalar(value, what, max_integer, None)
        return
    if max_depth < 1:
        raise _too_deep(what, max_depth, None)
    isfinite = math.isfinite
    search = _SURROGATE.search
    # (container, its depth, its path as a linked list: (parent path, key) or None)
    stack: list[tuple[Any, int, _Link]] = [(value, 1, None)]
    while stack:
        node, depth, where = stack.pop()
        if type(node) is dict or isinstance(node, Mapping):
            _check_keys(node, what, where)
            entries: Iterable[tuple[Any, Any]] = node.items()
        else:
            entries = enumerate(node)
        inner: list[tuple[Any, int, _Link]] = []
        for key, child in entries:
            kind = type(child)
            if kind is str:
                if not child.isascii() and search(child) is not None:
                    raise _error("surrogate", what, _SURROGATE_IN_STRING, (where, key))
            elif kind is int:
                if child > max_integer or child < -max_integer:
                    raise _error("number", what, _big_integer(child, max_integer), (where, key))
            elif kind is float:
                if not isfinite(child):
                    raise _error("number", what, _not_finite(child), (where, key))
            elif kind is dict or kind is list:
                if depth >= max_depth:
                    raise _too_deep(what, max_depth, (where, key))
                inner.append((child, depth + 1, (where, key)))
            elif child is None or kind is bool:
                pass
            elif isinstance(child, Mapping | list | tuple):
                if depth >= max_depth:
                    raise _too_deep(what, max_depth, (where, key))
                inner.append((child, depth + 1, (where, key)))
            else:
                _check_scalar(child, what, max_integer, (where, key))
        if inner:
            inner.reverse()  # the first inner container is checked next
            stack.extend(inner)


def _unlink(where: _Link) -> tuple[PathPart, ...]:
    parts: list[PathPart] = []
    while where is not None:
        where, key = where
        parts.append(key)
    parts.reverse()
    return tuple(parts)


def _check_scalar(node: object, what: str, max_integer: int, where: _Link) -> None:
    """A value that is not a container of an exact JSON type: subclasses of ``str``, ``int``
    and ``float`` are checked as those; any other type is not JSON."""
    if node is None or isinstance(node, bool):
        return
    if isinstance(node, str):
        if _SURROGATE.search(node) is not None:
            raise _error("surrogate", what, _SURROGATE_IN_STRING, where)
        return
    if isinstance(node, int):
        if node > max_integer or node < -max_integer:
            raise _error("number", what, _big_integer(node, max_integer), where)
        return
    if isinstance(node, float):
        if not math.isfinite(node):
            raise _error("number", what, _not_finite(node), where)
        return
    raise _error(
        "type", what, f"contains a value of type {type(node).__name__}, which is not JSON", where
    )


def _check_keys(node: Mapping[Any, Any], what: str, where: _Link) -> None:
    """Every key of an object is a string without lone surrogates (joined once, in C)."""
    try:
        keys = "".join(node)
    except TypeError:
        key = next(key for key in node if not isinstance(key, str))
        # The error names the object holding the key: the key itself has no pointer.
        raise _error(
            "key",
            what,
            f"has an object key that is not a string: {_key_repr(key)} ({type(key).__name__})",
            where,
        ) from None
    if not keys.isascii() and _SURROGATE.search(keys) is not None:
        key = next(key for key in node if _SURROGATE.search(key) is not None)
        raise _error("surrogate", what, "contains a lone surrogate in an object key", (where, key))


def _not_finite(number: float) -> str:
    return f"contains a number that is not finite ({number})"


def _error(rule: Rule, what: str, detail: str, where: _Link) -> JSONLimitError:
    return JSONLimitError(rule, what, detail, _unlink(where))


def _too_deep(what: str, max_depth: int, where: _Link) -> JSONLimitError:
    return _error("depth", what, f"is nested more than {max_depth} levels deep", where)


def _big_integer(number: int, max_integer: int) -> str:
    bound = (
        "the largest finite double (about 1.8e308)"
        if max_integer == MAX_INTEGER
        else str(max_integer)
    )
    return f"contains an integer of {number.bit_length()} bits, larger in magnitude than {bound}"


def encoded_size(value: JSON) -> int:
    """The size in bytes of ``value`` as compact UTF-8 JSON (how AWS measures payloads).

    Call :func:`check_json` first: on a checked value the encoder cannot fail or recurse too
    deep.

    Raises:
        JSONLimitError: ``type``/``surrogate`` when the value cannot be encoded at all (it was
            not checked).
    """
    try:
        return len(_encode(value))
    except UnicodeEncodeError:
        raise JSONLimitError("surrogate", "The value", "contains a lone surrogate", ()) from None
    except (TypeError, ValueError, msgspec.EncodeError) as exc:
        raise JSONLimitError("type", "The value", f"cannot be encoded as JSON: {exc}", ()) from None


def check_payload(
    value: JSON,
    *,
    what: str = "The value",
    max_bytes: int = MAX_PAYLOAD_BYTES,
    max_depth: int = MAX_DEPTH,
    max_integer: int = MAX_INTEGER,
) -> int:
    """:func:`check_json`, then the size of the encoded value against ``max_bytes``.

    Returns:
        The size of ``value`` as compact UTF-8 JSON, in bytes.

    Raises:
        JSONLimitError: as :func:`check_json`, or ``size`` when the encoded value is longer than
            ``max_bytes``.
    """
    check_json(value, what=what, max_depth=max_depth, max_integer=max_integer)
    size = encoded_size(value)
    if size > max_bytes:
        raise JSONLimitError(
            "size", what, f"is {size} bytes of JSON, over the limit of {max_bytes} bytes", ()
        )
    return size


def check_json_text(
    text: str | bytes,
    *,
    what: str = "The text",
    max_bytes: int | None = None,
    max_depth: int = MAX_DEPTH,
) -> None:
    """Check JSON text before it is decoded: size, encoding, and nesting depth.

    The nesting depth is counted from the brackets outside string literals, without decoding
    and in linear time (string methods in C, then one pass over the brackets), so a decoder,
    which recurses once per level, is never handed text nested deeper than ``max_depth``. The
    text need not be valid JSON: syntax is the decoder's business; an unbalanced text is
    measured as far as it goes.

    Args:
        text: JSON text, as ``str`` or UTF-8 ``bytes``.
        what: the subject of the error message.
        max_bytes: the largest size in UTF-8 bytes, or ``None`` for no size check.
        max_depth: how many arrays/objects may nest.

    Raises:
        JSONLimitError: ``size`` (over ``max_bytes``), ``encoding`` (bytes that are not UTF-8),
            ``surrogate`` (a ``str`` holding a lone surrogate character; a ``\\ud800`` escape
            is the decoder's business, or :func:`check_json`'s after it), ``depth``.
    """
    if isinstance(text, str):
        if max_bytes is not None and len(text) > max_bytes:
            raise _text_too_large(what, len(text), max_bytes)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise JSONLimitError(
                "surrogate", what, "contains a lone surrogate character", ()
            ) from None
    else:
        data = text
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            detail = f"is not valid UTF-8 (byte {exc.start})"
            raise JSONLimitError("encoding", what, detail, ()) from None
    if max_bytes is not None and len(data) > max_bytes:
        raise _text_too_large(what, len(data), max_bytes)
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return  # fewer opening brackets, even counting those in strings, than the limit
    brackets = _brackets(data)
    if brackets.count(b"[") + brackets.count(b"{") <= max_depth:
        return
    depth = max(accumulate(map(_STEP.__getitem__, brackets)))
    if depth > max_depth:
        detail = f"is nested {depth} levels deep, more than {max_depth}"
        raise JSONLimitError("depth", what, detail, ())


def _brackets(data: bytes) -> bytes:
    """The brackets outside string literals of UTF-8 JSON text, in order.

    Escaped backslashes and then escaped quotes are removed first, so every quote left delimits
    a string; splitting at the quotes, the even parts are outside strings. (UTF-8 continuation
    bytes are never ASCII, so multi-byte characters cannot look like quotes or brackets.)
    """
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    return outside.translate(None, _NOT_BRACKETS)


def _text_too_large(what: str, size: int, max_bytes: int) -> JSONLimitError:
    return JSONLimitError("size", what, f"is {size} bytes, over the limit of {max_bytes} bytes", ())
