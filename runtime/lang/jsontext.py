"""JSON values as text, the way AWS shows them: Jackson's compact JSON and Java's ``toString``.

Responsibility: :func:`compact_json` (Jackson's serialisation: compact, key order kept,
non-ASCII as is), :func:`java_string` (``{a=1, b=[x, y]}``, as ``States.Format`` and Jayway's
error messages show a value) and :func:`java_class` (the Java class Jayway names in its
messages). Used by JSONPath evaluation, the payload templates and the intrinsic functions.

Budgets (issue 11): any input depth renders without recursion (an explicit stack).
This module imports only the standard library.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, Final

__all__ = ["JSON", "compact_json", "java_class", "java_string"]

JSON = Any

_MISSING: Final = object()


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


def java_class(value: JSON) -> str:
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
