"""Three runtime processes share one PostgreSQL database; one is killed, the others take over.

    python examples/cluster_demo.py --db postgresql://USER:PASSWORD@HOST/DATABASE[?schema=NAME]

Starts three members, each ``statemill worker --store URL --handlers handlers.billing`` (every
runtime on a PostgreSQL store is a member of the cluster: it holds leases on a share of the
256 partitions the executions hash into). This process runs no runtime: like ``statemill
start`` it stores the state machines and records start requests, each for the owner of the
new execution's partition. It starts monthly billing runs (``examples/billing.asl.json``, three
customers each: one nested ``monthly-invoice`` execution per customer, usually run by another
member, and an e-mail bounce retried after a backoff); once a quarter of them have ended it
kills the member running the most of them (SIGKILL, no clean hand-over) and starts the rest.
The survivors take its partitions over when its leases expire (the lease time-to-live, 10 s)
and finish what it left, and what was started for it meanwhile.

At the end it prints which member finished how many executions (an execution counts for the
member holding its partition's lease when it ended, read from the ``leases`` and ``members``
tables), stops the survivors (SIGTERM: a clean hand-over, as Ctrl-C; SIGKILL for one still
running after ``STOP_TIMEOUT``) and says for each whether it left by itself and whether its
member row is gone, and exits 0 only if every execution SUCCEEDED. A second run on the same
database adds new executions beside the old.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

EXAMPLES = Path(__file__).resolve().parent
ROOT = EXAMPLES.parent
if str(ROOT) not in sys.path:  # `python examples/cluster_demo.py` from a checkout not installed
    sys.path.insert(0, str(ROOT))

from handlers.billing import CUSTOMERS  # noqa: E402
from runtime.store.postgres import PARTITIONS, PostgresStore, partition_of  # noqa: E402
from runtime.tools import store_ops  # noqa: E402
from runtime.tools.stores import StoreUnavailable, is_postgres, open_store, redact  # noqa: E402

MEMBERS: Final = 3
HANDLERS: Final = "handlers.billing"
PREFIX: Final = "arn:aws:states:us-east-1:123456789012"
BILLING_ARN: Final = f"{PREFIX}:stateMachine:monthly-billing"
#: Customers of each run: one invoiced at once, one whose first e-mail bounces (retried), one
#: without an e-mail address (caught: invoiced by post).
RUN_CUSTOMERS: Final = [dict(c) for c in CUSTOMERS if c["id"] in ("C-001", "C-003", "C-005")]
POLL: Final = 0.1
#: How long the members may take to start and share the partitions out.
START_TIMEOUT: Final = 30.0
#: How long a member may take to leave after SIGTERM before it gets SIGKILL.
STOP_TIMEOUT: Final = 15.0


@dataclass
class Tally:
    """What the demo saw of its executions: status, and the member that ended each."""

    runs: set[str] = field(default_factory=set)
    status: dict[str, str] = field(default_factory=dict)
    """ARN -> status (the demo's runs and the invoice executions they started)."""
    ended_by: dict[str, int] = field(default_factory=dict)
    """ARN -> pid of the member holding its partition's lease when the demo saw it end."""

    def ended_runs(self) -> int:
        return sum(1 for arn in self.runs if arn in self.ended_by)

    def is_done(self) -> bool:
        return len(self.ended_by) == len(self.status) and self.ended_runs() == len(self.runs)

    def finished(self, pid: int) -> tuple[int, int]:
        """(runs, invoice executions) that ended while member ``pid`` held them."""
        mine = [arn for arn, by in self.ended_by.items() if by == pid]
        runs = sum(1 for arn in mine if arn in self.runs)
        return runs, len(mine) - runs


class Cluster:
    """The member processes, their logs, and the store they share."""

    def __init__(self, url: str, store: PostgresStore, logs: Path) -> None:
        self.url = url
        self.store = store
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self._files: list[TextIO] = []

    def spawn(self) -> None:
        log = (self.logs / f"member-{len(self.procs) + 1}.log").open("w")
        self._files.append(log)
        command = [sys.executable, "-m", "runtime", "worker", "--store", self.url]
        command += ["--handlers", HANDLERS, "--status-interval", "0"]
        self.procs.append(subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))

    def number(self, pid: int) -> int:
        """Member ``pid``'s number in the output (1, 2, 3; 0 for another process's)."""
        return next((i + 1 for i, p in enumerate(self.procs) if p.pid == pid), 0)

    async def shares(self) -> dict[int, int]:
        """Live member pid -> partitions it holds (unexpired leases)."""
        rows = await self.store.pool.fetch(
            "SELECT m.pid, count(l.partition) FROM members m "
            "LEFT JOIN leases l ON l.owner = m.member_id AND l.expires > now() "
            "WHERE m.expires > now() GROUP BY m.pid"
        )
        return {int(pid): int(n) for pid, n in rows}

    async def balanced(self) -> dict[int, int]:
        """Wait until every member is live and holds its fair share of the partitions."""
        pids = {p.pid for p in self.procs}
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            shares = {pid: n for pid, n in (await self.shares()).items() if pid in pids}
            held = sum(shares.values())
            fair = held // len(pids)
            if len(shares) == len(pids) and held == PARTITIONS and min(shares.values()) >= fair - 1:
                return shares
            await asyncio.sleep(POLL)
        raise TimeoutError(f"the members did not share the partitions out in {START_TIMEOUT} s")

    def check_alive(self, *, except_pid: int | None = None) -> None:
        """Raise ``RuntimeError`` (with the end of its log) if a member exited."""
        for i, proc in enumerate(self.procs):
            if proc.pid != except_pid and proc.poll() is not None:
                self._files[i].flush()
                tail = self._files[i].name
                lines = Path(tail).read_text(encoding="utf-8", errors="replace").splitlines()
                raise RuntimeError(
                    f"member {i + 1} (pid {proc.pid}) exited with code {proc.returncode}; "
                    "the end of its log:\n" + "\n".join(lines[-10:])
                )

    def stop(self) -> list[Departure]:
        """SIGTERM to the members still running (the worker's clean shutdown: it hands its
        partitions over and deletes its member row), SIGKILL to one still running after
        ``STOP_TIMEOUT``; how each of them went. Does nothing the second time."""
        stopping = [(i, proc) for i, proc in enumerate(self.procs) if proc.poll() is None]
        began = time.monotonic()
        for _, proc in stopping:
            proc.send_signal(signal.SIGTERM)
        departures: list[Departure] = []
        for i, proc in stopping:
            left = True
            try:
                proc.wait(timeout=max(0.0, began + STOP_TIMEOUT - time.monotonic()))
            except subprocess.TimeoutExpired:
                left = False
                proc.kill()
                proc.wait()
            seconds = time.monotonic() - began
            departures.append(Departure(i + 1, proc.pid, left, seconds, proc.returncode))
        for log in self._files:
            log.close()
        self._files.clear()
        return departures

    async def remaining_rows(self, pids: Sequence[int]) -> dict[int, float]:
        """Member pid -> seconds until its member row expires, for the rows of ``pids`` still
        there (a member that left cleanly deleted its own)."""
        rows = await self.store.pool.fetch(
            "SELECT pid, extract(epoch FROM expires - now()) FROM members "
            "WHERE pid = ANY($1::int[]) AND host = $2",
            list(pids),
            socket.gethostname(),
        )
        return {int(pid): float(left) for pid, left in rows}


