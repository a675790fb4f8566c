"""Fixtures of the HTTP tests: one real server per test module, stopped at its end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.http.sfn_server import Server, client_for


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def sfn(server: Server) -> Any:
    return client_for(server.url, read_timeout=70)
