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

Budgets the engine cannot apply (issue 11) are written into the text before it is compiled
(:func:`_guard_text`): every range operator's operands pass through functions that count the
items all ranges of an evaluation build, every chain of ``&`` through one that checks the
string's length and watches what the chains hold, the context forms of ``$replace`` and
``$string`` get their context as an argument, so the guarded versions mean the same, and each
``$string`` is pointed at the guarded version that fits it (measured, only checked, or passed
to a function). Causes quote the text as written.

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
        env.begin()
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


#: The prefix of the names the guards bind in an expression's text (its preludes).
RESERVED_PREFIX: Final = "__statemill"


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
    if any(name.startswith(RESERVED_PREFIX) for name in names):
        # The guards' own names (``$__statemill_string`` is the engine's unguarded $string):
        # an expression that named one would call around its guard.
        raise ValueError(f"names starting with ${RESERVED_PREFIX} are reserved")
    guarded = _guard_text(text)
    functions, preludes = host_functions(frozenset(_VARIABLE.findall(guarded)))
    engine = current_engine()
    if guarded is text and not preludes:
        return JsonataExpression(source, text, engine.compile(text, functions), names)
    # Parsed as written first, so a syntax error is reported against the text as written.
    engine.compile(text, {})
    wrapped = "(" + "; ".join(preludes) + "; " + guarded + "\n)" if preludes else guarded
    return JsonataExpression(source, text, engine.compile(wrapped, functions), names)


# ---------------------------------------------------------------------------------------------
# Guards written into the text (issue 11)
# ---------------------------------------------------------------------------------------------

_TOKEN: Final = re.compile(
    r"""\s+|/\*.*?\*/|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`"""
    r"""|(?P<number>(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"""
    r"""|(?P<name>\$?[^\s.\[\]{}()",;:?&|!=<>^*/%~+\-'`@#]+|\$)"""
    r"""|(?P<range>\.\.)|(?P<op>:=|~>|!=|<=|>=|\*\*|[-+*/%&|=<>?:;.,^~!@#])"""
    r"""|(?P<open>[\[({])|(?P<close>[\])}])""",
    re.DOTALL,
)
#: A regex literal (``/.../flags``), read where an operand is expected.
_REGEX: Final = re.compile(r"/(?:[^/\\\[]|\\.|\[(?:[^\]\\]|\\.)*\])*/[a-z]*", re.DOTALL)
#: Tokens after which a ``/`` begins an operand (a regex), not a division.
_OPERAND_AFTER: Final = frozenset({"op", "range", "open", "start"})


#: Operators that end an operand of ``&`` (their binding power is below its 50), and the
#: operator names among JSONata's keywords.
_LOOSER_THAN_CONCATENATION: Final = frozenset(
    {",", ";", ":", "?", ":=", "=", "!=", "<", "<=", ">", ">=", "~>", "|", "and", "or", "in"}
)


@final
class _Frame:
    """What the text rewrite knows about one open bracket (or the whole text)."""

    __slots__ = (
        "bracket",
        "comma",
        "commas",
        "dots",
        "inner",
        "item",
        "mixed",
        "operand",
        "replace",
        "string",
    )

    def __init__(self, bracket: str, inner: int, replace: bool, string: int = -1) -> None:
        self.bracket = bracket
        self.inner = inner  # the position after the bracket
        self.replace = replace  # it opens the arguments of a call of $replace
        self.string = string  # where the name is, if it opens the arguments of a $string call
        self.comma = -1  # where the first comma is, if there is one
        self.commas = 0
        self.item = inner  # where the current item (between commas) starts
        self.dots = -1  # where the item's ".." is, if it has one
        self.operand = inner  # where the current run of operators binding tighter than = starts
        self.mixed = ""  # the run's "&" and "+"/"-" operators seen so far


