"""``cluster``: ``chain`` and ``handlers`` on one PostgreSQL shared by 1, 2 and 3 runtime
processes, with the SQLite figure of the same workload in one process from the same run.

    python -m benchmarks.cluster            # full sizes, 3 runs, JSON in results/cluster.json
    python -m benchmarks.cluster --quick    # small sizes, 1 run (under a minute)

A throwaway PostgreSQL server is started with fsync on (``PostgresServer(durable=True)``:
PostgreSQL's defaults, every commit flushed to the WAL on disk). Each configuration gets a
fresh schema and fresh ``benchmarks.cluster_member`` processes, which join one after the other;
the driver waits until the 256 partition leases are spread over all of them, runs one warm-up
round, then tells every member to start its share of the executions at once (``executions``
in all, ``in_flight`` client loops per process, each starting an execution and waiting for its
end). A round's time runs from the first member's start to the last member's end.

- ``chain``: 10 chained Pass states; transitions/s counts one per Pass state.
- ``handlers``: one Task calling an async handler that sleeps ``handler_ms`` (``limit`` calls
  in flight at most per process); one transition per execution.

Names are either ``random`` (plain names: with ``M`` members about ``(M - 1) / M`` of the
starts hash to a partition another member owns, so they travel as requests through the
database and the asker waits by polling the execution's record: the path a client of the
cluster gets) or ``local`` (each member picks names of the partitions it holds: nothing
crosses processes, the ceiling of the partitioning). With one member both are the same and
only ``random`` is run.

The runs of the configurations are interleaved (run 1 of SQLite, 1, 2, 3 processes, then run
2, ...) so that the load of other work on the machine spreads over all of them; medians are
reported. For each round the driver also measures the CPU seconds of the member processes (their
own ``getrusage``), of the PostgreSQL server (every server process, from ``/proc``) and of the
whole machine (``/proc/stat``), and the server's commits and WAL flushes (``pg_stat_database``,
``pg_stat_wal``). At the end one member of the largest configuration runs one round of each
workload under ``cProfile`` (not counted): the functions that take its time are reported.

Needs PostgreSQL's server binaries (``tests/store/postgres_server.py`` finds them).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

from benchmarks.common import db_dir, median, percentile
from benchmarks.suite import machine_facts

JSON = Any
ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_OUT: Final = ROOT / "benchmarks" / "results" / "cluster.json"
PARTITIONS: Final = 256
WORKLOADS: Final = ("chain", "handlers")
TRANSITIONS: Final = {"chain": 10, "handlers": 1}

QUICK: Final[Mapping[str, float]] = {
    "chain_executions": 1000,
    "handlers_executions": 1000,
    "in_flight": 100,
    "limit": 1000,
    "handler_ms": 10,
    "random_executions": 300,
    "random_in_flight": 100,
    "warmup": 60,
    "profile_executions": 200,
}
FULL: Final[Mapping[str, float]] = {
    "chain_executions": 6000,
    "handlers_executions": 6000,
    "in_flight": 200,
    "limit": 1000,
    "handler_ms": 10,
    "random_executions": 1000,
    "random_in_flight": 50,
    "warmup": 300,
    "profile_executions": 1000,
}


# -- processes ------------------------------------------------------------------------------


class Process:
    """One ``benchmarks.cluster_member`` process: JSON commands in, JSON answers out."""

    def __init__(
        self,
        store: str,
        schema: str | None,
        params: Mapping[str, float],
        log: Path,
        member_args: Sequence[str] = (),
    ):
        self.log_path = log
        self.calls_total = 0
        """Handler calls this process has completed so far (rounds and warm-ups)."""
        self.store_calls: collections.Counter[str] = collections.Counter()
        """Calls of the PostgreSQL store's methods in this process so far."""
        self._log = log.open("w")
        command = [sys.executable, "-m", "benchmarks.cluster_member", store,
                   "--limit", str(int(params["limit"])),
                   "--handler-ms", str(params["handler_ms"])]  # fmt: skip
        if schema is not None:
            command += ["--schema", schema]
        command += member_args
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            text=True, cwd=ROOT, env=env,
        )  # fmt: skip

    async def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), timeout)
        if not line:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"member {self.proc.pid} exited ({self.proc.poll()}):\n{tail}")
        return line.strip()

    async def ready(self) -> None:
        line = await self._line(120)
        if line != "ready":
            raise RuntimeError(f"member {self.proc.pid} did not start: {line!r}")

    def send(self, command: Mapping[str, JSON]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    async def answer(self, timeout: float) -> dict[str, JSON]:
        answer: dict[str, JSON] = json.loads(await self._line(timeout))
        return answer

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.send({"op": "quit"})
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._log.close()

    def log_summary(self) -> dict[str, int]:
        """Counts of this process's warning and error log lines, by event."""
        counts: collections.Counter[str] = collections.Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                counts["(not a log line)"] += 1
                continue
            if entry.get("level") in ("warning", "error", "critical"):
                why = f" ({entry['why']})" if "why" in entry else ""
                counts[f"{entry['level']}: {entry.get('event')}{why}"] += 1
        return dict(counts)


# -- what the machine and the server did ----------------------------------------------------


def _ticks(pid: int) -> int:
    """utime + stime of process ``pid`` in clock ticks (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            found.append(int(entry))
    return found


def server_cpu_seconds(postmaster: int) -> float:
    """CPU seconds used so far by the PostgreSQL server (the postmaster and its children
    alive now: the backends of the members' pools, the WAL writer, the checkpointer)."""
    ticks = _ticks(postmaster) + sum(_ticks(pid) for pid in _children(postmaster))
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> tuple[float, float]:
    """(busy CPU seconds, all CPU seconds) of the whole machine so far, from ``/proc/stat``."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


async def server_counters(conn: Any) -> dict[str, float]:
    """The server's commit and WAL flush counters (flushed by backends within ~1 s)."""
    await conn.execute("SELECT pg_stat_clear_snapshot()")
    row = await conn.fetchrow(
        "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
    )
    wal = await conn.fetchrow("SELECT wal_records, wal_bytes, wal_write, wal_sync FROM pg_stat_wal")
    return {
        "xact_commit": float(row["xact_commit"]),
        "xact_rollback": float(row["xact_rollback"]),
        "wal_records": float(wal["wal_records"]),
        "wal_bytes": float(wal["wal_bytes"]),
        "wal_sync": float(wal["wal_sync"]),
    }


#: How long the server's backends take at most to publish their statistics once idle.
STATS_DELAY: Final = 1.1


# -- one configuration ----------------------------------------------------------------------


class Config:
    """``members`` processes on one store (a fresh PostgreSQL schema, or a SQLite file)."""

    def __init__(
        self,
        kind: str,
        members: int,
        store: str,
        schema: str | None,
        logs: Path,
        member_args: Sequence[str] = (),
    ) -> None:
        self.member_args = member_args
        """More arguments of each ``benchmarks.cluster_member`` process."""
        self.kind = kind
        self.members = members
        self.store = store
        self.schema = schema
        self.logs = logs
        self.procs: list[Process] = []

    @property
    def label(self) -> str:
        return "sqlite" if self.kind == "sqlite" else f"postgres_{self.members}"

    async def start(self, params: Mapping[str, float], conn: Any | None) -> None:
        for index in range(self.members):
            log = self.logs / f"{self.label}-{self.schema or 'file'}-{index}.log"
            proc = Process(self.store, self.schema, params, log, self.member_args)
            self.procs.append(proc)
            await proc.ready()
        if conn is not None:
            await self._balanced(conn)

    async def _balanced(self, conn: Any, timeout: float = 60) -> None:
        """Wait until every partition is leased and spread over all the members."""
        share = -(-PARTITIONS // self.members)
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            rows = await conn.fetch(
                f'SELECT owner, count(*) AS n FROM "{self.schema}".leases '
                "WHERE owner IS NOT NULL AND expires > now() GROUP BY owner"
            )
            counts = [int(r["n"]) for r in rows]
            if len(counts) == self.members and sum(counts) == PARTITIONS and max(counts) <= share:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.label}: the leases were not balanced after {timeout} s")

    async def round(
        self,
        workload: str,
        mode: str,
        executions: int,
        in_flight: int,
        tag: str,
        *,
        conn: Any | None,
        postmaster: int | None,
        profile: Path | None = None,
    ) -> dict[str, JSON]:
        """Every process runs its share of ``executions`` at once, with ``in_flight`` client
        loops each: the figures of the round."""
        share = [executions // self.members + (i < executions % self.members)
                 for i in range(self.members)]  # fmt: skip
        before = await server_counters(conn) if conn is not None else None
        last_request = (
            await conn.fetchval(f'SELECT coalesce(max(id), 0) FROM "{self.schema}".requests')
            if conn is not None
            else 0
        )
        server_cpu = server_cpu_seconds(postmaster) if postmaster is not None else 0.0
        busy, total = machine_busy_seconds()
        for index, proc in enumerate(self.procs):
            proc.send({
                "op": "run", "workload": workload, "mode": mode, "executions": share[index],
                "in_flight": in_flight, "tag": tag,
                "profile": str(profile) if profile is not None and index == 0 else None,
            })  # fmt: skip
        answers = [await proc.answer(timeout=600) for proc in self.procs]
        calls = 0
        store_calls: collections.Counter[str] = collections.Counter()
        for proc in self.procs:  # once every member is done: no call of this round is left
            proc.send({"op": "calls"})
            counts = await proc.answer(timeout=60)
            calls += counts["calls_total"] - proc.calls_total
            proc.calls_total = counts["calls_total"]
            so_far: collections.Counter[str] = collections.Counter(counts["store_calls"])
            store_calls.update(so_far - proc.store_calls)
            proc.store_calls = so_far
        busy_after, total_after = machine_busy_seconds()
        server_cpu = server_cpu_seconds(postmaster) - server_cpu if postmaster is not None else 0.0
        elapsed = max(a["ended"] for a in answers) - min(a["began"] for a in answers)
        result: dict[str, JSON] = {
            "seconds": elapsed,
            "executions_per_s": executions / elapsed,
            "transitions_per_s": executions * TRANSITIONS[workload] / elapsed,
            "members_cpu_seconds": sum(a["cpu_seconds"] for a in answers),
            "server_cpu_seconds": server_cpu,
            "machine_busy_cpu_seconds": busy_after - busy,
            "machine_cpu_seconds": total_after - total,
            "failed": sum(a["failed"] for a in answers),
            "errors": dict(
                sum((collections.Counter(a["errors"]) for a in answers), collections.Counter())
            ),
            "load_average_1m": os.getloadavg()[0],
            "executions": executions,
            "in_flight_per_process": in_flight,
            "handler_calls": calls,
            "max_in_flight_per_process": max(a["max_in_flight"] for a in answers),
            "transitions_per_execution": [a["transitions_per_execution"] for a in answers],
            "leases_moved": any(a["held_before"] != a["held_after"] for a in answers),
        }
        if store_calls:
            result["store_calls_per_execution"] = {
                name: round(count / executions, 2) for name, count in store_calls.most_common()
            }
        if conn is not None and before is not None:
            await asyncio.sleep(STATS_DELAY)
            after = await server_counters(conn)
            delta = {key: after[key] - before[key] for key in before}
            result["server_commits"] = delta["xact_commit"]
            result["server_rollbacks"] = delta["xact_rollback"]
            result["server_commits_per_s"] = delta["xact_commit"] / elapsed
            result["commits_per_execution"] = delta["xact_commit"] / executions
            result["wal_syncs_per_s"] = delta["wal_sync"] / elapsed
            result["wal_bytes_per_execution"] = delta["wal_bytes"] / executions
            result.update(await self._requests(conn, last_request, executions))
        return result

    async def _requests(self, conn: Any, after_id: int, executions: int) -> dict[str, float]:
        """How many starts of the round went through the request path, and how long each
        waited from being recorded to its execution's start by the owner."""
        rows = await conn.fetch(
            f'SELECT e.start_date - r.created AS waited FROM "{self.schema}".requests r '
            f"JOIN \"{self.schema}\".executions e ON e.name = (r.payload::json ->> 'name') "
            "AND e.state_machine_arn = (r.payload::json ->> 'stateMachineArn') "
            "WHERE r.id > $1 AND r.kind = 'start'",
            after_id,
        )
        waited = sorted(float(row["waited"]) for row in rows)
        return {
            "requested_starts_percent": 100 * len(waited) / executions,
            "request_to_start_p50_s": percentile(waited, 0.5),
            "request_to_start_max_s": waited[-1] if waited else 0.0,
        }

    def stop(self) -> dict[str, dict[str, int]]:
        for proc in self.procs:
            proc.stop()
        return {proc.log_path.name: proc.log_summary() for proc in self.procs}


# -- the whole measurement ------------------------------------------------------------------


def modes_of(members: int, modes: Sequence[str]) -> list[str]:
    return ["random"] if members == 1 else list(modes)


async def measure(
    params: Mapping[str, float],
    *,
    runs: int,
    members: Sequence[int],
    modes: Sequence[str],
    profile: bool,
    say: Any = print,
) -> dict[str, JSON]:
    """Run every configuration ``runs`` times; return the JSON document's measurements."""
    rounds: dict[str, list[dict[str, JSON]]] = collections.defaultdict(list)
    logs: dict[str, JSON] = {}
    profiles: dict[str, JSON] = {}
    with scratch_folder("statemill-bench-cluster-") as work:
        async with durable_server() as (dsn, postmaster, conn):
            version = await conn.fetchval("SHOW server_version")
            settings = {
                name: await conn.fetchval(f"SHOW {name}")
                for name in ("fsync", "synchronous_commit", "wal_sync_method",
                             "shared_buffers", "max_connections")
            }  # fmt: skip
            for run in range(runs):
                configs = [("sqlite", 1), *(("postgres", n) for n in members)]
                for kind, count in configs:
                    last = run == runs - 1 and kind == "postgres" and count == max(members)
                    config = _config(kind, count, dsn, work, run)
                    say(f"run {run + 1}/{runs}: {config.label} starting")
                    await config.start(params, conn if kind == "postgres" else None)
                    try:
                        await _rounds(config, params, run, modes, conn, postmaster,
                                      rounds, say)  # fmt: skip
                        if profile and last:
                            profiles = await _profiled(config, params, conn, postmaster, work, say)
                    finally:
                        logs[f"run{run + 1}-{config.label}"] = config.stop()
    return {
        "rounds": dict(rounds),
        "member_warnings": logs,
        "profile": profiles,
        "postgres": {"version": version, "durable": True, **settings},
    }


@contextlib.asynccontextmanager
async def durable_server() -> AsyncIterator[tuple[str, int, Any]]:
    """A throwaway PostgreSQL server with fsync on (PostgreSQL's defaults: every commit flushed
    to the WAL on disk), stopped and removed at the end: (its DSN, the postmaster's pid, an
    open connection). Needs the server binaries (``tests/store/postgres_server.py``)."""
    sys.path.insert(0, str(ROOT))  # tests.store's server
    from tests.store.postgres_server import PostgresServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
    with scratch_folder("statemill-bench-pg-") as pg:
        server = PostgresServer(bin_dir, pg, durable=True)
        server.start()
        try:
            server.watch(os.getpid())
            postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
            conn = await asyncpg.connect(server.dsn())
            try:
                yield server.dsn(), postmaster, conn
            finally:
                await conn.close()
        finally:
            server.stop()


def _config(kind: str, members: int, dsn: str, work: Path, run: int) -> Config:
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="statemill-bench-cluster-sqlite-", dir=db_dir()))
        return Config("sqlite", 1, str(folder / "bench.db"), None, logs)
    return Config("postgres", members, dsn, f"r{run}m{members}", logs)


