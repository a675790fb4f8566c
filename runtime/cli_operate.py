"""``statemill start | describe | list | requests | stop | redrive | send-task-*``: operating.

A command that changes an execution records a request in the store (:func:`request`); the
runtime running on the store (``statemill worker``, ``statemill serve``) applies it, now or
when it starts, and ``--wait`` waits for its result. ``describe``, ``list`` and ``requests``
only read. None starts a runtime here: it would resume the executions it finds
(:mod:`runtime.tools.store_ops`).

Imports only the standard library and the ``cli_*`` plumbing at the top.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Any, Final

from runtime.cli_support import parse_input, print_json, read_file, run_async
from runtime.cli_table import (
    CAUSE,
    ERROR,
    EXECUTION,
    EXIT_INVALID,
    EXIT_OK,
    FORMAT,
    INPUT,
    OUTPUT,
    STATUSES,
    STORE,
    TOKEN,
    TYPE,
    WAIT,
    UsageError,
    arg,
    command,
)

__all__ = ["COMMANDS", "request"]

JSON = Any


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
    from runtime.tools import store_ops

    if (args.state_machine is None) == (args.definition is None):
        raise UsageError("give one of --state-machine ARN or --definition FILE")
    store = args.store
    execution_input = parse_input(args.input)
    machine_arn = args.state_machine
    if args.definition:
        text = read_file(args.definition, "definition")
        name = args.machine_name or Path(args.definition).name.split(".")[0]
        machine_arn = run_async(store_ops.put_state_machine, store, name, text, args.type)
    body = {"stateMachineArn": machine_arn, "input": execution_input, "name": args.name}
    return request(args, "start", body)


@command("describe", EXECUTION, STORE)
def _describe(args: argparse.Namespace) -> int:
    """describe an execution in a store file (DescribeExecution)

    An execution whose start is still a request (statemill start, no worker ran yet) does not
    exist yet: the error says so, with the request's id.
    """
    from runtime.tools import store_ops

    print_json(store_ops.describe(args.store, args.execution))
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
    from runtime.tools import store_ops

    path, machine, status = args.store, args.state_machine, args.status
    found = store_ops.list_executions(path, machine, status, args.max_results)
    if args.format == "json":
        print_json({"executions": found})
    else:
        print(store_ops.executions_table(found, now=time.time()))
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
    from runtime.tools import store_ops

    found = store_ops.list_requests(args.store, everything=args.all)
    if args.format == "json":
        print_json({"requests": [_public(item) for item in found]})
    else:
        print(store_ops.requests_table(found))
    return EXIT_OK


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "resultText"}


@command("stop", EXECUTION, STORE, arg("--error", help="the error code of the abort"), CAUSE, WAIT)
def _stop(args: argparse.Namespace) -> int:
    """stop an execution (StopExecution, applied by the runtime on the file)"""
    body = {"executionArn": args.execution, "error": args.error, "cause": args.cause}
    return request(args, "stop", body)


@command("redrive", EXECUTION, STORE, WAIT)
def _redrive(args: argparse.Namespace) -> int:
    """redrive a FAILED, TIMED_OUT or ABORTED execution (applied by the runtime)"""
    return request(args, "redrive", {"executionArn": args.execution})


@command("send-task-success", STORE, TOKEN, OUTPUT, WAIT)
def _send_task_success(args: argparse.Namespace) -> int:
    """complete a .waitForTaskToken Task (SendTaskSuccess, applied by the runtime)"""
    body = {"taskToken": args.task_token, "output": parse_input(args.output)}
    return request(args, "send-task-success", body)


@command("send-task-failure", STORE, TOKEN, ERROR, CAUSE, WAIT)
def _send_task_failure(args: argparse.Namespace) -> int:
    """fail a .waitForTaskToken Task (SendTaskFailure, applied by the runtime)"""
    body = {"taskToken": args.task_token, "error": args.error, "cause": args.cause}
    return request(args, "send-task-failure", body)


def request(args: argparse.Namespace, kind: str, body: dict[str, JSON]) -> int:
    """Record ``kind`` for a runtime on ``args.store`` to apply; print it (and its result).

    Waited for (``--wait``) and FAILED: the JSON on stdout, the error on stderr, exit 1.
    """
    from runtime.tools import store_ops

    record = functools.partial(store_ops.request, wait=args.wait)
    done = run_async(record, args.store, kind, body)
    print_json(done)
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


#: This module's commands, in the order ``statemill --help`` lists them.
COMMANDS: Final = (
    *(_start, _describe, _list, _requests, _stop),
    *(_redrive, _send_task_success, _send_task_failure),
)
