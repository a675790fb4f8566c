"""JSONata mode (ASL "Transforming data with JSONata"): ``{% ... %}`` expressions and templates.

Responsibility: compile ``{% %}`` strings once, evaluate them with the ``$states`` binding and
the workflow variables in scope, and turn every failure into ``States.QueryEvaluationError`` with
AWS's wording. A *template* is any JSON value (``Arguments``, ``Output``, ``Assign``,
``Items``, ``ItemSelector``) in which every string that starts with ``{%`` and ends with ``%}``
is an expression and everything else is a constant, however deeply nested.

The parts below this module: :mod:`runtime.lang.jsonata_engine` (the engine port, the default
``jsonatapy`` engine, the evaluation budget, ``QueryEvaluationError``) and
:mod:`runtime.lang.jsonata_functions` (``Env`` and the functions Step Functions adds to
JSONata). :func:`set_engine` swaps the engine and forgets the expressions the previous one
compiled; ``engine_name`` (defined in the engine module, importable from here) names it.

Invariants: compiled expressions are cached by their text (like :mod:`re`), so the definition
loader's compile is the only parse in practice; evaluation never mutates its inputs. This module
imports only the standard library and the two JSONata modules above.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any, Final, final

from runtime.lang.jsonata_engine import (
    FUNCTION,
    UNDEFINED,
    Compiled,
    Engine,
    QueryEvaluationError,
    current_engine,
    describe_type,
    engine_name,
    install_engine,
    shown,
)
from runtime.lang.jsonata_functions import CURRENT_ENV, Env, host_functions

__all__ = [
    "JsonataExpression",
    "compile_expression",
    "compile_template",
    "engine_name",
    "evaluate",
    "evaluate_template",
    "is_expression",
    "set_engine",
    "template_field",
]

JSON = Any

_VARIABLE: Final = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_STATES: Final = re.compile(r"\$states\b")
_STATES_WITHOUT_CONTEXT: Final = re.compile(r"\$states\s*\.\s*(input|result|errorOutput)\b")


def is_expression(value: object) -> bool:
    """A JSONata ``{% ... %}`` string: exactly that, with no space outside the delimiters."""
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}")


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
        token = CURRENT_ENV.set(env)
        env.pending = None
        try:
            return self._compiled.run(bindings)
        except ValueError as exc:
            if env.pending is not None:
                pending, env.pending = env.pending, None
                pending.location = field
                raise pending from None
            raise QueryEvaluationError(
                f"The JSONata expression '{self.text}' specified for the field '{field}' "
                f"threw an error during evaluation. {_engine_message(exc)}",
                field,
            ) from None
        finally:
            CURRENT_ENV.reset(token)

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
            f"'{describe_type(value)}' for value: {shown(value)}",
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
    functions, preludes = host_functions(names)
    engine = current_engine()
    if not preludes:
        return JsonataExpression(source, text, engine.compile(text, functions), names)
    # Parsed as written first, so a syntax error is reported against the text as written.
    engine.compile(text, {})
    wrapped = "(" + "; ".join(preludes) + "; " + text + "\n)"
    return JsonataExpression(source, text, engine.compile(wrapped, functions), names)


def evaluate(source: str, env: Env, field: str) -> JSON:
    """Evaluate one ``{% %}`` string to a JSON value (see :meth:`JsonataExpression.evaluate`)."""
    return compile_expression(source).evaluate(env, field)


def set_engine(engine: Engine) -> Engine:
    """Swap the JSONata implementation (tests and engine comparisons); returns the old one.
    The expressions compiled by the old one are forgotten (compiled again on first use)."""
    previous = install_engine(engine)
    compile_expression.cache_clear()
    return previous


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