async def _rounds(
    config: Config,
    params: Mapping[str, float],
    run: int,
    modes: Sequence[str],
    conn: Any,
    postmaster: int,
    rounds: dict[str, list[dict[str, JSON]]],
    say: Any,
) -> None:
    pg = config.kind == "postgres"
    for workload in WORKLOADS:
        warm = int(params["random_in_flight"])
        await config.round(workload, "random", int(params["warmup"]), warm, "warm",
                           conn=None, postmaster=None)  # fmt: skip
        for mode in modes_of(config.members, modes) if pg else ["random"]:
            # Starts that cross processes: a smaller size and fewer in flight (see the notes).
            crossing = mode == "random" and config.members > 1
            executions = int(params["random_executions" if crossing else f"{workload}_executions"])
            in_flight = int(params["random_in_flight" if crossing else "in_flight"])
            result = await config.round(
                workload, mode, executions, in_flight, f"r{run}{mode}",
                conn=conn if pg else None, postmaster=postmaster if pg else None,
            )  # fmt: skip
            key = f"{workload}/{config.label}" + (f"/{mode}" if pg else "")
            rounds[key].append(result)
            say(f"  {key}: {result['executions_per_s']:,.0f} executions/s "
                f"({result['seconds']:.2f} s)")  # fmt: skip
    if config.kind == "sqlite":
        shutil.rmtree(Path(config.store).parent, ignore_errors=True)


