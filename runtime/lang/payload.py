"""Payload templates: Parameters, ResultSelector, ItemSelector (ASL "Payload Template").

Responsibility: compile a template once into an immutable :class:`Payload` (and a single
``.$`` value into an :class:`Expression`), then evaluate it against a state input and a
:class:`Scope` on the hot path.

Rules (ASL "Parameters", AWS behaviour):

* A key ending in ``.$`` takes a JSONPath (``$.x``, ``$$.x`` on the context object, ``$var.x`` on
  a workflow variable) or an intrinsic call; the output key drops the suffix. Anything else is
  rejected at compile time with ``SCHEMA_VALIDATION_FAILED`` at the JSON Pointer of the object
  holding the key.
* Other values are copied; objects are processed however deeply nested, including objects
  inside arrays.
* A path that does not resolve fails the state with ``States.Runtime`` ("The JSONPath '$.x'
  specified for the field 'x.$' could not be found in the input '<compact JSON>'").

Invariants: evaluation never mutates the template or the input; constant sub-trees are copied
per evaluation, while values selected by paths are shared with the input (the core never mutates
JSON). This module imports only the standard library and msgspec.
"""

from __future__ import annotations

from typing import Final, final

from runtime.errors import InvalidDefinition, StatesError
from runtime.lang.intrinsics import Intrinsic, IntrinsicSyntaxError, is_intrinsic
from runtime.lang.jsontext import compact_json, java_string
from runtime.lang.paths import (
    JSON,
    Path,
    PathNotFound,
    PathSyntaxError,
)
from runtime.lang.scope import Scope

__all__ = ["Expression", "Payload"]

_SUFFIX: Final = ".$"


