"""The JSONata engine port: the implementation behind JSONata mode and the limits it runs under.

Responsibility: the :class:`Engine`/:class:`Compiled` protocols and the default engine,
``jsonatapy`` (a Rust implementation of JSONata 2.x, chosen by measurement: see
``benchmarks/jsonata_vs_jsonpath.py`` and the project notes), so another implementation can be
swapped in without touching the core; the engine in use behind :func:`current_engine` and
:func:`install_engine`, with the engine built-ins the guarded functions call (:func:`builtin`);
the evaluation budget (issue 11: :data:`EVALUATION_TIMEOUT_MS`, :data:`MAX_STACK_DEPTH`,
:data:`MAX_SEQUENCE_LENGTH`, :data:`MAX_RANGE_ITEMS`, :data:`MAX_BUILT_LENGTH`,
:data:`MAX_EVALUATION_MEMORY`, :func:`set_budget`, :func:`resident_bytes`); and the vocabulary
every JSONata module shares:
the :data:`UNDEFINED` and :data:`FUNCTION` results, :func:`engine_value` for integers outside
the engine's 64-bit range, and :class:`QueryEvaluationError`, which every failure becomes
(except within the event loop's slice, :mod:`runtime.lang.jsonata_slice`: an evaluation that
runs out of it raises ``SliceExceeded`` for the engine to decide the step elsewhere).

A definition is data: the engine interprets JSONata, and no Python code is ever compiled or run
from a definition. :mod:`runtime.lang.jsonata_functions` (the AWS functions) and
:mod:`runtime.lang.jsonata` (expressions and templates) build on this module.

Imports only the standard library, msgspec, ``jsonatapy``, ``runtime.errors`` and
``runtime.lang.jsonata_slice``; nothing from the other JSONata modules.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol, final

import jsonatapy
import msgspec

from runtime.errors import StatesError
from runtime.lang.jsonata_slice import SliceExceeded, current_slice

__all__ = [
    "EVALUATION_TIMEOUT_MS",
    "FUNCTION",
    "MAX_BUILT_LENGTH",
    "MAX_EVALUATION_MEMORY",
    "MAX_RANGE_ITEMS",
    "MAX_SEQUENCE_LENGTH",
    "MAX_STACK_DEPTH",
    "MAX_STRING_LENGTH",
    "MEMORY_CHECK_LENGTH",
    "QUERY_EVALUATION_ERROR",
    "UNDEFINED",
    "Compiled",
    "Engine",
    "JsonatapyEngine",
    "QueryEvaluationError",
    "builtin",
    "current_engine",
    "describe_type",
    "engine_name",
    "engine_value",
    "install_engine",
    "resident_bytes",
    "sequence_limit",
    "set_budget",
    "shown",
]

JSON = Any

QUERY_EVALUATION_ERROR: Final = "States.QueryEvaluationError"


# Every evaluation has a budget (issue 11): no expression may freeze the process, exhaust its
# memory or escape as a Python exception. The engine enforces a time, a depth and a
# sequence-length limit on each call; the functions of :mod:`runtime.lang.jsonata_functions`
# check sizes before they build.

#: Wall-clock budget of one evaluation, in milliseconds (the engine's ``timeout``, error D1012).
#: Typical expressions take microseconds; heavy ones over a full 256 KiB payload tens of
#: milliseconds (a ``$map`` of 100,000 lambda calls 0.2 s, the quadratic ``$reduce``/``$merge``
#: grouping idiom 0.35 s over 2,000 items). The engine holds the GIL and offers no size
#: limit, so what its own operators allocate is bounded by checks written around them
#: (:mod:`runtime.lang.jsonata`: ranges counted towards :data:`MAX_RANGE_ITEMS`, each ``&``
#: chain's length checked and what all of them hold watched, :data:`MAX_EVALUATION_MEMORY`;
#: ``$join``, ``$pad``, ``$replace`` and ``$string`` measured before they build,
#: :data:`MAX_BUILT_LENGTH`) and, for the rest, by this budget alone. Before the checks, a
#: string doubling in a loop reached 0.4 to 0.6 GiB at 250 ms and 1.1 to 2.2 GiB at 500 ms
#: (measured on the 2-core development machine). A wall-clock budget is a non-deterministic
#: input of an evaluation (with :data:`MAX_EVALUATION_MEMORY`, the only other): keep it far
#: above real expressions, so that replay never meets it. :func:`set_budget` changes it.
EVALUATION_TIMEOUT_MS: Final = 500
#: Deepest nesting of evaluation frames (error D1011): about 1,000 levels of a recursive
#: user function. The engine's own guard (30,000 levels) is kept well away from.
MAX_STACK_DEPTH: Final = 3000
#: Longest sequence an evaluation may build (error D2015): ranges, ``$map``, filters, ...
#: AWS's 256 KiB payload holds at most about 130,000 values (two bytes each, ``1,``), so twice
#: that leaves room for intermediate results while a ``[1..1e9]`` or nested ``$range`` stops
#: before it is built. (At 1,000,000, ``$partition([1..1e6], 1)`` held the event loop for 4 s in
#: the fuzz: built-ins do not all check the time budget.)
MAX_SEQUENCE_LENGTH: Final = 262_144
#: Longest string ``$join``, ``$pad``, ``$replace``, ``$string`` or a chain of ``&`` may build:
#: four times AWS's 256 KiB payload limit.
MAX_STRING_LENGTH: Final = 4 * 256 * 1024
#: Most items the range operator (``[L..R]``) may build in one evaluation, all ranges together
#: (issue 11: the engine bounds each sequence, not their sum, so ``$map([1..10000],
#: function($v) { [1..10000] })`` built 100 million numbers, 0.6 to 2.1 GiB, within the time
#: budget). Four times :data:`MAX_SEQUENCE_LENGTH`: about 25 MiB of engine values.
MAX_RANGE_ITEMS: Final = 4 * MAX_SEQUENCE_LENGTH
#: Most characters the guarded string functions (``$join``, ``$pad``, ``$replace``, ``$string``)
#: may build in one evaluation, all calls together: four of their longest results.
MAX_BUILT_LENGTH: Final = 4 * MAX_STRING_LENGTH
#: Most memory one evaluation may add to the process while its chains of ``&`` run, in bytes
#: (issue 11: a ``$map`` of 10,000 ``$s & $s`` of a 200 KB string held 0.5 to 1.4 GiB before
#: the time budget stopped it). No count of characters tells that apart from the quadratic
#: ``$reduce`` idiom (``$a & $v`` over a list), which produces as many characters as fast but
#: drops each accumulator as the next is built: 10,000 pieces of 25 characters produce 1.25 GB
#: in 0.46 s and never hold more than the last 250 KB. So what is held is read, not inferred:
#: once the chains of an evaluation have produced :data:`MEMORY_CHECK_LENGTH` characters, and
#: again after each further :data:`MEMORY_CHECK_LENGTH`, the process's resident memory
#: (:func:`resident_bytes`) is compared with its first reading. Like the time budget this is
#: a non-deterministic input, kept far above real expressions (whose values are bounded by
#: the payload limits to a few MiB) so that replay never meets it; evaluations whose chains
#: produce less than :data:`MEMORY_CHECK_LENGTH` characters never read it.
MAX_EVALUATION_MEMORY: Final = 128 * 1024 * 1024
#: Characters the ``&`` chains of one evaluation produce between two readings of the
#: process's memory (see :data:`MAX_EVALUATION_MEMORY`).
MEMORY_CHECK_LENGTH: Final = 16 * 1024 * 1024
#: Integers the engine holds exactly (a signed 64-bit integer); others are JSON doubles.
_ENGINE_INT_MIN: Final = -(2**63)
_ENGINE_INT_MAX: Final = 2**63 - 1

_GUARDRAILS: Final[dict[str, int]] = {
    "timeout": EVALUATION_TIMEOUT_MS,
    "max_stack_depth": MAX_STACK_DEPTH,
    "max_sequence_length": MAX_SEQUENCE_LENGTH,
}


def set_budget(
    *,
    timeout_ms: int | None = None,
    max_stack_depth: int | None = None,
    max_sequence_length: int | None = None,
) -> dict[str, int]:
    """Change the budget of every later evaluation (an embedder's setting, or a test's);
    returns the previous one as ``{"timeout": ..., "max_stack_depth": ...,
    "max_sequence_length": ...}``. Arguments left ``None`` keep their value.

    Raises:
        ValueError: a value is not a positive integer.
    """
    previous = dict(_GUARDRAILS)
    for key, value in (
        ("timeout", timeout_ms),
        ("max_stack_depth", max_stack_depth),
        ("max_sequence_length", max_sequence_length),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"the JSONata budget's {key} must be a positive integer: {value!r}")
        _GUARDRAILS[key] = value
    return previous


def sequence_limit() -> int:
    """The longest sequence an evaluation may build now (:data:`MAX_SEQUENCE_LENGTH` unless
    :func:`set_budget` changed it)."""
    return _GUARDRAILS["max_sequence_length"]


_PAGE_SIZE: Final = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int | None:
    """The process's resident memory in bytes (Linux's ``/proc/self/statm``), else ``None``
    (another system: the memory budget of :data:`MAX_EVALUATION_MEMORY` is then not applied).
    About 10 us; read only by evaluations whose ``&`` chains produce a lot."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            fields = statm.read().split()
    except OSError:
        return None
    return int(fields[1]) * _PAGE_SIZE