async def _profiled(
    config: Config, params: Mapping[str, float], conn: Any, postmaster: int, work: Path, say: Any
) -> dict[str, JSON]:
    """One round of each workload (random names) with member 0 under cProfile."""
    found: dict[str, JSON] = {}
    for workload in WORKLOADS:
        path = work / f"profile-{workload}.pstats"
        executions = int(params["profile_executions"])
        in_flight = int(params["random_in_flight"])
        result = await config.round(workload, "random", executions, in_flight, "prof",
                                    conn=conn, postmaster=postmaster, profile=path)  # fmt: skip
        found[workload] = {
            "members": config.members,
            "executions_per_s_under_profiler": result["executions_per_s"],
            **summarize_profile(path),
        }
        say(f"  profiled {workload}/{config.label}")
    return found


#: Where a function's time is counted in the profile summary: the first needle found in its
#: file name (or, for a built-in, its name) names its area.
AREAS: Final = (
    ("asyncpg", "asyncpg (driver, protocol)"),
    ("runtime/store/", "runtime/store"),
    ("runtime/cluster/", "runtime/cluster"),
    ("runtime/api_cluster", "runtime/api_cluster"),
    ("runtime/engine/", "runtime/engine"),
    ("runtime/core/", "runtime/core"),
    ("runtime/lang/", "runtime/lang"),
    ("runtime/", "runtime (api, other)"),
    ("msgspec", "msgspec"),
    ("anyio", "anyio"),
    ("uvloop", "uvloop, asyncio"),
    ("asyncio", "uvloop, asyncio"),
    ("benchmarks/", "benchmark clients"),
    ("select", "waiting (poll)"),
)


