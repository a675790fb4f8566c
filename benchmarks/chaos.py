"""Chaos on a shared PostgreSQL store: member processes killed and paused while they run
executions; afterwards every execution must look as if nothing had happened.

    python -m benchmarks.chaos --executions 2000 --seconds 900 --out results/chaos.json

Three ``benchmarks.chaos_member`` processes share one database. The driver is no runtime: it
stores the state machines and records ``start`` requests (the command line's path), so each
execution is started by the owner of its partition. The machine mixes a handler Task, a Wait,
an inline Map, a distributed Map, Retry, Catch, a task token answered by whichever member finds
it (mostly not the owner), an activity polled by every member, and a ``.sync`` child execution
(usually in another member's partition). Every ``--every`` seconds a random member gets SIGKILL
(restarted at once) or SIGSTOP (resumed after 1.5 lease lifetimes: it must find itself fenced).

At the end, checked against an uncrashed run of the same inputs in one process: every execution
SUCCEEDED with the same output; every history is dense (ids 1..n) and has exactly the reference
run's events (same counts of each type: no transition appended twice, none lost); every handler
call whose result is recorded completed, and each result is recorded once. Takeover time after a
SIGKILL is from the kill to the first event another member appends to an open execution of the
killed member's partitions (a kill while every other member is paused is counted as "no
survivor" and not timed), split into its steps: the killed member's leases expire (the lease
time-to-live after its last renewal), the first of them is claimed, the first event is
appended. The members' logs add how late each claim came after the expiry and the steps of
each load of partitions taken (read, machines, fold, heartbeats, wake, requests). Counts and
figures are printed and written as JSON.

Needs PostgreSQL's server binaries (``tests/store/postgres_server.py`` starts a throwaway one).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Final

import anyio

from benchmarks.chaos_member import ACTIVITY, Member
from benchmarks.suite import machine_facts
from runtime import Runtime
from runtime.definition.load import load_definition
from runtime.store.base import StateMachineRecord
from runtime.store.postgres import PostgresStore, partition_of

JSON = Any
PREFIX: Final = "arn:aws:states:us-east-1:123456789012"
CHILD_ARN: Final = f"{PREFIX}:stateMachine:ChaosChild"
#: The state machine of the ``Spread`` distributed Map's child workflows.
SPREAD_ARN: Final = f"{PREFIX}:stateMachine:Chaos/Spread"
MAIN_ARN: Final = f"{PREFIX}:stateMachine:Chaos"
#: Distinct inputs: execution ``i`` gets ``n = i % DISTINCT`` (the reference runs each once).
DISTINCT: Final = 12

CHILD: Final = {
    "StartAt": "Double",
    "States": {"Double": {"Type": "Task", "Resource": "Work", "End": True}},
}


def main_definition() -> dict[str, JSON]:
    work = {
        "StartAt": "Inner",
        "States": {"Inner": {"Type": "Task", "Resource": "Work", "End": True}},
    }
    distributed = {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Far",
        "States": {"Far": {"Type": "Task", "Resource": "Work", "End": True}},
    }
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {
                "Type": "Task",
                "Resource": "Work",
                "ResultPath": "$.prepared",
                "Next": "Nap",
            },
            "Nap": {"Type": "Wait", "Seconds": 1, "Next": "Fan"},
            "Fan": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "ItemProcessor": work,
                "ResultPath": "$.fan",
                "Next": "Spread",
            },
            "Spread": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": distributed,
                "ResultPath": "$.spread",
                "Next": "Flaky",
            },
            "Flaky": {
                "Type": "Task",
                "Resource": "Flaky",
                "Retry": [{"ErrorEquals": ["Flake"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                "ResultPath": "$.flaky",
                "Next": "Risky",
            },
            "Risky": {
                "Type": "Task",
                "Resource": "Boom",
                "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.caught", "Next": "Approve"}],
                "End": True,
            },
            "Approve": {
                "Type": "Task",
                "Resource": "Approve.waitForTaskToken",
                "Parameters": {"n.$": "$.n", "token.$": "$$.Task.Token"},
                "ResultPath": "$.approval",
                "Next": "Review",
            },
            "Review": {
                "Type": "Task",
                "Resource": f"{PREFIX}:activity:{ACTIVITY}",
                "Parameters": {"n.$": "$.n"},
                # A worker killed while it holds a task never answers (as on AWS): the task
                # times out and is scheduled again.
                "TimeoutSeconds": 15,
                "Retry": [
                    {"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 20}
                ],
                "ResultPath": "$.review",
                "Next": "Child",
            },
            "Child": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Parameters": {"StateMachineArn": CHILD_ARN, "Input": {"n.$": "$.n"}},
                "ResultSelector": {"n.$": "$.Output.n"},
                "ResultPath": "$.child",
                "Next": "Done",
            },
            "Done": {"Type": "Pass", "End": True},
        },
    }


#: Events an activity's timed-out attempts add (its worker was killed); the rest must match.
RETRIED_ATTEMPTS: Final = frozenset({"ActivityScheduled", "ActivityStarted", "ActivityTimedOut"})


def event_counts(types: Iterable[str]) -> collections.Counter[str]:
    """How many events of each type a history has, leaving out activity attempts."""
    return collections.Counter(t for t in types if t not in RETRIED_ATTEMPTS)


def input_of(n: int) -> dict[str, JSON]:
    return {"n": n, "items": [{"n": n}, {"n": n + 1}, {"n": n + 2}]}


def _record(arn: str, name: str, definition: dict[str, JSON]) -> StateMachineRecord:
    text = json.dumps(definition)
    load_definition(text)  # valid, or fail before anything runs
    return StateMachineRecord(
        arn=arn,
        name=name,
        definition=text,
        type="STANDARD",
        creation_date=time.time(),
        revision_id=hashlib.sha256(text.encode()).hexdigest()[:32],
    )


# -- the uncrashed reference ----------------------------------------------------------------


async def reference(workdir: Path) -> dict[str, Any]:
    """Run each distinct input once in one process (memory store): outputs, the event-type
    counts of main and child histories, and how many handler results each execution records."""
    (workdir / "tokens").mkdir(parents=True)
    member = Member(workdir)
    handlers = {"Work": member.work, "Flaky": member.flaky, "Boom": member.boom,
                "Approve": member.approve}  # fmt: skip
    outputs: dict[int, JSON] = {}
    main_types: collections.Counter[str] | None = None
    child_types: collections.Counter[str] | None = None
    async with Runtime("memory", handlers=handlers) as rt:
        activity = await rt.create_activity(ACTIVITY)
        await rt.create_state_machine("ChaosChild", CHILD)
        await rt.create_state_machine("Chaos", main_definition())
        async with anyio.create_task_group() as tg:
            tg.start_soon(member.answer_tokens, rt)
            tg.start_soon(member.review, rt, activity.activity_arn)
            started = [
                (n, await rt.start_execution(MAIN_ARN, input_of(n), name=f"ref{n}"))
                for n in range(DISTINCT)
            ]
            for n, start in started:
                done = await rt.wait_for_execution(start.execution_arn, timeout=120)
                if done.status != "SUCCEEDED":
                    raise RuntimeError(f"the reference run failed: {done}")
                outputs[n] = done.output_value
                history = await rt.get_execution_history(start.execution_arn, include_map_runs=True)
                types = event_counts(e.type for e in history)
                if main_types not in (None, types):
                    raise RuntimeError("reference histories differ between inputs")
                main_types = types
            children = [d for d in await rt.list_executions(CHILD_ARN) if d.status == "SUCCEEDED"]
            child_history = await rt.get_execution_history(children[0].execution_arn)
            child_types = event_counts(e.type for e in child_history)
            # The distributed Map's iterations: child executions of its Map Run.
            spread = [d for d in await rt.list_executions(SPREAD_ARN) if d.status == "SUCCEEDED"]
            spread_history = await rt.get_execution_history(spread[0].execution_arn)
            spread_types = event_counts(e.type for e in spread_history)
            tg.cancel_scope.cancel()
    member.calls.close()
    keys = _call_keys(workdir)
    assert main_types is not None
    assert child_types is not None
    return {
        "outputs": outputs,
        "main_types": main_types,
        "child_types": child_types,
        "spread_types": spread_types,
        "handler_results_per_run": len(set(keys)) // DISTINCT,
    }


# -- the members ----------------------------------------------------------------------------


class Members:
    """The member processes: start, kill, pause, resume, stop."""

    def __init__(self, dsn: str, schema: str, workdir: Path, lease_ttl: float) -> None:
        self.args = [sys.executable, "-m", "benchmarks.chaos_member", dsn, schema,
                     str(workdir), str(lease_ttl)]  # fmt: skip
        self.workdir = workdir
        self.procs: list[subprocess.Popen[str]] = []
        self.gone: list[subprocess.Popen[str]] = []
        """Members killed and replaced (their pipes are closed at the end)."""
        self.logs: list[Any] = []

    def spawn(self, slot: int | None = None) -> subprocess.Popen[str]:
        log = (self.workdir / f"member-{len(self.logs)}.log").open("w")
        self.logs.append(log)
        proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=log, text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
        if slot is None:
            self.procs.append(proc)
        else:
            self.gone.append(self.procs[slot])
            self.procs[slot] = proc
        return proc

    async def ready(self, proc: subprocess.Popen[str], timeout: float = 60) -> None:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
        if line.strip() != "ready":
            raise RuntimeError(f"member {proc.pid} did not start: {line!r}")

    def stop_all(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for proc in [*self.procs, *self.gone]:
            if proc.stdout is not None:
                proc.stdout.close()
        for log in self.logs:
            log.close()


async def _takeover_seconds(
    store: PostgresStore, member_pid: int, kill: Any, *, limit: float
) -> tuple[float | None, str, dict[str, float]]:
    """Kill (``kill()``) the member with ``member_pid`` and time the first event another
    member appends to an open execution of its partitions; when none appends one within
    ``limit`` (they all wait on something slower), the time its first lease was taken. The
    third value splits it: ``expiry`` (kill -> the killed member's leases expire, by the
    database's clock), ``claim`` (expiry -> the first of them taken) and ``append`` (that ->
    the first event appended)."""
    pool = store.pool
    member_id = await pool.fetchval("SELECT member_id FROM members WHERE pid = $1", member_pid)
    partitions = [
        r[0] for r in await pool.fetch("SELECT partition FROM leases WHERE owner = $1", member_id)
    ]
    if not partitions:
        kill()
        return None, "no partitions", {}
    open_rows = await pool.fetch(
        "SELECT execution_arn, last_seq FROM executions WHERE status = 'RUNNING' "
        "AND partition = ANY($1::int[])",
        partitions,
    )
    before = dict(open_rows)
    began, began_wall = time.monotonic(), time.time()
    kill()
    # Read after the kill: no renewal can move them on any more.
    expires = await pool.fetchval(
        "SELECT extract(epoch FROM max(expires))::float8 FROM leases WHERE owner = $1 "
        "AND partition = ANY($2::int[])",
        member_id,
        partitions,
    )
    phases: dict[str, float] = {}
    if expires is not None:
        phases["expiry"] = expires - began_wall
    lease_at: float | None = None
    while time.monotonic() - began < limit:
        if before:
            moved = await pool.fetchval(
                "SELECT count(*) FROM executions e JOIN leases l ON l.partition = e.partition "
                "JOIN unnest($1::text[], $2::bigint[]) AS b(arn, seq) ON b.arn = e.execution_arn "
                "WHERE e.last_seq > b.seq AND l.owner IS DISTINCT FROM $3",
                list(before),
                list(before.values()),
                member_id,
            )
            if moved:
                took = time.monotonic() - began
                if lease_at is not None:
                    phases["append"] = took - lease_at
                return took, "event", phases
        if lease_at is None and await pool.fetchval(
            "SELECT count(*) FROM leases WHERE partition = ANY($1::int[]) "
            "AND owner IS NOT NULL AND owner <> $2",
            partitions,
            member_id,
        ):
            lease_at = time.monotonic() - began
            if "expiry" in phases:
                phases["claim"] = lease_at - phases["expiry"]
            if not before:
                return lease_at, "lease", phases
        await asyncio.sleep(0.01)
    return lease_at, "lease" if lease_at is not None else "timed out", phases


def _spread(values: list[float]) -> dict[str, float | int | None]:
    """n, median and max of ``values`` (seconds, rounded to the millisecond)."""
    return {
        "n": len(values),
        "median": round(statistics.median(values), 3) if values else None,
        "max": round(max(values), 3) if values else None,
    }


_ANSI: Final = re.compile(r"\x1b\[[0-9;]*m")
_FIELD: Final = re.compile(r"(\w+)=(\S+)")


def load_phases(folder: Path) -> dict[str, dict[str, float | int | None]]:
    """From the members' logs in ``folder``: how late each claim came after the lease it took
    had expired (``cluster.partitions_gained``), and the steps of each load of the partitions
    taken (``cluster.partitions_loaded``), as seconds."""
    found: dict[str, list[float]] = collections.defaultdict(list)
    for path in sorted(folder.glob("member-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            line = _ANSI.sub("", line)
            if "cluster.partitions_gained" in line:
                fields = dict(_FIELD.findall(line))
                if fields.get("expired_seconds", "None") != "None":
                    found["claim_after_expiry"].append(float(fields["expired_seconds"]))
            elif "cluster.partitions_loaded" in line:
                for key, value in _FIELD.findall(line):
                    if key.endswith("_ms"):
                        found[f"load_{key[:-3]}"].append(float(value) / 1000)
    return {key: _spread(values) for key, values in sorted(found.items())}


# -- the run --------------------------------------------------------------------------------


async def chaos(
    dsn: str,
    schema: str,
    *,
    executions: int,
    members: int = 3,
    seconds: float,
    every: float,
    lease_ttl: float,
    seed: int = 1,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run the chaos and return its counts and figures (see the module's docstring)."""
    rng = random.Random(seed)
    with _folder(workdir) as root:
        ref = await reference(root / "reference")
        work = root / "cluster"
        (work / "tokens").mkdir(parents=True)
        async with PostgresStore.open(dsn, schema=schema) as store:
            await store.put_state_machine(_record(CHILD_ARN, "ChaosChild", CHILD))
            await store.put_state_machine(_record(MAIN_ARN, "Chaos", main_definition()))
            group = Members(dsn, schema, work, lease_ttl)
            try:
                for _ in range(members):
                    await group.ready(group.spawn())
                names = [f"x{i}" for i in range(executions)]
                arns = {f"{PREFIX}:execution:Chaos:{name}": i for i, name in enumerate(names)}
                for arn, i in arns.items():
                    body = {"stateMachineArn": MAIN_ARN, "name": arn.rsplit(":", 1)[1],
                            "input": input_of(i % DISTINCT)}  # fmt: skip
                    await store.add_request("start", json.dumps(body), time.time(),
                                            partition_of(arn))  # fmt: skip
                counts = await _disrupt(store, group, rng, arns, seconds, every, lease_ttl)
            finally:
                group.stop_all()
            return {**counts, **await _verify(store, ref, arns, work)}


