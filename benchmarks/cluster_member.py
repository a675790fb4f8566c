"""One process of the ``cluster`` benchmark (``benchmarks/cluster.py``): a ``Runtime`` that runs
its share of the executions when the driver says so.

    python -m benchmarks.cluster_member STORE [--schema NAME] [--limit N] [--handler-ms MS]
        [--objects DIR]

``STORE`` is a ``postgresql://`` URL (the process becomes a member of the cluster on that
database) or a SQLite path (``synchronous=FULL``: the single-process figure). The process
creates the two state machines (``chain``: 10 Pass states; ``handlers``: one Task calling the
``sleepy`` handler, ``max_concurrency=--limit``), prints ``ready`` and then reads one JSON
command a line on stdin, answering each with one JSON line on stdout:

- ``{"op": "run", "workload": "chain"|"handlers", "mode": "local"|"random", "executions": N,
  "in_flight": K, "tag": "r1", "profile": PATH|null}``: ``K`` client loops start and wait for
  ``N`` executions between them; answers with the wall-clock start and end (``time.time()``,
  comparable across the processes of one machine), the executions not SUCCEEDED, the
  starts or waits that raised (by error: ``TimeoutError`` when no owner answered), the most
  handler calls in flight at once, this process's CPU seconds meanwhile, and the partitions
  it held before and after. ``mode="local"`` picks names that hash to partitions
  this member holds (no request crosses processes); ``"random"`` takes plain names, so on a
  cluster of ``M`` members about ``(M - 1) / M`` of the starts are recorded as requests for the
  owner and waited for through the database. ``profile`` runs the round under ``cProfile`` and
  writes the stats to ``PATH``.
- ``{"op": "map", "max_concurrency": M, "timeout": S}``: start one distributed Map over the
  CSV ``billing/customers.csv`` of the object store folder ``--objects`` (``benchmarks.map_run
  .definition``: an ItemReader, a child execution per row, each one Task calling the
  ``invoice`` handler, a ResultWriter), wait for its end and answer with the wall-clock start
  and end, its status, output (or error and cause) and this process's CPU seconds meanwhile.
  The children run on whichever member owns their partitions (``benchmarks/cluster_map.py``).
- ``{"op": "calls"}``: answers ``{"calls_total": N, "invoice_calls": N, "store_calls": {...},
  "max_rss_mib": X}``: the ``sleepy`` and ``invoice`` handler calls this process has completed so
  far (any member may run the calls of the executions another one started), the calls of each
  of the PostgreSQL store's methods so far (each one statement or one transaction on the
  server) and the process's peak RSS.
- ``{"op": "quit"}``: close the runtime (a clean hand-over) and exit.

Log lines go to stderr as JSON (one object a line), so the driver can count warnings.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import functools
import inspect
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from benchmarks.common import InFlight, chain_definition
from benchmarks.map_run import definition as map_definition
from runtime import Runtime, SqliteStore, TaskContext
from runtime.errors import StatemillError
from runtime.items import LocalObjectStore
from runtime.store.base import EventStore
from runtime.store.postgres import PostgresStore, partition_of

JSON = Any
LENGTH = 10
HANDLERS_DEFINITION: dict[str, JSON] = {
    "Comment": "one Task calling a sleeping handler",
    "StartAt": "Call",
    "States": {"Call": {"Type": "Task", "Resource": "sleepy", "End": True}},
}
ARN_PREFIX = "arn:aws:states:us-east-1:123456789012"


#: Calls of the PostgreSQL store's coroutine methods in this process, by name (each is one
#: statement or one transaction on the server): counted by :func:`count_store_calls`.
STORE_CALLS: collections.Counter[str] = collections.Counter()


def count_store_calls() -> None:
    """Wrap every public coroutine method of ``PostgresStore`` to count its calls."""
    for name, method in list(vars(PostgresStore).items()):
        if name.startswith("_") or not inspect.iscoroutinefunction(method):
            continue

        def counted(*args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            STORE_CALLS[_name] += 1
            return _method(*args, **kwargs)

        setattr(PostgresStore, name, functools.wraps(method)(counted))


def cpu_seconds() -> float:
    """User plus system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Worker:
    """The runtime of this process and the rounds it runs."""

    def __init__(self, runtime: Runtime, store: EventStore, handler_seconds: float) -> None:
        self.runtime = runtime
        self.store = store
        self.handler_seconds = handler_seconds
        self.counter = InFlight()
        self.items = InFlight()
        """The ``invoice`` handler's calls (a distributed Map's children)."""
        self.arns: dict[str, str] = {}

    async def sleepy(self, value: Any, context: TaskContext) -> Any:
        self.counter.enter()
        try:
            await asyncio.sleep(self.handler_seconds)
        finally:
            self.counter.leave()
        return value

    async def invoice(self, value: Any, context: TaskContext) -> Any:
        self.items.enter()
        self.items.leave()
        return value

    async def map(self, command: dict[str, JSON]) -> dict[str, JSON]:
        """One distributed Map over ``items`` items, waited for to its end."""
        rt = self.runtime
        machine = await rt.create_state_machine(
            "map", map_definition(int(command["max_concurrency"]))
        )
        cpu = cpu_seconds()
        began = time.time()
        started = await rt.start_execution(machine.arn, {})
        done = await rt.wait_for_execution(started.execution_arn, timeout=float(command["timeout"]))
        return {
            "began": began,
            "ended": time.time(),
            "status": done.status,
            "output": done.output_value if done.status == "SUCCEEDED" else None,
            "error": done.error,
            "cause": (done.cause or "")[:500] or None,
            "cpu_seconds": cpu_seconds() - cpu,
        }

    async def held(self) -> list[int]:
        """The partitions this process's member holds (empty off PostgreSQL)."""
        if not isinstance(self.store, PostgresStore):
            return []
        rows = await self.store.pool.fetch(
            "SELECT l.partition FROM leases l JOIN members m ON m.member_id = l.owner "
            "WHERE m.pid = $1 AND m.host = $2 ORDER BY l.partition",
            os.getpid(),
            os.uname().nodename,
        )
        return [int(row[0]) for row in rows]

    def names(self, workload: str, mode: str, tag: str, count: int, held: list[int]) -> list[str]:
        """``count`` execution names: any, or (``local``) only names of ``held`` partitions."""
        prefix = f"{ARN_PREFIX}:execution:{workload}:"
        base = f"{tag}-p{os.getpid()}-"
        if mode == "random" or not held:
            return [f"{base}{i}" for i in range(count)]
        mine = set(held)
        names: list[str] = []
        i = 0
        while len(names) < count:
            name = f"{base}{i}"
            if partition_of(prefix + name) in mine:
                names.append(name)
            i += 1
        return names

    async def run(self, command: dict[str, JSON]) -> dict[str, JSON]:
        workload = str(command["workload"])
        executions = int(command["executions"])
        in_flight = int(command["in_flight"])
        held_before = await self.held()
        names = self.names(
            workload, str(command["mode"]), str(command["tag"]), executions, held_before
        )
        rt = self.runtime
        arn = self.arns[workload]
        self.counter.peak = self.counter.current
        queue = iter(names)
        failed = 0
        errors: collections.Counter[str] = collections.Counter()
        first: list[str] = []

        async def client() -> None:
            nonlocal failed
            for name in queue:
                try:
                    started = await rt.start_execution(arn, {"n": 1}, name=name)
                    if not first:
                        first.append(started.execution_arn)
                    done = await rt.wait_for_execution(started.execution_arn)
                except (StatemillError, TimeoutError) as exc:  # counted, and the round goes on
                    errors[type(exc).__name__] += 1
                    continue
                if done.status != "SUCCEEDED":
                    failed += 1

        profile = command.get("profile")
        profiler = cProfile.Profile() if profile else None
        cpu = cpu_seconds()
        began = time.time()
        if profiler is not None:
            profiler.enable()
        await asyncio.gather(*(client() for _ in range(min(in_flight, executions))))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
        ended = time.time()
        cpu = cpu_seconds() - cpu
        history = await rt.get_execution_history(first[0]) if first else []
        return {
            "began": began,
            "ended": ended,
            "executions": executions,
            "failed": failed,
            "errors": dict(errors),
            "max_in_flight": self.counter.peak,
            "cpu_seconds": cpu,
            "transitions_per_execution": sum(
                1 for event in history if event.type.endswith("StateEntered")
            ),
            "held_before": held_before,
            "held_after": await self.held(),
        }