def _area(filename: str, name: str) -> str:
    text = filename if filename != "~" else name
    for needle, area in AREAS:
        if needle in text:
            return area
    return "other"


def summarize_profile(path: Path, top: int = 15) -> dict[str, JSON]:
    """The share of own time per area and the functions with the most own time (a coroutine's
    ``calls`` counts its resumptions)."""
    stats = pstats.Stats(str(path))
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]  # pstats' documented dict
    total = sum(entry[2] for entry in table.values()) or 1.0
    areas: collections.Counter[str] = collections.Counter()
    rows = []
    for (filename, line, name), (_cc, calls, own, cumulative, _callers) in table.items():
        areas[_area(filename, name)] += own
        where = name if filename == "~" else f"{_short(filename)}:{line}({name})"
        rows.append({"function": where, "calls": calls, "own_s": own, "cumulative_s": cumulative})
    rows.sort(key=lambda row: -float(row["own_s"]))
    return {
        "profiled_seconds": total,
        "own_time_percent_by_area": {
            area: round(100 * seconds / total, 1) for area, seconds in areas.most_common()
        },
        "top_own_time": [
            {**row, "own_s": round(row["own_s"], 3), "cumulative_s": round(row["cumulative_s"], 3)}
            for row in rows[:top]
        ],
    }


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return os.path.basename(filename)


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=db_dir()))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the report -----------------------------------------------------------------------------


