"""JSONPath as AWS Step Functions evaluates it (Jayway JsonPath semantics), and ResultPath.

Responsibility: compile a path text once into an immutable :class:`Path` and evaluate it against
the state input (``$``), the context object (``$$``) or a workflow variable (``$name``);
apply a ResultPath to an input (:func:`apply_result_path`).

Semantics (ASL "Paths", "Reference Paths", "ResultPath"; AWS uses Jayway JsonPath):

* A *definite* path (only ``.name``, ``['name']``, ``[n]`` steps, or a multi-name leaf
  ``['a','b']``) yields one value or raises :class:`PathNotFound`, whose ``detail`` is Jayway's
  wording (``Missing property in path $['a']``, ``No results for path: $['a']['b']``, ...).
* An *indefinite* path (``*``, ``..``, slices, unions, filters) yields the list of matches, the
  empty list when nothing matched; it never raises.
* ``.length()`` may end a path; it yields the size of the array, object or string it is applied to.

The parts: :mod:`runtime.lang.pathsyntax` parses the text into steps (filters nest at most
:data:`~runtime.lang.pathsyntax.MAX_FILTER_NESTING` deep), :mod:`runtime.lang.patheval` walks
indefinite paths and tests filters (``=~`` through :mod:`runtime.lang.pathregex`, RE2, linear
time), :mod:`runtime.lang.jsontext` renders values for messages. This module holds what the
rest of the runtime uses: :class:`Path` with its definite evaluation and Jayway's error details,
and the ResultPath merge.

Budgets (issue 11): no evaluation recurses on the input's depth (descendants, ResultPath and
the JSON renderings use explicit stacks).

Invariants: evaluation never mutates its input; results share structure with the input.
This module imports only the standard library, ``runtime.errors`` and ``runtime.lang``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final, final

from runtime.errors import StatesError
from runtime.lang.jsontext import compact_json, java_class, java_string
from runtime.lang.patheval import walk
from runtime.lang.pathsyntax import (
    Index,
    Parser,
    PathSyntaxError,
    Prop,
    Step,
    quote_name,
    steps_definite,
)
from runtime.lang.scope import Scope

__all__ = ["JSON", "Path", "PathNotFound", "PathSyntaxError", "apply_result_path"]

JSON = Any

_PROVIDER: Final = "com.jayway.jsonpath.spi.json.JacksonJsonProvider"
_VARIABLE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class PathNotFound(Exception):
    """A definite path did not resolve.

    Attributes:
        path: the path text as written in the definition.
        detail: Jayway's explanation, e.g. ``Missing property in path $['no']``.
    """

    def __init__(self, path: str, detail: str = "") -> None:
        self.path = path
        self.detail = detail or f"No results for path: {path}"
        super().__init__(f"Invalid path '{path}' : {self.detail}")


@final
class Path:
    """A compiled JSONPath (ASL "Paths"). Build with :meth:`compile`; immutable.

    Attributes:
        text: the path as written.
        is_reference: a Reference Path (only ``.name``, ``['name']``, ``[n]`` steps).
        is_context: starts with ``$$``: evaluated against the context object.
        variable: the workflow variable name for ``$name...`` paths, else ``None``.
        is_definite: yields one value (or raises); otherwise yields a list of matches.
    """

    __slots__ = ("_function", "_keys", "_steps", "is_context", "is_definite", "is_reference",
                 "text", "variable")  # fmt: skip

    text: str
    is_reference: bool
    is_context: bool
    variable: str | None
    is_definite: bool
    _steps: tuple[Step, ...]
    _function: str | None
    _keys: tuple[str | int, ...] | None

    def __init__(self) -> None:
        raise TypeError("use Path.compile(text)")

    @classmethod
    def compile(cls, text: str) -> Path:
        """Compile a path text; raises :class:`PathSyntaxError` when it is malformed."""
        if not isinstance(text, str) or not text.startswith("$"):
            raise PathSyntaxError(f"Invalid JSONPath '{text}': a path must start with '$'")
        variable: str | None = None
        if text.startswith("$$"):
            start = 2
        elif match := _VARIABLE.match(text, 1):
            variable = match.group()
            start = match.end()
        else:
            start = 1
        parser = Parser(text, start)
        steps, function = parser.steps(frozenset())
        if parser.pos != len(text):
            raise parser.fail("unexpected trailing text")
        self = object.__new__(cls)
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "variable", variable)
        object.__setattr__(self, "is_context", text.startswith("$$"))
        object.__setattr__(self, "_steps", steps)
        object.__setattr__(self, "_function", function)
        object.__setattr__(self, "is_definite", steps_definite(steps))
        reference = function is None and all(
            (isinstance(s, Prop) and len(s.names) == 1)
            or (isinstance(s, Index) and len(s.indices) == 1)
            for s in steps
        )
        object.__setattr__(self, "is_reference", reference)
        keys: tuple[str | int, ...] | None = None
        if reference:  # the hot path: plain lookups, no bookkeeping for error messages
            keys = tuple(s.names[0] if isinstance(s, Prop) else s.indices[0] for s in steps)  # type: ignore[union-attr]
        object.__setattr__(self, "_keys", keys)
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Path is immutable")

    def __repr__(self) -> str:
        return f"Path({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Path) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def root(self, data: JSON, scope: Scope | None = None) -> JSON:
        """The document this path reads: the input, the context object or the variable.

        Raises:
            PathNotFound: the path names a workflow variable that is not defined.
        """
        if self.is_context:
            return {} if scope is None else scope.context
        if self.variable is not None:
            variables: Mapping[str, JSON] = {} if scope is None else scope.variables
            if self.variable not in variables:
                raise PathNotFound(self.text, f"The variable '${self.variable}' is not defined")
            return variables[self.variable]
        return data

    def evaluate(self, data: JSON, scope: Scope | None = None) -> JSON:
        """Select from ``data`` (or the context object / a variable).

        Returns the value for a definite path, the list of matches otherwise.

        Raises:
            PathNotFound: a definite path does not resolve.
        """
        document = self.root(data, scope)
        steps: tuple[Step, ...] = self._steps
        keys = self._keys
        if keys is not None:
            node = document
            for key in keys:
                if isinstance(key, str):
                    if isinstance(node, dict) and key in node:
                        node = node[key]
                        continue
                elif isinstance(node, list) and -len(node) <= key < len(node):
                    node = node[key]
                    continue
                return self._definite(document)  # raises PathNotFound with Jayway's detail
            result = node
        elif self.is_definite:
            result = self._definite(document)
        else:
            result = list(walk(document, steps, 0, document))
        if self._function == "length":
            if isinstance(result, list | dict | str):
                return len(result)
            raise PathNotFound(
                self.text, "Aggregation function attempted to calculate value using empty array"
            )
        return result

    def _definite(self, node: JSON) -> JSON:
        """Definite evaluation with Jayway's error details."""
        steps: tuple[Step, ...] = self._steps
        current = "$"
        last = len(steps) - 1
        for position, step in enumerate(steps):
            if isinstance(step, Prop):
                if not isinstance(node, dict):
                    raise PathNotFound(
                        self.text,
                        f"Expected to find an object with property {step.fragment()} in path "
                        f"{current} but found '{java_class(node)}'. This is not a json object "
                        f"according to the JsonProvider: '{_PROVIDER}'.",
                    )
                if len(step.names) > 1:  # a multi-name leaf merges the present properties
                    return {n: node[n] for n in step.names if n in node}
                name = step.names[0]
                current += quote_name(name, step.quote)
                if name not in node:
                    if position == last:
                        raise PathNotFound(self.text, f"No results for path: {current}")
                    raise PathNotFound(self.text, f"Missing property in path {current}")
                node = node[name]
            else:
                assert isinstance(step, Index)
                if node is None:
                    raise PathNotFound(self.text, f"The path {current} is null")
                if not isinstance(node, list):
                    raise PathNotFound(
                        self.text,
                        f"Filter: {step.fragment()} can only be applied to arrays. "
                        f"Current context is: {java_string(node)}",
                    )
                index = step.indices[0]
                current += step.fragment()
                if not -len(node) <= index < len(node):
                    raise PathNotFound(self.text, f"No results for path: {current}")
                node = node[index]
        return node


