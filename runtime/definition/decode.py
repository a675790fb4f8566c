"""Decode a definition's JSON text the way AWS's parser (Jackson) does.

Responsibility: JSON text -> value (:func:`decode`), with syntax errors worded as Jackson words
them (``INVALID_JSON_DESCRIPTION`` with a ``[Source: ...]`` location), ``NaN``/``Infinity``
refused, integers longer than any number the limits allow refused before conversion, and
repeated keys remembered (:class:`DuplicateKeys`) so the loader can report a repeated state
name as ``DUPLICATE_STATE_NAME``.

This module is pure; it imports only the standard library, ``runtime.errors`` and
``runtime.definition.limits``/``validate``.
"""

from __future__ import annotations

import json
from typing import Any, Final

from runtime.definition import limits, validate
from runtime.errors import InvalidDefinition

__all__ = ["WHAT", "DuplicateKeys", "decode"]

JSON = Any

#: How messages about the definition name it.
WHAT: Final = "The definition"
_SCHEMA: Final = validate.SCHEMA
_MAX_INTEGER_DIGITS: Final = len(str(limits.MAX_INTEGER))


class DuplicateKeys:
    """An ``object_pairs_hook`` that builds plain dicts and remembers, by identity, which
    decoded objects repeated a key (AWS reports a repeated state name as DUPLICATE_STATE_NAME;
    Python's parser would silently keep the last one)."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[dict[str, Any], tuple[str, ...]]] = {}

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            names: set[str] = set()
            repeated = []
            for key, _ in pairs:
                if key in names:
                    repeated.append(key)
                names.add(key)
            # keep the object alive with its entry, so its id() is never reused meanwhile
            self.seen[id(result)] = (result, tuple(repeated))
        return result

    def of(self, value: object) -> tuple[str, ...]:
        entry = self.seen.get(id(value))
        return entry[1] if entry is not None and entry[0] is value else ()


def decode(source: str | bytes, duplicates: DuplicateKeys) -> JSON:
    """JSON text -> value; syntax errors worded as AWS's parser (Jackson) words them."""
    text = source.decode("utf-8", errors="replace") if isinstance(source, bytes) else source
    try:
        return json.loads(
            text,
            object_pairs_hook=duplicates,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except json.JSONDecodeError as exc:
        raise _json_error(text, exc.pos) from None
    except _NonStandardToken as exc:
        raise _non_standard_token(text, exc.token) from None
    except _IntegerTooLong as exc:
        detail = (
            f"{WHAT} contains an integer of {exc.digits} digits, larger in magnitude than "
            "the largest finite double (about 1.8e308)"
        )
        raise InvalidDefinition(_SCHEMA, detail, "/") from None


class _IntegerTooLong(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def _parse_int(text: str) -> int:
    """An integer literal, refused before conversion when it has more digits than any integer
    within :data:`~runtime.definition.limits.MAX_INTEGER` (converting a long decimal text is
    quadratic, and Python refuses more than 4,300 digits with a bare ``ValueError``)."""
    digits = len(text) - text.startswith("-")
    if digits > _MAX_INTEGER_DIGITS:
        raise _IntegerTooLong(digits)
    return int(text)


class _NonStandardToken(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _reject_constant(token: str) -> Any:
    """``NaN``/``Infinity`` are accepted by Python's parser, not by JSON (nor by AWS)."""
    raise _NonStandardToken(token)


def _non_standard_token(text: str, token: str) -> InvalidDefinition:
    start = text.find(token)
    error = _json_error(text, start)
    detail = (
        f"Non-standard token '{token}': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow"
    )
    return InvalidDefinition(error.code, detail, error.pointer)


def _json_error(text: str, pos: int) -> InvalidDefinition:
    """``INVALID_JSON_DESCRIPTION`` with Jackson's message and ``[Source: ...]`` location."""
    shown = text if len(text) <= 500 else f'{text[:500]}"[truncated {len(text) - 500} chars]'
    if pos >= len(text.rstrip()) or not text.strip():
        detail = "No content to map due to end-of-input"
        end = len(text)
    elif text[pos].isalpha():
        stop = pos
        while stop < len(text) and (text[stop].isalnum() or text[stop] in "_-."):
            stop += 1
        detail = (
            f"Unrecognized token '{text[pos:stop]}': was expecting (JSON String, Number, "
            "Array, Object or token 'null', 'true' or 'false')"
        )
        end = stop
    else:
        char = text[pos]
        detail = f"Unexpected character ('{char}' (code {ord(char)}))"
        end = pos + 1
    line = text.count("\n", 0, end) + 1
    column = end - (text.rfind("\n", 0, end) + 1) + 1
    location = f'[Source: (String)"{shown}"; line: {line}, column: {column}]'
    return InvalidDefinition("INVALID_JSON_DESCRIPTION", detail, location)
