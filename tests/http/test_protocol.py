"""Malformed and hostile requests over the wire get AWS-shaped errors, and the server serves on."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from runtime.http.protocol import MAX_BODY_BYTES
from tests.http.sfn_server import Server

JSON = Any
TYPE = "application/x-amz-json-1.0"


def post(
    server: Server, body: bytes, target: str | None = "AWSStepFunctions.ListStateMachines",
    content_type: str = TYPE,
) -> tuple[int, dict[str, str], JSON]:  # fmt: skip
    """POST ``body``; returns the status, the headers and the decoded JSON answer."""
    headers = {"Content-Type": content_type}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(server.url + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


@pytest.mark.parametrize(
    ("body", "target", "code"),
    [
        (b"{not json", "AWSStepFunctions.ListStateMachines", "SerializationException"),
        (b"[1, 2]", "AWSStepFunctions.ListStateMachines", "SerializationException"),
        (b'"text"', "AWSStepFunctions.ListStateMachines", "SerializationException"),
        (b"\xff\xfe", "AWSStepFunctions.ListStateMachines", "SerializationException"),
        (b"[" * 100_000, "AWSStepFunctions.ListStateMachines", "SerializationException"),
        (b'{"maxResults": "ten"}', "AWSStepFunctions.ListStateMachines", "SerializationException"),
        (b'{"maxResults": 5000}', "AWSStepFunctions.ListStateMachines", "ValidationException"),
        (b'{"executionArn": 7}', "AWSStepFunctions.DescribeExecution", "SerializationException"),
        (b"{}", "AWSStepFunctions.DescribeExecution", "ValidationException"),
        (b"{}", "AWSStepFunctions.NoSuchAction", "UnknownOperationException"),
        (b"{}", "Other.ListStateMachines", "UnknownOperationException"),
        (b"{}", None, "UnknownOperationException"),
        (b'{"nextToken": "forged"}', "AWSStepFunctions.ListStateMachines", "InvalidToken"),
    ],
)
def test_malformed_requests_get_aws_errors(
    server: Server, body: bytes, target: str | None, code: str
) -> None:
    status, headers, answer = post(server, body, target)
    assert status == 400
    assert answer["__type"] == code
    assert isinstance(answer["message"], str)
    assert headers["content-type"] == TYPE
    assert "Traceback" not in answer["message"]
    status, _, fine = post(server, b"{}")
    assert status == 200
    assert "stateMachines" in fine


def test_a_body_over_the_limit_is_refused_without_reading_it(server: Server) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest("POST", "/")
        connection.putheader("X-Amz-Target", "AWSStepFunctions.ListStateMachines")
        connection.putheader("Content-Type", TYPE)
        connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
        connection.endheaders(b"{")  # the rest is never sent: the answer comes first
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    assert (response.status, answer["__type"]) == (400, "ValidationException")


def test_an_oversized_definition_or_input_is_a_validation_exception(server: Server) -> None:
    big = json.dumps({"Comment": "x" * (1024 * 1024), "StartAt": "P", "States": {}})
    body = {"name": "Big", "definition": big, "roleArn": "arn:aws:iam::1:role/r"}
    status, _, answer = post(
        server, json.dumps(body).encode(), "AWSStepFunctions.CreateStateMachine"
    )
    assert (status, answer["__type"]) == (400, "ValidationException")
    assert "1048576" in answer["message"]
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:Any"
    start = {"stateMachineArn": arn, "input": json.dumps("x" * 262_144)}
    status, _, answer = post(server, json.dumps(start).encode(), "AWSStepFunctions.StartExecution")
    assert (status, answer["__type"]) == (400, "ValidationException")
    assert "262144" in answer["message"]


def test_script_in_names_comes_back_as_data(server: Server) -> None:
    name = "<script>alert(1)</script>"
    body = {"name": name, "definition": "{}", "roleArn": "arn:aws:iam::1:role/r"}
    status, _, answer = post(
        server, json.dumps(body).encode(), "AWSStepFunctions.CreateStateMachine"
    )
    assert status == 400
    assert answer["__type"] == "InvalidName"
    assert name in answer["message"]  # JSON data, never rendered


def test_an_unsupported_content_type_is_refused(server: Server) -> None:
    status, _, answer = post(server, b"{}", content_type="text/html")
    assert (status, answer["__type"]) == (400, "SerializationException")


def test_a_put_is_not_an_api_call(server: Server) -> None:
    request = urllib.request.Request(server.url + "/", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=30)
    excinfo.value.close()
    assert excinfo.value.code == 405


def test_a_get_of_the_root_opens_the_console(server: Server) -> None:
    with urllib.request.urlopen(server.url + "/", timeout=30) as response:
        assert response.url == server.url + "/console/"
        assert "Statemill console" in response.read().decode()
