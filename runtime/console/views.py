"""The console's pages as HTML: pure functions from the data of :mod:`runtime.console.data`
to :class:`~runtime.console.markup.Markup`.

Every value from a user (state machine and execution names, inputs, outputs, variables, errors,
causes) reaches the page through :func:`~runtime.console.markup.render` or ``join``, which
escape it; the graph is :func:`runtime.tools.graph.to_svg`'s, which escapes its labels. Links
start with ``base`` (the path the console is mounted at). Forms that change something are POST
and carry the CSRF token.

Imports the standard library, the public ``runtime`` API, the tools and this package.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from runtime import ExecutionDescription, HistoryEvent, StateMachineRecord
from runtime.console.data import (
    EXECUTION_STATUSES,
    ExecutionFilter,
    ExecutionsPage,
    Visit,
    WaitingTask,
    event_rows,
    iso,
    visits,
)
from runtime.console.markup import Markup, join, pretty, render
from runtime.definition.model import StateMachine
from runtime.tools.graph import OUTCOME_COLOURS, build, to_svg
from runtime.tools.replay import diagnose

__all__ = [
    "Context",
    "error_page",
    "execution_live",
    "execution_page",
    "executions_live",
    "executions_page",
    "machine_page",
    "machines_page",
    "signin_page",
    "tasks_live",
    "tasks_page",
]

JSON = Any

#: Most events the execution page lists (the graph and the state visits use all of them).
MAX_EVENT_ROWS: Final = 2000
_REDRIVABLE: Final = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})


@dataclass(frozen=True, kw_only=True)
class Context:
    """What every page needs: where the console is mounted, the request's CSRF token and the
    access key id signed in (None: no sign-in, or none configured)."""

    base: str
    csrf: str
    signed_in: str | None = None

    def url(self, path: str, /, **query: str | None) -> str:
        """``base + path`` with the query parameters that are set."""
        params = {key: value for key, value in query.items() if value}
        return self.base + path + ("?" + urlencode(params) if params else "")

    def csrf_field(self) -> Markup:
        return render('<input type="hidden" name="csrf" value="{token}">', token=self.csrf)


_LAYOUT: Final = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Statemill console</title>
<link rel="stylesheet" href="{css}"></head>
<body><header><a class="brand" href="{home}">Statemill</a><nav>
<a href="{home}"{on_machines}>State machines</a>
<a href="{executions}"{on_executions}>Executions</a>
<a href="{tasks}"{on_tasks}>Waiting tasks</a></nav>{account}</header>
<main>{body}</main>
<script src="{js}"></script></body></html>
"""


def _layout(ctx: Context, title: str, body: Markup, section: str) -> Markup:
    on = Markup(' class="on"')
    return render(
        _LAYOUT,
        title=title,
        css=ctx.url("/static/console.css"),
        js=ctx.url("/static/console.js"),
        home=ctx.url("/"),
        executions=ctx.url("/executions"),
        tasks=ctx.url("/tasks"),
        on_machines=on if section == "machines" else "",
        on_executions=on if section == "executions" else "",
        on_tasks=on if section == "tasks" else "",
        account=_account(ctx),
        body=body,
    )


def _account(ctx: Context) -> Markup:
    """The signed-in access key id and the sign-out button (nothing without a sign-in)."""
    if ctx.signed_in is None:
        return Markup("")
    return render(
        '<form method="post" action="{action}" class="account" id="signout-form">{csrf}'
        '<span class="muted">{key}</span> <button type="submit">Sign out</button></form>',
        action=ctx.url("/signout"),
        csrf=ctx.csrf_field(),
        key=ctx.signed_in,
    )


