"""The ``statemill`` command table: what a command is, the arguments commands share, exit codes.

A command is a function under ``@command(name, *arguments)`` whose docstring is its help (the
first line the summary ``statemill --help`` lists, the rest its description); the ``cli_*``
modules define them and :mod:`runtime.cli` puts them in one table. A command's arguments are
added to its parser only when that command is the one being parsed (:class:`CommandParser`), so
``statemill validate`` does not build twenty other parsers' arguments first (a fast start,
issue 16).

Imports only the standard library.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, Final, final

__all__ = [
    "CAUSE",
    "DEFAULT_STORE",
    "DEFINITION",
    "ERROR",
    "EXECUTION",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "FORMAT",
    "HANDLERS",
    "INPUT",
    "OUTPUT",
    "RUN_STORE_HELP",
    "STATUSES",
    "STORE",
    "STORE_HELP",
    "TOKEN",
    "TYPE",
    "WAIT",
    "Arg",
    "Command",
    "CommandParser",
    "UsageError",
    "arg",
    "command",
]

Arg = tuple[tuple[str, ...], dict[str, Any]]

#: Exit codes (the epilog of ``statemill --help`` and the README's "Command line" list them).
EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2
EXIT_STORE: Final = 3

#: Default store of ``run``: SQLite is the default for anything that is not a test (DESIGN.md).
DEFAULT_STORE: Final = "statemill.db"


@final
class UsageError(Exception):
    """Bad arguments, an unreadable file or input that is not JSON: exit 2 with a message."""


@final
class Command:
    """A subcommand: its name, its arguments and ``run`` (whose docstring is its help)."""

    __slots__ = ("args", "name", "run", "runs_work")

    def __init__(
        self,
        name: str,
        args: tuple[Arg, ...],
        run: Callable[[argparse.Namespace], int],
        runs_work: bool = False,
    ) -> None:
        self.name = name
        self.args = args
        self.run = run
        self.runs_work = runs_work
        """It runs executions (a runtime, handlers): logging is configured before it runs. The
        others never import structlog (a fast start)."""

    def add_to(
        self,
        subparsers: argparse._SubParsersAction[CommandParser],
        parents: Sequence[CommandParser],
    ) -> None:
        """Add this command's parser (its arguments come when it parses) to ``subparsers``."""
        summary, _, rest = _cleandoc(self.run.__doc__ or "").partition("\n")
        parser = subparsers.add_parser(
            self.name, help=summary, description=rest.strip() or None, parents=parents
        )
        parser.pending = self


@final
class CommandParser(argparse.ArgumentParser):
    """A subcommand's parser: it adds its command's arguments when it first parses.

    argparse hands a subcommand's parser its part of the command line through
    ``parse_known_args``; usage, help and errors are only ever printed from inside that call, so
    no output can show the parser before its arguments are there. Without a pending command it
    is an ``ArgumentParser`` (the parser of the options every command takes is one: typeshed
    wants a subparser's parents of the subparser's class).
    """

    pending: Command | None = None

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """``ArgumentParser.parse_known_args``, after adding the command's arguments."""
        entry, self.pending = self.pending, None
        if entry is not None:
            for flags, options in entry.args:
                self.add_argument(*flags, **options)
            self.set_defaults(chosen=entry)
        return super().parse_known_args(args, namespace)


def _cleandoc(doc: str) -> str:
    """``inspect.cleandoc`` for a docstring (``inspect`` itself costs a fast start ~10 ms)."""
    lines = doc.expandtabs().split("\n")
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    margin = min(indents, default=0)
    cleaned = [lines[0].lstrip(), *(line[margin:] for line in lines[1:])]
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    while cleaned and not cleaned[0]:
        cleaned.pop(0)
    return "\n".join(cleaned)


def arg(*flags: str, **options: Any) -> Arg:
    """The arguments of one ``ArgumentParser.add_argument`` call."""
    return flags, options


def command(
    name: str, *args: Arg, runs_work: bool = False
) -> Callable[[Callable[[argparse.Namespace], int]], Command]:
    """The decorated function, as the :class:`Command` ``name`` with these arguments."""
    return lambda run: Command(name, args, run, runs_work)


STORE_HELP: Final = "SQLite file or postgresql:// URL (see statemill --help)"
RUN_STORE_HELP: Final = f"SQLite file, postgresql:// URL or memory (default: {DEFAULT_STORE})"
STORE: Final = arg("--store", metavar="STORE", required=True, help=STORE_HELP)
EXECUTION: Final = arg("execution", metavar="EXECUTION_ARN", help="the execution")
DEFINITION: Final = arg("definition", metavar="DEFINITION", help="definition file (or @FILE)")
INPUT: Final = arg("--input", metavar="JSON|@FILE", default="{}", help="execution input")
TYPE: Final = arg(
    "--type", choices=("STANDARD", "EXPRESS"), default="STANDARD", help="machine type"
)
TOKEN: Final = arg("--task-token", required=True, help="the task token")
ERROR: Final = arg("--error", help="the error code (Retry and Catch match it)")
CAUSE: Final = arg("--cause", help="a human-readable cause")
OUTPUT: Final = arg("--output", metavar="JSON|@FILE", default="{}", help="the Task's result")
STATUSES: Final = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
HANDLERS_HELP: Final = "a dotted name or .py path with a HandlerRegistry or a HANDLERS dict"
HANDLERS: Final = arg(
    "--handlers", metavar="MODULE", action="append", default=[], help=HANDLERS_HELP
)
OBJECTS: Final = arg(
    "--objects",
    metavar="DIR",
    help="the folder of the object store a distributed Map's ItemReader reads from and its "
    "ResultWriter writes to (a sub-folder per S3 bucket); without it they fail the Map Run",
)
WAIT_HELP: Final = "wait up to SECONDS for a runtime on the file to apply the request"
WAIT: Final = arg("--wait", metavar="SECONDS", type=float, default=0.0, help=WAIT_HELP)
FORMAT: Final = arg("--format", choices=("table", "json"), default="table", help="output format")
