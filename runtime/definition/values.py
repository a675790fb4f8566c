"""Compiled values: one object per field that takes a value, whichever query language gave it.

A field such as a Wait's ``Seconds``/``SecondsPath``, a Map's ``MaxConcurrency``/
``MaxConcurrencyPath`` or ``Items``/``ItemsPath`` compiles, at load time, into ONE
:class:`Value`: a :class:`Constant`, a :class:`Reference` (a JSONPath reference path into the
effective input, ``$$`` or a variable), an :class:`Expression` (a compiled JSONata ``{% %}``
string), a JSONata :class:`Template`, a JSONPath :class:`PayloadTemplate`, a
:class:`ReferenceOrCall` (a Fail's ``ErrorPath``/``CausePath``: a reference path or an intrinsic
call), the :class:`StateInput` an absent JSONata ``Items`` (or ``Output``) means, or the
:class:`EmptyObject` a JSON null ``OutputPath`` gives. The core reads it through
one method per kind of result (:meth:`Value.integer`, :meth:`Value.count`,
:meth:`Value.percentage`, :meth:`Value.seconds`, :meth:`Value.duration`, :meth:`Value.moment`,
:meth:`Value.items`, :meth:`Value.text`, :meth:`Value.evaluate`), in the state's
:class:`Bindings`; the query languages differ in how a value was compiled, never in a state's
logic (issue 10).

Each subclass raises what AWS raises for its form, word for word (the conformance cases check the
causes): a reference fails with ``States.Runtime``, an expression with
``States.QueryEvaluationError``; a cause is the detail only (the core prefixes "An error occurred
while executing the state ..."). Every number an input chooses is checked against its bound
before any arithmetic sees it (issue 11).

Pure: imports only the standard library, msgspec, ``runtime.errors`` and ``runtime.lang``.
"""

from __future__ import annotations

import datetime as _dt
import re
import sys
from collections.abc import Callable
from typing import Any, Final, Protocol

import msgspec

from runtime.errors import StatesError
from runtime.lang.jsonata import (
    JsonataExpression,
    compile_expression,
    is_expression,
    template_field,
)
from runtime.lang.jsonata_engine import QueryEvaluationError
from runtime.lang.jsonata_functions import Env
from runtime.lang.paths import Path, PathNotFound
from runtime.lang.payload import Expression as PathExpression
from runtime.lang.payload import Payload
from runtime.lang.scope import Scope

__all__ = [
    "MAX_INTEGER",
    "MAX_LONG",
    "MAX_SECONDS",
    "Bindings",
    "Constant",
    "EmptyObject",
    "Expression",
    "PayloadTemplate",
    "Reference",
    "ReferenceOrCall",
    "StateInput",
    "Template",
    "TemplateNode",
    "Value",
    "jsonata_number",
    "parse_timestamp",
    "path_integer",
]

JSON = Any

MAX_SECONDS: Final = 99_999_999
"""The largest value of ASL's seconds fields (``Seconds``, ``TimeoutSeconds``,
``HeartbeatSeconds``, ``IntervalSeconds``, ``MaxDelaySeconds``): AWS rejects more."""

MAX_LONG: Final = 2**63 - 1
"""A ``SecondsPath`` value must parse as a long (AWS: "cannot be parsed as a long value")."""

MAX_INTEGER: Final = 2**31 - 1
"""A "valid integer" in AWS's messages (``MaxConcurrencyPath``, ``ToleratedFailureCountPath``,
``MaxItemsPerBatchPath``): a 32-bit signed integer."""

_RUNTIME: Final = "States.Runtime"
_RFC3339: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|z|[+-]\d{2}:\d{2})$")
_INTEGER_TEXT: Final = re.compile(r"^[+-]?\d+$")
_NUMBER_TEXT: Final = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_encode = msgspec.json.encode


def _dumps(value: JSON) -> str:
    return _encode(value).decode()


def _shown(value: JSON) -> str:
    """A value as AWS quotes it in a reference's cause: a string as it is, else JSON text."""
    return value if isinstance(value, str) else _dumps(value)


