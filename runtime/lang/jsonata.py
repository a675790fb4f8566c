"""JSONata mode (ASL "Transforming data with JSONata"): ``{% ... %}`` expressions and templates.

Responsibility: compile ``{% %}`` strings once, evaluate them with the ``$states`` binding and
the workflow variables in scope, and turn every failure into ``States.QueryEvaluationError`` with
AWS's wording. A *template* is any JSON value (``Arguments``, ``Output``, ``Assign``,
``Items``, ``ItemSelector``) in which every string that starts with ``{%`` and ends with ``%}``
is an expression and everything else is a constant, however deeply nested.

The engine is ``jsonatapy`` (a Rust implementation of JSONata 2.x, chosen by measurement: see
``benchmarks/jsonata_vs_jsonpath.py`` and the project notes). It sits behind :class:`Engine`, so
another implementation can be swapped in without touching the core. A definition is data: the
engine interprets JSONata, and no Python code is ever compiled or run from a definition.

AWS's additions and restrictions, as Step Functions documents them:

* ``$partition(array, size)``, ``$range(start, end, step)``, ``$hash(value, algorithm)``,
  ``$random([seed])``, ``$uuid()``, ``$parse(json_text)``;
* ``$range`` gives a JSONata sequence (no item: undefined; one item: that value), and it and
  ``$random`` check their arguments as JSONata checks a signature (T0410); both are defined
  in a small JSONata prelude around the expressions that name them (see ``_PRELUDES``);
* ``$eval`` is not available;
* ``$now()``/``$millis()`` read the decision's clock (the ``now`` of the incoming fact), and
  ``$random()``/``$uuid()`` draw from the decision's seeded :class:`~runtime.lang.scope.Entropy`,
  so evaluation stays a pure function of (definition, log, incoming fact); the values that matter
  are recorded in the log (outputs, assigned variables), never re-drawn on replay.

Budgets (issue 11): every evaluation runs under the engine's guardrails (a time budget, a
frame-depth limit and a sequence-length limit, see :data:`EVALUATION_TIMEOUT_MS`); the functions
written here check the size of what they would build before building it (``$range``, ``$pad``);
integers outside the engine's 64-bit range are handed to it as the doubles JSON numbers are.
Every failure, a budget exceeded included, is ``States.QueryEvaluationError``.

Invariants: compiled expressions are cached by their text (like :mod:`re`), so the definition
loader's compile is the only parse in practice; evaluation never mutates its inputs. This module
imports only the standard library, msgspec, the JSONata engine and ``runtime.errors``/``scope``.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import functools
import hashlib
import math
import random
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol, final

import jsonatapy
import msgspec

from runtime.errors import StatesError
from runtime.lang.scope import Entropy

__all__ = [
    "AWS_FUNCTIONS",
    "QUERY_EVALUATION_ERROR",
    "Engine",
    "Env",
    "JsonataExpression",
    "QueryEvaluationError",
    "compile_expression",
    "compile_template",
    "describe_type",
    "engine_name",
    "evaluate",
    "evaluate_template",
    "is_expression",
    "set_budget",
    "set_engine",
    "template_field",
]

JSON = Any

QUERY_EVALUATION_ERROR: Final = "States.QueryEvaluationError"

#: The functions Step Functions adds to JSONata, plus the built-ins it changes.
AWS_FUNCTIONS: Final = frozenset(
    {"partition", "range", "hash", "random", "uuid", "parse", "eval", "now", "millis"}
)

_VARIABLE: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_STATES: Final = re.compile(r"\$states\b")
_STATES_WITHOUT_CONTEXT: Final = re.compile(r"\$states\s*\.\s*(input|result|errorOutput)\b")
_HASH_ALGORITHMS: Final = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}
_RANGE_LIMIT: Final = 1000

# Every evaluation has a budget (issue 11): no expression may freeze the process, exhaust its
# memory or escape as a Python exception. The engine enforces a time, a depth and a
# sequence-length limit on each call; the functions written here check sizes before they build.

#: Wall-clock budget of one evaluation, in milliseconds (the engine's ``timeout``, error D1012).
#: Typical expressions take microseconds; heavy ones over a full 256 KiB payload tens of
#: milliseconds (a ``$map`` of 100,000 lambda calls 0.2 s, the quadratic ``$reduce``/``$merge``
#: grouping idiom 0.35 s over 2,000 items). The budget is also the only bound on what the
#: engine's own operators allocate (``&``, ``$join``: the engine holds the GIL and offers no
#: size limit): a string doubling in a loop reached 0.4 to 0.6 GiB at 250 ms and 1.1 to 2.2 GiB
#: at 500 ms (measured on the 2-core development machine). A wall-clock budget is the one
#: non-deterministic input of an evaluation: keep it far above real expressions, so that
#: replay never meets it. :func:`set_budget` changes it.
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
#: Longest string ``$pad`` may build: four times AWS's 256 KiB payload limit.
MAX_STRING_LENGTH: Final = 4 * 256 * 1024
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


_encode = msgspec.json.encode
_decode = msgspec.json.decode


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


def is_expression(value: object) -> bool:
    """A JSONata ``{% ... %}`` string: exactly that, with no space outside the delimiters."""
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


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


def _shown(value: JSON) -> str:
    return _encode(value).decode()


# ---------------------------------------------------------------------------------------------
# The evaluation environment
# ---------------------------------------------------------------------------------------------


@final
class Env:
    """What one state's expressions read: ``$states``, the variables, the clock, the entropy.

    Attributes:
        base: ``$states`` without ``context`` unless given in it (``input``, and ``result`` or
            ``errorOutput`` when the state has one).
        variables: the workflow variables in scope (read-only).
        entropy: the decision's seeded random source (``$random()``, ``$uuid()``).
        now: the decision's clock reading, seconds since the epoch (``$now()``, ``$millis()``).

    The context object is built only for expressions that read ``$states.context`` (or use
    ``$states`` as a whole): it repeats the execution input, which would double the cost of
    handing ``$states`` to the engine.
    """

    __slots__ = ("_context", "_full", "_pending", "base", "entropy", "now", "variables")

    def __init__(
        self,
        states: Mapping[str, JSON],
        variables: Mapping[str, JSON] | None = None,
        entropy: Entropy | None = None,
        now: float = 0.0,
        context: Callable[[], JSON] | None = None,
    ) -> None:
        self.base = states
        self._context = context
        self._full: Mapping[str, JSON] | None = None if context is not None else states
        self.variables: Mapping[str, JSON] = {} if variables is None else variables
        self.entropy = Entropy(0) if entropy is None else entropy
        self.now = now
        self._pending: QueryEvaluationError | None = None

    @property
    def states(self) -> Mapping[str, JSON]:
        """The whole ``$states`` object, context included."""
        if self._full is None:
            assert self._context is not None
            self._full = {**self.base, "context": self._context()}
        return self._full


_CURRENT: Final[contextvars.ContextVar[Env]] = contextvars.ContextVar("statemill_jsonata_env")


class _HostError(Exception):
    """Raised inside an AWS function; the evaluation re-raises the recorded cause."""


def _fail(message: str) -> _HostError:
    env = _CURRENT.get()
    env._pending = QueryEvaluationError(message)
    return _HostError(message)


def _is_int(value: JSON) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _partition(array: JSON = None, size: JSON = None) -> JSON:
    """``$partition(array, size)``: chunks of ``size`` items (the last may be shorter)."""
    if not isinstance(array, list):
        raise _fail("The first argument of $partition must be an array.")
    if not _is_int(size) or size <= 0:
        raise _fail("The second argument of $partition must be a positive integer.")
    step = int(size)
    return [array[i : i + step] for i in range(0, len(array), step)]


def _signature_mismatch(function: str, index: int) -> ValueError:
    """JSONata's own error for an argument its function's signature refuses (T0410), which
    AWS's functions raise like every JSONata function; the cause is the usual "threw an error
    during evaluation" sentence (issue 15)."""
    return ValueError(
        f'T0410: Argument {index} of function "{function}" does not match function signature'
    )


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _range(
    has_start: bool,
    start: JSON,
    has_end: bool,
    end: JSON,
    has_step: bool,
    step: JSON,
    has_extra: bool = False,
) -> JSON:
    """``$range(start, end, step)``: the integers from ``start`` towards ``end`` (inclusive)
    by ``step``, as Step Functions gives them (issue 15).

    * Each argument is a number; another value (``null`` included) is JSONata's T0410, and so
      is a fourth argument.
    * A non-integer argument counts towards zero (``$range(1.4, 5.6, 2.2)`` is ``[1, 3, 5]``).
    * An argument left undefined, or a step that counts as ``0``, gives no value (undefined),
      as a range with no item does.
    * The result is a JSONata *sequence* (see :data:`_PRELUDES`): no item is undefined, one
      item is that value (``$range(0, 2, 3)`` is ``0``), more are an array.

    ``has_*`` tell a defined argument from an undefined one (the engine hands both over as
    ``None``); the prelude that calls this passes them.
    """
    if has_extra:
        raise _signature_mismatch("range", 4)
    for index, (given, value) in enumerate(((has_start, start), (has_end, end), (has_step, step))):
        if given and not _is_number(value):
            raise _signature_mismatch("range", index + 1)
    if not (has_start and has_end and has_step):
        return []
    first, last, stride = int(start), int(end), int(step)
    if stride == 0:
        return []
    # Counted before anything is built (issue 11: ``$range(0, 1e9, 1)`` built a billion items
    # before the limit was checked).
    values = range(first, last + (1 if stride > 0 else -1), stride)
    if len(values) > _RANGE_LIMIT:
        raise _fail(f"The result of $range exceeds the limit of {_RANGE_LIMIT} items.")
    return _host_value(list(values))


