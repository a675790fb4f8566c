"""``statemill serve``: one process runs a ``Runtime`` and its Step Functions API with uvicorn.

Safe by default: it listens on loopback only. Requests are not authenticated (SigV4
verification is a later step of issue 13), so binding any other address needs the explicit
opt-out ``allow_unauthenticated_remote=True`` (``--allow-unauthenticated-remote-access`` on the
command line), which logs a warning: anyone who can reach the port can then start, stop and
answer executions.

Imports uvicorn, the public ``runtime`` API and this package.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final

import structlog
import uvicorn

from runtime import EventStore, HandlerRegistry, Runtime
from runtime.http.app import LOOPBACK_HOSTS, create_app

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "is_loopback", "serve"]

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


async def serve(
    store: EventStore | str,
    handlers: HandlerRegistry,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_unauthenticated_remote: bool = False,
    sock: socket.socket | None = None,
) -> None:
    """Run a runtime on ``store`` and serve its API on ``host:port`` until cancelled (Ctrl-C).

    Args:
        store: a SQLite file path, or ``"memory"``.
        handlers: the Task handlers.
        host, port: where to listen (``sock``: an already bound socket instead).
        allow_unauthenticated_remote: permit a non-loopback ``host`` without authentication.

    Raises:
        ValueError: ``host`` is not loopback and the opt-out was not given.
    """
    if sock is not None:
        # The socket decides where the server listens, whatever ``host`` says.
        host = str(sock.getsockname()[0])
    if not is_loopback(host) and not allow_unauthenticated_remote:
        raise ValueError(
            f"refusing to listen on {host}: the API is not authenticated yet (SigV4 is a later "
            "step); listen on 127.0.0.1, or pass --allow-unauthenticated-remote-access"
        )
    if not is_loopback(host):
        log.warning("http.unauthenticated_remote_access", host=host, port=port)
    async with Runtime(store, handlers=handlers) as runtime:
        config = uvicorn.Config(
            # On loopback, only loopback names are accepted in Host: a web page whose name is
            # re-pointed at 127.0.0.1 (DNS rebinding) must not reach the API or the console.
            create_app(runtime, allowed_hosts=None if not is_loopback(host) else LOOPBACK_HOSTS),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            # A GetActivityTask long poll (60 s) must not hold Ctrl-C for a minute.
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        log.info("http.listening", host=host, port=port)
        await server.serve(sockets=None if sock is None else [sock])
