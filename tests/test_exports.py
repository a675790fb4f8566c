"""The public surface is pinned: adding or removing a name from ``runtime.__all__`` is a
decision, made here on purpose (STYLE.md section 2)."""

from __future__ import annotations

import runtime

PUBLIC = {
    "ActivityDescription",
    "ActivityDoesNotExist",
    "ActivityTask",
    "CheckResult",
    "Clock",
    "ConcurrencyConflict",
    "Divergence",
    "EventStore",
    "ExecutionAlreadyExists",
    "ExecutionLimitExceeded",
    "ExecutionLimits",
    "StateMachineQuarantined",
    "ExecutionDescription",
    "MapRunCounts",
    "MapRunDescription",
    "MapRunListItem",
    "ExecutionDoesNotExist",
    "ExecutionNotRedrivable",
    "ExecutionRecord",
    "Handler",
    "HandlerRegistry",
    "HistoryEvent",
    "InternalError",
    "InvalidArn",
    "InvalidDefinition",
    "InvalidExecutionInput",
    "InvalidName",
    "InvalidToken",
    "ManualClock",
    "MemoryStore",
    "NondeterminismError",
    "Runtime",
    "SqliteStore",
    "StartExecutionOutput",
    "StateMachineAlreadyExists",
    "StateMachineDoesNotExist",
    "StateMachineRecord",
    "StatemillError",
    "Step",
    "StoreLocked",
    "PartitionLost",
    "ResourceNotFound",
    "ConflictException",
    "ServiceQuotaExceededException",
    "TooManyTags",
    "ValidationException",
    "AliasRecord",
    "VersionRecord",
    "SystemClock",
    "TaskContext",
    "TaskDoesNotExist",
    "TaskFailed",
    "TaskTimedOut",
    "check",
    "diagnose",
    "load_definition",
    "load_history",
    "replay",
}


def test_all_is_the_pinned_public_api() -> None:
    assert set(runtime.__all__) == PUBLIC
    assert len(runtime.__all__) == len(PUBLIC)


def test_every_public_name_resolves() -> None:
    for name in runtime.__all__:
        assert getattr(runtime, name) is not None, name


def test_the_debugging_names_are_the_tools() -> None:
    import runtime.tools.aws_history as aws_history
    import runtime.tools.replay as replay_tool

    assert runtime.replay is replay_tool.replay
    assert runtime.check is replay_tool.check
    assert runtime.diagnose is replay_tool.diagnose
    assert runtime.load_history is aws_history.load_history
    assert callable(runtime.replay)
