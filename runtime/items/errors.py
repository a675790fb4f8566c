"""Errors of the Distributed Map's item source and result sink.

Three kinds, kept apart because they surface at different moments:

* :class:`InvalidSpec`: an ``ItemReader`` or ``ResultWriter`` object that can never work (an
  unknown ``InputType``, ``CSVHeaders`` without ``GIVEN``, a missing ``Bucket``...). It is a
  definition problem; ``pointer`` names the offending field relative to the spec object.
* :class:`ItemReaderFailed` and :class:`ResultWriterFailed`: in-machine failures with AWS's
  error names ``States.ItemReaderFailed`` / ``States.ResultWriterFailed`` (ASL, "Error names").
  They are :class:`runtime.errors.StatesError`, so the core can turn them into a failed Map Run
  that Retry and Catch see.

Imports only :mod:`runtime.errors`.
"""

from __future__ import annotations

from typing import Final, final

from runtime.errors import StatesError

ITEM_READER_FAILED: Final = "States.ItemReaderFailed"
RESULT_WRITER_FAILED: Final = "States.ResultWriterFailed"


@final
class InvalidSpec(ValueError):
    """An ItemReader/ResultWriter object that is wrong whatever the input (a definition error)."""

    def __init__(self, pointer: str, message: str) -> None:
        self.pointer = pointer
        self.message = message
        super().__init__(f"{message} at {pointer or '/'}")


@final
class ItemReaderFailed(StatesError):
    """A Map state failed to read all items as its ``ItemReader`` field specifies."""

    def __init__(self, cause: str) -> None:
        super().__init__(ITEM_READER_FAILED, cause)


@final
class ResultWriterFailed(StatesError):
    """A Map state failed to write all results as its ``ResultWriter`` field specifies."""

    def __init__(self, cause: str) -> None:
        super().__init__(RESULT_WRITER_FAILED, cause)
