"""The wire format of the Step Functions API: AWS's JSON 1.0 protocol, its errors and its tokens.

A request is ``POST /`` with ``X-Amz-Target: AWSStepFunctions.<Action>``, ``Content-Type:
application/x-amz-json-1.0`` and a JSON object body; a response is a JSON object (timestamps as
epoch seconds, which botocore parses into datetimes). An error is ``{"__type": "<Name>",
"message": "..."}`` with HTTP status 400 for the client's errors (every error the model lists:
botocore picks the exception class by ``__type``) and 500 only for ``InternalFailure`` (a bug in
Statemill: the message says so, never a stack trace).

Errors that are not the model's own but AWS's protocol-level ones:

* ``SerializationException``: the body is not JSON, not an object, or a member has the wrong
  JSON type.
* ``UnknownOperationException``: ``X-Amz-Target`` names no action of the model.
* ``InvalidAction`` (AWS's common error, 400, "the action or operation requested is
  invalid"): an action of the model that Statemill does not support (versions, aliases, Map
  Runs, tags), named in the message.

Pagination tokens are opaque to clients: base64 of the action and the offset of the next page
(a token given to another action, or altered, is ``InvalidToken``).

Imports only the standard library and msgspec.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any, Final, final

import msgspec

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_PAGE",
    "MAX_BODY_BYTES",
    "TARGET_PREFIX",
    "ApiError",
    "check_arn",
    "decode_body",
    "encode",
    "error_body",
    "list_items",
    "next_token",
    "page_of",
    "page_offset",
    "tags_of",
]

JSON = Any

TARGET_PREFIX: Final = "AWSStepFunctions."
CONTENT_TYPE: Final = "application/x-amz-json-1.0"

#: The largest request body read: a 1 MiB definition (CreateStateMachine's limit) escaped in
#: JSON, with room for the other members. Larger bodies are refused before they are read whole.
MAX_BODY_BYTES: Final = 8 * 1024 * 1024

#: Errors answered with 500 (the service's fault); every other error is the client's (400).
_SERVER_ERRORS: Final = frozenset({"InternalFailure", "ServiceUnavailable"})
#: Client errors AWS answers with another status than 400.
_STATUS: Final = {"MissingAuthenticationTokenException": 403, "ConflictException": 409}

_encoder: Final = msgspec.json.Encoder()
_decoder: Final = msgspec.json.Decoder()


@final
class ApiError(Exception):
    """An error answered as ``{"__type": code, "message": message}``."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")

    @property
    def status(self) -> int:
        """The HTTP status AWS answers this error with."""
        if self.code in _SERVER_ERRORS:
            return 500
        return _STATUS.get(self.code, 400)


def error_body(error: ApiError) -> bytes:
    """The JSON body of an error response."""
    return _encoder.encode({"__type": error.code, "message": error.message})


def encode(value: JSON) -> bytes:
    """A response body."""
    return _encoder.encode(value)


def decode_body(body: bytes) -> JSON:
    """The decoded request body (an empty body is ``{}``, as botocore sends for no members).

    Raises:
        ApiError: ``SerializationException`` when the body is not JSON.
    """
    if not body.strip():
        return {}
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ApiError(
            "SerializationException", f"The request body is not valid JSON: {exc}"
        ) from None
    except RecursionError:
        raise ApiError("SerializationException", "The request body is nested too deeply") from None


def check_arn(value: str, *resource_types: str) -> list[str]:
    """The ``:``-separated parts of a Step Functions ARN of one of ``resource_types``.

    Raises:
        ApiError: ``InvalidArn`` in AWS's words ("Invalid ARN prefix: ...", "Resource type not
            valid in this context: ...").
    """
    parts = value.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "states":
        raise ApiError("InvalidArn", f"Invalid Arn: 'Invalid ARN prefix: {value}'")
    if parts[5] not in resource_types:
        raise ApiError(
            "InvalidArn", f"Invalid Arn: 'Resource type not valid in this context: {parts[5]}'"
        )
    return parts


#: The page size when ``maxResults`` is absent or 0 (AWS's default).
DEFAULT_PAGE: Final = 100


def page_of(
    action: str, items: Sequence[Any], body: dict[str, Any]
) -> tuple[list[Any], str | None]:
    """One page of ``items`` by the request's ``nextToken``/``maxResults``, and the token of
    the next page (``None`` on the last)."""
    start = page_offset(action, body.get("nextToken"))
    size = body.get("maxResults") or DEFAULT_PAGE
    page = list(items[start : start + size])
    more = start + size < len(items)
    return page, next_token(action, start + size) if more else None


def list_items(
    value: Any, member: str, fields: Mapping[str, type], required: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The objects of a list member (``tags``, ``routingConfiguration``), each field checked
    for its JSON type as the service checks its nested shapes.

    Raises:
        ApiError: ``SerializationException`` for an item or a field of the wrong JSON type,
            ``ValidationException`` for a required field left out.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError("SerializationException", f"'{member}' must be a list")
    for item in value:
        if not isinstance(item, dict):
            raise ApiError("SerializationException", f"each item of '{member}' must be an object")
        for name, kind in fields.items():
            field = item.get(name)
            if field is None:
                if name in required:
                    raise ApiError(
                        "ValidationException",
                        f"1 validation error detected: Value null at '{member}.member.{name}' "
                        "failed to satisfy constraint: Member must not be null",
                    )
            elif not isinstance(field, kind) or isinstance(field, bool) is not (kind is bool):
                raise ApiError(
                    "SerializationException", f"'{member}.member.{name}' has the wrong type"
                )
    return value


def tags_of(items: Any) -> dict[str, str]:
    """A request's tag list (``[{"key", "value"}]``) as a mapping (a missing value is "")."""
    tags = list_items(items, "tags", {"key": str, "value": str}, ("key",))
    return {tag["key"]: tag.get("value") or "" for tag in tags}


def next_token(action: str, offset: int) -> str:
    """The ``nextToken`` of the page that starts at ``offset``."""
    raw = _encoder.encode([action, offset])
    return base64.urlsafe_b64encode(raw).decode()


def page_offset(action: str, token: str | None) -> int:
    """The offset a ``nextToken`` stands for (0 without one).

    Raises:
        ApiError: ``InvalidToken`` when the token was not issued by ``action``.
    """
    if token is None:
        return 0
    try:
        decoded = _decoder.decode(base64.b64decode(token, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        decoded = None
    match decoded:
        case [str(name), int(offset)] if name == action and offset >= 0:
            return offset
    raise ApiError("InvalidToken", f"Invalid Token: '{token}'")