def summarize(measured: Mapping[str, JSON]) -> dict[str, JSON]:
    """Medians per configuration, ratios to one process and to SQLite, and the checks."""
    rounds: dict[str, list[dict[str, JSON]]] = measured["rounds"]
    figures: dict[str, JSON] = {}
    for key, runs in rounds.items():
        numbers: dict[str, JSON] = {
            name: median(run[name] for run in runs)
            for name in runs[0]
            if isinstance(runs[0][name], int | float) and not isinstance(runs[0][name], bool)
        }
        numbers["executions_per_s_runs"] = [run["executions_per_s"] for run in runs]
        calls = [run.get("store_calls_per_execution", {}) for run in runs]
        if any(calls):
            names = dict.fromkeys(name for found in calls for name in found)
            numbers["store_calls_per_execution"] = {
                name: median(found.get(name, 0.0) for found in calls) for name in names
            }
        figures[key] = numbers
    for key, numbers in figures.items():
        workload, label, *_ = key.split("/")
        one = figures.get(f"{workload}/postgres_1/random")
        sqlite = figures.get(f"{workload}/sqlite")
        if one is not None and label.startswith("postgres"):
            numbers["ratio_to_1_process"] = numbers["executions_per_s"] / one["executions_per_s"]
        if sqlite is not None:
            numbers["ratio_to_sqlite"] = numbers["executions_per_s"] / sqlite["executions_per_s"]
        machine = numbers.get("machine_cpu_seconds") or 0
        if machine:
            numbers["machine_busy_percent"] = 100 * numbers["machine_busy_cpu_seconds"] / machine
        seconds = numbers["seconds"]
        numbers["members_cores"] = numbers["members_cpu_seconds"] / seconds
        numbers["server_cores"] = numbers["server_cpu_seconds"] / seconds
    checks: dict[str, bool] = {}
    for key, runs in rounds.items():
        workload = key.split("/")[0]
        checks[f"{key}: all succeeded"] = all(
            run["failed"] == 0 and not run["errors"] for run in runs
        )
        checks[f"{key}: leases stayed put"] = all(not run["leases_moved"] for run in runs)
        checks[f"{key}: {TRANSITIONS[workload]} transitions per execution"] = all(
            set(run["transitions_per_execution"]) == {TRANSITIONS[workload]} for run in runs
        )
        if workload == "handlers":
            checks[f"{key}: one handler call per execution"] = all(
                run["handler_calls"] == run["executions"] for run in runs
            )
    return {"figures": figures, "checks": checks}


