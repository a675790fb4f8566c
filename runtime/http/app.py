"""The ASGI application: ``POST /`` dispatches ``X-Amz-Target`` to an action of the model.

Each request is read with a bound (:data:`~runtime.http.protocol.MAX_BODY_BYTES`), decoded,
checked against its action's shape (:mod:`runtime.http.shapes`) and handed to the action
(:mod:`runtime.http.actions`). Every failure is answered in AWS's form: a Runtime error by its
Step Functions name (``ExecutionDoesNotExist``, ``InvalidDefinition``, ...), a bug in Statemill
as ``InternalFailure`` (logged here with its traceback; the client sees only the message).
The web console (:mod:`runtime.console`) is mounted at ``/console``; ``GET /`` redirects there.

With ``credentials`` (access key id -> secret access key), every API request must carry an AWS
Signature Version 4 by one of those keys (:mod:`runtime.http.sigv4`): its body is read (within
``MAX_BODY_BYTES``) and its signature verified before anything else of it is looked at, and a
request without ``Authorization`` is refused before its body is read. The console then asks
for a sign-in with the same keys (:mod:`runtime.console`).

Imports Starlette, the public ``runtime`` API, ``runtime.errors``, ``runtime.console`` and this
package.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route

from runtime import Runtime
from runtime.console import create_console
from runtime.errors import (
    ConcurrencyConflict,
    InvalidDefinition,
    StateMachineQuarantined,
    StatemillError,
)
from runtime.http.actions import ACTIONS, Service
from runtime.http.protocol import (
    CONTENT_TYPE,
    MAX_BODY_BYTES,
    TARGET_PREFIX,
    ApiError,
    decode_body,
    encode,
    error_body,
)
from runtime.http.shapes import check_request
from runtime.http.sigv4 import SignedRequest, missing_authentication, verify

__all__ = ["create_app"]

log = structlog.get_logger("statemill.http")

#: Runtime errors whose class name is the API's error name.
_SAME_NAME: Final = frozenset(
    {
        "ActivityDoesNotExist",
        "ConflictException",
        "ExecutionAlreadyExists",
        "ExecutionDoesNotExist",
        "ExecutionLimitExceeded",
        "ExecutionNotRedrivable",
        "InvalidArn",
        "InvalidExecutionInput",
        "InvalidName",
        "InvalidToken",
        "ResourceNotFound",
        "ServiceQuotaExceededException",
        "StateMachineAlreadyExists",
        "StateMachineDoesNotExist",
        "TaskDoesNotExist",
        "TaskTimedOut",
        "TooManyTags",
        "ValidationException",
    }
)
_CONTENT_TYPES: Final = frozenset(
    {CONTENT_TYPE, "application/x-amz-json-1.1", "application/json", ""}
)


#: The Host names a loopback server answers to (``Host`` without its port).
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(
    runtime: Runtime,
    *,
    allowed_hosts: Sequence[str] | None = LOOPBACK_HOSTS,
    credentials: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The Step Functions API of ``runtime`` as an ASGI application.

    ``allowed_hosts``: the ``Host`` names it answers to (loopback names by default, against DNS
    rebinding); ``None`` accepts any, for a server exposed on purpose. ``credentials``: access
    key id -> secret access key; with them every API request must be SigV4-signed by one of
    those keys for the service ``states`` and the runtime's region (else
    ``MissingAuthenticationTokenException``, ``InvalidSignatureException``,
    ``UnrecognizedClientException``...) and the console asks for a sign-in. ``clock``: the
    wall clock (epoch seconds) signature times and console sessions are checked against.

    Mount it next to a running runtime (inside ``async with runtime:``), e.g. with uvicorn::

        async with Runtime("statemill.db", handlers=handlers) as runtime:
            server = uvicorn.Server(uvicorn.Config(create_app(runtime), port=8083))
            await server.serve()

    and point boto3 at it: ``boto3.client("stepfunctions", endpoint_url="http://127.0.0.1:8083",
    region_name="us-east-1", config=Config(inject_host_prefix=False))``. The
    ``inject_host_prefix=False`` matters for ``start_sync_execution``: botocore sends it to a
    ``sync-`` host prefix (``sync-127.0.0.1``), which does not resolve locally. Without
    ``credentials`` no request is authenticated: listen on loopback only.
    """
    service = Service(runtime)
    keys = None if credentials is None else dict(credentials)

    async def endpoint(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            body = None
            if keys is not None:
                body = await _authenticated_body(request, keys, runtime.region, clock())
            result = await _dispatch(service, request, body)
            status, payload = 200, encode(result)
        except ApiError as error:
            status, payload = error.status, error_body(error)
        headers = {"x-amzn-RequestId": request_id}
        return Response(payload, status_code=status, media_type=CONTENT_TYPE, headers=headers)

    async def home(request: Request) -> Response:
        return RedirectResponse(url=str(request.url_for("console", path="/")), status_code=307)

    middleware = []
    if allowed_hosts is not None:
        # A request naming another host is refused (400): a page whose name a DNS rebinding
        # re-pointed at this loopback server is same-origin to the browser, and would otherwise
        # drive the API and read the console's CSRF token.
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    return Starlette(
        middleware=middleware,
        routes=[
            Route("/", endpoint, methods=["POST"]),
            Route("/", home, methods=["GET"]),
            Mount(
                "/console",
                app=create_console(runtime, credentials=keys, clock=clock),
                name="console",
            ),
        ],
    )


async def _authenticated_body(
    request: Request, credentials: Mapping[str, str], region: str, now: float
) -> bytes:
    """The request's body, once its SigV4 signature (which covers the body's hash) is verified."""
    if "authorization" not in request.headers:
        raise missing_authentication()  # refused before its body is read
    body = await _read(request)
    raw_path = request.scope.get("raw_path")
    signed = SignedRequest(
        method=request.method,
        path=raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path,
        query=bytes(request.scope.get("query_string", b"")).decode("latin-1"),
        headers=[
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw
        ],
        body=body,
    )
    verify(signed, credentials, region=region, now=now)
    return body


async def _dispatch(service: Service, request: Request, body: bytes | None) -> dict[str, object]:
    """The action's answer; ``body``: the request's body if it was read already."""
    target = request.headers.get("x-amz-target", "")
    name = target.removeprefix(TARGET_PREFIX)
    handle = ACTIONS.get(name) if target.startswith(TARGET_PREFIX) else None
    if handle is None:
        raise ApiError("UnknownOperationException", f"Unknown operation: '{target}'")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in _CONTENT_TYPES:
        raise ApiError("SerializationException", f"Unsupported Content-Type: '{content_type}'")
    raw = body if body is not None else await _read(request)
    checked = check_request(name, decode_body(raw))
    try:
        return await handle(service, checked)
    except ApiError:
        raise
    except StatemillError as exc:
        raise _api_error(exc) from None
    except Exception as exc:  # a bug in Statemill: logged, never sent to the client
        log.exception("http.internal_failure", action=name)
        raise ApiError("InternalFailure", f"Internal failure ({type(exc).__name__})") from None


async def _read(request: Request) -> bytes:
    """The request body, refused past :data:`MAX_BODY_BYTES` without reading it whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> ApiError:
    return ApiError(
        "ValidationException",
        f"The request body exceeds {MAX_BODY_BYTES} bytes (definitions are limited to 1 MiB, "
        "execution input and task output to 256 KiB)",
    )


def _api_error(exc: StatemillError) -> ApiError:
    """A Runtime error as the API's error."""
    name = type(exc).__name__
    if isinstance(exc, InvalidDefinition):
        return ApiError("InvalidDefinition", exc.message)
    if name in _SAME_NAME:
        return ApiError(name, str(exc))
    if isinstance(exc, StateMachineQuarantined):
        return ApiError("ValidationException", str(exc))
    if isinstance(exc, ConcurrencyConflict):
        return ApiError("ConflictException", str(exc))
    log.error("http.internal_failure", error=name, message=str(exc))
    return ApiError("InternalFailure", f"Internal failure ({name})")
