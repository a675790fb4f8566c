"""JSONPath evaluation: walking compiled steps over a document and testing filters.

Responsibility: the matches of a step sequence from a node, in Jayway's order (:func:`walk`),
and the truth of a filter expression on a node (Jayway's inline predicates: ``==`` between a
number and a numeric string, ``in``, ``subsetof``, ``size``, ``=~``, ...). Filters never raise:
a path that does not resolve is simply not a match.

Budgets (issue 11): no evaluation recurses on the input's depth (``..`` and the walk use
explicit stacks); filter expressions recurse only on their own nesting, bounded by the parser.
Invariants: evaluation never mutates its input; matches share structure with the input.
This module imports only the standard library and the other ``runtime.lang.path*`` modules.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Final

from runtime.lang.pathregex import Regex
from runtime.lang.pathsyntax import (
    Expr,
    Filter,
    Index,
    Logic,
    Operand,
    Prop,
    Slice,
    Step,
    Wildcard,
    steps_definite,
)

__all__ = ["walk"]

JSON = Any

_MISSING: Final = object()


def _operand_value(operand: Operand, current: JSON, root: JSON) -> JSON:
    """A filter operand's value, or ``_MISSING`` when its path does not resolve."""
    if not operand.root:
        return operand.literal
    start = current if operand.root == "@" else root
    if steps_definite(operand.steps):
        return _walk_definite(start, operand.steps)
    return list(walk(start, operand.steps, 0, root))


def _walk_definite(node: JSON, steps: tuple[Step, ...]) -> JSON:
    """Follow definite steps; ``_MISSING`` when any step fails (filters never raise)."""
    for step in steps:
        if isinstance(step, Prop):
            if not isinstance(node, dict):
                return _MISSING
            if len(step.names) > 1:
                return {n: node[n] for n in step.names if n in node}
            node = node.get(step.names[0], _MISSING)
            if node is _MISSING:
                return _MISSING
        else:
            assert isinstance(step, Index)
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


def _test(expr: Expr, current: JSON, root: JSON) -> bool:
    if isinstance(expr, Logic):
        if expr.op == "!":
            return not _test(expr.parts[0], current, root)
        if expr.op == "&&":
            return all(_test(p, current, root) for p in expr.parts)
        return any(_test(p, current, root) for p in expr.parts)
    left = _operand_value(expr.left, current, root)
    if expr.op == "exists":
        if steps_definite(expr.left.steps):
            return left is not _MISSING
        return bool(left)  # an indefinite path exists when it matched something
    assert expr.right is not None
    right = _operand_value(expr.right, current, root)
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
            return isinstance(left, str) and isinstance(right, Regex) and right.fullmatch(left)
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


def _children(node: JSON) -> Iterator[JSON]:
    if isinstance(node, dict):
        yield from node.values()
    elif isinstance(node, list):
        yield from node


def _apply(step: Step, node: JSON, root: JSON, leaf: bool) -> Iterator[JSON]:
    """The matches of one step on one node, in Jayway's order (indefinite evaluation)."""
    if isinstance(step, Prop):
        if isinstance(node, dict):
            if len(step.names) > 1 and leaf:
                yield {n: node[n] for n in step.names if n in node}
            else:
                yield from (node[n] for n in step.names if n in node)
    elif isinstance(step, Index):
        if isinstance(node, list):
            size = len(node)
            yield from (node[i] for i in step.indices if -size <= i < size)
    elif isinstance(step, Slice):
        if isinstance(node, list):
            yield from node[step.start : step.end]
    elif isinstance(step, Wildcard):
        yield from _children(node)
    elif isinstance(step, Filter):
        if isinstance(node, list):
            yield from (v for v in node if _test(step.expr, v, root))
        elif isinstance(node, dict) and _test(step.expr, node, root):
            yield node
    else:
        yield from _scan(step.step, node, root, leaf)


def _scan(step: Step, node: JSON, root: JSON, leaf: bool) -> Iterator[JSON]:
    """``..step``: ``step`` applied to ``node`` and to every descendant, parents before
    children, with an explicit stack (issue 11: the input chooses the depth)."""
    if isinstance(step, Wildcard):
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


def walk(node: JSON, steps: tuple[Step, ...], position: int, root: JSON) -> Iterator[JSON]:
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
