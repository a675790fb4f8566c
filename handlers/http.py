"""The HTTP Task: ``arn:aws:states:::http:invoke`` as AWS Step Functions defines it.

Arguments (the Task's ``Parameters``/``Arguments``): ``ApiEndpoint`` (required), ``Method``
(``GET``, ``POST``, ``PUT``, ``DELETE``, ``PATCH``, ``OPTIONS`` or ``HEAD``; required),
``Headers``, ``QueryParameters``, ``RequestBody`` (JSON, or text) and ``Transform``
(``RequestBodyEncoding``: ``NONE`` or ``URL_ENCODED``). ``Authentication.ConnectionArn`` is
accepted and ignored (there are no EventBridge connections here): put credentials in
``Headers``.

The result is AWS's response shape: ``{"Headers": {name: [values]}, "ResponseBody": ...,
"StatusCode": int, "StatusText": str}``, with a JSON response body parsed. Failures use AWS's error
names: ``States.Http.StatusCode.<code>`` for a response that is not 2xx (the cause holds the
response; redirects are not followed, so a 3xx is one too), ``States.Http.Socket`` when the
endpoint cannot be reached, is refused (below) or does not answer in full within ``timeout``
seconds (60, AWS's limit for the whole call), ``States.DataLimitExceeded`` for a response body
over ``max_response_bytes`` (AWS's 256 KiB payload limit by default), and ``States.Runtime``
for invalid arguments.

Limits (issue 11), each enforced by the call itself:

* **Addresses.** The host name is resolved first and every address it resolves to is checked;
  the connection then goes to the checked address (the URL is pinned to it, with the ``Host``
  header and TLS server name of the original host), so a second DNS answer cannot redirect the
  call (DNS rebinding). By default only public (globally routable) addresses are called, as on
  AWS, where an HTTP Task reaches the internet: loopback, private networks (10/8, 172.16/12,
  192.168/16, fc00::/7), link-local (169.254/16, fe80::/10), shared (100.64/10) and other
  special-purpose addresses are refused, also when written in IPv4-mapped, 6to4 or NAT64 form.
  ``http_registry(allowed_networks=["127.0.0.1/32", "10.0.0.0/8"])`` allows more (for a local
  service, or tests); ``allow_public=False`` allows only those. Cloud metadata endpoints
  (:data:`METADATA_ADDRESSES`, :data:`METADATA_HOSTS`) are refused whatever is allowed: a
  workflow must never read the machine's credentials.
* **Size.** The body is read as a stream and the call fails as soon as it passes the limit (a
  ``Content-Length`` over it fails before the body is read); ``gzip``/``deflate`` bodies count
  their decoded size and are decoded in bounded steps (``Accept-Encoding: identity`` is sent
  unless the definition sets that header).
* **Cancellation.** The call is the ``httpx`` async client on the event loop, not a thread: when
  the Task's ``TimeoutSeconds`` passes or the execution is stopped, the call is cancelled and its
  connection closed. (Name resolution runs in the loop's resolver thread, as asyncio does it.)

``registry`` is the default configuration; ``http_registry(...)`` builds another.

Imports only the public ``runtime`` API, the standard library, anyio and httpx.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
import urllib.parse
import zlib
from collections.abc import Iterable, Mapping
from typing import Any, Final, final

import anyio
import httpx

from runtime import HandlerRegistry, TaskContext, TaskFailed

__all__ = [
    "HTTP_INVOKE",
    "MAX_RESPONSE_BYTES",
    "METADATA_ADDRESSES",
    "METADATA_HOSTS",
    "HttpInvoke",
    "http_registry",
    "registry",
]

JSON = Any
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

HTTP_INVOKE: Final = "arn:aws:states:::http:invoke"
METHODS: Final = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"})
TIMEOUT_SECONDS: Final = 60.0
#: AWS's payload limit (256 KiB), the default cap on a response body.
MAX_RESPONSE_BYTES: Final = 256 * 1024

#: Instance metadata and credential endpoints of the clouds: AWS IMDS (IPv4 and IPv6), the ECS
#: task metadata endpoint, Azure/GCP/Oracle (169.254.169.254 too, and Oracle's 192.0.0.192),
#: Alibaba. Refused even inside ``allowed_networks``.
METADATA_ADDRESSES: Final[frozenset[IPAddress]] = frozenset(
    ipaddress.ip_address(text)
    for text in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "192.0.0.192",
        "100.100.100.200",
    )
)
#: Host names of metadata endpoints, refused before they are resolved.
METADATA_HOSTS: Final = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)

_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")


@final
class HttpInvoke:
    """The ``http:invoke`` handler with its limits (see the module docstring)."""

    def __init__(
        self,
        *,
        allowed_networks: Iterable[str | IPNetwork] = (),
        allow_public: bool = True,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        timeout: float = TIMEOUT_SECONDS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must not be negative")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.allowed_networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(network) for network in allowed_networks
        )
        self.allow_public = allow_public
        self.max_response_bytes = max_response_bytes
        self.timeout = timeout
        self._ssl = ssl_context

    async def __call__(self, arguments: JSON, context: TaskContext) -> JSON:
        """Call the endpoint and return AWS's response shape."""
        method, url, headers, body = _request(arguments)
        try:
            with anyio.fail_after(self.timeout):
                return await self._call(method, url, headers, body)
        except TimeoutError:
            raise TaskFailed(
                "States.Http.Socket", f"No complete response within {self.timeout:g} seconds"
            ) from None

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be called, or None when it may."""
        if address in METADATA_ADDRESSES:
            return "a cloud metadata address"
        embedded = _embedded_ipv4(address)
        if embedded is not None:  # the IPv4 address it reaches is the one that counts
            reason = self.refusal(embedded)
            return None if reason is None else f"{reason} ({embedded} inside {address})"
        if any(address in network for network in self.allowed_networks):
            return None
        if self.allow_public and address.is_global and not address.is_multicast:
            return None
        return _kind(address)

    async def _call(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> JSON:
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as error:
            raise TaskFailed("States.Runtime", f"Invalid ApiEndpoint: {error}") from None
        if target.scheme not in ("http", "https") or not target.raw_host:
            raise TaskFailed("States.Runtime", f"Invalid ApiEndpoint: {url!r}")
        host = target.raw_host.decode("ascii")
        port = target.port or (443 if target.scheme == "https" else 80)
        address = await self._resolve(host, port)
        # Pinned: the connection goes to the address just checked, never to a new DNS answer.
        pinned = target.copy_with(host=str(address))
        extensions: dict[str, Any] = {}
        if target.scheme == "https" and not _is_ip(host):
            extensions["sni_hostname"] = host  # TLS checks the certificate against the name
        headers = {k: v for k, v in headers.items() if k.lower() != "host"}
        headers["Host"] = target.netloc.decode("ascii")
        if not any(k.lower() == "accept-encoding" for k in headers):
            headers["Accept-Encoding"] = "identity"
        client = httpx.AsyncClient(
            trust_env=False,  # no proxies from the environment: the endpoint named is called
            follow_redirects=False,  # a redirect would reach an address nobody checked
            timeout=httpx.Timeout(self.timeout),
            verify=self._ssl_context(),  # made once: loading the CAs per call is slow
        )
        try:
            async with (
                client,
                client.stream(
                    method, pinned, headers=headers, content=body, extensions=extensions
                ) as response,
            ):
                raw = await self._read(response)
                shaped = _response(response, raw)
        except (httpx.TransportError, OSError) as error:
            raise TaskFailed("States.Http.Socket", f"{type(error).__name__}: {error}") from None
        status = int(shaped["StatusCode"])
        if not 200 <= status < 300:
            raise TaskFailed(
                f"States.Http.StatusCode.{status}", json.dumps(shaped, separators=(",", ":"))
            )
        return shaped

    async def _resolve(self, host: str, port: int) -> IPAddress:
        """The address to connect to: every address ``host`` resolves to must be allowed."""
        if host.lower().rstrip(".") in METADATA_HOSTS:
            raise _refused(host, None, "a cloud metadata host name")
        if _is_ip(host):
            addresses = [ipaddress.ip_address(host)]
        else:
            try:
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as error:
                raise TaskFailed("States.Http.Socket", f"Cannot resolve {host}: {error}") from None
            addresses = list(
                dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
            )
        if not addresses:
            raise TaskFailed("States.Http.Socket", f"Cannot resolve {host}: no address")
        for address in addresses:
            reason = self.refusal(address)
            if reason is not None:
                raise _refused(host, address, reason)
        return addresses[0]

    async def _read(self, response: httpx.Response) -> bytes:
        """The body, read as a stream, never more than ``max_response_bytes`` of it."""
        limit = self.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _too_large(limit, f"Content-Length {declared}")
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib framing
        elif encoding in ("identity", ""):
            decoder = None
        else:
            raise TaskFailed("States.Http.Socket", f"Unsupported Content-Encoding: {encoding}")
        chunks: list[bytes] = []
        size = 0
        try:
            async for data in response.aiter_raw():
                if decoder is None:
                    size += len(data)
                    if size > limit:
                        raise _too_large(limit, "the body read so far")
                    chunks.append(data)
                    continue
                pending = data
                while pending:
                    # At most one byte past the limit is ever decoded (a zip bomb stays small).
                    out = decoder.decompress(pending, limit - size + 1)
                    size += len(out)
                    if size > limit:
                        raise _too_large(limit, "the decoded body read so far")
                    chunks.append(out)
                    pending = decoder.unconsumed_tail
            if decoder is not None:
                out = decoder.flush()
                size += len(out)
                if size > limit:
                    raise _too_large(limit, "the decoded body")
                chunks.append(out)
        except zlib.error as error:
            raise TaskFailed("States.Http.Socket", f"Cannot decode the body: {error}") from None
        return b"".join(chunks)

    def _ssl_context(self) -> ssl.SSLContext:
        """One verifying TLS context per handler, made on first use (loading CAs is slow)."""
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl


def http_registry(
    *,
    allowed_networks: Iterable[str | IPNetwork] = (),
    allow_public: bool = True,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    timeout: float = TIMEOUT_SECONDS,
    ssl_context: ssl.SSLContext | None = None,
) -> HandlerRegistry:
    """A registry serving ``http:invoke`` with these limits.

    Args:
        allowed_networks: networks called besides public addresses, such as
            ``"127.0.0.1/32"`` for a local service (cloud metadata addresses stay refused).
        allow_public: whether public (globally routable) addresses are called.
        max_response_bytes: the largest response body accepted (AWS's 256 KiB by default).
        timeout: seconds for the whole call, connection to last byte (AWS's 60 by default).
        ssl_context: how HTTPS servers are verified (a private CA, say); by default the
            system's and certifi's CAs, with the host name checked.
    """
    handlers = HandlerRegistry()
    handlers.register(
        HTTP_INVOKE,
        HttpInvoke(
            allowed_networks=allowed_networks,
            allow_public=allow_public,
            max_response_bytes=max_response_bytes,
            timeout=timeout,
            ssl_context=ssl_context,
        ),
    )
    return handlers


registry = http_registry()


def _headers(raw: JSON) -> dict[str, str]:
    """``Headers``: an object of names to values, both sent as ASCII text (a list, or a value
    outside ASCII, escaped as a Python error before)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise TaskFailed("States.Runtime", "Headers must be an object of names to values")
    headers: dict[str, str] = {}
    for name, value in raw.items():
        text = value if isinstance(value, str) else json.dumps(value)
        if not (str(name).isascii() and text.isascii()):
            raise TaskFailed("States.Runtime", f"Header {name!r} must be ASCII text")
        headers[str(name)] = text
    return headers


def _request(arguments: JSON) -> tuple[str, str, dict[str, str], bytes | None]:
    if not isinstance(arguments, Mapping):
        raise TaskFailed("States.Runtime", "The HTTP Task's arguments must be an object")
    endpoint = arguments.get("ApiEndpoint")
    method = arguments.get("Method")
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise TaskFailed("States.Runtime", f"Invalid ApiEndpoint: {endpoint!r}")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise TaskFailed("States.Runtime", f"Invalid Method: {method!r}")
    headers = _headers(arguments.get("Headers"))
    query = arguments.get("QueryParameters") or {}
    if not isinstance(query, Mapping):
        raise TaskFailed("States.Runtime", "QueryParameters must be an object")
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


def _response(response: httpx.Response, raw: bytes) -> JSON:
    text = raw.decode("utf-8", errors="replace")
    body: JSON = text
    if "json" in response.headers.get("Content-Type", "") and text:
        try:
            body = json.loads(text)
        except ValueError:
            body = text
    grouped: dict[str, list[str]] = {}
    for name, value in response.headers.raw:  # the names as the server wrote them
        grouped.setdefault(name.decode("latin-1"), []).append(value.decode("latin-1"))
    return {
        "Headers": grouped,
        "ResponseBody": body,
        "StatusCode": response.status_code,
        "StatusText": response.reason_phrase,
    }


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 (64:ff9b::/96) IPv6 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _kind(address: IPAddress) -> str:
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        return "a private-network address"
    return "not a public address"


def _refused(host: str, address: IPAddress | None, reason: str) -> TaskFailed:
    shown = host if address is None or str(address) == host else f"{host} ({address})"
    return TaskFailed(
        "States.Http.Socket",
        f"Refused to call {shown}: {reason}; the HTTP Task calls public addresses and the "
        "networks its registry allows (http_registry(allowed_networks=...))",
    )


def _too_large(limit: int, what: str) -> TaskFailed:
    return TaskFailed(
        "States.DataLimitExceeded",
        f"The state/task 'http' returned a result with a size exceeding the maximum number of "
        f"bytes service limit ({what} is over {limit} bytes).",
    )
