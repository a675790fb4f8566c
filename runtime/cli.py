"""The ``statemill`` command: a thin layer over the Python API (``runtime.api``).

Subcommands (one ``_add_<name>`` function each registers its parser and its ``run`` function)::

    statemill validate DEFINITION
    statemill run DEFINITION [--input JSON|@FILE] [--handlers MODULE]... [--type STANDARD|EXPRESS]
                             [--history] [--store memory|PATH.db] [--virtual-time]
    statemill history EXECUTION_ARN --store PATH.db [--format table|json] [--follow]
    statemill replay (--store PATH.db --execution ARN | --definition FILE --history FILE)
                     [--at N] [--format text|json] [--interactive]
    statemill replay --check NEW_DEFINITION (--store PATH.db (--execution ARN |
                     --state-machine ARN) | --history FILE)
    statemill export --store PATH.db [--state-machine ARN | --execution ARN] [-o FILE]
    statemill import FILE --store PATH.db
    statemill graph DEFINITION [--execution ARN --store PATH.db]
                    [--format mermaid|dot|svg|svg-basic]
    statemill report EXECUTION_ARN --store PATH.db -o FILE.html [--definition FILE]
    statemill start --store PATH.db (--state-machine ARN | --definition FILE) [--input JSON|@FILE]
                    [--name NAME] [--wait SECONDS]
    statemill describe EXECUTION_ARN --store PATH.db
    statemill list --store PATH.db [--state-machine ARN] [--status STATUS]
    statemill stop EXECUTION_ARN --store PATH.db [--error E] [--cause C] [--wait SECONDS]
    statemill send-task-success --store PATH.db --task-token T [--output JSON|@FILE] [--wait S]
    statemill send-task-failure --store PATH.db --task-token T [--error E] [--cause C] [--wait S]
    statemill redrive EXECUTION_ARN --store PATH.db [--wait SECONDS]
    statemill worker --store PATH.db [--handlers MODULE]... [--exit-when-idle]
    statemill bench [SCENARIO ...] [--quick] [--runs N] [--out DIR] [--loop asyncio|uvloop]
                    [--param KEY=VALUE]... [--parked-n N]

Every command prints one JSON document on stdout. Exit codes: 0 when the command did its job (for
``run``: the execution ran to an end, whatever its status), 1 when ``validate`` finds the definition
invalid, 2 for bad usage, an unreadable file, an invalid definition or input that is not JSON (with
a one-line message on stderr).

This module owns no semantics: everything it prints comes from the API. It imports only the public
``runtime`` API and the standard library (plus anyio to run the event loop), and for the debugging
commands (history, replay, export, import, graph, report) ``runtime.replayer``, ``runtime.graph``,
``runtime.report`` and ``runtime.debugging``, which read a store directly (they must not start a
runtime, which would resume the executions it finds).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TypeVar, final

import anyio
import msgspec

from runtime import (
    ExecutionDoesNotExist,
    HandlerRegistry,
    HistoryEvent,
    InvalidDefinition,
    Runtime,
    SqliteStore,
    StatemillError,
    load_definition,
    operations,
)
from runtime.api import hide_map_runs
from runtime.debugging import (
    execution_history,
    export_lines,
    format_steps,
    format_table,
    import_lines,
)
from runtime.definition.model import StateMachine
from runtime.graph import build as build_graph
from runtime.graph import to_dot, to_mermaid, to_svg
from runtime.replayer import Step, check, diagnose, load_history, replay, to_aws_history
from runtime.report import render_report

__all__ = ["main"]

JSON = Any
T = TypeVar("T")

#: Exit codes.
EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2

#: Default store of ``run``: SQLite is the default for anything that is not a test (DESIGN.md).
DEFAULT_STORE: Final = "statemill.db"


@final
class UsageError(Exception):
    """Bad arguments, an unreadable file, an invalid definition or input: exit 2 with a message."""


Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``statemill`` command line; returns the exit code.

    Args:
        argv: the arguments after the program name (``sys.argv[1:]`` when ``None``).
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad usage; report, don't exit
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    command: Command = args.command
    try:
        return command(args)
    except UsageError as exc:
        print(f"statemill {args.command_name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (e.g. `statemill history ... | head`): stop quietly, as Unix
        # tools do; point stdout at devnull so the interpreter's final flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="statemill",
        description="Run and check Amazon States Language state machines.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    # Later: start, describe, history, list, replay, graph, serve, bench (DESIGN.md "Interfaces").
    for add in (_add_validate, _add_run, _add_bench):
        add(subparsers)
    for add in (_add_history, _add_replay, _add_export, _add_import, _add_graph, _add_report):
        add(subparsers)
    for add in (_add_start, _add_describe, _add_list, _add_stop, _add_worker):
        add(subparsers)
    for add in (_add_redrive, _add_send_task_success, _add_send_task_failure):
        add(subparsers)
    return parser


# -- validate ---------------------------------------------------------------------------------


def _add_validate(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check a definition as CreateStateMachine would",
        description='Print {"valid": true} or {"valid": false, "error": ..., "message": ...}; '
        "exit 0 when valid, 1 when not.",
    )
    parser.add_argument("definition", metavar="DEFINITION", help="definition file (or @FILE)")
    parser.set_defaults(command=_validate, command_name="validate")


def _validate(args: argparse.Namespace) -> int:
    text = _read_file(args.definition, "definition")
    try:
        load_definition(text)
    except InvalidDefinition as exc:
        _print_json({"valid": False, "error": "InvalidDefinition", "message": exc.message})
        return EXIT_INVALID
    _print_json({"valid": True})
    return EXIT_OK


# -- run ----------------------------------------------------------------------------------------


def _add_run(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run one execution to its end and print its result",
        description="Create the state machine, start one execution, wait for its end and print "
        '{"executionArn", "status", "output", "error", "cause"} (and "history" with --history). '
        "Exits 0 whatever the execution's status.",
    )
    parser.add_argument("definition", metavar="DEFINITION", help="definition file (or @FILE)")
    parser.add_argument(
        "--input",
        metavar="JSON|@FILE",
        default="{}",
        help="execution input: JSON text, or @FILE to read it from a file (default: {})",
    )
    parser.add_argument(
        "--handlers",
        metavar="MODULE",
        action="append",
        default=[],
        help="module providing Task handlers: a dotted name or a .py path, with a HandlerRegistry "
        "attribute or a HANDLERS dict (repeatable)",
    )
    parser.add_argument(
        "--type",
        choices=("STANDARD", "EXPRESS"),
        default="STANDARD",
        help="state machine type (default: STANDARD)",
    )
    parser.add_argument(
        "--history", action="store_true", help="include the execution's history events"
    )
    parser.add_argument(
        "--store",
        metavar="memory|PATH.db",
        default=DEFAULT_STORE,
        help=f"event store: a SQLite file, or memory to keep nothing (default: {DEFAULT_STORE})",
    )
    parser.add_argument(
        "--virtual-time",
        action="store_true",
        help="use a virtual clock: Wait states and retry delays take no real time",
    )
    parser.set_defaults(command=_run, command_name="run")


def _run(args: argparse.Namespace) -> int:
    text = _read_file(args.definition, "definition")
    try:  # before opening the store: an invalid definition leaves no file behind
        load_definition(text, machine_type=args.type)
    except InvalidDefinition as exc:
        raise UsageError(exc.message) from exc
    execution_input = _parse_input(args.input)
    handlers = load_handlers(args.handlers)
    result = _run_async(
        functools.partial(
            _execute, text=text, execution_input=execution_input, handlers=handlers, args=args
        )
    )
    _print_json(result)
    return EXIT_OK


async def _execute(
    *,
    text: str,
    execution_input: JSON,
    handlers: HandlerRegistry,
    args: argparse.Namespace,
) -> dict[str, JSON]:
    failure: StatemillError
    async with Runtime(
        store=args.store,
        handlers=handlers,
        virtual_time=args.virtual_time,
        # --history of an EXPRESS run: keep its log (EXPRESS logs are in memory by default).
        express_history="durable" if args.history else "memory",
    ) as runtime:
        # Caught inside the block: leaving it with an exception would wrap it in the runtime's
        # task group's ExceptionGroup.
        try:
            description = await runtime.run(text, execution_input, type=args.type)
            result: dict[str, JSON] = {
                "executionArn": description.execution_arn,
                "status": description.status,
                "output": description.output_value,
                "error": description.error,
                "cause": description.cause,
            }
            if args.history:
                events = await runtime.get_execution_history(description.execution_arn)
                result["history"] = [event.to_aws() for event in events]
            return result
        except InvalidDefinition as exc:
            failure = exc
            message = exc.message
        except StatemillError as exc:  # e.g. InvalidExecutionInput: input over 256 KiB
            failure = exc
            message = f"{type(exc).__name__}: {exc}"
    raise UsageError(message) from failure


# -- bench --------------------------------------------------------------------------------------


def _add_bench(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run the benchmark suite (python -m benchmarks)",
        description="Run benchmark scenarios (chain, map, parked, handlers, replay; default: "
        "all): a table on stdout, a progress bar on stderr, JSON results with machine facts. "
        "Needs the benchmarks package of a Statemill checkout (run from its root). "
        "Exits 1 when an invariant check failed.",
    )
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help="scenarios to run")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (CI)")
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per scenario (default: 3; 1 with --quick)"
    )
    parser.add_argument(
        "--out", metavar="DIR", default=None, help="results directory (default: benchmarks/results)"
    )
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default=None, help="event loop")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario size parameter (repeatable)",
    )
    parser.add_argument("--parked-n", type=int, default=None, metavar="N", help="parked: N")
    parser.set_defaults(command=_bench, command_name="bench")


def _bench(args: argparse.Namespace) -> int:
    """A thin call into ``benchmarks.suite.main`` with the same arguments."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        suite = importlib.import_module("benchmarks.suite")
    except ImportError as exc:
        raise UsageError(
            f"cannot import the benchmark suite ({exc}); run from a Statemill checkout"
        ) from exc
    argv: list[str] = list(args.scenarios)
    if args.quick:
        argv.append("--quick")
    for flag, value in (
        ("--runs", args.runs),
        ("--out", args.out),
        ("--loop", args.loop),
        ("--parked-n", args.parked_n),
    ):
        if value is not None:
            argv += [flag, str(value)]
    for item in args.param:
        argv += ["--param", item]
    try:
        code = suite.main(argv)
    except SystemExit as exc:  # the suite's own usage errors (argparse)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return int(code)


