"""Fixtures for the ItemReader/ResultWriter tests: anyio on asyncio, a local object store."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.items import LocalObjectStore


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    (tmp_path / "bucket").mkdir()
    return LocalObjectStore(tmp_path)
