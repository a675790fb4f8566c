"""SendTaskHeartbeat times of waiting token Tasks, held in memory by the engine.

A heartbeat is not an AWS history event, so it is kept here (and stored by the Runtime, so that
a restarted runtime counts HeartbeatSeconds from the last one). ``decide`` sees them inside each
``Wake`` (``Wake.beats``). After a restart, a token Task waiting with HeartbeatSeconds gets a
full window from the restart unless a stored heartbeat says otherwise. Imports ``engine.live``.
"""

from __future__ import annotations

from typing import final

from runtime.engine.live import Live


@final
class Heartbeats:
    """Execution arn -> frame -> time of the last heartbeat of its token Task."""

    __slots__ = ("_beats",)

    def __init__(self) -> None:
        self._beats: dict[str, dict[str, float]] = {}

    def of(self, arn: str) -> dict[str, float] | None:
        """The heartbeats of execution ``arn`` by frame, if it has any."""
        return self._beats.get(arn)

    def last(self, arn: str, frame: str) -> float | None:
        """When the token Task of ``frame`` last sent a heartbeat, if it did."""
        return self._beats.get(arn, {}).get(frame)

    def beat(self, arn: str, frame: str, now: float) -> None:
        """Record a heartbeat of the token Task of ``frame`` at ``now``."""
        self._beats.setdefault(arn, {})[frame] = now

    def forget(self, arn: str) -> None:
        """Drop the heartbeats of execution ``arn`` (it ended)."""
        self._beats.pop(arn, None)

    def grant_window(self, live: Live, now: float) -> None:
        """After a restart: each token Task of ``live`` waiting with HeartbeatSeconds counts
        its window from ``now`` rather than timing out at once."""
        for frame in live.state.frames.values():
            if frame.task_token is not None and frame.task_heartbeat is not None:
                self.beat(live.record.execution_arn, frame.id, now)

    def restore(self, stored: dict[str, dict[str, float]]) -> None:
        """Apply the stored heartbeats: a waiting token Task's window counts from its last
        stored heartbeat, or from its start if it had none (not from the restart)."""
        for arn, frames in self._beats.items():
            recorded = stored.get(arn, {})
            for frame in list(frames):
                if frame in recorded:
                    frames[frame] = recorded[frame]
                else:
                    del frames[frame]  # decide falls back on the Task's start time
