"""STUB: being written."""
from __future__ import annotations
from typing import Any
class Payload:
    @classmethod
    def compile(cls, template: Any, pointer: str) -> Payload:
        raise NotImplementedError
    def evaluate(self, data: Any, scope: Any) -> Any:
        raise NotImplementedError
class Expression:
    @classmethod
    def compile(cls, text: str, field: str, pointer: str) -> Expression:
        raise NotImplementedError
    def evaluate(self, data: Any, scope: Any) -> Any:
        raise NotImplementedError
