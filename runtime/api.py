"""The Python API: a ``Runtime`` with the Step Functions verbs, over an engine and a store.

``Runtime`` is an async context manager. It opens its store (SQLite by default, ``"memory"`` for
tests and EXPRESS-style runs, PostgreSQL for a ``postgresql://`` DSN), resumes the executions that
were open, and runs the engine until the ``async with`` block ends. Verbs take and return Step
Functions' vocabulary in snake_case.

The facade is in parts: lifecycle and executions (start, describe, list, stop) here; redrive
in ``api_redrive``; state machines in ``api_machines``; their versions and aliases in
``api_versions``; tags in ``api_tags``; task-token answers in ``api_tokens``; activities in
``api_activities``; requests recorded in the store in ``api_requests``; membership of a
cluster on PostgreSQL in ``api_cluster``; the shared fields in ``api_base``; the returned
values in ``api_types`` (re-exported here). The verbs call engine methods only (issue 10).
"""

from __future__ import annotations

import collections
import contextlib
import gc
import hashlib
import math
import os
import sys
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Literal,
    Self,
    cast,
    final,
)

import anyio
import msgspec
import structlog

from runtime.api_activities import ActivityVerbs
from runtime.api_children import ChildHost, express_id
from runtime.api_machines import StateMachineVerbs
from runtime.api_map_runs import MapRunVerbs
from runtime.api_redrive import RedriveVerbs
from runtime.api_requests import Requests
from runtime.api_schedules import ScheduleVerbs
from runtime.api_tags import TagVerbs
from runtime.api_tokens import TaskTokenVerbs
from runtime.api_types import (
    MAX_INPUT_BYTES,
    NAME,
    ActivityDescription,
    ActivityTask,
    ExecutionDescription,
    StartExecutionOutput,
    hide_map_runs,
    is_qualified,
    json_text,
    split_qualified,
)
from runtime.api_versions import VersionVerbs
from runtime.core.decide import dumps, start_event
from runtime.core.events import HistoryEvent
from runtime.core.evolve import evolve, fold
from runtime.core.limits import DEFAULT_LIMITS, ExecutionLimits
from runtime.core.state import ExecutionState, Frame
from runtime.definition.model import StateMachine
from runtime.engine.clock import Clock, ManualClock, SystemClock
from runtime.engine.handlers import Handler, HandlerRegistry
from runtime.engine.scheduler import Engine, Live
from runtime.errors import (
    EXECUTION_LIMIT_MESSAGE,
    ExecutionAlreadyExists,
    ExecutionDoesNotExist,
    ExecutionLimitExceeded,
    InvalidArn,
    InvalidExecutionInput,
    InvalidName,
    PartitionLost,
    StateMachineDoesNotExist,
)
from runtime.store.base import (
    EventStore,
    ExecutionRecord,
    StateMachineRecord,
)
from runtime.store.express import ExpressStore, is_express
from runtime.store.memory import MemoryStore
from runtime.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from runtime.api_cluster import ClusterLink
    from runtime.items import ObjectStore
    from runtime.store.postgres import PostgresStore

__all__ = [
    "DEFAULT_STORE",
    "ActivityDescription",
    "ActivityTask",
    "ExecutionDescription",
    "Runtime",
    "StartExecutionOutput",
    "hide_map_runs",
]

JSON = Any

DEFAULT_STORE: Final = "statemill.db"
log = structlog.get_logger("statemill.api")
#: Text this long or shorter is within the input quota whatever its characters (UTF-8 takes at
#: most 4 bytes per character), so its bytes need not be counted.
_ASCII_SAFE_LENGTH: Final = MAX_INPUT_BYTES // 4


POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")
#: Executions whose parent the nesting check of child starts remembers.
_PARENTS_HELD: Final = 10_000
"""A ``store`` string with one of these prefixes is a PostgreSQL DSN (asyncpg's form)."""


