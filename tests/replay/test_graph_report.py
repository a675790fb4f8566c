"""Graphs (Mermaid, DOT, SVG) of definitions and executions, and the HTML report."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from runtime import load_history
from runtime.cli import main
from runtime.core.events import HistoryEvent
from runtime.definition.load import load_definition
from runtime.tools.graph import build, rule_label, to_dot, to_mermaid, to_svg
from runtime.tools.report import render_report

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "golden"
EXAMPLES = HERE.parent.parent / "examples"

PARALLEL = {
    "StartAt": "P",
    "States": {
        "P": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
                {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}],
            "Next": "Done",
        },
        "Oops": {"Type": "Fail", "Error": "E"},
        "Done": {"Type": "Succeed"},
    },
}


def golden(name: str) -> tuple[Any, list[Any], str]:
    machine_line, execution_line = (GOLDEN / name).read_text(encoding="utf-8").splitlines()
    definition = json.loads(machine_line)["stateMachine"]["definition"]
    item = json.loads(execution_line)
    return (
        load_definition(definition),
        load_history(item["events"]),
        item["execution"]["execution_arn"],
    )


def test_mermaid_of_a_choice_labels_each_rule() -> None:
    text = to_mermaid(build(load_definition((EXAMPLES / "order.asl.json").read_text())))

    assert text.startswith("flowchart TD\n")
    assert '-->|"$.stock.available BooleanEquals true"|' in text
    assert '-->|"Default"|' in text
    assert "classDef" not in text  # no execution, no colours


def test_parallel_branches_and_catch_edges() -> None:
    graph = build(load_definition(json.dumps(PARALLEL)))
    mermaid, dot = to_mermaid(graph), to_dot(graph)

    assert mermaid.count("subgraph ") == 2
    assert '-.->|"Catch: States.ALL"|' in mermaid
    assert dot.count("subgraph cluster_") == 2
    assert re.search(r'-> n\d+ \[label="Catch: States.ALL", style=dashed', dot)
    assert 'label="branch 1"' in dot
    assert 'label="branch 2"' in dot


def test_map_processor_is_a_nested_group_coloured_by_the_execution() -> None:
    machine, events, _ = golden("billing-retries-exhausted.jsonl")
    graph = build(machine, events)
    assert graph.stats is not None
    outcome = {graph.nodes[n].name: s.outcome for n, s in graph.stats.items()}
    send = next(s for n, s in graph.stats.items() if graph.nodes[n].name == "SendInvoice")

    assert outcome == {
        "LoadCustomers": "succeeded",
        "BillCustomers": "failed",
        "Summarize": "not reached",
        "ComputePrice": "succeeded",
        "GenerateInvoice": "succeeded",
        "SendInvoice": "failed",
        "SendByPost": "not reached",
        "Invoiced": "not reached",
    }
    assert (send.entered, send.retries, send.failed) == (1, 3, 1)
    assert 'subgraph gn2_0["BillCustomers: ItemProcessor"]' in to_mermaid(graph)
    assert "class n6 failed" in to_mermaid(graph)


def test_caught_and_in_progress_outcomes() -> None:
    machine, events, _ = golden("billing-retry-and-catch.jsonl")
    caught = build(machine, events)
    running = build(machine, events[:12])
    assert caught.stats is not None
    assert running.stats is not None

    by_name = {caught.nodes[n].name: s for n, s in caught.stats.items()}
    assert by_name["SendInvoice"].outcome == "caught"
    assert by_name["SendInvoice"].entered == 8
    assert by_name["SendByPost"].outcome == "succeeded"
    assert {running.nodes[n].name: s.outcome for n, s in running.stats.items()}[
        "BillCustomers"
    ] == "in progress"


def test_a_state_that_fails_without_a_task_failure_is_the_failed_one() -> None:
    machine = load_definition(
        {
            "StartAt": "Load",
            "States": {
                "Load": {"Type": "Pass", "Next": "Use"},
                "Use": {"Type": "Pass", "Parameters": {"x.$": "$.missing"}, "End": True},
            },
        }
    )
    events = [
        _event(1, "ExecutionStarted", {"input": "{}"}),
        _event(2, "PassStateEntered", {"name": "Load", "input": "{}"}),
        _event(3, "PassStateExited", {"name": "Load", "output": "{}", "statemillNext": "Use"}),
        _event(4, "PassStateEntered", {"name": "Use", "input": "{}"}),
        _event(5, "ExecutionFailed", {"error": "States.Runtime", "cause": "path"}),
    ]

    outcomes = {node.name: stat.outcome for node, stat in _named(build(machine, events))}

    assert outcomes == {"Load": "succeeded", "Use": "failed"}


def _event(event_id: int, kind: str, details: dict[str, Any]) -> HistoryEvent:
    return HistoryEvent(id=event_id, type=kind, timestamp=0.0, details=details)


def _named(graph: Any) -> list[tuple[Any, Any]]:
    assert graph.stats is not None
    return [(graph.nodes[node_id], stat) for node_id, stat in graph.stats.items()]


def test_svg_is_well_formed_and_has_every_state() -> None:
    machine, events, _ = golden("billing-retries-exhausted.jsonl")

    svg = to_svg(build(machine, events))

    root = ElementTree.fromstring(svg)
    states = root.findall(".//{http://www.w3.org/2000/svg}g[@class='state']")
    assert sorted(g.get("data-state") or "" for g in states) == sorted(machine_names(machine))
    assert {g.get("data-outcome") for g in states} == {"succeeded", "failed", "not reached"}


def machine_names(machine: Any) -> list[str]:
    names = []
    for name, state in machine.states.items():
        names.append(name)
        for sub in getattr(state, "branches", ()):
            names += machine_names(sub)
        if hasattr(state, "processor"):
            names += machine_names(state.processor)
    return names


def test_rule_labels() -> None:
    assert rule_label({"Variable": "$.x", "NumericGreaterThan": 5, "Next": "A"}) == (
        "$.x NumericGreaterThan 5"
    )
    assert rule_label({"Condition": "{% $x > 1 %}", "Next": "A"}) == "{% $x > 1 %}"
    assert rule_label({"And": [{"Variable": "$.a", "IsPresent": True}], "Next": "A"}) == (
        '{"And":[{"Variable":"$.a","IsPresent":true}]}'
    )


def test_report_is_self_contained_and_shows_the_failure() -> None:
    machine, events, arn = golden("billing-retries-exhausted.jsonl")

    page = render_report(machine, events, execution_arn=arn)

    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=\"https?:", page)
    assert "FAILED in state &#x27;SendInvoice&#x27;" in page
    assert "Billing.EmailBounced" in page
    assert "3 retries" in page
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page
    assert page.count('<tr class="') >= len(events)


def test_graph_and_report_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    assert (
        main(["import", str(GOLDEN / "billing-retries-exhausted.jsonl"), "--store", str(db)]) == 0
    )
    _, _, arn = golden("billing-retries-exhausted.jsonl")
    billing = str(EXAMPLES / "billing.asl.json")
    capsys.readouterr()

    assert main(["graph", billing, "--execution", arn, "--store", str(db)]) == 0
    mermaid = capsys.readouterr().out
    assert main(["graph", billing, "--format", "dot"]) == 0
    dot = capsys.readouterr().out
    assert main(["graph", billing, "--format", "svg-basic"]) == 0
    svg = capsys.readouterr().out
    assert main(["report", arn, "--store", str(db), "-o", str(tmp_path / "r.html")]) == 0
    printed = json.loads(capsys.readouterr().out)

    assert "class n6 failed" in mermaid
    assert dot.startswith("digraph statemachine {")
    assert svg.startswith("<svg")
    assert printed == {
        "report": str(tmp_path / "r.html"),
        "events": len(golden("billing-retries-exhausted.jsonl")[1]),
    }
    assert "Billing.EmailBounced" in (tmp_path / "r.html").read_text()


def test_graph_svg_needs_graphviz(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["graph", str(EXAMPLES / "order.asl.json"), "--format", "svg"])
    out, err = capsys.readouterr()

    if shutil.which("dot") is None:
        assert code == 2
        assert "needs Graphviz" in err
    else:
        assert code == 0
        assert "<svg" in out


def test_svg_of_parallel_branches_has_a_group_per_branch() -> None:
    svg = to_svg(build(load_definition(json.dumps(PARALLEL))))

    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    groups = [g.findtext(f"{ns}text") for g in root.iter(f"{ns}g") if g.get("class") == "group"]
    catch_edges = [g for g in root.iter(f"{ns}g") if g.get("class") == "edge edge-catch"]
    assert sorted(str(g) for g in groups) == ["P: branch 1", "P: branch 2"]
    assert len(catch_edges) == 1


# -- edge labels never overlap (issue 16, part 6) -------------------------------------------------

FIVE_RULES = {
    "StartAt": "Route",
    "States": {
        "Route": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.kind", "StringEquals": f"kind-number-{n}", "Next": f"Handle{n}"}
                for n in range(5)
            ],
            "Default": "Other",
        },
        **{f"Handle{n}": {"Type": "Succeed"} for n in range(5)},
        "Other": {"Type": "Fail", "Error": "Unknown"},
    },
}


def _label_boxes(svg: str) -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) of each edge label's box in the SVG: what the reader sees."""
    ns = "{http://www.w3.org/2000/svg}"
    boxes = []
    for group in ElementTree.fromstring(svg).iter(f"{ns}g"):
        if "edge-label" in (group.get("class") or "").split():
            rect = group.find(f"{ns}rect")
            assert rect is not None
            boxes.append(tuple(float(rect.get(key, "0")) for key in ("x", "y", "width", "height")))
    return boxes  # type: ignore[return-value]


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@pytest.mark.parametrize(
    "definition",
    [
        *sorted(EXAMPLES.glob("*.json")),
        pytest.param(FIVE_RULES, id="choice-with-five-rules"),
    ],
    ids=str,
)
def test_no_two_edge_labels_overlap(definition: Path | dict[str, Any]) -> None:
    text = definition.read_text() if isinstance(definition, Path) else json.dumps(definition)
    graph = build(load_definition(text))
    svg = to_svg(graph)

    boxes = _label_boxes(svg)
    assert len(boxes) == sum(1 for edge in graph.edges if edge.label and edge.kind != "end")
    overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if _overlap(a, b)]
    assert overlapping == []
    # every label fits inside the drawing
    root = ElementTree.fromstring(svg)
    left, top, width, height = (float(v) for v in root.get("viewBox", "").split())
    for x, y, w, h in boxes:
        assert left <= x
        assert x + w <= left + width
        assert top <= y
        assert y + h <= top + height


def test_the_five_rule_choice_labels_every_rule() -> None:
    svg = to_svg(build(load_definition(json.dumps(FIVE_RULES))))
    for n in range(5):
        assert f"kind-number-{n}" in svg
    assert len(_label_boxes(svg)) == 6  # five rules and Default
