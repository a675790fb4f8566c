"""The state machine as a graph: Mermaid, Graphviz DOT and a self-made SVG, optionally coloured
by what happened to each state in one execution.

Graph shape: one node per state; ``Next`` edges solid; Choice edges labelled with their rule
(``Default`` for the default); Catch edges dashed and labelled with their ``ErrorEquals``; a
Parallel's branches and a Map's ItemProcessor are nested groups (Mermaid ``subgraph``, DOT
``cluster``) entered from the Parallel/Map node. Node ids are ``n1, n2 ...`` in definition order,
so the output of one definition is stable.

With an execution (its history), each state carries counts (entered, retries, failures) and one
outcome: ``failed`` (a failure nobody caught), ``caught`` (a failure a Catch handled), ``in
progress`` (entered, not left, execution running), ``succeeded`` (left normally) or ``not
reached``. Events are attributed to states through their frames: a Parallel branch or Map
iteration frame maps to the branch/processor of the state that started it.

Pure but for :func:`render`'s ``svg`` format, which runs Graphviz's ``dot``: imports only the
standard library, ``core`` (events and their failure types) and ``definition.model``.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from runtime.core.events import HistoryEvent
from runtime.core.evolve import TASK_FAILED_TYPES
from runtime.definition.model import Choice, Map, Parallel, State, StateMachine, Task

__all__ = [
    "FORMATS",
    "OUTCOME_COLOURS",
    "Graph",
    "StateStats",
    "build",
    "render",
    "state_stats",
    "to_dot",
    "to_mermaid",
    "to_svg",
]

JSON = Any

Outcome = Literal["succeeded", "failed", "caught", "in progress", "not reached"]
EdgeKind = Literal["next", "choice", "default", "catch", "branch", "start", "end"]

#: Fill and stroke per outcome (also the legend of the HTML report).
OUTCOME_COLOURS: Final[dict[str, tuple[str, str]]] = {
    "succeeded": ("#d4edda", "#2e7d32"),
    "failed": ("#f8d7da", "#c62828"),
    "caught": ("#fff3cd", "#e65100"),
    "in progress": ("#d0e4ff", "#1565c0"),
    "not reached": ("#eeeeee", "#9e9e9e"),
}

_FAILURES: Final = TASK_FAILED_TYPES | {"EvaluationFailed", "MapStateFailed", "ParallelStateFailed"}

#: What :func:`render` draws: Mermaid, DOT, SVG laid out by Graphviz, or by :func:`to_svg`.
FORMATS: Final = ("mermaid", "dot", "svg", "svg-basic")

#: A state's place: the path of (state name, branch index; -1 = Map processor) to its machine.
MachinePath = tuple[tuple[str, int], ...]


@dataclass
class Node:
    id: str
    name: str
    type: str
    path: MachinePath


@dataclass
class Edge:
    source: str
    target: str
    kind: EdgeKind
    label: str = ""


@dataclass
class Group:
    """A nested machine: a Parallel branch or a Map processor, drawn as a subgraph."""

    id: str
    label: str
    path: MachinePath
    nodes: list[str] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)


@dataclass
class StateStats:
    """What happened to one state in one execution."""

    entered: int = 0
    exited: int = 0
    failed: int = 0
    """Failures no retrier and no catcher handled."""
    caught: int = 0
    retries: int = 0
    open: int = 0
    """Entered and not yet left (a running execution)."""

    @property
    def outcome(self) -> Outcome:
        if self.failed:
            return "failed"
        if self.caught:
            return "caught"
        if self.open:
            return "in progress"
        if self.exited or self.entered:
            return "succeeded"
        return "not reached"

    def counts(self) -> str:
        parts = []
        if self.entered > 1:
            parts.append(f"x{self.entered}")
        if self.retries:
            parts.append(f"{self.retries} retr{'y' if self.retries == 1 else 'ies'}")
        if self.caught:
            parts.append(f"{self.caught} caught")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return ", ".join(parts)


@dataclass
class Graph:
    """The nodes, edges and nested groups of a definition (see :func:`build`)."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    top: Group = field(default_factory=lambda: Group(id="top", label="", path=()))
    by_state: dict[tuple[MachinePath, str], str] = field(default_factory=dict)
    stats: dict[str, StateStats] | None = None


