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

A fast start (issue 16): this module imports only the standard library and ``runtime.errors``
at the top; each command imports the tools and runtime parts it uses.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import inspect
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar, TypeVarTuple, cast, final

from runtime import observability
from runtime.errors import InvalidDefinition, StatemillError

if TYPE_CHECKING:
    from runtime import EventStore, HandlerRegistry, HistoryEvent
    from runtime.api_schedules import ScheduleDescription
    from runtime.definition.model import StateMachine
    from runtime.store.base import ScheduleStore

__all__ = ["COMMANDS", "main"]

JSON = Any
T = TypeVar("T")
Ts = TypeVarTuple("Ts")
Arg = tuple[tuple[str, ...], dict[str, Any]]

#: Exit codes (the epilog of ``statemill --help`` and the README's "Command line" list them).
EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2
EXIT_STORE: Final = 3

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

#: Default store of ``run``: SQLite is the default for anything that is not a test (DESIGN.md).
DEFAULT_STORE: Final = "statemill.db"


@final
class UsageError(Exception):
    """Bad arguments, an unreadable file or input that is not JSON: exit 2 with a message."""


# -- the command table ----------------------------------------------------------------------------


@final
@dataclass(frozen=True)
class Command:
    """A subcommand: its name, its arguments and ``run`` (whose docstring is its help)."""

    name: str
    args: tuple[Arg, ...]
    run: Callable[[argparse.Namespace], int]
    runs_work: bool = False
    """It runs executions (a runtime, handlers): logging is configured before it runs. The
    others never import structlog (a fast start)."""

    def add_to(
        self,
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
        parents: list[argparse.ArgumentParser],
    ) -> None:
        summary, _, rest = inspect.cleandoc(self.run.__doc__ or "").partition("\n")
        parser = subparsers.add_parser(
            self.name, help=summary, description=rest.strip() or None, parents=parents
        )
        for flags, options in self.args:
            parser.add_argument(*flags, **options)
        parser.set_defaults(chosen=self)


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
WAIT_HELP: Final = "wait up to SECONDS for a runtime on the file to apply the request"
WAIT: Final = arg("--wait", metavar="SECONDS", type=float, default=0.0, help=WAIT_HELP)
FORMAT: Final = arg("--format", choices=("table", "json"), default="table", help="output format")


def _options_parser() -> argparse.ArgumentParser:
    """The options every command takes, before or after its name (defaults: not given)."""
    options = argparse.ArgumentParser(add_help=False)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``statemill ARGV`` (``sys.argv[1:]`` when ``None``); returns the exit code."""
    options = _options_parser()
    parser = argparse.ArgumentParser(
        prog="statemill",
        description="Run and check Amazon States Language state machines.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[options],
    )
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for entry in COMMANDS:
        entry.add_to(subparsers, [options])
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad usage; report, don't exit
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    chosen: Command = args.chosen
    args.argv = list(sys.argv[1:] if argv is None else argv)
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
        error = _single(raised)
        if not _is_reported(error) or getattr(args, "debug", False):
            raise
        named = isinstance(error, StatemillError) and not isinstance(error, InvalidDefinition)
        message = f"{type(error).__name__}: {error}" if named else str(error)
        print(f"statemill {chosen.name}: error: {message}", file=sys.stderr)
        return EXIT_STORE if _is_store_error(error) else EXIT_USAGE


def _single(exc: Exception) -> Exception:
    """The one exception inside nested single-exception groups (a runtime's task group wraps
    what its body raises), else ``exc``."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _is_reported(exc: BaseException) -> bool:
    """An error a user gets as one line (not a traceback): bad usage, a ``StatemillError``, a
    store that cannot be opened, a handlers module that does not load."""
    if isinstance(exc, (UsageError, StatemillError)) or _is_store_error(exc):
        return True
    handler_modules = sys.modules.get("runtime.tools.handler_modules")
    return handler_modules is not None and isinstance(exc, handler_modules.HandlerModuleError)


