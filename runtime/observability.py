"""Logging for the runtime's entry points: structlog configured once, to stderr.

The library only logs (``structlog.get_logger("statemill.…")``; handlers get ``context.logger``,
bound to the execution, state and attempt by :func:`runtime.engine.handlers.bound_logger`); it
never configures logging at import time. The entry points (``statemill``, ``python -m runtime``)
call :func:`configure_logging` once, before any logger is bound. It leaves alone an application
that configured structlog itself (``structlog.is_configured()`` and not by us), and always writes
to stderr: stdout carries only a command's result, so ``statemill run ... | jq`` works while
handlers log.

Level and format come from the arguments, else from ``STATEMILL_LOG_LEVEL`` and
``STATEMILL_LOG_FORMAT``, else the quiet default: ``warning``, ``console``.

Imports the standard library only at import time, structlog when it configures: ``statemill
validate`` never pays for it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    import structlog

__all__ = [
    "DEFAULT_FORMAT",
    "DEFAULT_LEVEL",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "configure_logging",
    "is_configured_by_statemill",
    "resolve",
]

#: The levels ``--log-level`` accepts, quietest last.
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")
#: ``console``: one human-readable line an event; ``json``: one JSON object a line.
LOG_FORMATS: Final = ("console", "json")
DEFAULT_LEVEL: Final = "warning"
DEFAULT_FORMAT: Final = "console"
LEVEL_VARIABLE: Final = "STATEMILL_LOG_LEVEL"
FORMAT_VARIABLE: Final = "STATEMILL_LOG_FORMAT"
_LEVEL_NUMBERS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def _marker(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A processor that does nothing: its presence says Statemill configured structlog."""
    return event_dict


def is_configured_by_statemill() -> bool:
    """Whether the current structlog configuration is the one :func:`configure_logging` set."""
    import structlog  # deferred: a fast start (issue 16)

    return structlog.is_configured() and _marker in structlog.get_config()["processors"]


def _stderr_logger(*args: Any) -> structlog.PrintLogger:
    """A logger on the *current* ``sys.stderr`` (looked up per bound logger, not once)."""
    import structlog  # deferred: a fast start (issue 16)

    return structlog.PrintLogger(sys.stderr)


def _choice(value: str | None, variable: str, default: str, allowed: tuple[str, ...]) -> str:
    chosen = (value or os.environ.get(variable) or default).lower()
    if chosen not in allowed:
        raise ValueError(f"{variable}={chosen!r} is not one of {', '.join(allowed)}")
    return chosen


def resolve(level: str | None = None, fmt: str | None = None) -> tuple[str, str]:
    """The (level, format) to use: the arguments, else the environment, else the defaults.

    Raises:
        ValueError: a level or format (given or from the environment) that is not known.
    """
    return (
        _choice(level, LEVEL_VARIABLE, DEFAULT_LEVEL, LOG_LEVELS),
        _choice(fmt, FORMAT_VARIABLE, DEFAULT_FORMAT, LOG_FORMATS),
    )


def configure_logging(
    level: str | None = None, fmt: str | None = None, *, stream: TextIO | None = None
) -> bool:
    """Configure structlog for a Statemill entry point; returns whether it did.

    Does nothing when an application configured structlog itself. Called again (a second
    ``main()`` in one process), it replaces its own configuration.

    Args:
        level: ``debug`` … ``critical`` (default: ``$STATEMILL_LOG_LEVEL``, else ``warning``).
        fmt: ``console`` or ``json`` (default: ``$STATEMILL_LOG_FORMAT``, else ``console``).
        stream: where events go (default: whatever ``sys.stderr`` is when a logger is bound).

    Raises:
        ValueError: an unknown level or format.
    """
    import structlog  # deferred: a fast start (issue 16)

    level, fmt = resolve(level, fmt)
    if structlog.is_configured() and not is_configured_by_statemill():
        return False
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        exceptions: list[Any] = [structlog.processors.dict_tracebacks]
    else:
        colors = (stream or sys.stderr).isatty()
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
        exceptions = []
    structlog.configure(
        processors=[
            _marker,
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *exceptions,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVEL_NUMBERS[level]),
        logger_factory=_stderr_logger if stream is None else structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    return True