# -- history ------------------------------------------------------------------------------------


def _add_history(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "history",
        help="print an execution's history events",
        description="Print the execution's history: a readable table (event id, time, type, "
        "state, short input/output), or with --format json exactly what "
        "`aws stepfunctions get-execution-history` prints. --follow keeps printing new events "
        "until the execution ends (with --format json: one AWS-shaped event per line).",
    )
    parser.add_argument("execution", metavar="EXECUTION_ARN", help="the execution")
    parser.add_argument("--store", metavar="PATH.db", required=True, help="SQLite store file")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--follow", action="store_true", help="poll for new events until the execution ends"
    )
    parser.add_argument(
        "--interval", type=float, default=0.5, help="--follow polling interval in seconds"
    )
    parser.set_defaults(command=_history, command_name="history")


def _history(args: argparse.Namespace) -> int:
    store_path = _existing_store(args.store)

    async def history() -> None:
        async with SqliteStore.open(store_path) as store:
            try:
                _record, events, _machine = await execution_history(store, args.execution)
            except ExecutionDoesNotExist as exc:
                raise UsageError(str(exc)) from exc
            events = hide_map_runs(events)
            if args.format == "json" and not args.follow:
                _print_json(to_aws_history(events))
                return
            names: dict[str, str] = {}
            _emit_history(events, args.format, names, header=True)
            last = events[-1].id if events else 0
            while args.follow:
                record = await store.get_execution(args.execution)
                if record is None or record.status not in ("RUNNING", "PENDING"):
                    break
                await anyio.sleep(args.interval)
                new = hide_map_runs(await store.read(args.execution, last))
                if new:
                    _emit_history(new, args.format, names, header=False)
                    last = new[-1].id
            if args.follow:  # pick up what the last poll missed
                new = hide_map_runs(await store.read(args.execution, last))
                _emit_history(new, args.format, names, header=False)

    _run_async(history)
    return EXIT_OK