def _set(node: JSON, steps: tuple[Step, ...], value: JSON) -> JSON:
    """A copy of ``node`` with ``value`` at ``steps``; copies only the spine. Raises KeyError.

    Missing objects on the way are created. Iterative: a path of any length is fine."""
    spine: list[tuple[JSON, str | int]] = []
    last = len(steps) - 1
    for position, step in enumerate(steps):
        if isinstance(step, Prop):
            name = step.names[0]
            if not isinstance(node, dict):
                raise KeyError(name)
            spine.append((node, name))
            node = node.get(name, {} if position < last else None)
        else:
            assert isinstance(step, Index)
            index = step.indices[0]
            if not isinstance(node, list) or not -len(node) <= index < len(node):
                raise KeyError(index)
            spine.append((node, index))
            node = node[index]
    result = value
    for container, key in reversed(spine):
        updated: Any = dict(container) if isinstance(container, dict) else list(container)
        updated[key] = result
        result = updated
    return result


def apply_result_path(path: Path | None, data: JSON, result: JSON) -> JSON:
    """ASL ResultPath: where a state's result goes in its input.

    ``None`` (``"ResultPath": null``) discards the result and returns ``data``; ``$`` returns the
    result; otherwise a copy of ``data`` with the result at the path, creating missing
    intermediate objects. Neither argument is mutated.

    Raises:
        ValueError: ``path`` is not a reference path on the input (a definition bug).
        StatesError: ``States.ResultPathMatchFailure`` when the path cannot be applied (the
            input or an intermediate node is not an object, or an index is out of range).
    """
    if path is None:
        return data
    if not path.is_reference or path.is_context or path.variable is not None:
        raise ValueError(f"ResultPath must be a reference path on the input: {path.text}")
    steps: tuple[Step, ...] = path._steps
    try:
        return _set(data, steps, result)
    except KeyError:
        raise StatesError(
            "States.ResultPathMatchFailure",
            f"Unable to apply ReferencePath {path.text} to input {compact_json(data)}",
        ) from None
