"""``statemill validate | run | bench``: check a definition, run one execution, run the benchmarks.

``validate`` loads the definition only (no store, no runtime: the fastest command); ``run``
creates the machine in a store and runs one execution to its end; ``bench`` runs a checkout's
``benchmarks/`` in a child process (:mod:`runtime.tools.bench`: the suite is not installed, and
nothing is put on ``sys.path``).

Imports only the standard library and the ``cli_*`` plumbing at the top.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path
from typing import Final

from runtime.cli_support import (
    handler_registry,
    load_machine,
    parse_input,
    print_json,
    read_file,
    run_async,
)
from runtime.cli_table import (
    DEFAULT_STORE,
    DEFINITION,
    EXIT_INVALID,
    EXIT_OK,
    HANDLERS,
    INPUT,
    RUN_STORE_HELP,
    TYPE,
    UsageError,
    arg,
    command,
)
from runtime.errors import InvalidDefinition

__all__ = ["COMMANDS"]


@command("validate", DEFINITION, TYPE)
def _validate(args: argparse.Namespace) -> int:
    """check a definition as CreateStateMachine would

    Print {"valid": true} or {"valid": false, "error": ..., "message": ...}; exit 0 when valid,
    1 when not. --type EXPRESS also checks what an EXPRESS machine may not use (.sync and
    .waitForTaskToken integrations).
    """
    try:
        load_machine(read_file(args.definition, "definition"), args.type)
    except InvalidDefinition as exc:
        print_json({"valid": False, "error": "InvalidDefinition", "message": exc.message})
        return EXIT_INVALID
    print_json({"valid": True})
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

    text = read_file(args.definition, "definition")
    load_machine(text, args.type)  # before opening the store: no file for a bad definition
    run = functools.partial(
        operations.run_execution,
        text,
        parse_input(args.input),
        store=args.store,
        handlers=handler_registry(args),
        machine_type=args.type,
        name=args.name,
        history=args.history,
        virtual_time=args.virtual_time,
    )
    print_json(run_async(run))
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


#: This module's commands, in the order ``statemill --help`` lists them.
COMMANDS: Final = (_validate, _run, _bench)