def _is_store_error(exc: BaseException) -> bool:
    """The store cannot be opened (exit 3): ``StoreUnavailable`` from the opener, or the
    runtime's ``StoreLocked`` (another runtime holds the store)."""
    stores = sys.modules.get("runtime.tools.stores")
    if stores is not None and isinstance(exc, stores.StoreUnavailable):
        return True
    # Looked up by name: ``StoreLocked`` is the runtime's error for a held store (issue 12).
    locked = getattr(sys.modules["runtime.errors"], "StoreLocked", None)
    return isinstance(locked, type) and isinstance(exc, locked)


# -- running a definition -------------------------------------------------------------------------


@command("validate", DEFINITION, TYPE)
def _validate(args: argparse.Namespace) -> int:
    """check a definition as CreateStateMachine would

    Print {"valid": true} or {"valid": false, "error": ..., "message": ...}; exit 0 when valid,
    1 when not. --type EXPRESS also checks what an EXPRESS machine may not use (.sync and
    .waitForTaskToken integrations).
    """
    try:
        _load(_read_file(args.definition, "definition"), args.type)
    except InvalidDefinition as exc:
        _print_json({"valid": False, "error": "InvalidDefinition", "message": exc.message})
        return EXIT_INVALID
    _print_json({"valid": True})
    return EXIT_OK


@command(
    "run",
    DEFINITION,
    INPUT,
    HANDLERS,
    TYPE,
    arg("--name", metavar="NAME", help="state machine name (default: sm-<hash of definition>)"),
    arg("--history", action="store_true", help="include the execution's history events"),
    arg("--store", metavar="STORE", default=DEFAULT_STORE, help=RUN_STORE_HELP),
    arg("--virtual-time", action="store_true", help="Wait states and retries take no real time"),
    runs_work=True,
)
def _run(args: argparse.Namespace) -> int:
    """run one execution to its end and print its result

    Create the state machine, start one execution, wait for its end and print {"executionArn",
    "status", "output", "error", "cause"} (and "history" with --history). Exits 0 whatever the
    execution's status.
    """
    from runtime.tools import operations

    text = _read_file(args.definition, "definition")
    _load(text, args.type)  # before opening the store: no file for a bad definition
    run = functools.partial(
        operations.run_execution,
        text,
        _parse_input(args.input),
        store=args.store,
        handlers=_handlers(args),
        machine_type=args.type,
        name=args.name,
        history=args.history,
        virtual_time=args.virtual_time,
    )
    _print_json(_run_async(run))
    return EXIT_OK


@command(
    "bench",
    arg("scenarios", nargs="*", metavar="SCENARIO", help="scenarios to run"),
    arg("--quick", action="store_true", help="small sizes, one run (CI)"),
    arg("--runs", type=int, help="runs per scenario (default: 3; 1 with --quick)"),
    arg("--out", metavar="DIR", help="results directory (default: benchmarks/results)"),
    arg("--loop", choices=("asyncio", "uvloop"), help="event loop"),
    arg("--param", action="append", default=[], metavar="KEY=VALUE", help="override a size"),
    arg("--parked-n", type=int, metavar="N", help="parked: N"),
)
def _bench(args: argparse.Namespace) -> int:
    """run the benchmark suite (python -m benchmarks)

    Run benchmark scenarios (default: all) in the working directory, which must be the root of a
    Statemill checkout (the benchmarks are not installed): a table on stdout, a progress bar on
    stderr, JSON results with machine facts. Exits 1 when an invariant check failed.
    """
    from runtime.tools import bench

    checkout = bench.find_checkout(Path.cwd())
    if checkout is None:
        where = f"no benchmarks/ in {Path.cwd()}: the suite is not installed with statemill"
        raise UsageError(f"{where}; run `statemill bench` from the root of a Statemill checkout")
    return bench.run_benchmarks(checkout, args.argv[1:])  # the same arguments, checked above


# -- debugging: history | replay | export | import | graph | report -------------------------------


@command(
    "history",
    EXECUTION,
    STORE,
    arg("--format", choices=("table", "json"), default="table"),
    arg("--follow", action="store_true", help="poll for new events until the execution ends"),
    arg("--interval", type=float, default=0.5, help="--follow polling interval in seconds"),
)
def _history(args: argparse.Namespace) -> int:
    """print an execution's history events

    A table (event id, time, type, state, short input/output), or with --format json what `aws
    stepfunctions get-execution-history` prints. --follow prints new events until the execution
    ends (with --format json: one AWS-shaped event per line).
    """
    from runtime.tools import history

    options = {"fmt": args.format, "follow": args.follow, "interval": args.interval}
    _on_store(args.store, lambda s: history.print_history(s, args.execution, sys.stdout, **options))
    return EXIT_OK


