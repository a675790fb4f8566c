"""The HTTP Task (``arn:aws:states:::http:invoke``) against local HTTP servers.

Every server here is started by the test on 127.0.0.1. The default registry refuses loopback
(only public addresses are called), so the tests call through a registry that allows
127.0.0.1 (``http.http_registry(allowed_networks=...)``), and check the default's refusals
without any traffic: a refused address is never connected to.
"""

from __future__ import annotations

import functools
import gzip
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from handlers import http
from runtime import Runtime, TaskFailed
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
SEEN: list[dict[str, JSON]] = []
#: How many body bytes the streaming routes managed to write before the client hung up.
WRITTEN: list[int] = []
LOCAL = http.http_registry(allowed_networks=["127.0.0.1/32"])

BIG_BODY_BYTES = 64 * 1024 * 1024


@functools.cache
def gzip_bomb() -> bytes:
    """64 MiB of zeros, gzipped (about 64 KiB): made once, when a test first asks."""
    return gzip.compress(b"\0" * BIG_BODY_BYTES, compresslevel=9)


class _Server(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        SEEN.append(
            {"method": self.command, "path": self.path, "body": body, "headers": dict(self.headers)}
        )
        if self.path.startswith("/big"):
            self._stream()
            return
        if self.path.startswith("/declared"):
            self.send_response(200, "OK")
            self.send_header("Content-Length", str(BIG_BODY_BYTES))
            self.end_headers()
            self.wfile.flush()
            self.rfile.read(1)  # nothing more comes: wait until the client hangs up
            return
        content_type = "application/json"
        extra: dict[str, str] = {}
        if self.path.startswith("/missing"):
            self.send_response(404, "Not Found")
            payload = b'{"message":"no such order"}'
        elif self.path.startswith("/redirect"):
            self.send_response(302, "Found")
            extra["Location"] = "http://169.254.169.254/latest/meta-data/"
            payload = b""
        elif self.path.startswith("/sized/"):
            self.send_response(200, "OK")
            content_type = "text/plain"
            payload = b"x" * int(self.path.rsplit("/", 1)[1])
        elif self.path.startswith("/bomb"):
            self.send_response(200, "OK")
            content_type = "text/plain"
            extra["Content-Encoding"] = "gzip"
            payload = gzip_bomb()
        elif self.path.startswith("/gzip"):
            self.send_response(200, "OK")
            extra["Content-Encoding"] = "gzip"
            payload = gzip.compress(b'{"zipped":true}')
        else:
            self.send_response(200, "OK")
            payload = json.dumps({"echo": body, "path": self.path}).encode()
        self.send_header("Content-Type", content_type)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self) -> None:
        """64 MiB with no Content-Length (the end is the connection's close)."""
        self.send_response(200, "OK")
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        chunk = b"y" * 65536
        written = 0
        try:
            while written < BIG_BODY_BYTES:
                self.wfile.write(chunk)
                written += len(chunk)
        except OSError:
            pass
        finally:
            WRITTEN.append(written)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    SEEN.clear()
    WRITTEN.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


class SilentServer:
    """Accepts one connection, reads the request, never answers; notes when the client closes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/slow"
        self.connected = threading.Event()
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(30)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(30)
            self.connected.set()
            try:
                while conn.recv(65536):
                    pass  # the request, then nothing until the client hangs up
            except OSError:
                return  # 30 s without the client closing: ``closed`` stays unset
            self.closed.set()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


async def happens(event: threading.Event | Callable[[], bool], seconds: float = 5) -> bool:
    """Whether ``event`` (set by a server thread) happens within ``seconds``, polled without
    blocking the event loop (the runtime's cleanup runs on it meanwhile)."""
    check = event.is_set if isinstance(event, threading.Event) else event
    for _ in range(int(seconds / 0.01)):
        if check():
            return True
        await anyio.sleep(0.01)
    return check()


def http_machine(**parameters: JSON) -> dict[str, JSON]:
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::http:invoke",
        "Parameters": {
            "Authentication": {"ConnectionArn": "arn:aws:events:us-east-1:1:connection/x"},
            **parameters,
        },
        "End": True,
    }
    return {"StartAt": "Call", "States": {"Call": task}}


async def test_post_json_with_query_and_headers(server: str) -> None:
    definition = http_machine(
        ApiEndpoint=f"{server}/orders",
        Method="POST",
        Headers={"X-Trace": "t-1"},
        QueryParameters={"page": 2, "tags": ["a", "b"]},
        RequestBody={"order.$": "$.order"},
    )
    async with virtual_runtime(LOCAL) as rt:
        done = await rt.run(definition, {"order": 7}, timeout=10)
    assert done.status == "SUCCEEDED", done.cause
    result = done.output_value
    assert (result["StatusCode"], result["StatusText"]) == (200, "OK")
    assert result["Headers"]["Content-Type"] == ["application/json"]
    assert result["ResponseBody"] == {"echo": '{"order":7}', "path": "/orders?page=2&tags=a&tags=b"}
    assert SEEN[0]["headers"]["X-Trace"] == "t-1"
    assert SEEN[0]["headers"]["Content-Type"] == "application/json"
    assert SEEN[0]["headers"]["Host"] == server.removeprefix("http://")