def build(machine: StateMachine, events: Sequence[HistoryEvent] | None = None) -> Graph:
    """The graph of ``machine``; with ``events``, each node's :class:`StateStats` too."""
    graph = Graph()
    _add_machine(graph, machine, (), graph.top)
    start = graph.by_state.get(((), machine.start_at))
    if start is not None:
        graph.edges.insert(0, Edge("start", start, "start"))
    if events is not None:
        graph.stats = state_stats(graph, events)
    return graph


def _add_machine(graph: Graph, machine: StateMachine, path: MachinePath, group: Group) -> None:
    for name, state in machine.states.items():
        node_id = f"n{len(graph.nodes) + 1}"
        graph.nodes[node_id] = Node(node_id, name, _type_of(state), path)
        graph.by_state[(path, name)] = node_id
        group.nodes.append(node_id)
    for name, state in machine.states.items():
        node_id = graph.by_state[(path, name)]
        for target, kind, label in _edges_of(state):
            target_id = graph.by_state.get((path, target))
            if target_id is not None:
                graph.edges.append(Edge(node_id, target_id, kind, label))
        if state.end or (state.next is None and _type_of(state) in ("Succeed", "Fail")):
            graph.edges.append(Edge(node_id, "end" if not path else f"end:{node_id}", "end"))
        subs: list[tuple[StateMachine, int, str]] = []
        if isinstance(state, Parallel):
            subs = [(b, i, f"{name}: branch {i + 1}") for i, b in enumerate(state.branches)]
        elif isinstance(state, Map):
            subs = [(state.processor, -1, f"{name}: ItemProcessor")]
        for sub, index, label in subs:
            sub_path = (*path, (name, index))
            child = Group(id=f"g{node_id}_{index + 1}", label=label, path=sub_path)
            group.groups.append(child)
            _add_machine(graph, sub, sub_path, child)
            start = graph.by_state.get((sub_path, sub.start_at))
            if start is not None:
                branch_label = "each item" if index < 0 else f"branch {index + 1}"
                graph.edges.append(Edge(node_id, start, "branch", branch_label))


def _type_of(state: State) -> str:
    return type(state).__name__


def _edges_of(state: State) -> Iterator[tuple[str, EdgeKind, str]]:
    if isinstance(state, Choice):
        for rule in state.choices:
            if rule.next is not None:
                yield rule.next, "choice", rule_label(rule.source)
        if state.default is not None:
            yield state.default, "default", "Default"
    elif state.next is not None:
        yield state.next, "next", ""
    if isinstance(state, Task | Parallel | Map):
        for catcher in state.catch:
            yield catcher.next, "catch", "Catch: " + ", ".join(catcher.error_equals)


_COMPARATORS: Final = (
    "And",
    "Or",
    "Not",
)


def rule_label(source: JSON, limit: int = 60) -> str:
    """A short text for a Choice rule: ``$.x NumericGreaterThan 5``, a JSONata condition, or
    compact JSON for compound rules."""
    if not isinstance(source, dict):
        return _clip(json.dumps(source), limit)
    if "Condition" in source:
        return _clip(str(source["Condition"]), limit)
    if "Variable" in source:
        ops = [k for k in source if k not in ("Variable", "Next", "Assign", "Output", "Comment")]
        if len(ops) == 1:
            value = source[ops[0]]
            shown = (
                value if isinstance(value, str) and ops[0].endswith("Path") else json.dumps(value)
            )
            return _clip(f"{source['Variable']} {ops[0]} {shown}", limit)
    rest = {k: v for k, v in source.items() if k not in ("Next", "Assign", "Output", "Comment")}
    return _clip(json.dumps(rest, separators=(",", ":")), limit)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- execution overlay ----------------------------------------------------------------------------


