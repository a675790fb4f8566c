"""A caller that gives up on ``start_execution`` must not take the runtime with it (issue 11).

Found by the fuzz: a start cancelled while its creation waited for the group commit left a
cancelled future, the committer's ``set_result`` on it raised ``InvalidStateError``, the engine's
task group died, and every later call on the runtime failed.
"""

from __future__ import annotations

import asyncio

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
    assert done.status == "SUCCEEDED"
    assert done.output_value == {"after": True}
