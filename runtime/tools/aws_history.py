"""AWS ``get-execution-history`` JSON to and from ``HistoryEvent``s.

What :func:`from_aws` infers, since AWS does not log it (all of it best effort):

- ``frame``: AWS links each event to the previous one of its thread by ``previousEventId``. An
  event belongs to the frame of its previous event, except that an event following
  ``MapIterationStarted`` (index *i*) opens iteration *i*, an event following
  ``ParallelStateStarted`` opens the next branch (branch index matched on the branch's StartAt
  when a definition is given, else in order of appearance), and the Map/Parallel bookkeeping
  events (``MapIteration*``, ``MapState{Succeeded,Failed,Aborted}``,
  ``ParallelState{Succeeded,Failed,Aborted}``) belong to the frame that runs the Map/Parallel.
- ``statemillNext`` of a ``*StateExited``: the name of the next ``*StateEntered`` in that frame.
- ``statemillBranches``/``statemillInput`` of ``ParallelStateStarted``: the number of branches
  seen and the first branch state's input; ``statemillItems`` of ``MapStateStarted``: each
  iteration's first state input (the item after ``ItemSelector``), and ``statemillMaxConcurrency``
  the definition's fixed ``MaxConcurrency`` and ``ToleratedFailure*`` (not their ``*Path``).
- A Task failure followed, in the same frame, by another schedule of the same state is a retry:
  ``statemillRetryDelay`` is the time between them and ``statemillRetrier`` the first retrier of
  the state whose ``ErrorEquals`` matches (0 without a definition). Not inferred: a retry that
  never ran (the execution ended first) and retries of a whole Map/Parallel state.

Limit: Statemill's own ``to_aws()`` export writes a linear ``previousEventId`` (each event points
to the one before it), so frames of *interleaved* Parallel branches or concurrent Map iterations
cannot be inferred from it; move Statemill histories with ``statemill export`` (JSON lines that keep
``frame`` and the private fields) instead. AWS's own histories link events per thread.

Imports only the standard library, msgspec, ``core.events``, ``definition`` and ``errors``.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from runtime.core.events import HistoryEvent, details_key
from runtime.definition.model import Map, Parallel, State, StateMachine, Task
from runtime.errors import error_matches

__all__ = ["from_aws", "load_history", "loads_text", "to_aws_history"]

JSON = Any

_FAILED: Final = frozenset({"TaskFailed", "LambdaFunctionFailed", "ActivityFailed"})
_TIMED_OUT: Final = frozenset({"TaskTimedOut", "LambdaFunctionTimedOut", "ActivityTimedOut"})
_SCHEDULED: Final = frozenset({"TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled"})

#: Map/Parallel bookkeeping events: they belong to the frame that runs the Map/Parallel.
_PARENT_LEVEL: Final = frozenset(
    {
        "MapIterationStarted",
        "MapIterationSucceeded",
        "MapIterationFailed",
        "MapIterationAborted",
        "MapStateSucceeded",
        "MapStateFailed",
        "MapStateAborted",
        "ParallelStateSucceeded",
        "ParallelStateFailed",
        "ParallelStateAborted",
    }
)


def loads_text(value: JSON) -> JSON:
    """A history detail that holds JSON text (``input``, ``output``), parsed; anything else
    (already a value, or text that is not JSON) as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def to_aws_history(events: Iterable[HistoryEvent]) -> dict[str, JSON]:
    """``{"events": [...]}`` exactly as ``aws stepfunctions get-execution-history`` prints it."""
    return {"events": [event.to_aws() for event in events]}


def load_history(document: JSON, definition: StateMachine | None = None) -> list[HistoryEvent]:
    """Events from a history file's JSON: AWS's ``{"events": [...]}`` or a list of our events.

    A list whose items have no ``previousEventId`` and no ``<type>EventDetails`` is Statemill's
    own (the ``msgspec`` form of ``HistoryEvent``, as written by ``statemill export``); anything
    else goes through :func:`from_aws`.
    """
    if isinstance(document, dict) and "execution" in document and "events" in document:
        document = document["events"]  # one line of ``statemill export``
    if isinstance(document, list) and all(
        isinstance(e, dict)
        and "previousEventId" not in e
        and not any(str(k).endswith("EventDetails") for k in e)
        for e in document
    ):
        return msgspec.convert(document, list[HistoryEvent])
    return from_aws(document, definition)


