"""AWS Signature Version 4 verification of Step Functions API requests (issue 13: safe by default).

:func:`verify` checks the ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
Signature=...`` header of a request against the access keys the operator configured (a mapping
access key id -> secret access key), as AWS does:

1. the canonical request: method, canonical URI (the path, each segment URI-encoded once more, as
   for every service but S3), canonical query string (names and values URI-encoded, sorted),
   canonical headers (the signed headers, names lower-cased, values trimmed with inner runs of
   spaces collapsed, several values joined by ``,``), the signed header names, and the hex
   SHA-256 of the body;
2. the string to sign: ``AWS4-HMAC-SHA256``, the request time (``X-Amz-Date``), the
   credential scope ``<yyyymmdd>/<region>/states/aws4_request`` and the hex SHA-256 of the
   canonical request;
3. the signing key ``HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
   "aws4_request")`` and the signature, compared in constant time (:func:`hmac.compare_digest`).

Also checked: the request time is within 15 minutes of the server's clock, ``host`` is among the
signed headers, the scope names the service ``states``, the server's region and the request's
date. Statemill also requires ``x-amz-target`` to be signed when it is sent (every AWS SDK signs
it): it names the action, so an unsigned one would let a replayed request run another action.
``X-Amz-Content-Sha256``, when sent, is only one more signed header: the hash in the canonical
request is always the body's own, so a body changed after signing fails the signature.
``X-Amz-Security-Token`` is accepted (a signed header like any other) but not checked: the
configured keys are long-term keys, and the signature alone proves the secret. Not supported:
pre-signed URLs (the signature in the query string) and the HTTP ``Date`` header in place of
``X-Amz-Date`` (AWS SDKs always send ``X-Amz-Date``).

Failures are :class:`~runtime.http.protocol.ApiError` in the words of AWS's JSON services:
``MissingAuthenticationTokenException`` ("Missing Authentication Token", HTTP 403),
``IncompleteSignatureException`` (a malformed ``Authorization``), ``UnrecognizedClientException``
("The security token included in the request is invalid.": an unknown access key id) and
``InvalidSignatureException`` (a wrong signature, a request older or newer than 15 minutes:
"Signature expired: ... is now earlier than ...", a wrong scope); ``ApiError.status`` gives
their HTTP status.

Pure: no clock (``now`` is an argument), no I/O. Imports only the standard library and
``runtime.http.protocol``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

from runtime.http.protocol import ApiError

__all__ = [
    "ALGORITHM",
    "MAX_SKEW_SECONDS",
    "SERVICE",
    "SignedRequest",
    "canonical_query",
    "canonical_request",
    "canonical_uri",
    "missing_authentication",
    "signing_key",
    "verify",
]

ALGORITHM: Final = "AWS4-HMAC-SHA256"
#: The service name of Step Functions in a credential scope.
SERVICE: Final = "states"
#: How far a request's time may be from the server's clock (AWS: 15 minutes either way).
MAX_SKEW_SECONDS: Final = 15 * 60
#: The HTTP status of the errors answered with another status than 400.

_TERMINATOR: Final = "aws4_request"
_ISO_BASIC: Final = "%Y%m%dT%H%M%SZ"
_ISO_BASIC_RE: Final = re.compile(r"\d{8}T\d{6}Z")
#: Characters RFC 3986 leaves unreserved: never percent-encoded in a canonical request.
_UNRESERVED: Final = "-_.~"
_MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. Check your "
    "AWS Secret Access Key and signing method. Consult the service documentation for details."
)
#: Header values by lower-case name.
_Headers = Mapping[str, list[str]]
#: The longest piece of a client's header quoted back in an error message.
_QUOTE_LIMIT: Final = 128


@dataclass(frozen=True, kw_only=True, slots=True)
class SignedRequest:
    """The parts of an HTTP request a signature covers.

    ``path`` and ``query`` are as sent (still percent-encoded: ASGI's ``raw_path`` and
    ``query_string``); ``headers`` are (name, value) pairs in the order received, a name
    appearing once per header line.
    """

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes


def missing_authentication() -> ApiError:
    """The error of a request without an ``Authorization`` header."""
    return ApiError("MissingAuthenticationTokenException", "Missing Authentication Token")


def verify(
    request: SignedRequest, credentials: Mapping[str, str], *, region: str, now: float
) -> str:
    """The access key id that signed ``request``, after its SigV4 signature is verified.

    Args:
        request: what the client sent.
        credentials: access key id -> secret access key.
        region: the server's region (the credential scope must name it).
        now: the server's clock, epoch seconds.

    Raises:
        ApiError: ``MissingAuthenticationTokenException``, ``IncompleteSignatureException``,
            ``UnrecognizedClientException`` or ``InvalidSignatureException``.
    """
    headers = _grouped(request.headers)
    authorization = headers.get("authorization", [])
    if not authorization:
        raise missing_authentication()
    if len(authorization) > 1:
        raise _incomplete("Only one Authorization header may be sent.")
    parts = _parse_authorization(authorization[0], headers)
    credential, signed_headers, signature, amz_date = parts
    key_id, scope = _check_scope(credential, amz_date, region)
    _check_time(amz_date, now)
    secret = credentials.get(key_id)
    if secret is None:
        raise ApiError(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    names = _signed_header_names(signed_headers, headers)
    canonical = _canonical(request, names, headers)
    string_to_sign = "\n".join(
        (ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    key = signing_key(secret, amz_date[:8], region, SERVICE)
    expected = hmac.digest(key, string_to_sign.encode(), "sha256").hex()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise ApiError("InvalidSignatureException", _MISMATCH)
    return key_id


# -- the Authorization header ---------------------------------------------------------------------


def _parse_authorization(header: str, headers: _Headers) -> tuple[str, str, str, str]:
    """(Credential, SignedHeaders, Signature, request time in ISO 8601 basic format)."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(
            f"Unsupported authorization type: '{_clip(algorithm)}' (only {ALGORITHM} is supported)."
        )
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, equals, value = item.strip().partition("=")
        if not equals or name in fields:
            raise _incomplete(f"Authorization header is malformed: '{_clip(header)}'.")
        fields[name] = value.strip()
    problems = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    amz_date = _request_time(headers)
    if amz_date is None:
        problems.append("Authorization header requires existence of a 'X-Amz-Date' header.")
    if problems or amz_date is None:
        raise _incomplete(" ".join(problems) + f" Authorization={_clip(header)}")
    return fields["Credential"], fields["SignedHeaders"], fields["Signature"], amz_date