async def test_url_encoded_body(server: str) -> None:
    definition = http_machine(
        ApiEndpoint=f"{server}/form",
        Method="POST",
        RequestBody={"name": "ada", "n": 1},
        Transform={"RequestBodyEncoding": "URL_ENCODED"},
    )
    async with virtual_runtime(LOCAL) as rt:
        done = await rt.run(definition, {}, timeout=10)
    assert done.output_value["ResponseBody"]["echo"] == "name=ada&n=1"


async def test_a_non_2xx_status_is_a_catchable_status_code_error(server: str) -> None:
    definition = http_machine(ApiEndpoint=f"{server}/missing/1", Method="GET")
    definition["States"]["Call"]["Catch"] = [
        {"ErrorEquals": ["States.Http.StatusCode.404"], "Next": "Gone"}
    ]
    definition["States"]["Call"].pop("End")
    definition["States"]["Call"]["Next"] = "Gone"
    definition["States"]["Gone"] = {"Type": "Pass", "End": True}
    async with virtual_runtime(LOCAL) as rt:
        done = await rt.run(definition, {}, timeout=10)
    assert done.output_value["Error"] == "States.Http.StatusCode.404"
    cause = json.loads(done.output_value["Cause"])
    assert cause["StatusCode"] == 404
    assert cause["ResponseBody"] == {"message": "no such order"}


async def test_a_redirect_is_not_followed(server: str) -> None:
    """A redirect's target was never checked (here: the metadata address), so it is not called."""
    async with virtual_runtime(LOCAL) as rt:
        done = await rt.run(http_machine(ApiEndpoint=f"{server}/redirect", Method="GET"), {})
    assert done.error == "States.Http.StatusCode.302"
    assert json.loads(done.cause or "")["Headers"]["Location"] == [
        "http://169.254.169.254/latest/meta-data/"
    ]
    assert [seen["path"] for seen in SEEN] == ["/redirect"]


async def test_an_unreachable_endpoint_is_a_socket_error() -> None:
    definition = http_machine(ApiEndpoint="http://127.0.0.1:9/nothing", Method="GET")
    async with virtual_runtime(LOCAL) as rt:
        done = await rt.run(definition, {}, timeout=10)
    assert done.error == "States.Http.Socket"


async def test_invalid_arguments_fail_with_states_runtime() -> None:
    async with virtual_runtime(LOCAL) as rt:
        bad_method = await rt.run(http_machine(ApiEndpoint="http://x", Method="BREW"), {})
        bad_endpoint = await rt.run(http_machine(ApiEndpoint="ftp://x", Method="GET"), {})
    assert bad_method.error == "States.Runtime"
    assert "Invalid Method" in (bad_method.cause or "")
    assert bad_endpoint.error == "States.Runtime"


# -- the response size limit -------------------------------------------------------------------


async def test_a_streamed_response_over_the_limit_fails_without_being_read_whole(
    server: str,
) -> None:
    async with virtual_runtime(LOCAL) as rt:
        done = await rt.run(http_machine(ApiEndpoint=f"{server}/big", Method="GET"), {}, timeout=30)
    assert done.error == "States.DataLimitExceeded"
    assert f"over {http.MAX_RESPONSE_BYTES} bytes" in (done.cause or "")
    # The client hung up early: the server could write only a fraction of its 64 MiB (what
    # the limit allows plus what the loopback socket buffers hold).
    assert await happens(lambda: bool(WRITTEN))
    assert WRITTEN[0] < BIG_BODY_BYTES // 4


async def test_a_declared_length_over_the_limit_fails_before_the_body(server: str) -> None:
    async with virtual_runtime(LOCAL) as rt:
        started = time.monotonic()
        done = await rt.run(
            http_machine(ApiEndpoint=f"{server}/declared", Method="GET"), {}, timeout=30
        )
    assert done.error == "States.DataLimitExceeded"
    assert f"Content-Length {BIG_BODY_BYTES}" in (done.cause or "")
    assert time.monotonic() - started < 5  # no body ever came: the limit was checked first


