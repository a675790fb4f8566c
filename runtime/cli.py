"""The ``statemill`` command: a thin layer over the Python API (``runtime.api``).

Subcommands (one ``_add_<name>`` function each registers its parser and its ``run`` function)::

    statemill validate DEFINITION
    statemill run DEFINITION [--input JSON|@FILE] [--handlers MODULE]... [--type STANDARD|EXPRESS]
                             [--history] [--store memory|PATH.db] [--virtual-time]
    statemill bench [SCENARIO ...] [--quick] [--runs N] [--out DIR] [--loop asyncio|uvloop]
                    [--param KEY=VALUE]... [--parked-n N]

Every command prints one JSON document on stdout. Exit codes: 0 when the command did its job (for
``run``: the execution ran to an end, whatever its status), 1 when ``validate`` finds the definition
invalid, 2 for bad usage, an unreadable file, an invalid definition or input that is not JSON (with
a one-line message on stderr).

This module owns no semantics: everything it prints comes from the API. It imports only the public
``runtime`` API and the standard library (plus anyio to run the event loop).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final, TypeVar, final

import anyio

from runtime import HandlerRegistry, InvalidDefinition, Runtime, StatemillError, load_definition

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


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="statemill",
        description="Run and check Amazon States Language state machines.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    # Later: start, describe, history, list, replay, graph, serve, bench (DESIGN.md "Interfaces").
    for add in (_add_validate, _add_run, _add_bench):
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
        store=args.store, handlers=handlers, virtual_time=args.virtual_time
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
