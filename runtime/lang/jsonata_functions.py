"""JSONata mode's evaluation environment and the functions Step Functions adds to JSONata.

Responsibility: :class:`Env` (what one state's expressions read: ``$states``, the variables,
the decision's clock and entropy), the context variable that hands it to the host functions
during an evaluation (:data:`CURRENT_ENV`), and those host functions with the JSONata preludes
some of them need (:func:`host_functions` says which an expression gets). AWS's additions and
restrictions, as Step Functions documents them:

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

Budgets (issue 11): the functions written here check the size of what they would build before
building it (``$range``, ``$pad``, ``$distinct``; ``$join``, ``$replace`` and ``$string`` through
preludes that measure their arguments and then call the engine's own), count what one evaluation
builds in all (the range operator's items, the guarded functions' characters:
:data:`MAX_RANGE_ITEMS`, :data:`MAX_BUILT_LENGTH`, kept on the :class:`Env`), watch the memory
the chains of ``&`` hold (:data:`MAX_EVALUATION_MEMORY`), and hand the engine integers outside
its 64-bit range as the doubles JSON numbers are. A function's failure is recorded on the
:class:`Env` as a :class:`~runtime.lang.jsonata_engine.QueryEvaluationError` with AWS's wording,
which the evaluation raises in place of the engine's error.

Imports only the standard library, msgspec, ``runtime.lang.scope`` and
:mod:`runtime.lang.jsonata_engine`; :mod:`runtime.lang.jsonata` builds on this module.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import hashlib
import itertools
import math
import random
from collections.abc import Callable, Mapping
from typing import Any, Final, final

import msgspec

from runtime.lang.jsonata_engine import (
    FUNCTION,
    MAX_BUILT_LENGTH,
    MAX_EVALUATION_MEMORY,
    MAX_RANGE_ITEMS,
    MAX_STRING_LENGTH,
    MEMORY_CHECK_LENGTH,
    UNDEFINED,
    QueryEvaluationError,
    builtin,
    engine_value,
    resident_bytes,
    sequence_limit,
    shown,
)
from runtime.lang.scope import Entropy

__all__ = ["AWS_FUNCTIONS", "CURRENT_ENV", "Env", "host_functions"]

JSON = Any

#: The functions Step Functions adds to JSONata, plus the built-ins it changes.
AWS_FUNCTIONS: Final = frozenset(
    {"partition", "range", "hash", "random", "uuid", "parse", "eval", "now", "millis"}
)

_HASH_ALGORITHMS: Final = {
    "MD5": "md5",
    "SHA-1": "sha1",
    "SHA-256": "sha256",
    "SHA-384": "sha384",
    "SHA-512": "sha512",
}
_RANGE_LIMIT: Final = 1000

_decode: Final = msgspec.json.decode

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
        pending: the failure a host function recorded during the evaluation under way (the
            evaluation raises it in place of the engine's error), else ``None``.
        range_items: the items the range operator has built in the evaluation under way.
        built_length: the characters the guarded string functions have built in it.
        unchecked_length: the characters its chains of ``&`` have produced since the
            process's memory was last read (see :data:`MAX_EVALUATION_MEMORY`).
        memory_base: the process's resident memory at the first reading, else ``None``.

    The context object is built only for expressions that read ``$states.context`` (or use
    ``$states`` as a whole): it repeats the execution input, which would double the cost of
    handing ``$states`` to the engine.
    """

    __slots__ = (
        "_context",
        "_full",
        "_range_starts",
        "base",
        "built_length",
        "entropy",
        "memory_base",
        "now",
        "pending",
        "range_items",
        "unchecked_length",
        "variables",
    )

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
        self.pending: QueryEvaluationError | None = None
        self.range_items = 0
        self.built_length = 0
        self.unchecked_length = 0
        self.memory_base: int | None = None
        self._range_starts: dict[int, list[JSON]] = {}

    def begin(self) -> None:
        """Start an evaluation: no failure recorded, nothing built yet."""
        self.pending = None
        self.range_items = 0
        self.built_length = 0
        self.unchecked_length = 0
        self.memory_base = None
        self._range_starts.clear()

    def range_start(self, site: int, value: JSON) -> None:
        """The left operand of range ``site`` (see :func:`_range_low`)."""
        self._range_starts.setdefault(site, []).append(value)

    def range_end(self, site: int) -> JSON:
        """The left operand of range ``site`` recorded last, else ``None``."""
        starts = self._range_starts.get(site)
        return starts.pop() if starts else None

    @property
    def states(self) -> Mapping[str, JSON]:
        """The whole ``$states`` object, context included."""
        if self._full is None:
            assert self._context is not None
            self._full = {**self.base, "context": self._context()}
        return self._full