def _emit_history(
    events: Sequence[HistoryEvent], fmt: str, names: dict[str, str], *, header: bool
) -> None:
    if not events:
        return
    if fmt == "json":  # --follow: one AWS-shaped event per line
        for event in events:
            print(json.dumps(event.to_aws(), ensure_ascii=False), flush=True)
        return
    table = format_table(events, names).splitlines()
    print("\n".join(table if header else table[1:]), flush=True)


def _existing_store(path: str) -> str:
    if not Path(path).is_file():
        raise UsageError(f"no such store: {path}")
    return path


# -- replay -------------------------------------------------------------------------------------


def _add_replay(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="step through an execution's log; check a changed definition against old logs",
        description="Rebuild an execution event by event (from a store, or a definition plus a "
        "history file: ours or AWS's get-execution-history JSON) and show, per step, the state, "
        "its input, output, variables, error and retries. --at N prints the whole execution "
        "state after event N. --check NEW_DEFINITION re-decides every recorded step with the "
        "new definition and reports 'compatible' or the first divergent event (with "
        "--state-machine: every execution of that machine in the store); exits 1 when any "
        "execution diverges.",
    )
    parser.add_argument("--store", metavar="PATH.db", help="SQLite store file")
    parser.add_argument("--execution", metavar="ARN", help="execution in --store")
    parser.add_argument(
        "--state-machine", metavar="ARN", help="with --check: every execution of this machine"
    )
    parser.add_argument("--definition", metavar="FILE", help="definition of the --history file")
    parser.add_argument("--history", metavar="FILE", help="history file (AWS JSON or ours)")
    parser.add_argument("--at", type=int, metavar="N", help="show the execution after event N")
    parser.add_argument("--check", metavar="NEW_DEFINITION", help="definition to check")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="step through the events: Enter/n next, p previous, g N go to event N, "
        "s the whole state, q quit",
    )
    parser.set_defaults(command=_replay, command_name="replay")