@pytest.mark.parametrize(("size", "error"), [(1000, None), (1001, "States.DataLimitExceeded")])
async def test_the_limit_is_configurable_and_inclusive(
    server: str, size: int, error: str | None
) -> None:
    handlers = http.http_registry(allowed_networks=["127.0.0.1/32"], max_response_bytes=1000)
    async with virtual_runtime(handlers) as rt:
        done = await rt.run(http_machine(ApiEndpoint=f"{server}/sized/{size}", Method="GET"), {})
    assert done.error == error
    if error is None:
        assert done.output_value["ResponseBody"] == "x" * size


async def test_a_gzip_body_is_decoded_and_its_decoded_size_counts(server: str) -> None:
    gzip_bomb()  # made before memory is traced: the server's work is not the client's
    async with virtual_runtime(LOCAL) as rt:
        small = await rt.run(http_machine(ApiEndpoint=f"{server}/gzip", Method="GET"), {})
        tracemalloc.start()
        try:
            bomb = await rt.run(http_machine(ApiEndpoint=f"{server}/bomb", Method="GET"), {})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert small.output_value["ResponseBody"] == {"zipped": True}
    assert SEEN[0]["headers"]["Accept-Encoding"] == "identity"
    assert bomb.error == "States.DataLimitExceeded"
    # Small on the wire, huge inside:
    assert len(gzip_bomb()) < http.MAX_RESPONSE_BYTES < BIG_BODY_BYTES
    assert peak < 16 * 1024 * 1024  # decoded in bounded steps, never the 64 MiB


# -- cancellation ------------------------------------------------------------------------------


async def test_timeout_seconds_closes_the_connection(silent: SilentServer) -> None:
    definition = http_machine(ApiEndpoint=silent.url, Method="GET")
    definition["States"]["Call"]["TimeoutSeconds"] = 1
    async with Runtime("memory", handlers=LOCAL) as rt:  # real time: the server is real
        done = await rt.run(definition, {}, timeout=20)
        assert done.error == "States.Timeout"
        assert silent.connected.is_set()
        assert await happens(silent.closed), "the timed-out call kept its connection open"


async def test_stopping_the_execution_closes_the_connection(silent: SilentServer) -> None:
    async with Runtime("memory", handlers=LOCAL) as rt:
        machine = await rt.create_state_machine(
            "hang", json.dumps(http_machine(ApiEndpoint=silent.url, Method="GET"))
        )
        started = await rt.start_execution(machine.arn, {})
        assert await happens(silent.connected)
        stopped = await rt.stop_execution(started.execution_arn)
        assert stopped.status == "ABORTED"
        assert await happens(silent.closed), "the stopped execution's call kept its connection open"


async def test_the_handlers_own_deadline_is_a_socket_error(silent: SilentServer) -> None:
    handlers = http.http_registry(allowed_networks=["127.0.0.1/32"], timeout=0.5)
    async with Runtime("memory", handlers=handlers) as rt:
        done = await rt.run(http_machine(ApiEndpoint=silent.url, Method="GET"), {}, timeout=20)
    assert done.error == "States.Http.Socket"
    assert "within 0.5 seconds" in (done.cause or "")
    assert await happens(silent.closed)


# -- the address policy ------------------------------------------------------------------------


async def test_the_default_registry_refuses_loopback(server: str) -> None:
    async with virtual_runtime(http.registry) as rt:
        by_address = await rt.run(http_machine(ApiEndpoint=f"{server}/orders", Method="GET"), {})
        port = server.rsplit(":", 1)[1]
        by_name = await rt.run(
            http_machine(ApiEndpoint=f"http://localhost:{port}/orders", Method="GET"), {}
        )
    assert by_address.error == by_name.error == "States.Http.Socket"
    assert "a loopback address" in (by_address.cause or "")
    assert "localhost (127.0.0.1)" in (by_name.cause or "")
    assert SEEN == []  # never connected


async def test_a_name_is_resolved_and_the_connection_pinned_to_the_checked_address(
    server: str,
) -> None:
    port = server.rsplit(":", 1)[1]
    async with virtual_runtime(LOCAL) as rt:
        done = await rt.run(
            http_machine(ApiEndpoint=f"http://localhost:{port}/named", Method="GET"), {}
        )
    assert done.status == "SUCCEEDED", done.cause
    assert SEEN[0]["headers"]["Host"] == f"localhost:{port}"  # the name, not the pinned address


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://169.254.170.2/v2/credentials",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/",
        "http://[::ffff:169.254.169.254]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
        "http://2852039166/latest/meta-data/",  # resolves (inet_aton) to 169.254.169.254
        "http://0xa9fea9fe/latest/meta-data/",  # the same, in hexadecimal
        "http://169.254.1.1/",
        "http://[fe80::1]/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[fc00::1]/",
    ],
)
async def test_the_default_registry_refuses_metadata_link_local_and_private(
    endpoint: str,
) -> None:
    async with virtual_runtime(http.registry) as rt:
        started = time.monotonic()
        done = await rt.run(http_machine(ApiEndpoint=endpoint, Method="GET"), {}, timeout=10)
    assert done.error == "States.Http.Socket"
    assert (done.cause or "").startswith("Refused to call")
    assert time.monotonic() - started < 5  # refused before any connection attempt


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://2852039166/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/",
    ],
)
async def test_metadata_stays_refused_whatever_is_allowed(endpoint: str) -> None:
    everything = http.http_registry(allowed_networks=["0.0.0.0/0", "::/0"])
    async with virtual_runtime(everything) as rt:
        done = await rt.run(http_machine(ApiEndpoint=endpoint, Method="GET"), {}, timeout=10)
    assert done.error == "States.Http.Socket"
    assert "metadata" in (done.cause or "")


