"""Stores always open (issue 11 part 4): a stored definition that fails to load on open
quarantines its state machine, never the store.

The bad rows are written straight into the store, as ``statemill import`` (which does not
validate) or an older version with a deeper stack could have left them.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import structlog

from runtime import EventStore, Runtime, SqliteStore, StateMachineRecord
from runtime.errors import StateMachineQuarantined

pytestmark = pytest.mark.anyio

NAP = {"StartAt": "Nap", "States": {"Nap": {"Type": "Wait", "Seconds": 60, "End": True}}}
PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
DEPTH = 5_000
BAD_DEFINITIONS = {
    "not-json": "{not json",
    "not-asl": '{"StartAt": "Nowhere", "States": {}}',
    "too-deep": (
        '{"StartAt": "A", "States": {"A": {"Type": "Pass", "Parameters": '
        + '{"a": ' * DEPTH
        + "1"
        + "}" * DEPTH
        + ', "End": true}}}'
    ),
}


@pytest.mark.parametrize("bad", sorted(BAD_DEFINITIONS))
async def test_a_definition_that_fails_to_load_quarantines_its_machine_only(
    store: EventStore, bad: str
) -> None:
    async with Runtime(store, virtual_time=True) as rt:
        napper = await rt.create_state_machine("Napper", NAP)
        fine = await rt.create_state_machine("Fine", PASS)
        waiting = await rt.start_execution(napper.arn, {})
    stored = await store.get_state_machine(napper.arn)
    assert stored is not None
    broken = msgspec.structs.replace(stored, definition=BAD_DEFINITIONS[bad])
    await store.put_state_machine(broken)

    with structlog.testing.capture_logs() as logs:
        async with Runtime(store, virtual_time=True) as rt:
            # The store opened; the other machine runs.
            done = await rt.start_sync_execution(fine.arn, {"ok": True})
            assert done.status == "SUCCEEDED"
            # The broken one is listed and described as quarantined, with the reason.
            described = await rt.describe_state_machine(napper.arn)
            assert described.quarantined is not None
            listed = {m.arn: m for m in await rt.list_state_machines()}
            assert listed[napper.arn].quarantined == described.quarantined
            assert listed[fine.arn].quarantined is None
            # Its executions cannot run, and say why.
            with pytest.raises(StateMachineQuarantined, match=r"Quarantined: '.*:Napper'"):
                await rt.start_execution(napper.arn, {})
            execution = await rt.describe_execution(waiting.execution_arn)
            assert execution.status == "RUNNING"
            assert execution.quarantined is not None
            assert "quarantined" in execution.quarantined
            (listed_execution,) = await rt.list_executions(napper.arn)
            assert listed_execution.quarantined == execution.quarantined
    warnings = [e for e in logs if e["event"] == "state_machine.quarantined"]
    assert [w["state_machine"] for w in warnings] == [napper.arn]
    assert warnings[0]["log_level"] == "warning"

    # Repaired, the machine loads again and its waiting execution goes on where it was.
    await store.put_state_machine(stored)
    async with Runtime(store, virtual_time=True) as rt:
        assert (await rt.describe_state_machine(napper.arn)).quarantined is None
        ended = await rt.wait_for_execution(waiting.execution_arn, timeout=10)
        assert ended.status == "SUCCEEDED"
        assert ended.quarantined is None


async def test_a_runtime_opens_a_sqlite_file_holding_only_bad_definitions(tmp_path: Path) -> None:
    path = tmp_path / "imported.db"
    async with SqliteStore.open(path) as store:
        for number, bad in enumerate(sorted(BAD_DEFINITIONS)):
            arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:Bad{number}"
            record = StateMachineRecord(
                arn=arn,
                name=f"Bad{number}",
                definition=BAD_DEFINITIONS[bad],
                type="STANDARD",
                creation_date=float(number),
            )
            await store.put_state_machine(record)
    async with Runtime(str(path), virtual_time=True) as rt:
        machines = await rt.list_state_machines()
        assert len(machines) == len(BAD_DEFINITIONS)
        assert all(m.quarantined for m in machines)
        assert (await rt.run(PASS, {"ok": 1})).output_value == {"ok": 1}