@command(
    "replay",
    arg("--store", metavar="STORE", help=STORE_HELP),
    arg("--execution", metavar="ARN", help="execution in --store"),
    arg("--state-machine", metavar="ARN", help="with --check: every execution of this machine"),
    arg("--definition", metavar="FILE", help="definition of the --history file"),
    arg("--history", metavar="FILE", help="history file (AWS JSON or ours)"),
    arg("--at", type=int, metavar="N", help="show the execution after event N"),
    arg("--check", metavar="NEW_DEFINITION", help="definition to check"),
    arg("--format", choices=("text", "json"), default="text"),
    arg("-i", "--interactive", action="store_true", help="step through: n, p, g ID, s, q"),
)
def _replay(args: argparse.Namespace) -> int:
    """step through an execution's log; check a changed definition against old logs

    Rebuild an execution (from a store, or a definition and a history file: ours or AWS's) event
    by event: each step's state, input, output, variables, error and retries; --at N: event N and
    the execution after it (status, input, the states in progress with their input, variables
    and what they wait for). --check NEW_DEFINITION re-decides each recorded step with it:
    'compatible' or the first divergent event (with the cause of an error the new definition
    raises), for one execution or (--state-machine) each of a machine's; exits 1 when any
    diverges.
    """
    from runtime.tools import history
    from runtime.tools.aws_history import load_history
    from runtime.tools.replay import check, replay

    new = None if args.check is None else _load(_read_file(args.check, "definition"))
    if args.history is not None:
        if args.store is not None or args.execution is not None:
            raise UsageError("give either --history (with --definition) or --store --execution")
        recorded = (
            new if args.definition is None else _load(_read_file(args.definition, "definition"))
        )
        try:
            document = json.loads(_read_file(args.history, "history"))
            histories = [("", load_history(document, recorded))]
        except ValueError as exc:
            raise UsageError(f"cannot read history {args.history}: {exc}") from exc
    elif args.store is not None and (args.execution or args.state_machine):
        which = {"execution_arn": args.execution or None, "state_machine_arn": args.state_machine}
        histories = _on_store(args.store, lambda s: history.store_histories(s, **which))
        if new is None and len(histories) != 1:
            raise UsageError("--state-machine needs --check (replay shows one execution)")
    else:
        raise UsageError("give --store PATH --execution ARN, or --definition FILE --history FILE")
    if new is not None:
        results = [check(new, events, arn) for arn, events in histories]
        text = history.format_checks(results, unnamed=args.history or "", fmt=args.format)
        if text:
            print(text)
        return EXIT_OK if all(result.compatible for result in results) else EXIT_INVALID
    steps = list(replay(histories[0][1]))
    if args.interactive and args.at is None:
        for text in history.step_through(steps, sys.stdin):
            print(text, flush=True)
        return EXIT_OK
    try:
        print(history.format_replay(steps, at=args.at, fmt=args.format))
    except ValueError as exc:  # --at out of range
        raise UsageError(str(exc)) from exc
    return EXIT_OK


@command(
    "export",
    STORE,
    arg("--state-machine", metavar="ARN", help="only this machine's executions"),
    arg("--execution", metavar="ARN", help="only this execution"),
    arg("-o", "--output", metavar="FILE", help="output file (default: stdout)"),
)
def _export(args: argparse.Namespace) -> int:
    """write executions of a store as JSON lines

    Write the store's state machines and executions (all, one machine's, or one) as JSON lines,
    with every event, to -o FILE (default: stdout).
    """
    from runtime.tools import export

    read = functools.partial(export.export_lines, state_machine_arn=args.state_machine)
    lines = _on_store(args.store, lambda store: read(store, execution_arn=args.execution))
    text = "".join(line + "\n" for line in lines)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


