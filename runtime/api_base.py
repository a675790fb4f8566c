"""The state every part of the ``Runtime`` facade shares, and how each part reaches it.

``Runtime`` (``runtime.api``) is composed of mixins, one per group of Step Functions verbs
(``api_tokens``: task-token answers; ``api_activities``: activities); each derives from
:class:`RuntimeBase`, which declares the fields ``Runtime.__init__`` sets and gives the open
store and engine. The verbs only call engine methods (issue 10). Imports the engine and the
store's protocol.
"""

from __future__ import annotations

from runtime.engine.clock import Clock
from runtime.engine.scheduler import Engine
from runtime.store.base import EventStore
from runtime.store.express import ExpressStore


class RuntimeBase:
    """The fields and accessors the Runtime's verbs share (set by ``Runtime.__init__``)."""

    clock: Clock
    region: str
    account: str
    _store: EventStore | None
    _engine: Engine | None

    @property
    def store(self) -> EventStore:
        """The open store, as given (or opened from a path): EXPRESS executions kept in memory
        (``express_history="memory"``) are not in it."""
        store = self._log
        return store.backing if isinstance(store, ExpressStore) else store

    @property
    def _log(self) -> EventStore:
        """The store the engine writes to: ``store``, or an ``ExpressStore`` over it."""
        if self._store is None:
            raise RuntimeError("use 'async with Runtime(...)' first")
        return self._store

    @property
    def engine(self) -> Engine:
        """The running engine."""
        if self._engine is None:
            raise RuntimeError("use 'async with Runtime(...)' first")
        return self._engine
