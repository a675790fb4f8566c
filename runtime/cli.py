"""The ``statemill`` command: a table of thin commands over the Python API and ``runtime.tools``.

Each command is a function under ``@command(name, *arguments)`` whose docstring is its help; it
reads its arguments and calls ``runtime`` or a tool. :data:`COMMANDS` is the table; the plumbing
the commands share ends the module. Output is JSON on stdout (``history``, ``replay``, ``graph``
and ``export``: text or JSON lines as asked; ``list``, ``machines list`` and ``requests``: a
table unless ``--format json``). Logs (the runtime's and handlers' ``context.logger``) go to
stderr, never stdout (:mod:`runtime.observability`; ``--log-level``, ``--log-format``). Exit
codes: 0 when the command did its job (``run``: whatever the execution's status), 1 when
``validate`` finds the definition invalid, ``replay --check`` a divergence or a request waited
for (``--wait``) failed (``bench``: an invariant failed), 2 for bad usage, an unreadable file,
input that is not JSON or a ``StatemillError``, 3 when the store cannot be opened (a missing
store for a command that only reads, a missing folder, a file that is not a SQLite database or
is damaged, a schema newer than this code, a store another runtime holds, a PostgreSQL server
that cannot be reached), with one line on stderr; ``--debug`` shows the traceback instead. The
store-reading commands never start a runtime, which would resume the executions they find.
Every ``--store`` is opened by :func:`runtime.tools.stores.open_store`: a SQLite path or a
``postgresql://`` URL (``?schema=NAME``), and ``memory`` where it means something (``run``,
``serve``).

The commands live in modules by concern, each with its ``COMMANDS``: :mod:`runtime.cli_run`
(validate, run, bench), :mod:`runtime.cli_tools` (history, replay, export, import, graph,
report), :mod:`runtime.cli_operate` (start, describe, list, requests, stop, redrive,
send-task-*), :mod:`runtime.cli_machines` (machines, schedule), :mod:`runtime.cli_serve`
(worker, serve); :mod:`runtime.cli_table` says what a command is, :mod:`runtime.cli_support`
holds what they share. This module builds the parser, runs the chosen command and turns its
error into the one line and the exit code.

A fast start (issue 16): these modules import only the standard library and ``runtime.errors``
at the top (``runtime.observability`` brings ``logging``); each command imports the tools and
runtime parts it uses; the parser gets only the subcommand named on the command line where the
output cannot depend on the others (:func:`_needed`), and a subcommand's arguments only when it
parses (:class:`~runtime.cli_table.CommandParser`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, Final, final

from runtime import cli_machines, cli_operate, cli_run, cli_serve, cli_tools, observability
from runtime.cli_support import is_reported, is_store_error, single
from runtime.cli_table import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_STORE,
    EXIT_USAGE,
    Command,
    CommandParser,
    UsageError,
)
from runtime.errors import InvalidDefinition, StatemillError

__all__ = [
    "COMMANDS",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "Command",
    "UsageError",
    "main",
]

EPILOG: Final = """\
--store takes a SQLite file (PATH.db), a PostgreSQL URL (postgresql://user@host:port/db, with
?schema=NAME for the tables' schema) or, for run and serve, memory. Only run, worker, serve,
import and start --definition create a SQLite file that does not exist.

exit codes:
  0  the command did its job (run: whatever the execution's status)
  1  validate: invalid definition; replay --check: a divergence; --wait: the request FAILED;
     bench: an invariant failed
  2  bad usage, an unreadable file, input that is not JSON, or an API error (one line on stderr)
  3  the store cannot be opened: no such store (for a command that only reads), no such folder,
     not a SQLite file or a damaged one, a schema newer than this Statemill, held by another
     runtime, or a PostgreSQL server that cannot be reached or refuses the login
--debug prints the traceback of an error instead of its one line."""

#: Every subcommand, in the order ``statemill --help`` lists them.
ORDER: Final = (
    *("validate", "run", "bench"),
    *("history", "replay", "export", "import", "graph", "report"),
    *("start", "describe", "list", "machines", "requests", "schedule", "stop", "worker", "serve"),
    *("redrive", "send-task-success", "send-task-failure"),
)
COMMANDS: Final = tuple(
    sorted(
        (
            entry
            for module in (cli_run, cli_tools, cli_operate, cli_machines, cli_serve)
            for entry in module.COMMANDS
        ),
        key=lambda entry: ORDER.index(entry.name),  # a command missing from ORDER fails here
    )
)


def _options_parser() -> CommandParser:
    """The options every command takes, before or after its name (defaults: not given)."""
    options = CommandParser(add_help=False)
    options.add_argument(
        "--log-level",
        choices=observability.LOG_LEVELS,
        default=argparse.SUPPRESS,
        help=f"log level (default: ${observability.LEVEL_VARIABLE}, else warning)",
    )
    options.add_argument(
        "--log-format",
        choices=observability.LOG_FORMATS,
        default=argparse.SUPPRESS,
        help=f"log format on stderr (default: ${observability.FORMAT_VARIABLE}, else console)",
    )
    options.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the traceback of an error instead of its one line",
    )
    return options


@final
class _Version(argparse.Action):
    """``--version``: the installed distribution's version (read only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        import importlib.metadata

        try:
            version = importlib.metadata.version("statemill")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown (not installed)"
        print(f"statemill {version}")
        parser.exit()


def _parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    """The ``statemill`` parser with the subcommands ``commands``."""
    options = _options_parser()
    parser = argparse.ArgumentParser(
        prog="statemill",
        description="Run and check Amazon States Language state machines.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[options],
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    subparsers = parser.add_subparsers(
        title="commands", metavar="COMMAND", required=True, parser_class=CommandParser
    )
    for entry in commands:
        entry.add_to(subparsers, [options])
    return parser


#: The options before a command that take a value (:func:`_needed` steps over the value).
_VALUED: Final = ("--log-level", "--log-format")


def _needed(argv: Sequence[str]) -> Sequence[Command]:
    """The subcommands the parser needs for ``argv``: only the command it names, or none for
    ``--version``, when the options before it are spelt out in full; else all of them.

    Each subcommand's parser costs ~0.5 ms (argparse looks up its translations each time), about
    10 ms for the table: the whole table is needed only where the top-level parser lists the
    commands (``--help``, a wrong command name) or the command is hard to tell (an abbreviated
    option); in every other case argparse's output does not depend on the other commands.
    """
    tokens = iter(argv)
    version = False
    for token in tokens:
        if token in _VALUED:
            next(tokens, None)
        elif token == "--version":
            version = True
        elif not (token == "--debug" or token.partition("=")[0] in _VALUED):
            if token.startswith("-"):
                return COMMANDS  # -h, --help, an abbreviation, --, a mistake
            named = [entry for entry in COMMANDS if entry.name == token]
            return named or COMMANDS
    return () if version else COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``statemill ARGV`` (``sys.argv[1:]`` when ``None``); returns the exit code."""
    given = list(sys.argv[1:] if argv is None else argv)
    parser = _parser(_needed(given))
    try:
        args = parser.parse_args(given)
    except SystemExit as exc:  # argparse exits on --help and on bad usage; report, don't exit
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    chosen: Command = args.chosen
    args.argv = given
    try:
        level, fmt = observability.resolve(
            getattr(args, "log_level", None), getattr(args, "log_format", None)
        )
    except ValueError as exc:  # from the environment: argparse checked the options
        print(f"statemill {chosen.name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if chosen.runs_work:
        observability.configure_logging(level, fmt)
    try:
        return chosen.run(args)
    except BrokenPipeError:
        # The reader went away (e.g. `statemill history ... | head`): stop quietly, as Unix
        # tools do; point stdout at devnull so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as raised:
        error = single(raised)
        if not is_reported(error) or getattr(args, "debug", False):
            raise
        named = isinstance(error, StatemillError) and not isinstance(error, InvalidDefinition)
        message = f"{type(error).__name__}: {error}" if named else str(error)
        print(f"statemill {chosen.name}: error: {message}", file=sys.stderr)
        return EXIT_STORE if is_store_error(error) else EXIT_USAGE
