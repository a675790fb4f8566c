"""The console's ASGI application: :func:`create_console` over a running ``Runtime``.

Pages are GET and change nothing; every state-changing request (start, stop, redrive, approve,
reject) is a POST whose form carries the CSRF token of a double-submit cookie (a random token,
``SameSite=Strict``, compared in constant time), from a page of the same origin (``Origin`` and
``Sec-Fetch-Site`` checked when the browser sends them). Form bodies are bounded
(:data:`MAX_FORM_BYTES`) and answered 413 beyond it; the Runtime then applies AWS's own limits
(256 KiB input and output). Responses forbid framing and inline script (a Content-Security-
Policy of ``'self'`` only), a second wall behind the escaping of :mod:`runtime.console.markup`.

Given access keys (``credentials``), the console asks for a sign-in (:mod:`runtime.console.
session`): ``/signin`` takes an access key id and its secret access key (a CSRF-checked form
like the others) and sets a session cookie (HttpOnly, ``SameSite=Strict``, the mount path, 12
hours); without a valid one every page and form post is redirected (303) to ``/signin``, and
the ``?part=live`` regions the script polls answer 401. ``/static`` needs no sign-in. Without
credentials there is no sign-in, and every page is open as before.

URLs are relative to the ``root_path`` the console is mounted at (``Mount("/console", app)``).
A ``?part=live`` variant of the execution, executions and tasks pages answers with the region
that ``static/console.js`` refreshes, its ``X-Statemill-Version`` (replace when it changes) and
``X-Statemill-Running`` (stop polling at ``0``).

Imports Starlette, the public ``runtime`` API and this package.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from runtime import (
    ExecutionDescription,
    HistoryEvent,
    Runtime,
    StateMachineRecord,
    StatemillError,
    load_definition,
)
from runtime.console import data, views
from runtime.console.markup import Markup
from runtime.console.session import SESSION_COOKIE, SESSION_SECONDS, Sessions
from runtime.definition.limits import check_json_text
from runtime.definition.model import StateMachine
from runtime.errors import ExecutionDoesNotExist, InvalidArn, StateMachineDoesNotExist

__all__ = ["CSRF_COOKIE", "MAX_FORM_BYTES", "SESSION_COOKIE", "create_console"]

JSON = Any

#: The double-submit cookie's name; the form field is ``csrf``.
CSRF_COOKIE: Final = "statemill_console_csrf"
#: Largest form body accepted: a 256 KiB output, percent-encoded, fits.
MAX_FORM_BYTES: Final = 1024 * 1024
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_PAGE_SIZE: Final = 50
_MAX_PAGE_SIZE: Final = 200
_MAX_FORM_FIELDS: Final = 16
#: The query parameters of the executions page (others are ignored).
_LIST_PARAMETERS: Final = frozenset({"machine", "status", "name", "from", "to", "cursor", "size"})
_STATIC: Final = Path(__file__).with_name("static")
_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

Handler = Callable[[Request], Awaitable[Response]]
#: The scope key under which a request's signed-in access key id travels to its handler.
_SIGNED_IN: Final = "statemill.console.access_key_id"


class _Refused(Exception):
    """A request the console answers with an error page (status, title, message)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