def signin_page(ctx: Context, next_url: str, message: str | None) -> Markup:
    """The sign-in form: an access key id and its secret access key (the server's keys)."""
    failure = (
        render('<div class="failure" id="error"><p>{message}</p></div>', message=message)
        if message
        else Markup("")
    )
    body = render(
        '<h1>Sign in</h1><p class="muted">This server checks SigV4 signatures: sign in with '
        "one of its access keys.</p>{failure}"
        '<form method="post" action="{action}" class="card" id="signin-form">{csrf}'
        '<input type="hidden" name="next" value="{next}">'
        '<label>Access key id <input name="access_key_id" autocomplete="username" required '
        'maxlength="128"></label>'
        '<label>Secret access key <input name="secret_access_key" type="password" '
        'autocomplete="current-password" required maxlength="256"></label>'
        '<button type="submit" class="ok">Sign in</button></form>',
        failure=failure,
        action=ctx.url("/signin"),
        csrf=ctx.csrf_field(),
        next=next_url,
    )
    return _layout(ctx, "Sign in", body, "")


def _live(url: str, version: str, body: Markup, every: int) -> Markup:
    """A region the console's script refreshes from ``url`` while it changes."""
    return render(
        '<div id="live" data-live="{url}" data-version="{version}" data-every="{every}">'
        "{body}</div>",
        url=url,
        version=version,
        every=every,
        body=body,
    )


def _status(status: str) -> Markup:
    return render('<span class="status status-{status}">{status}</span>', status=status)


def _duration(start: float, stop: float | None) -> str:
    if stop is None:
        return ""
    seconds = stop - start
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def _json_text(text: str | None) -> Markup:
    """A JSON text (an input or output) indented; text that is not JSON as it is."""
    if text is None:
        return Markup('<span class="muted">none</span>')
    try:
        return pretty(json.loads(text))
    except ValueError:
        return render('<pre class="json">{text}</pre>', text=text)


def _short(value: JSON, limit: int = 90) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _folded(value: JSON) -> Markup:
    """A JSON value folded into one line, unfolded on click."""
    return render(
        "<details><summary>{short}</summary>{full}</details>",
        short=_short(value),
        full=pretty(value),
    )


def _legend() -> Markup:
    items = [
        render(
            '<span class="legend-item"><svg width="14" height="14" aria-hidden="true">'
            '<rect x="1" y="1" width="12" height="12" rx="3" fill="{fill}" stroke="{stroke}" '
            'stroke-width="2"/></svg>{outcome}</span>',
            fill=fill,
            stroke=stroke,
            outcome=outcome,
        )
        for outcome, (fill, stroke) in OUTCOME_COLOURS.items()
    ]
    return render('<div class="legend">{items}</div>', items=join(items))


def error_page(ctx: Context, title: str, message: str, back: str | None) -> Markup:
    """A refused or failed request: what happened, and the way back."""
    link = render('<p><a href="{back}">Back</a></p>', back=back) if back else Markup("")
    body = render(
        '<h1>{title}</h1><div class="failure" id="error"><p>{message}</p></div>{link}',
        title=title,
        message=message,
        link=link,
    )
    return _layout(ctx, title, body, "")


# -- state machines -------------------------------------------------------------------------------


def machines_page(ctx: Context, machines: Sequence[StateMachineRecord]) -> Markup:
    rows = [
        render(
            '<tr><td><a href="{href}">{name}</a>{quarantined}</td><td>{type}</td>'
            '<td>{created}</td><td><a href="{executions}">executions</a></td></tr>',
            href=ctx.url("/machine", arn=machine.arn),
            name=machine.name,
            quarantined=render(' <span class="status status-FAILED">quarantined</span>')
            if machine.quarantined
            else "",
            type=machine.type,
            created=iso(machine.creation_date),
            executions=ctx.url("/executions", machine=machine.arn),
        )
        for machine in sorted(machines, key=lambda m: m.name)
    ]
    table = (
        render(
            '<table id="machines"><thead><tr><th>Name</th><th>Type</th><th>Created</th><th>'
            "</th></tr></thead><tbody>{rows}</tbody></table>",
            rows=join(rows),
        )
        if rows
        else Markup('<p class="muted">No state machine yet.</p>')
    )
    body = render("<h1>State machines</h1>{table}", table=table)
    return _layout(ctx, "State machines", body, "machines")


