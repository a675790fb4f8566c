"""The state every part of the ``Runtime`` facade shares, and how each part reaches it.

``Runtime`` (``runtime.api``) is composed of mixins, one per group of Step Functions verbs
(``api_tokens``: task-token answers; ``api_activities``: activities); each derives from
:class:`RuntimeBase`, which declares the fields ``Runtime.__init__`` sets and gives the open
store and engine. The verbs only call engine methods (issue 10). Imports the engine and the
store's protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.definition.model import StateMachine
from runtime.engine.clock import Clock
from runtime.engine.scheduler import Engine
from runtime.store.base import EventStore, StateMachineRecord
from runtime.store.express import ExpressStore, is_express

if TYPE_CHECKING:
    from runtime.api_cluster import ClusterLink


class RuntimeBase:
    """The fields and accessors the Runtime's verbs share (set by ``Runtime.__init__``)."""

    clock: Clock
    region: str
    account: str
    _store: EventStore | None
    _engine: Engine | None
    _cluster: ClusterLink | None
    """The cluster membership when the store is a shared PostgreSQL database."""
    _machines: dict[str, StateMachine]
    """State machine arn -> its loaded definition."""
    _machine_records: dict[str, StateMachineRecord]
    _machine_read_at: dict[str, float]
    """State machine arn -> when (monotonic) its record was last read from the store."""
    _quarantined: dict[str, str]
    """State machine arn -> why its stored definition failed to load on open."""

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

    def _owns(self, execution_arn: str) -> bool:
        """True if this process runs execution ``execution_arn``: always, but in a cluster
        only while it holds the execution's partition (EXPRESS executions run where they
        were started)."""
        cluster = self._cluster
        return cluster is None or cluster.owns(execution_arn) or is_express(execution_arn)

    def _elsewhere(self, execution_arn: str) -> bool:
        """True if another member of the cluster runs execution ``execution_arn``."""
        return not self._owns(execution_arn)

    async def _ask(
        self, kind: str, body: dict[str, Any], execution_arn: str, created: float
    ) -> Any:
        """Have the member that owns ``execution_arn`` apply request ``kind``; its result."""
        cluster = self._cluster
        if cluster is None:
            raise RuntimeError("not a member of a cluster")
        return await cluster.ask(kind, body, execution_arn, created)