def _request_time(headers: _Headers) -> str | None:
    """The request time of ``X-Amz-Date`` (ISO 8601 basic format), None without one."""
    amz = headers.get("x-amz-date")
    if not amz:
        return None
    text = amz[0].strip()
    if _parse_basic(text) is None:
        raise _incomplete(
            f"Date must be in ISO-8601 'basic format'. Got '{_clip(text)}'. "
            "See http://en.wikipedia.org/wiki/ISO_8601"
        )
    return text


def _check_scope(credential: str, amz_date: str, region: str) -> tuple[str, str]:
    """(access key id, credential scope), once the scope names this server's date, region and
    service (Credential = ``<key>/<yyyymmdd>/<region>/states/aws4_request``)."""
    parts = credential.split("/")
    if len(parts) != 5 or not parts[0]:
        raise _incomplete(
            f"Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{_clip(credential)}'"
        )
    key_id, date, scope_region, service, terminator = parts
    if terminator != _TERMINATOR:
        raise _invalid(
            f"Credential should be scoped with a valid terminator: '{_TERMINATOR}', "
            f"not '{_clip(terminator)}'."
        )
    if service != SERVICE:
        raise _invalid(f"Credential should be scoped to correct service: '{SERVICE}'.")
    if scope_region != region:
        raise _invalid(
            f"Credential should be scoped to a valid region, not '{_clip(scope_region)}'."
        )
    if date != amz_date[:8]:
        raise _invalid(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
            f"HTTP: '{_clip(date)}' != '{amz_date[:8]}', from '{amz_date}'."
        )
    return key_id, "/".join(parts[1:])