@final
class Runtime(
    RedriveVerbs,
    StateMachineVerbs,
    VersionVerbs,
    TagVerbs,
    TaskTokenVerbs,
    ActivityVerbs,
    ScheduleVerbs,
    MapRunVerbs,
):
    """Runs ASL state machines with Python handlers; every execution is an event log.

    Args:
        store: an ``EventStore``, ``"memory"``, a PostgreSQL DSN (``postgresql://...``), or the
            path of a SQLite file (text or a ``pathlib.Path``; the default).
        handlers: a ``HandlerRegistry`` or a mapping of resource name to async callable.
        clock: the clock to use; ``virtual_time=True`` makes it a ``ManualClock`` whose time
            jumps to the next timer whenever nothing else can progress.
        workers: scheduler workers (decisions in parallel across executions).
        max_handler_concurrency: global cap on handler calls in flight.
        tune_gc: opt in to raising the process-wide garbage collector's thresholds while the
            runtime is open (it holds many long-lived objects: ``benchmarks chain`` ran ~1.6x
            faster). Off by default, as it changes the whole process. Scoped: the thresholds
            found when the first tuning runtime opened are restored when the last one closes.
        limits: the runtime's quotas (``ExecutionLimits``): history events per execution,
            open executions (``start_execution`` then raises ``ExecutionLimitExceeded``) and
            nesting depth of child executions (the starting Task then fails with
            ``StepFunctions.ExecutionLimitExceeded``). ``None`` in a field lifts that bound.
        request_poll_interval: on a SQLite or PostgreSQL store, how often (wall-clock
            seconds) at the latest to apply the requests recorded in it (the command line's
            ``statemill start|stop|send-task-*``, and on PostgreSQL the other members' verbs
            about executions this process owns; a notification applies them sooner); None:
            never (on PostgreSQL only when partitions are taken over: other members then wait).
        express_history: ``"memory"`` (default): on a durable store, EXPRESS executions run on
            an in-memory log that is dropped when they end, as AWS keeps no history for them
            (``start_sync_execution`` returns the result; ``describe_execution`` answers for
            the last 10,000 ended ones; ``get_execution_history`` raises ``InvalidArn``; they
            do not survive a restart). ``"durable"``: store them like STANDARD executions
            (AWS's loggingConfiguration level ALL, and more: their history can be replayed).
        lease_ttl: on a PostgreSQL store shared by several runtime processes (each a member
            of one cluster: README "Scaling out on PostgreSQL"), how long (seconds) this
            process's partition leases live without renewal; another member takes them over
            this long after this one stops. Renewed every tenth of it.
        object_store: where a distributed Map's ``ItemReader`` reads its items and its
            ``ResultWriter`` writes its results (``arn:aws:states:::s3:*`` resources): a
            ``runtime.items.LocalObjectStore(folder)`` (a bucket is a sub-folder) or an
            ``S3ObjectStore``; ``None``: such a Map fails with ``States.ItemReaderFailed``.
    """

    def __init__(
        self,
        store: EventStore | str | os.PathLike[str] = DEFAULT_STORE,
        *,
        handlers: HandlerRegistry | Mapping[str, Handler] | None = None,
        clock: Clock | None = None,
        virtual_time: bool = False,
        workers: int = 4,
        max_handler_concurrency: int | None = None,
        tune_gc: bool = False,
        limits: ExecutionLimits = DEFAULT_LIMITS,
        region: str = "us-east-1",
        account: str = "123456789012",
        request_poll_interval: float | None = 0.5,
        express_history: Literal["memory", "durable"] = "memory",
        lease_ttl: float = 10.0,
        object_store: ObjectStore | None = None,
    ) -> None:
        if express_history not in ("memory", "durable"):
            raise ValueError(
                f"express_history must be 'memory' or 'durable', not {express_history!r}"
            )
        self._express_history = express_history
        # A path (``pathlib.Path``) names an SQLite file as its text does.
        self._store_arg = os.fspath(store) if isinstance(store, os.PathLike) else store
        self._request_poll_interval = request_poll_interval
        if not lease_ttl > 0:
            raise ValueError(f"lease_ttl must be positive, not {lease_ttl}")
        self._lease_ttl = lease_ttl
        self.object_store = object_store
        self._cluster: ClusterLink | None = None
        self._requests = Requests(self)
        self.handlers = HandlerRegistry()
        if handlers is not None:
            self.handlers.update(handlers)
        if clock is None:
            clock = ManualClock() if virtual_time else SystemClock()
        self.clock = clock
        self.region = region
        self.account = account
        self._workers = workers
        self._tune_gc = tune_gc
        self.limits = limits
        self._max_handler_concurrency = max_handler_concurrency
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._store: EventStore | None = None
        self._engine: Engine | None = None
        self._machines: dict[str, StateMachine] = {}
        self._machine_records: dict[str, StateMachineRecord] = {}
        self._machine_read_at: dict[str, float] = {}
        self._quarantined: dict[str, str] = {}
        """State machine arn -> why its stored definition failed to load on open."""
        self._parents: collections.OrderedDict[str, str | None] = collections.OrderedDict()
        """Execution arn -> its parent's (never changes), for the nesting check of child
        starts: a Map Run's children started here on another member's behalf read their
        parent's record once, not once each. The newest :data:`_PARENTS_HELD`."""

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        stack = contextlib.AsyncExitStack()
        await stack.__aenter__()
        if self._tune_gc:
            _GC_TUNING.enter()
            stack.callback(_GC_TUNING.exit)
        try:
            store = self._store_arg
            if isinstance(store, str):
                if store == "memory":
                    store = MemoryStore()
                elif store.startswith(POSTGRES_SCHEMES):
                    # Imported here: asyncpg is only loaded by runtimes that use it.
                    from runtime.store.postgres import PostgresStore

                    store = await stack.enter_async_context(PostgresStore.open(store))
                else:
                    from runtime.store.holder import hold_writer

                    # One runtime per SQLite file (refuse, never standby): StoreLocked names
                    # the holder. The store itself takes no lock, so the CLI's requests work.
                    stack.enter_context(hold_writer(store))
                    store = await stack.enter_async_context(SqliteStore.open(store))
            express_in_memory = self._express_history == "memory"
            if express_in_memory and store.durable and not isinstance(store, ExpressStore):
                store = ExpressStore(store)
            self._store = store
            children = ChildHost(self, self.object_store)
            stack.push_async_callback(children.close)  # after the engine has stopped
            engine = Engine(
                store,
                self.handlers,
                self.clock,
                workers=self._workers,
                max_handler_concurrency=self._max_handler_concurrency,
                limits=self.limits,
                nested_host=children,
            )
            self._engine = engine
            shared = _postgres_store(store)
            if shared is not None:
                # A member of the cluster on this database (issue 12). Handed over after the
                # engine stops (the exit stack unwinds the task group first).
                from runtime.api_cluster import ClusterLink

                self._cluster = ClusterLink(self, shared, lease_ttl=self._lease_ttl)
                stack.push_async_callback(self._cluster.leave)
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            await tg.start(engine.run)
            for record in await store.list_state_machines():
                self._reload(record)
            poll = self._request_poll_interval if self._requests.log() is not None else None
            if self._cluster is not None:
                # The partitions taken now are loaded (and their requests applied) by the
                # member's hook; later ones as they are gained.
                engine.owns = self._owns
                tg.start_soon(self._cluster.run)  # renews and answers while this one joins
                await self._cluster.join()
            else:
                open_executions = await store.open_executions()
                beats = await store.heartbeats([r.execution_arn for r in open_executions])
                await self.load_revisions(open_executions)  # each runs the one it started on
                recovered = await engine.recover(open_executions, self._machines)
                engine.restore_heartbeats(beats)
                if poll is not None:
                    # Before the recovered executions decide: an answer recorded while no
                    # runtime ran beats a deadline that passed after it was recorded.
                    await self.apply_requests()
                engine.wake(recovered)
            if poll is not None:
                tg.start_soon(self._requests.serve, poll)
            tg.start_soon(self.serve_schedules)  # issue 14: fire the stored schedules
        except BaseException:
            await stack.__aexit__(None, None, None)
            raise
        self._exit_stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._exit_stack = self._exit_stack, None
        if stack is not None:
            engine = self._engine
            if engine is not None:
                engine.cancel_handlers()
            # Close without handing the caller's exception to the task group, which would wrap
            # it in an ExceptionGroup: the caller's exception propagates unchanged.
            await stack.aclose()

    # -- handlers -----------------------------------------------------------------------------

    def register_handler(
        self, name: str, fn: Handler, *, max_concurrency: int | None = None
    ) -> None:
        """Register ``fn`` as the handler for resource (or Lambda function) ``name``."""
        self.handlers.register(name, fn, max_concurrency=max_concurrency)

    def handler(
        self, name: str, *, max_concurrency: int | None = None
    ) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register_handler`."""
        return self.handlers.handler(name, max_concurrency=max_concurrency)

    def _described(self, record: ExecutionRecord) -> ExecutionDescription:
        described = ExecutionDescription.of(record)
        reason = self._quarantined.get(record.state_machine_arn)
        if reason is None or record.status != "RUNNING":
            return described
        why = f"its state machine is quarantined: {reason}"
        return msgspec.structs.replace(described, quarantined=why)

    # -- executions ---------------------------------------------------------------------------

    async def start_execution(
        self, state_machine_arn: str, input: JSON = None, *, name: str | None = None
    ) -> StartExecutionOutput:
        """Start an execution (StartExecution). ``input`` is a JSON value (default ``{}``).

        Starting again with the same name and input while the execution runs is idempotent:
        it returns the running execution (as AWS does for STANDARD machines).

        Raises:
            StateMachineDoesNotExist, InvalidName, InvalidExecutionInput, ExecutionAlreadyExists.
        """
        return await self._start(state_machine_arn, input, name=name)

    async def _start(
        self,
        state_machine_arn: str,
        input: JSON = None,
        *,
        name: str | None = None,
        parent: str | None = None,
        map_run_arn: str | None = None,
        alias_arn: str | None = None,
    ) -> StartExecutionOutput:
        version = None
        if is_qualified(state_machine_arn):  # a version's or an alias's ARN
            version, alias_arn = await self.qualified(state_machine_arn, alias_arn)
            state_machine_arn = version.state_machine_arn
        if state_machine_arn in self._quarantined:
            raise self._quarantine_error(state_machine_arn)
        machine = self._machines.get(state_machine_arn)
        sm_record = self._machine_records.get(state_machine_arn)
        if machine is None or sm_record is None:
            # Maybe created by another process on the same store since this one opened.
            await self.machine_record(state_machine_arn)
            if state_machine_arn in self._quarantined:
                raise self._quarantine_error(state_machine_arn)
            machine = self._machines.get(state_machine_arn)
            sm_record = self._machine_records.get(state_machine_arn)
        if machine is None or sm_record is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{state_machine_arn}'")
        revision_id = sm_record.revision_id
        if version is not None and version.revision_id != revision_id:
            revision_id = version.revision_id
            machine = await self.revision_machine(state_machine_arn, revision_id)
        version_arn = None if version is None else version.arn
        engine = self.engine
        if not name:
            name = engine.new_name()  # UUID-shaped: always a valid name
        elif not NAME.fullmatch(name):
            raise InvalidName(f"Invalid Name: '{name}'")
        text = json_text({} if input is None else input, "Invalid execution input")
        if len(text) > _ASCII_SAFE_LENGTH and len(text.encode()) > MAX_INPUT_BYTES:
            raise InvalidExecutionInput("Execution input exceeds the 256 KiB limit")
        prefix = f"arn:aws:states:{self.region}:{self.account}"
        execution_arn = f"{prefix}:execution:{sm_record.name}:{name}"
        if sm_record.type == "EXPRESS":
            # EXPRESS execution ARNs carry one more part, a unique id (as AWS's do); a Map
            # Run's child derives it from its name, so that starting it again finds it.
            unique = engine.new_name() if map_run_arn is None else express_id(name)
            execution_arn = f"{prefix}:express:{sm_record.name}:{name}:{unique}"
        now = self.clock.now()
        # Decoded once from the checked text: the state holds its own copy of the input, never
        # the caller's objects; the event records the text itself (no second encoding) and
        # the state is evolved from the decoded value (no second decoding).
        value = msgspec.json.decode(text)
        event = start_event(
            execution_arn=execution_arn,
            state_machine_arn=state_machine_arn,
            name=name,
            input=value,
            now=now,
            role_arn=f"arn:aws:iam::{self.account}:role/statemill",
            input_text=text,
            version_arn=version_arn,
            alias_arn=alias_arn,
        )
        record = ExecutionRecord(
            execution_arn=execution_arn,
            state_machine_arn=state_machine_arn,
            name=name,
            status="RUNNING",
            start_date=now,
            input=text,
            machine_type=sm_record.type,
            parent_execution_arn=parent,
            revision_id=revision_id,
            map_run_arn=map_run_arn,
            state_machine_version_arn=version_arn,
            state_machine_alias_arn=alias_arn,
        )
        if engine.holds(execution_arn):
            return await self._existing(execution_arn, text)
        if parent is not None:
            await self._check_nesting(parent)
        if sm_record.type == "STANDARD" and self._elsewhere(execution_arn):
            return await self._start_elsewhere(
                version_arn or state_machine_arn, value, name, parent, now, map_run_arn, alias_arn
            )
        # Admission without a coroutine in the common case (no backpressure): the async
        # context manager it replaced was ~15% of a start (issue 10, the start path).
        if not engine.try_admit_start():
            await engine.admit_start()
        try:
            live = Live(record, machine, evolve(ExecutionState(), event, value))
            try:
                await engine.create(record, [event], adopt=live)
            except ExecutionAlreadyExists:
                return await self._existing(execution_arn, text)
            except PartitionLost:  # taken over while it was created: ask the new owner
                return await self._start_elsewhere(
                    version_arn or state_machine_arn,
                    value,
                    name,
                    parent,
                    now,
                    map_run_arn,
                    alias_arn,
                )
        finally:
            engine.release_start()
        return StartExecutionOutput(execution_arn=execution_arn, start_date=now)

    async def _start_elsewhere(
        self,
        state_machine_arn: str,
        value: JSON,
        name: str,
        parent: str | None,
        now: float,
        map_run_arn: str | None = None,
        alias_arn: str | None = None,
    ) -> StartExecutionOutput:
        """Start an execution whose partition another member owns: that member starts it
        (of the version an alias drew here, ``state_machine_arn`` then a version's ARN)."""
        body: dict[str, JSON] = {"stateMachineArn": state_machine_arn, "input": value}
        body["name"] = name
        if parent is not None:
            body["parentExecutionArn"] = parent
        if map_run_arn is not None:
            body["mapRunArn"] = map_run_arn
        if alias_arn is not None:
            body["stateMachineAliasArn"] = alias_arn
        execution_arn = self._execution_arn(split_qualified(state_machine_arn)[0], name)
        started = await self._ask("start", body, execution_arn, now)
        return StartExecutionOutput(
            execution_arn=started["executionArn"], start_date=started["startDate"]
        )

    def _execution_arn(self, state_machine_arn: str, name: str) -> str:
        record = self._machine_records[state_machine_arn]
        return f"arn:aws:states:{self.region}:{self.account}:execution:{record.name}:{name}"

    async def _check_nesting(self, parent: str) -> None:
        """Refuse a child execution nested deeper than ``limits.max_nesting_depth`` (a state
        machine that starts itself would multiply without end: issue 11 saw 31,247 live
        executions in 10 s). The depth is found by walking the parents, at most the limit's
        length of steps, from memory where they are held (they are, while a ``.sync`` child
        runs) and from the store otherwise.
        """
        limit = self.limits.max_nesting_depth
        if limit is None:
            return
        depth = 1  # the child's
        ancestor: str | None = parent
        while ancestor is not None:
            if ancestor in self._parents:
                ancestor = self._parents[ancestor]
            else:
                record = self.engine.record_of(ancestor) or await self._log.get_execution(ancestor)
                if record is None:
                    return
                self._parents[ancestor] = record.parent_execution_arn
                if len(self._parents) > _PARENTS_HELD:
                    self._parents.popitem(last=False)
                ancestor = record.parent_execution_arn
            if ancestor is not None:
                depth += 1
            if depth > limit:
                raise ExecutionLimitExceeded(
                    f"{EXECUTION_LIMIT_MESSAGE} Child executions may be nested at most "
                    f"{limit} deep (ExecutionLimits.max_nesting_depth): '{parent}' is at "
                    f"depth {limit}."
                )

    async def _existing(self, execution_arn: str, text: str) -> StartExecutionOutput:
        """StartExecution's idempotency: the same name and input while RUNNING returns the
        running execution; anything else is ExecutionAlreadyExists."""
        record = await self._log.get_execution(execution_arn)
        if record is not None and record.status == "RUNNING" and record.input == text:
            return StartExecutionOutput(execution_arn=execution_arn, start_date=record.start_date)
        raise ExecutionAlreadyExists(f"Execution Already Exists: '{execution_arn}'")

    async def wait_for_execution(
        self, execution_arn: str, *, timeout: float | None = None
    ) -> ExecutionDescription:
        """Wait until the execution ends and describe it (not an AWS verb)."""
        if self._cluster is not None:
            with anyio.fail_after(math.inf if timeout is None else timeout):
                ended = await self._wait_in_cluster(execution_arn)
            if ended is not None:
                return self._described(ended)
            return await self.describe_execution(execution_arn)
        if timeout is None:
            # No cancel scope when there is no deadline: it was 11% of benchmarks/chain.
            await self.engine.wait(execution_arn)
        else:
            with anyio.fail_after(timeout):
                await self.engine.wait(execution_arn)
        return await self.describe_execution(execution_arn)

    async def _wait_in_cluster(self, execution_arn: str) -> ExecutionRecord | None:
        """Wait for an execution that this member or another one runs (ownership may move
        either way meanwhile); its final record when it was read from the store on the way
        (``None``: describe it)."""
        engine = self.engine
        link = self._cluster
        assert link is not None
        while True:
            if engine.holds(execution_arn):
                await engine.wait(execution_arn)  # ends, or is released to another member
                record = None
            else:
                record = await link.wait_elsewhere(
                    execution_arn, lambda: not engine.holds(execution_arn), None
                )
                if record is not None and record.status != "RUNNING":
                    return record
            if engine.recent_record(execution_arn) is not None:
                return None
            record = await self._log.get_execution(execution_arn)
            if record is None or record.status != "RUNNING":
                return record

    async def describe_execution(self, execution_arn: str) -> ExecutionDescription:
        """The execution's status, input and result (DescribeExecution)."""
        recent = self.engine.recent_record(execution_arn)
        if recent is not None:
            return ExecutionDescription.of(recent)
        record = await self._log.get_execution(execution_arn)
        if record is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
        return self._described(record)

    async def get_execution_history(
        self, execution_arn: str, *, include_map_runs: bool = False
    ) -> list[HistoryEvent]:
        """The execution's events, oldest first (GetExecutionHistory).

        A distributed Map's iterations run as their own map run; as in AWS, their events are
        not part of the parent's history unless ``include_map_runs`` is set.
        """
        if isinstance(self._log, ExpressStore) and is_express(execution_arn):
            raise InvalidArn(
                f"Invalid Arn: EXPRESS executions keep no history (as on AWS): "
                f"'{execution_arn}'; create the Runtime with express_history='durable' to keep it"
            )
        if await self._log.get_execution(execution_arn) is None:
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
        events = await self._log.read(execution_arn)
        return events if include_map_runs else hide_map_runs(events)

    async def list_executions(
        self,
        state_machine_arn: str | None = None,
        *,
        status_filter: str | None = None,
        redrive_filter: str | None = None,
        after: tuple[float, str] | None = None,
        max_results: int = 1000,
        map_run_arn: str | None = None,
    ) -> list[ExecutionDescription]:
        """Executions, newest first (ListExecutions). ``redrive_filter`` is ``"REDRIVEN"`` or
        ``"NOT_REDRIVEN"``; ``after`` is the ``(start_date, execution_arn)`` of the last
        execution of the previous page (only those after it are listed); ``map_run_arn``:
        only the child executions of that Map Run. A version's ARN lists the executions that
        run that version (started from it or through an alias); an alias's ARN those started
        through that alias."""
        redriven = None if redrive_filter is None else redrive_filter == "REDRIVEN"
        version_arn = alias_arn = None
        if state_machine_arn is not None:
            machine, qualifier = split_qualified(state_machine_arn)
            if qualifier is not None:
                if qualifier.isdigit():
                    version_arn = state_machine_arn
                else:
                    alias_arn = state_machine_arn
                state_machine_arn = machine
        records = await self._log.list_executions(
            state_machine_arn,
            status=status_filter,
            limit=max_results,
            after=after,
            redriven=redriven,
            map_run_arn=map_run_arn,
            version_arn=version_arn,
            alias_arn=alias_arn,
        )
        return [self._described(r) for r in records]

    async def stop_execution(
        self, execution_arn: str, *, error: str | None = None, cause: str | None = None
    ) -> ExecutionDescription:
        """Stop a running execution (StopExecution): status ABORTED."""
        if self._elsewhere(execution_arn):
            body = {"executionArn": execution_arn, "error": error, "cause": cause}
            await self._ask("stop", body, execution_arn, self.clock.now())
            return await self.describe_execution(execution_arn)
        await self.engine.stop_execution(execution_arn, error, cause)
        return await self.describe_execution(execution_arn)

    # -- operators' requests ------------------------------------------------------------------

    @property
    def cluster(self) -> ClusterLink | None:
        """The cluster membership when the store is a shared PostgreSQL database."""
        return self._cluster

    async def start_child_or_execution(
        self,
        state_machine_arn: str,
        input: JSON,
        name: str | None,
        parent: str | None,
        map_run_arn: str | None = None,
        alias_arn: str | None = None,
    ) -> StartExecutionOutput:
        """StartExecution, or the start of a child execution of ``parent`` (of its Map Run
        ``map_run_arn``, if given): a request (``alias_arn``: the alias that chose the
        version ``state_machine_arn`` names)."""
        return await self._start(
            state_machine_arn,
            input,
            name=name,
            parent=parent,
            map_run_arn=map_run_arn,
            alias_arn=alias_arn,
        )

    async def waiting_task(self, token: str) -> tuple[Live, Frame]:
        """The live execution and frame whose Task waits for ``token``, or AWS's error."""
        return await self._waiting_task(token)

    def token_deadline(self, live: Live, frame: Frame) -> float:
        """When the waiting token Task of ``frame`` times out."""
        return self._token_deadline(live, frame)

    async def apply_requests(self, partitions: frozenset[int] | None = None) -> int:
        """Apply the pending requests recorded in the store; returns how many (see
        ``runtime.api_requests``). A member of a cluster applies those of the partitions it
        holds (of ``partitions`` only, if given)."""
        return await self._requests.apply(partitions)

    async def start_sync_execution(
        self, state_machine_arn: str, input: JSON = None, *, name: str | None = None
    ) -> ExecutionDescription:
        """Start an execution and wait for its result (StartSyncExecution)."""
        started = await self.start_execution(state_machine_arn, input, name=name)
        return await self.wait_for_execution(started.execution_arn)

    async def held_states(self) -> list[tuple[ExecutionDescription, ExecutionState]]:
        """The running executions this runtime holds that may wait for an answer, with their
        current states: those in memory, read without the store, and those parked on a Task's
        timeout while it waits for a task token or an activity worker, folded from their logs
        (not the many parked on a Wait). In a cluster: those of this member's partitions."""
        engine = self.engine
        held = [(self._described(record), state) for record, state in engine.held_states()]
        for arn in sorted(engine.parked_answers):
            record = await self._log.get_execution(arn)
            if record is not None and record.status == "RUNNING":
                held.append((self._described(record), await self.state_of(arn)))
        return held

    async def state_of(self, execution_arn: str) -> ExecutionState:
        """The execution's state folded from its stored log."""
        return fold(await self._log.read(execution_arn))

    async def run(
        self,
        definition: str | Mapping[str, JSON],
        input: JSON = None,
        *,
        type: str = "STANDARD",
        name: str | None = None,
        timeout: float | None = None,
    ) -> ExecutionDescription:
        """Create (or reuse) a state machine for ``definition``, run one execution, wait."""
        text = definition if isinstance(definition, str) else dumps(definition)
        machine_name = name or "sm-" + hashlib.sha256(f"{type}:{text}".encode()).hexdigest()[:16]
        record = await self.create_state_machine(machine_name, text, type=type)
        started = await self.start_execution(record.arn, input)
        return await self.wait_for_execution(started.execution_arn, timeout=timeout)


def _postgres_store(store: EventStore) -> PostgresStore | None:
    """The PostgreSQL store under ``store`` (an ``ExpressStore`` wraps it), if it is one;
    without importing asyncpg when no PostgreSQL store was opened."""
    postgres = sys.modules.get("runtime.store.postgres")
    backing = store.backing if isinstance(store, ExpressStore) else store
    if postgres is not None and isinstance(backing, postgres.PostgresStore):
        return cast("PostgresStore", backing)
    return None


@final
class _GcTuning:
    """Opt-in garbage-collector tuning (``Runtime(tune_gc=True)``), scoped: the thresholds
    found when the first tuning runtime opens are restored when the last one closes.

    Millions of long-lived objects (states, events) make CPython's default young-generation
    threshold trigger full collections constantly: ``benchmarks chain`` runs ~1.6x faster
    with these thresholds. They are process-wide, hence opt-in (issue 10).
    """

    THRESHOLDS: Final = (100_000, 50, 1000)

    def __init__(self) -> None:
        self.users = 0
        self.saved: tuple[int, int, int] | None = None

    def enter(self) -> None:
        if self.users == 0:
            self.saved = gc.get_threshold()
            gc.set_threshold(*self.THRESHOLDS)
        self.users += 1

    def exit(self) -> None:
        self.users -= 1
        if self.users == 0 and self.saved is not None:
            gc.set_threshold(*self.saved)
            self.saved = None


_GC_TUNING: Final = _GcTuning()
"""The one tuning counter of the process (the thresholds it guards are process-wide)."""