#: The environment of the evaluation under way, for the host functions (set by
#: :meth:`runtime.lang.jsonata.JsonataExpression.run`).
CURRENT_ENV: Final[contextvars.ContextVar[Env]] = contextvars.ContextVar("statemill_jsonata_env")


class _HostError(Exception):
    """Raised inside an AWS function; the evaluation re-raises the recorded cause."""


def _fail(message: str) -> _HostError:
    env = CURRENT_ENV.get()
    env.pending = QueryEvaluationError(message)
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
            f"[{', '.join(_HASH_ALGORITHMS)}], but was: {shown(algorithm)}"
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
        return CURRENT_ENV.get().entropy.random()
    if not _is_number(seed):
        raise _signature_mismatch("random", 1)
    key: int | float = int(seed) if float(seed).is_integer() else float(seed)
    return random.Random(key).random()


def _uuid() -> JSON:
    """``$uuid()``: a version-4 UUID string."""
    return CURRENT_ENV.get().entropy.uuid4()


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
    return _host_value(int(CURRENT_ENV.get().now * 1000))


def _now(picture: JSON = None, timezone: JSON = None) -> JSON:
    millis = int(CURRENT_ENV.get().now * 1000)
    if picture is None and timezone is None:
        moment = _dt.datetime.fromtimestamp(millis / 1000, _dt.UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"
    # Pictures and time zones are JSONata's own formatting: delegate to $fromMillis.
    if timezone is None:
        return builtin("$fromMillis($m, $p)").run({"m": millis, "p": picture})
    return builtin("$fromMillis($m, $p, $t)").run({"m": millis, "p": picture, "t": timezone})


def _pad(text: JSON = None, width: JSON = None, char: JSON = None) -> JSON:
    """JSONata's ``$pad``, with the width checked before the engine builds the string.

    One deviation from the engine's own ``$pad``: an undefined first argument gives ``null``
    rather than undefined (a host function cannot return undefined).
    """
    is_number = isinstance(width, int | float) and not isinstance(width, bool)
    if is_number and (not math.isfinite(width) or abs(width) > MAX_STRING_LENGTH):
        raise _fail(
            f"The width of $pad must be at most {MAX_STRING_LENGTH} characters, "
            f"but was {shown(width) if math.isfinite(width) else width}."
        )
    bindings: dict[str, JSON] = {"w": width}
    if text is not None:
        bindings["s"] = text
    if char is not None:
        bindings["c"] = char
    # The engine's own $pad does the rest (its argument checks and errors included).
    value = builtin("$pad($s, $w)" if char is None else "$pad($s, $w, $c)").run(bindings)
    if isinstance(value, str):
        _built(len(value))
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
        value = builtin("$distinct($v)").run({"v": values})
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


def _range_low(site: JSON = None, value: JSON = None) -> None:
    """The left operand of the range operator at ``site`` (a number the text rewrite gives
    each range: see ``runtime.lang.jsonata``), recorded for :func:`_range_high`."""
    CURRENT_ENV.get().range_start(site, value)


def _range_high(site: JSON = None, value: JSON = None) -> None:
    """The right operand of the range operator at ``site``: counts the items the range will
    build towards :data:`MAX_RANGE_ITEMS` before the engine builds them.

    Operands that are not integers are left to the engine (its T2003/T2004 errors); the
    operands of one site pair up last in, first out, as nested evaluations do.
    """
    env = CURRENT_ENV.get()
    _count_range(env, env.range_end(site), value)


def _count_range(env: Env, low: JSON, high: JSON) -> None:
    if not (_is_int(low) and _is_int(high)):
        return
    items = int(high) - int(low) + 1
    if items > sequence_limit():
        return  # the engine's own error for one range too long (D2015)
    env.range_items += max(0, items)
    if env.range_items > MAX_RANGE_ITEMS:
        # A ValueError, not a recorded failure: the engine's message sentence quotes the
        # expression, as for the engine's own range error (D2014).
        raise ValueError(
            f"D2014: Range operator results in too many elements (> {MAX_RANGE_ITEMS:,} "
            "in one evaluation, all ranges together)"
        )


def _range_span(low: JSON = None, high: JSON = None) -> JSON:
    """The right operand of a range between two integer literals (``[1..10]``), returned once
    the items are counted as :func:`_range_high` counts them."""
    _count_range(CURRENT_ENV.get(), low, high)
    return high


def _concatenated(value: JSON = None) -> JSON:
    """The result of a chain of ``&`` (always a string), returned once its length is checked
    against :data:`MAX_STRING_LENGTH` (each chain is at most the sum of its operands, so a
    string doubled in a loop stops at twice that; issue 11: it reached 2 GiB) and, every
    :data:`MEMORY_CHECK_LENGTH` characters the chains of the evaluation produce, what the
    process holds against :data:`MAX_EVALUATION_MEMORY` (many results, each within the
    limit, kept at once: a ``$map`` of 10,000 ``$s & $s`` of a 200 KB string)."""
    if not isinstance(value, str):
        return value
    length = len(value)
    if length > MAX_STRING_LENGTH:
        raise _fail(f"The result of the & operator is longer than {MAX_STRING_LENGTH} characters.")
    env = CURRENT_ENV.get()
    env.unchecked_length += length
    if env.unchecked_length >= MEMORY_CHECK_LENGTH:
        env.unchecked_length = 0
        _check_memory(env)
    return value


def _check_memory(env: Env) -> None:
    """Fail the evaluation if the process holds more than :data:`MAX_EVALUATION_MEMORY` bytes
    beyond its first reading in this evaluation."""
    resident = resident_bytes()
    if resident is None:
        return
    if env.memory_base is None:
        env.memory_base = resident
    elif resident - env.memory_base > MAX_EVALUATION_MEMORY:
        raise _fail(
            "The strings built by the & operator exceed the limit of "
            f"{MAX_EVALUATION_MEMORY} bytes of memory in one evaluation."
        )


def _built(length: int) -> None:
    """Count ``length`` characters towards :data:`MAX_BUILT_LENGTH`."""
    env = CURRENT_ENV.get()
    env.built_length += length
    if env.built_length > MAX_BUILT_LENGTH:
        raise _fail(
            f"The strings built by $join, $pad, $replace and $string exceed the limit of "
            f"{MAX_BUILT_LENGTH} characters in one evaluation."
        )


def _replace_too_long(bound: int) -> None:
    if bound > MAX_STRING_LENGTH:
        raise _fail(f"The result of $replace would be longer than {MAX_STRING_LENGTH} characters.")
    _built(bound)


def _replace_fits(
    text: JSON = None, pattern: JSON = None, replacement: JSON = None, limit: JSON = None
) -> bool:
    """Whether ``$replace(text, pattern, replacement, limit)`` is known to stay within
    :data:`MAX_STRING_LENGTH` (and the evaluation's :data:`MAX_BUILT_LENGTH`) without
    matching: ``pattern`` is ``None`` for a regex, ``replacement`` ``None`` for a function
    (bounded call by call: :func:`_replaced`) or a value the engine will refuse.

    A string pattern is counted exactly (``str.count``, linear; the engine replaces it
    literally, ``$0`` included). A regex matches at most ``len(text) + 1`` times; that worst
    case is counted towards the evaluation's total, and when it does not fit, the prelude
    counts the real matches (:func:`_replace_matches`, with ``$match``: linear, but about 1 us
    a match).

    Raises:
        _HostError: the result would be too long.
    """
    if not isinstance(text, str) or not isinstance(replacement, str):
        return True
    count_limit = int(limit) if _is_number(limit) and math.isfinite(limit) else None
    if isinstance(pattern, str):
        if not pattern:
            return True  # the engine's D3010
        count = text.count(pattern)
        if count_limit is not None:
            count = min(count, max(0, count_limit))
        _replace_too_long(len(text) + count * (len(replacement) - len(pattern)))
        return True
    worst = len(text) + (len(text) + 1) * _growth(replacement, len(text))
    if worst > MAX_STRING_LENGTH or worst > MAX_BUILT_LENGTH - CURRENT_ENV.get().built_length:
        return False  # count the real matches
    _built(worst)
    return True


def _growth(replacement: str, longest: int) -> int:
    """Most characters one regex match's replacement can be: ``$n`` references expand to a
    group of the match, at most ``longest`` characters each."""
    return len(replacement) * (longest + 1) if "$" in replacement else len(replacement)


def _replace_matches(text: JSON = None, replacement: JSON = None, matches: JSON = None) -> bool:
    """The regex case of :func:`_replace_fits` from the matched strings (``$match(...).match``:
    none, one string or an array of them)."""
    if not isinstance(text, str) or not isinstance(replacement, str):
        return True
    found = [] if matches is None else matches if isinstance(matches, list) else [matches]
    longest = max((len(item) for item in found if isinstance(item, str)), default=0)
    _replace_too_long(len(text) + len(found) * _growth(replacement, longest))
    return True


def _joined(count: JSON = None, total: JSON = None, separator: JSON = None) -> None:
    """``$join`` of ``count`` values whose strings hold ``total`` characters, with a separator
    of ``separator`` characters: checked against :data:`MAX_STRING_LENGTH` and counted towards
    :data:`MAX_BUILT_LENGTH` before the engine builds it."""
    if not (_is_int(count) and _is_int(total) and _is_int(separator)):
        return
    length = int(total) + max(0, int(count) - 1) * int(separator)
    if length > MAX_STRING_LENGTH:
        raise _fail(f"The result of $join would be longer than {MAX_STRING_LENGTH} characters.")
    _built(length)


def _replaced(value: JSON = None) -> JSON:
    """A replacement function's result, counted towards :data:`MAX_BUILT_LENGTH` (the result
    of ``$replace`` is at most its input plus every replacement)."""
    if isinstance(value, str):
        _built(len(value))
    return value


def _string_fits(length: int) -> None:
    """Refuse a ``$string`` result of at least ``length`` characters before it is built, if it
    is longer than :data:`MAX_STRING_LENGTH` or than what the evaluation may still build."""
    if length > MAX_STRING_LENGTH:
        raise _fail(f"The result of $string would be longer than {MAX_STRING_LENGTH} characters.")
    if length > MAX_BUILT_LENGTH - CURRENT_ENV.get().built_length:
        _built(length)  # fails, with that limit's cause


def _string_content(strings: JSON = None, keys: JSON = None) -> None:
    """``$string`` of an array or object whose strings hold ``strings`` characters and whose
    keys ``keys``, each counted as often as it would be written (a reference to one string
    repeated 60,000 times counts 60,000 times): the result holds at least that many, so a
    value over the limits is refused before the engine writes it (issue 11: 60,000
    references to a 100 KB string aborted the process on a 6 GB allocation)."""
    _string_fits(sum(int(n) for n in (strings, keys) if _is_number(n) and math.isfinite(n)))


#: What compact JSON text holds outside its strings besides the structure: numbers, literals.
_SCALARS: Final = str.maketrans("", "", "0123456789-+.eEtrufalsn:")
#: A step of the nesting depth for each structural byte, plus one (open 2, close 0, comma 1),
#: and masks picking the opening brackets and the commas.
_DEPTH_STEPS: Final = bytes.maketrans(b"[{]},", b"\x02\x02\x00\x00\x01")
_OPENS: Final = bytes.maketrans(b"[{]},", b"\x01\x01\x00\x00\x00")
_COMMAS: Final = bytes.maketrans(b"[{]},", b"\x00\x00\x00\x00\x01")


def _pretty_length(text: str) -> int:
    """The length of compact JSON ``text`` once prettified as JSONata's ``$string(value,
    true)`` does (``JSON.stringify(value, null, 2)``): each item of a non-empty array or
    object on its own line indented by two spaces a level, the closing bracket on its own
    line, a space after each colon.

    A non-empty container whose items are at depth ``d`` adds ``2d + 1`` characters before its
    first item and ``2d - 1`` before its closing bracket (``4d``), each comma at depth ``d``
    ``2d + 1``. Computed without a Python loop over the text (a 180 KB text: about 3 ms):
    strings and empty containers become a ``0``, the structure left is summed with
    ``itertools.accumulate``.
    """
    # Backslashes appear only in strings, each escaping the next character: without the
    # pairs, every quote left delimits a string, and the text between strings is every other
    # piece of a split.
    bare = text.replace("\\\\", "").replace('\\"', "") if "\\" in text else text
    flat = "0".join(bare.split('"')[0::2]).replace("[]", "0").replace("{}", "0")
    structure = flat.translate(_SCALARS).encode("ascii", "ignore")  # JSON: all ASCII
    # The depth after each structural byte: the running sum of (step - 1).
    running = list(itertools.accumulate(structure.translate(_DEPTH_STEPS)))
    positions = range(1, len(structure) + 1)
    opens, commas = structure.translate(_OPENS), structure.translate(_COMMAS)
    open_depths = sum(itertools.compress(running, opens)) - sum(
        itertools.compress(positions, opens)
    )
    comma_depths = sum(itertools.compress(running, commas)) - sum(
        itertools.compress(positions, commas)
    )
    return len(text) + flat.count(":") + 4 * open_depths + 2 * comma_depths + commas.count(1)


def _string_pretty(compact: JSON = None) -> None:
    """``$string(value, true)`` of an array or object whose compact text is ``compact``: the
    prettified length (which grows with the depth of each value: 10,000 references to a
    value nested 1,000 deep would be 5 GB) checked before the engine writes it."""
    if isinstance(compact, str):
        _string_fits(len(compact))
        _string_fits(_pretty_length(compact))


def _string_built(length: JSON = None) -> None:
    """The length of a ``$string`` result, checked against :data:`MAX_STRING_LENGTH` and
    counted towards :data:`MAX_BUILT_LENGTH` (``None``: the result is undefined)."""
    if _is_int(length):
        _string_fits(int(length))
        _built(int(length))


_HOST_FUNCTIONS: Final[dict[str, Callable[..., JSON]]] = {
    "partition": _partition,
    "hash": _hash,
    "uuid": _uuid,
    "parse": _parse,
    "eval": _eval,
    "now": _now,
    "millis": _millis,
    "pad": _pad,
    "__statemill_span": _range_span,
    "__statemill_text": _concatenated,
}

#: JSONata built-ins replaced by a guarded version (sizes checked before building).
_GUARDED_BUILTINS: Final = frozenset({"pad"})

#: Most values (arrays not counted) an array or object may hold for ``$string`` to write it
#: without measuring its strings and keys first (a ``$map`` of ``$string`` over 1,500 records
#: of 13 values each took 25 times as long with every record measured): at most that many
#: strings, each within what one evaluation can build (:data:`MAX_STRING_LENGTH` for most
#: functions), are written before the result's length is checked.
_STRING_UNMEASURED_NODES: Final = 32

#: The end of the guarded ``$string``: the engine's (saved as ``$__statemill_string``) called as
#: the guarded one was, its result's length checked and counted (see :func:`_string_built`).
_STRING_RESULT: Final = (
    "$result := $exists($extra) ? $__statemill_string($value, $prettify, $extra) "
    ": $exists($prettify) ? $__statemill_string($value, $prettify) "
    ": $__statemill_string($value); "
    "$__statemill_string_built($length($result)); "
    "$result"
)

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
    # The range operator's operands, passed through unchanged (undefined included) once
    # counted: the text rewrite of runtime.lang.jsonata puts them around every range.
    "__statemill_lo": (
        "$__statemill_lo := function($site, $value) {"
        "($__statemill_range_low($site, $value); $value)}; "
        "$__statemill_hi := function($site, $value) {"
        "($__statemill_range_high($site, $value); $value)}"
    ),
    # $replace checked before the engine's own builds the string (issue 11: one call built
    # 4 GB). The engine's $replace is kept under another name and does the work, its
    # argument checks and errors included; only strings and numbers reach the host
    # functions (a host function receives no regex or function); a replacement function is
    # wrapped so that each of its results is counted.
    # $join likewise (issue 11: the references to one long string that a $map returns cost
    # nothing until $join copies each: 60,000 of a 100 KB string aborted the process); the
    # strings are measured, not copied, before the engine's $join builds the result.
    "join": (
        "$__statemill_join := $join; "
        "$join := function($strings, $separator) {("
        "$__statemill_joined($count($strings), "
        "$sum($strings[$type($) = 'string'].$length($)), "
        "$type($separator) = 'string' ? $length($separator) : 0); "
        "$exists($separator) ? $__statemill_join($strings, $separator) "
        ": $__statemill_join($strings))}"
    ),
    "replace": (
        "$__statemill_replace := $replace; "
        "$replace := function($str, $pattern, $replacement, $limit) {("
        "$text := $type($str) = 'string' ? $str : null; "
        "$with := $type($replacement) = 'string' ? $replacement : null; "
        "$__statemill_replace_fits($text, $type($pattern) = 'string' ? $pattern : null, "
        "$with, $type($limit) = 'number' ? $limit : null) "
        "? true : $__statemill_replace_matches($text, $with, "
        "$match($str, $pattern, $limit).match); "
        "$by := $type($replacement) = 'function' "
        "? function($m) { $__statemill_replaced($replacement($m)) } : $replacement; "
        "$exists($limit) ? $__statemill_replace($str, $pattern, $by, $limit) "
        ": $__statemill_replace($str, $pattern, $by))}"
    ),
    # $string likewise (issue 11: $string of a $map returning 60,000 references to one
    # 100 KB string aborted the process). The strings and keys of an array or object of
    # more than _STRING_UNMEASURED_NODES values are measured in the engine, each reference
    # counted (one walk: $value.** lists every value below, arrays flattened, and is grouped
    # by type), before anything is written; with
    # prettify, the compact text (bounded by that) is measured once more, as indented, by
    # the host. The engine's own $string writes the result, its rules and errors included
    # (a third argument is passed on for its error). The text rewrite of runtime.lang.jsonata
    # gives the context form its context ($string() becomes $string($)), renames a call whose
    # argument is a path of field names from $states or a variable (a tree the host handed
    # over, bounded by the payload limits) to the version that only checks the result's
    # length, and a reference that is not a call ($map(xs, $string)) to the version that takes
    # a second argument only when it is a boolean: a higher-order function passes an index or
    # a key there, which the engine's own $string is not given. (No signatures: a lambda with
    # one costs about 20 us more a call.)
    "string": (
        "$__statemill_string := $string; "
        "$string := function($value, $prettify, $extra) {("
        "$container := $type($value) in ['array', 'object']; "
        "$nodes := $container ? $value.** : null; "
        f"$count($nodes) > {_STRING_UNMEASURED_NODES} ? ($types := $nodes{{$type($): $}}; "
        "$__statemill_string_content($sum($types.string.$length($)), "
        "$sum($types.object.$sum($keys($).$length($))))) : null; "
        "$container and $prettify = true "
        "? $__statemill_string_pretty($__statemill_string($value)) : null; " + _STRING_RESULT + ")}"
    ),
    "__statemill_hof_string": (
        "$__statemill_hof_string := function($value, $prettify) {"
        "$type($prettify) = 'boolean' ? $string($value, $prettify) : $string($value)}"
    ),
    "__statemill_bound_string": (
        "$__statemill_string := $string; "
        "$__statemill_bound_string := function($value, $prettify, $extra) {("
        + _STRING_RESULT
        + ")}"
    ),
}
_PRELUDE_HOSTS: Final[dict[str, dict[str, Callable[..., JSON]]]] = {
    "range": {"__statemill_range": _range},
    "random": {"__statemill_random": _random},
    "distinct": {"__statemill_distinct": _distinct},
    "__statemill_lo": {
        "__statemill_range_low": _range_low,
        "__statemill_range_high": _range_high,
    },
    "join": {"__statemill_joined": _joined},
    "replace": {
        "__statemill_replace_fits": _replace_fits,
        "__statemill_replace_matches": _replace_matches,
        "__statemill_replaced": _replaced,
    },
    "string": {
        "__statemill_string_content": _string_content,
        "__statemill_string_pretty": _string_pretty,
        "__statemill_string_built": _string_built,
    },
    "__statemill_hof_string": {},
    "__statemill_bound_string": {"__statemill_string_built": _string_built},
}
#: Preludes that call what another defines.
_PRELUDE_NEEDS: Final = {"__statemill_hof_string": "string"}


def _host_value(value: JSON) -> JSON:
    """:func:`engine_value` for a host function's result (its failure is the expression's)."""
    try:
        return engine_value(value)
    except ValueError as exc:
        raise _fail(str(exc)) from None


#: Host functions the text rewrite of :mod:`runtime.lang.jsonata` calls without a prelude.
_GUARDS: Final = frozenset({"__statemill_span", "__statemill_text"})
_REPLACED: Final = (AWS_FUNCTIONS | _GUARDED_BUILTINS | _GUARDS) - _PRELUDES.keys()


def host_functions(names: frozenset[str]) -> tuple[dict[str, Callable[..., JSON]], list[str]]:
    """What an expression that names the variables ``names`` needs: the host functions to
    register with it, and the prelude definitions to put around it (in the order of their
    names; none when it names no function that has one)."""
    functions = {name: _HOST_FUNCTIONS[name] for name in names & _REPLACED}
    names |= {_PRELUDE_NEEDS[name] for name in names & _PRELUDE_NEEDS.keys()}
    preludes = sorted(names & _PRELUDES.keys())
    for name in preludes:
        functions.update(_PRELUDE_HOSTS[name])
    return functions, [_PRELUDES[name] for name in preludes]