def _is_number(value: JSON) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_timestamp(text: object) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp with an offset, or None if invalid."""
    if not isinstance(text, str) or not _RFC3339.match(text):
        return None
    try:
        moment = _dt.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return moment.timestamp()


class Bindings(Protocol):
    """What a value is evaluated in: the state's effective input (``$`` of a reference path;
    for a JSONata state its raw input), the JSONPath scope (``$$``, variables) and the JSONata
    environment (``$states``, variables), the last two built only when asked for."""

    @property
    def data(self) -> JSON: ...

    def scope(self) -> Scope: ...

    def env(self) -> Env: ...


def path_integer(value: JSON, field: str, path: str) -> int:
    """A reference's value that must be an integer (``MaxConcurrencyPath``,
    ``ToleratedFailureCountPath``, ``MaxItemsPerBatchPath``, ``MaxItemsPath``): a 32-bit one, as
    AWS's "not a valid integer" means; a string holding one is parsed."""
    if isinstance(value, str) and len(value) <= 12 and _INTEGER_TEXT.match(value):
        # AWS parses a string holding an integer ("1"), e.g. a variable assigned as text.
        # (12 characters hold every 32-bit integer; longer texts are not parsed at all.)
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not -MAX_INTEGER - 1 <= value <= MAX_INTEGER
    ):
        raise StatesError(
            _RUNTIME,
            f'The {field} field refers to value "{_shown(value)}" which is not a valid '
            f"integer: {path}",
        )
    return value


def jsonata_number(
    expression: JsonataExpression,
    env: Env,
    field: str,
    *,
    integer: bool = True,
    minimum: float = 0,
    maximum: float | None = MAX_INTEGER,
) -> float:
    """A numeric field given as an expression (``TimeoutSeconds``, ``MaxConcurrency``...),
    checked against ``minimum`` and ``maximum`` before any arithmetic sees it (an integer
    beyond a double's range cannot even be converted to float); an ``int`` when ``integer``."""
    value = expression.evaluate(env, field)
    if not _is_number(value) or (integer and isinstance(value, float) and not value.is_integer()):
        raise expression.wrong_type(value, "integer" if integer else "number", field)
    if value < minimum:
        raise QueryEvaluationError(
            f"The JSONata expression '{expression.text}' specified for the field '{field}' "
            f"returned a value smaller than {minimum:g}: {_dumps(value)}",
            field,
        )
    if maximum is not None and value > maximum:
        raise QueryEvaluationError(
            f"The JSONata expression '{expression.text}' specified for the field '{field}' "
            f"returned a value larger than {maximum:.15g}: {_dumps(value)}",
            field,
        )
    if integer:
        return int(value)
    # Beyond every finite double: the callers' range checks still see "too large".
    return float(min(value, sys.float_info.max))


class Value(msgspec.Struct, frozen=True, kw_only=True):
    """One compiled field value. ``field`` is the ASL field it stands for, without a ``Path``
    suffix (``Seconds`` for ``SecondsPath`` too): AWS's causes name it.

    The typed reads below raise :class:`NotImplementedError` where a form cannot give that
    kind of result (a template is no count); the loader never builds such a pairing.
    """

    field: str

    @property
    def constant(self) -> JSON:
        """The value when the definition gives it as a constant, else ``None`` (for readers of
        a definition that evaluate nothing: exports, imported histories)."""
        return None

    def evaluate(self, bindings: Bindings) -> JSON:
        """The value, any JSON."""
        raise NotImplementedError(type(self).__name__)

    def integer(self, bindings: Bindings) -> int:
        """A 32-bit integer whose range the reader of the value checks (an ItemReader's
        ``ReaderConfig.MaxItems``: the item reader allows 1 to 100,000,000)."""
        raise NotImplementedError(type(self).__name__)

    def count(self, bindings: Bindings) -> int:
        """A non-negative integer (``MaxConcurrency``, ``ToleratedFailureCount``,
        ``MaxItemsPerBatch``, ``MaxInputBytesPerBatch``)."""
        raise NotImplementedError(type(self).__name__)

    def percentage(self, bindings: Bindings) -> float:
        """A number from 0 to 100 (``ToleratedFailurePercentage``)."""
        raise NotImplementedError(type(self).__name__)

    def seconds(self, bindings: Bindings) -> int:
        """A non-negative whole number of seconds (a Wait's ``Seconds``)."""
        raise NotImplementedError(type(self).__name__)

    def duration(self, bindings: Bindings) -> int:
        """A positive whole number of seconds, at most :data:`MAX_SECONDS` (a Task's
        ``TimeoutSeconds``, ``HeartbeatSeconds``)."""
        raise NotImplementedError(type(self).__name__)

    def moment(self, bindings: Bindings) -> float:
        """A timestamp, as seconds since the epoch (a Wait's ``Timestamp``)."""
        raise NotImplementedError(type(self).__name__)

    def items(self, bindings: Bindings) -> list[JSON]:
        """An array (a Map's ``Items``/``ItemsPath``)."""
        raise NotImplementedError(type(self).__name__)

    def text(self, bindings: Bindings) -> str:
        """A string (a Fail's ``Error``, ``Cause``)."""
        raise NotImplementedError(type(self).__name__)


