"""The store ports of state machine versions, aliases and tags (issue 13), and their records.

Two additive ports beside ``EventStore`` (a store without them still satisfies it), each
implemented by the memory, SQLite and PostgreSQL stores:

:class:`VersionStore`, versions and aliases of state machines. Its contract:

* A version (PublishStateMachineVersion) is a row keyed by ``(state_machine_arn, version)``
  that names a revision of the state machine (``revision_id``; its definition is the
  revision's row). ``publish_version`` is atomic, across processes too: when a live version of
  the machine already names ``revision_id`` it returns that one and ``False`` (AWS publishes a
  revision once); otherwise it writes version ``n + 1``, ``n`` the highest number the machine
  ever had (a deleted version's number is not given again), and returns it and ``True``.
* ``delete_version`` deletes a version (its number stays taken) and says whether it existed.
  ``list_versions`` lists the live ones, newest (highest number) first.
* An alias is a row keyed by ``(state_machine_arn, name)`` holding its routing (one or two
  ``(version, weight)`` pairs). ``put_alias(create=True)`` writes only a new key and says
  whether it did; ``put_alias(create=False)`` replaces an existing one only (but never its
  ``creation_date``) and says whether it did. ``list_aliases`` lists oldest first.
* ``delete_state_machine`` of the ``StateMachineRevisions`` port deletes the machine's
  versions (their numbers too: a machine created again under the name starts at 1), aliases
  and tags in the same transaction.

:class:`TagStore`, tags of state machines and activities (TagResource). Its contract: a
resource's tags are a mapping of key to value; ``tag_resource`` merges (a key tagged again
takes the new value), ``untag_resource`` removes keys (unknown keys are not an error),
``list_tags`` returns them sorted by key. Deleting an activity (``delete_activity``) deletes
its tags too.

Imports msgspec only (no I/O here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import msgspec

__all__ = ["AliasRecord", "TagStore", "VersionRecord", "VersionStore"]


class VersionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A published version of a state machine."""

    state_machine_arn: str
    """The unqualified ARN of its state machine."""
    version: int
    """1, 2, ...: the ARN's last part."""
    revision_id: str
    """The revision it publishes (``StateMachineRecord.revision_id``)."""
    description: str | None
    creation_date: float

    @property
    def arn(self) -> str:
        """The version's ARN, ``<state machine ARN>:<version>``."""
        return f"{self.state_machine_arn}:{self.version}"


class AliasRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An alias of a state machine: a name routing executions to one or two versions."""

    state_machine_arn: str
    name: str
    description: str | None
    routing: tuple[tuple[int, int], ...]
    """``(version, weight)`` pairs, one or two, the weights summing to 100."""
    creation_date: float
    update_date: float

    @property
    def arn(self) -> str:
        """The alias's ARN, ``<state machine ARN>:<name>``."""
        return f"{self.state_machine_arn}:{self.name}"


@runtime_checkable
class VersionStore(Protocol):
    """The port of state machine versions and aliases (see the module docstring)."""

    async def publish_version(
        self,
        state_machine_arn: str,
        revision_id: str,
        description: str | None,
        creation_date: float,
    ) -> tuple[VersionRecord, bool]:
        """The version of ``revision_id``: the live one naming it (and ``False``), or a new
        one numbered after every number the machine had (and ``True``)."""
        ...

    async def get_version(self, state_machine_arn: str, version: int) -> VersionRecord | None:
        """A live version, or ``None``."""
        ...

    async def list_versions(self, state_machine_arn: str) -> list[VersionRecord]:
        """The machine's live versions, highest number first."""
        ...

    async def delete_version(self, state_machine_arn: str, version: int) -> bool:
        """Delete a version (its number stays taken); whether it existed."""
        ...

    async def put_alias(self, record: AliasRecord, *, create: bool) -> bool:
        """Write an alias: a new one (``create``) or over an existing one; whether it did."""
        ...

    async def get_alias(self, state_machine_arn: str, name: str) -> AliasRecord | None:
        """An alias, or ``None``."""
        ...

    async def list_aliases(self, state_machine_arn: str) -> list[AliasRecord]:
        """The machine's aliases, oldest first (ties: name)."""
        ...

    async def delete_alias(self, state_machine_arn: str, name: str) -> bool:
        """Delete an alias; whether it existed."""
        ...


@runtime_checkable
class TagStore(Protocol):
    """The port of resources' tags (see the module docstring)."""

    async def tag_resource(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags of a resource."""
        ...

    async def untag_resource(self, resource_arn: str, keys: Sequence[str]) -> None:
        """Remove tags of a resource (unknown keys are ignored)."""
        ...

    async def list_tags(self, resource_arn: str) -> dict[str, str]:
        """A resource's tags, sorted by key."""
        ...
