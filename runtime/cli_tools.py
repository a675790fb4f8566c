"""``statemill history | replay | export | import | graph | report``: the tools on a store's logs.

Each command reads an execution's events from a store (or a history file) and hands them to a
tool of :mod:`runtime.tools`: the history table, the replayer and its compatibility check, the
JSON-lines export and import, the graph and the HTML report. None starts a runtime: reading a
store never resumes the executions in it.

Imports only the standard library and the ``cli_*`` plumbing at the top; each command imports
its tool.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from runtime.cli_support import load_machine, on_store, print_json, read_file
from runtime.cli_table import (
    DEFINITION,
    EXECUTION,
    EXIT_INVALID,
    EXIT_OK,
    STORE,
    STORE_HELP,
    UsageError,
    arg,
    command,
)

if TYPE_CHECKING:
    from runtime import HistoryEvent

__all__ = ["COMMANDS"]


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
    on_store(args.store, lambda s: history.print_history(s, args.execution, sys.stdout, **options))
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

    new = None if args.check is None else load_machine(read_file(args.check, "definition"))
    if args.history is not None:
        if args.store is not None or args.execution is not None:
            raise UsageError("give either --history (with --definition) or --store --execution")
        recorded = (
            new
            if args.definition is None
            else load_machine(read_file(args.definition, "definition"))
        )
        try:
            document = json.loads(read_file(args.history, "history"))
            histories = [("", load_history(document, recorded))]
        except ValueError as exc:
            raise UsageError(f"cannot read history {args.history}: {exc}") from exc
    elif args.store is not None and (args.execution or args.state_machine):
        which = {"execution_arn": args.execution or None, "state_machine_arn": args.state_machine}
        histories = on_store(args.store, lambda s: history.store_histories(s, **which))
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
    lines = on_store(args.store, lambda store: read(store, execution_arn=args.execution))
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

    lines = read_file(args.file, "export file").splitlines()
    skip = args.skip_existing
    read = functools.partial(export.import_file, lines=lines, skip_existing=skip)
    try:
        counts = on_store(args.store, read, create=True)
    except ValueError as exc:
        raise UsageError(f"{args.file}: {exc}") from exc
    done: dict[str, Any] = {"stateMachines": counts.state_machines, "executions": counts.executions}
    if skip:
        done["skipped"] = counts.skipped
    print_json(done)
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

    machine = load_machine(read_file(args.definition, "definition"))
    events: list[HistoryEvent] | None = None
    if args.execution is not None:
        if args.store is None:
            raise UsageError("--execution needs --store")
        _, events, _ = on_store(args.store, lambda s: history.execution_history(s, args.execution))
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

    _, events, stored = on_store(args.store, lambda s: history.execution_history(s, args.execution))
    if args.definition is not None:
        text = read_file(args.definition, "definition")
    elif stored is not None:
        text = stored.definition
    else:
        raise UsageError("the state machine is not in the store: give --definition")
    page = report.render_report(load_machine(text), events, execution_arn=args.execution)
    Path(args.output).write_text(page, encoding="utf-8")
    print_json({"report": args.output, "events": len(events)})
    return EXIT_OK


#: This module's commands, in the order ``statemill --help`` lists them.
COMMANDS: Final = (_history, _replay, _export, _import, _graph, _report)