class Constant(Value, frozen=True, kw_only=True):
    """A value written in the definition, checked at load time (either query language)."""

    value: JSON

    @property
    def constant(self) -> JSON:
        return self.value

    def evaluate(self, bindings: Bindings) -> JSON:
        return self.value

    def integer(self, bindings: Bindings) -> int:
        value: int = self.value
        return value

    def count(self, bindings: Bindings) -> int:
        value: int = self.value
        return value

    def percentage(self, bindings: Bindings) -> float:
        return float(self.value)

    def seconds(self, bindings: Bindings) -> int:
        value: int = self.value
        return value

    def duration(self, bindings: Bindings) -> int:
        value: int = self.value
        return value

    def moment(self, bindings: Bindings) -> float:
        moment = parse_timestamp(self.value)
        assert moment is not None  # validated at load time
        return moment

    def items(self, bindings: Bindings) -> list[JSON]:
        value: list[JSON] = self.value
        return value

    def text(self, bindings: Bindings) -> str:
        value: str = self.value
        return value


class Reference(Value, frozen=True, kw_only=True):
    """A JSONPath ``...Path`` field (or ``ItemsPath``): a reference path over the effective
    input, ``$$`` or a variable; a path that matches nothing fails with States.Runtime."""

    path: Path

    def evaluate(self, bindings: Bindings) -> JSON:
        path = self.path
        if path.text == "$":  # the default ItemsPath: identity, no scope needed
            return bindings.data
        try:
            return path.evaluate(bindings.data, bindings.scope())
        except PathNotFound as missing:
            raise StatesError(_RUNTIME, str(missing)) from None

    def integer(self, bindings: Bindings) -> int:
        return path_integer(self.evaluate(bindings), f"{self.field}Path", self.path.text)

    def count(self, bindings: Bindings) -> int:
        value = self.integer(bindings)
        if value < 0:
            # A negative limit would start no iteration, ever.
            raise StatesError(_RUNTIME, f"{self.field} cannot be negative.")
        return value

    def percentage(self, bindings: Bindings) -> float:
        value = self.evaluate(bindings)
        if isinstance(value, str) and _NUMBER_TEXT.match(value):
            value = float(value)
        if not _is_number(value):
            # AWS's field is a float (UpdateMapRun: "toleratedFailurePercentage ... Type:
            # Float"); the value is shown as ToleratedFailureCountPath shows it.
            raise StatesError(
                _RUNTIME,
                f"The {self.field}Path field refers to value "
                f'"{_shown(value)}" which is not a valid float: {self.path.text}',
            )
        # Clamped first: an integer past a double's range cannot be converted, and any value
        # outside 0..100 fails below all the same.
        percentage = float(min(max(value, -1), 101))
        if not 0 <= percentage <= 100:
            raise StatesError(_RUNTIME, f"{self.field} must be between 0 and 100.")
        return percentage

    def seconds(self, bindings: Bindings) -> int:
        value = self.evaluate(bindings)
        where = f"{self.path.text} == {_shown(value)}"
        if (
            not _is_number(value)
            or (isinstance(value, float) and not value.is_integer())
            or not -MAX_LONG - 1 <= value <= MAX_LONG
        ):
            # A long: 1e30 (an integral double) is out of range, as AWS's parser says.
            raise StatesError(
                _RUNTIME,
                f"The {self.field}Path parameter cannot be parsed as a long value: {where}",
            )
        if value < 0:
            raise StatesError(
                _RUNTIME, f"The {self.field}Path parameter references a negative value: {where}"
            )
        return int(value)

    def duration(self, bindings: Bindings) -> int:
        value = self.evaluate(bindings)
        path = self.path.text
        # The value as Python shows it ("True", "None", "1.5"): the recorded causes say so.
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise StatesError(_RUNTIME, f"The value at {path} is not a positive integer: {value}")
        if value > MAX_SECONDS:
            # The largest TimeoutSeconds/HeartbeatSeconds a definition may give.
            raise StatesError(
                _RUNTIME,
                f"The value at {path} is larger than the maximum of {MAX_SECONDS}: {value}",
            )
        return value

    def moment(self, bindings: Bindings) -> float:
        value = self.evaluate(bindings)
        moment = parse_timestamp(value)
        if moment is None:
            raise StatesError(
                _RUNTIME,
                f"The {self.field}Path parameter does not reference a valid ISO-8601 "
                f"extended offset date-time format string: {self.path.text} == {_shown(value)}",
            )
        return moment

    def items(self, bindings: Bindings) -> list[JSON]:
        value = self.evaluate(bindings)
        if not isinstance(value, list):
            raise StatesError(
                _RUNTIME, f"Map state input must be an array but was: {_dumps(value)}"
            )
        return value