def state_stats(graph: Graph, events: Sequence[HistoryEvent]) -> dict[str, StateStats]:
    """Per node: what happened to the state in the execution ``events`` records."""
    stats = {node_id: StateStats() for node_id in graph.nodes}
    paths: dict[str, MachinePath] = {"": ()}
    current: dict[str, str] = {}
    last_failure: dict[str, str] = {}
    running = not events or events[-1].type not in (
        "ExecutionSucceeded",
        "ExecutionFailed",
        "ExecutionTimedOut",
        "ExecutionAborted",
    )
    for event in events:
        frame = event.frame
        kind = event.type
        if kind.endswith("StateEntered"):
            current[frame] = str(event.details.get("name", ""))
            last_failure.pop(frame, None)
        name = current.get(frame)
        node_id = graph.by_state.get((paths.get(frame, ()), name or "")) if name else None
        if kind in ("ParallelStateStarted", "MapIterationStarted") and name is not None:
            base = f"{frame}/" if frame else ""
            if kind == "ParallelStateStarted":
                count = int(event.details.get("statemillBranches", 0)) or _branch_count(
                    graph, paths.get(frame, ()), name
                )
                for index in range(count):
                    paths[f"{base}{event.id}:{index}"] = (*paths.get(frame, ()), (name, index))
            else:
                run = _map_run(events, event)
                index = int(event.details.get("index", 0))
                paths[f"{base}{run}:{index}"] = (*paths.get(frame, ()), (name, -1))
        if node_id is None:
            continue
        stat = stats[node_id]
        if kind.endswith("StateEntered"):
            stat.entered += 1
            if kind == "FailStateEntered":
                stat.failed += 1
        elif kind.endswith("StateExited"):
            stat.exited += 1
            if frame in last_failure:
                stat.caught += 1
                stat.failed -= 1
                last_failure.pop(frame)
        elif kind in ("ExecutionFailed", "ExecutionTimedOut") and frame not in last_failure:
            # The state the execution ended in failed without a Task failure event (e.g. a
            # path that did not resolve): it is the failing state.
            if stat.entered > stat.exited + stat.failed:
                stat.failed += 1
        elif kind in _FAILURES or kind == "MapIterationFailed":
            if "statemillRetryDelay" in event.details:
                stat.retries += 1
            elif kind != "MapIterationFailed" and frame not in last_failure:
                stat.failed += 1
                last_failure[frame] = kind
    if running:
        for frame, name in current.items():
            node_id = graph.by_state.get((paths.get(frame, ()), name))
            if node_id is not None:
                stat = stats[node_id]
                if stat.entered > stat.exited + stat.failed:
                    stat.open = 1
    for stat in stats.values():
        stat.failed = max(stat.failed, 0)
    return stats


def _branch_count(graph: Graph, path: MachinePath, name: str) -> int:
    return len(
        {
            p[-1][1]
            for (p, _), _n in graph.by_state.items()
            if p and p[:-1] == path and p[-1][0] == name
        }
    )


def _map_run(events: Sequence[HistoryEvent], iteration: HistoryEvent) -> int:
    return max(
        (
            e.id
            for e in events
            if e.id < iteration.id and e.frame == iteration.frame and e.type == "MapStateStarted"
        ),
        default=0,
    )


# -- Mermaid --------------------------------------------------------------------------------------


def to_mermaid(graph: Graph) -> str:
    """A Mermaid ``flowchart``."""
    lines = ["flowchart TD", '    start(("start"))', '    end_(("end"))']
    lines.extend(_mermaid_group(graph, graph.top, "    "))
    arrows = {"next": "-->", "choice": "-->", "default": "-->", "catch": "-.->", "branch": "==>"}
    for edge in graph.edges:
        source = "start" if edge.source == "start" else edge.source
        if edge.kind == "end":
            if edge.target != "end":
                continue  # the end of a branch/iteration: the group ends there
            lines.append(f"    {source} --> end_")
            continue
        arrow = arrows.get(edge.kind, "-->")
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {source} {arrow}{label} {edge.target}")
    if graph.stats is not None:
        for outcome, (fill, stroke) in OUTCOME_COLOURS.items():
            lines.append(
                f"    classDef {_css(outcome)} fill:{fill},stroke:{stroke},stroke-width:2px"
            )
        for node_id, stat in graph.stats.items():
            lines.append(f"    class {node_id} {_css(stat.outcome)}")
    return "\n".join(lines) + "\n"


def _mermaid_group(graph: Graph, group: Group, indent: str) -> Iterator[str]:
    for node_id in group.nodes:
        yield f'{indent}{node_id}["{_mermaid_text(_node_label(graph, node_id), br="<br/>")}"]'
    for child in group.groups:
        yield f'{indent}subgraph {child.id}["{_mermaid_text(child.label)}"]'
        yield f"{indent}    direction TB"
        yield from _mermaid_group(graph, child, indent + "    ")
        yield f"{indent}end"


def _mermaid_text(text: str, br: str = " ") -> str:
    return html.escape(text, quote=True).replace("\n", br)


def _css(outcome: str) -> str:
    return outcome.replace(" ", "_")


