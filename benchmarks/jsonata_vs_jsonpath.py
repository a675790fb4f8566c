"""JSONata mode vs JSONPath mode: the same 10-state machine, transitions per second, same run.

The machine prepares an order, prices it in a Task, branches in a Choice, tags it, ships it in a
second Task, waits 0 s, keeps a running total in a workflow variable and succeeds. One file
writes it with ``Parameters``/``ResultSelector``/``ResultPath``/intrinsics (JSONPath), the other
with ``Arguments``/``Output``/``Assign`` expressions (JSONata); both give the same output.

What is measured is the pure core (``decide``/``evolve``, where the languages are evaluated), with
the Task handlers answered in-process: no store, no scheduler, no clock. So the figures isolate the
cost of the query language; the shell adds the same work to both. The two modes alternate over
several rounds and the best round of each is reported (the least disturbed by the machine).

Run: ``python -m benchmarks.jsonata_vs_jsonpath [--executions N] [--rounds R]``. Prints a table
and writes ``benchmarks/results/jsonata_vs_jsonpath.json`` with the machine's facts.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from runtime.core.decide import decide, start_event  # noqa: E402
from runtime.core.effects import Incoming, RunTask, TaskResult, Wake  # noqa: E402
from runtime.core.evolve import fold  # noqa: E402
from runtime.definition import load_definition  # noqa: E402
from runtime.definition.model import StateMachine  # noqa: E402
from runtime.lang import jsonata  # noqa: E402

JSON = Any
RESULTS = Path(__file__).resolve().parent / "results"

JSONPATH: dict[str, JSON] = {
    "QueryLanguage": "JSONPath",
    "StartAt": "Prepare",
    "States": {
        "Prepare": {
            "Type": "Pass",
            "Parameters": {
                "id.$": "$.order.id",
                "lines.$": "$.order.lines",
                "customer.$": "$.customer.name",
            },
            "Assign": {"customer.$": "$.customer", "count": 0},
            "Next": "Price",
        },
        "Price": {
            "Type": "Task",
            "Resource": "price",
            "Parameters": {"lines.$": "$.lines"},
            "ResultSelector": {"total.$": "$.total", "currency.$": "$.currency"},
            "ResultPath": "$.price",
            "Next": "Check",
        },
        "Check": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.price.total", "NumericGreaterThan": 100, "Next": "Big"}],
            "Default": "Small",
        },
        "Big": {
            "Type": "Pass",
            "Result": "big",
            "ResultPath": "$.size",
            "Next": "Tag",
        },
        "Small": {
            "Type": "Pass",
            "Result": "small",
            "ResultPath": "$.size",
            "Next": "Tag",
        },
        "Tag": {
            "Type": "Pass",
            "Parameters": {
                "id.$": "$.id",
                "label.$": "States.Format('{}-{}-{}', $.id, $.size, $customer)",
                "total.$": "$.price.total",
            },
            "Assign": {"count.$": "States.MathAdd($count, 1)"},
            "Next": "Ship",
        },
        "Ship": {
            "Type": "Task",
            "Resource": "ship",
            "Parameters": {"id.$": "$.id", "label.$": "$.label"},
            "ResultPath": "$.shipment",
            "Next": "Pause",
        },
        "Pause": {"Type": "Wait", "Seconds": 0, "Next": "Summarize"},
        "Summarize": {
            "Type": "Pass",
            "Parameters": {
                "id.$": "$.id",
                "total.$": "$.total",
                "tracking.$": "$.shipment.tracking",
                "steps.$": "$count",
            },
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}

JSONATA: dict[str, JSON] = {
    "QueryLanguage": "JSONata",
    "StartAt": "Prepare",
    "States": {
        "Prepare": {
            "Type": "Pass",
            "Output": {
                "id": "{% $states.input.order.id %}",
                "lines": "{% $states.input.order.lines %}",
                "customer": "{% $states.input.customer.name %}",
            },
            "Assign": {"customer": "{% $states.input.customer.name %}", "count": 0},
            "Next": "Price",
        },
        "Price": {
            "Type": "Task",
            "Resource": "price",
            "Arguments": {"lines": "{% $states.input.lines %}"},
            "Output": "{% $merge([$states.input, {'price': {'total': $states.result.total, "
            "'currency': $states.result.currency}}]) %}",
            "Next": "Check",
        },
        "Check": {
            "Type": "Choice",
            "Choices": [{"Condition": "{% $states.input.price.total > 100 %}", "Next": "Big"}],
            "Default": "Small",
        },
        "Big": {
            "Type": "Pass",
            "Output": "{% $merge([$states.input, {'size': 'big'}]) %}",
            "Next": "Tag",
        },
        "Small": {
            "Type": "Pass",
            "Output": "{% $merge([$states.input, {'size': 'small'}]) %}",
            "Next": "Tag",
        },
        "Tag": {
            "Type": "Pass",
            "Output": {
                "id": "{% $states.input.id %}",
                "label": "{% $states.input.id & '-' & $states.input.size & '-' & $customer %}",
                "total": "{% $states.input.price.total %}",
            },
            "Assign": {"count": "{% $count + 1 %}"},
            "Next": "Ship",
        },
        "Ship": {
            "Type": "Task",
            "Resource": "ship",
            "Arguments": {"id": "{% $states.input.id %}", "label": "{% $states.input.label %}"},
            "Output": "{% $merge([$states.input, {'shipment': $states.result}]) %}",
            "Next": "Pause",
        },
        "Pause": {"Type": "Wait", "Seconds": 0, "Next": "Summarize"},
        "Summarize": {
            "Type": "Pass",
            "Output": {
                "id": "{% $states.input.id %}",
                "total": "{% $states.input.total %}",
                "tracking": "{% $states.input.shipment.tracking %}",
                "steps": "{% $count %}",
            },
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}

INPUT: JSON = {
    "order": {
        "id": "o-1001",
        "lines": [{"sku": f"sku-{i}", "qty": i % 3 + 1, "price": 9.5 + i} for i in range(8)],
    },
    "customer": {"name": "Ada", "tier": "gold"},
}


def handle(task: RunTask) -> JSON:
    """The two Task handlers, answered in-process."""
    if task.handler_name == "price":
        lines = task.input["lines"]
        total = sum(line["qty"] * line["price"] for line in lines)
        return {"total": total, "currency": "EUR", "lines": len(lines)}
    return {"tracking": f"T-{task.input['id']}", "carrier": "post"}


def execute(machine: StateMachine, index: int) -> tuple[JSON, int]:
    """One execution through the pure core; returns (output, states entered).

    (In JSONPath, ``Assign`` reads the state's result, so Prepare's ``$.customer`` is the name
    its Parameters selected; in JSONata it reads ``$states.input``.)
    """
    first = start_event(
        execution_arn=f"arn:aws:states:us-east-1:123456789012:execution:bench:{index}",
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:bench",
        name=str(index),
        input=INPUT,
        now=1_700_000_000.0,
    )
    state = fold([first])
    incoming: Incoming = Wake(now=1_700_000_000.0, seed=index)
    entered = 0
    while True:
        decision = decide(machine, state, incoming)
        entered += sum(1 for event in decision.events if event.type.endswith("StateEntered"))
        if state.is_terminal:
            break
        if decision.tasks:
            task = decision.tasks[0]
            incoming = TaskResult(
                now=incoming.now,
                frame=task.frame,
                scheduled_id=task.scheduled_id,
                outcome="succeeded",
                output=handle(task),
                seed=index,
            )
        else:
            assert decision.wake_at is not None, "the execution stalled"
            incoming = Wake(now=decision.wake_at, seed=index)
    assert state.status == "SUCCEEDED", (state.status, state.error, state.cause)
    return state.output, entered


def measure(machine: StateMachine, executions: int) -> tuple[float, int]:
    """(seconds, transitions) for ``executions`` executions."""
    transitions = 0
    started = time.perf_counter()
    for index in range(executions):
        _, entered = execute(machine, index)
        transitions += entered
    return time.perf_counter() - started, transitions


def machine_facts() -> dict[str, JSON]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "jsonata_engine": jsonata.engine_name(),
    }


def main(argv: list[str] | None = None) -> dict[str, JSON]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS / "jsonata_vs_jsonpath.json")
    args = parser.parse_args(argv)

    machines = {"JSONPath": load_definition(JSONPATH), "JSONata": load_definition(JSONATA)}
    outputs = {mode: execute(machine, 0)[0] for mode, machine in machines.items()}
    if outputs["JSONPath"] != outputs["JSONata"]:
        raise SystemExit(f"the two machines disagree: {outputs}")
    for machine in machines.values():  # warm caches and the allocator
        measure(machine, max(1, args.executions // 10))

    best: dict[str, tuple[float, int]] = {}
    for _ in range(args.rounds):
        for mode, machine in machines.items():
            seconds, transitions = measure(machine, args.executions)
            if mode not in best or seconds < best[mode][0]:
                best[mode] = (seconds, transitions)

    rows = []
    for mode, (seconds, transitions) in best.items():
        rows.append(
            {
                "mode": mode,
                "executions": args.executions,
                "transitions": transitions,
                "seconds": round(seconds, 4),
                "transitions_per_second": round(transitions / seconds, 1),
                "executions_per_second": round(args.executions / seconds, 1),
                "microseconds_per_transition": round(seconds / transitions * 1e6, 2),
            }
        )
    ratio = rows[0]["transitions_per_second"] / rows[1]["transitions_per_second"]
    report = {
        "benchmark": "jsonata_vs_jsonpath",
        "when": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "method": f"pure core decide/evolve, best of {args.rounds} alternating rounds",
        "results": rows,
        "jsonpath_over_jsonata": round(ratio, 3),
    }

    print(f"{'mode':<9} {'transitions/s':>14} {'executions/s':>13} {'us/transition':>14}")
    for row in rows:
        print(
            f"{row['mode']:<9} {row['transitions_per_second']:>14,.0f} "
            f"{row['executions_per_second']:>13,.0f} {row['microseconds_per_transition']:>14.1f}"
        )
    print(f"JSONPath / JSONata throughput: {ratio:.2f}x  ({report['machine']['jsonata_engine']})")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