@dataclass(frozen=True)
class Departure:
    """How a member went when the demo stopped it."""

    number: int
    pid: int
    left: bool
    """True: it exited by itself after SIGTERM; False: it had to be killed (SIGKILL)."""
    seconds: float
    """From the SIGTERM to its exit."""
    returncode: int | None


async def report_departures(cluster: Cluster, departures: Sequence[Departure]) -> None:
    """One line per stopped member: whether it left by itself, and its member row's fate."""
    rows = await cluster.remaining_rows([d.pid for d in departures])
    for d in departures:
        if d.left:
            how = f"left by itself {d.seconds:.1f} s after SIGTERM (exit code {d.returncode})"
        else:
            how = f"did not leave within {STOP_TIMEOUT:.0f} s of SIGTERM: killed (SIGKILL)"
        row = rows.get(d.pid)
        if row is None:
            fate = "its member row deleted"
        elif row > 0:
            fate = f"its member row left behind, expiring in {row:.1f} s"
        else:
            fate = "its member row left behind, expired"
        print(f"  member {d.number} (pid {d.pid}) {how}; {fate}")


async def observe(cluster: Cluster, tally: Tally) -> dict[int, int]:
    """Read the status of the demo's executions, noting the member that holds each one seen
    ended for the first time; returns member pid -> executions still running in its partitions."""
    rows = await cluster.store.pool.fetch(
        "SELECT e.execution_arn, e.status, m.pid FROM executions e "
        "JOIN leases l ON l.partition = e.partition "
        "LEFT JOIN members m ON m.member_id = l.owner "
        "WHERE e.execution_arn = ANY($1::text[]) OR e.parent_execution_arn = ANY($1::text[])",
        list(tally.runs),
    )
    running: dict[int, int] = {}
    for arn, status, pid in rows:
        tally.status[arn] = status
        if status == "RUNNING":
            if pid is not None:
                running[pid] = running.get(pid, 0) + 1
        elif arn not in tally.ended_by:
            tally.ended_by[arn] = -1 if pid is None else int(pid)
    for arn in tally.runs:
        tally.status.setdefault(arn, "PENDING")  # its start request not applied yet
    return running