def from_aws(document: JSON, definition: StateMachine | None = None) -> list[HistoryEvent]:
    """``HistoryEvent``s from ``get-execution-history`` JSON (``{"events": [...]}`` or the list).

    See the module docstring for what is inferred. ``definition`` (optional) improves it:
    Parallel branch indexes and retrier indexes.

    Raises:
        ValueError: the document is not an AWS history.
    """
    raw = document.get("events") if isinstance(document, dict) else document
    if not isinstance(raw, list):
        raise ValueError('not an AWS execution history: expected {"events": [...]}')
    base: list[HistoryEvent] = []
    for item in sorted(raw, key=lambda e: int(e.get("id", 0)) if isinstance(e, dict) else 0):
        if not isinstance(item, dict) or "type" not in item or "id" not in item:
            raise ValueError(f"not an AWS history event: {item!r:.200}")
        kind = str(item["type"])
        details = item.get(details_key(kind), {})
        base.append(
            HistoryEvent(
                id=int(item["id"]),
                type=kind,
                timestamp=_timestamp(item.get("timestamp", 0)),
                previous_event_id=int(item.get("previousEventId", 0) or 0),
                details=dict(details) if isinstance(details, dict) else {},
            )
        )
    if any(e.details.keys() & {"statemillNext", "statemillLogicVersion"} for e in base):
        return base  # exported by us with private fields kept: nothing to infer
    return _Inference(base, definition).run()


def _timestamp(value: JSON) -> float:
    if isinstance(value, int | float):
        # The AWS CLI prints epoch seconds; some tools epoch milliseconds.
        return float(value) / 1000.0 if value > 1e11 else float(value)
    text = str(value).replace("Z", "+00:00")
    moment = _dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.UTC)
    return moment.timestamp()


def _map_settings(state: Map) -> dict[str, JSON]:
    """The Map settings an imported ``MapStateStarted`` lacks, where the definition gives them
    as constants (one given by a path or an expression was evaluated by AWS and not logged)."""
    settings: dict[str, JSON] = {}
    for key, value in (
        ("statemillMaxConcurrency", state.max_concurrency),
        ("statemillToleratedFailureCount", state.tolerated_failure_count),
        ("statemillToleratedFailurePercentage", state.tolerated_failure_percentage),
    ):
        if value is not None and value.constant is not None:
            settings[key] = value.constant
    return settings


