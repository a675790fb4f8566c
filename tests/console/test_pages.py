"""The console over HTTP (httpx's ASGI transport): every page, the forms that start, stop,
redrive and answer tasks, the escaping of user text and the refusal of forged requests."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest

from runtime import Runtime, TaskContext, TaskFailed
from runtime.console import create_console
from runtime.console.app import CSRF_COOKIE, MAX_FORM_BYTES
from runtime.testing import virtual_runtime
from tests.console.console_helpers import APPROVAL, console_app, frames_of

pytestmark = pytest.mark.anyio

JSON = Any
HOSTILE = "<script>alert(1)</script>"
HOSTILE_MACHINE = {
    "StartAt": HOSTILE,
    "States": {
        HOSTILE: {"Type": "Pass", "Next": "Boom"},
        "Boom": {"Type": "Fail", "Error": "Bad<b>Error", "Cause": '<img src=x onerror="alert(3)">'},
    },
}
PASS = {"StartAt": "Hello", "States": {"Hello": {"Type": "Pass", "End": True}}}


async def _token(client: httpx.AsyncClient) -> str:
    page = await client.get("/console/")
    assert page.status_code == 200
    token = client.cookies.get(CSRF_COOKIE)
    assert token is not None
    return token


async def _post(client: httpx.AsyncClient, path: str, form: dict[str, str]) -> httpx.Response:
    return await client.post(f"/console{path}", data={"csrf": await _token(client), **form})


def _arn_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/console/execution?arn=")
    return httpx.URL(location).params["arn"]


async def _approval(runtime: Runtime, client: httpx.AsyncClient, name: str) -> str:
    machine = await runtime.create_state_machine("Approval", APPROVAL)
    started = await _post(
        client, "/start",
        {"machine": machine.arn, "name": name, "input": '{"order": "o-1", "amount": 5}'},
    )  # fmt: skip
    arn = _arn_of(started)
    for _ in range(200):  # the handler hands the token out, then the Task waits
        page = await client.get("/console/execution", params={"arn": arn})
        if frames_of(page.text):
            return arn
        await anyio.sleep(0.01)
    raise AssertionError("the approval Task never waited for its token")


async def test_state_machines_page_lists_them_with_links(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    machine = await runtime.create_state_machine("Approval", APPROVAL)
    page = await client.get("/console/")
    assert page.status_code == 200
    assert "Approval" in page.text
    assert f'href="/console/machine?arn={quote(machine.arn, safe="")}"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=")
    assert "samesite=strict" in cookie.lower()
    assert "Path=/console" in cookie
    assert "httponly" in cookie.lower()


async def test_state_machine_page_draws_its_graph(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    machine = await runtime.create_state_machine("Approval", APPROVAL)
    page = await client.get("/console/machine", params={"arn": machine.arn})
    assert page.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="statemill-graph"' in page.text
    for state in ("WaitForApproval", "Released", "Cancelled"):
        assert f'data-state="{state}"' in page.text
    assert 'id="start-form"' in page.text
    assert "RequestApproval.waitForTaskToken" in page.text


async def test_approve_releases_the_waiting_task(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    arn = await _approval(runtime, client, "order-1")
    tasks = await client.get("/console/tasks")
    assert "WaitForApproval" in tasks.text
    assert "order-1" in tasks.text
    (frame,) = frames_of(tasks.text)
    # The forms name the execution and frame, not the token (which only the Task's input,
    # shown as it is, may hold).
    token = (await runtime.state_of(arn)).frames[frame].task_token
    assert token is not None
    assert f'value="{token}"' not in tasks.text
    approved = await _post(
        client, "/approve", {"execution": arn, "frame": frame, "output": '{"by": "alice"}'}
    )
    assert _arn_of(approved) == arn
    done = await runtime.wait_for_execution(arn, timeout=10)
    assert done.status == "SUCCEEDED"
    assert done.output_value == {"order": "o-1", "releasedBy": "alice"}
    page = await client.get("/console/execution", params={"arn": arn})
    assert 'data-status="SUCCEEDED"' in page.text
    assert "alice" in page.text
    assert 'data-state="Released" data-outcome="succeeded"' in page.text
    assert 'data-state="Cancelled" data-outcome="not reached"' in page.text
    assert "No task waits" in (await client.get("/console/tasks")).text


async def test_reject_fails_the_task_and_shows_the_catch(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    arn = await _approval(runtime, client, "order-2")
    page = await client.get("/console/execution", params={"arn": arn})
    (frame,) = frames_of(page.text)
    rejected = await _post(
        client, "/reject",
        {"execution": arn, "frame": frame, "error": "Rejected", "cause": "too <b>dear</b>"},
    )  # fmt: skip
    assert _arn_of(rejected) == arn
    done = await runtime.wait_for_execution(arn, timeout=10)
    assert (done.status, done.error) == ("FAILED", "OrderRejected")
    page = await client.get("/console/execution", params={"arn": arn})
    assert "caught → Cancelled" in page.text
    assert "too &lt;b&gt;dear&lt;/b&gt;" in page.text
    assert "<b>dear" not in page.text
    assert 'id="failure"' in page.text
    assert 'id="redrive-form"' in page.text
    # Answering again: the Task no longer waits.
    again = await _post(client, "/approve", {"execution": arn, "frame": frame, "output": "{}"})
    assert again.status_code == 409
    assert "TaskDoesNotExist" in again.text


async def test_bad_output_json_is_refused(runtime: Runtime, client: httpx.AsyncClient) -> None:
    arn = await _approval(runtime, client, "order-3")
    page = await client.get("/console/execution", params={"arn": arn})
    (frame,) = frames_of(page.text)
    refused = await _post(client, "/approve", {"execution": arn, "frame": frame, "output": "{"})
    assert refused.status_code == 400
    assert "InvalidOutput" in refused.text
    assert (await runtime.describe_execution(arn)).status == "RUNNING"


async def test_stop_then_redrive(runtime: Runtime, client: httpx.AsyncClient) -> None:
    arn = await _approval(runtime, client, "order-4")
    page = await client.get("/console/execution", params={"arn": arn})
    assert 'id="stop-form"' in page.text
    assert 'id="redrive-form"' not in page.text
    stopped = await _post(client, "/stop", {"execution": arn, "error": "Ops", "cause": "x"})
    assert _arn_of(stopped) == arn
    assert (await runtime.describe_execution(arn)).status == "ABORTED"
    page = await client.get("/console/execution", params={"arn": arn})
    assert 'data-status="ABORTED"' in page.text
    assert 'id="redrive-form"' in page.text
    redriven = await _post(client, "/redrive", {"execution": arn})
    assert _arn_of(redriven) == arn
    described = await runtime.describe_execution(arn)
    assert (described.status, described.redrive_count) == ("RUNNING", 1)
    twice = await _post(client, "/redrive", {"execution": arn})
    assert twice.status_code == 400
    assert "ExecutionNotRedrivable" in twice.text


async def test_live_part_says_when_to_stop_polling(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    arn = await _approval(runtime, client, "order-5")
    live = await client.get("/console/execution", params={"arn": arn, "part": "live"})
    assert live.headers["x-statemill-running"] == "1"
    assert "<html" not in live.text
    assert 'data-status="RUNNING"' in live.text
    version = live.headers["x-statemill-version"]
    page = await client.get("/console/execution", params={"arn": arn})
    assert f'data-version="{version}"' in page.text
    (frame,) = frames_of(page.text)
    await _post(client, "/approve", {"execution": arn, "frame": frame, "output": '{"by": "b"}'})
    await runtime.wait_for_execution(arn, timeout=10)
    ended = await client.get("/console/execution", params={"arn": arn, "part": "live"})
    assert ended.headers["x-statemill-running"] == "0"
    assert ended.headers["x-statemill-version"] != version


async def test_user_text_is_escaped_everywhere(runtime: Runtime, client: httpx.AsyncClient) -> None:
    machine = await runtime.create_state_machine("Hostile", HOSTILE_MACHINE)
    done = await runtime.start_execution(machine.arn, {"note": "<script>alert(2)</script>"})
    await runtime.wait_for_execution(done.execution_arn, timeout=10)
    pages = [
        await client.get("/console/"),
        await client.get("/console/machine", params={"arn": machine.arn}),
        await client.get("/console/executions"),
        await client.get("/console/execution", params={"arn": done.execution_arn}),
        await client.get("/console/execution", params={"arn": done.execution_arn, "part": "live"}),
    ]
    for page in pages:
        assert page.status_code == 200
        # The only script elements are the console's own file.
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert set(scripts) <= {'<script src="/console/static/console.js">'}, scripts
        assert "<img" not in page.text
        assert "Bad<b>" not in page.text
    execution_page = pages[3].text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in execution_page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in execution_page
    assert "&lt;img src=x onerror=&quot;alert(3)&quot;&gt;" in execution_page
    assert "Bad&lt;b&gt;Error" in execution_page


async def test_unknown_execution_is_404_with_its_arn_escaped(client: httpx.AsyncClient) -> None:
    arn = "arn:aws:states:us-east-1:123456789012:execution:x:<script>y</script>"
    page = await client.get("/console/execution", params={"arn": arn})
    assert page.status_code == 404
    assert "ExecutionDoesNotExist" in page.text
    assert "&lt;script&gt;y&lt;/script&gt;" in page.text
    assert "<script>y" not in page.text
    missing = await client.get("/console/machine", params={"arn": "nope"})
    assert missing.status_code in (400, 404)


async def test_forged_requests_are_refused(runtime: Runtime, client: httpx.AsyncClient) -> None:
    machine = await runtime.create_state_machine("Hello", PASS)
    form = {"machine": machine.arn, "input": "{}"}
    token = await _token(client)
    no_field = await client.post("/console/start", data=form)
    assert no_field.status_code == 403
    assert "CSRF" in no_field.text
    wrong = await client.post("/console/start", data={**form, "csrf": "x" * 43})
    assert wrong.status_code == 403
    cookieless = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=console_app(runtime)), base_url="http://console.test"
    )
    async with cookieless:
        no_cookie = await cookieless.post("/console/start", data={**form, "csrf": token})
    assert no_cookie.status_code == 403
    cross_site = await client.post(
        "/console/start", data={**form, "csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403
    other_origin = await client.post(
        "/console/start", data={**form, "csrf": token}, headers={"Origin": "http://evil.test"}
    )
    assert other_origin.status_code == 403
    as_json = await client.post(
        "/console/start", content=json.dumps({**form, "csrf": token}),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert as_json.status_code == 415
    get = await client.get("/console/start")
    assert get.status_code == 405
    assert await runtime.list_executions() == []
    same_origin = await client.post(
        "/console/start", data={**form, "csrf": token},
        headers={"Origin": "http://console.test", "Sec-Fetch-Site": "same-origin"},
    )  # fmt: skip
    assert same_origin.status_code == 303
    assert len(await runtime.list_executions()) == 1


async def test_request_bodies_are_bounded(runtime: Runtime, client: httpx.AsyncClient) -> None:
    machine = await runtime.create_state_machine("Hello", PASS)
    token = await _token(client)
    huge = json.dumps({"pad": "x" * MAX_FORM_BYTES})
    refused = await client.post(
        "/console/start", data={"csrf": token, "machine": machine.arn, "input": huge}
    )
    assert refused.status_code == 413
    # Within the form bound but beyond AWS's 256 KiB input: the Runtime's own error.
    big = json.dumps({"pad": "x" * (300 * 1024)})
    too_big = await client.post(
        "/console/start", data={"csrf": token, "machine": machine.arn, "input": big}
    )
    assert too_big.status_code == 400
    assert "InvalidExecutionInput" in too_big.text
    assert await runtime.list_executions() == []


async def test_executions_filters_and_cursor_paging(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    machine = await runtime.create_state_machine("Hello", PASS)
    other = await runtime.create_state_machine("Approval", APPROVAL)
    names = [f"a-{i}" for i in range(7)] + ["b-0", "b-1"]
    for name in names:
        started = await runtime.start_execution(machine.arn, {}, name=name)
        await runtime.wait_for_execution(started.execution_arn, timeout=10)
    waiting = await runtime.start_execution(other.arn, {"order": "o-9", "amount": 1}, name="w-0")

    def listed(page: httpx.Response) -> list[str]:
        return re.findall(r'execution:[A-Za-z]+:([A-Za-z0-9-]+)">', page.text)

    seen: list[str] = []
    params: dict[str, str] = {"name": "a-", "size": "3"}
    pages = 0
    while True:
        page = await client.get("/console/executions", params=params)
        assert page.status_code == 200
        seen += listed(page)
        pages += 1
        if pages == 1:  # an execution started between pages shifts nothing
            late = await runtime.start_execution(machine.arn, {}, name="a-late")
            await runtime.wait_for_execution(late.execution_arn, timeout=10)
        found = re.search(r'href="([^"]+)" id="next-page"', page.text)
        if found is None:
            break
        params = dict(httpx.URL(found.group(1).replace("&amp;", "&")).params)
    assert pages == 3
    assert seen == [f"a-{i}" for i in reversed(range(7))]
    by_machine = await client.get("/console/executions", params={"machine": other.arn})
    assert listed(by_machine) == ["w-0"]
    running = await client.get("/console/executions", params={"status": "RUNNING"})
    assert listed(running) == ["w-0"]
    assert waiting.execution_arn in running.text
    later = await client.get("/console/executions", params={"from": "2999-01-01T00:00:00"})
    assert listed(later) == []
    earlier = await client.get("/console/executions", params={"to": "2000-01-01T00:00"})
    assert listed(earlier) == []
    bad_cursor = await client.get(
        "/console/executions", params={"cursor": "!!not-ours", "path": "x", "self": "y"}
    )
    assert bad_cursor.status_code == 200
    assert len(listed(bad_cursor)) == 11
    live = await client.get("/console/executions", params={"part": "live"})
    assert "<html" not in live.text
    assert live.headers["x-statemill-running"] == "1"


async def test_static_files_and_root_mount(runtime: Runtime) -> None:
    transport = httpx.ASGITransport(app=create_console(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as http:
        page = await http.get("/")
        assert '<script src="/static/console.js">' in page.text
        assert 'href="/executions"' in page.text
        script = await http.get("/static/console.js")
        assert script.status_code == 200
        assert "data-live" in script.text
        assert (await http.get("/static/console.css")).status_code == 200


async def test_retry_and_catch_story_and_variables() -> None:
    calls = 0

    async def flaky(value: JSON, context: TaskContext) -> JSON:
        nonlocal calls
        calls += 1
        raise TaskFailed("Boom", f"attempt {calls} <broke>")

    definition = {
        "StartAt": "Remember",
        "States": {
            "Remember": {"Type": "Pass", "Assign": {"who": "<me>"}, "Next": "Flaky"},
            "Flaky": {
                "Type": "Task",
                "Resource": "Flaky",
                "Retry": [{"ErrorEquals": ["Boom"], "IntervalSeconds": 2, "MaxAttempts": 1}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recovered"}],
                "Next": "Recovered",
            },
            "Recovered": {"Type": "Pass", "End": True},
        },
    }
    async with virtual_runtime({"Flaky": flaky}) as runtime:
        machine = await runtime.create_state_machine("Flaky", definition)
        started = await runtime.start_execution(machine.arn, {})
        done = await runtime.wait_for_execution(started.execution_arn, timeout=10)
        assert done.status == "SUCCEEDED"
        transport = httpx.ASGITransport(app=console_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://c.test") as http:
            page = await http.get("/console/execution", params={"arn": started.execution_arn})
    text = page.text
    assert text.count("retried after 2.000 s") == 1
    assert "caught → Recovered" in text
    assert "attempt 1 &lt;broke&gt;" in text
    assert "attempt 2 &lt;broke&gt;" in text
    assert "&quot;who&quot;: &quot;&lt;me&gt;&quot;" in text  # the variables column
    assert 'data-state="Flaky" data-outcome="caught"' in text
    events = re.search(r'<table id="events">.*?</table>', text, re.S)
    assert events is not None
    header = re.findall(r"<th>([^<]*)</th>", events.group(0))
    assert header[:6] == ["ID", "Type", "Step", "Resource", "Elapsed (ms)", "Timestamp"]
    assert "<td>TaskFailed</td><td>Flaky</td>" in events.group(0)


async def test_deeply_nested_input_is_refused_not_a_500(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    """349,000 "[" fit in the 1 MiB form bound; decoding them raised RecursionError (a 500)."""
    machine = await runtime.create_state_machine("Hello", PASS)
    deep = "[" * 100_000 + "]" * 100_000
    refused = await _post(client, "/start", {"machine": machine.arn, "input": deep})
    assert refused.status_code == 400
    assert "nested" in refused.text
    assert await runtime.list_executions() == []
