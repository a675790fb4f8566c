"""STUB: being written."""
from __future__ import annotations
from typing import Any
class ChoiceRule:
    next: str
    @classmethod
    def compile(cls, rule: Any, pointer: str) -> ChoiceRule:
        raise NotImplementedError
    def evaluate(self, data: Any, scope: Any) -> bool:
        raise NotImplementedError