class Expression(Value, frozen=True, kw_only=True):
    """A JSONata ``{% %}`` string, compiled at load time; it fails with
    States.QueryEvaluationError."""

    expression: JsonataExpression

    def evaluate(self, bindings: Bindings) -> JSON:
        return self.expression.evaluate(bindings.env(), self.field)

    def integer(self, bindings: Bindings) -> int:
        # An expression's value is checked against 0 as every count's is.
        return self.count(bindings)

    def count(self, bindings: Bindings) -> int:
        return int(jsonata_number(self.expression, bindings.env(), self.field))

    def percentage(self, bindings: Bindings) -> float:
        field = self.field
        value = jsonata_number(self.expression, bindings.env(), field, integer=False, maximum=None)
        if value > 100:
            raise QueryEvaluationError(f"{field} must be between 0 and 100.", field)
        return value

    def seconds(self, bindings: Bindings) -> int:
        env = bindings.env()
        return int(jsonata_number(self.expression, env, self.field, maximum=MAX_SECONDS))

    def duration(self, bindings: Bindings) -> int:
        env = bindings.env()
        return int(jsonata_number(self.expression, env, self.field, minimum=1, maximum=MAX_SECONDS))

    def moment(self, bindings: Bindings) -> float:
        value = self.evaluate(bindings)
        moment = parse_timestamp(value)
        if moment is None:
            raise QueryEvaluationError(
                f"The {self.field} field cannot be parsed as an ISO-8601 extended offset "
                f"date-time format string: {_shown(value)}",
                self.field,
            )
        return moment

    def items(self, bindings: Bindings) -> list[JSON]:
        value = self.evaluate(bindings)
        if not isinstance(value, list):
            raise self.expression.wrong_type(value, "array", self.field)
        return value

    def text(self, bindings: Bindings) -> str:
        value = self.evaluate(bindings)
        if not isinstance(value, str):
            raise self.expression.wrong_type(value, "string", self.field)
        return value


