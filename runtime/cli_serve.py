"""``statemill worker | serve``: run the runtime on a store, alone or behind the Step Functions API.

``worker`` resumes a store's executions and applies its requests
(:func:`runtime.tools.operations.serve`), with a status line on stderr; ``serve`` adds the HTTP
API of :mod:`runtime.http` on one port, SigV4-authenticated with the keys of an AWS shared
credentials file (``--credentials-file``, :func:`read_credentials_file`).
Both run until Ctrl-C or SIGTERM (``worker --exit-when-idle``: until nothing can move).

Imports only the standard library and the ``cli_*`` plumbing at the top.
"""

from __future__ import annotations

import argparse
import configparser
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from runtime.cli_support import handler_registry, print_json, run_async
from runtime.cli_table import (
    DEFAULT_STORE,
    EXIT_OK,
    HANDLERS,
    OBJECTS,
    RUN_STORE_HELP,
    STORE,
    UsageError,
    arg,
    command,
)

if TYPE_CHECKING:
    from runtime.items import ObjectStore

__all__ = ["COMMANDS", "object_store", "read_credentials_file"]


@command(
    "worker",
    STORE,
    HANDLERS,
    OBJECTS,
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
        object_store=object_store(args.objects),
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
    OBJECTS,
    arg("--host", default="127.0.0.1", help="address to listen on (default: loopback only)"),
    arg("--port", type=int, default=8083, help="port to listen on (default: 8083)"),
    arg(
        "--credentials-file",
        metavar="PATH",
        help="an AWS shared credentials file (INI sections with aws_access_key_id and "
        "aws_secret_access_key): every API request must be SigV4-signed by one of its keys, "
        "the console asks for a sign-in with them, and a non-loopback --host is allowed",
    ),
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
    --endpoint-url` at it. With --credentials-file, every request must be signed (SigV4, as
    AWS checks it) by one of the file's keys, and the console asks for a sign-in with them;
    without, requests are not authenticated and the server listens on loopback only unless
    --allow-unauthenticated-remote-access.
    """
    from runtime.http import serve
    from runtime.http.serve import listen_mode
    from runtime.tools.stores import runtime_store

    remote = args.allow_unauthenticated_remote_access
    credentials = None
    if args.credentials_file is not None:
        credentials = read_credentials_file(args.credentials_file)
    try:
        # Refused before the handlers and the store are opened.
        listen_mode(args.host, credentials=credentials, allow_unauthenticated_remote=remote)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    handlers = handler_registry(args)

    async def serving() -> None:
        async with runtime_store(args.store, memory=True) as store:
            await serve(
                store,
                handlers,
                host=args.host,
                port=args.port,
                allow_unauthenticated_remote=remote,
                credentials=credentials,
                object_store=object_store(args.objects),
            )

    try:
        run_async(serving)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def object_store(folder: str | None) -> ObjectStore | None:
    """The object store of ``--objects DIR`` (a folder per bucket), if given."""
    if folder is None:
        return None
    from runtime.items import LocalObjectStore

    return LocalObjectStore(Path(folder))


def read_credentials_file(path: str) -> dict[str, str]:
    """The access keys of an AWS shared credentials file: access key id -> secret access key.

    Every section holding both ``aws_access_key_id`` and ``aws_secret_access_key`` gives one
    key (``aws_session_token`` and other settings are ignored).

    Raises:
        UsageError: the file cannot be read or parsed, or holds no key pair.
    """
    parser = configparser.ConfigParser(interpolation=None)  # secrets may hold "%"
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read the credentials file {path}: {reason}") from None
    except configparser.Error as exc:
        first = str(exc).splitlines()[0]
        raise UsageError(f"cannot read the credentials file {path}: {first}") from None
    keys: dict[str, str] = {}
    for name in parser.sections():
        key_id = parser.get(name, "aws_access_key_id", fallback="").strip()
        secret = parser.get(name, "aws_secret_access_key", fallback="").strip()
        if key_id and secret:
            keys[key_id] = secret
    if not keys:
        raise UsageError(
            f"the credentials file {path} holds no aws_access_key_id and aws_secret_access_key pair"
        )
    return keys


#: This module's commands, in the order ``statemill --help`` lists them.
COMMANDS: Final = (_worker, _serve)