_START_FORM: Final = """<form method="post" action="{action}" class="card" id="start-form">
<h2>Start an execution</h2>{csrf}<input type="hidden" name="machine" value="{arn}">
<label>Name <input name="name" maxlength="80" placeholder="(generated)"></label>
<label>Input <textarea name="input" rows="6" spellcheck="false">{{}}</textarea></label>
<button type="submit">Start execution</button></form>"""


def machine_page(
    ctx: Context,
    record: StateMachineRecord,
    machine: StateMachine | None,
    recent: Sequence[ExecutionDescription],
) -> Markup:
    graph = (
        render('<div class="graph" id="graph">{svg}</div>', svg=Markup(to_svg(build(machine))))
        if machine is not None
        else render('<div class="failure">{why}</div>', why=record.quarantined or "")
    )
    try:
        definition = pretty(json.loads(record.definition))
    except ValueError:
        definition = render("<pre>{text}</pre>", text=record.definition)
    body = render(
        '<h1>State machine <span class="name" id="machine-name">{name}</span></h1>'
        '<table class="facts"><tr><th>ARN</th><td class="arn">{arn}</td></tr>'
        "<tr><th>Type</th><td>{type}</td></tr><tr><th>Created</th><td>{created}</td></tr>"
        "<tr><th>Revision</th><td>{revision}</td></tr></table>"
        '<h2>Graph</h2>{graph}<div class="columns">{start}'
        '<div class="card"><h2>Recent executions</h2>{recent}'
        '<p><a href="{all}">All executions of this state machine</a></p></div></div>'
        "<h2>Definition</h2>{definition}",
        name=record.name,
        arn=record.arn,
        type=record.type,
        created=iso(record.creation_date),
        revision=record.revision_id,
        graph=graph,
        start=render(_START_FORM, action=ctx.url("/start"), csrf=ctx.csrf_field(), arn=record.arn)
        if machine is not None
        else "",
        recent=_executions_table(ctx, recent, with_machine=False),
        all=ctx.url("/executions", machine=record.arn),
        definition=definition,
    )
    return _layout(ctx, record.name, body, "machines")


# -- executions -----------------------------------------------------------------------------------


def _executions_table(
    ctx: Context, executions: Sequence[ExecutionDescription], *, with_machine: bool = True
) -> Markup:
    if not executions:
        return Markup('<p class="muted">No execution.</p>')
    rows = [
        render(
            '<tr data-execution="{arn}"><td><a href="{href}">{name}</a></td><td>{status}</td>'
            "{machine}<td>{started}</td><td>{stopped}</td><td>{duration}</td></tr>",
            arn=execution.execution_arn,
            href=ctx.url("/execution", arn=execution.execution_arn),
            name=execution.name,
            status=_status(execution.status),
            machine=render(
                "<td>{machine}</td>", machine=execution.state_machine_arn.rsplit(":", 1)[-1]
            )
            if with_machine
            else "",
            started=iso(execution.start_date),
            stopped=iso(execution.stop_date),
            duration=_duration(execution.start_date, execution.stop_date),
        )
        for execution in executions
    ]
    head = "<th>State machine</th>" if with_machine else ""
    return render(
        '<table class="executions"><thead><tr><th>Name</th><th>Status</th>{head}'
        "<th>Started</th><th>Ended</th><th>Duration</th></tr></thead><tbody>{rows}"
        "</tbody></table>",
        head=Markup(head),
        rows=join(rows),
    )


def _filter_form(
    ctx: Context,
    query: ExecutionFilter,
    machines: Sequence[StateMachineRecord],
    raw: dict[str, str],
) -> Markup:
    machine_options = [render('<option value="">all state machines</option>')] + [
        render(
            '<option value="{arn}"{selected}>{name}</option>',
            arn=machine.arn,
            name=machine.name,
            selected=Markup(" selected") if machine.arn == query.state_machine_arn else "",
        )
        for machine in sorted(machines, key=lambda m: m.name)
    ]
    status_options = [render('<option value="">any status</option>')] + [
        render(
            '<option value="{status}"{selected}>{status}</option>',
            status=status,
            selected=Markup(" selected") if status == query.status else "",
        )
        for status in EXECUTION_STATUSES
    ]
    return render(
        '<form method="get" action="{action}" class="filters" id="filters">'
        '<select name="machine">{machines}</select><select name="status">{statuses}</select>'
        '<input name="name" placeholder="name starts with" value="{name}" maxlength="80">'
        '<label>started from <input type="datetime-local" name="from" value="{start}" '
        'step="1"></label><label>to <input type="datetime-local" name="to" value="{end}" '
        'step="1"></label><span class="muted">(UTC)</span><button type="submit">Filter</button>'
        '<a href="{reset}">reset</a></form>',
        action=ctx.url("/executions"),
        machines=join(machine_options),
        statuses=join(status_options),
        name=query.name_prefix or "",
        start=raw.get("from", ""),
        end=raw.get("to", ""),
        reset=ctx.url("/executions"),
    )


