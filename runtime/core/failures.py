"""Retry, Catch and failure (ASL "Error handling"): which retrier applies and its delay, which
catcher catches, and how a failure climbs from a state to its branch, iteration or execution,
including a Map's failure tolerance.

Imports only the standard library, ``runtime.errors``, ``runtime.lang``,
``runtime.definition.model`` and ``runtime.core``.
"""

from __future__ import annotations

import math
from typing import Any

from runtime.core.dataflow import DataFlow
from runtime.core.limits import MAX_EXECUTION_SECONDS
from runtime.core.state import Frame
from runtime.definition.model import Catcher, Map, Parallel, Retrier, State, Task
from runtime.errors import StatesError, error_matches
from runtime.lang.jsonata_engine import QueryEvaluationError
from runtime.lang.paths import apply_result_path

__all__ = ["Failures", "backoff_delay"]

JSON = Any


class Failures(DataFlow):
    """Retry, Catch, and a failure's way up the frames."""

    def retry_delay(
        self, frame: Frame, state: Task | Parallel | Map, error: str
    ) -> tuple[int, float] | None:
        """Retrier: the first retrier whose ErrorEquals matches decides (ASL "Retrying")."""
        if error == "States.Runtime":
            return None
        for index, retrier in enumerate(state.retry):
            if not any(error_matches(name, error) for name in retrier.error_equals):
                continue
            count = frame.retry_counts.get(index, 0)
            if count >= retrier.max_attempts:
                return None
            delay = backoff_delay(retrier, count)
            if retrier.jitter_strategy == "FULL":
                delay = self.entropy.random() * delay
            return index, delay
        return None

    def fail_state(self, frame: Frame, state: State, error: str, cause: str) -> None:
        """A state failed: Catch (ASL "Fallback states") or fail the frame."""
        catch: tuple[Catcher, ...] = getattr(state, "catch", ())
        if error != "States.Runtime":
            for catcher in catch:
                if any(error_matches(name, error) for name in catcher.error_equals):
                    self.caught(frame, state, catcher, error, cause)
                    return
        self.fail_frame(frame, error, cause)

    def caught(self, frame: Frame, state: State, catcher: Catcher, error: str, cause: str) -> None:
        """Catcher (ASL "Fallback states"), in either query language: its Assign, then the
        error output ``{"Error", "Cause"}`` through its ResultPath (JSONPath) or its Output
        (JSONata, default: the error output), then its Next."""
        error_output = {"Error": error, "Cause": cause}
        # Assign and Output read the error output: as ``$`` (JSONPath), as
        # ``$states.errorOutput`` (JSONata).
        bindings = self.bindings(frame, error_output, errorOutput=error_output)
        try:
            assigned = self.assigned(catcher.assign_value, bindings)
            output = catcher.output_value
            if output is not None:
                value = output.evaluate(bindings)
            elif catcher.result_path_set and catcher.result_path is None:
                value = frame.data
            elif catcher.result_path is None:
                value = error_output
            else:
                value = apply_result_path(catcher.result_path, frame.data, error_output)
        except StatesError as failure:
            failed_cause = self.cause(frame, failure.cause)
            if isinstance(failure, QueryEvaluationError):
                # AWS logs every failed JSONata evaluation, here one of the catcher's.
                self.evaluation_failed(frame, failure, failed_cause, in_catch=True)
                return
            self.fail_frame(frame, failure.error, failed_cause)
            return
        self.exit(frame, state, value, catcher.next, assigned)

    def fail_frame(self, frame: Frame, error: str | None, cause: str | None) -> None:
        """The frame's machine failed: fail the execution, the iteration or the branch."""
        if frame.parent is None:
            failed: dict[str, JSON] = {}
            if error is not None:
                failed["error"] = error
            if cause is not None:
                failed["cause"] = cause
            self.emit("ExecutionFailed", "", failed)
            return
        parent = self.state.frames[frame.parent]
        owner = self.state_of(parent)
        private = {"statemillError": error, "statemillCause": cause}
        if isinstance(owner, Map):
            details: dict[str, JSON] = {"name": owner.name, "index": frame.index, **private}
            if self.exceeds_tolerance(parent, extra_failure=True):
                # The Map fails with this iteration; when a retrier applies, AWS logs no
                # MapStateFailed, so the retry decision is recorded here.
                map_error, _ = self.map_failure(parent, error, cause)
                retry = self.retry_delay(parent, owner, map_error or "")
                if retry is not None:
                    details["statemillRetrier"], details["statemillRetryDelay"] = retry
            self.emit("MapIterationFailed", parent.id, details)
            return
        assert isinstance(owner, Parallel)
        self.children_failed(parent, owner, "ParallelStateFailed", error, cause)

    def children_failed(
        self, frame: Frame, state: Parallel | Map, kind: str, error: str | None, cause: str | None
    ) -> None:
        """ParallelStateFailed/MapStateFailed, with the retrier that applies (if any) recorded."""
        details: dict[str, JSON] = {"statemillError": error, "statemillCause": cause}
        retry = self.retry_delay(frame, state, error or "")
        if retry is not None:
            details["statemillRetrier"], details["statemillRetryDelay"] = retry
        self.emit(kind, frame.id, details)

    def evaluation_failed(
        self,
        frame: Frame,
        error: QueryEvaluationError,
        cause: str,
        *,
        in_catch: bool = False,
    ) -> None:
        """``EvaluationFailed``: AWS logs every failed JSONata evaluation before the failure."""
        details: dict[str, JSON] = {"error": error.error, "cause": cause, "state": frame.state}
        if error.location:
            details["location"] = error.location
        if in_catch:
            details["statemillInCatch"] = True
        self.emit("EvaluationFailed", frame.id, details)

    def exceeds_tolerance(self, frame: Frame, *, extra_failure: bool = False) -> bool:
        """ASL "Map state failure threshold": whether the failed iterations (plus ``extra_failure``)
        exceed ToleratedFailureCount/Percentage; with neither set, one failure does."""
        failed = frame.child_failed + (1 if extra_failure else 0)
        if failed == 0:
            return False
        if frame.tolerated_count is None and frame.tolerated_percentage is None:
            return True
        if frame.tolerated_count is not None and failed > frame.tolerated_count:
            return True
        if frame.tolerated_percentage is not None and frame.child_total:
            return failed * 100.0 / frame.child_total > frame.tolerated_percentage
        return False

    def map_failure(
        self, frame: Frame, error: str | None, cause: str | None
    ) -> tuple[str | None, str | None]:
        """The Map's own error once its iterations failed beyond what it tolerates."""
        if frame.tolerated_count is not None or frame.tolerated_percentage is not None:
            return (
                "States.ExceedToleratedFailureThreshold",
                "The specified tolerated failure threshold was exceeded",
            )
        return error, cause


def backoff_delay(retrier: Retrier, count: int) -> float:
    """Retrier: ``IntervalSeconds * BackoffRate ** RetryCount``, capped by ``MaxDelaySeconds``
    (ASL "Retrying after error"; without it, by the execution's maximum duration). The cap is
    applied before the power is computed: attempt 1,025 of a doubling retrier would overflow a
    float, and ``MaxAttempts`` may be 99,999,999."""
    cap = float(
        MAX_EXECUTION_SECONDS if retrier.max_delay_seconds is None else retrier.max_delay_seconds
    )
    interval = retrier.interval_seconds
    rate = retrier.backoff_rate
    if interval <= 0:
        return 0.0
    # Past e * cap the product is only capped; below, it is computed exactly as it always was
    # (the recorded delays of old histories stay the same) and cannot overflow.
    if rate > 1 and count * math.log(rate) > math.log(cap / interval) + 1:
        return cap
    return min(interval * rate**count, cap)
