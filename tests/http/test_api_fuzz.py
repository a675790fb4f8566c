"""A fuzz of the API over the wire (issue 13): generated requests for every action of the model,
each member of its shape given a value of its type, of another type, hostile text, a nested
value of the wrong shape, or left out, plus unknown members. Every answer is AWS-shaped (a
status below 500, ``__type`` and ``message`` on an error, never a traceback), and the server
goes on serving. The examples are derandomized: the same requests on every run."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.http.shapes import REQUESTS, Member
from tests.http.sfn_server import Server

JSON = Any
ARN = "arn:aws:states:us-east-1:123456789012:"
HOSTILE = st.sampled_from(
    [
        "",
        "<script>alert(1)</script>",
        "\ud800",
        "x" * 300,
        "../../etc/passwd",
        f"{ARN}stateMachine:M",
        f"{ARN}stateMachine:M:1",
        f"{ARN}stateMachine:M:alias",
        f"{ARN}execution:M:e",
        f"{ARN}activity:A",
        "arn:aws:states:::",
        '{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}',
        "{" * 200,
        "null",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    HOSTILE,
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
NESTED = st.one_of(
    st.lists(ANY_JSON, max_size=3),
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "key": SCALARS,
                "value": SCALARS,
                "stateMachineVersionArn": st.one_of(SCALARS, HOSTILE),
                "weight": SCALARS,
            },
        ),
        max_size=3,
    ),
    st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=3),
)


def member_value(member: Member) -> st.SearchStrategy[JSON]:
    typed: st.SearchStrategy[JSON]
    if member.type == "string":
        typed = st.one_of(HOSTILE, st.text(max_size=40), st.sampled_from(member.enum or ("x",)))
    elif member.type in ("integer", "long"):
        typed = st.integers(min_value=-5, max_value=2_000)
    elif member.type == "float":
        typed = st.floats(min_value=-5, max_value=200, allow_nan=False)
    elif member.type == "boolean":
        typed = st.booleans()
    else:  # list / structure
        typed = NESTED
    return st.one_of(typed, ANY_JSON)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes]:
    action = draw(st.sampled_from(sorted(REQUESTS)))
    body: dict[str, JSON] = {}
    for name, member in REQUESTS[action].items():
        if draw(st.booleans()) or (member.required and draw(st.integers(0, 4)) > 0):
            body[name] = draw(member_value(member))
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(max_size=10))] = draw(ANY_JSON)
    # Lone surrogates cannot be UTF-8: send them escaped, as JSON allows.
    return action, json.dumps(body, ensure_ascii=True).encode()


def post(server: Server, action: str, body: bytes) -> tuple[int, JSON]:
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": f"AWSStepFunctions.{action}",
    }
    request = urllib.request.Request(server.url + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=90) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@settings(
    max_examples=800,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(requests())
def test_generated_requests_get_aws_shaped_answers(
    server: Server, request: tuple[str, bytes]
) -> None:
    action, body = request
    status, answer = post(server, action, body)
    assert status < 500, (action, body, answer)
    assert isinstance(answer, dict)
    if status != 200:
        assert isinstance(answer.get("__type"), str), answer
        assert isinstance(answer.get("message"), str), answer
        assert "Traceback" not in answer["message"]
        assert answer["__type"] != "InternalFailure", (action, body, answer)


def test_the_server_serves_on_after_the_fuzz(server: Server) -> None:
    status, answer = post(server, "ListStateMachines", b"{}")
    assert status == 200
    assert "stateMachines" in answer
