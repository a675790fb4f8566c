"""The ``=~`` operator of JSONPath filters: ``/pattern/flags`` matched by RE2.

Responsibility: compile a filter's regular expression once, at load time
(:func:`compile_regex`), into a :class:`Regex` whose :meth:`Regex.fullmatch` runs in time
linear in the string (issue 11). A pattern only a backtracking engine can run compiles to an
unsupported :class:`Regex` that fails the state with ``States.Runtime`` when it is used.

This module imports only the standard library, RE2 (``google-re2``) and ``runtime.errors``.
"""

from __future__ import annotations

import re
from typing import Any, Final, final

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

from runtime.errors import StatesError

__all__ = ["REGEX_FLAGS", "Regex", "compile_regex"]


@final
class Regex:
    """The right side of ``=~``: ``/pattern/flags``, matched in linear time by RE2 (issue 11).

    Jayway matches with ``java.util.regex`` (a backtracking engine: ``/(a+)+b/`` on 30
    characters never ends). RE2 accepts the same syntax for everything but backreferences,
    lookaround, possessive and atomic groups and the ``x`` flag; a pattern that needs one of
    those (valid for Java, so AWS accepts the definition) fails the state at run time with
    ``States.Runtime`` instead of risking an exponential match. ``compiled`` is ``None`` then
    and ``unsupported`` says why.
    """

    __slots__ = ("compiled", "source", "unsupported")

    def __init__(self, source: str, compiled: Any, unsupported: str) -> None:
        self.source = source
        self.compiled = compiled
        self.unsupported = unsupported

    def fullmatch(self, value: str) -> bool:
        """Jayway ``=~``: the whole string matches (``Matcher.matches()``).

        Raises:
            StatesError: ``States.Runtime`` when RE2 cannot run the pattern.
        """
        if self.compiled is None:
            raise StatesError(
                "States.Runtime",
                f"The regular expression {self.source} in a JSONPath filter cannot be "
                f"evaluated: {self.unsupported}. Regular expressions are matched in linear "
                "time, without backreferences, lookaround, possessive or atomic groups.",
            )
        try:
            return self.compiled.fullmatch(value) is not None
        except UnicodeEncodeError:  # lone surrogates: RE2 matches UTF-8 text
            text = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return self.compiled.fullmatch(text) is not None


_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is reported by the exception, not on stderr
REGEX_FLAGS: Final = {"i": re.I, "m": re.M, "s": re.S, "x": re.X}


def compile_regex(pattern: str, flags: str) -> Regex:
    """Compile ``/pattern/flags`` with RE2; a pattern RE2 rejects but Python's backtracking
    engine (standing in for Java's) accepts compiles to an unsupported :class:`Regex`.

    Raises:
        ValueError: neither engine accepts the pattern (a definition error).
    """
    source = f"/{pattern}/{flags}"
    inline = "".join(sorted(set(flags)))
    try:
        if "x" in inline:
            raise re2.error("the 'x' flag (comments) is not supported")
        text = f"(?{inline}){pattern}" if inline else pattern
        return Regex(source, re2.compile(text, _RE2_OPTIONS), "")
    except re2.error as exc:
        reason = exc.args[0] if exc.args else str(exc)
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        python_flags = 0
        for flag in flags:
            python_flags |= REGEX_FLAGS[flag]
        try:
            re.compile(pattern, python_flags)
        except re.error as invalid:
            raise ValueError(str(invalid)) from None
        return Regex(source, None, str(reason))
