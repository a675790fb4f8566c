"""The ``.waitForTaskToken`` pattern: tokens, callbacks, their errors, timeouts and restarts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from runtime import (
    InvalidToken,
    Runtime,
    TaskContext,
    TaskDoesNotExist,
    TaskTimedOut,
)
from runtime.core.decide import make_task_token, parse_task_token
from runtime.engine.clock import ManualClock
from runtime.store.sqlite import SqliteStore
from runtime.testing import history_types, virtual_runtime

pytestmark = pytest.mark.anyio

JSON = Any
RESOURCE = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"


class Approvals:
    """A handler that records each token it is handed (as an approval request would)."""

    def __init__(self) -> None:
        self.calls: list[tuple[JSON, TaskContext]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, event: JSON, context: TaskContext) -> JSON:
        self.calls.append((event, context))
        self.arrived.set()
        return {"MessageId": f"m-{len(self.calls)}"}

    async def next_token(self) -> str:
        await self.arrived.wait()
        self.arrived.clear()
        event, _ = self.calls[-1]
        token: str = event["token"]
        return token


def approval_machine(**task_fields: JSON) -> dict[str, JSON]:
    task = {
        "Type": "Task",
        "Resource": RESOURCE,
        "Parameters": {"order.$": "$.order", "token.$": "$$.Task.Token"},
        "End": True,
        **task_fields,
    }
    return {"StartAt": "Approve", "States": {"Approve": task}}


def handlers(approvals: Approvals) -> dict[str, Any]:
    return {"arn:aws:states:::sqs:sendMessage": approvals}


async def start(rt: Runtime, definition: dict[str, JSON], name: str = "order-1") -> str:
    machine = await rt.create_state_machine("Orders", definition)
    started = await rt.start_execution(machine.arn, {"order": 7}, name=name)
    return started.execution_arn


async def test_send_task_success_completes_the_task() -> None:
    approvals = Approvals()
    async with virtual_runtime(handlers(approvals)) as rt:
        arn = await start(rt, approval_machine())
        token = await approvals.next_token()
        _, context = approvals.calls[0]
        await rt.send_task_success(token, {"approved": True})
        done = await rt.wait_for_execution(arn, timeout=10)
        history = await rt.get_execution_history(arn)
    assert context.task_token == token
    assert parse_task_token(token) == (arn, "")
    assert done.status == "SUCCEEDED"
    assert done.output_value == {"approved": True}
    assert history_types(history) == [
        "ExecutionStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSubmitted",
        "TaskSucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    scheduled = history[2].to_aws()["taskScheduledEventDetails"]
    assert scheduled["resource"] == "sendMessage.waitForTaskToken"
    assert "statemillTaskToken" not in scheduled
    assert token in scheduled["parameters"]
    assert history[4].to_aws()["taskSubmittedEventDetails"]["output"] == '{"MessageId":"m-1"}'


async def test_jsonata_arguments_see_the_token() -> None:
    approvals = Approvals()
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Approve",
        "States": {
            "Approve": {
                "Type": "Task",
                "Resource": RESOURCE,
                "Arguments": {"token": "{% $states.context.Task.Token %}"},
                "End": True,
            }
        },
    }
    async with virtual_runtime(handlers(approvals)) as rt:
        arn = await start(rt, definition)
        token = await approvals.next_token()
        await rt.send_task_success(token, "ok")
        done = await rt.wait_for_execution(arn, timeout=10)
    assert done.output_value == "ok"


async def test_send_task_failure_is_caught_like_a_task_failure() -> None:
    approvals = Approvals()
    definition = approval_machine(
        Catch=[{"ErrorEquals": ["Rejected"], "ResultPath": "$.why", "Next": "Rejected"}],
        End=None,
        Next="Done",
    )
    del definition["States"]["Approve"]["End"]
    definition["States"]["Done"] = {"Type": "Succeed"}
    definition["States"]["Rejected"] = {"Type": "Pass", "End": True}
    async with virtual_runtime(handlers(approvals)) as rt:
        arn = await start(rt, definition)
        token = await approvals.next_token()
        await rt.send_task_failure(token, "Rejected", "too expensive")
        done = await rt.wait_for_execution(arn, timeout=10)
        history = await rt.get_execution_history(arn)
    assert done.status == "SUCCEEDED"
    assert done.output_value == {"order": 7, "why": {"Error": "Rejected", "Cause": "too expensive"}}
    failed = next(e for e in history if e.type == "TaskFailed")
    assert failed.details["error"] == "Rejected"


async def test_malformed_unknown_and_reused_tokens_are_refused() -> None:
    approvals = Approvals()
    async with virtual_runtime(handlers(approvals)) as rt:
        arn = await start(rt, approval_machine())
        token = await approvals.next_token()
        with pytest.raises(InvalidToken, match="malformed"):
            await rt.send_task_success("not-a-token", {})
        with pytest.raises(InvalidToken, match="malformed"):
            await rt.send_task_heartbeat("")
        forged = make_task_token(arn, "", "0" * 64)
        with pytest.raises(TaskDoesNotExist, match="no task waits"):
            await rt.send_task_success(forged, {})
        nowhere = make_task_token(arn + "-gone", "", "0" * 64)
        with pytest.raises(TaskDoesNotExist, match="names no execution"):
            await rt.send_task_failure(nowhere, "E", "c")
        await rt.send_task_success(token, {"first": True})
        with pytest.raises(TaskDoesNotExist):
            await rt.send_task_success(token, {"second": True})
        done = await rt.wait_for_execution(arn, timeout=10)
        with pytest.raises(TaskDoesNotExist):
            await rt.send_task_failure(token, "Late", "after the end")
    assert done.output_value == {"first": True}


async def test_timeout_while_waiting_fails_the_task_and_refuses_the_token() -> None:
    approvals = Approvals()
    async with virtual_runtime(handlers(approvals)) as rt:
        begun = rt.clock.now()
        arn = await start(rt, approval_machine(TimeoutSeconds=3600))
        token = await approvals.next_token()
        done = await rt.wait_for_execution(arn, timeout=10)
        history = await rt.get_execution_history(arn)
        with pytest.raises(TaskTimedOut):
            await rt.send_task_success(token, {})
        with pytest.raises(TaskTimedOut):
            await rt.send_task_heartbeat(token)
    assert done.status == "FAILED"
    assert done.error == "States.Timeout"
    timed_out = next(e for e in history if e.type == "TaskTimedOut")
    assert timed_out.timestamp == pytest.approx(begun + 3600)


async def test_heartbeats_keep_a_waiting_task_alive() -> None:
    approvals = Approvals()
    async with virtual_runtime(handlers(approvals)) as rt:
        arn = await start(rt, approval_machine(HeartbeatSeconds=10, TimeoutSeconds=100))
        token = await approvals.next_token()
        for _ in range(4):
            await rt.clock.sleep_until(rt.clock.now() + 8)
            await rt.send_task_heartbeat(token)
        await rt.send_task_success(token, {"late": "but alive"})
        done = await rt.wait_for_execution(arn, timeout=10)
    assert done.status == "SUCCEEDED"
    assert done.output_value == {"late": "but alive"}


async def test_missing_heartbeat_times_out_with_heartbeat_timeout() -> None:
    approvals = Approvals()
    definition = approval_machine(
        HeartbeatSeconds=10,
        Retry=[{"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 1}],
    )
    async with virtual_runtime(handlers(approvals)) as rt:
        arn = await start(rt, definition)
        first = await approvals.next_token()
        second = await approvals.next_token()
        done = await rt.wait_for_execution(arn, timeout=10)
        history = await rt.get_execution_history(arn)
    assert first != second  # each attempt gets its own token
    assert done.status == "FAILED"
    assert done.error == "States.HeartbeatTimeout"
    assert history_types(history).count("TaskTimedOut") == 2


async def test_retry_after_failure_issues_a_new_token_and_retires_the_old() -> None:
    approvals = Approvals()
    definition = approval_machine(Retry=[{"ErrorEquals": ["Busy"], "IntervalSeconds": 5}])
    async with virtual_runtime(handlers(approvals)) as rt:
        arn = await start(rt, definition)
        first = await approvals.next_token()
        await rt.send_task_failure(first, "Busy", "try later")
        second = await approvals.next_token()
        with pytest.raises(TaskDoesNotExist):
            await rt.send_task_success(first, {})
        await rt.send_task_success(second, {"attempt": 2})
        done = await rt.wait_for_execution(arn, timeout=10)
    assert first != second
    assert done.output_value == {"attempt": 2}


async def test_a_parked_execution_is_revived_by_its_token() -> None:
    approvals = Approvals()
    async with virtual_runtime(handlers(approvals)) as rt:
        arn = await start(rt, approval_machine(TimeoutSeconds=30 * 24 * 3600))
        token = await approvals.next_token()
        await rt.clock.sleep_until(rt.clock.now() + 24 * 3600)
        assert arn in rt.engine.parked  # waiting on a durable timer, no state in memory
        await rt.send_task_success(token, {"ok": 1})
        done = await rt.wait_for_execution(arn, timeout=10)
    assert done.output_value == {"ok": 1}


async def test_a_restarted_runtime_resumes_an_execution_waiting_for_its_token(
    tmp_path: Path,
) -> None:
    # The system clock: virtual time would jump to the deadlines while the test polls.
    path = str(tmp_path / "statemill.db")
    approvals = Approvals()
    async with Runtime(path, handlers=handlers(approvals)) as rt:
        arn = await start(rt, approval_machine(HeartbeatSeconds=600, TimeoutSeconds=86_400))
        token = await approvals.next_token()
        for _ in range(1000):  # let TaskSubmitted commit
            if "TaskSubmitted" in history_types(await rt.get_execution_history(arn)):
                break
            await asyncio.sleep(0.001)

    async with Runtime(path, handlers=handlers(approvals)) as reopened:
        assert (await reopened.describe_execution(arn)).status == "RUNNING"
        await reopened.send_task_heartbeat(token)
        await reopened.send_task_success(token, {"approved": "next day"})
        done = await reopened.wait_for_execution(arn, timeout=10)
    assert len(approvals.calls) == 1  # the submitted handler is not invoked again
    assert done.status == "SUCCEEDED"
    assert done.output_value == {"approved": "next day"}


@pytest.mark.parametrize(("beat_at", "times_out_at"), [(60.0, 160.0), (None, 120.0)])
async def test_heartbeat_seconds_count_across_a_restart(
    tmp_path: Path, beat_at: float | None, times_out_at: float
) -> None:
    # HeartbeatSeconds=100 from submission at T0; the runtime restarts at T0+120. The deadline
    # is the last stored heartbeat + 100 (or, with none, T0 + 100: already past), never the
    # restart + 100.
    path = str(tmp_path / "statemill.db")
    t0 = 1_700_000_000.0
    approvals = Approvals()
    async with Runtime(path, handlers=handlers(approvals), clock=ManualClock(t0)) as rt:
        arn = await start(rt, approval_machine(HeartbeatSeconds=100))
        token = await approvals.next_token()
        await rt.clock.sleep_until(t0 + 60)
        if beat_at is not None:
            await rt.send_task_heartbeat(token)

    async with Runtime(path, handlers=handlers(approvals), clock=ManualClock(t0 + 120)) as again:
        done = await again.wait_for_execution(arn, timeout=10)
        history = await again.get_execution_history(arn)
    assert done.error == "States.HeartbeatTimeout"
    timed_out = next(e for e in history if e.type == "TaskTimedOut")
    assert timed_out.timestamp == pytest.approx(t0 + times_out_at)
    assert len(approvals.calls) == 1


async def test_a_heartbeat_after_revival_rearms_the_deadline() -> None:
    approvals = Approvals()
    async with virtual_runtime(handlers(approvals)) as rt:
        arn = await start(rt, approval_machine(HeartbeatSeconds=10))
        token = await approvals.next_token()
        await rt.clock.sleep_until(rt.clock.now() + 8)
        assert arn in rt.engine.parked
        await rt.send_task_heartbeat(token)  # revives it: its deadline must still fire
        begun = rt.clock.now()
        done = await rt.wait_for_execution(arn, timeout=10)
        history = await rt.get_execution_history(arn)
    assert done.error == "States.HeartbeatTimeout"
    timed_out = next(e for e in history if e.type == "TaskTimedOut")
    assert timed_out.timestamp == pytest.approx(begun + 10)


async def test_a_failing_handler_fails_the_token_task() -> None:
    async def broken(event: JSON, context: TaskContext) -> JSON:
        raise RuntimeError("queue unavailable")

    async with virtual_runtime({"arn:aws:states:::sqs:sendMessage": broken}) as rt:
        arn = await start(rt, approval_machine())
        done = await rt.wait_for_execution(arn, timeout=10)
    assert done.status == "FAILED"
    assert done.error == "RuntimeError"
    assert done.cause == "queue unavailable"


async def test_stopping_an_execution_retires_its_token() -> None:
    approvals = Approvals()
    async with virtual_runtime(handlers(approvals)) as rt:
        arn = await start(rt, approval_machine())
        token = await approvals.next_token()
        stopped = await rt.stop_execution(arn, cause="order cancelled")
        with pytest.raises(TaskDoesNotExist):
            await rt.send_task_success(token, {})
    assert stopped.status == "ABORTED"


async def test_send_task_success_returns_once_the_answer_is_in_the_log() -> None:
    approvals = Approvals()
    async with virtual_runtime(handlers(approvals)) as rt:
        definition = approval_machine()
        definition["States"]["Approve"].pop("End")
        definition["States"]["Approve"]["Next"] = "Later"
        definition["States"]["Later"] = {"Type": "Wait", "Seconds": 3600, "End": True}
        arn = await start(rt, definition)
        token = await approvals.next_token()
        await rt.send_task_success(token, {"ok": True})
        types = history_types(await rt.store.read(arn))
    assert "TaskSucceeded" in types


async def test_an_answer_recorded_while_no_runtime_runs_counts_from_when_it_was_recorded(
    tmp_path: Path,
) -> None:
    # TimeoutSeconds=100 from T0. Both answers are recorded in the file while no runtime runs
    # (as `statemill send-task-success` does); the runtime comes back at T0+200, after the
    # deadline. The answer recorded at T0+50 wins; the one recorded at T0+150 was too late.
    path = str(tmp_path / "statemill.db")
    t0 = 1_700_000_000.0
    approvals = Approvals()
    async with Runtime(path, handlers=handlers(approvals), clock=ManualClock(t0)) as rt:
        early = await start(rt, approval_machine(TimeoutSeconds=100), name="early")
        early_token = await approvals.next_token()
        late = await start(rt, approval_machine(TimeoutSeconds=100), name="late")
        late_token = await approvals.next_token()

    async with SqliteStore.open(path) as store:
        answer = {"taskToken": early_token, "output": {"approved": True}}
        await store.add_request("send-task-success", json.dumps(answer), t0 + 50)
        answer = {"taskToken": late_token, "output": {"approved": True}}
        late_request = await store.add_request("send-task-success", json.dumps(answer), t0 + 150)

    async with Runtime(path, handlers=handlers(approvals), clock=ManualClock(t0 + 200)) as again:
        early_done = await again.wait_for_execution(early, timeout=10)
        late_done = await again.wait_for_execution(late, timeout=10)
        store = again.store
        assert isinstance(store, SqliteStore)
        refused = await store.get_request(late_request)
    assert early_done.status == "SUCCEEDED"
    assert early_done.output_value == {"approved": True}
    assert (late_done.status, late_done.error) == ("FAILED", "States.Timeout")
    assert refused is not None
    assert refused[1] == "FAILED"
    assert json.loads(refused[2] or "{}")["error"] == "TaskTimedOut"