def _node_label(graph: Graph, node_id: str) -> str:
    node = graph.nodes[node_id]
    label = f"{node.name}\n{node.type}"
    if graph.stats is not None:
        stat = graph.stats[node_id]
        label += f"\n{stat.outcome}"
        counts = stat.counts()
        if counts:
            label += f" ({counts})"
    return label


# -- DOT ------------------------------------------------------------------------------------------


def to_dot(graph: Graph) -> str:
    """A Graphviz ``digraph`` (clusters for Parallel branches and Map processors)."""
    lines = [
        "digraph statemachine {",
        "    rankdir=TB;",
        '    node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
        '    start [shape=circle, label="start", fillcolor="#333333", fontcolor="#ffffff"];',
        '    end_ [shape=doublecircle, label="end", fillcolor="#333333", fontcolor="#ffffff"];',
    ]
    lines.extend(_dot_group(graph, graph.top, "    "))
    for edge in graph.edges:
        if edge.kind == "end":
            if edge.target == "end":
                lines.append(f"    {edge.source} -> end_;")
            continue
        attrs = []
        if edge.label:
            attrs.append(f'label="{_dot_text(edge.label)}"')
        if edge.kind == "catch":
            attrs.append('style=dashed, color="#c62828", fontcolor="#c62828"')
        elif edge.kind == "branch":
            attrs.append('style=bold, color="#555555"')
        elif edge.kind == "default":
            attrs.append('style=solid, color="#777777"')
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {edge.source} -> {edge.target}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_group(graph: Graph, group: Group, indent: str) -> Iterator[str]:
    for node_id in group.nodes:
        attrs = [f'label="{_dot_text(_node_label(graph, node_id))}"']
        if graph.stats is not None:
            fill, stroke = OUTCOME_COLOURS[graph.stats[node_id].outcome]
            attrs.append(f'fillcolor="{fill}", color="{stroke}", penwidth=2')
        yield f"{indent}{node_id} [{', '.join(attrs)}];"
    for child in group.groups:
        yield f"{indent}subgraph cluster_{child.id} {{"
        yield f'{indent}    label="{_dot_text(child.label)}";'
        yield f'{indent}    style="rounded,dashed"; color="#888888";'
        yield from _dot_group(graph, child, indent + "    ")
        yield f"{indent}}}"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


# -- SVG (self-made layout, no Graphviz needed) ---------------------------------------------------

_W: Final = 190
_H: Final = 54
_GAP_X: Final = 30
_GAP_Y: Final = 46
_PAD: Final = 16


#: Edge labels (font-size 10): an upper bound of a character's width, the box's height.
_LABEL_CHAR_W: Final = 6.2
_LABEL_H: Final = 14
_LABEL_PAD: Final = 3


@dataclass
class _Box:
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0

    def overlaps(self, other: _Box) -> bool:
        return (
            self.x < other.x + other.w
            and other.x < self.x + self.w
            and self.y < other.y + other.h
            and other.y < self.y + self.h
        )


def _place_labels(
    wanted: Sequence[tuple[float, float, str]], obstacles: Sequence[_Box]
) -> list[_Box]:
    """A box for each edge label (anchor x, y and text), none overlapping another.

    Greedy, in order: the first free spot near the anchor (right of it, then shifted up, down
    and left, row by row) that overlaps no label placed before and no state box; when the
    neighbourhood is full, the first spot below every label that no state covers (so the loop
    ends: below all of them nothing is placed yet).
    """
    placed: list[_Box] = []
    for x, y, text in wanted:
        w = len(text) * _LABEL_CHAR_W + 2 * _LABEL_PAD
        h = float(_LABEL_H)
        step = h + 2
        candidates = [
            _Box(x + dx, y - h / 2 + dy * step, w, h)
            for dy in (0, 1, -1, 2, -2, 3, -3, 4, -4)
            for dx in (4, 4 - w / 2, 4 - w)
        ]
        free = next(
            (
                box
                for box in candidates
                if not any(box.overlaps(other) for other in (*placed, *obstacles))
            ),
            None,
        )
        if free is None:
            low = max(other.y + other.h for other in placed) + 2 if placed else y
            free = _Box(x + 4, low, w, h)
            while any(free.overlaps(other) for other in obstacles):
                free.y += step
        placed.append(free)
    return placed