async def start_runs(store: PostgresStore, tally: Tally, tag: str, first: int, count: int) -> None:
    """Record ``count`` start requests, each for the owner of its execution's partition."""
    for i in range(first, first + count):
        name = f"demo-{tag}-{i + 1:02d}"
        arn = f"{PREFIX}:execution:monthly-billing:{name}"
        run_input = {"billingMonth": "2024-06", "customers": RUN_CUSTOMERS}
        body = {"stateMachineArn": BILLING_ARN, "name": name, "input": run_input}
        await store.add_request("start", json.dumps(body), time.time(), partition_of(arn))
        tally.runs.add(arn)


async def demo(url: str, executions: int, timeout: float, logs: Path) -> bool:
    """Run the demo (see the module's docstring); True if every execution SUCCEEDED."""
    for name, file in (("monthly-invoice", "invoice"), ("monthly-billing", "billing_inline")):
        text = (EXAMPLES / f"{file}.asl.json").read_text(encoding="utf-8")
        await store_ops.put_state_machine(url, name, text)
    began = time.monotonic()
    async with open_store(url, create=True) as opened:
        if not isinstance(opened, PostgresStore):
            raise StoreUnavailable(f"{url} is not a PostgreSQL store")
        cluster = Cluster(url, opened, logs)
        try:
            for _ in range(MEMBERS):
                cluster.spawn()
            shares = await cluster.balanced()
            pids = ", ".join(str(p.pid) for p in cluster.procs)
            held = "/".join(str(shares[p.pid]) for p in cluster.procs)
            print(f"{MEMBERS} members on {redact(url)} (pids {pids}; {held} partitions)")
            tally = await _run(cluster, executions, timeout, began)
            print("stopping the survivors (SIGTERM):")
            await report_departures(cluster, cluster.stop())
            return _verdict(tally, time.monotonic() - began)
        finally:
            cluster.stop()