def _check_time(amz_date: str, now: float) -> None:
    """The request time is within :data:`MAX_SKEW_SECONDS` of ``now`` (AWS's words)."""
    moment = _parse_basic(amz_date)
    if moment is None:  # _request_time checked the format already
        raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.")
    clock = _dt.datetime.fromtimestamp(now, _dt.UTC).replace(microsecond=0)
    skew = _dt.timedelta(seconds=MAX_SKEW_SECONDS)
    if moment < clock - skew:
        raise _invalid(
            f"Signature expired: {amz_date} is now earlier than {_basic(clock - skew)} "
            f"({_basic(clock)} - 15 min.)"
        )
    if moment > clock + skew:
        raise _invalid(
            f"Signature not yet current: {amz_date} is still later than {_basic(clock + skew)} "
            f"({_basic(clock)} + 15 min.)"
        )


def _signed_header_names(signed_headers: str, headers: _Headers) -> list[str]:
    """The signed header names, lower-cased and sorted; ``host`` must be one of them, and
    ``x-amz-target`` when the request has one."""
    names = sorted({name.strip().lower() for name in signed_headers.split(";") if name.strip()})
    if "host" not in names:
        raise _incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
        )
    if "x-amz-target" in headers and "x-amz-target" not in names:
        raise _incomplete("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.")
    return names


# -- the canonical request ------------------------------------------------------------------------


def canonical_request(request: SignedRequest, signed_names: Sequence[str]) -> str:
    """The canonical request of SigV4 over the headers ``signed_names`` (lower-case, sorted).

    "Create a canonical request": ``method \\n URI \\n query \\n headers \\n signed headers \\n
    hex(SHA-256(body))``, each header line ``name:value`` ending in a newline.
    """
    return _canonical(request, signed_names, _grouped(request.headers))


def _canonical(request: SignedRequest, signed_names: Sequence[str], headers: _Headers) -> str:
    header_lines = "".join(
        f"{name}:{','.join(_trim(value) for value in headers.get(name, ()))}\n"
        for name in signed_names
    )
    return "\n".join(
        (
            request.method.upper(),
            canonical_uri(request.path),
            canonical_query(request.query),
            header_lines,
            ";".join(signed_names),
            hashlib.sha256(request.body).hexdigest(),
        )
    )


def canonical_uri(path: str) -> str:
    """The canonical URI: the path normalised (``.``, ``..`` and empty segments removed, a
    trailing ``/`` kept) and URI-encoded once more (services other than S3 sign the encoded
    path encoded again)."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normalised = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalised += "/"
    return quote(normalised, safe="/" + _UNRESERVED)


def canonical_query(query: str) -> str:
    """The canonical query string: each name and value decoded, URI-encoded (only unreserved
    characters kept, a space as ``%20``), the pairs sorted by name then value, a name without
    value given ``=``."""
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        pairs.append((_encode(unquote(name)), _encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The SigV4 signing key of ``secret`` for one day, region and service."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, _TERMINATOR):
        key = hmac.digest(key, part.encode(), "sha256")
    return key


# -- helpers --------------------------------------------------------------------------------------


def _grouped(headers: Sequence[tuple[str, str]]) -> _Headers:
    """Header values by lower-case name, in the order received."""
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        grouped.setdefault(name.lower(), []).append(value)
    return grouped


def _trim(value: str) -> str:
    """A header value with its ends trimmed and inner runs of spaces collapsed to one."""
    return " ".join(value.split())


def _encode(text: str) -> str:
    return quote(text, safe=_UNRESERVED)


def _parse_basic(text: str) -> _dt.datetime | None:
    """``yyyymmddThhmmssZ`` as a UTC datetime (None when not one)."""
    if not _ISO_BASIC_RE.fullmatch(text):
        return None
    try:
        return _dt.datetime(
            int(text[0:4]), int(text[4:6]), int(text[6:8]),
            int(text[9:11]), int(text[11:13]), int(text[13:15]), tzinfo=_dt.UTC,
        )  # fmt: skip
    except ValueError:
        return None


def _basic(moment: _dt.datetime) -> str:
    return moment.strftime(_ISO_BASIC)


def _clip(text: str) -> str:
    return text if len(text) <= _QUOTE_LIMIT else text[:_QUOTE_LIMIT] + "..."


def _incomplete(message: str) -> ApiError:
    return ApiError("IncompleteSignatureException", message)


def _invalid(message: str) -> ApiError:
    return ApiError("InvalidSignatureException", message)