@command(
    "import",
    arg("file", metavar="FILE", help="a `statemill export` file"),
    STORE,
    arg("--skip-existing", action="store_true", help="skip executions the store already has"),
)
def _import(args: argparse.Namespace) -> int:
    """read executions exported by `statemill export` into a store

    Print {"stateMachines": N, "executions": M} (and "skipped": K with --skip-existing).
    Definitions are validated as CreateStateMachine validates them, logs must fold: a bad line is
    named and nothing of the file is stored. An execution the store already has stops the
    import (ExecutionAlreadyExists) unless --skip-existing.
    """
    from runtime.tools import export

    lines = _read_file(args.file, "export file").splitlines()
    skip = args.skip_existing
    read = functools.partial(export.import_file, lines=lines, skip_existing=skip)
    try:
        counts = _on_store(args.store, read, create=True)
    except ValueError as exc:
        raise UsageError(f"{args.file}: {exc}") from exc
    done: dict[str, Any] = {"stateMachines": counts.state_machines, "executions": counts.executions}
    if skip:
        done["skipped"] = counts.skipped
    _print_json(done)
    return EXIT_OK


@command(
    "graph",
    DEFINITION,
    arg("--execution", metavar="ARN", help="colour by this execution"),
    arg("--store", metavar="STORE", help="store of --execution: " + STORE_HELP),
    arg("--format", choices=("mermaid", "dot", "svg", "svg-basic"), default="mermaid"),
)
def _graph(args: argparse.Namespace) -> int:
    """draw a state machine (and an execution's path) as Mermaid, DOT or SVG

    Choice edges labelled with their rule, Catch edges dashed, branches and Map processors as
    groups; with --execution, each state coloured by its outcome, with counts. --format svg needs
    Graphviz's `dot` on PATH (--format svg-basic: the built-in layout).
    """
    from runtime.tools import graph, history

    machine = _load(_read_file(args.definition, "definition"))
    events: list[HistoryEvent] | None = None
    if args.execution is not None:
        if args.store is None:
            raise UsageError("--execution needs --store")
        _, events, _ = _on_store(args.store, lambda s: history.execution_history(s, args.execution))
    try:
        sys.stdout.write(graph.render(graph.build(machine, events), args.format))
    except ValueError as exc:  # svg without (or with a failing) Graphviz
        raise UsageError(str(exc)) from exc
    return EXIT_OK


@command(
    "report",
    EXECUTION,
    STORE,
    arg("-o", "--output", metavar="FILE", required=True, help="HTML file"),
    arg("--definition", metavar="FILE", help="definition (default: the stored state machine's)"),
)
def _report(args: argparse.Namespace) -> int:
    """write one self-contained HTML page about an execution

    Inline CSS/JS/SVG, nothing from the network: status, failure (state, input, error, retries),
    the graph coloured by outcome, each state's input and output, and the event table.
    """
    from runtime.tools import history, report

    _, events, stored = _on_store(
        args.store, lambda s: history.execution_history(s, args.execution)
    )
    if args.definition is not None:
        text = _read_file(args.definition, "definition")
    elif stored is not None:
        text = stored.definition
    else:
        raise UsageError("the state machine is not in the store: give --definition")
    page = report.render_report(_load(text), events, execution_arn=args.execution)
    Path(args.output).write_text(page, encoding="utf-8")
    _print_json({"report": args.output, "events": len(events)})
    return EXIT_OK


# -- operating a store file (issue 5): a worker, and requests the runtime on the file applies -----


@command(
    "start",
    STORE,
    arg("--state-machine", metavar="ARN", help="state machine ARN"),
    arg("--definition", metavar="FILE", help="definition file: create the state machine"),
    arg("--machine-name", metavar="NAME", help="state machine name with --definition"),
    TYPE,
    INPUT,
    arg("--name", metavar="NAME", help="execution name (default: a UUID)"),
    WAIT,
)
def _start(args: argparse.Namespace) -> int:
    """start an execution in a store file (applied by the runtime running on it)

    Record a StartExecution request for --state-machine or (created or updated first) the
    --definition, print {"executionArn", "requestId", "status"}; a runtime on the file
    (statemill worker) applies it, now or when it starts.
    """
    from runtime.tools import operations

    if (args.state_machine is None) == (args.definition is None):
        raise UsageError("give one of --state-machine ARN or --definition FILE")
    store = args.store
    execution_input = _parse_input(args.input)
    machine_arn = args.state_machine
    if args.definition:
        text = _read_file(args.definition, "definition")
        name = args.machine_name or Path(args.definition).name.split(".")[0]
        machine_arn = _run_async(operations.put_state_machine, store, name, text, args.type)
    body = {"stateMachineArn": machine_arn, "input": execution_input, "name": args.name}
    return _request(args, "start", body)


