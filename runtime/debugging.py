"""What the debugging commands (history, replay, export, import, graph, report) need from a store.

``runtime.cli`` stays a thin layer: the store reads, the JSON-lines export format and the text
renderings live here. Store I/O is async (a store is opened with ``SqliteStore.open``); the
renderings are pure.

Export format (``statemill export``), one JSON document per line:
``{"stateMachine": {...StateMachineRecord}}`` lines first, then one
``{"execution": {...ExecutionRecord}, "events": [...HistoryEvent]}`` line per execution. Events
keep ``frame`` and the private ``statemill*`` details, so an imported execution folds, replays and
continues exactly as in the store it came from.

Imports ``core``, ``store``, ``replay`` and the standard library; never ``engine``.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import msgspec

from runtime.core.events import HistoryEvent
from runtime.errors import ExecutionDoesNotExist
from runtime.replayer import Step
from runtime.store.base import EventStore, ExecutionRecord, StateMachineRecord

__all__ = [
    "execution_history",
    "export_lines",
    "format_steps",
    "format_table",
    "import_lines",
]

JSON = Any

_SHORT: Final = 60


async def execution_history(
    store: EventStore, execution_arn: str
) -> tuple[ExecutionRecord, list[HistoryEvent], StateMachineRecord | None]:
    """The execution's record, its whole log and its state machine (if stored).

    Raises:
        ExecutionDoesNotExist: no such execution in the store.
    """
    record = await store.get_execution(execution_arn)
    if record is None:
        raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
    events = await store.read(execution_arn)
    machine = await store.get_state_machine(record.state_machine_arn)
    return record, events, machine


# -- text renderings ------------------------------------------------------------------------------


def _short(value: JSON, width: int = _SHORT) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 1] + "…"


def _io(event: HistoryEvent) -> str:
    details = event.details
    for key in ("output", "input", "parameters"):
        if key in details:
            return f"{key}={_short(details[key])}"
    if "error" in details:
        cause = f" {_short(details.get('cause') or '', 40)}" if details.get("cause") else ""
        return f"error={details['error']}{cause}"
    return ""


def format_table(events: Iterable[HistoryEvent], names: dict[str, str] | None = None) -> str:
    """A readable table: event id, time, type, state and a short input/output."""
    known: dict[str, str] = {} if names is None else names
    rows = [("ID", "TIME", "TYPE", "STATE", "INPUT/OUTPUT")]
    for event in events:
        if event.type.endswith("StateEntered"):
            known[event.frame] = str(event.details.get("name", ""))
        state = "" if event.type.startswith("Execution") else known.get(event.frame, "")
        moment = _dt.datetime.fromtimestamp(event.timestamp, _dt.UTC)
        rows.append(
            (
                str(event.id),
                moment.strftime("%H:%M:%S.%f")[:-3],
                event.type,
                state + (f" [{event.frame}]" if event.frame else ""),
                _io(event),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    ).rstrip()


def format_steps(steps: Iterable[Step]) -> str:
    """One block per step: the event, its state, input, output, variables, error and retries."""
    lines: list[str] = []
    for step in steps:
        event = step.event
        head = f"#{event.id} {event.type}"
        if step.state_name:
            head += f"  state={step.state_name!r}"
        if event.frame:
            head += f"  frame={event.frame}"
        lines.append(head)
        if step.input is not None:
            lines.append(f"    input:     {_short(step.input, 200)}")
        if step.output is not None:
            lines.append(f"    output:    {_short(step.output, 200)}")
        if step.error is not None:
            lines.append(f"    error:     {step.error}")
            if step.cause:
                lines.append(f"    cause:     {_short(step.cause, 200)}")
        if step.attempt:
            lines.append(f"    attempt:   {step.attempt + 1} (retry {step.attempt})")
        if step.retry_delay is not None:
            lines.append(f"    retry in:  {step.retry_delay:.3f}s")
        if step.variables and event.type.endswith("StateExited"):
            lines.append(f"    variables: {_short(step.variables, 200)}")
    return "\n".join(lines)


# -- export / import ------------------------------------------------------------------------------


async def export_lines(
    store: EventStore, state_machine_arn: str | None = None, execution_arn: str | None = None
) -> list[str]:
    """The store's executions (all, one machine's, or one) as JSON lines."""
    lines: list[str] = []
    if execution_arn is not None:
        record = await store.get_execution(execution_arn)
        if record is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
        records = [record]
    else:
        records = await store.list_executions(state_machine_arn, limit=1_000_000)
        records.reverse()  # oldest first
    machines = {r.state_machine_arn for r in records}
    lines.extend(
        msgspec.json.encode({"stateMachine": machine}).decode()
        for machine in await store.list_state_machines()
        if machine.arn in machines
    )
    for record in records:
        events = await store.read(record.execution_arn)
        lines.append(msgspec.json.encode({"execution": record, "events": events}).decode())
    return lines


class _Line(msgspec.Struct, kw_only=True):
    # camelCase: the export's JSON key
    stateMachine: StateMachineRecord | None = None
    execution: ExecutionRecord | None = None
    events: list[HistoryEvent] = msgspec.field(default_factory=list)


async def import_lines(store: EventStore, lines: Iterable[str]) -> tuple[int, int]:
    """Store what :func:`export_lines` wrote; returns (state machines, executions) imported.

    A state machine already stored is kept; an execution already stored raises
    ``ExecutionAlreadyExists`` (nothing of that line is written).

    Raises:
        ValueError: a line is not an export line.
    """
    machines = executions = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = msgspec.json.decode(line, type=_Line)
        except msgspec.ValidationError as exc:
            raise ValueError(f"line {number}: not a statemill export line: {exc}") from exc
        machine = item.stateMachine
        if machine is not None and await store.get_state_machine(machine.arn) is None:
            await store.put_state_machine(machine)
            machines += 1
        if item.execution is not None:
            await store.create_execution(item.execution, item.events)
            executions += 1
    return machines, executions


def read_lines(path: str) -> list[str]:
    """The lines of an export file (``-`` is not supported: exports are files)."""
    return Path(path).read_text(encoding="utf-8").splitlines()