class TemplateNode:
    """A JSONata template compiled at load time: each ``{% %}`` string, however deeply nested,
    is a compiled expression named as AWS names it (``Output/a/b[0]``: ``template_field``),
    the rest constant. Evaluating it builds fresh objects and arrays each time (a caller may
    change its result) and never compiles or looks up an expression.

    Equal when compiled from equal templates for the same field."""

    __slots__ = ("_build", "field", "template")

    def __init__(self, template: JSON, field: str) -> None:
        self.template = template
        self.field = field
        self._build = _compile_node(template, field)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TemplateNode):
            return NotImplemented
        return self.field == other.field and self.template == other.template

    def __hash__(self) -> int:
        return hash(self.field)

    def __repr__(self) -> str:
        return f"TemplateNode({self.template!r}, {self.field!r})"

    def evaluate(self, env: Env) -> JSON:
        """The template's value in ``env``.

        Raises:
            QueryEvaluationError: an expression failed or returned no JSON value.
        """
        return self._build(env)


_Build = Callable[[Env], JSON]


def _compile_node(template: JSON, field: str) -> _Build:
    """The builder of one part of a template (see :class:`TemplateNode`)."""
    if is_expression(template):
        expression = compile_expression(template)

        def expression_value(env: Env) -> JSON:
            return expression.evaluate(env, field)

        return expression_value
    if isinstance(template, dict):
        members = tuple(
            (key, _compile_node(value, template_field(field, key)))
            for key, value in template.items()
        )

        def object_value(env: Env) -> JSON:
            return {key: build(env) for key, build in members}

        return object_value
    if isinstance(template, list):
        elements = tuple(
            _compile_node(value, template_field(field, index))
            for index, value in enumerate(template)
        )

        def array_value(env: Env) -> JSON:
            return [build(env) for build in elements]

        return array_value

    def constant(env: Env) -> JSON:
        return template

    return constant


class Template(Value, frozen=True, kw_only=True):
    """A JSONata template: any JSON whose ``{% %}`` strings, however deeply nested, are
    expressions, compiled at load time (:meth:`of`); the rest is constant."""

    template: JSON
    """As written."""
    compiled: TemplateNode

    @classmethod
    def of(cls, field: str, template: JSON) -> Template:
        """``template`` (the field's JSON as written) compiled for ``field``.

        Raises:
            ValueError: a ``{% %}`` string in it does not parse (the validator reports it
                first, as ``InvalidDefinition``).
        """
        return cls(field=field, template=template, compiled=TemplateNode(template, field))

    def evaluate(self, bindings: Bindings) -> JSON:
        return self.compiled.evaluate(bindings.env())

    def items(self, bindings: Bindings) -> list[JSON]:
        value = self.evaluate(bindings)
        if not isinstance(value, list):
            raise QueryEvaluationError(
                f"The field '{self.field}' must be an array but was: {_dumps(value)}", self.field
            )
        return value


class PayloadTemplate(Value, frozen=True, kw_only=True):
    """A JSONPath payload template (``.$`` keys) over the effective input (``BatchInput``)."""

    payload: Payload

    def evaluate(self, bindings: Bindings) -> JSON:
        return self.payload.evaluate(bindings.data, bindings.scope())


class ReferenceOrCall(Value, frozen=True, kw_only=True):
    """A JSONPath field that takes a reference path or an intrinsic call (a Fail's
    ``ErrorPath``/``CausePath``); a path that matches nothing fails with States.Runtime, an
    intrinsic that rejects its arguments with States.IntrinsicFailure."""

    expression: PathExpression

    def evaluate(self, bindings: Bindings) -> JSON:
        return self.expression.evaluate(bindings.data, bindings.scope())

    def text(self, bindings: Bindings) -> str:
        """The value, a non-string one as JSON text."""
        return _shown(self.evaluate(bindings))


class StateInput(Value, frozen=True, kw_only=True):
    """What an absent JSONata ``Items`` means: the state input, which must be an array."""

    def evaluate(self, bindings: Bindings) -> JSON:
        return bindings.data

    def items(self, bindings: Bindings) -> list[JSON]:
        value = bindings.data
        if not isinstance(value, list):
            raise QueryEvaluationError(
                f"Map state input must be an array but was: {_dumps(value)}", self.field
            )
        return value


class EmptyObject(Value, frozen=True, kw_only=True):
    """What a JSON null ``OutputPath`` gives: ``{}``, a new object each time."""

    def evaluate(self, bindings: Bindings) -> JSON:
        return {}
