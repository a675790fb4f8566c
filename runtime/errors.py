"""Errors: host exceptions named after the Step Functions API, and the ``States.*`` error table.

Two families live here and never mix:

* **Host exceptions** are raised to the caller of the Python API or the CLI. They take the names
  of the Step Functions API errors::

      StatemillError
      ├── InvalidDefinition          (code + JSON Pointer of the offending field)
      ├── InvalidExecutionInput
      ├── InvalidName
      ├── InvalidArn
      ├── ExecutionAlreadyExists
      ├── ExecutionDoesNotExist
      ├── ExecutionLimitExceeded     (too many open executions, or children nested too deep)
      ├── StateMachineDoesNotExist
      ├── StateMachineAlreadyExists
      ├── StateMachineQuarantined    (its stored definition failed to load when the store opened)
      ├── TaskDoesNotExist
      ├── InvalidToken
      ├── TaskTimedOut               (the task token's Task timed out)
      ├── ExecutionNotRedrivable
      ├── ActivityDoesNotExist
      ├── ConcurrencyConflict        (an append lost an optimistic-concurrency race)
      ├── StoreLocked                (another runtime runs on this SQLite file)
      ├── NondeterminismError        (replay diverged from a recorded history)
      └── InternalError              (a bug in Statemill)

* **In-machine failures** are data: an ``(error, cause)`` pair that Retry and Catch match. The
  pure evaluators raise :class:`StatesError`; the core converts it into a failure at the state
  boundary. Handlers raise :class:`TaskFailed` to choose both fields themselves.

This module imports only the standard library.
"""

from __future__ import annotations

from typing import Final, final

#: StartExecution's ``ExecutionLimitExceeded`` message, in AWS's words (the API reference).
EXECUTION_LIMIT_MESSAGE: Final = (
    "The maximum number of running executions has been reached. Running executions must end "
    "or be stopped before a new execution can be started."
)

__all__ = [
    "STATES_ERRORS",
    "ActivityDoesNotExist",
    "ConcurrencyConflict",
    "ExecutionAlreadyExists",
    "ExecutionDoesNotExist",
    "ExecutionLimitExceeded",
    "ExecutionNotRedrivable",
    "InternalError",
    "InvalidArn",
    "InvalidDefinition",
    "InvalidExecutionInput",
    "InvalidName",
    "InvalidToken",
    "NondeterminismError",
    "PartitionLost",
    "ResourceNotFound",
    "StateMachineAlreadyExists",
    "StateMachineDoesNotExist",
    "StateMachineQuarantined",
    "StatemillError",
    "StatesError",
    "StoreLocked",
    "TaskDoesNotExist",
    "TaskFailed",
    "TaskTimedOut",
    "error_matches",
]


class StatemillError(Exception):
    """Root of every exception Statemill raises to its caller."""


@final
class InvalidDefinition(StatemillError):
    """The state machine definition is not valid ASL (CreateStateMachine's error).

    Attributes:
        code: AWS's rule code, e.g. ``SCHEMA_VALIDATION_FAILED``.
        detail: what is wrong, in AWS's wording.
        pointer: JSON Pointer of the offending field, e.g. ``/States/A/Next``.
    """

    def __init__(self, code: str, detail: str, pointer: str = "/") -> None:
        self.code = code
        self.detail = detail
        self.pointer = pointer
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The message as AWS words it."""
        return f"Invalid State Machine Definition: '{self.code}: {self.detail} at {self.pointer}'"


class InvalidExecutionInput(StatemillError):
    """The execution input is not valid JSON or is too large."""


class InvalidName(StatemillError):
    """A state machine, execution or activity name breaks AWS's naming rules."""


class InvalidArn(StatemillError):
    """An ARN is malformed."""


class ResourceNotFound(StatemillError):
    """The referenced resource (a Map Run, an alias, a resource to tag) does not exist (AWS's
    ``ResourceNotFound``)."""


class ValidationException(StatemillError):
    """A request breaks a rule of its action (an alias's routing, a tag's characters): AWS's
    ``ValidationException``."""


class ConflictException(StatemillError):
    """A change would leave an inconsistent state (a version an alias routes to, a revision
    that is no longer current): AWS's ``ConflictException``."""


class ServiceQuotaExceededException(StatemillError):
    """A quota would be exceeded (1,000 versions or 100 aliases per state machine): AWS's
    ``ServiceQuotaExceededException``."""


class TooManyTags(StatemillError):
    """A resource would have more than 50 tags: AWS's ``TooManyTags``."""


class ExecutionAlreadyExists(StatemillError):
    """An execution with this name exists with a different input, or has ended."""


class ExecutionDoesNotExist(StatemillError):
    """No execution has this ARN."""


class ExecutionLimitExceeded(StatemillError):
    """StartExecution refused: the maximum number of running executions has been reached
    (``ExecutionLimits.max_open_executions``), or a child execution would be nested deeper
    than ``ExecutionLimits.max_nesting_depth``."""

    def __init__(self, message: str = EXECUTION_LIMIT_MESSAGE) -> None:
        super().__init__(message)


