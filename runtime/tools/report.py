"""``statemill report``: one self-contained HTML page about one execution.

The page holds everything inline (CSS, a few lines of JS, the graph as an SVG drawn by
``runtime.tools.graph.to_svg``) and loads nothing from the network, so it can be mailed or
attached to a ticket. Sections: the summary (status, times, error), the failure diagnosis when it
failed, the graph coloured by outcome, every state visit with its input, output, error and
retries, and the event table.

Pure: imports only the standard library, ``core.events``, ``definition.model`` and the tools
``aws_history``, ``graph`` and ``replay``.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from runtime.core.events import HistoryEvent
from runtime.definition.model import StateMachine
from runtime.tools.aws_history import loads_text
from runtime.tools.graph import OUTCOME_COLOURS, build, to_svg
from runtime.tools.replay import diagnose, replay

__all__ = ["render_report"]

JSON = Any

_CSS: Final = """
body { font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; margin-bottom: 4px; } h2 { font-size: 16px; margin-top: 28px; }
.status { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: bold; }
.status-SUCCEEDED { background: #d4edda; }
.status-FAILED, .status-TIMED_OUT { background: #f8d7da; }
.status-RUNNING { background: #d0e4ff; } .status-ABORTED { background: #eee; }
.failure { border: 2px solid #c62828; background: #fff5f5; padding: 10px 14px; border-radius: 6px; }
.graph { overflow: auto; border: 1px solid #ddd; padding: 8px; }
.legend span { display: inline-block; margin-right: 12px; padding: 2px 8px; border: 2px solid; }
table { border-collapse: collapse; width: 100%; font-size: 12px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 6px; text-align: left; }
td { vertical-align: top; }
th { background: #f5f5f5; position: sticky; top: 0; }
tr.error td { background: #fff0f0; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; max-height: 300px; overflow: auto; }
.muted { color: #777; } input#filter { width: 320px; padding: 4px; margin-bottom: 6px; }
"""

_JS: Final = """
(function () {
  var filter = document.getElementById('filter');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#events tbody tr'));
  filter.addEventListener('input', function () {
    var needle = filter.value.toLowerCase();
    rows.forEach(function (row) {
      row.style.display = row.textContent.toLowerCase().indexOf(needle) >= 0 ? '' : 'none';
    });
  });
  document.querySelectorAll('svg .state').forEach(function (node) {
    node.addEventListener('click', function () {
      filter.value = node.getAttribute('data-state');
      filter.dispatchEvent(new Event('input'));
    });
  });
  document.body.setAttribute('data-ready', 'yes');
})();
"""


@dataclass
class _Visit:
    name: str
    frame: str
    entered_id: int
    input: JSON = None
    output: JSON = None
    has_output: bool = False
    errors: list[str] = field(default_factory=list)
    retries: int = 0


def render_report(
    machine: StateMachine,
    events: Sequence[HistoryEvent],
    *,
    title: str = "",
    execution_arn: str = "",
) -> str:
    """The HTML page for the execution that ``events`` record."""
    steps = list(replay(events))
    final = steps[-1].state if steps else None
    status = final.status if final is not None else "UNKNOWN"
    graph = build(machine, events)
    visits = _visits(events)
    failure = diagnose(events)
    start = events[0].timestamp if events else 0.0
    end = events[-1].timestamp if events else 0.0
    name = title or execution_arn or "execution"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Statemill report: {html.escape(name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Execution {html.escape(name)}</h1>",
        f'<p><span class="status status-{html.escape(status)}" id="status">'
        f"{html.escape(status)}</span> "
        f'<span class="muted">started {_time(start)}, last event {_time(end)} '
        f"({end - start:.3f}s), {len(events)} events</span></p>",
    ]
    if execution_arn:
        out.append(f'<p class="muted">{html.escape(execution_arn)}</p>')
    if failure is not None:
        out.append('<div class="failure" id="failure"><h2>Failure</h2>')
        out.extend(f"<pre>{html.escape(line)}</pre>" for line in failure.lines())
        out.append("</div>")
    elif final is not None and final.output is not None:
        out.append("<h2>Output</h2>" + _pre(final.output))
    legend = "".join(
        f'<span style="background:{fill};border-color:{stroke}">{html.escape(outcome)}</span>'
        for outcome, (fill, stroke) in OUTCOME_COLOURS.items()
    )
    out += [
        "<h2>Graph</h2>",
        f'<div class="legend">{legend}</div>',
        f'<div class="graph" id="graph">{to_svg(graph)}</div>',
        "<h2>States</h2>",
        '<table id="states"><thead><tr><th>Event</th><th>State</th><th>Frame</th>'
        "<th>Input</th><th>Output</th><th>Errors / retries</th></tr></thead><tbody>",
    ]
    for visit in visits:
        errors = "<br>".join(html.escape(e) for e in visit.errors)
        if visit.retries:
            errors += f"<br>{visit.retries} retr{'y' if visit.retries == 1 else 'ies'}"
        out.append(
            f'<tr class="{"error" if visit.errors else ""}"><td>{visit.entered_id}</td>'
            f"<td>{html.escape(visit.name)}</td><td>{html.escape(visit.frame)}</td>"
            f"<td>{_pre(visit.input)}</td>"
            f"<td>{_pre(visit.output) if visit.has_output else ''}</td><td>{errors}</td></tr>"
        )
    out += [
        "</tbody></table>",
        "<h2>Events</h2>",
        '<input id="filter" placeholder="filter events (click a state in the graph)">',
        '<table id="events"><thead><tr><th>ID</th><th>Time</th><th>Type</th><th>State</th>'
        "<th>Frame</th><th>Details</th></tr></thead><tbody>",
    ]
    for step in steps:
        event = step.event
        public = {k: v for k, v in event.details.items() if not k.startswith("statemill")}
        row_class = "error" if step.error else ""
        out.append(
            f'<tr class="{row_class}"><td>{event.id}</td><td>{_time(event.timestamp)}</td>'
            f"<td>{html.escape(event.type)}</td><td>{html.escape(step.state_name or '')}</td>"
            f"<td>{html.escape(event.frame)}</td>"
            f"<td>{_pre(public) if public else ''}</td></tr>"
        )
    out += ["</tbody></table>", f"<script>{_JS}</script>", "</body></html>"]
    return "\n".join(out) + "\n"


def _visits(events: Sequence[HistoryEvent]) -> list[_Visit]:
    """Every state visit in entry order, with its input, output, errors and retries."""
    visits: list[_Visit] = []
    open_visits: dict[str, _Visit] = {}
    for event in events:
        details = event.details
        if event.type.endswith("StateEntered"):
            visit = _Visit(
                name=str(details.get("name", "")),
                frame=event.frame,
                entered_id=event.id,
                input=loads_text(details.get("input")),
            )
            visits.append(visit)
            open_visits[event.frame] = visit
            continue
        current = open_visits.get(event.frame)
        if current is None:
            continue
        if event.type.endswith("StateExited"):
            current.output = loads_text(details.get("output"))
            current.has_output = True
        elif "error" in details or "statemillError" in details:
            error = details.get("error", details.get("statemillError"))
            cause = details.get("cause", details.get("statemillCause"))
            if "statemillRetryDelay" in details:
                current.retries += 1
            current.errors.append(f"{event.type} #{event.id}: {error}: {cause}")
    return visits


def _pre(value: JSON) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return f"<pre>{html.escape(text)}</pre>"


def _time(timestamp: float) -> str:
    moment = _dt.datetime.fromtimestamp(timestamp, _dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