async def serve(
    store_arg: str, schema: str | None, limit: int, handler_ms: float, objects: str | None
) -> None:
    if store_arg.startswith(("postgresql://", "postgres://")):
        count_store_calls()
        opened: Any = PostgresStore.open(store_arg, schema=schema)
    else:
        opened = SqliteStore.open(store_arg, synchronous="FULL")
    async with opened as store:
        runtime = Runtime(
            store=store,
            tune_gc=True,
            object_store=None if objects is None else LocalObjectStore(Path(objects)),
        )
        worker = Worker(runtime, store, handler_ms / 1000)
        runtime.register_handler("sleepy", worker.sleepy, max_concurrency=limit)
        runtime.register_handler("invoice", worker.invoice)
        async with runtime:
            for name, definition in (
                ("chain", chain_definition(LENGTH)),
                ("handlers", HANDLERS_DEFINITION),
            ):
                machine = await runtime.create_state_machine(name, definition)
                worker.arns[name] = machine.arn
            print("ready", flush=True)
            loop = asyncio.get_running_loop()
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                if not line:
                    return
                command = json.loads(line)
                if command["op"] == "quit":
                    return
                if command["op"] == "calls":
                    answer: dict[str, JSON] = {
                        "calls_total": worker.counter.calls,
                        "invoice_calls": worker.items.calls,
                        "store_calls": dict(STORE_CALLS),
                        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                    }
                elif command["op"] == "map":
                    answer = await worker.map(command)
                else:
                    answer = await worker.run(command)
                print(json.dumps(answer), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store")
    parser.add_argument("--schema", default=None)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--handler-ms", type=float, default=10.0)
    parser.add_argument("--objects", default=None, help="object store folder (the map op)")
    args = parser.parse_args()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.store, args.schema, args.limit, args.handler_ms, args.objects))


if __name__ == "__main__":
    main()