async def _disrupt(
    store: PostgresStore,
    group: Members,
    rng: random.Random,
    arns: dict[str, int],
    seconds: float,
    every: float,
    lease_ttl: float,
) -> dict[str, Any]:
    """Kill and pause members until every execution has ended or ``seconds`` passed."""
    kills = pauses = 0
    takeovers: list[float] = []
    takeover_kinds: collections.Counter[str] = collections.Counter()
    steps: dict[str, list[float]] = collections.defaultdict(list)
    paused: dict[int, float] = {}  # slot -> when to resume
    began = time.monotonic()
    next_blow = began + every
    while time.monotonic() - began < seconds:
        now = time.monotonic()
        for slot, at in list(paused.items()):
            if now >= at:
                os.kill(group.procs[slot].pid, signal.SIGCONT)
                del paused[slot]
        running = await store.pool.fetchval(
            "SELECT count(*) FROM executions WHERE status = 'RUNNING'"
        )
        ended = await store.pool.fetchval(
            "SELECT count(*) FROM executions WHERE status <> 'RUNNING' "
            "AND execution_arn = ANY($1::text[])",
            list(arns),
        )
        if ended == len(arns) and running == 0:
            break
        if now >= next_blow:
            next_blow = now + every
            slot = rng.choice([s for s in range(len(group.procs)) if s not in paused])
            proc = group.procs[slot]
            if rng.random() < 0.5:
                kills += 1

                def kill(proc: subprocess.Popen[str] = proc) -> None:
                    proc.kill()
                    proc.wait()

                if any(s != slot and s not in paused for s in range(len(group.procs))):
                    took, kind, phases = await _takeover_seconds(
                        store, proc.pid, kill, limit=lease_ttl * 4
                    )
                else:  # every other member is paused: nobody to take over until one resumes
                    kill()
                    took, kind, phases = None, "no survivor", {}
                takeover_kinds[kind] += 1
                if took is not None:
                    takeovers.append(took)
                for step, spent in phases.items():
                    steps[step].append(spent)
                await group.ready(group.spawn(slot))
            else:
                pauses += 1
                os.kill(proc.pid, signal.SIGSTOP)
                paused[slot] = now + lease_ttl * 1.5
        await asyncio.sleep(0.2)
    for slot in paused:
        os.kill(group.procs[slot].pid, signal.SIGCONT)
    return {
        "seconds": round(time.monotonic() - began, 1),
        "kills": kills,
        "pauses": pauses,
        "takeover_seconds": {
            **_spread(takeovers),
            "measured_by": dict(takeover_kinds),
            "steps": {step: _spread(values) for step, values in sorted(steps.items())},
            "members": load_phases(group.workdir),
        },
    }