def to_svg(graph: Graph) -> str:
    """An SVG drawing: states in rows by distance from the start, nested machines as framed
    groups below their Parallel/Map state; edges as straight lines (Catch dashed, red), each
    label on a box that overlaps no other label (:func:`_place_labels`)."""
    boxes: dict[str, _Box] = {}
    frames: list[tuple[_Box, str]] = []
    width, height = _layout_group(graph, graph.top, 0, 0, boxes, frames)
    drawn: list[tuple[Edge, list[tuple[float, float]]]] = []
    for edge in graph.edges:
        if edge.kind in ("end", "start"):
            continue
        source, target = boxes.get(edge.source), boxes.get(edge.target)
        if source is not None and target is not None:
            drawn.append((edge, _route(source, target)))
    anchors = []
    for edge, points in drawn:
        if edge.label:
            (x1, y1), (x2, y2) = points[1:3] if len(points) > 2 else (points[0], points[-1])
            anchors.append(((x1 + x2) / 2, (y1 + y2) / 2, edge.label))
    placed = _place_labels(anchors, list(boxes.values()))
    labels = iter(placed)
    for box in placed:
        width, height = max(width, box.x + box.w), max(height, box.y + box.h)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="statemill-graph" '
        f'width="{width + 2 * _PAD:.0f}" '
        f'height="{height + 2 * _PAD:.0f}" viewBox="{-_PAD} {-_PAD} {width + 2 * _PAD:.0f} '
        f'{height + 2 * _PAD:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        "<defs>"
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#555"/></marker>'
        '<marker id="arrow-catch" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#c62828"/></marker></defs>',
    ]
    for box, label in frames:
        parts.append(
            f'<g class="group"><rect x="{box.x:.0f}" y="{box.y:.0f}" width="{box.w:.0f}" '
            f'height="{box.h:.0f}" rx="8" fill="none" stroke="#999" stroke-dasharray="5,4"/>'
            f'<text x="{box.x + 8:.0f}" y="{box.y + 15:.0f}" fill="#555">'
            f"{html.escape(label)}</text></g>"
        )
    label_parts: list[str] = []  # drawn last: above every line and state
    for edge, points in drawn:
        catch = edge.kind == "catch"
        colour = "#c62828" if catch else "#555"
        dash = ' stroke-dasharray="6,4"' if catch else ""
        marker = "arrow-catch" if catch else "arrow"
        path = " ".join(f"{x:.0f},{y:.0f}" for x, y in points)
        parts.append(
            f'<g class="edge edge-{edge.kind}"><polyline points="{path}" fill="none" '
            f'stroke="{colour}" stroke-width="1.5"{dash} marker-end="url(#{marker})"/></g>'
        )
        if edge.label:
            box = next(labels)
            label_parts.append(
                f'<g class="edge-label edge-{edge.kind}">'
                f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" '
                f'height="{box.h:.1f}" rx="2" fill="#ffffff" fill-opacity="0.9"/>'
                f'<text x="{box.x + _LABEL_PAD:.1f}" y="{box.y + box.h - 3.5:.1f}" '
                f'fill="{colour}" font-size="10">{html.escape(edge.label)}</text></g>'
            )
    for node_id, box in boxes.items():
        node = graph.nodes[node_id]
        outcome = graph.stats[node_id].outcome if graph.stats is not None else None
        fill, stroke = OUTCOME_COLOURS[outcome] if outcome else ("#ffffff", "#555555")
        counts = graph.stats[node_id].counts() if graph.stats is not None else ""
        second = (
            node.type + (f" · {outcome}" if outcome else "") + (f" ({counts})" if counts else "")
        )
        parts.append(
            f'<g class="state" data-state="{html.escape(node.name)}" '
            f'data-outcome="{outcome or ""}">'
            f"<title>{html.escape(node.name)}: {html.escape(second)}</title>"
            f'<rect x="{box.x:.0f}" y="{box.y:.0f}" width="{box.w:.0f}" height="{box.h:.0f}" '
            f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="2"/>'
            f'<text x="{box.x + box.w / 2:.0f}" y="{box.y + 22:.0f}" text-anchor="middle" '
            f'font-weight="bold">{html.escape(_clip(node.name, 26))}</text>'
            f'<text x="{box.x + box.w / 2:.0f}" y="{box.y + 40:.0f}" text-anchor="middle" '
            f'font-size="10" fill="#333">{html.escape(_clip(second, 34))}</text></g>'
        )
    parts.extend(label_parts)
    parts.append("</svg>")
    return "".join(parts)


