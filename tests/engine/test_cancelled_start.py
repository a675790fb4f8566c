"""A caller that gives up on ``start_execution`` must not take the runtime with it (issue 11).

Found by the fuzz: a start cancelled while its creation waited for the group commit left a
cancelled future, the committer's ``set_result`` on it raised ``InvalidStateError``, the engine's
task group died, and every later call on the runtime failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from runtime import Runtime

pytestmark = pytest.mark.anyio

CHAIN = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_cancelled_starts_leave_the_runtime_working(store: str, tmp_path: object) -> None:
    path = "memory" if store == "memory" else str(tmp_path) + "/store.db"
    async with Runtime(path, virtual_time=True) as rt:
        machine = await rt.create_state_machine("Cancelled", CHAIN)
        for round_ in range(20):
            starts = [
                asyncio.ensure_future(rt.start_execution(machine.arn, {"n": i})) for i in range(10)
            ]
            # Give up on them at different points of their way in (before and during commit).
            for _ in range(round_ % 4):
                await asyncio.sleep(0)
            for start in starts:
                start.cancel()
            await asyncio.gather(*starts, return_exceptions=True)
        started = await rt.start_execution(machine.arn, {"after": True})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
        # A start given up during its commit is still written; then it must also run: none
        # may stay RUNNING with no engine holding it.
        listed = await rt.list_executions(machine.arn)
        for execution in listed:
            ended = await rt.wait_for_execution(execution.execution_arn, timeout=10)
            assert ended.status == "SUCCEEDED", ended
    assert done.status == "SUCCEEDED"
    assert done.output_value == {"after": True}
    assert len(listed) > 1  # some of the cancelled starts were already on their way in


async def test_a_handler_failure_seen_by_nobody_is_still_retrieved() -> None:
    """Cancelled (its execution ended) just after its handler raised, the supervisor reads the
    exception: asyncio logged "Task exception was never retrieved" 1,669 times in the fuzz."""
    import gc

    from runtime.engine.clock import SystemClock
    from runtime.engine.tasks import _Heartbeat, _supervise

    async def boom() -> None:
        raise ValueError("the handler failed")

    reported: list[str] = []
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: reported.append(context["message"])
    )
    clock = SystemClock()
    for _ in range(20):
        supervised = asyncio.ensure_future(
            _supervise(boom(), clock, clock.now() + 100, None, _Heartbeat(clock.now()))
        )
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        supervised.cancel()
        with contextlib.suppress(BaseException):
            await supervised
    gc.collect()
    await asyncio.sleep(0.01)
    assert reported == []


async def test_a_call_stopped_while_queued_on_the_global_limit_gives_its_slot_back() -> None:
    """A call holding its handler's limiter (max_concurrency=1) while it waits for the global
    one is cancelled by a stop: the handler's slot used to be gone for good."""
    from runtime import HandlerRegistry, TaskContext

    release = asyncio.Event()

    async def slow(payload: object, context: TaskContext) -> object:
        await release.wait()
        return payload

    async def limited(payload: object, context: TaskContext) -> object:
        return payload

    registry = HandlerRegistry()
    registry.register("Slow", slow)
    registry.register("Limited", limited, max_concurrency=1)

    def task(resource: str) -> dict[str, object]:
        return {
            "StartAt": "T",
            "States": {"T": {"Type": "Task", "Resource": resource, "End": True}},
        }

    async with Runtime("memory", handlers=registry, max_handler_concurrency=1) as rt:
        slow_machine = await rt.create_state_machine("SlowOne", task("Slow"))
        limited_machine = await rt.create_state_machine("LimitedOne", task("Limited"))
        holder = await rt.start_execution(slow_machine.arn, {})
        queued = await rt.start_execution(limited_machine.arn, {})
        await asyncio.sleep(0.05)  # the Limited call holds its own slot, waits for the global
        await rt.stop_execution(queued.execution_arn)
        release.set()
        await rt.wait_for_execution(holder.execution_arn, timeout=10)
        later = await rt.start_execution(limited_machine.arn, {"later": True})
        done = await rt.wait_for_execution(later.execution_arn, timeout=10)
    assert done.status == "SUCCEEDED"


