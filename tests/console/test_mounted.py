"""The console as ``statemill serve`` serves it: mounted at ``/console`` of the API's own app."""

from __future__ import annotations

import httpx
import pytest

from runtime import Runtime
from runtime.http import create_app

pytestmark = pytest.mark.anyio


async def test_the_api_app_serves_the_console(runtime: Runtime) -> None:
    await runtime.create_state_machine(
        "Mounted", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    )
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        home = await http.get("/")
        assert home.status_code == 307
        assert home.headers["location"] == "http://127.0.0.1/console/"
        page = await http.get("/console/")
        assert page.status_code == 200
        assert ">Mounted<" in page.text
        assert 'href="/console/static/console.css"' in page.text
        style = await http.get("/console/static/console.css")
        assert style.status_code == 200
        # The API itself still answers on POST /.
        listed = await http.post(
            "/",
            headers={
                "X-Amz-Target": "AWSStepFunctions.ListStateMachines",
                "Content-Type": "application/x-amz-json-1.0",
            },
            content=b"{}",
        )
        assert listed.status_code == 200
        assert [m["name"] for m in listed.json()["stateMachines"]] == ["Mounted"]


async def test_a_rebound_host_name_is_refused(runtime: Runtime) -> None:
    """DNS rebinding: a page at evil.example re-pointed at 127.0.0.1 is same-origin to the
    browser; the app refuses its Host, so it can neither call the API nor read a CSRF token."""
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://evil.example") as http:
        page = await http.get("/console/")
        call = await http.post(
            "/",
            headers={
                "X-Amz-Target": "AWSStepFunctions.ListStateMachines",
                "Content-Type": "application/x-amz-json-1.0",
            },
            content=b"{}",
        )
    assert page.status_code == 400
    assert "csrf" not in page.text
    assert call.status_code == 400
    exposed = httpx.ASGITransport(app=create_app(runtime, allowed_hosts=None))
    async with httpx.AsyncClient(transport=exposed, base_url="http://evil.example") as http:
        assert (await http.get("/console/")).status_code == 200
