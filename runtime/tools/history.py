"""Reading an execution's log from a store, and showing it as text.

What ``statemill history`` and ``statemill replay`` show beside the pure replay
(:mod:`runtime.tools.replay`): the store reads (one execution, every execution of a machine, the
new events of a running one), the history table or AWS JSON, the replay steps and diagnosis, the
verdicts of a check, and the interactive step-through. Store I/O is async on any
``EventStore`` (the command line opens it with :func:`runtime.tools.stores.open_store`); the
renderings are pure.

Imports the public ``runtime`` API, ``runtime.api.hide_map_runs`` (what the history shows of a
distributed Map), ``tools.aws_history`` and the standard library; never ``engine``: it must not
start a runtime, which would resume the executions it finds.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, Final, TextIO

import anyio
import msgspec

from runtime import (
    CheckResult,
    EventStore,
    ExecutionDoesNotExist,
    ExecutionRecord,
    HistoryEvent,
    StateMachineRecord,
    Step,
    diagnose,
)
from runtime.api import hide_map_runs
from runtime.core.state import ExecutionState, Frame, Phase
from runtime.tools.aws_history import to_aws_history

__all__ = [
    "STEP_COMMANDS",
    "execution_history",
    "execution_view",
    "format_checks",
    "format_replay",
    "format_steps",
    "format_table",
    "history_batches",
    "print_history",
    "step_through",
    "store_histories",
]

JSON = Any

_SHORT: Final = 60

#: The interactive replay's commands, as its prompt lists them.
STEP_COMMANDS: Final = "Enter/n next, p previous, g N go to event N, s the whole state, q quit"


# -- store reads ----------------------------------------------------------------------------------


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


async def store_histories(
    store: EventStore, *, execution_arn: str | None = None, state_machine_arn: str | None = None
) -> list[tuple[str, list[HistoryEvent]]]:
    """(execution ARN, log) of one execution, or of every execution of a machine (oldest first).

    Raises:
        ExecutionDoesNotExist: ``execution_arn`` is not in the store.
    """
    if execution_arn is not None:
        arns = [execution_arn]
    else:
        records = await store.list_executions(state_machine_arn, limit=1_000_000)
        arns = [record.execution_arn for record in reversed(records)]
    out: list[tuple[str, list[HistoryEvent]]] = []
    for arn in arns:
        _record, events, _machine = await execution_history(store, arn)
        out.append((arn, events))
    return out


async def history_batches(
    store: EventStore, execution_arn: str, *, follow: bool = False, interval: float = 0.5
) -> AsyncIterator[list[HistoryEvent]]:
    """The execution's history as the history command shows it (distributed Map iterations
    left out): the log so far, then (with ``follow``) each poll's new events until it ends.

    Raises:
        ExecutionDoesNotExist: no such execution in the store.
    """
    _record, events, _machine = await execution_history(store, execution_arn)
    events = hide_map_runs(events)
    yield events
    last = events[-1].id if events else 0
    while follow:
        record = await store.get_execution(execution_arn)
        ended = record is None or record.status not in ("RUNNING", "PENDING")
        if not ended:
            await anyio.sleep(interval)
        # After the end too: pick up what the last poll missed.
        new = await store.read(execution_arn, last)
        if new:
            last = new[-1].id
            yield hide_map_runs(new)
        if ended:
            return


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


def format_table(
    events: Iterable[HistoryEvent], names: dict[str, str] | None = None, *, header: bool = True
) -> str:
    """A readable table: event id, time, type, state and a short input/output.

    Args:
        events: the events, in order.
        names: frame -> state name, filled as states are entered (pass the same dict to format
            the later events of one history).
        header: begin with the column titles.
    """
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
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    ]
    return "\n".join(lines if header else lines[1:]).rstrip()


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


def format_checks(results: Sequence[CheckResult], *, unnamed: str = "", fmt: str = "text") -> str:
    """What ``statemill replay --check`` prints: a line per execution (``ARN: compatible`` or
    ``ARN: DIVERGES at ...``; ``unnamed`` for a result without an ARN, e.g. the history file's
    name), or with ``fmt="json"`` one document with every result."""
    if fmt == "json":
        compatible = all(result.compatible for result in results)
        return _json({"compatible": compatible, "executions": [r.to_json() for r in results]})
    lines = []
    for result in results:
        verdict = "compatible"
        if not result.compatible:
            divergence = result.divergence
            verdict = "DIVERGES at " + (divergence.message if divergence else result.error or "?")
        lines.append(f"{result.execution_arn or unnamed}: {verdict}")
    return "\n".join(lines)


def format_replay(steps: Sequence[Step], *, at: int | None = None, fmt: str = "text") -> str:
    """What ``statemill replay`` prints of one execution: every step and the failure's diagnosis
    (as text, or with ``fmt="json"`` the steps' summaries), or with ``at`` the step of event
    ``at`` and the execution as a user thinks of it after it (:func:`execution_view`).

    Raises:
        ValueError: ``at`` is not the id of one of the events (1 to the last).
    """
    if at is not None:
        last = steps[-1].event.id if steps else 0
        chosen = [step for step in steps if step.event.id == at]
        if not chosen:
            raise ValueError(f"--at {at} is out of range: the execution has events 1 to {last}")
        return _json({"event": chosen[-1].summary(), "execution": execution_view(chosen[-1].state)})
    if fmt == "json":
        return _json([step.summary() for step in steps])
    failure = diagnose([step.event for step in steps])
    return "\n".join([format_steps(steps), *(["", *failure.lines()] if failure else [])])


#: What a frame is doing, in a user's words (each ``Phase`` of ``runtime.core.state``).
_DOING: Final = {
    Phase.START: "starting",
    Phase.TRANSITION: "moving on",
    Phase.ENTERED: "entered",
    Phase.SCHEDULED: "task scheduled",
    Phase.STARTED: "task running",
    Phase.TASK_SUCCEEDED: "task succeeded",
    Phase.TASK_FAILED: "task failed",
    Phase.RETRY_WAIT: "waiting to retry",
    Phase.CHILDREN: "waiting for its branches or iterations",
    Phase.CHILDREN_FAILED: "branches or iterations failed",
    Phase.DONE: "done",
    Phase.REPORTED: "done",
    Phase.EVALUATION_FAILED: "evaluation failed",
    Phase.CATCH_FAILED: "catch failed",
    Phase.CHILD_RUN: "child execution running",
}


def _waits_for(frame: Frame) -> str | None:
    """The outside input or time a frame waits for, if any."""
    if frame.phase in (Phase.SCHEDULED, Phase.STARTED):
        if frame.task_token_activity:
            return "an activity worker (GetActivityTask, then SendTaskSuccess/Failure)"
        if frame.task_token is not None and frame.task_submitted:
            return "its task token (SendTaskSuccess or SendTaskFailure)"
        return "its handler's result"
    if frame.fire_at is not None and frame.phase in (Phase.ENTERED, Phase.RETRY_WAIT):
        return f"the time {_iso(frame.fire_at)}"
    return None


def _frame_view(frame: Frame) -> dict[str, JSON]:
    out: dict[str, JSON] = {"state": frame.state or frame.next, "doing": _DOING[frame.phase]}
    if frame.parent is not None:
        out["in"] = f"{frame.parent} #{frame.index}"
    if frame.phase in (Phase.SCHEDULED, Phase.STARTED):
        out["input"] = frame.task_input
        out["attempt"] = frame.retry_total + 1
    elif frame.phase is Phase.TASK_SUCCEEDED:
        out["result"] = frame.result
    else:
        out["input" if frame.phase is not Phase.DONE else "output"] = frame.data
    if frame.error is not None:
        out["error"], out["cause"] = frame.error, frame.cause
    waits = _waits_for(frame)
    if waits is not None:
        out["waitingFor"] = waits
    if frame.phase is Phase.CHILDREN:
        out["children"] = {
            "total": frame.child_total,
            "running": frame.child_running,
            "succeeded": frame.child_succeeded,
            "failed": frame.child_failed,
        }
    if frame.variables:
        out["variables"] = frame.variables
    return out


def execution_view(state: ExecutionState) -> dict[str, JSON]:
    """An execution state as a user thinks of it: status, input, output or error, and each
    state in progress (what it does, its input, variables, what it waits for); no internal
    bookkeeping (phases, heartbeat bases, retry counters by index)."""
    out: dict[str, JSON] = {
        "status": state.status,
        "input": state.input,
        "startDate": _iso(state.start_time),
    }
    if state.status != "RUNNING":
        out.update(output=state.output, error=state.error, cause=state.cause)
    active = [
        frame for frame in state.frames.values() if frame.phase not in (Phase.DONE, Phase.REPORTED)
    ]
    out["currentStates"] = [_frame_view(frame) for frame in active]
    waiting = [view for view in out["currentStates"] if "waitingFor" in view]
    out["pendingWork"] = [f"{view['state']}: {view['waitingFor']}" for view in waiting]
    return out


def _iso(timestamp: float) -> str:
    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).isoformat(timespec="milliseconds")


def step_through(steps: Sequence[Step], commands: Iterable[str]) -> Iterator[str]:
    """The interactive replay: the text to show after each command, one step at a time.

    Starts at the first step; each command line (see :data:`STEP_COMMANDS`) moves forward or
    back, jumps to an event id, or shows the whole execution state at the current step.
    """
    if not steps:
        return
    position = 0
    yield format_steps([steps[0]])
    for line in commands:
        command = line.strip().split()
        verb = command[0] if command else "n"
        if verb == "q":
            return
        if verb == "n":
            position = min(position + 1, len(steps) - 1)
        elif verb == "p":
            position = max(position - 1, 0)
        elif verb == "g" and len(command) == 2 and command[1].isdigit():
            wanted = int(command[1])
            position = max((i for i, s in enumerate(steps) if s.event.id <= wanted), default=0)
        elif verb == "s":
            yield _json(msgspec.to_builtins(steps[position].state))
            continue
        else:
            yield f"commands: {STEP_COMMANDS}"
            continue
        yield format_steps([steps[position]])


async def print_history(
    store: EventStore,
    execution_arn: str,
    out: TextIO,
    *,
    fmt: str = "table",
    follow: bool = False,
    interval: float = 0.5,
) -> None:
    """What ``statemill history`` prints: the table (``fmt="table"``) or AWS's
    ``get-execution-history`` JSON (``fmt="json"``); with ``follow``, new events as they come
    until the execution ends (as JSON: one AWS-shaped event per line).

    Raises:
        ExecutionDoesNotExist: no such execution in the store.
    """
    names: dict[str, str] = {}
    header = True
    async for events in history_batches(store, execution_arn, follow=follow, interval=interval):
        if fmt == "json" and not follow:
            out.write(_json(to_aws_history(events)) + "\n")
        elif fmt == "json":
            out.writelines(
                json.dumps(event.to_aws(), ensure_ascii=False) + "\n" for event in events
            )
        elif events:
            out.write(format_table(events, names, header=header) + "\n")
        header = False
        out.flush()


def _json(value: JSON) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