def _route(source: _Box, target: _Box) -> list[tuple[float, float]]:
    """Edge points: straight down to the next row; along the left side when rows (or nested
    groups) lie between; sideways within a row; back edges up the right side."""
    s_mid, t_mid = source.y + source.h / 2, target.y + target.h / 2
    if abs(target.y - source.y) < 1:
        if target.x > source.x:
            return [(source.x + source.w, s_mid), (target.x, t_mid)]
        return [(source.x, s_mid), (target.x + target.w, t_mid)]
    if target.y < source.y:
        side = max(source.x + source.w, target.x + target.w) + 12
        return [
            (source.x + source.w, s_mid),
            (side, s_mid),
            (side, t_mid),
            (target.x + target.w, t_mid),
        ]
    if target.y - (source.y + source.h) > _GAP_Y + 1:
        side = min(source.x, target.x) - 12
        return [(source.x, s_mid), (side, s_mid), (side, t_mid), (target.x, t_mid)]
    return [(source.x + source.w / 2, source.y + source.h), (target.x + target.w / 2, target.y)]


def _layout_group(
    graph: Graph,
    group: Group,
    x0: float,
    y0: float,
    boxes: dict[str, _Box],
    frames: list[tuple[_Box, str]],
) -> tuple[float, float]:
    """Place ``group``'s nodes in rows at (x0, y0); returns the (width, height) used."""
    members = set(group.nodes)
    rank = dict.fromkeys(group.nodes, 0)
    if group.nodes:
        # Longest distance from the group's first node over forward edges (BFS order).
        order = [group.nodes[0]]
        seen = {group.nodes[0]}
        adjacency: dict[str, list[str]] = {n: [] for n in group.nodes}
        for edge in graph.edges:
            if edge.source in members and edge.target in members and edge.kind != "end":
                adjacency[edge.source].append(edge.target)
        index = 0
        while index < len(order):
            current = order[index]
            index += 1
            for target in adjacency[current]:
                if target not in seen:
                    seen.add(target)
                    rank[target] = rank[current] + 1
                    order.append(target)
        for node_id in group.nodes:
            if node_id not in seen:
                rank[node_id] = max(rank.values(), default=0) + 1
    rows: dict[int, list[str]] = {}
    for node_id in group.nodes:
        rows.setdefault(rank[node_id], []).append(node_id)
    children_of: dict[str, list[Group]] = {}
    for child in group.groups:
        owner = graph.by_state.get((child.path[:-1], child.path[-1][0]))
        if owner is not None:
            children_of.setdefault(owner, []).append(child)
    y = y0
    width = 0.0
    for level in sorted(rows):
        x = x0
        row_height = float(_H)
        for node_id in rows[level]:
            boxes[node_id] = _Box(x, y, _W, _H)
            x += _W + _GAP_X
        below = y + _H + _GAP_Y / 2
        extra = 0.0
        gx = x0
        for node_id in rows[level]:
            for child in children_of.get(node_id, []):
                w, h = _layout_group(graph, child, gx + _PAD, below + 24, boxes, frames)
                frames.append((_Box(gx, below, w + 2 * _PAD, h + 24 + _PAD), child.label))
                gx += w + 2 * _PAD + _GAP_X
                extra = max(extra, h + 24 + _PAD + _GAP_Y / 2)
        width = max(width, x - x0 - _GAP_X, gx - x0 - _GAP_X)
        y += row_height + _GAP_Y + extra
    return max(width, _W), max(y - y0 - _GAP_Y, _H)


def render(graph: Graph, fmt: str) -> str:
    """The graph as text in one of :data:`FORMATS`.

    Raises:
        ValueError: ``fmt`` is ``svg`` and Graphviz's ``dot`` is not on PATH or fails.
    """
    if fmt == "mermaid":
        return to_mermaid(graph)
    if fmt == "dot":
        return to_dot(graph)
    if fmt == "svg-basic":
        return to_svg(graph) + "\n"
    dot = shutil.which("dot")
    if dot is None:
        raise ValueError("--format svg needs Graphviz (`dot`); try --format svg-basic")
    rendered = subprocess.run(
        [dot, "-Tsvg"], input=to_dot(graph), capture_output=True, text=True, check=False
    )
    if rendered.returncode != 0:
        raise ValueError(f"dot failed: {rendered.stderr.strip()}")
    return rendered.stdout