def _guard_text(text: str) -> str:
    """``text`` with the guards the engine cannot apply itself written in (issue 11):

    * each range ``L..R`` of an array constructor becomes ``$__statemill_lo(k, L)..
      $__statemill_hi(k, R)``, pass-through functions that count the items every range of
      the evaluation builds (the engine bounds one sequence, not their sum: a ``$map`` of
      10,000 ranges of 10,000 built 100 million numbers within the time budget); a range
      between two integer literals, ``1..10``, becomes ``1..$__statemill_span(1, 10)``;
    * each chain of concatenations ``a & b & c`` becomes ``$__statemill_text(a & b & c)``,
      which checks the string's length (a string doubling in a loop reached 2 GiB within the
      time budget; a chain's result is at most the sum of its operands, each checked in
      turn). A chain mixed with ``+`` or ``-`` is left as it is (its result may be a number
      or undefined, which a host function cannot return);
    * a two-argument ``$replace(p, r)`` (the context form: the engine passes the context as
      the string) becomes ``$replace($, p, r)``, so the guarded ``$replace`` defined in a
      prelude (a function, which the engine does not give the context) means the same;
      after ``~>`` it is left as it is (the operator passes the string);
    * ``$string()`` (the context form) becomes ``$string($)``, as ``$replace``'s does; a
      call ``$string(p)`` or ``$string(p, b)`` whose ``p`` is a path of field names from a
      variable the text never binds (``$states.input.items``) becomes
      ``$__statemill_bound_string(...)``, which checks the length of the result but does
      not measure the value (see :func:`_is_bound_path`);
    * a ``$string`` that is not called (``$map(xs, $string)``, ``x ~> $string``) becomes
      ``$__statemill_hof_string``, the guarded ``$string`` that ignores a second argument
      other than a boolean: a higher-order function passes its function an index or a key
      there, which the engine's own ``$string`` is not given (unless the text assigns
      ``$string`` itself).

    Strings, names in backquotes, comments and regex literals are left as they are. A text
    this reader does not understand is returned unchanged (the engine's own errors stand).
    """
    if ".." not in text and "&" not in text and "$replace" not in text and "$string" not in text:
        return text
    rename_string = _ASSIGNS_STRING.search(text) is None
    insertions: list[tuple[int, str]] = []
    stack = [_Frame("", 0, False)]
    previous = "start"
    last = ""  # the previous token
    replace_call = False
    string_call = -1
    sites = 0
    position = 0

    def end_operand(frame: _Frame, end: int) -> None:
        if frame.mixed == "&":
            insertions.append((frame.operand, "$__statemill_text("))
            insertions.append((end, ")"))
        frame.mixed = ""

    def end_item(frame: _Frame, end: int) -> None:
        nonlocal sites
        if frame.bracket == "[" and frame.dots >= 0:
            sites += 1
            insertions.extend(_range_insertions(text, frame.item, frame.dots, end, sites))
        frame.dots = -1

    while position < len(text):
        if text[position] == "/" and previous in _OPERAND_AFTER:
            regex = _REGEX.match(text, position)
            if regex is None:
                return text
            position, previous = regex.end(), "operand"
            continue
        match = _TOKEN.match(text, position)
        if match is None:
            return text
        kind, start, position = match.lastgroup, match.start(), match.end()
        if kind is None:
            if text[start] in "'\"`":
                previous = "operand"
            continue
        token = match.group()
        frame = stack[-1]
        after, last = last, token
        if kind == "open":
            call = token == "("
            stack.append(
                _Frame(token, position, replace_call and call, string_call if call else -1)
            )
            replace_call, string_call = False, -1
            previous = "open"
            continue
        replace_call = kind == "name" and token == "$replace" and after != "~>"
        string_call = -1
        if kind == "name" and token == "$string" and rename_string:
            if not _CALLED.match(text, position):
                insertions.append((start + 1, "__statemill_hof_"))
            elif after != "~>":
                string_call = start
        if kind == "close":
            if len(stack) == 1:
                return text
            end_operand(frame, start)
            end_item(frame, start)
            if frame.replace and frame.commas == 1:
                insertions.append((frame.inner, "$, "))
            if frame.string >= 0 and frame.commas <= 1:
                argument = text[frame.inner : frame.comma if frame.commas else start]
                if not argument.strip():
                    insertions.append((frame.inner, "$"))
                elif _is_bound_path(argument, text):
                    insertions.append((frame.string + 1, "__statemill_bound_"))
            stack.pop()
            previous = "operand"
        elif kind == "range":
            if frame.bracket != "[" or frame.dots >= 0:
                return text
            end_operand(frame, start)
            frame.dots, frame.operand = start, position
            previous = "range"
        elif token in _LOOSER_THAN_CONCATENATION:
            end_operand(frame, start)
            if token == ",":
                end_item(frame, start)
                frame.item = position
                if not frame.commas:
                    frame.comma = start
                frame.commas += 1
            frame.operand = position
            previous = "op"
        elif kind == "op":
            if token == "&":
                frame.mixed = "&" if frame.mixed in ("", "&") else "mixed"
            elif token in ("+", "-"):
                frame.mixed = "mixed"
            previous = "op"
        else:
            previous = "operand"
    if len(stack) != 1:
        return text
    end_operand(stack[0], len(text))
    for at, insertion in sorted(insertions, key=lambda item: item[0], reverse=True):
        text = text[:at] + insertion + text[at:]
    return text


