"""``statemill export`` and ``statemill import``: a store's executions as JSON lines, and back.

Format, one JSON document per line: ``{"stateMachine": {...StateMachineRecord}}`` lines first,
then one ``{"execution": {...ExecutionRecord}, "events": [...HistoryEvent]}`` line per execution.
Events keep ``frame`` and the private ``statemill*`` details, so an imported execution folds,
replays and continues exactly as in the store it came from.

An import is checked whole before anything is written (issue 11, "stores that always open"):
every state machine's definition is validated as CreateStateMachine validates it
(``load_definition`` with its type), every execution must belong to a state machine of the file
or the store, must not exist yet, and its events must fold. A refused line is named in the
message and leaves the store as it was, so a store never holds a definition its next opening
would fail to load.

Imports the public ``runtime`` API, ``core.evolve`` (the fold) and the standard library; never
``engine``: it must not start a runtime, which would resume the executions it finds.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Final

import msgspec

from runtime import (
    EventStore,
    ExecutionAlreadyExists,
    ExecutionDoesNotExist,
    ExecutionRecord,
    HistoryEvent,
    InvalidDefinition,
    StateMachineRecord,
    load_definition,
)
from runtime.core.evolve import fold

__all__ = ["ImportCounts", "export_lines", "import_file", "import_lines"]

_MACHINE_TYPES: Final = ("STANDARD", "EXPRESS")


async def export_lines(
    store: EventStore, state_machine_arn: str | None = None, execution_arn: str | None = None
) -> list[str]:
    """The store's executions (all, one machine's, or one) as JSON lines, oldest first.

    Raises:
        ExecutionDoesNotExist: ``execution_arn`` is not in the store.
    """
    if execution_arn is not None:
        record = await store.get_execution(execution_arn)
        if record is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
        records = [record]
    else:
        records = await store.list_executions(state_machine_arn, limit=1_000_000)
        records.reverse()  # oldest first
    machines = {r.state_machine_arn for r in records}
    lines = [
        msgspec.json.encode({"stateMachine": machine}).decode()
        for machine in await store.list_state_machines()
        if machine.arn in machines
    ]
    for record in records:
        events = await store.read(record.execution_arn)
        lines.append(msgspec.json.encode({"execution": record, "events": events}).decode())
    return lines


class _Line(msgspec.Struct, kw_only=True):
    # camelCase: the export's JSON key
    stateMachine: StateMachineRecord | None = None
    execution: ExecutionRecord | None = None
    events: list[HistoryEvent] = msgspec.field(default_factory=list)


class ImportCounts(msgspec.Struct, frozen=True, kw_only=True):
    """What an import stored: state machines and executions, and executions skipped."""

    state_machines: int
    executions: int
    skipped: int = 0


async def import_lines(store: EventStore, lines: Iterable[str]) -> tuple[int, int]:
    """Store what :func:`export_lines` wrote; returns (state machines, executions) imported.

    A state machine already stored is kept (the file's copy of it is still validated). Nothing
    is written unless every line passes the checks of the module docstring.

    Raises:
        ValueError: a line is not an export line, or holds an invalid definition, an execution of
            an unknown state machine or events that do not fold (the message names the line).
        ExecutionAlreadyExists: an execution of the file is already stored (or twice in it).
    """
    counts = await import_file(store, lines)
    return counts.state_machines, counts.executions


async def import_file(
    store: EventStore, lines: Iterable[str], *, skip_existing: bool = False
) -> ImportCounts:
    """:func:`import_lines`; with ``skip_existing``, an execution the store already has is
    skipped (counted in ``skipped``) instead of refused, so a file can be imported again.

    Raises:
        ValueError: as :func:`import_lines`.
        ExecutionAlreadyExists: an execution is twice in the file, or (without
            ``skip_existing``) already stored.
    """
    machines: dict[str, StateMachineRecord] = {}
    executions: dict[str, tuple[ExecutionRecord, list[HistoryEvent]]] = {}
    skipped = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = msgspec.json.decode(line, type=_Line)
        except msgspec.DecodeError as exc:
            raise ValueError(f"line {number}: not a statemill export line: {exc}") from exc
        machine = item.stateMachine
        if machine is not None:
            _check_definition(number, machine)
            if machine.arn not in machines and await store.get_state_machine(machine.arn) is None:
                machines[machine.arn] = machine
        record = item.execution
        if record is None:
            continue
        arn = record.execution_arn
        if skip_existing and arn not in executions and await store.get_execution(arn) is not None:
            skipped += 1
            continue
        await _check_execution(number, store, record, item.events, machines, executions)
        executions[arn] = (record, item.events)
    for machine in machines.values():
        await store.put_state_machine(machine)
    for record, events in executions.values():
        await store.create_execution(record, events)
    return ImportCounts(state_machines=len(machines), executions=len(executions), skipped=skipped)


def _check_definition(number: int, machine: StateMachineRecord) -> None:
    """The definition loads as CreateStateMachine loads it (and as opening a runtime reloads it)."""
    where = f"line {number}: state machine {machine.arn!r}"
    if machine.type not in _MACHINE_TYPES:
        raise ValueError(f"{where}: type {machine.type!r} is not STANDARD or EXPRESS")
    try:
        load_definition(machine.definition, machine_type=machine.type)
    except InvalidDefinition as exc:
        raise ValueError(f"{where}: {exc.message}") from exc
    except RecursionError as exc:  # until load_definition bounds its depth itself (issue 11)
        raise ValueError(f"{where}: the definition is nested too deeply") from exc


async def _check_execution(
    number: int,
    store: EventStore,
    record: ExecutionRecord,
    events: list[HistoryEvent],
    machines: Collection[str],
    executions: Collection[str],
) -> None:
    """A new execution of a known state machine whose log folds (recover folds it on open)."""
    arn = record.execution_arn
    if arn in executions:
        raise ExecutionAlreadyExists(f"line {number}: execution {arn!r} is twice in the file")
    if await store.get_execution(arn) is not None:
        raise ExecutionAlreadyExists(f"line {number}: execution {arn!r} already exists")
    where = f"line {number}: execution {arn!r}"
    machine_arn = record.state_machine_arn
    if machine_arn not in machines and await store.get_state_machine(machine_arn) is None:
        raise ValueError(f"{where}: its state machine {machine_arn!r} is in neither file nor store")
    if not events or events[0].type != "ExecutionStarted":
        raise ValueError(f"{where}: its events do not begin with ExecutionStarted")
    ids = [event.id for event in events]
    if ids != list(range(1, len(events) + 1)):
        raise ValueError(f"{where}: its event ids are not 1, 2, 3 ... in order")
    try:
        fold(events)
    except Exception as exc:  # the fold of hostile input: report it, never store it
        raise ValueError(f"{where}: its events do not fold: {type(exc).__name__}: {exc}") from exc