def executions_live(ctx: Context, page: ExecutionsPage, raw: dict[str, str]) -> Markup:
    """The table and pager of the executions page (refreshed in place)."""
    links = []
    if raw.get("cursor"):
        links.append(render('<a href="{href}">« newest</a>', href=_page_url(ctx, raw, None)))
    if page.next_cursor is not None:
        links.append(
            render(
                '<a href="{href}" id="next-page">next page »</a>',
                href=_page_url(ctx, raw, page.next_cursor),
            )
        )
    return render(
        '{table}<p class="pager">{links}</p>',
        table=_executions_table(ctx, page.executions),
        links=join(links, " "),
    )


def _page_url(ctx: Context, raw: dict[str, str], cursor: str | None) -> str:
    keep = {key: raw.get(key) for key in ("machine", "status", "name", "from", "to", "size")}
    return ctx.url("/executions", **keep, cursor=cursor)


def executions_page(
    ctx: Context,
    query: ExecutionFilter,
    page: ExecutionsPage,
    machines: Sequence[StateMachineRecord],
    raw: dict[str, str],
    live: tuple[str, str],
) -> Markup:
    body = render(
        "<h1>Executions</h1>{filters}{live}",
        filters=_filter_form(ctx, query, machines, raw),
        live=_live(live[0], live[1], executions_live(ctx, page, raw), 3000),
    )
    return _layout(ctx, "Executions", body, "executions")


# -- one execution --------------------------------------------------------------------------------


def _task_forms(ctx: Context, task: WaitingTask) -> Markup:
    return render(
        '<div class="task card" data-state="{state}"><h3>{state} '
        '<span class="muted">waits for its {kind} since {since}</span></h3>'
        '<p><a href="{execution}">{name}</a></p>'
        "<details open><summary>Task input</summary>{input}</details>"
        '<div class="columns"><form method="post" action="{approve}" class="approve">{csrf}'
        '<input type="hidden" name="execution" value="{arn}">'
        '<input type="hidden" name="frame" value="{frame}">'
        '<label>Output (JSON) <textarea name="output" rows="3" spellcheck="false">{{}}'
        '</textarea></label><button type="submit" class="ok">Approve</button></form>'
        '<form method="post" action="{reject}" class="reject">{csrf}'
        '<input type="hidden" name="execution" value="{arn}">'
        '<input type="hidden" name="frame" value="{frame}">'
        '<label>Error <input name="error" maxlength="256" value="Rejected"></label>'
        '<label>Cause <input name="cause" maxlength="32768"></label>'
        '<button type="submit" class="danger">Reject</button></form></div></div>',
        state=task.state_name,
        kind=task.kind,
        since=iso(task.since),
        execution=ctx.url("/execution", arn=task.execution_arn),
        name=task.execution_name,
        input=pretty(task.input),
        approve=ctx.url("/approve"),
        reject=ctx.url("/reject"),
        csrf=ctx.csrf_field(),
        arn=task.execution_arn,
        frame=task.frame,
    )


