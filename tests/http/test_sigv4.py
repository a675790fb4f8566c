"""SigV4 verification (:mod:`runtime.http.sigv4`) against botocore's own signer, the real client.

Every signed request here comes from ``botocore.auth.SigV4Auth``; the tests then verify it,
change one part of it, or move the server's clock.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from runtime.http.protocol import ApiError
from runtime.http.sigv4 import SignedRequest, canonical_query, verify

KEYS = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "SECOND": "s3cr%t"}
REGION = "us-east-1"
URL = "http://127.0.0.1:8083/"
TARGET = "AWSStepFunctions.ListStateMachines"
MISMATCH = "The request signature we calculated does not match the signature you provided."


def sign(
    body: bytes = b"{}",
    *,
    url: str = URL,
    key: str = "AKIDEXAMPLE",
    secret: str | None = None,
    region: str = REGION,
    service: str = "states",
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> SignedRequest:
    """A request signed by botocore, as the server receives it."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={
            "X-Amz-Target": TARGET,
            "Content-Type": "application/x-amz-json-1.0",
            **(headers or {}),
        },
    )
    credentials = Credentials(key, KEYS.get(key, "x") if secret is None else secret, token)
    SigV4Auth(credentials, service, region).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    received = [("host", parts.netloc), *prepared.headers.items()]
    return SignedRequest(
        method="POST", path=parts.path, query=parts.query, headers=received, body=prepared.body
    )


def replaced(request: SignedRequest, name: str, value: str | None) -> SignedRequest:
    """``request`` with header ``name`` set to ``value`` (removed when None)."""
    kept = [(k, v) for k, v in request.headers if k.lower() != name.lower()]
    if value is not None:
        kept.append((name, value))
    return SignedRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=kept,
        body=request.body,
    )


def header(request: SignedRequest, name: str) -> str:
    return next(v for k, v in request.headers if k.lower() == name.lower())


def refused(request: SignedRequest, *, now: float | None = None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        verify(request, KEYS, region=REGION, now=time.time() if now is None else now)
    return caught.value


def test_a_request_botocore_signed_is_verified_and_names_its_key() -> None:
    assert verify(sign(b'{"maxResults": 5}'), KEYS, region=REGION, now=time.time()) == "AKIDEXAMPLE"
    assert verify(sign(key="SECOND"), KEYS, region=REGION, now=time.time()) == "SECOND"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8083/?b=2&a=1&a=0",
        "http://127.0.0.1:8083/?name=a%20b&empty=&flag",
        "http://127.0.0.1:8083/?q=%E2%82%AC%2F%2B%2A~",
        "http://localhost:9000/some/path%20with/%C3%A9/",
        "http://example.com/a/./b/../c",
        "http://[::1]:8083/",
    ],
)
def test_the_canonical_uri_and_query_match_botocore(url: str) -> None:
    assert verify(sign(url=url), KEYS, region=REGION, now=time.time()) == "AKIDEXAMPLE"


def test_canonical_query_sorts_and_encodes_as_the_spec_says() -> None:
    assert canonical_query("b=2&a=x y&a=1&c") == "a=1&a=x%20y&b=2&c="
    assert canonical_query("k=%7e%2A") == "k=~%2A"


def test_a_session_token_signed_with_the_request_is_accepted() -> None:
    request = sign(token="FQoGZXIvYXdzEXAMPLE")
    assert "x-amz-security-token" in header(request, "Authorization")
    assert verify(request, KEYS, region=REGION, now=time.time()) == "AKIDEXAMPLE"


def test_a_wrong_secret_is_an_invalid_signature() -> None:
    error = refused(sign(secret="not the secret"))
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith(MISMATCH)
    assert error.status == 400


def test_an_unknown_access_key_is_an_unrecognized_client() -> None:
    error = refused(sign(key="AKIDUNKNOWN"))
    assert (error.code, error.message) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_a_body_changed_after_signing_fails_the_signature() -> None:
    request = sign(b'{"name": "mine"}')
    changed = SignedRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=request.headers,
        body=b'{"name": "theirs"}',
    )
    assert refused(changed).code == "InvalidSignatureException"