def notes(params: Mapping[str, float]) -> list[str]:
    """What the figures are, in sentences for the reader of the JSON."""
    return [
        "PostgreSQL runs with fsync on (PostgresServer(durable=True): the server's defaults); "
        "SQLite with synchronous=FULL; both on the same disk.",
        f"Per process: {params['in_flight']:g} client loops (start, then wait for the end); "
        f"with random names on 2+ processes {params['random_in_flight']:g} loops and "
        f"{params['random_executions']:g} executions in all, because that path is much slower.",
        "random: plain names, (M-1)/M of the starts recorded as requests for the owner "
        "(requested_starts_percent); local: each member names executions of its own partitions.",
        "xacts/exec counts every server transaction (pg_stat_database.xact_commit), reads "
        "included; store_calls_per_execution counts the PostgreSQL store's method calls.",
        "The server, the members and other work on the machine share its cores: "
        "machine_busy_percent and load_average_1m say how loaded it was.",
    ]


def render(document: Mapping[str, JSON]) -> str:
    """The terminal table: one row per workload and configuration."""
    figures = document["figures"]
    header = ("workload", "processes", "names", "executions", "exec/s", "runs", "transitions/s",
              "x 1 proc", "x sqlite", "xacts/exec", "fsyncs/s", "requested", "req->start p50",
              "cores: members+server", "machine busy")  # fmt: skip
    rows: list[tuple[str, ...]] = []
    for key, numbers in figures.items():
        workload, label, *mode = key.split("/")
        processes = "1 (SQLite)" if label == "sqlite" else label.split("_")[1]
        ratio = numbers.get("ratio_to_1_process")
        to_sqlite = numbers.get("ratio_to_sqlite")
        commits = numbers.get("commits_per_execution")
        busy = numbers.get("machine_busy_percent")
        requested = numbers.get("requested_starts_percent")
        waited = numbers.get("request_to_start_p50_s")
        syncs = numbers.get("wal_syncs_per_s")
        rows.append((
            workload, processes, mode[0] if mode else "-", f"{numbers['executions']:,.0f}",
            f"{numbers['executions_per_s']:,.0f}",
            " ".join(f"{v:,.0f}" for v in numbers["executions_per_s_runs"]),
            f"{numbers['transitions_per_s']:,.0f}",
            "-" if ratio is None else f"{ratio:.2f}x",
            "-" if to_sqlite is None or label == "sqlite" else f"{to_sqlite:.2f}x",
            "-" if commits is None else f"{commits:.2f}",
            "-" if syncs is None else f"{syncs:,.0f}",
            "-" if requested is None else f"{requested:.0f}%",
            "-" if waited is None else f"{waited:.3f} s",
            f"{numbers['members_cores']:.2f} + {numbers['server_cores']:.2f}",
            "-" if busy is None else f"{busy:.0f}%",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        f"== cluster ({', '.join(f'{k}={v:g}' for k, v in document['params'].items())}; "
        f"{document['runs_requested']} run(s); PostgreSQL {document['postgres']['version']}, "
        f"fsync {document['postgres']['fsync']})"
    ]
    lines.extend(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )
    for name, ok in document["checks"].items():
        if not ok:
            lines.append(f"check FAILED: {name}")
    lines.append(f"checks: {sum(document['checks'].values())}/{len(document['checks'])} held")
    for workload, found in document["profile"].items():
        areas = ", ".join(
            f"{area} {share}%" for area, share in found["own_time_percent_by_area"].items()
            if share >= 2
        )  # fmt: skip
        lines.append(f"profile {workload} (1 of {found['members']} members): {areas}")
    warned = {name: counts for name, counts in document["member_warnings"].items() if any(
        counts.values())}  # fmt: skip
    if warned:
        lines.append(f"member warnings: {json.dumps(warned)}")
    return "\n".join(lines)


def parse_params(
    parser: argparse.ArgumentParser, defaults: Mapping[str, float], items: Sequence[str]
) -> dict[str, float]:
    """``defaults`` with the ``--param KEY=VALUE`` items applied (an unknown key: usage error)."""
    params = dict(defaults)
    for item in items:
        key, _, value = item.partition("=")
        if key not in params:
            parser.error(f"unknown parameter {key!r} (known: {', '.join(params)})")
        params[key] = float(value)
    return params


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    parser.add_argument("--runs", type=int, default=None, help="default: 3 (1 with --quick)")
    parser.add_argument("--members", default="1,2,3", help="process counts (default: 1,2,3)")
    parser.add_argument("--modes", default="random,local", help="names: random, local or both")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile round")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"JSON file (default: {DEFAULT_OUT}; none if --quick)",
    )
    args = parser.parse_args(argv)
    params = parse_params(parser, QUICK if args.quick else FULL, args.param)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    members = [int(n) for n in args.members.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    if not set(modes) <= {"random", "local"} or not modes or min(members) < 1 or 1 not in members:
        parser.error("--modes takes random and/or local; --members must include 1")
    facts = machine_facts("uvloop")
    began = time.monotonic()
    measured = asyncio.run(measure(
        params, runs=runs, members=members, modes=modes, profile=not args.no_profile,
        say=lambda text: print(text, file=sys.stderr, flush=True),
    ))  # fmt: skip
    document: dict[str, JSON] = {
        "scenario": "cluster",
        "description": __doc__.split("\n\n")[0],
        "date": facts["date"],
        "quick": args.quick,
        "runs_requested": runs,
        "params": params,
        "members": members,
        "modes": modes,
        "wall_seconds": round(time.monotonic() - began, 1),
        "notes": notes(params),
        **summarize(measured),
        **measured,
        "machine": facts,
    }
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    print(render(document), flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"results: {out}")
    return 0 if all(document["checks"].values()) else 1


__all__ = [
    "Config",
    "durable_server",
    "machine_busy_seconds",
    "main",
    "measure",
    "parse_params",
    "render",
    "scratch_folder",
    "server_counters",
    "server_cpu_seconds",
    "summarize",
    "summarize_profile",
]

if __name__ == "__main__":
    raise SystemExit(main())
