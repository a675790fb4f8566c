"""The versions and aliases of state machines, verbs of ``Runtime`` (issue 13).

A version (PublishStateMachineVersion) is an immutable snapshot of a state machine: it names a
revision, whose definition the store keeps, and is numbered 1, 2, ... (``<machine ARN>:<n>``);
publishing a revision that already has a version returns that version (AWS's idempotency),
``revision_id`` guards against publishing a machine that changed meanwhile (``"INITIAL"``
names the revision of a machine never updated), and a machine has at most 1,000 versions.
An alias (``<machine ARN>:<name>``) routes executions to one version, or splits them between
two by weight (the weights sum to 100); a machine has at most 100. A version an alias routes
to cannot be deleted. Deleting the machine deletes its versions and aliases (the store's
``delete_state_machine``).

StartExecution with a version's ARN runs that version's revision; with an alias's ARN, a
version drawn by the routing weights. The execution remembers both
(``ExecutionRecord.state_machine_version_arn`` / ``state_machine_alias_arn``, DescribeExecution
and ExecutionStarted show them): :meth:`VersionVerbs.qualified` resolves a qualified ARN, and
:meth:`VersionVerbs.revision_machine` loads a version's definition.

Imports the store's ports and records, the definition loader and the shared runtime fields.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Final

import msgspec

from runtime.api_base import RuntimeBase
from runtime.api_machines import is_updated
from runtime.api_types import split_qualified
from runtime.definition.load import load_definition
from runtime.definition.model import StateMachine
from runtime.errors import (
    ConflictException,
    InvalidArn,
    InvalidName,
    ResourceNotFound,
    ServiceQuotaExceededException,
    StateMachineDoesNotExist,
    ValidationException,
)
from runtime.store.base import StateMachineRecord, StateMachineRevisions, revision_key
from runtime.store.versions import AliasRecord, VersionRecord, VersionStore

__all__ = ["ALIAS_NAME", "INITIAL_REVISION", "MAX_ALIASES", "MAX_VERSIONS", "VersionVerbs"]

#: AWS's quotas per state machine.
MAX_VERSIONS: Final = 1000
MAX_ALIASES: Final = 100
#: An alias's name (the model's CharacterRestrictedName): letters, digits, ``_ - .``, with at
#: least one that is not a digit, so that it never reads as a version number.
ALIAS_NAME: Final = re.compile(r"(?=.*[a-zA-Z_\-.])[a-zA-Z0-9_\-.]{1,80}")
#: The ``revisionId`` that names the revision of a state machine never updated (AWS).
INITIAL_REVISION: Final = "INITIAL"


class VersionVerbs(RuntimeBase):
    """The version and alias verbs of ``Runtime``."""

    def _versions(self) -> VersionStore:
        store = self.store
        if not isinstance(store, VersionStore):
            raise NotImplementedError(
                f"{type(store).__name__} keeps no state machine versions "
                "(it does not implement VersionStore)"
            )
        return store

    def _revision_store(self) -> StateMachineRevisions | None:
        store = self.store
        return store if isinstance(store, StateMachineRevisions) else None

    async def _current(self, state_machine_arn: str) -> StateMachineRecord:
        record = await self._log.get_state_machine(state_machine_arn)
        if record is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{state_machine_arn}'")
        return record

    # -- versions -----------------------------------------------------------------------------

    async def publish_state_machine_version(
        self,
        state_machine_arn: str,
        *,
        revision_id: str | None = None,
        description: str | None = None,
    ) -> VersionRecord:
        """Publish the current revision of a state machine as a version
        (PublishStateMachineVersion); a revision already published returns its version.

        Raises:
            StateMachineDoesNotExist: no such state machine.
            ConflictException: ``revision_id`` is not the current revision.
            ServiceQuotaExceededException: the machine has 1,000 versions.
        """
        record = await self._current(_unqualified(state_machine_arn))
        if revision_id is not None and revision_id != _shown_revision(record):
            raise ConflictException(
                f"Failed to publish the State Machine version for revision {revision_id}. "
                f"The current State Machine revision is {_shown_revision(record)}."
            )
        store = self._versions()
        existing = await store.list_versions(record.arn)
        for version in existing:
            if version.revision_id == record.revision_id:
                return version
        if len(existing) >= MAX_VERSIONS:
            raise ServiceQuotaExceededException(
                f"Maximum number of versions ({MAX_VERSIONS}) reached for state machine: "
                f"'{record.arn}'"
            )
        version, _ = await store.publish_version(
            record.arn, record.revision_id, description, self.clock.now()
        )
        return version

    async def describe_state_machine_version(
        self, version_arn: str
    ) -> tuple[VersionRecord, StateMachineRecord]:
        """A version and the state machine as that version holds it (DescribeStateMachine of a
        version's ARN).

        Raises:
            StateMachineDoesNotExist: no such version (or state machine).
        """
        version = await self._version_of(version_arn)
        found = await self._revision_record(version)
        if found is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{version_arn}'")
        return version, found

    async def list_state_machine_versions(self, state_machine_arn: str) -> list[VersionRecord]:
        """A state machine's versions, newest first (ListStateMachineVersions)."""
        return await self._versions().list_versions(_unqualified(state_machine_arn))

    async def delete_state_machine_version(self, version_arn: str) -> None:
        """Delete a version (DeleteStateMachineVersion); its running executions go on, an
        unknown version is not an error.

        Raises:
            ConflictException: an alias routes to the version.
        """
        machine, number = _version_parts(version_arn)
        store = self._versions()
        for alias in await store.list_aliases(machine):
            if any(version == number for version, _ in alias.routing):
                raise ConflictException(
                    f"Version to be deleted must not be referenced by an alias. Current list of "
                    f"aliases referencing this version: [{alias.arn}]"
                )
        await store.delete_version(machine, number)

    async def _version_of(self, version_arn: str) -> VersionRecord:
        machine, number = _version_parts(version_arn)
        version = await self._versions().get_version(machine, number)
        if version is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{version_arn}'")
        return version

    async def _revision_record(self, version: VersionRecord) -> StateMachineRecord | None:
        revisions = self._revision_store()
        if revisions is None:
            return None
        found = await revisions.get_state_machine_revision(
            version.state_machine_arn, version.revision_id
        )
        if found is None:
            return None
        as_version: StateMachineRecord = msgspec.structs.replace(found, arn=version.arn)
        return as_version

    # -- aliases ------------------------------------------------------------------------------

    async def create_state_machine_alias(
        self,
        name: str,
        routing: Sequence[tuple[str, int]],
        *,
        description: str | None = None,
    ) -> AliasRecord:
        """Create an alias routing to one or two versions of one state machine by weight
        (CreateStateMachineAlias); the same alias again returns it.

        Raises:
            InvalidName: ``name`` is not an alias name (AWS's CharacterRestrictedName).
            ValidationException: the routing breaks a rule (two versions of different
                machines, the same version twice, weights not summing to 100).
            ResourceNotFound: a version does not exist.
            ConflictException: an alias of that name exists with other settings.
            ServiceQuotaExceededException: the machine has 100 aliases.
        """
        if not ALIAS_NAME.fullmatch(name):
            raise InvalidName(f"Invalid Name: '{name}'")
        machine, pairs = await self._routing(routing)
        now = self.clock.now()
        record = AliasRecord(
            state_machine_arn=machine,
            name=name,
            description=description,
            routing=pairs,
            creation_date=now,
            update_date=now,
        )
        store = self._versions()
        existing = await store.list_aliases(machine)
        for alias in existing:
            if alias.name == name:
                if (alias.description, alias.routing) == (description, pairs):
                    return alias
                raise ConflictException(
                    f"Failed to create alias because an alias with the same name and a "
                    f"different routing configuration already exists: '{alias.arn}'"
                )
        if len(existing) >= MAX_ALIASES:
            raise ServiceQuotaExceededException(
                f"Maximum number of aliases ({MAX_ALIASES}) reached for state machine: '{machine}'"
            )
        if not await store.put_alias(record, create=True):
            found = await store.get_alias(machine, name)  # created meanwhile by another process
            if found is not None and (found.description, found.routing) == (description, pairs):
                return found
            raise ConflictException(f"Alias already exists: '{record.arn}'")
        return record

    async def describe_state_machine_alias(self, alias_arn: str) -> AliasRecord:
        """An alias (DescribeStateMachineAlias).

        Raises:
            ResourceNotFound: no such alias.
        """
        machine, name = _alias_parts(alias_arn)
        alias = await self._versions().get_alias(machine, name)
        if alias is None:
            raise ResourceNotFound(f"Resource not found: '{alias_arn}'")
        return alias

    async def list_state_machine_aliases(self, state_machine_arn: str) -> list[AliasRecord]:
        """A state machine's aliases, oldest first (ListStateMachineAliases).

        Raises:
            StateMachineDoesNotExist: no such state machine.
        """
        record = await self._current(_unqualified(state_machine_arn))
        return await self._versions().list_aliases(record.arn)

    async def update_state_machine_alias(
        self,
        alias_arn: str,
        *,
        routing: Sequence[tuple[str, int]] | None = None,
        description: str | None = None,
    ) -> AliasRecord:
        """Change an alias's routing and/or description (UpdateStateMachineAlias); executions
        it started keep the version they run.

        Raises:
            ResourceNotFound: no such alias, or a version that does not exist.
            ValidationException: the new routing breaks a rule, or a version is of another
                state machine.
        """
        alias = await self.describe_state_machine_alias(alias_arn)
        pairs = alias.routing
        if routing is not None:
            machine, pairs = await self._routing(routing)
            if machine != alias.state_machine_arn:
                raise ValidationException(
                    "Routing configuration must contain state machine version ARNs of the "
                    f"alias's state machine: '{alias.state_machine_arn}'"
                )
        updated = msgspec.structs.replace(
            alias,
            routing=pairs,
            description=alias.description if description is None else description,
            update_date=self.clock.now(),
        )
        if not await self._versions().put_alias(updated, create=False):
            raise ResourceNotFound(f"Resource not found: '{alias_arn}'")
        return updated

    async def delete_state_machine_alias(self, alias_arn: str) -> None:
        """Delete an alias (DeleteStateMachineAlias); its executions go on.

        Raises:
            ResourceNotFound: no such alias.
        """
        machine, name = _alias_parts(alias_arn)
        if not await self._versions().delete_alias(machine, name):
            raise ResourceNotFound(f"Resource not found: '{alias_arn}'")

    async def _routing(
        self, routing: Sequence[tuple[str, int]]
    ) -> tuple[str, tuple[tuple[int, int], ...]]:
        """The state machine and the ``(version, weight)`` pairs of a routing configuration,
        checked: one or two versions of one machine, each existing once, weights summing to
        100."""
        if not 1 <= len(routing) <= 2:
            raise ValidationException(
                "Routing configuration must contain one or two state machine versions"
            )
        machines: set[str] = set()
        pairs: list[tuple[int, int]] = []
        for version_arn, weight in routing:
            machine, number = _version_parts(version_arn)
            machines.add(machine)
            pairs.append((number, weight))
        if len(machines) > 1:
            raise ValidationException(
                "Routing configuration must contain state machine version ARNs of the same "
                "state machine"
            )
        if len({number for number, _ in pairs}) < len(pairs):
            raise ValidationException(
                "Routing configuration must contain distinct state machine version ARNs"
            )
        if sum(weight for _, weight in pairs) != 100:
            raise ValidationException("Sum of routing configuration weights must be equal to 100")
        (machine,) = machines
        store = self._versions()
        for version_arn, _ in routing:
            _, number = _version_parts(version_arn)
            if await store.get_version(machine, number) is None:
                raise ResourceNotFound(f"Resource not found: '{version_arn}'")
        return machine, tuple(pairs)

    # -- starting executions of versions and aliases -----------------------------------------

    async def qualified(
        self, arn: str, alias_arn: str | None = None
    ) -> tuple[VersionRecord, str | None]:
        """The version a qualified state machine ARN starts, and the alias it came through:
        a version's ARN is that version (``alias_arn``, when given, is the alias that chose
        it, for a start routed to another member); an alias's ARN draws one of its versions
        by weight.

        Raises:
            StateMachineDoesNotExist: no such version or alias (StartExecution's error).
        """
        machine, qualifier = split_qualified(arn)
        store = self._versions()
        if qualifier is None or not qualifier:
            raise InvalidArn(f"Invalid Arn: '{arn}'")
        if not qualifier.isdigit():
            alias = await store.get_alias(machine, qualifier)
            if alias is None:
                raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
            number = _draw(alias.routing)
            version = await store.get_version(machine, number)
            if version is None:
                raise StateMachineDoesNotExist(
                    f"State Machine Does Not Exist: '{machine}:{number}'"
                )
            return version, alias.arn
        version = await store.get_version(machine, int(qualifier))
        if version is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
        return version, alias_arn

    async def revision_machine(self, state_machine_arn: str, revision_id: str) -> StateMachine:
        """The loaded definition of a revision of a state machine, held under its
        :func:`revision_key` by the Runtime and the engine (loaded from the store once).

        Raises:
            StateMachineDoesNotExist: the store no longer holds the revision.
        """
        key = revision_key(state_machine_arn, revision_id)
        machine = self._machines.get(key)
        if machine is not None:
            return machine
        revisions = self._revision_store()
        found = (
            None
            if revisions is None
            else await revisions.get_state_machine_revision(state_machine_arn, revision_id)
        )
        if found is None:
            raise StateMachineDoesNotExist(
                f"State Machine Does Not Exist: '{state_machine_arn}' (revision {revision_id})"
            )
        machine = load_definition(found.definition, machine_type=found.type)
        self._machines[key] = machine
        if self._engine is not None:
            self._engine.add_machine(key, machine)
        return machine


def _draw(routing: tuple[tuple[int, int], ...]) -> int:
    """A version drawn from an alias's routing by weight (AWS draws at random too)."""
    if len(routing) == 1:
        return routing[0][0]
    point = random.randrange(100)  # traffic splitting, not a secret
    for number, weight in routing:
        if point < weight:
            return number
        point -= weight
    return routing[-1][0]


def _shown_revision(record: StateMachineRecord) -> str:
    """The revision id AWS would show: ``INITIAL`` for a machine never updated."""
    return record.revision_id if is_updated(record) else INITIAL_REVISION


def _unqualified(arn: str) -> str:
    machine, qualifier = split_qualified(arn)
    if qualifier is not None:
        raise InvalidArn(f"Invalid Arn: 'Unqualified state machine ARN expected: {arn}'")
    return machine


def _version_parts(arn: str) -> tuple[str, int]:
    machine, qualifier = split_qualified(arn)
    if qualifier is None or not qualifier.isdigit() or not machine.startswith("arn:"):
        raise InvalidArn(f"Invalid Arn: 'State machine version ARN expected: {arn}'")
    return machine, int(qualifier)


def _alias_parts(arn: str) -> tuple[str, str]:
    machine, qualifier = split_qualified(arn)
    if qualifier is None or qualifier.isdigit() or ":" in qualifier:
        raise InvalidArn(f"Invalid Arn: 'State machine alias ARN expected: {arn}'")
    return machine, qualifier
