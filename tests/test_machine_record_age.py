"""``Runtime.machine_record(arn, max_age=...)``: a record read from the store less than
``max_age`` seconds ago is taken as current (applying a burst of start requests of one machine
read its row once per start); without ``max_age`` the store is always read."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from runtime import Runtime

pytestmark = pytest.mark.anyio

FIRST = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 1, "End": True}}}
SECOND = '{"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": 2, "End": true}}}'


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_recent_read_is_reused_and_an_old_one_is_not(tmp_path: Path) -> None:
    async with Runtime(tmp_path / "s.db") as rt:
        machine = await rt.create_state_machine("m", FIRST)
        read = await rt.machine_record(machine.arn)
        assert read is not None
        # Another process updates the machine behind this runtime's back.
        await rt.store.put_state_machine(
            msgspec.structs.replace(read, definition=SECOND, revision_id="other")
        )
        held = await rt.machine_record(machine.arn, max_age=60.0)
        assert held is not None
        assert held.revision_id == read.revision_id
        fresh = await rt.machine_record(machine.arn)
        assert fresh is not None
        assert fresh.revision_id == "other"
        # What a start runs now is the update.
        done = await rt.wait_for_execution(
            (await rt.start_execution(machine.arn, {})).execution_arn
        )
        assert done.output_value == 2