def test_a_declared_content_hash_does_not_replace_the_bodys_own() -> None:
    # Signed with X-Amz-Content-Sha256: UNSIGNED-PAYLOAD, which botocore puts in the canonical
    # request in place of the body's hash: the server hashes the body itself.
    request = sign(b'{"a": 1}', headers={"X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"})
    assert refused(request).code == "InvalidSignatureException"


@pytest.mark.parametrize(
    ("name", "value"),
    [("X-Amz-Target", "AWSStepFunctions.DeleteStateMachine"), ("host", "evil.test")],
)
def test_a_signed_header_changed_after_signing_fails_the_signature(name: str, value: str) -> None:
    assert refused(replaced(sign(), name, value)).code == "InvalidSignatureException"


def test_a_request_time_older_than_15_minutes_has_expired() -> None:
    request = sign()
    signed_at = header(request, "X-Amz-Date")
    now = time.time()
    assert verify(request, KEYS, region=REGION, now=now + 14 * 60) == "AKIDEXAMPLE"
    error = refused(request, now=now + 16 * 60)
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith(f"Signature expired: {signed_at} is now earlier than ")
    assert error.message.endswith(" - 15 min.)")


def test_a_request_time_more_than_15_minutes_ahead_is_not_yet_current() -> None:
    error = refused(sign(), now=time.time() - 16 * 60)
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith("Signature not yet current: ")
    assert error.message.endswith(" + 15 min.)")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"region": "eu-west-1"},
            "Credential should be scoped to a valid region, not 'eu-west-1'.",
        ),
        ({"service": "sqs"}, "Credential should be scoped to correct service: 'states'."),
    ],
)
def test_the_credential_scope_must_name_states_and_the_servers_region(
    options: dict[str, Any], message: str
) -> None:
    error = refused(sign(**options))
    assert (error.code, error.message) == ("InvalidSignatureException", message)


def test_the_scope_date_must_be_the_request_date() -> None:
    request = sign()
    authorization = header(request, "Authorization")
    day = authorization.split("Credential=")[1].split("/")[1]
    other = replaced(request, "Authorization", authorization.replace(f"/{day}/", "/20200101/"))
    error = refused(other)
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith("Date in Credential scope does not match YYYYMMDD")


def test_no_authorization_is_a_missing_authentication_token_403() -> None:
    error = refused(replaced(sign(), "Authorization", None))
    assert (error.code, error.message) == (
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )
    assert error.status == 403


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda a: a.split(", Signature=")[0], "requires 'Signature' parameter"),
        (lambda a: a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"), "Unsupported authorization"),
        (lambda a: a.replace("SignedHeaders=content-type;host;", "SignedHeaders=content-type;"),
         "'Host' or ':authority' must be a 'SignedHeader'"),
        (lambda a: a.replace(";x-amz-target", ""), "'X-Amz-Target' must be a 'SignedHeader'"),
        (lambda a: a.replace("Credential=AKIDEXAMPLE/", "Credential="),
         "Credential must have exactly 5 slash-delimited elements"),
        (lambda a: a + ", Signature=0", "Authorization header is malformed"),
    ],
)  # fmt: skip
def test_a_malformed_authorization_is_an_incomplete_signature(edit: Any, message: str) -> None:
    request = sign()
    error = refused(replaced(request, "Authorization", edit(header(request, "Authorization"))))
    assert error.code == "IncompleteSignatureException"
    assert message in error.message


def test_the_request_time_is_required_and_in_iso_basic_format() -> None:
    request = sign()
    missing = refused(replaced(request, "X-Amz-Date", None))
    assert missing.code == "IncompleteSignatureException"
    assert "requires existence of a 'X-Amz-Date' header" in missing.message
    wrong = refused(replaced(request, "X-Amz-Date", "2024-01-01T00:00:00Z"))
    assert wrong.message.startswith("Date must be in ISO-8601 'basic format'.")


def test_two_authorization_headers_are_refused() -> None:
    request = sign()
    doubled = SignedRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=[*request.headers, ("Authorization", header(request, "Authorization"))],
        body=request.body,
    )
    assert refused(doubled).code == "IncompleteSignatureException"


def test_a_non_ascii_signature_is_refused_not_crashed_on() -> None:
    request = sign()
    authorization = header(request, "Authorization")
    mangled = authorization[:-4] + "é\udcff€x"
    assert refused(replaced(request, "Authorization", mangled)).code == "InvalidSignatureException"