def _buttons(ctx: Context, execution: ExecutionDescription) -> Markup:
    forms = []
    if execution.status == "RUNNING":
        forms.append(
            render(
                '<form method="post" action="{action}" class="inline" id="stop-form" '
                'data-confirm="Stop this execution?">{csrf}'
                '<input type="hidden" name="execution" value="{arn}">'
                '<input name="error" placeholder="error (optional)" maxlength="256">'
                '<input name="cause" placeholder="cause (optional)" maxlength="32768">'
                '<button type="submit" class="danger">Stop execution</button></form>',
                action=ctx.url("/stop"),
                csrf=ctx.csrf_field(),
                arn=execution.execution_arn,
            )
        )
    if execution.status in _REDRIVABLE:
        forms.append(
            render(
                '<form method="post" action="{action}" class="inline" id="redrive-form">{csrf}'
                '<input type="hidden" name="execution" value="{arn}">'
                '<button type="submit">Redrive</button></form>',
                action=ctx.url("/redrive"),
                csrf=ctx.csrf_field(),
                arn=execution.execution_arn,
            )
        )
    return render('<div class="actions">{forms}</div>', forms=join(forms))


def _visit_rows(found: Sequence[Visit]) -> Markup:
    rows = []
    for visit in found:
        story = []
        for attempt in visit.failures:
            if attempt.outcome == "retried":
                fate = render(
                    '<span class="retried">retried after {delay} s</span>',
                    delay=f"{attempt.delay or 0:.3f}",
                )
            elif attempt.outcome == "caught":
                fate = render(
                    '<span class="caught">caught → {next}</span>', next=attempt.next or "?"
                )
            else:
                fate = Markup('<span class="failed">not caught</span>')
            story.append(
                render(
                    '<div class="attempt"><b>{error}</b> <span class="muted">#{id} {type}'
                    '</span> {fate}<div class="cause">{cause}</div></div>',
                    error=attempt.error or "",
                    id=attempt.event_id,
                    type=attempt.type,
                    fate=fate,
                    cause=attempt.cause or "",
                )
            )
        rows.append(
            render(
                '<tr class="{css}" data-state="{name}"><td>{id}</td><td><b>{name}</b>'
                '<div class="muted">{type}{frame}</div></td><td>{input}</td><td>{output}</td>'
                "<td>{variables}</td><td>{story}</td></tr>",
                css="error" if visit.failures else "",
                id=visit.entered_id,
                name=visit.name,
                type=visit.type,
                frame=f" · frame {visit.frame}" if visit.frame else "",
                input=_folded(visit.input),
                output=_folded(visit.output) if visit.exited else "",
                variables=_folded(visit.variables) if visit.variables else "",
                story=join(story),
            )
        )
    return join(rows)


def _event_table(events: Sequence[HistoryEvent]) -> Markup:
    rows = [
        render(
            '<tr class="{css}"><td>{id}</td><td>{type}</td><td>{step}</td><td>{resource}</td>'
            "<td>{elapsed}</td><td>{time}</td><td>{details}</td></tr>",
            css="error" if row.is_error else "",
            id=row.id,
            type=row.type,
            step=row.step,
            resource=row.resource,
            elapsed=f"{row.elapsed_ms:.0f}",
            time=iso(row.timestamp),
            details=_folded(row.details) if row.details else "",
        )
        for row in event_rows(events[:MAX_EVENT_ROWS])
    ]
    more = (
        render('<p class="muted">{n} more events not listed.</p>', n=len(events) - MAX_EVENT_ROWS)
        if len(events) > MAX_EVENT_ROWS
        else ""
    )
    return render(
        '<table id="events"><thead><tr><th>ID</th><th>Type</th><th>Step</th><th>Resource</th>'
        "<th>Elapsed (ms)</th><th>Timestamp</th><th>Details</th></tr></thead><tbody>{rows}"
        "</tbody></table>{more}",
        rows=join(rows),
        more=more,
    )


