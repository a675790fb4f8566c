"""The state-machine verbs of ``Runtime``: create, describe, list, update and delete, and
loading stored definitions (a definition that fails to load quarantines its machine, never the
store).

Revisions (issue 13): every execution is pinned to the revision of its state machine it
started on (``ExecutionRecord.revision_id``) and runs that definition to its end, as AWS's
running executions do after UpdateStateMachine; the store keeps each revision's definition, so
a recovered execution gets its own. Definitions are held by :func:`revision_key` (and, for the
current one, by the bare ARN too) in the Runtime and the engine alike.

DeleteStateMachine (AWS: the machine goes to DELETING; its executions are terminated at their
next transition and the machine is gone once none runs): the running STANDARD executions are
stopped (ABORTED), then the machine is deleted, at once; describing it afterwards raises
``StateMachineDoesNotExist``, and deleting an unknown one is not an error. Unlike AWS, the
executions' records and histories stay readable (EXPRESS ones running in memory finish).

State machines created by another process on the same store (another member of a cluster, the
command line) are loaded when first named (:meth:`StateMachineVerbs.machine_record`).
Imports the definition loader, the store's records and the shared runtime fields.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import structlog

from runtime.api_base import RuntimeBase
from runtime.api_types import NAME
from runtime.core.decide import dumps
from runtime.definition.load import load_definition
from runtime.definition.model import StateMachine
from runtime.errors import (
    ExecutionDoesNotExist,
    InvalidName,
    StateMachineAlreadyExists,
    StateMachineDoesNotExist,
    StateMachineQuarantined,
    StatemillError,
)
from runtime.store.base import (
    ExecutionRecord,
    StateMachineRecord,
    StateMachineRevisions,
    revision_key,
)

__all__ = ["StateMachineVerbs", "is_updated"]

JSON = Any
log = structlog.get_logger("statemill.api")


def is_updated(record: StateMachineRecord) -> bool:
    """True once UpdateStateMachine made a new revision: creation stores a digest of the
    definition as the revision id, an update a UUID (AWS shows no ``revisionId`` before)."""
    return record.revision_id != hashlib.sha256(record.definition.encode()).hexdigest()[:32]


class StateMachineVerbs(RuntimeBase):
    """The state-machine verbs of ``Runtime``."""

    def machines_for_recovery(self) -> dict[str, StateMachine]:
        """The state machines loaded so far, by arn (what ``Engine.recover`` folds with)."""
        return self._machines

    async def machine_record(self, arn: str, *, max_age: float = 0.0) -> StateMachineRecord | None:
        """The record of state machine ``arn``, loading it from the store if another process
        (another member, the command line) created or changed it since this one opened.

        ``max_age`` > 0: the record held is taken as current if it was read from the store
        less than that many seconds ago (AWS: executions started shortly after an
        UpdateStateMachine may still run the previous definition). A member applying many
        start requests of one machine (a Map Run's children) read its row once per start.
        """
        held = self._machine_records.get(arn)
        read_at = self._machine_read_at.get(arn)
        if (
            max_age > 0
            and held is not None
            and read_at is not None
            and time.monotonic() - read_at < max_age
        ):
            return held
        record = await self._log.get_state_machine(arn)
        if record is None:
            return None
        self._machine_read_at[arn] = time.monotonic()
        known = self._machine_records.get(arn)
        if (
            known is None
            or known.definition != record.definition
            or known.revision_id != record.revision_id
        ):
            self._reload(record)  # a known but quarantined definition stays quarantined
        return record

    def _remember(self, record: StateMachineRecord, machine: StateMachine) -> None:
        """Hold ``record`` as the current revision of its machine: new executions run it."""
        self._machine_records[record.arn] = record
        for key in {record.arn, revision_key(record.arn, record.revision_id)}:
            self._machines[key] = machine
            if self._engine is not None:
                self._engine.add_machine(key, machine)

    def _revisions(self) -> StateMachineRevisions | None:
        """The store's revisions port (every store of Statemill has one; a user's own
        ``EventStore`` may not)."""
        store = self.store
        return store if isinstance(store, StateMachineRevisions) else None

    async def load_revisions(self, records: Iterable[ExecutionRecord]) -> None:
        """Load the definitions of the revisions ``records`` started on that are not held yet
        (before recovering them: each runs its own revision). A revision the store does not
        hold, or that fails to load, is logged; its executions stay as stored, unrun."""
        wanted = {(r.state_machine_arn, r.revision_id) for r in records if r.revision_id}
        store = self._revisions()
        for arn, revision_id in sorted(wanted):
            key = revision_key(arn, revision_id)
            current = self._machine_records.get(arn)
            if key in self._machines or (
                current is not None and current.revision_id == revision_id
            ):
                continue  # held, or the current one (loaded with its machine, or quarantined)
            found = (
                None if store is None else await store.get_state_machine_revision(arn, revision_id)
            )
            if found is None:
                log.warning(
                    "state_machine.revision_missing", state_machine=arn, revision=revision_id
                )
                continue
            try:
                machine = load_definition(found.definition, machine_type=found.type)
            except Exception as exc:  # as _reload: a store must always open
                reason = f"{type(exc).__name__}: {exc}"[:1000]
                log.warning(
                    "state_machine.revision_quarantined",
                    state_machine=arn,
                    revision=revision_id,
                    reason=reason,
                )
                continue
            self._machines[key] = machine
            if self._engine is not None:
                self._engine.add_machine(key, machine)

    async def machine_of(self, record: ExecutionRecord) -> StateMachine | None:
        """The definition execution ``record`` runs: that of the revision it started on."""
        await self.load_revisions([record])
        return self._machines.get(record.machine_key)

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
        if not NAME.fullmatch(name):
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

    async def child_workflow_machine(
        self, name: str, definition: Mapping[str, JSON], type: str
    ) -> StateMachineRecord:
        """The state machine a distributed Map's child workflows run, ``<parent>/<label>``
        (a name no CreateStateMachine can take), holding ``definition``: created, or given a
        new revision when the Map's ItemProcessor changed (its running children keep theirs).
        The revision id derives from the definition, so members that bring it up at once
        write the same row."""
        text = dumps(definition)
        arn = f"arn:aws:states:{self.region}:{self.account}:stateMachine:{name}"
        held = self._machine_records.get(arn)
        if held is not None and held.definition == text and held.type == type:
            return held
        stored = await self._log.get_state_machine(arn)
        if stored is not None and stored.definition == text and stored.type == type:
            record = stored
        else:
            record = StateMachineRecord(
                arn=arn,
                name=name,
                definition=text,
                type=type,
                creation_date=self.clock.now() if stored is None else stored.creation_date,
                revision_id=hashlib.sha256(f"{type}\n{text}".encode()).hexdigest()[:32],
            )
            await self._log.put_state_machine(record)
        self._remember(record, load_definition(text, machine_type=type))
        return record

    async def describe_state_machine(self, state_machine_arn: str) -> StateMachineRecord:
        """The stored state machine (DescribeStateMachine)."""
        record = await self._log.get_state_machine(state_machine_arn)
        if record is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{state_machine_arn}'")
        return self._marked(record)

    async def update_state_machine(
        self, state_machine_arn: str, *, definition: str | Mapping[str, JSON] | None = None
    ) -> StateMachineRecord:
        """Store a new revision of a state machine (UpdateStateMachine) and return it: new
        executions run it; running ones keep the definition they started with (AWS).

        Without ``definition`` the revision keeps the definition (AWS makes a revision for an
        update of the role or the logging configuration too); with the definition it already
        has, nothing changes and the record is returned as it is (no new revision, as AWS).

        Raises:
            StateMachineDoesNotExist: no such state machine.
            InvalidDefinition: the new definition is not valid ASL.
        """
        record = await self.machine_record(state_machine_arn)
        if record is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{state_machine_arn}'")
        changed = definition is not None
        if definition is None:
            definition = record.definition
        machine = load_definition(definition, machine_type=record.type)
        text = definition if isinstance(definition, str) else dumps(definition)
        if changed and text == record.definition and record.arn not in self._quarantined:
            return record  # nothing changes: no new revision (AWS)
        updated = msgspec.structs.replace(
            record, definition=text, revision_id=str(uuid.uuid4()), quarantined=None
        )
        await self._log.put_state_machine(updated)
        self._quarantined.pop(updated.arn, None)
        self._remember(updated, machine)
        return updated

    async def delete_state_machine(self, state_machine_arn: str) -> None:
        """Delete a state machine (DeleteStateMachine): its running STANDARD executions are
        stopped (ABORTED), then it is deleted; an unknown ARN is not an error (as on AWS).
        The executions' records and histories stay.

        Raises:
            NotImplementedError: the store does not implement ``StateMachineRevisions``.
        """
        store = self._revisions()
        if store is None:
            raise NotImplementedError(
                f"{type(self.store).__name__} cannot delete state machines "
                "(it does not implement StateMachineRevisions)"
            )
        if await self._log.get_state_machine(state_machine_arn) is not None:
            # Stopped before the row goes (a crash in between leaves the machine, not
            # executions whose machine is gone); again after, for any started meanwhile.
            await self._stop_executions_of(state_machine_arn)
            await store.delete_state_machine(state_machine_arn)
        self._machines.pop(state_machine_arn, None)
        self._machine_records.pop(state_machine_arn, None)
        self._quarantined.pop(state_machine_arn, None)
        await self._stop_executions_of(state_machine_arn)

    async def _stop_executions_of(self, state_machine_arn: str) -> None:
        cause = f"State machine deleted: '{state_machine_arn}'"
        running = await self._log.list_executions(
            state_machine_arn, status="RUNNING", limit=1_000_000
        )
        for record in running:
            if record.machine_type == "EXPRESS":
                continue  # AWS: running EXPRESS executions may go on after the delete
            arn = record.execution_arn
            try:
                if self._elsewhere(arn):  # StopExecution, as Runtime.stop_execution asks it
                    body = {"executionArn": arn, "error": None, "cause": cause}
                    await self._ask("stop", body, arn, self.clock.now())
                else:
                    await self.engine.stop_execution(arn, None, cause)
            except StatemillError as exc:  # e.g. one of a quarantined machine, never run
                log.warning(
                    "state_machine.delete_stop_failed",
                    execution=arn,
                    error=f"{type(exc).__name__}: {exc}",
                )

    async def describe_state_machine_for_execution(self, execution_arn: str) -> StateMachineRecord:
        """The revision of the state machine the execution runs or ran
        (DescribeStateMachineForExecution).

        Raises:
            ExecutionDoesNotExist: no such execution.
            StateMachineDoesNotExist: its revision is no longer stored.
        """
        record = self.engine.recent_record(execution_arn) or await self._log.get_execution(
            execution_arn
        )
        if record is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
        arn = record.state_machine_arn
        store = self._revisions()
        found: StateMachineRecord | None
        if record.revision_id and store is not None:
            found = await store.get_state_machine_revision(arn, record.revision_id)
        else:
            found = await self._log.get_state_machine(arn)
        if found is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
        return found

    async def list_state_machines(self) -> list[StateMachineRecord]:
        """Every stored state machine (ListStateMachines); quarantined ones say why. The
        state machines of distributed Maps' child workflows (``<parent>/<label>``) are not
        listed, as on AWS."""
        return [
            self._marked(record)
            for record in await self._log.list_state_machines()
            if "/" not in record.name
        ]

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