def _replay(args: argparse.Namespace) -> int:
    new_machine = None
    if args.check is not None:
        new_machine = _load_machine(_read_file(args.check, "definition"))
    if args.history is not None:
        if args.store is not None or args.execution is not None:
            raise UsageError("give either --history (with --definition) or --store --execution")
        definition = None
        if args.definition is not None:
            definition = _load_machine(_read_file(args.definition, "definition"))
        try:
            document = json.loads(_read_file(args.history, "history"))
            events = load_history(document, definition or new_machine)
        except ValueError as exc:
            raise UsageError(f"cannot read history {args.history}: {exc}") from exc
        histories = [("", events)]
    elif args.store is not None and (args.execution or args.state_machine):
        histories = _run_async(
            functools.partial(_store_histories, _existing_store(args.store), args)
        )
        if args.check is None and len(histories) != 1:
            raise UsageError("--state-machine needs --check (replay shows one execution)")
    else:
        raise UsageError("give --store PATH --execution ARN, or --definition FILE --history FILE")
    if new_machine is not None:
        results = [check(new_machine, events, arn) for arn, events in histories]
        compatible = all(result.compatible for result in results)
        if args.format == "json":
            _print_json({"compatible": compatible, "executions": [r.to_json() for r in results]})
        else:
            for result in results:
                verdict = "compatible"
                if not result.compatible:
                    divergence = result.divergence
                    verdict = "DIVERGES at " + (
                        divergence.message if divergence else result.error or "?"
                    )
                print(f"{result.execution_arn or args.history}: {verdict}")
        return EXIT_OK if compatible else EXIT_INVALID
    _arn, events = histories[0]
    steps = list(replay(events))
    if args.at is not None:
        chosen = [s for s in steps if s.event.id <= args.at]
        if not chosen:
            raise UsageError(f"no event with id <= {args.at}")
        step = chosen[-1]
        _print_json({"step": step.summary(), "execution": msgspec.to_builtins(step.state)})
        return EXIT_OK
    if args.interactive:
        _step_through(steps)
    elif args.format == "json":
        _print_json([step.summary() for step in steps])
    else:
        print(format_steps(steps))
        failure = diagnose(events)
        if failure is not None:
            print("\n".join(["", *failure.lines()]))
    return EXIT_OK


