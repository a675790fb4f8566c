"""``statemill worker | serve``: run the runtime on a store, alone or behind the Step Functions API.

``worker`` resumes a store's executions and applies its requests
(:func:`runtime.tools.operations.serve`), with a status line on stderr; ``serve`` adds the HTTP
API of :mod:`runtime.http` on one port.
Both run until Ctrl-C or SIGTERM (``worker --exit-when-idle``: until nothing can move).

Imports only the standard library and the ``cli_*`` plumbing at the top.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Final

from runtime.cli_support import handler_registry, print_json, run_async
from runtime.cli_table import (
    DEFAULT_STORE,
    EXIT_OK,
    HANDLERS,
    RUN_STORE_HELP,
    STORE,
    UsageError,
    arg,
    command,
)

__all__ = ["COMMANDS"]


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
    import signal

    from runtime.tools import operations

    handlers, idle = handler_registry(args), args.exit_when_idle
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
        done = run_async(serve, args.store, handlers)
    except KeyboardInterrupt:
        print_json({"status": "interrupted"})
        return EXIT_OK
    for item in done.get("waiting", []):
        print(
            f"statemill worker: {item['executionArn']} waits for {item['waitsFor']}",
            file=sys.stderr,
        )
    print_json(done)
    return EXIT_OK


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
    handlers = handler_registry(args)

    async def serving() -> None:
        async with runtime_store(args.store, memory=True) as store:
            await serve(store, handlers, **options, allow_unauthenticated_remote=remote)

    try:
        run_async(serving)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    return EXIT_OK


#: This module's commands, in the order ``statemill --help`` lists them.
COMMANDS: Final = (_worker, _serve)