async def _run(cluster: Cluster, executions: int, timeout: float, began: float) -> Tally:
    store, tally, tag = cluster.store, Tally(), uuid.uuid4().hex[:6]
    before = executions * 2 // 3
    await start_runs(store, tally, tag, 0, before)
    print(
        f"started {before} monthly-billing runs (demo-{tag}-*, {len(RUN_CUSTOMERS)} customers "
        "each: a nested invoice execution per customer, a retried e-mail)"
    )
    # Kill the member running the most, once a quarter of all runs have ended.
    deadline = began + timeout
    running = await observe(cluster, tally)
    while tally.ended_runs() < max(1, executions // 4) or not running:
        cluster.check_alive()
        if tally.is_done() or time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL)
        running = await observe(cluster, tally)
    victim = max(cluster.procs, key=lambda p: running.get(p.pid, 0))
    partitions = [
        int(row[0])
        for row in await store.pool.fetch(
            "SELECT l.partition FROM leases l JOIN members m ON m.member_id = l.owner "
            "WHERE m.pid = $1 AND l.expires > now()",
            victim.pid,
        )
    ]
    killed_at = time.monotonic()
    victim.kill()
    victim.wait()
    number = cluster.number(victim.pid)
    print(
        f"SIGKILL member {number} (pid {victim.pid}) after {tally.ended_runs()} runs ended: it "
        f"held {len(partitions)} partitions, {running.get(victim.pid, 0)} executions running there"
    )
    await start_runs(store, tally, tag, before, executions - before)
    print(f"started {executions - before} more runs (those in its partitions wait for a new owner)")
    took_over: float | None = None
    while time.monotonic() < deadline:
        cluster.check_alive(except_pid=victim.pid)
        await observe(cluster, tally)
        if took_over is None:
            owners = await store.pool.fetch(
                "SELECT m.pid, count(*) FROM leases l JOIN members m ON m.member_id = l.owner "
                "WHERE l.partition = ANY($1::int[]) AND l.expires > now() GROUP BY m.pid",
                partitions,
            )
            taken = {int(pid): int(n) for pid, n in owners if pid != victim.pid}
            if sum(taken.values()) == len(partitions):
                took_over = time.monotonic() - killed_at
                shares = ", ".join(
                    f"member {cluster.number(pid)} took {n}" for pid, n in sorted(taken.items())
                )
                print(f"its partitions were taken over {took_over:.1f} s after the kill ({shares})")
        if tally.is_done() and took_over is not None:
            break
        await asyncio.sleep(POLL)
    for proc in cluster.procs:
        runs, invoices = tally.finished(proc.pid)
        killed = " before the kill" if proc is victim else ""
        print(
            f"  member {cluster.number(proc.pid)} (pid {proc.pid}) finished {runs} runs and "
            f"{invoices} invoice executions{killed}"
        )
    return tally


def _verdict(tally: Tally, seconds: float) -> bool:
    runs = [tally.status.get(arn, "PENDING") for arn in tally.runs]
    invoices = [s for arn, s in tally.status.items() if arn not in tally.runs]
    ok = all(s == "SUCCEEDED" for s in runs + invoices)
    counts: dict[str, int] = {}
    for status in runs + invoices:
        counts[status] = counts.get(status, 0) + 1
    summary = (
        f"{runs.count('SUCCEEDED')}/{len(runs)} runs SUCCEEDED (and "
        f"{invoices.count('SUCCEEDED')}/{len(invoices)} invoice executions) in {seconds:.1f} s"
    )
    if not ok:
        summary += " -- NOT ALL SUCCEEDED: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    print(summary)
    return ok


@contextlib.contextmanager
def _log_folder(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="statemill-cluster-demo-") as tmp:
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; 0 if every execution SUCCEEDED, 1 if not, 3 if the store cannot be used."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--db", required=True, help="postgresql:// URL of the database (?schema=NAME: its schema)"
    )
    parser.add_argument("--executions", type=int, default=30, help="billing runs (default 30)")
    parser.add_argument("--timeout", type=float, default=50.0, help="give up after SECONDS")
    parser.add_argument("--logs", type=Path, help="keep the members' logs in this folder")
    args = parser.parse_args(argv)
    if not is_postgres(args.db):
        parser.error("--db takes a postgresql:// URL")
    if args.executions < 4:
        parser.error("--executions takes at least 4")
    with _log_folder(args.logs) as logs:
        try:
            ok = asyncio.run(demo(args.db, args.executions, args.timeout, logs))
        except StoreUnavailable as exc:
            print(f"cluster_demo: {exc}", file=sys.stderr)
            return 3
        except (RuntimeError, TimeoutError) as exc:
            print(f"cluster_demo: {exc}", file=sys.stderr)
            return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