@pytest.mark.parametrize(
    ("address", "allowed", "allow_public", "refused"),
    [
        ("93.184.215.14", (), True, None),
        ("2606:4700::1111", (), True, None),
        ("93.184.215.14", (), False, "not a public address"),
        ("127.0.0.1", (), True, "a loopback address"),
        ("127.0.0.1", ("127.0.0.1/32",), True, None),
        ("127.0.0.2", ("127.0.0.1/32",), True, "a loopback address"),
        ("::ffff:127.0.0.1", ("127.0.0.1/32",), True, None),
        ("169.254.1.1", ("169.254.0.0/16",), True, None),
        ("169.254.169.254", ("169.254.0.0/16",), True, "a cloud metadata address"),
        ("10.1.2.3", ("10.0.0.0/8",), False, None),
        ("192.168.0.1", ("10.0.0.0/8",), True, "a private-network address"),
        ("224.0.0.1", (), True, "a multicast address"),
    ],
)
def test_refusal_table(
    address: str, allowed: tuple[str, ...], allow_public: bool, refused: str | None
) -> None:
    handler = http.HttpInvoke(allowed_networks=allowed, allow_public=allow_public)
    reason = handler.refusal(ipaddress.ip_address(address))
    assert reason == refused or (refused is not None and reason is not None and refused in reason)


# -- HTTPS: the pinned connection still verifies the host name ---------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for ``localhost`` only (made by the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[str, str]) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS server on 127.0.0.1; yields its port and the TLS server names clients sent."""
    SEEN.clear()
    names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)

    def note_name(_socket: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        names.append(str(name))

    context.sni_callback = note_name
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield httpd.server_address[1], names
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_https_to_a_name_is_verified_against_that_name(
    tls_server: tuple[int, list[str]], certificate: tuple[str, str]
) -> None:
    port, names = tls_server
    trusted = ssl.create_default_context(cafile=certificate[0])
    handlers = http.http_registry(allowed_networks=["127.0.0.1/32"], ssl_context=trusted)
    async with virtual_runtime(handlers) as rt:
        by_name = await rt.run(
            http_machine(ApiEndpoint=f"https://localhost:{port}/secure", Method="GET"), {}
        )
        by_address = await rt.run(
            http_machine(ApiEndpoint=f"https://127.0.0.1:{port}/secure", Method="GET"), {}
        )
    assert by_name.status == "SUCCEEDED", by_name.cause
    assert names[0] == "localhost"  # the TLS server name is the host's, not the pinned address
    assert SEEN[0]["headers"]["Host"] == f"localhost:{port}"
    # The certificate names localhost only: the same server by address fails verification.
    assert by_address.error == "States.Http.Socket"
    assert "CERTIFICATE_VERIFY_FAILED" in (by_address.cause or "")


async def test_https_with_an_untrusted_certificate_is_a_socket_error(
    tls_server: tuple[int, list[str]],
) -> None:
    port, _ = tls_server
    async with virtual_runtime(LOCAL) as rt:
        done = await rt.run(
            http_machine(ApiEndpoint=f"https://localhost:{port}/secure", Method="GET"), {}
        )
    assert done.error == "States.Http.Socket"
    assert "CERTIFICATE_VERIFY_FAILED" in (done.cause or "")


@pytest.mark.parametrize(
    "arguments",
    [
        {"Headers": ["a", "b"]},  # a list: TypeError/ValueError escaped before
        {"Headers": {"X-Name": "Zoë"}},  # not ASCII: UnicodeEncodeError in the client before
        {"QueryParameters": ["a"]},
    ],
)
def test_malformed_arguments_fail_the_task_with_states_runtime(arguments: dict[str, Any]) -> None:
    from handlers.http import _request

    with pytest.raises(TaskFailed) as failed:
        _request({"ApiEndpoint": "https://example.com/", "Method": "POST", **arguments})
    assert failed.value.error == "States.Runtime"