class _Inference:
    """Rebuilds frames and the private facts of an AWS history (see the module docstring)."""

    def __init__(self, events: list[HistoryEvent], definition: StateMachine | None) -> None:
        self.events = events
        self.definition = definition
        self.frame_of: dict[int, str] = {}
        self.active_run: dict[str, int] = {}
        self.branches_seen: dict[int, list[int]] = {}
        self.run_frame: dict[int, str] = {}
        self.run_state: dict[int, str] = {}
        self.machine_of_frame: dict[str, tuple[tuple[str, int], ...]] = {"": ()}

    def run(self) -> list[HistoryEvent]:
        framed = [msgspec.structs.replace(e, frame=self.frame(e)) for e in self.events]
        return self.enrich(framed)

    def frame(self, event: HistoryEvent) -> str:
        previous = self.frame_of.get(event.previous_event_id, "")
        prev_event = self._by_id(event.previous_event_id)
        kind = event.type
        frame = previous
        if kind in _PARENT_LEVEL:
            if previous not in self.active_run and previous:
                frame = previous.rsplit("/", 1)[0] if "/" in previous else ""
        elif not kind.endswith("StateEntered") or prev_event is None:
            pass
        elif prev_event.type == "MapIterationStarted":
            run = self.active_run.get(previous, 0)
            frame = self._child(previous, run, int(prev_event.details.get("index", 0)))
            self.machine_of_frame[frame] = (
                *self.machine_of_frame.get(previous, ()),
                (self.run_state.get(run, ""), -1),
            )
        elif prev_event.type == "ParallelStateStarted":
            run = prev_event.id
            seen = self.branches_seen.setdefault(run, [])
            index = self._branch_index(previous, run, str(event.details.get("name", "")), seen)
            seen.append(index)
            frame = self._child(previous, run, index)
            self.machine_of_frame[frame] = (
                *self.machine_of_frame.get(previous, ()),
                (self.run_state.get(run, ""), index),
            )
        if kind in ("MapStateStarted", "ParallelStateStarted"):
            self.active_run[frame] = event.id
            self.run_frame[event.id] = frame
            self.run_state[event.id] = self._current_state(frame, event.id)
        elif kind in ("MapStateSucceeded", "MapStateFailed", "MapStateAborted") or kind in (
            "ParallelStateSucceeded",
            "ParallelStateFailed",
            "ParallelStateAborted",
        ):
            self.active_run.pop(frame, None)
        self.frame_of[event.id] = frame
        return frame

    def _by_id(self, event_id: int) -> HistoryEvent | None:
        index = event_id - self.events[0].id if self.events else -1
        if 0 <= index < len(self.events) and self.events[index].id == event_id:
            return self.events[index]
        return next((e for e in self.events if e.id == event_id), None)

    def _current_state(self, frame: str, before_id: int) -> str:
        for event in reversed(self.events):
            if (
                event.id < before_id
                and event.type.endswith("StateEntered")
                and self.frame_of.get(event.id) == frame
            ):
                return str(event.details.get("name", ""))
        return ""

    @staticmethod
    def _child(frame: str, run: int, index: int) -> str:
        step = f"{run}:{index}"
        return f"{frame}/{step}" if frame else step

    def _branch_index(self, frame: str, run: int, name: str, seen: list[int]) -> int:
        parallel = self._state(frame, self.run_state.get(run, ""))
        if isinstance(parallel, Parallel):
            for index, branch in enumerate(parallel.branches):
                if branch.start_at == name and index not in seen:
                    return index
        return max(seen, default=-1) + 1

    def _machine(self, frame: str) -> StateMachine | None:
        machine = self.definition
        for name, index in self.machine_of_frame.get(frame, ()):
            if machine is None:
                return None
            state = machine.states.get(name)
            if isinstance(state, Parallel) and 0 <= index < len(state.branches):
                machine = state.branches[index]
            elif isinstance(state, Map):
                machine = state.processor
            else:
                return None
        return machine

    def _state(self, frame: str, name: str) -> State | None:
        machine = self._machine(frame)
        return None if machine is None else machine.states.get(name)

    def enrich(self, events: list[HistoryEvent]) -> list[HistoryEvent]:
        by_frame: dict[str, list[int]] = {}
        for position, event in enumerate(events):
            by_frame.setdefault(event.frame, []).append(position)
        out = list(events)
        for positions in by_frame.values():
            for k, position in enumerate(positions):
                event = events[position]
                later = [events[p] for p in positions[k + 1 :]]
                extra = self._extra(event, later, events)
                if extra:
                    out[position] = msgspec.structs.replace(
                        event, details={**event.details, **extra}
                    )
        return out

    def _extra(
        self, event: HistoryEvent, later: list[HistoryEvent], events: list[HistoryEvent]
    ) -> dict[str, JSON]:
        kind = event.type
        if kind.endswith("StateExited"):
            entered = next((e for e in later if e.type.endswith("StateEntered")), None)
            return {"statemillNext": entered.details.get("name")} if entered else {}
        if kind == "ParallelStateStarted":
            firsts = self._first_entered(event, events)
            first = firsts.get(0)
            return {
                "statemillBranches": len(firsts),
                "statemillInput": loads_text(first.details.get("input")) if first else None,
            }
        if kind == "MapStateStarted":
            firsts = self._first_entered(event, events)
            length = int(event.details.get("length", len(firsts)))
            items = [
                loads_text(firsts[i].details.get("input")) if i in firsts else None
                for i in range(length)
            ]
            extra: dict[str, JSON] = {"statemillItems": items}
            state = self._state(event.frame, self.run_state.get(event.id, ""))
            if isinstance(state, Map):
                extra.update(_map_settings(state))
            return extra
        if kind in _FAILED | _TIMED_OUT:
            for nxt in later:
                if nxt.type.endswith("StateEntered") or nxt.type.endswith("StateExited"):
                    return {}
                if nxt.type in _SCHEDULED:
                    error = str(event.details.get("error", ""))
                    return {
                        "statemillRetryDelay": max(0.0, nxt.timestamp - event.timestamp),
                        "statemillRetrier": self._retrier(event.frame, events, event, error),
                    }
        return {}

    def _first_entered(
        self, started: HistoryEvent, events: list[HistoryEvent]
    ) -> dict[int, HistoryEvent]:
        """Index of branch/iteration -> its first ``StateEntered`` event."""
        prefix = f"{started.frame}/{started.id}:" if started.frame else f"{started.id}:"
        firsts: dict[int, HistoryEvent] = {}
        for event in events:
            if event.frame.startswith(prefix) and event.type.endswith("StateEntered"):
                rest = event.frame[len(prefix) :]
                if "/" not in rest:
                    firsts.setdefault(int(rest), event)
        return firsts

    def _retrier(
        self, frame: str, events: list[HistoryEvent], failed: HistoryEvent, error: str
    ) -> int:
        name = ""
        for event in events:
            if event.id >= failed.id:
                break
            if event.frame == frame and event.type.endswith("StateEntered"):
                name = str(event.details.get("name", ""))
        state = self._state(frame, name)
        if isinstance(state, Task | Parallel | Map):
            for index, retrier in enumerate(state.retry):
                if any(error_matches(name, error) for name in retrier.error_equals):
                    return index
        return 0
