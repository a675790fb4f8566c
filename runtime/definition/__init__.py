"""Compile time: ASL JSON -> immutable, validated model.

``load_definition`` decodes, checks and compiles a definition into a
:class:`~runtime.definition.model.StateMachine`; a bad definition raises
:class:`~runtime.errors.InvalidDefinition` with AWS's rule code and a JSON Pointer.
"""

from __future__ import annotations

from runtime.definition.load import load_definition
from runtime.definition.model import (
    Catcher,
    Choice,
    Fail,
    IOPaths,
    ItemBatcher,
    Map,
    Parallel,
    Pass,
    Retrier,
    State,
    StateMachine,
    Succeed,
    Task,
    Wait,
)

__all__ = [
    "Catcher",
    "Choice",
    "Fail",
    "IOPaths",
    "ItemBatcher",
    "Map",
    "Parallel",
    "Pass",
    "Retrier",
    "State",
    "StateMachine",
    "Succeed",
    "Task",
    "Wait",
    "load_definition",
]
