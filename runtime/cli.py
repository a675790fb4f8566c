"""The ``statemill`` command: a table of thin commands over the Python API and ``runtime.tools``.

Each command is a function under ``@command(name, *arguments)`` whose docstring is its help; it
reads its arguments and calls ``runtime`` or a tool. :data:`COMMANDS` is the table; the plumbing
the commands share ends the module. Output is JSON on stdout (``history``, ``replay``, ``graph``
and ``export``: text or JSON lines as asked). Exit codes: 0 when the command did its job (``run``:
whatever the execution's status), 1 when ``validate`` finds the definition invalid or ``replay
--check`` a divergence (``bench``: an invariant failed), 2 for bad usage, an unreadable file,
input that is not JSON or a ``StatemillError``, with one line on stderr. The store-reading
commands never start a runtime, which would resume the executions they find.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar, TypeVarTuple, final

import anyio

from runtime import HistoryEvent, InvalidDefinition, SqliteStore, StatemillError, check, replay
from runtime import load_definition as load
from runtime.tools import bench, export, graph, history, operations, report
from runtime.tools.aws_history import load_history
from runtime.tools.handler_modules import HandlerModuleError, load_handlers

__all__ = ["COMMANDS", "main"]

JSON = Any
T = TypeVar("T")
Ts = TypeVarTuple("Ts")
Arg = tuple[tuple[str, ...], dict[str, Any]]

#: Exit codes.
EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2

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

    def add_to(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        summary, _, rest = inspect.cleandoc(self.run.__doc__ or "").partition("\n")
        parser = subparsers.add_parser(self.name, help=summary, description=rest.strip() or None)
        for flags, options in self.args:
            parser.add_argument(*flags, **options)
        parser.set_defaults(chosen=self)


def arg(*flags: str, **options: Any) -> Arg:
    """The arguments of one ``ArgumentParser.add_argument`` call."""
    return flags, options


def command(name: str, *args: Arg) -> Callable[[Callable[[argparse.Namespace], int]], Command]:
    """The decorated function, as the :class:`Command` ``name`` with these arguments."""
    return lambda run: Command(name, args, run)


STORE: Final = arg("--store", metavar="PATH.db", required=True, help="SQLite store file")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``statemill ARGV`` (``sys.argv[1:]`` when ``None``); returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="statemill", description="Run and check Amazon States Language state machines."
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for entry in COMMANDS:
        entry.add_to(subparsers)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad usage; report, don't exit
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    chosen: Command = args.chosen
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return chosen.run(args)
    except (UsageError, HandlerModuleError, StatemillError) as exc:
        named = isinstance(exc, StatemillError) and not isinstance(exc, InvalidDefinition)
        message = f"{type(exc).__name__}: {exc}" if named else str(exc)
        print(f"statemill {chosen.name}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (e.g. `statemill history ... | head`): stop quietly, as Unix
        # tools do; point stdout at devnull so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


# -- running a definition -------------------------------------------------------------------------


@command("validate", DEFINITION)
def _validate(args: argparse.Namespace) -> int:
    """check a definition as CreateStateMachine would

    Print {"valid": true} or {"valid": false, "error": ..., "message": ...}; exit 0 when valid,
    1 when not.
    """
    try:
        load(_read_file(args.definition, "definition"))
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
    arg("--history", action="store_true", help="include the execution's history events"),
    arg("--store", metavar="memory|PATH.db", default=DEFAULT_STORE, help="or memory: keep nothing"),
    arg("--virtual-time", action="store_true", help="Wait states and retries take no real time"),
)
def _run(args: argparse.Namespace) -> int:
    """run one execution to its end and print its result

    Create the state machine, start one execution, wait for its end and print {"executionArn",
    "status", "output", "error", "cause"} (and "history" with --history). Exits 0 whatever the
    execution's status.
    """
    text = _read_file(args.definition, "definition")
    load(text, machine_type=args.type)  # before opening the store: no file for a bad definition
    run = functools.partial(
        operations.run_execution,
        text,
        _parse_input(args.input),
        store=args.store,
        handlers=load_handlers(args.handlers),
        machine_type=args.type,
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
    options = {"fmt": args.format, "follow": args.follow, "interval": args.interval}
    _on_store(args.store, lambda s: history.print_history(s, args.execution, sys.stdout, **options))
    return EXIT_OK


@command(
    "replay",
    arg("--store", metavar="PATH.db", help="SQLite store file"),
    arg("--execution", metavar="ARN", help="execution in --store"),
    arg("--state-machine", metavar="ARN", help="with --check: every execution of this machine"),
    arg("--definition", metavar="FILE", help="definition of the --history file"),
    arg("--history", metavar="FILE", help="history file (AWS JSON or ours)"),
    arg("--at", type=int, metavar="N", help="show the execution after event N"),
    arg("--check", metavar="NEW_DEFINITION", help="definition to check"),
    arg("--format", choices=("text", "json"), default="text"),
    arg("-i", "--interactive", action="store_true", help=history.STEP_COMMANDS),
)
def _replay(args: argparse.Namespace) -> int:
    """step through an execution's log; check a changed definition against old logs

    Rebuild an execution (from a store, or a definition and a history file: ours or AWS's) event
    by event: each step's state, input, output, variables, error and retries; --at N: the whole
    state after event N. --check NEW_DEFINITION re-decides each recorded step with it: 'compatible'
    or the first divergent event, for one execution or (--state-machine) each of a machine's;
    exits 1 when any diverges.
    """
    new = None if args.check is None else load(_read_file(args.check, "definition"))
    if args.history is not None:
        if args.store is not None or args.execution is not None:
            raise UsageError("give either --history (with --definition) or --store --execution")
        recorded = (
            new if args.definition is None else load(_read_file(args.definition, "definition"))
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
    except ValueError as exc:  # no event up to --at
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
    read = functools.partial(export.export_lines, state_machine_arn=args.state_machine)
    lines = _on_store(args.store, lambda store: read(store, execution_arn=args.execution))
    text = "".join(line + "\n" for line in lines)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


@command("import", arg("file", metavar="FILE", help="a `statemill export` file"), STORE)
def _import(args: argparse.Namespace) -> int:
    """read executions exported by `statemill export` into a store

    Print {"stateMachines": N, "executions": M}. Definitions are validated as CreateStateMachine
    validates them, logs must fold: a bad line is named and nothing of the file is stored.
    """
    lines = _read_file(args.file, "export file").splitlines()
    try:
        counts = _on_store(args.store, lambda s: export.import_lines(s, lines), create=True)
    except ValueError as exc:
        raise UsageError(f"{args.file}: {exc}") from exc
    _print_json({"stateMachines": counts[0], "executions": counts[1]})
    return EXIT_OK


@command(
    "graph",
    DEFINITION,
    arg("--execution", metavar="ARN", help="colour by this execution"),
    arg("--store", metavar="PATH.db", help="SQLite store of --execution"),
    arg("--format", choices=graph.FORMATS, default="mermaid"),
)
def _graph(args: argparse.Namespace) -> int:
    """draw a state machine (and an execution's path) as Mermaid, DOT or SVG

    Choice edges labelled with their rule, Catch edges dashed, branches and Map processors as
    groups; with --execution, each state coloured by its outcome, with counts. --format svg needs
    Graphviz's `dot` on PATH (--format svg-basic: the built-in layout).
    """
    machine = load(_read_file(args.definition, "definition"))
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
    _, events, stored = _on_store(
        args.store, lambda s: history.execution_history(s, args.execution)
    )
    if args.definition is not None:
        text = _read_file(args.definition, "definition")
    elif stored is not None:
        text = stored.definition
    else:
        raise UsageError("the state machine is not in the store: give --definition")
    page = report.render_report(load(text), events, execution_arn=args.execution)
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
    if (args.state_machine is None) == (args.definition is None):
        raise UsageError("give one of --state-machine ARN or --definition FILE")
    store = _existing_store(args.store) if args.state_machine else args.store
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
    """describe an execution in a store file (DescribeExecution)"""
    path = _existing_store(args.store)
    _print_json(_run_async(operations.describe, path, args.execution))
    return EXIT_OK


@command(
    "list",
    STORE,
    arg("--state-machine", metavar="ARN", help="only this state machine's"),
    arg("--status", choices=STATUSES, help="only executions with this status"),
    arg("--max-results", type=int, default=100),
)
def _list(args: argparse.Namespace) -> int:
    """list the executions in a store file, newest first (ListExecutions)"""
    path, machine, status = _existing_store(args.store), args.state_machine, args.status
    found = _run_async(operations.list_executions, path, machine, status, args.max_results)
    _print_json({"executions": found})
    return EXIT_OK


@command("stop", EXECUTION, STORE, arg("--error", help="the error code of the abort"), CAUSE, WAIT)
def _stop(args: argparse.Namespace) -> int:
    """stop an execution (StopExecution, applied by the runtime on the file)"""
    body = {"executionArn": args.execution, "error": args.error, "cause": args.cause}
    return _request(args, "stop", body)


@command(
    "worker",
    STORE,
    HANDLERS,
    arg("--exit-when-idle", action="store_true", help="exit once nothing runs or is pending"),
    arg("--poll", type=float, default=0.5, help="request polling interval (s)"),
)
def _worker(args: argparse.Namespace) -> int:
    """run the runtime on a store file: resume its executions, apply requests

    Resume the open executions with the handlers, apply requests as they come, until Ctrl-C or
    (--exit-when-idle) until no execution runs and no request is pending.
    """
    handlers, idle = load_handlers(args.handlers), args.exit_when_idle
    serve = functools.partial(operations.serve, poll=args.poll, exit_when_idle=idle)
    try:
        _print_json(_run_async(serve, args.store, handlers))
    except KeyboardInterrupt:
        _print_json({"status": "interrupted"})
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


#: Every subcommand, in the order ``statemill --help`` lists them.
COMMANDS: Final = (
    *(_validate, _run, _bench),
    *(_history, _replay, _export, _import, _graph, _report),
    *(_start, _describe, _list, _stop, _worker),
    *(_redrive, _send_task_success, _send_task_failure),
)


# -- shared plumbing ------------------------------------------------------------------------------


def _request(args: argparse.Namespace, kind: str, body: dict[str, JSON]) -> int:
    """Record ``kind`` for a runtime on ``args.store`` to apply; print it (and its result)."""
    record = functools.partial(operations.request, wait=args.wait)
    _print_json(_run_async(record, _existing_store(args.store), kind, body))
    return EXIT_OK


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


def _existing_store(path: str) -> str:
    if not Path(path).is_file():
        raise UsageError(f"no such store: {path}")
    return path


def _on_store(path: str, use: Callable[[SqliteStore], Awaitable[T]], *, create: bool = False) -> T:
    """``use(store)`` with the SQLite store file ``path`` open (it must exist unless ``create``)."""
    path = path if create else _existing_store(path)

    async def opened() -> T:
        async with SqliteStore.open(path) as store:
            return await use(store)

    return _run_async(opened)


def _run_async(fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
    """Run ``fn(*args)`` on a fresh event loop, on uvloop where it is installed (STYLE.md 6)."""
    use_uvloop = importlib.util.find_spec("uvloop") is not None
    return anyio.run(fn, *args, backend="asyncio", backend_options={"use_uvloop": use_uvloop})


def _print_json(value: JSON) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