def _hash(value: JSON = None, algorithm: JSON = None) -> JSON:
    """``$hash(value, algorithm)``: hex digest with MD5, SHA-1, SHA-256, SHA-384 or SHA-512."""
    if not isinstance(value, str):
        raise _fail("The first argument of $hash must be a string.")
    name = _HASH_ALGORITHMS.get(algorithm) if isinstance(algorithm, str) else None
    if name is None:
        raise _fail(
            "The second argument of $hash must be one of "
            f"[{', '.join(_HASH_ALGORITHMS)}], but was: {_shown(algorithm)}"
        )
    return hashlib.new(name, value.encode()).hexdigest()


def _random(has_seed: bool = False, seed: JSON = None, has_extra: bool = False) -> JSON:
    """``$random([seed])``: a float in [0, 1); with a seed, always the same float for it.

    The seed is any number (a non-integer included); another value, ``null`` included, is
    JSONata's T0410, and so is a second argument (issue 15). An undefined seed is no seed.
    """
    if has_extra:
        raise _signature_mismatch("random", 2)
    if not has_seed:
        return _CURRENT.get().entropy.random()
    if not _is_number(seed):
        raise _signature_mismatch("random", 1)
    key: int | float = int(seed) if float(seed).is_integer() else float(seed)
    return random.Random(key).random()


