"""The console's sign-in when the server has access keys: a session cookie, redirects, 401s.

The app is the HTTP app as ``statemill serve --credentials-file`` builds it (API and console),
driven through httpx's ASGI transport; its clock is a variable the tests move.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from runtime import Runtime
from runtime.console import create_console
from runtime.console.session import SESSION_COOKIE, SESSION_SECONDS, Sessions
from runtime.http import create_app
from tests.console.console_helpers import APPROVAL

pytestmark = pytest.mark.anyio

KEYS = {"AKIDCONSOLE": "console-secret"}
BASE = "http://console.test"


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def http(runtime: Runtime, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(runtime, allowed_hosts=None, credentials=KEYS, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


async def sign_in(
    http: httpx.AsyncClient, secret: str = "console-secret", next_url: str = "/console/tasks"
) -> httpx.Response:
    page = await http.get("/console/signin", params={"next": next_url})
    assert page.status_code == 200
    form = {
        "csrf": csrf_of(page.text),
        "next": next_url,
        "access_key_id": "AKIDCONSOLE",
        "secret_access_key": secret,
    }
    return await http.post("/console/signin", data=form)


async def test_without_a_session_pages_redirect_to_sign_in_and_live_parts_answer_401(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/console/executions", params={"status": "RUNNING"})
    assert page.status_code == 303
    assert page.headers["location"] == (
        "/console/signin?next=%2Fconsole%2Fexecutions%3Fstatus%3DRUNNING"
    )
    live = await http.get("/console/tasks", params={"part": "live"})
    assert live.status_code == 401
    assert live.headers["content-type"].startswith("text/plain")
    assert (await http.get("/console/static/console.css")).status_code == 200


async def test_a_form_post_without_a_session_is_redirected_and_changes_nothing(
    http: httpx.AsyncClient, runtime: Runtime
) -> None:
    machine = await runtime.create_state_machine("Approval", APPROVAL)
    page = await http.get("/console/signin")
    form = {"csrf": csrf_of(page.text), "machine": machine.arn, "input": "{}"}
    answer = await http.post("/console/start", data=form)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/signin"
    assert await runtime.list_executions(machine.arn) == []


async def test_signing_in_sets_a_strict_http_only_cookie_and_opens_the_pages(
    http: httpx.AsyncClient,
) -> None:
    answer = await sign_in(http)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/tasks"
    cookie = next(
        value
        for value in answer.headers.get_list("set-cookie")
        if value.startswith(SESSION_COOKIE + "=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/console"} <= attributes
    assert f"max-age={SESSION_SECONDS}" in attributes
    page = await http.get("/console/")
    assert page.status_code == 200
    assert "AKIDCONSOLE" in page.text
    assert 'id="signout-form"' in page.text
    assert (await http.get("/console/tasks", params={"part": "live"})).status_code == 200


async def test_a_wrong_secret_or_an_unknown_key_is_refused(http: httpx.AsyncClient) -> None:
    answer = await sign_in(http, secret="not-it")
    assert answer.status_code == 403
    assert "wrong" in answer.text
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")
    page = await http.get("/console/signin")
    unknown = await http.post(
        "/console/signin",
        data={
            "csrf": csrf_of(page.text),
            "access_key_id": "AKIDOTHER",
            "secret_access_key": "console-secret",
        },
    )
    assert unknown.status_code == 403
    assert (await http.get("/console/")).status_code == 303


async def test_the_sign_in_form_needs_its_csrf_token(http: httpx.AsyncClient) -> None:
    await http.get("/console/signin")
    answer = await http.post(
        "/console/signin",
        data={
            "csrf": "x" * 43,
            "access_key_id": "AKIDCONSOLE",
            "secret_access_key": "console-secret",
        },
    )
    assert answer.status_code == 403
    assert "CSRF" in answer.text
    assert (await http.get("/console/")).status_code == 303


@pytest.mark.parametrize(
    "wanted", ["//evil.test/", "https://evil.test/console/", "/elsewhere", "/console\\..\\x"]
)
async def test_sign_in_never_leads_off_the_console(http: httpx.AsyncClient, wanted: str) -> None:
    answer = await sign_in(http, next_url=wanted)
    assert answer.headers["location"] == "/console/"


async def test_a_session_ends_after_12_hours(http: httpx.AsyncClient, clock: Clock) -> None:
    await sign_in(http)
    clock.now += SESSION_SECONDS - 1
    assert (await http.get("/console/")).status_code == 200
    clock.now += 2
    assert (await http.get("/console/")).status_code == 303


async def test_a_forged_cookie_is_not_a_session(http: httpx.AsyncClient) -> None:
    await sign_in(http)
    value = http.cookies[SESSION_COOKIE]
    name, expiry, mac = value.split(".")
    http.cookies.set(SESSION_COOKIE, f"{name}.{int(expiry) + 60}.{mac}", path="/console")
    assert (await http.get("/console/")).status_code == 303


async def test_signing_out_ends_the_session(http: httpx.AsyncClient) -> None:
    await sign_in(http)
    page = await http.get("/console/")
    answer = await http.post("/console/signout", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 303
    assert (await http.get("/console/")).status_code == 303


async def test_without_credentials_there_is_no_sign_in(runtime: Runtime) -> None:
    transport = httpx.ASGITransport(app=create_app(runtime, allowed_hosts=None))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        assert (await client.get("/console/")).status_code == 200
        assert (await client.get("/console/signin")).status_code == 404


def test_a_session_cookie_is_bound_to_its_key_its_expiry_and_this_process() -> None:
    sessions = Sessions(KEYS)
    cookie = sessions.cookie("AKIDCONSOLE", 1000.0)
    assert sessions.key_of(cookie, 1000.0) == "AKIDCONSOLE"
    assert sessions.key_of(cookie, 1000.0 + SESSION_SECONDS) is None
    assert Sessions(KEYS).key_of(cookie, 1000.0) is None  # another process's secret
    assert Sessions({"OTHER": "x"}).key_of(cookie, 1000.0) is None
    for broken in ("", "a.b", cookie + "0", cookie.replace(".", "..", 1), "é.1.é"):
        assert sessions.key_of(broken, 1000.0) is None
    assert sessions.sign_in("AKIDCONSOLE", "console-secret")
    assert not sessions.sign_in("AKIDCONSOLE", "console-secreT")
    assert not sessions.sign_in("NOBODY", "console-secret")


async def test_create_console_alone_takes_the_keys_too(runtime: Runtime) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    app = Starlette(routes=[Mount("/ops", app=create_console(runtime, credentials=KEYS))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        answer = await client.get("/ops/")
        assert answer.headers["location"] == "/ops/signin?next=%2Fops%2F"