def _step_through(steps: Sequence[Step]) -> None:
    """The interactive replay: one step at a time, forward and back, on stdin/stdout."""
    if not steps:
        return
    position = 0
    print(format_steps([steps[0]]))
    for line in sys.stdin:
        command = line.strip().split()
        verb = command[0] if command else "n"
        if verb == "q":
            return
        if verb == "n":
            position = min(position + 1, len(steps) - 1)
        elif verb == "p":
            position = max(position - 1, 0)
        elif verb == "g" and len(command) == 2 and command[1].isdigit():
            wanted = int(command[1])
            position = max((i for i, s in enumerate(steps) if s.event.id <= wanted), default=0)
        elif verb == "s":
            _print_json(msgspec.to_builtins(steps[position].state))
            continue
        else:
            print("commands: Enter/n next, p previous, g N go to event N, s state, q quit")
            continue
        print(format_steps([steps[position]]), flush=True)


async def _store_histories(
    store_path: str, args: argparse.Namespace
) -> list[tuple[str, list[HistoryEvent]]]:
    async with SqliteStore.open(store_path) as store:
        if args.execution:
            arns = [args.execution]
        else:
            records = await store.list_executions(args.state_machine, limit=1_000_000)
            arns = [r.execution_arn for r in reversed(records)]
        out: list[tuple[str, list[HistoryEvent]]] = []
        for arn in arns:
            try:
                _record, events, _machine = await execution_history(store, arn)
            except ExecutionDoesNotExist as exc:
                raise UsageError(str(exc)) from exc
            out.append((arn, events))
        return out


def _load_machine(text: str) -> StateMachine:
    try:
        return load_definition(text)
    except InvalidDefinition as exc:
        raise UsageError(exc.message) from exc


# -- export / import ----------------------------------------------------------------------------


def _add_export(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write executions of a store as JSON lines",
        description="Write the store's state machines and executions (all, one machine's, or "
        "one) as JSON lines, with every event, to -o FILE (default: stdout).",
    )
    parser.add_argument("--store", metavar="PATH.db", required=True, help="SQLite store file")
    parser.add_argument("--state-machine", metavar="ARN", help="only this machine's executions")
    parser.add_argument("--execution", metavar="ARN", help="only this execution")
    parser.add_argument("-o", "--output", metavar="FILE", help="output file (default: stdout)")
    parser.set_defaults(command=_export, command_name="export")


def _export(args: argparse.Namespace) -> int:
    store_path = _existing_store(args.store)

    async def export() -> list[str]:
        async with SqliteStore.open(store_path) as store:
            try:
                return await export_lines(store, args.state_machine, args.execution)
            except ExecutionDoesNotExist as exc:
                raise UsageError(str(exc)) from exc

    lines = _run_async(export)
    text = "".join(line + "\n" for line in lines)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _add_import(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import",
        help="read executions exported by `statemill export` into a store",
        description='Store every line of FILE; print {"stateMachines": N, "executions": M}.',
    )
    parser.add_argument("file", metavar="FILE", help="a `statemill export` file")
    parser.add_argument("--store", metavar="PATH.db", required=True, help="SQLite store file")
    parser.set_defaults(command=_import, command_name="import")


def _import(args: argparse.Namespace) -> int:
    lines = _read_file(args.file, "export file").splitlines()

    async def load() -> tuple[int, int]:
        async with SqliteStore.open(args.store) as store:
            try:
                return await import_lines(store, lines)
            except (ValueError, StatemillError) as exc:
                raise UsageError(str(exc)) from exc

    machines, executions = _run_async(load)
    _print_json({"stateMachines": machines, "executions": executions})
    return EXIT_OK


# -- graph / report -----------------------------------------------------------------------------


def _add_graph(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "graph",
        help="draw a state machine (and an execution's path) as Mermaid, DOT or SVG",
        description="Print the definition as a graph: Choice edges labelled with their rule, "
        "Catch edges dashed, Parallel branches and Map processors as nested groups. With "
        "--execution (and --store), each state is coloured by what happened to it (succeeded, "
        "failed, caught, in progress, not reached) with its counts. --format svg needs "
        "Graphviz's `dot` on PATH (use --format svg-basic for the built-in layout).",
    )
    parser.add_argument("definition", metavar="DEFINITION", help="definition file (or @FILE)")
    parser.add_argument("--execution", metavar="ARN", help="colour by this execution")
    parser.add_argument("--store", metavar="PATH.db", help="SQLite store of --execution")
    parser.add_argument(
        "--format", choices=("mermaid", "dot", "svg", "svg-basic"), default="mermaid"
    )
    parser.set_defaults(command=_graph, command_name="graph")


