"""The HTTP Task (``arn:aws:states:::http:invoke``) against a local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from handlers import http
from runtime.testing import virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
SEEN: list[dict[str, JSON]] = []


class _Server(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        SEEN.append(
            {"method": self.command, "path": self.path, "body": body, "headers": dict(self.headers)}
        )
        if self.path.startswith("/missing"):
            self.send_response(404, "Not Found")
            self.send_header("Content-Type", "application/json")
            payload = b'{"message":"no such order"}'
        else:
            self.send_response(200, "OK")
            self.send_header("Content-Type", "application/json")
            payload = json.dumps({"echo": body, "path": self.path}).encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    SEEN.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


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
    async with virtual_runtime(http.registry) as rt:
        done = await rt.run(definition, {"order": 7}, timeout=10)
    assert done.status == "SUCCEEDED", done.cause
    result = done.output_value
    assert (result["StatusCode"], result["StatusText"]) == (200, "OK")
    assert result["Headers"]["Content-Type"] == ["application/json"]
    assert result["ResponseBody"] == {"echo": '{"order":7}', "path": "/orders?page=2&tags=a&tags=b"}
    assert SEEN[0]["headers"]["X-Trace"] == "t-1"
    assert SEEN[0]["headers"]["Content-Type"] == "application/json"


async def test_url_encoded_body(server: str) -> None:
    definition = http_machine(
        ApiEndpoint=f"{server}/form",
        Method="POST",
        RequestBody={"name": "ada", "n": 1},
        Transform={"RequestBodyEncoding": "URL_ENCODED"},
    )
    async with virtual_runtime(http.registry) as rt:
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
    async with virtual_runtime(http.registry) as rt:
        done = await rt.run(definition, {}, timeout=10)
    assert done.output_value["Error"] == "States.Http.StatusCode.404"
    cause = json.loads(done.output_value["Cause"])
    assert cause["StatusCode"] == 404
    assert cause["ResponseBody"] == {"message": "no such order"}


async def test_an_unreachable_endpoint_is_a_socket_error() -> None:
    definition = http_machine(ApiEndpoint="http://127.0.0.1:9/nothing", Method="GET")
    async with virtual_runtime(http.registry) as rt:
        done = await rt.run(definition, {}, timeout=10)
    assert done.error == "States.Http.Socket"


async def test_invalid_arguments_fail_with_states_runtime() -> None:
    async with virtual_runtime(http.registry) as rt:
        bad_method = await rt.run(http_machine(ApiEndpoint="http://x", Method="BREW"), {})
        bad_endpoint = await rt.run(http_machine(ApiEndpoint="ftp://x", Method="GET"), {})
    assert bad_method.error == "States.Runtime"
    assert "Invalid Method" in (bad_method.cause or "")
    assert bad_endpoint.error == "States.Runtime"
