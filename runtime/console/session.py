"""The console's sign-in sessions, when the server is given access keys (issue 13).

A browser does not SigV4-sign the console's pages and forms, so the operator signs in once with
an access key id and its secret access key (checked against the same keys as the API's
signatures) and receives a session cookie: ``<key id, base64url>.<expiry, epoch seconds>.<HMAC-
SHA256 over both, hex>``, keyed by a random secret of this process (a restart signs everyone
out), valid :data:`SESSION_SECONDS`. Every comparison is constant-time.

Pure: the time is an argument. Imports only the standard library.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Mapping
from typing import Final, final

__all__ = ["SESSION_COOKIE", "SESSION_SECONDS", "Sessions"]

#: The session cookie's name (HttpOnly, SameSite=Strict, Path = the console's mount path).
SESSION_COOKIE: Final = "statemill_console_session"
#: How long a sign-in lasts.
SESSION_SECONDS: Final = 12 * 60 * 60
#: A secret compared when the key id is unknown, so that both answers take the same time.
_NO_SECRET: Final = secrets.token_urlsafe(30)


@final
class Sessions:
    """Sign-in and session cookies over ``credentials`` (access key id -> secret access key)."""

    __slots__ = ("_credentials", "_secret")

    def __init__(self, credentials: Mapping[str, str]) -> None:
        self._credentials = dict(credentials)
        self._secret = secrets.token_bytes(32)

    def sign_in(self, key_id: str, secret: str) -> bool:
        """True when ``secret`` is the secret access key of ``key_id``."""
        known = self._credentials.get(key_id)
        expected = _NO_SECRET if known is None else known
        same = hmac.compare_digest(expected.encode(), secret.encode("utf-8", "replace"))
        return known is not None and same

    def cookie(self, key_id: str, now: float) -> str:
        """A session cookie's value for ``key_id``, valid :data:`SESSION_SECONDS` from ``now``."""
        name = base64.urlsafe_b64encode(key_id.encode()).decode().rstrip("=")
        expiry = str(int(now) + SESSION_SECONDS)
        return f"{name}.{expiry}.{self._mac(name, expiry)}"

    def key_of(self, cookie: str, now: float) -> str | None:
        """The access key id a session cookie stands for (None: absent, forged or expired)."""
        parts = cookie.split(".")
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 12:
            return None
        name, expiry, mac = parts
        if not hmac.compare_digest(self._mac(name, expiry).encode(), mac.encode()):
            return None
        if not now < int(expiry) <= now + SESSION_SECONDS:
            return None
        try:
            key_id = base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        # A key removed from the configuration ends its sessions.
        return key_id if key_id in self._credentials else None

    def _mac(self, name: str, expiry: str) -> str:
        return hmac.new(self._secret, f"{name}\n{expiry}".encode(), "sha256").hexdigest()