def _graph(args: argparse.Namespace) -> int:
    machine = _load_machine(_read_file(args.definition, "definition"))
    events: list[HistoryEvent] | None = None
    if args.execution is not None:
        if args.store is None:
            raise UsageError("--execution needs --store")
        namespace = argparse.Namespace(execution=args.execution, state_machine=None)
        store_path = _existing_store(args.store)
        events = _run_async(functools.partial(_store_histories, store_path, namespace))[0][1]
    graph = build_graph(machine, events)
    if args.format == "mermaid":
        sys.stdout.write(to_mermaid(graph))
    elif args.format == "dot":
        sys.stdout.write(to_dot(graph))
    elif args.format == "svg-basic":
        sys.stdout.write(to_svg(graph) + "\n")
    else:
        dot = shutil.which("dot")
        if dot is None:
            raise UsageError("--format svg needs Graphviz (`dot`); try --format svg-basic")
        rendered = subprocess.run(
            [dot, "-Tsvg"], input=to_dot(graph), capture_output=True, text=True, check=False
        )
        if rendered.returncode != 0:
            raise UsageError(f"dot failed: {rendered.stderr.strip()}")
        sys.stdout.write(rendered.stdout)
    return EXIT_OK


def _add_report(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML page about an execution",
        description="Write an HTML page (inline CSS/JS/SVG, nothing loaded from the network) "
        "with the execution's status, its failure (state, input, error, retries), the graph "
        "coloured by outcome, each state's input and output and the event table.",
    )
    parser.add_argument("execution", metavar="EXECUTION_ARN", help="the execution")
    parser.add_argument("--store", metavar="PATH.db", required=True, help="SQLite store file")
    parser.add_argument("-o", "--output", metavar="FILE", required=True, help="HTML file")
    parser.add_argument(
        "--definition", metavar="FILE", help="definition (default: the stored state machine's)"
    )
    parser.set_defaults(command=_report, command_name="report")


def _report(args: argparse.Namespace) -> int:
    store_path = _existing_store(args.store)

    async def load() -> tuple[list[HistoryEvent], str | None]:
        async with SqliteStore.open(store_path) as store:
            try:
                _record, events, machine = await execution_history(store, args.execution)
            except ExecutionDoesNotExist as exc:
                raise UsageError(str(exc)) from exc
            return events, machine.definition if machine is not None else None

    events, stored = _run_async(load)
    if args.definition is not None:
        text = _read_file(args.definition, "definition")
    elif stored is not None:
        text = stored
    else:
        raise UsageError("the state machine is not in the store: give --definition")
    page = render_report(_load_machine(text), events, execution_arn=args.execution)
    Path(args.output).write_text(page, encoding="utf-8")
    _print_json({"report": args.output, "events": len(events)})
    return EXIT_OK


# -- operator commands (issue 5): start | describe | list | stop | send-task-* | worker ----------


def _add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="PATH.db", required=True, help="SQLite store file")


def _add_wait_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        metavar="SECONDS",
        type=float,
        default=0.0,
        help="wait up to SECONDS for a runtime on the file to apply the request (default: 0, "
        "print the recorded request and return)",
    )


def _request(args: argparse.Namespace, kind: str, body: dict[str, JSON]) -> int:
    """Record ``kind`` for a runtime on ``args.store`` to apply; print it (and its result)."""
    store_path = _existing_store(args.store)

    async def record() -> dict[str, JSON]:
        try:
            out = await operations.request(store_path, kind, body)
        except StatemillError as exc:
            raise UsageError(f"{type(exc).__name__}: {exc}") from exc
        if args.wait > 0:
            applied = await operations.wait_for_request(store_path, out["requestId"], args.wait)
            out.update(applied)
        return out

    _print_json(_run_async(record))
    return EXIT_OK