class StateMachineDoesNotExist(StatemillError):
    """No state machine has this ARN."""


class StateMachineQuarantined(StatemillError):
    """The state machine's stored definition failed to load when the store was opened: it is
    quarantined (listed and described with the reason), its executions cannot run; the rest of
    the store works. Not an AWS error: AWS validates every definition it stores."""


class StateMachineAlreadyExists(StatemillError):
    """A state machine with this name exists with a different definition."""


class TaskDoesNotExist(StatemillError):
    """The task token names a task that is no longer waiting."""


class InvalidToken(StatemillError):
    """The task token is malformed or was never issued."""


class ActivityDoesNotExist(StatemillError):
    """The activity ARN names no activity (create_activity first)."""


class ExecutionNotRedrivable(StatemillError):
    """RedriveExecution refused: not FAILED/TIMED_OUT/ABORTED, EXPRESS, or ended too long ago."""


class TaskTimedOut(StatemillError):
    """The task token names a Task that timed out (TimeoutSeconds or HeartbeatSeconds)."""


class ConcurrencyConflict(StatemillError):
    """An append found the sequence number already taken: another writer won the race."""


class PartitionLost(ConcurrencyConflict):
    """A write was refused because this process no longer holds the lease of a partition it
    touches (PostgreSQL scale-out): another member took it over; nothing was written."""

    def __init__(self, message: str, partitions: frozenset[int] = frozenset()) -> None:
        super().__init__(message)
        self.partitions = partitions


class StoreLocked(StatemillError):
    """A ``Runtime`` refused to open a SQLite file that another runtime (in this process or
    another) is running; the message names the holder: pid, host, and since when. Not an AWS
    error: one SQLite file has one writer (``runtime.store.holder``)."""


class NondeterminismError(StatemillError):
    """Re-deciding a recorded history produced different events; names the first divergence."""


class InternalError(StatemillError):
    """A bug in Statemill: an invariant did not hold."""


class StatesError(Exception):
    """An in-machine failure raised by the pure evaluators (paths, intrinsics, Choice rules).

    It is data, not a host exception: the core turns it into a failed state that Retry/Catch see.
    """

    def __init__(self, error: str, cause: str = "") -> None:
        self.error = error
        self.cause = cause
        super().__init__(f"{error}: {cause}")


class TaskFailed(Exception):
    """Raised by a Task handler to fail its Task with a chosen error name and cause."""

    def __init__(self, error: str, cause: str = "") -> None:
        self.error = error
        self.cause = cause
        super().__init__(f"{error}: {cause}")


#: The predefined error names (ASL "Error names") and what each means.
STATES_ERRORS: Final[dict[str, str]] = {
    "States.ALL": "wildcard: any error except States.Runtime",
    "States.DataLimitExceeded": "a payload exceeded the 256 KiB limit",
    "States.Runtime": "an exception the interpreter could not process (never caught)",
    "States.HeartbeatTimeout": "a Task stopped sending heartbeats for longer than HeartbeatSeconds",
    "States.Timeout": "a Task ran longer than TimeoutSeconds, or missed a heartbeat",
    "States.TaskFailed": "wildcard: any error except States.Timeout",
    "States.Permissions": "insufficient privileges to run the Task",
    "States.ResultPathMatchFailure": "ResultPath cannot be applied to the state's input",
    "States.ParameterPathFailure": "a path in Parameters does not match the input",
    "States.BranchFailed": "a branch of a Parallel state failed",
    "States.NoChoiceMatched": "no Choice rule matched and there is no Default",
    "States.IntrinsicFailure": "an intrinsic function failed",
    "States.ExceedToleratedFailureThreshold": "a Map run failed more items than tolerated",
    "States.ItemReaderFailed": "a Map state could not read its items",
    "States.ResultWriterFailed": "a Map state could not write its results",
    "States.QueryEvaluationError": "a JSONata expression failed to evaluate",
}

#: AWS documents States.DataLimitExceeded as not caught by States.ALL, but recorded executions
#: show a Task's oversized result caught by ``States.ALL``; States.Runtime is never caught.
_UNCATCHABLE_BY_ALL: Final = frozenset({"States.Runtime"})


def error_matches(pattern: str, error: str) -> bool:
    """ErrorEquals matching for one name (ASL "Retrying after error" / "Fallback states").

    ``States.ALL`` matches everything except ``States.Runtime``;
    ``States.TaskFailed`` matches everything except ``States.Timeout`` and ``States.Runtime``;
    any other name matches only itself.
    """
    if pattern == error:
        return True
    if pattern == "States.ALL":
        return error not in _UNCATCHABLE_BY_ALL
    if pattern == "States.TaskFailed":
        return error not in _UNCATCHABLE_BY_ALL and error != "States.Timeout"
    return False