async def _verify(
    store: PostgresStore, ref: dict[str, Any], arns: dict[str, int], work: Path
) -> dict[str, Any]:
    """Compare the cluster's executions with the reference run."""
    wrong_output = not_succeeded = gaps = wrong_events = 0
    differences: list[dict[str, Any]] = []
    records = {r.execution_arn: r for r in await store.list_executions(None, limit=10**9)}
    for arn, i in arns.items():
        record = records.get(arn)
        if record is None or record.status != "SUCCEEDED":
            not_succeeded += 1
            continue
        if json.loads(record.output or "null") != ref["outputs"][i % DISTINCT]:
            wrong_output += 1
    for arn, record in records.items():
        events = await store.read(arn)
        if [e.id for e in events] != list(range(1, len(events) + 1)):
            gaps += 1
        expected = ref["main_types"]
        if ":ChaosChild:" in arn:
            expected = ref["child_types"]
        elif ":Chaos/Spread:" in arn:
            expected = ref["spread_types"]
        types = event_counts(e.type for e in events)
        if record.status == "SUCCEEDED" and types != expected:
            wrong_events += 1
            if len(differences) < 5:
                extra, missing = types - expected, expected - types
                differences.append({"execution": arn, "extra": extra, "missing": missing})
    lines = _call_keys(work)
    recorded_results = ref["handler_results_per_run"] * len(arns)
    stuck = sum(1 for r in records.values() if r.status == "RUNNING")
    stuck_at: collections.Counter[str] = collections.Counter()
    for arn, record in records.items():
        if record.status == "RUNNING":
            last = (await store.read(arn))[-1]
            entered = [e for e in await store.read(arn) if e.type.endswith("StateEntered")]
            where = entered[-1].details.get("name") if entered else "-"
            stuck_at[f"{arn.split(':')[-2]} {where} {last.type}"] += 1
    return {
        "executions": len(arns),
        "child_executions": sum(1 for arn in records if ":ChaosChild:" in arn),
        "map_run_children": sum(1 for arn in records if ":Chaos/Spread:" in arn),
        "not_succeeded": not_succeeded,
        "stuck": stuck,
        "wrong_output": wrong_output,
        "histories_with_gaps": gaps,
        "histories_with_lost_or_duplicated_events": wrong_events,
        "handler_results_recorded": recorded_results,
        "handler_calls_completed": len(lines),
        "handler_calls_distinct": len(set(lines)),
        "handler_calls_rerun": len(lines) - len(set(lines)),
        "stuck_at": dict(stuck_at),
        "event_differences": differences,
    }


def _call_keys(folder: Path) -> list[str]:
    """The idempotency keys of the handler calls completed by the processes of ``folder``."""
    return [line for f in folder.glob("calls-*.log") for line in f.read_text().split()]


@contextlib.contextmanager
def _folder(path: Path | None) -> Iterator[Path]:
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="statemill-chaos-") as tmp:
        yield Path(tmp)


async def _main(args: argparse.Namespace) -> dict[str, Any]:
    from tests.store.postgres_server import PostgresServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
    with tempfile.TemporaryDirectory(prefix="statemill-chaos-pg-") as tmp:
        server = PostgresServer(bin_dir, Path(tmp))
        server.start()
        try:
            return await chaos(
                server.dsn(), "chaos", executions=args.executions, seconds=args.seconds,
                every=args.every, lease_ttl=args.lease_ttl, seed=args.seed,
            )  # fmt: skip
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=900)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between blows")
    parser.add_argument("--lease-ttl", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/chaos.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.store's server
    result = asyncio.run(_main(args))
    result["machine"] = machine_facts("asyncio")
    result["parameters"] = vars(args) | {"out": str(args.out)}
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
