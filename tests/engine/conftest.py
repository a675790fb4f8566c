"""Fixtures for the Runtime API tests: anyio on asyncio, virtual time, no real sleeps."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