class _Console:
    """The routes' state: the runtime, a cache of loaded definitions and the sign-in sessions
    (None: no credentials, no sign-in)."""

    def __init__(
        self, runtime: Runtime, sessions: Sessions | None, clock: Callable[[], float]
    ) -> None:
        self.runtime = runtime
        self.sessions = sessions
        self.clock = clock
        self._machines: dict[tuple[str, str], StateMachine | None] = {}

    # -- helpers ------------------------------------------------------------------------------

    def context(self, request: Request) -> tuple[views.Context, str | None]:
        """The page context, and a new CSRF token to set when the request carried none."""
        token = request.cookies.get(CSRF_COOKIE, "")
        fresh = None
        if not _TOKEN.fullmatch(token):
            token = fresh = secrets.token_urlsafe(32)
        base = str(request.scope.get("root_path", "")).rstrip("/")
        signed_in = request.scope.get(_SIGNED_IN)
        return views.Context(base=base, csrf=token, signed_in=signed_in), fresh

    def signed_in(self, request: Request) -> str | None:
        """The access key id of the request's session (None: not signed in)."""
        if self.sessions is None:
            return None
        return self.sessions.key_of(request.cookies.get(SESSION_COOKIE, ""), self.clock())

    def machine(self, record: StateMachineRecord) -> StateMachine | None:
        """The loaded definition (None if it does not load: a quarantined machine)."""
        key = (record.arn, record.revision_id or record.definition)
        if key not in self._machines:
            if len(self._machines) > 256:
                self._machines.clear()
            try:
                self._machines[key] = load_definition(record.definition, machine_type=record.type)
            except Exception:  # shown as "cannot be loaded"; the Runtime quarantines it too
                self._machines[key] = None
        return self._machines[key]

    # -- pages --------------------------------------------------------------------------------

    async def machines(self, request: Request) -> Response:
        ctx, fresh = self.context(request)
        listed = await self.runtime.list_state_machines()
        return _page(views.machines_page(ctx, listed), fresh, ctx)

    async def machine_page(self, request: Request) -> Response:
        ctx, fresh = self.context(request)
        arn = request.query_params.get("arn", "")
        record = await self.runtime.describe_state_machine(arn)
        recent = await self.runtime.list_executions(arn, max_results=10)
        page = views.machine_page(ctx, record, self.machine(record), recent)
        return _page(page, fresh, ctx)

    async def executions(self, request: Request) -> Response:
        ctx, fresh = self.context(request)
        raw = {
            key: value
            for key, value in request.query_params.items()
            if value and key in _LIST_PARAMETERS
        }
        query = _filter_of(raw)
        size = _page_size(raw.get("size"))
        page = await data.executions_page(self.runtime, query, raw.get("cursor"), size)
        live_body = views.executions_live(ctx, page, raw)
        version = _digest(live_body)
        if request.query_params.get("part") == "live":
            return _fragment(live_body, version, running=True)
        live_url = ctx.url("/executions", **raw, part="live")
        machines = await self.runtime.list_state_machines()
        page_html = views.executions_page(ctx, query, page, machines, raw, (live_url, version))
        return _page(page_html, fresh, ctx)

    async def execution(self, request: Request) -> Response:
        ctx, fresh = self.context(request)
        arn = request.query_params.get("arn", "")
        execution = await self.runtime.describe_execution(arn)
        events = await self._history(execution)
        machine = await self._machine_of(execution)
        tasks = await data.waiting_tasks(self.runtime, arn) if execution.status == "RUNNING" else []
        live_body = views.execution_live(ctx, execution, machine, events, tasks)
        last = events[-1].id if events else 0
        version = f"{execution.status}-{last}-{len(tasks)}"
        running = execution.status == "RUNNING"
        if request.query_params.get("part") == "live":
            return _fragment(live_body, version, running=running)
        live_url = ctx.url("/execution", arn=arn, part="live")
        return _page(
            views.execution_page(ctx, execution, live_body, (live_url, version)), fresh, ctx
        )

    async def _history(self, execution: ExecutionDescription) -> list[HistoryEvent]:
        try:
            return await self.runtime.get_execution_history(execution.execution_arn)
        except InvalidArn:  # an EXPRESS execution kept in memory: no history, as on AWS
            return []

    async def _machine_of(self, execution: ExecutionDescription) -> StateMachine | None:
        try:
            record = await self.runtime.describe_state_machine(execution.state_machine_arn)
        except StateMachineDoesNotExist:
            return None
        return self.machine(record)

    async def tasks(self, request: Request) -> Response:
        ctx, fresh = self.context(request)
        found = await data.waiting_tasks(self.runtime)
        live_body = views.tasks_live(ctx, found)
        version = _digest(live_body)
        if request.query_params.get("part") == "live":
            return _fragment(live_body, version, running=True)
        live_url = ctx.url("/tasks", part="live")
        return _page(views.tasks_page(ctx, live_body, (live_url, version)), fresh, ctx)

    # -- sign-in ------------------------------------------------------------------------------

    async def signin_page(self, request: Request) -> Response:
        ctx, fresh = self.context(request)
        next_url = _next_url(ctx, request.query_params.get("next", ""))
        return _page(views.signin_page(ctx, next_url, None), fresh, ctx)

    async def signin(self, request: Request) -> Response:
        ctx, form = await _checked_form(request)
        if self.sessions is None:  # the route exists only with sessions
            raise _Refused(404, "Not Found", "This console has no sign-in.")
        key_id = form.get("access_key_id", "").strip()
        next_url = _next_url(ctx, form.get("next", ""))
        if not self.sessions.sign_in(key_id, form.get("secret_access_key", "")):
            message = "The access key id or the secret access key is wrong."
            page = views.signin_page(ctx, next_url, message)
            return HTMLResponse(str(page), status_code=403, headers=_HEADERS)
        response = _see(next_url)
        response.set_cookie(
            SESSION_COOKIE,
            self.sessions.cookie(key_id, self.clock()),
            max_age=SESSION_SECONDS,
            path=ctx.base or "/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def signout(self, request: Request) -> Response:
        ctx, _ = await _checked_form(request)
        response = _see(ctx.url("/signin"))
        response.delete_cookie(
            SESSION_COOKIE, path=ctx.base or "/", httponly=True, samesite="strict"
        )
        return response

    # -- actions ------------------------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        ctx, form = await _checked_form(request)
        arn = form.get("machine", "")
        value = _json_field(form.get("input", "") or "{}", "InvalidExecutionInput")
        started = await self.runtime.start_execution(arn, value, name=form.get("name") or None)
        return _see(ctx.url("/execution", arn=started.execution_arn))

    async def stop(self, request: Request) -> Response:
        ctx, form = await _checked_form(request)
        arn = form.get("execution", "")
        await self.runtime.stop_execution(
            arn, error=form.get("error") or None, cause=form.get("cause") or None
        )
        return _see(ctx.url("/execution", arn=arn))

    async def redrive(self, request: Request) -> Response:
        ctx, form = await _checked_form(request)
        arn = form.get("execution", "")
        await self.runtime.redrive_execution(arn)
        return _see(ctx.url("/execution", arn=arn))

    async def approve(self, request: Request) -> Response:
        ctx, form = await _checked_form(request)
        task = await self._task(form)
        output = _json_field(form.get("output", "") or "{}", "InvalidOutput")
        await self.runtime.send_task_success(task.task_token, output)
        return _see(ctx.url("/execution", arn=task.execution_arn))

    async def reject(self, request: Request) -> Response:
        ctx, form = await _checked_form(request)
        task = await self._task(form)
        await self.runtime.send_task_failure(
            task.task_token, form.get("error") or None, form.get("cause") or None
        )
        return _see(ctx.url("/execution", arn=task.execution_arn))

    async def _task(self, form: dict[str, str]) -> data.WaitingTask:
        task = await data.waiting_task(
            self.runtime, form.get("execution", ""), form.get("frame", "")
        )
        if task is None:
            raise _Refused(
                409, "TaskDoesNotExist", "No task of this execution waits for an answer now."
            )
        return task


def create_console(
    runtime: Runtime,
    *,
    credentials: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The console as an ASGI application over ``runtime`` (entered or entered later: the
    console touches it only when a request comes). Mount it where it should be served, e.g.
    ``Mount("/console", app=create_console(runtime))``; its links follow the mount path.

    ``credentials`` (access key id -> secret access key): the console asks for a sign-in with
    one of them. ``clock``: the wall clock (epoch seconds) sessions expire by."""
    sessions = None if credentials is None else Sessions(credentials)
    console = _Console(runtime, sessions, clock)

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except _Refused as refused:
                return _error(request, refused.status, refused.title, refused.message)
            except (ExecutionDoesNotExist, StateMachineDoesNotExist) as exc:
                return _error(request, 404, type(exc).__name__, str(exc))
            except StatemillError as exc:
                return _error(request, 400, type(exc).__name__, str(exc))

        return endpoint

    def signed(handler: Handler) -> Handler:
        if sessions is None:
            return handler

        async def endpoint(request: Request) -> Response:
            key_id = console.signed_in(request)
            if key_id is not None:
                request.scope[_SIGNED_IN] = key_id
                return await handler(request)
            if request.query_params.get("part") == "live":  # the script's polls
                return PlainTextResponse("Sign in first.", status_code=401, headers=_HEADERS)
            ctx = views.Context(base=str(request.scope.get("root_path", "")).rstrip("/"), csrf="")
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return _see(ctx.url("/signin", next=here if request.method != "POST" else None))

        return endpoint

    def page(path: str, handler: Handler) -> Route:
        return Route(path, signed(guarded(handler)), methods=["GET", "HEAD"])

    def action(path: str, handler: Handler) -> Route:
        return Route(path, signed(guarded(handler)), methods=["POST"])

    routes = [
        page("/", console.machines),
        page("/machine", console.machine_page),
        page("/executions", console.executions),
        page("/execution", console.execution),
        page("/tasks", console.tasks),
        action("/start", console.start),
        action("/stop", console.stop),
        action("/redrive", console.redrive),
        action("/approve", console.approve),
        action("/reject", console.reject),
        Mount("/static", app=StaticFiles(directory=_STATIC), name="static"),
    ]
    if sessions is not None:
        routes += [
            Route("/signin", guarded(console.signin_page), methods=["GET", "HEAD"]),
            Route("/signin", guarded(console.signin), methods=["POST"]),
            Route("/signout", guarded(console.signout), methods=["POST"]),
        ]
    return Starlette(routes=routes)


# -- requests and responses -----------------------------------------------------------------------


async def _checked_form(request: Request) -> tuple[views.Context, dict[str, str]]:
    """The POSTed form, after its origin, size and CSRF token are checked."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise _Refused(403, "Forbidden", "Cross-site request refused.")
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc != request.headers.get("host", ""):
            raise _Refused(403, "Forbidden", "Cross-origin request refused.")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _Refused(415, "Unsupported Media Type", "Send the console's form.")
    body = await _bounded_body(request)
    try:
        parsed = parse_qs(
            body.decode(), keep_blank_values=True, strict_parsing=False,
            max_num_fields=_MAX_FORM_FIELDS,
        )  # fmt: skip
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Refused(400, "Bad Request", f"The form cannot be read: {exc}") from None
    form = {key: values[0] for key, values in parsed.items() if values}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get("csrf", "")
    if not _TOKEN.fullmatch(cookie) or not hmac.compare_digest(cookie, sent):
        raise _Refused(
            403, "Forbidden", "The form's CSRF token is missing or wrong: reload the page."
        )
    ctx = views.Context(base=str(request.scope.get("root_path", "")).rstrip("/"), csrf=cookie)
    return ctx, form


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    too_big = _Refused(413, "Payload Too Large", f"Forms are limited to {MAX_FORM_BYTES} bytes.")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise too_big
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


def _next_url(ctx: views.Context, wanted: str) -> str:
    """Where a sign-in leads: ``wanted`` when it is a page of this console, else its home."""
    home = ctx.url("/")
    parts = urlsplit(wanted)
    if (
        not wanted.startswith(ctx.base + "/")
        or wanted.startswith("//")
        or "\\" in wanted
        or parts.scheme
        or parts.netloc
        or parts.path.rstrip("/") in (ctx.base + "/signin", ctx.base + "/signout")
    ):
        return home
    return wanted


def _json_field(text: str, error: str) -> JSON:
    try:
        # Depth before decoding: a decoder recurses once per level (a 1 MiB form holds
        # 349,000 "[").
        check_json_text(text, what="The value")
        return json.loads(text)
    except ValueError as exc:  # JSONLimitError is one
        raise _Refused(400, error, f"Not JSON: {exc}") from None


def _filter_of(raw: dict[str, str]) -> data.ExecutionFilter:
    status = raw.get("status")
    return data.ExecutionFilter(
        state_machine_arn=raw.get("machine") or None,
        status=status if status in data.EXECUTION_STATUSES else None,
        name_prefix=raw.get("name") or None,
        started_after=_moment(raw.get("from")),
        started_before=_moment(raw.get("to")),
    )


def _moment(text: str | None) -> float | None:
    """A ``datetime-local`` value read as UTC (None if absent or unreadable)."""
    if not text:
        return None
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.timestamp()


def _page_size(text: str | None) -> int:
    if text is None or not text.isdigit():
        return _PAGE_SIZE
    return max(1, min(int(text), _MAX_PAGE_SIZE))


def _digest(markup: Markup) -> str:
    return hashlib.sha256(markup.encode()).hexdigest()[:16]


def _page(markup: Markup, fresh_token: str | None, ctx: views.Context) -> Response:
    response = HTMLResponse(str(markup), headers=_HEADERS)
    if fresh_token is not None:
        response.set_cookie(
            CSRF_COOKIE, fresh_token, path=ctx.base or "/", httponly=True, samesite="strict"
        )
    return response


def _fragment(markup: Markup, version: str, *, running: bool) -> Response:
    headers = {
        **_HEADERS,
        "X-Statemill-Version": version,
        "X-Statemill-Running": "1" if running else "0",
    }
    return HTMLResponse(str(markup), headers=headers)


def _see(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=_HEADERS)


def _error(request: Request, status: int, title: str, message: str) -> Response:
    ctx = views.Context(
        base=str(request.scope.get("root_path", "")).rstrip("/"),
        csrf=request.cookies.get(CSRF_COOKIE, ""),
    )
    back = request.headers.get("referer")
    if back is not None and urlsplit(back).netloc != request.headers.get("host", ""):
        back = None
    markup = views.error_page(ctx, title, message, back)
    return HTMLResponse(str(markup), status_code=status, headers=_HEADERS)
