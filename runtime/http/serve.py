"""``statemill serve``: one process runs a ``Runtime`` and its Step Functions API with uvicorn.

Safe by default (issue 13): without credentials it listens on loopback only. Binding any
other address needs either access keys (``credentials``: access key id -> secret access key;
``--credentials-file`` on the command line), whose SigV4 signatures every API request must then
carry and with which the console's users sign in, or the explicit opt-out
``allow_unauthenticated_remote=True`` (``--allow-unauthenticated-remote-access``), which logs a
warning: anyone who can reach the port can then start, stop and answer executions.
:func:`listen_mode` is that decision.

Imports uvicorn, the public ``runtime`` API and this package.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from typing import Final, Literal

import structlog
import uvicorn

from runtime import EventStore, HandlerRegistry, Runtime
from runtime.http.app import LOOPBACK_HOSTS, create_app
from runtime.items import ObjectStore

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ListenMode", "is_loopback", "listen_mode", "serve"]

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8083
log = structlog.get_logger("statemill.http")


def is_loopback(host: str) -> bool:
    """True when ``host`` names only this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: How a server may listen: on loopback, elsewhere with SigV4 keys, elsewhere unauthenticated.
ListenMode = Literal["loopback", "authenticated", "unauthenticated"]


def listen_mode(
    host: str,
    *,
    credentials: Mapping[str, str] | None = None,
    allow_unauthenticated_remote: bool = False,
) -> ListenMode:
    """Whether and how a server may listen on ``host``.

    Loopback is always allowed; another address when access keys are given (``authenticated``)
    or with the explicit opt-out (``unauthenticated``: the caller warns).

    Raises:
        ValueError: ``host`` is not loopback and neither keys nor the opt-out were given, or
            ``credentials`` is given but empty (nobody could be let in).
    """
    if credentials is not None and not credentials:
        raise ValueError("no access key given: the credentials hold no key id and secret pair")
    if is_loopback(host):
        return "loopback"
    if credentials is not None:
        return "authenticated"
    if allow_unauthenticated_remote:
        return "unauthenticated"
    raise ValueError(
        f"refusing to listen on {host} with requests not authenticated: listen on 127.0.0.1, "
        "give access keys to verify SigV4 signatures with (--credentials-file), or pass "
        "--allow-unauthenticated-remote-access"
    )


async def serve(
    store: EventStore | str,
    handlers: HandlerRegistry,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_unauthenticated_remote: bool = False,
    credentials: Mapping[str, str] | None = None,
    sock: socket.socket | None = None,
    object_store: ObjectStore | None = None,
) -> None:
    """Run a runtime on ``store`` and serve its API on ``host:port`` until cancelled (Ctrl-C).

    Args:
        store: a SQLite file path, or ``"memory"``.
        handlers: the Task handlers.
        host, port: where to listen (``sock``: an already bound socket instead).
        allow_unauthenticated_remote: permit a non-loopback ``host`` without authentication.
        credentials: access key id -> secret access key: every API request must be signed
            (SigV4) by one of them, the console asks for a sign-in; a non-loopback ``host`` is
            then allowed.
        object_store: where distributed Maps read their items and write their results.

    Raises:
        ValueError: :func:`listen_mode` refuses ``host``.
    """
    if sock is not None:
        # The socket decides where the server listens, whatever ``host`` says.
        host = str(sock.getsockname()[0])
    mode = listen_mode(
        host, credentials=credentials, allow_unauthenticated_remote=allow_unauthenticated_remote
    )
    if mode == "unauthenticated":
        log.warning("http.unauthenticated_remote_access", host=host, port=port)
    async with Runtime(store, handlers=handlers, object_store=object_store) as runtime:
        app = create_app(
            runtime,
            # On loopback, only loopback names are accepted in Host: a web page whose name is
            # re-pointed at 127.0.0.1 (DNS rebinding) must not reach the API or the console.
            allowed_hosts=LOOPBACK_HOSTS if mode == "loopback" else None,
            credentials=credentials,
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            # A GetActivityTask long poll (60 s) must not hold Ctrl-C for a minute.
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        log.info("http.listening", host=host, port=port, authenticated=credentials is not None)
        await server.serve(sockets=None if sock is None else [sock])
