"""The state-machine verbs of ``Runtime``: create, describe and list, and loading stored
definitions (a definition that fails to load quarantines its machine, never the store).

State machines created by another process on the same store (another member of a cluster, the
command line) are loaded when first named (:meth:`StateMachineVerbs.machine_record`).
Imports the definition loader, the store's records and the shared runtime fields.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec
import structlog

from runtime.api_base import RuntimeBase
from runtime.api_types import NAME
from runtime.core.decide import dumps
from runtime.definition.load import load_definition
from runtime.definition.model import StateMachine
from runtime.errors import (
    InvalidName,
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
    StateMachineQuarantined,
)
from runtime.store.base import StateMachineRecord

__all__ = ["StateMachineVerbs"]

JSON = Any
log = structlog.get_logger("statemill.api")


class StateMachineVerbs(RuntimeBase):
    """The state-machine verbs of ``Runtime``."""

    def machines_for_recovery(self) -> dict[str, StateMachine]:
        """The state machines loaded so far, by arn (what ``Engine.recover`` folds with)."""
        return self._machines

    async def machine_record(self, arn: str) -> StateMachineRecord | None:
        """The record of state machine ``arn``, loading it from the store if another process
        (another member, the command line) created or changed it since this one opened."""
        record = await self._log.get_state_machine(arn)
        if record is None:
            return None
        known = self._machine_records.get(arn)
        if known is None or known.definition != record.definition:
            self._reload(record)  # a known but quarantined definition stays quarantined
        return record

    def _remember(self, record: StateMachineRecord, machine: StateMachine) -> None:
        self._machines[record.arn] = machine
        if self._engine is not None:
            self._engine.add_machine(record.arn, machine)
        self._machine_records[record.arn] = record

    async def create_state_machine(
        self,
        name: str,
        definition: str | Mapping[str, JSON],
        *,
        type: str = "STANDARD",
    ) -> StateMachineRecord:
        """Validate and store a state machine (CreateStateMachine).

        Raises:
            InvalidDefinition: the definition is not valid ASL (AWS's message and JSON path).
            StateMachineAlreadyExists: ``name`` exists with a different definition or type.
        """
        if not NAME.match(name):
            raise InvalidName(f"Invalid Name: '{name}'")
        # A mapping is checked (keys, lone surrogates, depth) before it is encoded: encoding first
        # would turn an int key into a string and raise on a surrogate (issue 11).
        machine = load_definition(definition, machine_type=type)
        text = definition if isinstance(definition, str) else dumps(definition)
        arn = f"arn:aws:states:{self.region}:{self.account}:stateMachine:{name}"
        existing = await self._log.get_state_machine(arn)
        if existing is not None:
            if existing.definition != text or existing.type != type:
                raise StateMachineAlreadyExists(f"State Machine Already Exists: '{arn}'")
            self._quarantined.pop(arn, None)  # the same definition loads now
            self._remember(existing, machine)
            return existing
        record = StateMachineRecord(
            arn=arn,
            name=name,
            definition=text,
            type=type,
            creation_date=self.clock.now(),
            revision_id=hashlib.sha256(text.encode()).hexdigest()[:32],
        )
        await self._log.put_state_machine(record)
        self._remember(record, machine)
        return record

    async def describe_state_machine(self, state_machine_arn: str) -> StateMachineRecord:
        """The stored state machine (DescribeStateMachine)."""
        record = await self._log.get_state_machine(state_machine_arn)
        if record is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{state_machine_arn}'")
        return self._marked(record)

    async def list_state_machines(self) -> list[StateMachineRecord]:
        """Every stored state machine (ListStateMachines); quarantined ones say why."""
        return [self._marked(record) for record in await self._log.list_state_machines()]

    def _marked(self, record: StateMachineRecord) -> StateMachineRecord:
        reason = self._quarantined.get(record.arn)
        if reason is None:
            return record
        return msgspec.structs.replace(record, quarantined=reason)

    def _reload(self, record: StateMachineRecord) -> None:
        """Load a stored definition on open. One that fails to load (a row written by
        ``statemill import``, a definition nested deeper than this stack allows) quarantines
        its state machine, never the store: it is listed and described with the reason, and
        its executions stay as stored, unrun, until a runtime that can load it opens.
        """
        try:
            machine = load_definition(record.definition, machine_type=record.type)
        except Exception as exc:  # any failure (RecursionError too): a store must always open
            reason = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning("state_machine.quarantined", state_machine=record.arn, reason=reason)
            self._quarantined[record.arn] = reason
            self._machine_records[record.arn] = record
            return
        self._quarantined.pop(record.arn, None)
        self._remember(record, machine)

    def _quarantine_error(self, arn: str) -> StateMachineQuarantined:
        return StateMachineQuarantined(
            f"State Machine Quarantined: '{arn}': its stored definition failed to load when "
            f"the store was opened ({self._quarantined[arn]})"
        )
