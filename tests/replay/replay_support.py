"""Helpers of the replay tests: AWS-style thread links for a history we recorded."""

from __future__ import annotations

from typing import Any

from runtime.core.events import HistoryEvent
from runtime.tools.aws_history import to_aws_history

JSON = Any

_ITERATION_END = ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted")
_PARALLEL_END = ("ParallelStateSucceeded", "ParallelStateFailed", "ParallelStateAborted")


def threaded_aws_history(events: list[HistoryEvent]) -> dict[str, JSON]:
    """``to_aws_history(events)`` with ``previousEventId`` linking each event to the previous one
    of its own thread, as AWS does (our own export links each event to the one before it)."""
    last_in: dict[str, int] = {}
    iteration_started: dict[tuple[str, int], int] = {}
    parallel_started: dict[str, int] = {}
    previous: dict[int, int] = {}
    for event in events:
        frame = event.frame
        kind = event.type
        if kind in _ITERATION_END:
            child = _child_of(events, event, int(event.details["index"]))
            prev = last_in.get(child, last_in.get(frame, 0))
        elif kind in _PARALLEL_END:
            prefix = f"{frame}/" if frame else ""
            branches = [
                last_in[f]
                for f in last_in
                if f.startswith(prefix) and f != frame and "/" not in f[len(prefix) :]
            ]
            prev = max(branches, default=last_in.get(frame, 0))
        elif frame not in last_in and frame:
            parent, _, step = frame.rpartition("/")
            run, index = (int(part) for part in step.split(":"))
            prev = iteration_started.get((parent, index), parallel_started.get(str(run), run))
        else:
            prev = last_in.get(frame, 0)
        previous[event.id] = prev
        last_in[frame] = event.id
        if kind == "MapIterationStarted":
            iteration_started[(frame, int(event.details["index"]))] = event.id
        if kind == "ParallelStateStarted":
            parallel_started[str(event.id)] = event.id
    document = to_aws_history(events)
    for item in document["events"]:
        item["previousEventId"] = previous[item["id"]]
    return document


def _child_of(events: list[HistoryEvent], event: HistoryEvent, index: int) -> str:
    """The frame of iteration ``index`` of the Map run that ``event`` ends an iteration of."""
    run = max(
        e.id
        for e in events
        if e.id < event.id and e.frame == event.frame and e.type == "MapStateStarted"
    )
    return f"{event.frame}/{run}:{index}" if event.frame else f"{run}:{index}"
