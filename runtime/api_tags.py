"""Tags of state machines and activities, verbs of ``Runtime`` (TagResource, UntagResource,
ListTagsForResource; issue 13).

A tag is a key (1-128 characters) and a value (0-256) of Unicode letters, digits, white space
and ``_ . : / = + - @`` (AWS's rule); a resource has at most 50. Only an existing state machine
(its unqualified ARN: AWS tags no version or alias) or activity can be tagged; anything else
is ``ResourceNotFound``. A state machine's or activity's tags go when it is deleted (the
store's deletes).

Imports the store's ``TagStore`` port and the shared runtime fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from runtime.api_base import RuntimeBase
from runtime.errors import ResourceNotFound, TooManyTags, ValidationException
from runtime.store.versions import TagStore

__all__ = ["MAX_TAGS", "TagVerbs"]

#: AWS's quota of tags per resource.
MAX_TAGS: Final = 50
_TAG_TEXT: Final = re.compile(r"[\w\s.:/=+\-@]*")
_STATE_MACHINE_PARTS: Final = 7


class TagVerbs(RuntimeBase):
    """The tag verbs of ``Runtime``."""

    def _tags(self) -> TagStore:
        store = self.store
        if not isinstance(store, TagStore):
            raise NotImplementedError(
                f"{type(store).__name__} keeps no tags (it does not implement TagStore)"
            )
        return store

    async def _check_resource(self, resource_arn: str) -> None:
        """Raise ``ResourceNotFound`` unless ``resource_arn`` names an existing state machine
        (unqualified) or activity."""
        parts = resource_arn.split(":")
        kind = parts[5] if len(parts) > 5 else ""
        found = False
        if kind == "stateMachine" and len(parts) == _STATE_MACHINE_PARTS:
            found = await self._log.get_state_machine(resource_arn) is not None
        elif kind == "activity":
            found = await self._log.get_activity(resource_arn) is not None
        if not found:
            raise ResourceNotFound(f"Resource not found: '{resource_arn}'")

    async def tag_resource(self, resource_arn: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags of a state machine or activity (TagResource).

        Raises:
            ResourceNotFound: no such state machine or activity.
            ValidationException: a key or value breaks AWS's rule.
            TooManyTags: the resource would have more than 50 tags.
        """
        for key, value in tags.items():
            if not 1 <= len(key) <= 128 or not _TAG_TEXT.fullmatch(key):
                raise ValidationException(f"Invalid tag key: '{key}'")
            if len(value) > 256 or not _TAG_TEXT.fullmatch(value):
                raise ValidationException(f"Invalid tag value for key '{key}': '{value}'")
        await self._check_resource(resource_arn)
        store = self._tags()
        held = await store.list_tags(resource_arn)
        if len(held.keys() | tags.keys()) > MAX_TAGS:
            raise TooManyTags(
                f"Too many tags: a resource can have at most {MAX_TAGS} tags: '{resource_arn}'"
            )
        await store.tag_resource(resource_arn, tags)

    async def untag_resource(self, resource_arn: str, keys: Sequence[str]) -> None:
        """Remove tags of a state machine or activity (UntagResource; unknown keys are not an
        error).

        Raises:
            ResourceNotFound: no such state machine or activity.
        """
        await self._check_resource(resource_arn)
        await self._tags().untag_resource(resource_arn, keys)

    async def list_tags_for_resource(self, resource_arn: str) -> dict[str, str]:
        """A state machine's or activity's tags, by key (ListTagsForResource).

        Raises:
            ResourceNotFound: no such state machine or activity.
        """
        await self._check_resource(resource_arn)
        return await self._tags().list_tags(resource_arn)