async def test_a_failure_of_the_shell_around_a_call_fails_the_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a handler's error (those fail the Task already) but the shell's own, e.g. a store
    error while a nested execution starts: the Task fails with States.Runtime (which no Catch
    matches, as on AWS), where the execution used to wait for a result that never came."""
    import runtime.engine.calls as calls

    async def broken(*args: object, **kwargs: object) -> object:
        raise OSError("disk I/O error")

    monkeypatch.setattr(calls, "call_handler", broken)
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "Anything",
                "Catch": [{"ErrorEquals": ["States.Runtime"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    async with Runtime("memory", handlers={"Anything": lambda i, c: None}) as rt:
        machine = await rt.create_state_machine("Broken", definition)
        started = await rt.start_execution(machine.arn, {})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert done.status == "FAILED"
    assert done.error == "States.Runtime"
    assert "disk I/O error" in (done.cause or "")


async def test_a_failed_read_while_waking_parked_executions_is_tried_again() -> None:
    """The timer loop revives parked executions from the store; a read that fails (a locked
    file, a lost connection) used to end the loop, and with it the engine."""
    definition = {
        "StartAt": "Nap",
        "States": {"Nap": {"Type": "Wait", "Seconds": 3600, "End": True}},
    }
    async with Runtime("memory", virtual_time=True) as rt:
        engine = rt.engine
        real = engine.wake_many
        failures = []

        async def flaky(arns: list[str]) -> list[str]:
            if len(failures) < 2:  # the prefetch 2 s ahead, then the firing itself
                failures.append(arns)
                raise OSError("database is locked")
            return await real(arns)

        engine.wake_many = flaky  # type: ignore[method-assign]
        machine = await rt.create_state_machine("Napping", definition)
        started = await rt.start_execution(machine.arn, {"n": 1})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)
    assert done.status == "SUCCEEDED"
    assert len(failures) == 2


async def test_a_failure_after_a_commit_rebuilds_the_execution() -> None:
    """The effects of a commit run in the committer: one that raised stopped the committer,
    and every execution with it; now the execution is rebuilt from its durable log."""
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "Resource": "Echo", "Next": "B"},
            "B": {"Type": "Pass", "End": True},
        },
    }

    async def echo(payload: object, context: object) -> object:
        return payload

    async with Runtime("memory", handlers={"Echo": echo}, virtual_time=True) as rt:
        engine = rt.engine
        real = engine.after_commit
        failed: list[str] = []

        def flaky(live: Any, tasks: Any, wake_at: Any, *map_runs: Any) -> None:
            if not failed:
                failed.append(live.record.execution_arn)
                raise RuntimeError("a bug after the commit")
            real(live, tasks, wake_at, *map_runs)

        engine.after_commit = flaky  # type: ignore[method-assign]
        machine = await rt.create_state_machine("AfterCommit", definition)
        runs = [await rt.start_execution(machine.arn, {"n": n}) for n in range(3)]
        done = [await rt.wait_for_execution(r.execution_arn, timeout=10) for r in runs]
    assert failed
    assert [d.status for d in done] == ["SUCCEEDED"] * 3


async def test_a_rebuild_waits_out_a_store_that_cannot_be_read() -> None:
    """After a failed commit the execution is rebuilt from its log; a read failing then too
    (the store is out) used to end the rebuild, leaving the execution stuck in memory."""
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "Resource": "Echo", "Next": "B"},
            "B": {"Type": "Pass", "End": True},
        },
    }

    async def echo(payload: object, context: object) -> object:
        return payload

    async with Runtime("memory", handlers={"Echo": echo}, virtual_time=True) as rt:
        store = rt.store
        real_append, real_read = store.append, store.read
        outage = {"appends": 1, "reads": 2}

        async def append(batch: Any) -> None:
            if outage["appends"]:
                outage["appends"] -= 1
                raise OSError("connection lost")
            await real_append(batch)

        async def read(arn: str, after_seq: int = 0) -> Any:
            if not outage["appends"] and outage["reads"]:
                outage["reads"] -= 1
                raise OSError("connection lost")
            return await real_read(arn, after_seq)

        store.append = append  # type: ignore[method-assign]
        store.read = read  # type: ignore[method-assign]
        machine = await rt.create_state_machine("Outage", definition)
        started = await rt.start_execution(machine.arn, {"n": 1})
        done = await rt.wait_for_execution(started.execution_arn, timeout=20)
    assert outage == {"appends": 0, "reads": 0}
    assert done.status == "SUCCEEDED"