def _add_start(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "start",
        help="start an execution in a store file (applied by the runtime running on it)",
        description="Record a StartExecution request in the store and print "
        '{"executionArn", "requestId", "status"}. With --definition the state machine is '
        "created (or updated) in the store first. A runtime on the file (statemill worker) "
        "applies the request, now or when it starts.",
    )
    _add_store_argument(parser)
    machine = parser.add_mutually_exclusive_group(required=True)
    machine.add_argument("--state-machine", metavar="ARN", help="state machine ARN")
    machine.add_argument(
        "--definition", metavar="FILE", help="definition file: create the state machine"
    )
    parser.add_argument(
        "--machine-name", metavar="NAME", help="state machine name with --definition"
    )
    parser.add_argument("--type", choices=("STANDARD", "EXPRESS"), default="STANDARD")
    parser.add_argument("--input", metavar="JSON|@FILE", default="{}", help="execution input")
    parser.add_argument("--name", metavar="NAME", help="execution name (default: a UUID)")
    _add_wait_argument(parser)
    parser.set_defaults(command=_start, command_name="start")


def _start(args: argparse.Namespace) -> int:
    store_path = _existing_store(args.store) if args.state_machine else args.store
    execution_input = _parse_input(args.input)
    machine_arn = args.state_machine
    if args.definition:
        text = _read_file(args.definition, "definition")
        name = args.machine_name or Path(args.definition).name.split(".")[0]
        try:
            machine_arn = _run_async(
                functools.partial(operations.put_state_machine, store_path, name, text, args.type)
            )
        except InvalidDefinition as exc:
            raise UsageError(exc.message) from exc
    body = {"stateMachineArn": machine_arn, "input": execution_input, "name": args.name}
    return _request(args, "start", body)


def _add_describe(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "describe", help="describe an execution in a store file (DescribeExecution)"
    )
    parser.add_argument("execution", metavar="EXECUTION_ARN", help="the execution")
    _add_store_argument(parser)
    parser.set_defaults(command=_describe, command_name="describe")


def _describe(args: argparse.Namespace) -> int:
    store_path = _existing_store(args.store)
    try:
        described = _run_async(functools.partial(operations.describe, store_path, args.execution))
    except ExecutionDoesNotExist as exc:
        raise UsageError(str(exc)) from exc
    _print_json(described)
    return EXIT_OK


def _add_list(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "list", help="list the executions in a store file, newest first (ListExecutions)"
    )
    _add_store_argument(parser)
    parser.add_argument("--state-machine", metavar="ARN", help="only this state machine's")
    parser.add_argument(
        "--status",
        choices=("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"),
        help="only executions with this status",
    )
    parser.add_argument("--max-results", type=int, default=100)
    parser.set_defaults(command=_list, command_name="list")


def _list(args: argparse.Namespace) -> int:
    store_path = _existing_store(args.store)
    listed = _run_async(
        functools.partial(
            operations.list_executions,
            store_path,
            args.state_machine,
            args.status,
            args.max_results,
        )
    )
    _print_json({"executions": listed})
    return EXIT_OK


def _add_stop(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stop", help="stop an execution (StopExecution, applied by the runtime on the file)"
    )
    parser.add_argument("execution", metavar="EXECUTION_ARN", help="the execution")
    _add_store_argument(parser)
    parser.add_argument("--error", help="the error code of the abort")
    parser.add_argument("--cause", help="a human-readable cause")
    _add_wait_argument(parser)
    parser.set_defaults(command=_stop, command_name="stop")


def _stop(args: argparse.Namespace) -> int:
    body = {"executionArn": args.execution, "error": args.error, "cause": args.cause}
    return _request(args, "stop", body)


def _add_redrive(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "redrive",
        help="redrive a FAILED, TIMED_OUT or ABORTED execution (applied by the runtime)",
    )
    parser.add_argument("execution", metavar="EXECUTION_ARN", help="the execution")
    _add_store_argument(parser)
    _add_wait_argument(parser)
    parser.set_defaults(command=_redrive, command_name="redrive")


def _redrive(args: argparse.Namespace) -> int:
    return _request(args, "redrive", {"executionArn": args.execution})