def _escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _copy(value: JSON) -> JSON:
    """A deep copy of a JSON constant (only containers need copying)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@final
class Expression:
    """One ``.$`` value: a JSONPath or an intrinsic call. Build with :meth:`compile`.

    Attributes:
        text: the value as written.
        field: the field named in messages, e.g. ``"value.$"`` or ``"ErrorPath"``.
        pointer: JSON Pointer reported when the definition is invalid.
        path: the compiled path, or ``None`` for an intrinsic.
        intrinsic: the compiled intrinsic, or ``None`` for a path.
    """

    __slots__ = ("field", "intrinsic", "path", "pointer", "text")

    text: str
    field: str
    pointer: str
    path: Path | None
    intrinsic: Intrinsic | None

    def __init__(self) -> None:
        raise TypeError("use Expression.compile(text, field, pointer)")

    @classmethod
    def compile(cls, text: str, field: str, pointer: str) -> Expression:
        """Compile a path or intrinsic call.

        Raises:
            InvalidDefinition: ``SCHEMA_VALIDATION_FAILED`` when ``text`` is neither.
        """
        path: Path | None = None
        intrinsic: Intrinsic | None = None
        try:
            if isinstance(text, str) and text.startswith("$"):
                path = Path.compile(text)
            elif isinstance(text, str) and is_intrinsic(text):
                intrinsic = Intrinsic.compile(text)
        except (PathSyntaxError, IntrinsicSyntaxError):
            pass
        if path is None and intrinsic is None:
            raise InvalidDefinition(
                "SCHEMA_VALIDATION_FAILED",
                f"The value for the field '{field}' must be a valid JSONPath or a valid "
                "intrinsic function call",
                pointer,
            )
        self = object.__new__(cls)
        for name, value in (
            ("text", text),
            ("field", field),
            ("pointer", pointer),
            ("path", path),
            ("intrinsic", intrinsic),
        ):
            object.__setattr__(self, name, value)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Expression is immutable")

    def __repr__(self) -> str:
        return f"Expression({self.text!r}, field={self.field!r})"

    def evaluate(self, data: JSON, scope: Scope | None = None) -> JSON:
        """The value of the path or call against ``data`` and ``scope``.

        Raises:
            StatesError: ``States.Runtime`` when a path does not resolve;
                ``States.IntrinsicFailure`` when an intrinsic rejects its arguments.
        """
        scope = Scope() if scope is None else scope
        path = self.path
        if path is not None:
            try:
                return path.evaluate(data, scope)
            except PathNotFound:
                raise self.not_found(data, scope) from None
        assert self.intrinsic is not None
        return self.intrinsic.evaluate(data, scope, field=self.field)

    def not_found(self, data: JSON, scope: Scope) -> StatesError:
        """The ``States.Runtime`` error AWS reports when this path does not resolve."""
        assert self.path is not None
        document = scope.context if self.path.is_context else data
        try:
            shown = compact_json(document)
        except (TypeError, ValueError):  # not JSON (NaN, a foreign object): Java's rendering
            shown = java_string(document)
        return StatesError(
            "States.Runtime",
            f"The JSONPath '{self.text}' specified for the field '{self.field}' could not be "
            f"found in the input '{shown}'",
        )


# Compiled template nodes: constants, expressions, objects and arrays.


@final
class _Const:
    __slots__ = ("is_container", "value")

    def __init__(self, value: JSON) -> None:
        self.value = value
        self.is_container = isinstance(value, dict | list)


@final
class _Object:
    __slots__ = ("entries",)

    def __init__(self, entries: tuple[tuple[str, _Node], ...]) -> None:
        self.entries = entries


@final
class _Array:
    __slots__ = ("items",)

    def __init__(self, items: tuple[_Node, ...]) -> None:
        self.items = items


_Node = _Const | Expression | _Object | _Array


def _has_expression(template: JSON) -> bool:
    if isinstance(template, dict):
        return any(k.endswith(_SUFFIX) or _has_expression(v) for k, v in template.items())
    if isinstance(template, list):
        return any(_has_expression(v) for v in template)
    return False


def _compile(template: JSON, pointer: str) -> _Node:
    if not _has_expression(template):
        return _Const(_copy(template))
    if isinstance(template, list):
        return _Array(
            tuple(_compile(v, f"{pointer}/{i}") for i, v in enumerate(template)),
        )
    assert isinstance(template, dict)
    entries: list[tuple[str, _Node]] = []
    for key, value in template.items():
        if key.endswith(_SUFFIX):
            entries.append((key[: -len(_SUFFIX)], Expression.compile(value, key, pointer)))
        else:
            entries.append((key, _compile(value, f"{pointer}/{_escape_pointer(key)}")))
    return _Object(tuple(entries))


def _run(node: _Node, data: JSON, scope: Scope) -> JSON:
    if isinstance(node, Expression):
        return node.evaluate(data, scope)
    if isinstance(node, _Object):
        return {key: _run(child, data, scope) for key, child in node.entries}
    if isinstance(node, _Array):
        return [_run(child, data, scope) for child in node.items]
    return _copy(node.value) if node.is_container else node.value


@final
class Payload:
    """A compiled payload template. Build with :meth:`compile`; immutable.

    Attributes:
        pointer: JSON Pointer of the template in the definition, e.g. ``/States/A/Parameters``.
        is_constant: the template holds no ``.$`` key, so evaluation only copies it.
    """

    __slots__ = ("_root", "is_constant", "pointer")

    pointer: str
    is_constant: bool
    _root: _Node

    def __init__(self) -> None:
        raise TypeError("use Payload.compile(template, pointer)")

    @classmethod
    def compile(cls, template: JSON, pointer: str) -> Payload:
        """Compile every path and intrinsic of ``template`` (which is not kept or mutated).

        Raises:
            InvalidDefinition: ``SCHEMA_VALIDATION_FAILED`` for a ``.$`` value that is neither a
                JSONPath nor an intrinsic call, at the pointer of the object holding it.
        """
        root = _compile(template, pointer)
        self = object.__new__(cls)
        object.__setattr__(self, "pointer", pointer)
        object.__setattr__(self, "is_constant", isinstance(root, _Const))
        object.__setattr__(self, "_root", root)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Payload is immutable")

    def __repr__(self) -> str:
        return f"Payload(pointer={self.pointer!r})"

    def evaluate(self, data: JSON, scope: Scope | None = None) -> JSON:
        """Build the payload for ``data`` (path-selected values are shared with ``data``).

        Raises:
            StatesError: ``States.Runtime`` when a path does not resolve;
                ``States.IntrinsicFailure`` when an intrinsic rejects its arguments.
        """
        root: _Node = self._root
        return _run(root, data, Scope() if scope is None else scope)
