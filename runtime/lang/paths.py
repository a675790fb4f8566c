"""STUB: being written. See the interface in the team notes."""
from __future__ import annotations
from typing import Any
class PathNotFound(Exception):
    pass
class Path:
    text: str
    @classmethod
    def compile(cls, text: str) -> Path:
        raise NotImplementedError
    def evaluate(self, data: Any) -> Any:
        raise NotImplementedError
