"""Fixtures for the schedule tests: anyio on asyncio (the firing tests run a Runtime)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