@command("describe", EXECUTION, STORE)
def _describe(args: argparse.Namespace) -> int:
    """describe an execution in a store file (DescribeExecution)

    An execution whose start is still a request (statemill start, no worker ran yet) does not
    exist yet: the error says so, with the request's id.
    """
    from runtime.tools import operations

    _print_json(_run_async(operations.describe, args.store, args.execution))
    return EXIT_OK


@command(
    "list",
    STORE,
    arg("--state-machine", metavar="ARN", help="only this state machine's"),
    arg("--status", choices=STATUSES, help="only executions with this status"),
    arg("--max-results", type=int, default=100),
    FORMAT,
)
def _list(args: argparse.Namespace) -> int:
    """list the executions in a store file, newest first (ListExecutions)

    A table (status, start time, duration, name, state machine, ARN), or with --format json
    {"executions": [DescribeExecution output...]}.
    """
    from runtime.tools import operations

    path, machine, status = args.store, args.state_machine, args.status
    found = _run_async(operations.list_executions, path, machine, status, args.max_results)
    if args.format == "json":
        _print_json({"executions": found})
    else:
        print(operations.executions_table(found, now=time.time()))
    return EXIT_OK


@command(
    "machines",
    arg("action", choices=("list", "describe", "update", "delete"), help="what to do"),
    arg(
        "state_machine",
        nargs="?",
        metavar="STATE_MACHINE_ARN",
        help="describe, update, delete: which",
    ),
    STORE,
    arg("--definition", metavar="FILE", help="update: the new definition"),
    arg("--type", choices=("STANDARD", "EXPRESS"), help="update: a new machine type"),
    FORMAT,
)
def _machines(args: argparse.Namespace) -> int:
    """list, describe, update or delete the state machines in a store file

    list: a table (name, type, creation time, ARN), or with --format json {"stateMachines":
    [...]}; describe ARN: DescribeStateMachine (with the definition and the executions by
    status); update ARN --definition FILE [--type T]: UpdateStateMachine, the definition validated
    first (a runtime on the file runs new executions on it); delete ARN: DeleteStateMachine,
    a stop request recorded for each running execution (a runtime on the file applies them),
    then the machine deleted (an unknown ARN is not an error).
    """
    from runtime.tools import operations

    path = args.store
    if args.action == "list":
        if args.state_machine is not None:
            raise UsageError("machines list takes no STATE_MACHINE_ARN")
        found = _run_async(operations.list_state_machines, path)
        if args.format == "json":
            _print_json({"stateMachines": found})
        else:
            print(operations.machines_table(found))
        return EXIT_OK
    if args.state_machine is None:
        raise UsageError(f"machines {args.action} needs a STATE_MACHINE_ARN")
    if args.action == "describe":
        _print_json(_run_async(operations.describe_state_machine, path, args.state_machine))
        return EXIT_OK
    if args.action == "delete":
        _print_json(_run_async(operations.delete_state_machine, path, args.state_machine))
        return EXIT_OK
    if args.definition is None:
        raise UsageError("machines update needs --definition FILE")
    text = _read_file(args.definition, "definition")
    update = operations.update_state_machine
    _print_json(_run_async(update, path, args.state_machine, text, args.type))
    return EXIT_OK


@command(
    "requests",
    STORE,
    arg("--all", action="store_true", help="done requests too"),
    FORMAT,
)
def _requests(args: argparse.Namespace) -> int:
    """list the requests of a store file that are pending or failed

    The requests recorded by start, stop, redrive and send-task-*: a table (id, kind, status,
    what it is about or why it failed), or with --format json {"requests": [...]}. A pending
    request waits for a runtime on the file (statemill worker).
    """
    from runtime.tools import operations

    found = _run_async(
        functools.partial(operations.list_requests, everything=args.all),
        args.store,
    )
    if args.format == "json":
        _print_json({"requests": [_public(item) for item in found]})
    else:
        print(operations.requests_table(found))
    return EXIT_OK


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "resultText"}