def _uuid() -> JSON:
    """``$uuid()``: a version-4 UUID string."""
    return _CURRENT.get().entropy.uuid4()


def _parse(text: JSON = None) -> JSON:
    """``$parse(json_text)``: the JSON value a string holds."""
    if not isinstance(text, str):
        raise _fail("The argument of $parse must be a string.")
    try:
        value = _decode(text)
    except (msgspec.DecodeError, RecursionError):
        # msgspec refuses values nested past its depth limit with RecursionError.
        raise _fail(f"The argument of $parse is not valid JSON: {text}") from None
    return _host_value(value)


def _eval(*args: JSON) -> JSON:
    raise _fail("The function $eval is not supported. Use $parse instead.")


def _millis() -> JSON:
    return _host_value(int(_CURRENT.get().now * 1000))


def _now(picture: JSON = None, timezone: JSON = None) -> JSON:
    millis = int(_CURRENT.get().now * 1000)
    if picture is None and timezone is None:
        moment = _dt.datetime.fromtimestamp(millis / 1000, _dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
    # Pictures and time zones are JSONata's own formatting: delegate to $fromMillis.
    if timezone is None:
        return _from_millis(False).run({"m": millis, "p": picture})
    return _from_millis(True).run({"m": millis, "p": picture, "t": timezone})


def _pad(text: JSON = None, width: JSON = None, char: JSON = None) -> JSON:
    """JSONata's ``$pad``, with the width checked before the engine builds the string.

    One deviation from the engine's own ``$pad``: an undefined first argument gives ``null``
    rather than undefined (a host function cannot return undefined).
    """
    is_number = isinstance(width, int | float) and not isinstance(width, bool)
    if is_number and (not math.isfinite(width) or abs(width) > MAX_STRING_LENGTH):
        raise _fail(
            f"The width of $pad must be at most {MAX_STRING_LENGTH} characters, "
            f"but was {_shown(width) if math.isfinite(width) else width}."
        )
    bindings: dict[str, JSON] = {"w": width}
    if text is not None:
        bindings["s"] = text
    if char is not None:
        bindings["c"] = char
    # The engine's own $pad does the rest (its argument checks and errors included).
    value = _builtin("$pad($s, $w)" if char is None else "$pad($s, $w, $c)").run(bindings)
    return None if value is UNDEFINED or value is FUNCTION else value


#: Longest array the engine's own ``$distinct`` is given: it compares every pair (quadratic, and
#: deaf to the time budget: 100,000 items took 26 s in the engine); longer ones are de-duplicated
#: here in linear time.
_ENGINE_DISTINCT_MAX: Final = 1000
_distinct_key: Final = msgspec.json.Encoder(order="sorted")


def _distinct(values: JSON = None) -> JSON:
    """JSONata's ``$distinct`` (defined by a prelude: the engine refuses to override it): the
    values of an array without duplicates (deep equality, the first occurrence kept, in order).

    Short arrays and non-arrays go to the engine's own ``$distinct`` (its sequence rules
    included); longer arrays are de-duplicated here by a canonical encoding of each value
    (object keys sorted, an integral number the same as its integer), in linear time.
    """
    if not isinstance(values, list) or len(values) <= _ENGINE_DISTINCT_MAX:
        value = _builtin("$distinct($v)").run({"v": values})
        return None if value is UNDEFINED or value is FUNCTION else value
    seen: set[bytes] = set()
    unique: list[JSON] = []
    for item in values:
        canonical = int(item) if isinstance(item, float) and item.is_integer() else item
        key = _distinct_key.encode(canonical)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


_HOST_FUNCTIONS: Final[dict[str, Callable[..., JSON]]] = {
    "partition": _partition,
    "hash": _hash,
    "uuid": _uuid,
    "parse": _parse,
    "eval": _eval,
    "now": _now,
    "millis": _millis,
    "pad": _pad,
}

#: JSONata built-ins replaced by a guarded version (sizes checked before building).
_GUARDED_BUILTINS: Final = frozenset({"pad"})

#: AWS's functions whose behaviour a host function alone cannot give: a host function receives
#: ``None`` for a ``null`` and for an undefined argument alike, and cannot return undefined
#: or a sequence. Each is defined, in a block around the expression, as a JSONata lambda that
#: tells its host function which arguments are defined and turns the host's list into a
#: JSONata sequence (none: undefined; one: the value; more: an array). Only expressions that
#: name the function get its prelude; causes keep quoting the expression as written.
_PRELUDES: Final[dict[str, str]] = {
    "range": (
        "$range := function($start, $end, $step, $extra) {("
        "$items := $__statemill_range($exists($start), $start, $exists($end), $end, "
        "$exists($step), $step, $exists($extra)); "
        "$count($items) = 0 ? $__statemill_undefined "
        ": ($count($items) = 1 ? $items[0] : $items))}"
    ),
    "random": (
        "$random := function($seed, $extra) {"
        "$__statemill_random($exists($seed), $seed, $exists($extra))}"
    ),
    "distinct": (
        "$distinct := function($values) {"
        "$exists($values) ? $__statemill_distinct($values) : $__statemill_undefined}"
    ),
}
_PRELUDE_HOSTS: Final[dict[str, tuple[str, Callable[..., JSON]]]] = {
    "range": ("__statemill_range", _range),
    "random": ("__statemill_random", _random),
    "distinct": ("__statemill_distinct", _distinct),
}


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


def _host_value(value: JSON) -> JSON:
    """:func:`engine_value` for a host function's result (its failure is the expression's)."""
    try:
        return engine_value(value)
    except ValueError as exc:
        raise _fail(str(exc)) from None


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
        try:
            value = self._expr.evaluate(None, bindings, **_GUARDRAILS)
        except OverflowError:
            # A bound value holds an integer outside the engine's 64-bit range. The engine
            # converts the bindings before it evaluates anything (no host function has run),
            # so evaluating again with those integers as doubles is safe.
            bindings = engine_value(bindings)
            value = self._expr.evaluate(None, bindings, **_GUARDRAILS)
        if value is None:
            # None stands for null, undefined and functions alike; the JSON form tells them
            # apart (undefined has none, null is "null", a function serialises as "").
            text = self._expr.evaluate_json_or_none(None, bindings, **_GUARDRAILS)
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


def engine_name() -> str:
    """The name of the JSONata implementation in use (for benchmarks and diagnostics)."""
    if isinstance(_engine, JsonatapyEngine):
        return f"jsonatapy {jsonatapy.__version__}"
    return type(_engine).__name__


def set_engine(engine: Engine) -> Engine:
    """Swap the JSONata implementation (tests and engine comparisons); returns the old one."""
    global _engine
    previous, _engine = _engine, engine
    compile_expression.cache_clear()
    _from_millis.cache_clear()
    _builtin.cache_clear()
    return previous


# ---------------------------------------------------------------------------------------------
# Expressions
# ---------------------------------------------------------------------------------------------


@final
class JsonataExpression:
    """One compiled ``{% %}`` expression. Build with :func:`compile_expression`.

    Attributes:
        source: the string as written, with its delimiters.
        text: the expression between the delimiters, stripped (as AWS quotes it in causes).
        names: the ``$name`` variables the expression may read (a superset).
    """

    __slots__ = ("_compiled", "names", "source", "text", "uses_context", "uses_states")

    def __init__(self, source: str, text: str, compiled: Compiled, names: frozenset[str]) -> None:
        self.source = source
        self.text = text
        self._compiled = compiled
        self.names = names - {"states"}
        self.uses_states = "states" in names
        # True unless every $states is followed by .input, .result or .errorOutput.
        self.uses_context = len(_STATES.findall(text)) > len(_STATES_WITHOUT_CONTEXT.findall(text))

    def __repr__(self) -> str:
        return f"JsonataExpression({self.source!r})"

    def run(self, env: Env, field: str) -> JSON:
        """The raw result: a JSON value, :data:`UNDEFINED` or :data:`FUNCTION`.

        Raises:
            QueryEvaluationError: the evaluation failed.
        """
        variables = env.variables
        bindings = {name: variables[name] for name in self.names if name in variables}
        if self.uses_states:
            bindings["states"] = env.states if self.uses_context else env.base
        token = _CURRENT.set(env)
        env._pending = None
        try:
            return self._compiled.run(bindings)
        except ValueError as exc:
            if env._pending is not None:
                pending, env._pending = env._pending, None
                pending.location = field
                raise pending from None
            raise QueryEvaluationError(
                f"The JSONata expression '{self.text}' specified for the field '{field}' "
                f"threw an error during evaluation. {_engine_message(exc)}",
                field,
            ) from None
        finally:
            _CURRENT.reset(token)

    def evaluate(self, env: Env, field: str) -> JSON:
        """A JSON value: undefined and function results are errors, as in AWS.

        Raises:
            QueryEvaluationError: the evaluation failed or returned no JSON value.
        """
        value = self.run(env, field)
        if value is UNDEFINED:
            raise QueryEvaluationError(
                f"The JSONata expression '{self.text}' specified for the field '{field}' "
                "returned nothing (undefined).",
                field,
            )
        if value is FUNCTION:
            raise QueryEvaluationError(
                f"The JSONata expression '{self.text}' specified for the field '{field}' "
                "returned an unsupported result type.",
                field,
            )
        return value

    def wrong_type(self, value: JSON, expected: str, field: str) -> QueryEvaluationError:
        """AWS's error for a result of the wrong type (``Expected 'array', but was ...``)."""
        return QueryEvaluationError(
            f"The JSONata expression '{self.text}' specified for the field '{field}' returned "
            f"an unexpected result type. Expected '{expected}', but was "
            f"'{describe_type(value)}' for value: {_shown(value)}",
            field,
        )


def _engine_message(exc: ValueError) -> str:
    message = str(exc)
    # A guarded built-in re-raises the engine's own error from inside a host function.
    for prefix in ("host function raised ValueError: ", "host function raised "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


@functools.lru_cache(maxsize=8192)
def compile_expression(source: str) -> JsonataExpression:
    """Compile a ``{% ... %}`` string (cached by its text).

    Raises:
        ValueError: ``source`` is not a ``{% %}`` string, or its JSONata does not parse.
    """
    if not is_expression(source):
        raise ValueError(f"not a JSONata expression: {source!r}")
    text = source[2:-2].strip()
    if not text:
        raise ValueError("empty JSONata expression")
    names = frozenset(_VARIABLE.findall(text))
    functions = {name: _HOST_FUNCTIONS[name] for name in names & _REPLACED}
    preludes = sorted(names & _PRELUDES.keys())
    if not preludes:
        return JsonataExpression(source, text, _engine.compile(text, functions), names)
    # Parsed as written first, so a syntax error is reported against the text as written.
    _engine.compile(text, {})
    for name in preludes:
        host, function = _PRELUDE_HOSTS[name]
        functions[host] = function
    wrapped = "(" + "; ".join(_PRELUDES[name] for name in preludes) + "; " + text + "\n)"
    return JsonataExpression(source, text, _engine.compile(wrapped, functions), names)


_REPLACED: Final = (AWS_FUNCTIONS | _GUARDED_BUILTINS) - _PRELUDES.keys()


@functools.cache
def _builtin(text: str) -> Compiled:
    """A call of an engine built-in, compiled without host functions (for guarded versions)."""
    return _engine.compile(text, {})


@functools.cache
def _from_millis(with_timezone: bool) -> Compiled:
    text = "$fromMillis($m, $p, $t)" if with_timezone else "$fromMillis($m, $p)"
    return _engine.compile(text, {})


def evaluate(source: str, env: Env, field: str) -> JSON:
    """Evaluate one ``{% %}`` string to a JSON value (see :meth:`JsonataExpression.evaluate`)."""
    return compile_expression(source).evaluate(env, field)


# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------


def _expressions(template: JSON) -> Iterator[str]:
    if isinstance(template, str):
        if is_expression(template):
            yield template
    elif isinstance(template, dict):
        for value in template.values():
            yield from _expressions(value)
    elif isinstance(template, list):
        for value in template:
            yield from _expressions(value)


def compile_template(template: JSON) -> None:
    """Compile every expression of a template (at load time, so evaluation never parses).

    Raises:
        ValueError: an expression does not parse; the message names it.
    """
    for source in _expressions(template):
        try:
            compile_expression(source)
        except ValueError as exc:
            raise ValueError(f"The JSONata expression '{source}' is not valid: {exc}") from None


def template_field(field: str, key: str | int) -> str:
    """The name AWS gives a value inside a template, in causes and in the ``location`` of
    ``EvaluationFailed``: the field, then ``/key`` for each object key and ``[i]`` for each
    array index on the way (``Output/a/b[0]``, ``Assign/x``, ``Arguments/Input/pushLocation``:
    issue 15; AWS's causes name nested values this way)."""
    return f"{field}[{key}]" if isinstance(key, int) else f"{field}/{key}"


def evaluate_template(template: JSON, env: Env, field: str) -> JSON:
    """A template's value: each ``{% %}`` string replaced by its expression's value.

    ``field`` names the template (``Output``, ``Assign``, ``Arguments``, ...); an expression
    nested in it is named by :func:`template_field`.

    Raises:
        QueryEvaluationError: an expression failed or returned no JSON value.
    """
    if isinstance(template, str):
        if template.startswith("{%") and template.endswith("%}"):
            return compile_expression(template).evaluate(env, field)
        return template
    if isinstance(template, dict):
        return {
            key: evaluate_template(value, env, template_field(field, key))
            for key, value in template.items()
        }
    if isinstance(template, list):
        return [
            evaluate_template(value, env, template_field(field, index))
            for index, value in enumerate(template)
        ]
    return template