_encode: Final = msgspec.json.encode


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: The result of an expression that selects nothing (JSONata's ``undefined``).
UNDEFINED: Final = _Marker("UNDEFINED")
#: The result of an expression whose value is a function (not representable in JSON).
FUNCTION: Final = _Marker("FUNCTION")


class QueryEvaluationError(StatesError):
    """``States.QueryEvaluationError``: a JSONata evaluation failed or returned a wrong type.

    ``cause`` is AWS's text without the "An error occurred while executing the state ..."
    prefix (the core adds it); ``location`` is the field, for the ``EvaluationFailed`` event.
    """

    def __init__(self, cause: str, location: str = "") -> None:
        super().__init__(QUERY_EVALUATION_ERROR, cause)
        self.location = location


def describe_type(value: JSON) -> str:
    """JSONata's name for a JSON value's type, as AWS prints it in causes."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shown(value: JSON) -> str:
    """A JSON value as AWS quotes it in causes (compact JSON text)."""
    return _encode(value).decode()


def engine_value(value: JSON) -> JSON:
    """``value`` with every integer the engine cannot hold (outside the signed 64-bit range)
    turned into the JSON double it stands for, as JSONata reads JSON numbers (issue 11: such
    integers raised ``OverflowError``). Containers are copied only when something changes.

    Raises:
        ValueError: an integer too large even for a double (JSONata's D1001).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value if _ENGINE_INT_MIN <= value <= _ENGINE_INT_MAX else _double(value)
    if not isinstance(value, list | dict):
        return value
    # Copy every container on the way (iteratively: the input chooses the depth); this runs
    # only for values known to hold such an integer, or small host-function results.
    root: list[JSON] = [value]
    stack: list[tuple[JSON, JSON, JSON]] = [(root, 0, value)]
    while stack:
        parent, key, node = stack.pop()
        if isinstance(node, dict):
            copy: JSON = dict(node)
            parent[key] = copy
            for name, child in node.items():
                stack.append((copy, name, child))
        elif isinstance(node, list):
            copy = list(node)
            parent[key] = copy
            for index, child in enumerate(node):
                stack.append((copy, index, child))
        elif (
            isinstance(node, int)
            and not isinstance(node, bool)
            and not _ENGINE_INT_MIN <= node <= _ENGINE_INT_MAX
        ):
            parent[key] = _double(node)
    return root[0]


def _double(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"D1001: Number out of range: an integer of {value.bit_length()} bits cannot be a "
            "JSONata number (an IEEE 754 double, at most about 1.8e308)"
        ) from None


# ---------------------------------------------------------------------------------------------
# The engine port
# ---------------------------------------------------------------------------------------------


class Compiled(Protocol):
    """One expression compiled by an engine."""

    def run(self, bindings: dict[str, JSON]) -> JSON:
        """Evaluate with ``bindings`` (names without ``$``); return the value, :data:`UNDEFINED`
        or :data:`FUNCTION`. Raises ``ValueError`` (any message) on an evaluation error."""
        ...


class Engine(Protocol):
    """A JSONata implementation: compile text with the given host functions registered."""

    def compile(self, text: str, functions: Mapping[str, Callable[..., JSON]]) -> Compiled:
        """Raises ``ValueError`` on a syntax error."""
        ...


@final
class _JsonatapyCompiled:
    __slots__ = ("_expr",)

    def __init__(self, expr: Any) -> None:
        self._expr = expr

    def run(self, bindings: dict[str, JSON]) -> JSON:
        current = current_slice()
        if current is None:
            return self._run(bindings, _GUARDRAILS)
        # Within the event loop's slice (runtime.lang.jsonata_slice): at most what is left of
        # it; past it, the decision moves to the slow lane instead of failing.
        budget = _GUARDRAILS["timeout"]
        timeout = current.enter(budget)
        try:
            return self._run(
                bindings, _GUARDRAILS if timeout == budget else {**_GUARDRAILS, "timeout": timeout}
            )
        except ValueError:
            if current.spent():
                raise SliceExceeded from None  # the slice ran out, whatever the message
            raise
        finally:
            current.leave()

    def _run(self, bindings: dict[str, JSON], guardrails: dict[str, int]) -> JSON:
        try:
            value = self._expr.evaluate(None, bindings, **guardrails)
        except OverflowError:
            # A bound value holds an integer outside the engine's 64-bit range. The engine
            # converts the bindings before it evaluates anything (no host function has run),
            # so evaluating again with those integers as doubles is safe.
            bindings = engine_value(bindings)
            value = self._expr.evaluate(None, bindings, **guardrails)
        if value is None:
            # None stands for null, undefined and functions alike; the JSON form tells them
            # apart (undefined has none, null is "null", a function serialises as "").
            text = self._expr.evaluate_json_or_none(None, bindings, **guardrails)
            if text is None:
                return UNDEFINED
            if text != "null":
                return FUNCTION
            return None
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("D1001: Number out of range")
        return value


@final
class JsonatapyEngine:
    """The default engine: ``jsonatapy`` (Rust)."""

    def compile(self, text: str, functions: Mapping[str, Callable[..., JSON]]) -> Compiled:
        expr = jsonatapy.compile(text)
        for name, function in functions.items():
            try:
                expr.register(name, function)
            except ValueError:
                # $random, $now, $millis and $eval are built-ins that AWS replaces; $pad is
                # replaced by its guarded version.
                expr.register_override(name, function)
        return _JsonatapyCompiled(expr)


_engine: Engine = JsonatapyEngine()


def current_engine() -> Engine:
    """The JSONata implementation in use."""
    return _engine


def install_engine(engine: Engine) -> Engine:
    """Make ``engine`` the implementation in use and forget the built-in calls compiled by the
    previous one; returns the previous one. (:func:`runtime.lang.jsonata.set_engine` also
    forgets the compiled expressions: call that one.)"""
    global _engine
    previous, _engine = _engine, engine
    builtin.cache_clear()
    return previous


def engine_name() -> str:
    """The name of the JSONata implementation in use (for benchmarks and diagnostics)."""
    if isinstance(_engine, JsonatapyEngine):
        return f"jsonatapy {jsonatapy.__version__}"
    return type(_engine).__name__


@functools.cache
def builtin(text: str) -> Compiled:
    """A call of an engine built-in, compiled without host functions (for guarded versions and
    for ``$now``'s pictures), once per text and engine."""
    return _engine.compile(text, {})