@command(
    "schedule",
    arg("action", choices=("create", "list", "get", "delete"), help="what to do"),
    arg("name", nargs="?", metavar="NAME", help="create, get, delete: the schedule's name"),
    STORE,
    arg("--group", default="default", help="the schedule group (default: default)"),
    arg("--expression", metavar="EXPR", help="create: cron(...), rate(...) or at(...)"),
    arg("--timezone", default="UTC", help="create: ScheduleExpressionTimezone (default: UTC)"),
    arg("--target", metavar="STATE_MACHINE_ARN", help="create: the state machine to start"),
    INPUT,
    arg("--state", choices=("ENABLED", "DISABLED"), default="ENABLED", help="create: State"),
    arg("--start-date", metavar="ISO8601", help="create: StartDate (with its offset)"),
    arg("--end-date", metavar="ISO8601", help="create: EndDate (with its offset)"),
    arg("--flexible-window", type=int, metavar="MINUTES", help="create: FLEXIBLE window"),
    arg("--maximum-event-age", type=int, metavar="SECONDS", help="create: RetryPolicy"),
    arg("--maximum-retry-attempts", type=int, metavar="N", help="create: RetryPolicy"),
    arg("--delete-after-completion", action="store_true", help="create: ActionAfterCompletion"),
    FORMAT,
)
def _schedule(args: argparse.Namespace) -> int:
    """create, list, get or delete the schedules in a store (EventBridge Scheduler's verbs)

    create NAME --expression EXPR --target ARN [--input JSON] [...]: CreateSchedule, prints
    {"ScheduleArn"}; a runtime on the store (statemill worker) fires it (it looks for new
    schedules every second). list: a table (group, name, state, expression, time zone, last
    fire, missed fires), or with --format json {"Schedules": [...]}; get NAME: GetSchedule's
    JSON; delete NAME: DeleteSchedule.
    """
    from datetime import UTC, datetime

    from runtime import api_schedules

    if args.action == "list":
        if args.name is not None:
            raise UsageError("schedule list takes no NAME")
    elif args.name is None:
        raise UsageError(f"schedule {args.action} needs a NAME")

    def date(text: str | None, option: str) -> datetime | None:
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError as exc:
            raise UsageError(f"{option} is not an ISO 8601 date: {text}") from exc

    async def use(store: EventStore) -> int:
        if not hasattr(store, "advance_schedule_mark"):
            raise UsageError(f"{type(store).__name__} does not keep schedules")
        schedules = cast("ScheduleStore", store)
        prefix = "arn:aws:scheduler:us-east-1:123456789012:schedule"
        arn = f"{prefix}/{args.group}/{args.name}"
        if args.action == "create":
            if args.expression is None or args.target is None:
                raise UsageError("schedule create needs --expression and --target")
            retry = {
                key: value
                for key, value in (
                    ("MaximumEventAgeInSeconds", args.maximum_event_age),
                    ("MaximumRetryAttempts", args.maximum_retry_attempts),
                )
                if value is not None
            }
            window = None
            if args.flexible_window is not None:
                window = {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": args.flexible_window}
            schedule = api_schedules.build_schedule(
                args.name,
                args.expression,
                {
                    "Arn": args.target,
                    "Input": json.dumps(_parse_input(args.input)),
                    "RetryPolicy": retry,
                },
                group_name=args.group,
                schedule_expression_timezone=args.timezone,
                flexible_time_window=window,
                state=args.state,
                start_date=date(args.start_date, "--start-date"),
                end_date=date(args.end_date, "--end-date"),
                action_after_completion="DELETE" if args.delete_after_completion else "NONE",
                creation_date=datetime.now(UTC),
            )
            region, account = "us-east-1", "123456789012"
            made = await api_schedules.put_new_schedule(schedules, schedule, region, account)
            _print_json({"ScheduleArn": made})
        elif args.action == "get":
            found = await schedules.get_schedule(arn)
            if found is None:
                raise api_schedules.ResourceNotFoundException(
                    f"Schedule {args.name} does not exist."
                )
            _print_json(_schedule_json(api_schedules.describe_record(found)))
        elif args.action == "delete":
            await api_schedules.delete_stored_schedule(schedules, arn, args.name)
        else:
            listed = await api_schedules.list_stored_schedules(schedules, group_name=None)
            if args.format == "json":
                _print_json({"Schedules": [_schedule_json(d) for d in listed]})
            else:
                print(_schedules_table(listed))
        return EXIT_OK

    return _on_store(args.store, use)


def _schedule_json(described: ScheduleDescription) -> dict[str, JSON]:
    """GetSchedule's JSON, with the fire mark (``LastFire``, ``MissedFires``: ours)."""
    body = described.to_aws()
    last = described.last_fire
    body["LastFire"] = None if last is None else last.isoformat()
    body["MissedFires"] = described.missed_fires
    return body


def _schedules_table(listed: Sequence[ScheduleDescription]) -> str:
    head = ("GROUP", "NAME", "STATE", "EXPRESSION", "TIMEZONE", "LAST FIRE", "MISSED")
    rows = [head]
    for d in listed:
        last = "-" if d.last_fire is None else d.last_fire.isoformat()
        s = d.schedule
        rows.append(
            (
                d.group_name,
                d.name,
                d.state,
                s.schedule_expression,
                s.schedule_expression_timezone,
                last,
                str(d.missed_fires),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@command("stop", EXECUTION, STORE, arg("--error", help="the error code of the abort"), CAUSE, WAIT)
def _stop(args: argparse.Namespace) -> int:
    """stop an execution (StopExecution, applied by the runtime on the file)"""
    body = {"executionArn": args.execution, "error": args.error, "cause": args.cause}
    return _request(args, "stop", body)


@command(
    "worker",
    STORE,
    HANDLERS,
    arg(
        "--exit-when-idle",
        action="store_true",
        help="exit once nothing can move without outside input (a task token, an activity)",
    ),
    arg("--poll", type=float, default=0.5, help="request polling interval (s)"),
    arg(
        "--lease-ttl",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on PostgreSQL: how long this worker's partition leases live unrenewed (default: "
        "10); another worker takes them over this long after this one stops",
    ),
    arg(
        "--status-interval",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="print a status line on stderr every SECONDS (default: 10; 0: never)",
    ),
    runs_work=True,
)
def _worker(args: argparse.Namespace) -> int:
    """run the runtime on a store: resume its executions, apply requests

    Resume the open executions with the handlers and apply requests as they come, until Ctrl-C
    or (--exit-when-idle) until nothing can move without outside input: no request is pending
    and every running execution waits for a task token or an activity worker (each is named on
    stderr). A status line on stderr says what the executions do (running, in a handler, on a
    timer, waiting for input; succeeded and failed since start).
    """
    from runtime.tools import operations

    handlers, idle = _handlers(args), args.exit_when_idle
    serve = functools.partial(
        operations.serve,
        poll=args.poll,
        lease_ttl=args.lease_ttl,
        exit_when_idle=idle,
        status_interval=args.status_interval,
        report=lambda line: print(f"statemill worker: {line}", file=sys.stderr, flush=True),
    )
    # SIGTERM (systemd, Docker, Kubernetes) stops as Ctrl-C does: the runtime closes cleanly
    # and, on PostgreSQL, hands its partitions over at once instead of after the lease.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        done = _run_async(serve, args.store, handlers)
    except KeyboardInterrupt:
        _print_json({"status": "interrupted"})
        return EXIT_OK
    for item in done.get("waiting", []):
        print(
            f"statemill worker: {item['executionArn']} waits for {item['waitsFor']}",
            file=sys.stderr,
        )
    _print_json(done)
    return EXIT_OK


@command("redrive", EXECUTION, STORE, WAIT)
def _redrive(args: argparse.Namespace) -> int:
    """redrive a FAILED, TIMED_OUT or ABORTED execution (applied by the runtime)"""
    return _request(args, "redrive", {"executionArn": args.execution})


@command("send-task-success", STORE, TOKEN, OUTPUT, WAIT)
def _send_task_success(args: argparse.Namespace) -> int:
    """complete a .waitForTaskToken Task (SendTaskSuccess, applied by the runtime)"""
    body = {"taskToken": args.task_token, "output": _parse_input(args.output)}
    return _request(args, "send-task-success", body)


@command("send-task-failure", STORE, TOKEN, ERROR, CAUSE, WAIT)
def _send_task_failure(args: argparse.Namespace) -> int:
    """fail a .waitForTaskToken Task (SendTaskFailure, applied by the runtime)"""
    body = {"taskToken": args.task_token, "error": args.error, "cause": args.cause}
    return _request(args, "send-task-failure", body)


@command(
    "serve",
    arg("--store", metavar="STORE", default=DEFAULT_STORE, help=RUN_STORE_HELP),
    HANDLERS,
    arg("--host", default="127.0.0.1", help="address to listen on (default: loopback only)"),
    arg("--port", type=int, default=8083, help="port to listen on (default: 8083)"),
    arg(
        "--allow-unauthenticated-remote-access",
        action="store_true",
        help="listen on a non-loopback --host although requests are not authenticated",
    ),
    runs_work=True,
)
def _serve(args: argparse.Namespace) -> int:
    """run the runtime and the Step Functions API (boto3, the AWS CLI) on one port

    Serve AWS's JSON protocol on http://HOST:PORT until Ctrl-C: point boto3 (with
    Config(inject_host_prefix=False), for start_sync_execution) or `aws stepfunctions
    --endpoint-url` at it. Requests are not authenticated (SigV4 verification is a later
    step): the server listens on loopback only unless --allow-unauthenticated-remote-access.
    """
    from runtime.http import serve
    from runtime.tools.stores import runtime_store

    options = {"host": args.host, "port": args.port}
    remote = args.allow_unauthenticated_remote_access
    handlers = _handlers(args)

    async def serving() -> None:
        async with runtime_store(args.store, memory=True) as store:
            await serve(store, handlers, **options, allow_unauthenticated_remote=remote)

    try:
        _run_async(serving)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    return EXIT_OK


#: Every subcommand, in the order ``statemill --help`` lists them.
COMMANDS: Final = (
    *(_validate, _run, _bench),
    *(_history, _replay, _export, _import, _graph, _report),
    *(_start, _describe, _list, _machines, _requests, _schedule, _stop, _worker, _serve),
    *(_redrive, _send_task_success, _send_task_failure),
)


# -- shared plumbing ------------------------------------------------------------------------------


def _request(args: argparse.Namespace, kind: str, body: dict[str, JSON]) -> int:
    """Record ``kind`` for a runtime on ``args.store`` to apply; print it (and its result).

    Waited for (``--wait``) and FAILED: the JSON on stdout, the error on stderr, exit 1.
    """
    from runtime.tools import operations

    record = functools.partial(operations.request, wait=args.wait)
    done = _run_async(record, args.store, kind, body)
    _print_json(done)
    if done.get("status") != "FAILED":
        return EXIT_OK
    result = done.get("result")
    why = (
        result
        if not isinstance(result, dict)
        else f"{result.get('error')}: {result.get('message')}"
    )
    print(f"statemill {kind}: request {done['requestId']} FAILED: {why}", file=sys.stderr)
    return EXIT_INVALID


def _load(text: str, machine_type: str = "STANDARD") -> StateMachine:
    """``load_definition`` (imported when first needed: a fast start)."""
    from runtime.definition.load import load_definition

    return load_definition(text, machine_type=machine_type)


def _handlers(args: argparse.Namespace) -> HandlerRegistry:
    """The registry of the ``--handlers`` modules."""
    from runtime.tools.handler_modules import load_handlers

    return load_handlers(args.handlers)


def _read_file(argument: str, what: str) -> str:
    path = argument.removeprefix("@")
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from exc


def _parse_input(argument: str) -> JSON:
    text = _read_file(argument, "input") if argument.startswith("@") else argument
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"input is not valid JSON: {exc}") from exc


def _on_store(spec: str, use: Callable[[EventStore], Awaitable[T]], *, create: bool = False) -> T:
    """``use(store)`` with the store ``spec`` open (a SQLite file must exist unless ``create``)."""
    from runtime.tools.stores import open_store

    async def opened() -> T:
        async with open_store(spec, create=create) as store:
            return await use(store)

    return _run_async(opened)


def _run_async(fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
    """Run ``fn(*args)`` on a fresh event loop, on uvloop where it is installed (STYLE.md 6)."""
    import anyio

    use_uvloop = importlib.util.find_spec("uvloop") is not None
    return anyio.run(fn, *args, backend="asyncio", backend_options={"use_uvloop": use_uvloop})


def _print_json(value: JSON) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
