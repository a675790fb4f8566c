"""The HTTP Task: ``arn:aws:states:::http:invoke`` as AWS Step Functions defines it.

Arguments (the Task's ``Parameters``/``Arguments``): ``ApiEndpoint`` (required), ``Method``
(``GET``, ``POST``, ``PUT``, ``DELETE``, ``PATCH``, ``OPTIONS`` or ``HEAD``; required),
``Headers``, ``QueryParameters``, ``RequestBody`` (JSON, or text) and ``Transform``
(``RequestBodyEncoding``: ``NONE`` or ``URL_ENCODED``). ``Authentication.ConnectionArn`` is
accepted and ignored (there are no EventBridge connections here): put credentials in
``Headers``.

The result is AWS's response shape: ``{"Headers": {name: [values]}, "ResponseBody": ...,
"StatusCode": int, "StatusText": str}``, with a JSON response body parsed. Failures use AWS's error
names: ``States.Http.StatusCode.<code>`` for a non-2xx response (the cause holds the response),
``States.Http.Socket`` when the endpoint cannot be reached or does not answer within
``timeout`` seconds, and ``States.Runtime`` for invalid arguments.

The call runs the standard library's ``urllib`` in a worker thread: no dependency is added.

Imports only the public ``runtime`` API and the standard library.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Final

from runtime import HandlerRegistry, TaskContext, TaskFailed

__all__ = ["HTTP_INVOKE", "registry"]

JSON = Any

HTTP_INVOKE: Final = "arn:aws:states:::http:invoke"
METHODS: Final = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"})
TIMEOUT_SECONDS: Final = 60.0

registry = HandlerRegistry()

#: No proxies from the environment: the endpoint the definition names is the one called.
_OPENER: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@registry.handler(HTTP_INVOKE)
async def http_invoke(arguments: JSON, context: TaskContext) -> JSON:
    """Call the endpoint and return AWS's response shape (see the module docstring)."""
    method, url, headers, body = _request(arguments)
    return await asyncio.to_thread(_call, method, url, headers, body, TIMEOUT_SECONDS)


def _request(arguments: JSON) -> tuple[str, str, dict[str, str], bytes | None]:
    if not isinstance(arguments, Mapping):
        raise TaskFailed("States.Runtime", "The HTTP Task's arguments must be an object")
    endpoint = arguments.get("ApiEndpoint")
    method = arguments.get("Method")
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise TaskFailed("States.Runtime", f"Invalid ApiEndpoint: {endpoint!r}")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise TaskFailed("States.Runtime", f"Invalid Method: {method!r}")
    headers = {str(k): str(v) for k, v in dict(arguments.get("Headers") or {}).items()}
    query = arguments.get("QueryParameters") or {}
    url = endpoint
    if query:
        separator = "&" if urllib.parse.urlsplit(endpoint).query else "?"
        url = endpoint + separator + urllib.parse.urlencode(_flat(query), doseq=True)
    body: bytes | None = None
    if "RequestBody" in arguments and method.upper() not in ("GET", "HEAD"):
        payload = arguments["RequestBody"]
        encoding = dict(arguments.get("Transform") or {}).get("RequestBodyEncoding", "NONE")
        if encoding == "URL_ENCODED" and isinstance(payload, Mapping):
            body = urllib.parse.urlencode(_flat(payload), doseq=True).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif isinstance(payload, str):
            body = payload.encode()
        else:
            body = json.dumps(payload, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
    return method.upper(), url, headers, body


def _flat(values: Mapping[str, JSON]) -> dict[str, JSON]:
    """Query and form values: lists repeat the key, other values are their JSON text."""
    out: dict[str, JSON] = {}
    for key, value in values.items():
        if isinstance(value, list):
            out[key] = [v if isinstance(v, str) else json.dumps(v) for v in value]
        else:
            out[key] = value if isinstance(value, str) else json.dumps(value)
    return out


def _call(
    method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
) -> JSON:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return _response(response.status, response.reason, response.headers, response.read())
    except urllib.error.HTTPError as error:
        shaped = _response(error.code, error.reason, error.headers, error.read())
        raise TaskFailed(
            f"States.Http.StatusCode.{error.code}", json.dumps(shaped, separators=(",", ":"))
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise TaskFailed("States.Http.Socket", f"{type(error).__name__}: {error}") from None


def _response(status: int, reason: str, headers: Any, raw: bytes) -> JSON:
    text = raw.decode("utf-8", errors="replace")
    body: JSON = text
    content_type = headers.get("Content-Type", "") if headers is not None else ""
    if "json" in content_type and text:
        try:
            body = json.loads(text)
        except ValueError:
            body = text
    grouped: dict[str, list[str]] = {}
    for name, value in headers.items() if headers is not None else ():
        grouped.setdefault(name, []).append(value)
    return {"Headers": grouped, "ResponseBody": body, "StatusCode": status, "StatusText": reason}