def _add_send_task_success(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = subparsers.add_parser(
        "send-task-success",
        help="complete a .waitForTaskToken Task (SendTaskSuccess, applied by the runtime)",
    )
    _add_store_argument(parser)
    parser.add_argument("--task-token", required=True, help="the task token")
    parser.add_argument("--output", metavar="JSON|@FILE", default="{}", help="the Task's result")
    _add_wait_argument(parser)
    parser.set_defaults(command=_send_task_success, command_name="send-task-success")


def _send_task_success(args: argparse.Namespace) -> int:
    body = {"taskToken": args.task_token, "output": _parse_input(args.output)}
    return _request(args, "send-task-success", body)


def _add_send_task_failure(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = subparsers.add_parser(
        "send-task-failure",
        help="fail a .waitForTaskToken Task (SendTaskFailure, applied by the runtime)",
    )
    _add_store_argument(parser)
    parser.add_argument("--task-token", required=True, help="the task token")
    parser.add_argument("--error", help="the error code (Retry and Catch match it)")
    parser.add_argument("--cause", help="a human-readable cause")
    _add_wait_argument(parser)
    parser.set_defaults(command=_send_task_failure, command_name="send-task-failure")


def _send_task_failure(args: argparse.Namespace) -> int:
    body = {"taskToken": args.task_token, "error": args.error, "cause": args.cause}
    return _request(args, "send-task-failure", body)


def _add_worker(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run the runtime on a store file: resume its executions, apply requests",
        description="Open the store, resume the open executions with the given handlers and "
        "apply the recorded requests as they come, until interrupted (Ctrl-C) or, with "
        "--exit-when-idle, until no execution runs and no request is pending.",
    )
    _add_store_argument(parser)
    parser.add_argument(
        "--handlers",
        metavar="MODULE",
        action="append",
        default=[],
        help="module providing Task handlers (as for run; repeatable)",
    )
    parser.add_argument(
        "--exit-when-idle",
        action="store_true",
        help="exit once no execution is RUNNING and no request is pending",
    )
    parser.add_argument("--poll", type=float, default=0.5, help="request polling interval (s)")
    parser.set_defaults(command=_worker, command_name="worker")


def _worker(args: argparse.Namespace) -> int:
    handlers = load_handlers(args.handlers)

    async def work() -> dict[str, JSON]:
        async with Runtime(
            args.store, handlers=handlers, request_poll_interval=args.poll
        ) as runtime:
            while True:
                await anyio.sleep(args.poll)
                if not args.exit_when_idle:
                    continue
                await runtime.apply_requests()
                running = await runtime.list_executions(status_filter="RUNNING", max_results=1)
                if not running and await runtime.apply_requests() == 0:
                    return {"status": "idle"}

    try:
        _print_json(_run_async(work))
    except KeyboardInterrupt:
        _print_json({"status": "interrupted"})
    return EXIT_OK


# -- shared helpers ----------------------------------------------------------------------------


def load_handlers(modules: Sequence[str]) -> HandlerRegistry:
    """One registry with the handlers of every module named.

    A module contributes every ``HandlerRegistry`` instance among its attributes and its
    ``HANDLERS`` mapping (name -> async callable), if it has one.

    Raises:
        UsageError: a module cannot be imported or provides no handlers.
    """
    registry = HandlerRegistry()
    for name in modules:
        module = _import_module(name)
        found = False
        for value in vars(module).values():
            if isinstance(value, HandlerRegistry):
                registry.update(value)
                found = True
        table = getattr(module, "HANDLERS", None)
        if isinstance(table, Mapping):
            registry.update(table)
            found = True
        if not found:
            raise UsageError(f"{name}: no HandlerRegistry instance and no HANDLERS dict")
    return registry


def _import_module(name: str) -> ModuleType:
    try:
        if name.endswith(".py") or os.sep in name or "/" in name:
            return _import_path(Path(name))
        # A console script does not have the working directory on sys.path; `python -m` does.
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        return importlib.import_module(name)
    except UsageError:
        raise
    except Exception as exc:  # an import runs arbitrary code: report whatever it raised
        raise UsageError(f"cannot import handlers {name}: {type(exc).__name__}: {exc}") from exc


def _import_path(path: Path) -> ModuleType:
    if not path.is_file():
        raise UsageError(f"no such handlers file: {path}")
    module_name = f"statemill_handlers_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load handlers file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before exec, so the module can refer to itself
    spec.loader.exec_module(module)
    return module


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


def _run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` on a fresh event loop, on uvloop where it is installed (STYLE.md section 6)."""
    use_uvloop = importlib.util.find_spec("uvloop") is not None
    return anyio.run(fn, backend="asyncio", backend_options={"use_uvloop": use_uvloop})


def _print_json(value: JSON) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