def execution_live(
    ctx: Context,
    execution: ExecutionDescription,
    machine: StateMachine | None,
    events: Sequence[HistoryEvent],
    tasks: Sequence[WaitingTask],
) -> Markup:
    """Everything on the execution page that changes while it runs."""
    failure = diagnose(events)
    diagnosis = (
        render(
            '<div class="failure" id="failure"><h2>Failure</h2><pre>{lines}</pre></div>',
            lines="\n".join(failure.lines()),
        )
        if failure is not None
        else ""
    )
    graph = (
        render(
            '{legend}<div class="graph" id="graph">{svg}</div>',
            legend=_legend(),
            svg=Markup(to_svg(build(machine, events))),
        )
        if machine is not None
        else Markup('<p class="muted">The state machine cannot be loaded.</p>')
    )
    waiting = (
        render(
            '<h2>Waiting tasks</h2><div id="tasks">{tasks}</div>',
            tasks=join(_task_forms(ctx, task) for task in tasks),
        )
        if tasks
        else ""
    )
    error = (
        render(
            '<tr><th>Error</th><td id="error">{error}</td></tr>'
            '<tr><th>Cause</th><td id="cause">{cause}</td></tr>',
            error=execution.error or "",
            cause=execution.cause or "",
        )
        if execution.error is not None or execution.cause is not None
        else ""
    )
    return render(
        '<table class="facts"><tr><th>Status</th><td id="status" data-status="{status}">'
        '{badge}</td></tr><tr><th>ARN</th><td class="arn">{arn}</td></tr>'
        '<tr><th>State machine</th><td><a href="{machine_href}">{machine}</a></td></tr>'
        "<tr><th>Started</th><td>{started}</td></tr><tr><th>Ended</th><td>{stopped}</td></tr>"
        "<tr><th>Duration</th><td>{duration}</td></tr><tr><th>Redrives</th><td>{redrives}"
        "</td></tr>{error}</table>{buttons}{waiting}{diagnosis}"
        '<div class="columns"><div><h2>Input</h2><div id="input">{input}</div></div>'
        '<div><h2>Output</h2><div id="output">{output}</div></div></div>'
        "<h2>Graph</h2>{graph}"
        '<h2>States</h2><table id="states"><thead><tr><th>Event</th><th>State</th>'
        "<th>Input</th><th>Output</th><th>Variables</th><th>Errors, retries and catches</th>"
        "</tr></thead><tbody>{visits}</tbody></table>"
        "<h2>Events</h2>{events}",
        status=execution.status,
        badge=_status(execution.status),
        arn=execution.execution_arn,
        machine_href=ctx.url("/machine", arn=execution.state_machine_arn),
        machine=execution.state_machine_arn.rsplit(":", 1)[-1],
        started=iso(execution.start_date),
        stopped=iso(execution.stop_date),
        duration=_duration(execution.start_date, execution.stop_date),
        redrives=execution.redrive_count,
        error=error,
        buttons=_buttons(ctx, execution),
        waiting=waiting,
        diagnosis=diagnosis,
        input=_json_text(execution.input),
        output=_json_text(execution.output),
        graph=graph,
        visits=_visit_rows(visits(events)),
        events=_event_table(events),
    )


def execution_page(
    ctx: Context, execution: ExecutionDescription, live_body: Markup, live: tuple[str, str]
) -> Markup:
    body = render(
        '<h1>Execution <span class="name" id="execution-name">{name}</span></h1>{live}',
        name=execution.name,
        live=_live(live[0], live[1], live_body, 1000),
    )
    return _layout(ctx, execution.name, body, "executions")


# -- waiting tasks --------------------------------------------------------------------------------


def tasks_live(ctx: Context, tasks: Sequence[WaitingTask]) -> Markup:
    if not tasks:
        return Markup('<p class="muted" id="no-tasks">No task waits for an answer.</p>')
    return render('<div id="tasks">{tasks}</div>', tasks=join(_task_forms(ctx, t) for t in tasks))


def tasks_page(ctx: Context, body_live: Markup, live: tuple[str, str]) -> Markup:
    body = render(
        '<h1>Waiting tasks</h1><p class="muted">Tasks that wait for a task token\'s answer '
        "(<code>.waitForTaskToken</code>) or an activity worker. Approve sends the output "
        "(SendTaskSuccess); Reject sends the error and cause (SendTaskFailure).</p>{live}",
        live=_live(live[0], live[1], body_live, 2000),
    )
    return _layout(ctx, "Waiting tasks", body, "tasks")