_INTEGER: Final = re.compile(r"\s*(-?\s*(?:0|[1-9][0-9]*))\s*")
#: What follows a function's name when it is called (or assigned: not a reference).
_CALLED: Final = re.compile(r"\s*(?:\(|:=)")
#: The text defines a ``$string`` of its own: its references are left alone.
_ASSIGNS_STRING: Final = re.compile(r"\$string\s*:=")
#: A path of field names from a variable: ``$states.input.items``, ``$order.`total due```.
_BOUND_PATH: Final = re.compile(
    r"\s*\$([A-Za-z_][A-Za-z0-9_]*)(?:\s*\.\s*(?:[A-Za-z_][A-Za-z0-9_]*|`[^`]*`))*\s*"
)
_PARAMETERS: Final = re.compile(r"(?:function|λ)\s*\(([^)]*)\)")


def _is_bound_path(argument: str, text: str) -> bool:
    """Whether ``argument`` (of a ``$string`` call in ``text``) is a path of field names from a
    variable that ``text`` never binds (no ``:=``, parameter, ``@`` or ``#`` of that name):
    its value is then part of what the host handed the engine (``$states``, the workflow
    variables), a tree already held in full, so ``$string`` of it is bounded by the payload
    limits and needs no measuring (the guarded ``$string`` measures every value it is given,
    about 30 ms for a 180 KB input; a result over the limits still fails, once built)."""
    path = _BOUND_PATH.fullmatch(argument)
    if path is None:
        return False
    name = re.escape(path.group(1))
    if re.search(rf"\${name}\s*:=|[@#]\s*\${name}\b", text):
        return False
    return not any(
        re.search(rf"\${name}\b", parameters.group(1)) for parameters in _PARAMETERS.finditer(text)
    )


def _range_insertions(
    text: str, start: int, dots: int, end: int, site: int
) -> list[tuple[int, str]]:
    low, high = _INTEGER.fullmatch(text, start, dots), _INTEGER.fullmatch(text, dots + 2, end)
    if low is not None and high is not None:
        # Both operands written as integers: one call counts the items (half the cost).
        first = low.group(1).replace(" ", "")
        return [(dots + 2, f"$__statemill_span({first}, "), (end, ")")]
    return [
        (start, f"$__statemill_lo({site}, "),
        (dots, ")"),
        (dots + 2, f"$__statemill_hi({site}, "),
        (end, ")"),
    ]


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
