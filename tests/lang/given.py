"""What a compiled Choice rule is evaluated in, for the tests: a fixed effective input, scope
and JSONata environment (``runtime.lang.choice.ChoiceBindings``)."""

from __future__ import annotations

from typing import Any

from runtime.lang.jsonata_functions import Env
from runtime.lang.scope import Scope


class Given:
    """``data`` and ``scope`` for a JSONPath rule; ``env`` for a JSONata ``Condition``."""

    def __init__(self, data: Any = None, scope: Scope | None = None, env: Env | None = None):
        self.data = data
        self._scope = scope if scope is not None else Scope()
        self._env = env if env is not None else Env({"input": data})

    def scope(self) -> Scope:
        return self._scope

    def env(self) -> Env:
        return self._env
