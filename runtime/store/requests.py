"""The port of operators' requests: a store that records them for the runtime that runs on it.

The command line (``statemill start|stop|redrive|send-task-*``) records a request with no
runtime; the runtime on the store applies it (``runtime.api_requests``). ``SqliteStore`` and
``PostgresStore`` implement :class:`RequestLog`; the memory store does not (nothing outside the
process could record into it). A module of its own so that the command lines that only record
or read requests import no runtime.

Imports nothing of Statemill.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

__all__ = ["RequestLog"]


@runtime_checkable
class RequestLog(Protocol):
    """A store that records requests (``statemill start/stop/send-task-*``) for whichever
    runtime runs on it: ``SqliteStore`` and ``PostgresStore``."""

    async def add_request(self, kind: str, payload: str, created: float) -> int: ...

    async def pending_requests(self, limit: int = 100) -> list[tuple[int, str, str, float]]: ...

    async def finish_request(self, request_id: int, status: str, result: str) -> None: ...

    async def finish_requests(self, results: Sequence[tuple[int, str, str]]) -> None:
        """Mark many requests, (id, status, result) each, in one transaction."""
        ...

    async def get_request(self, request_id: int) -> tuple[str, str, str | None] | None: ...
