"""Fixtures of the console tests: a Runtime on the memory store with the console mounted at
``/console`` of a Starlette app, driven through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from handlers.approvals import registry as approvals
from runtime import Runtime
from tests.console.console_helpers import console_app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def approvals_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "approvals"
    monkeypatch.setenv("STATEMILL_APPROVALS", str(folder))
    return folder


@pytest.fixture
async def runtime(approvals_folder: Path) -> AsyncIterator[Runtime]:
    del approvals_folder
    async with Runtime("memory", handlers=approvals, request_poll_interval=None) as opened:
        yield opened


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=console_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as http:
        yield http
