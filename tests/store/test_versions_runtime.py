"""Versions and aliases through the Python API on every store, and across a restart (issue 13):
an execution started from a version runs that version's definition, wherever and whenever it
is recovered."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime import (
    ConflictException,
    EventStore,
    Runtime,
    StateMachineDoesNotExist,
    ValidationException,
)

pytestmark = pytest.mark.anyio


def result_pass(value: object) -> dict[str, object]:
    return {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": value, "End": True}}}


def nap_then(value: object) -> dict[str, object]:
    return {
        "StartAt": "Nap",
        "States": {
            "Nap": {"Type": "Wait", "Seconds": 3600, "Next": "P"},
            "P": {"Type": "Pass", "Result": value, "End": True},
        },
    }


async def test_versions_and_aliases_on_every_store(store: EventStore) -> None:
    async with Runtime(store, virtual_time=True) as rt:
        machine = await rt.create_state_machine("Rated", result_pass("old"))
        v1 = await rt.publish_state_machine_version(machine.arn, description="first")
        assert (v1.arn, v1.version, v1.description) == (f"{machine.arn}:1", 1, "first")
        await rt.update_state_machine(machine.arn, definition=result_pass("new"))
        v2 = await rt.publish_state_machine_version(machine.arn)
        assert v2.version == 2
        assert [v.version for v in await rt.list_state_machine_versions(machine.arn)] == [2, 1]

        old = await rt.start_execution(v1.arn)
        done = await rt.wait_for_execution(old.execution_arn)
        assert done.output_value == "old"
        assert done.state_machine_version_arn == v1.arn

        alias = await rt.create_state_machine_alias("canary", [(v1.arn, 90), (v2.arn, 10)])
        assert alias.routing == ((1, 90), (2, 10))
        with pytest.raises(ValidationException):
            await rt.update_state_machine_alias(alias.arn, routing=[(v1.arn, 90)])
        await rt.update_state_machine_alias(alias.arn, routing=[(v2.arn, 100)])
        through = await rt.start_execution(alias.arn)
        done = await rt.wait_for_execution(through.execution_arn)
        assert done.output_value == "new"
        assert (done.state_machine_alias_arn, done.state_machine_version_arn) == (
            alias.arn,
            v2.arn,
        )
        with pytest.raises(ConflictException):
            await rt.delete_state_machine_version(v2.arn)
        await rt.delete_state_machine_version(v1.arn)
        with pytest.raises(StateMachineDoesNotExist):
            await rt.start_execution(v1.arn)
        # The execution of the deleted version stays readable.
        assert (await rt.describe_execution(old.execution_arn)).status == "SUCCEEDED"


async def test_an_execution_of_a_version_resumes_on_that_version(tmp_path: Path) -> None:
    path = tmp_path / "versions.db"
    async with Runtime(path, virtual_time=True) as rt:
        machine = await rt.create_state_machine("Resumed", nap_then("v1"))
        v1 = await rt.publish_state_machine_version(machine.arn)
        await rt.update_state_machine(machine.arn, definition=nap_then("v2"))
        v2 = await rt.publish_state_machine_version(machine.arn)
        alias = await rt.create_state_machine_alias("live", [(v1.arn, 100)])
        first = await rt.start_execution(alias.arn, name="first")
        second = await rt.start_execution(v2.arn, name="second")
        latest = await rt.start_execution(machine.arn, name="latest")
    async with Runtime(path, virtual_time=True) as rt:
        ended = [
            await rt.wait_for_execution(started.execution_arn, timeout=30)
            for started in (first, second, latest)
        ]
        assert [e.output_value for e in ended] == ["v1", "v2", "v2"]
        assert ended[0].state_machine_alias_arn == alias.arn
        assert ended[0].state_machine_version_arn == v1.arn
        assert ended[1].state_machine_version_arn == v2.arn
        assert ended[2].state_machine_version_arn is None
        assert [v.version for v in await rt.list_state_machine_versions(machine.arn)] == [2, 1]
