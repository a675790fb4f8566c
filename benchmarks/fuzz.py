"""The long fuzz of issue 11: ``python -m benchmarks.fuzz [--definitions N] [--executions N]
[--seconds S] [--out DIR] [--families F,...] [--jobs J] [--replay FILE]``.

A supervisor runs jobs in ``--jobs`` forked worker processes at once (``benchmarks.fuzz_worker``),
so that a frozen event loop, a crash or a memory blow-up loses one job, never the fuzz. There are
two kinds of job, each family's taken round-robin, the kind further behind its target first:

- **load**: definitions only, no event loop: cheap mutations of pre-built cases, counted as
  accepted or refused (``InvalidDefinition``); both count as loaded for the target.
- **exec**: executions started ``BATCH`` at a time in one runtime on virtual time (in memory; the
map family's on a SQLite file, whose Map Runs write hundreds of MiB of logs), with
  the history quota lowered (runaway loops fail by themselves in milliseconds), a canary of 10
  Pass states beside them and a canary and a Wait probe after each batch.

The supervisor watches each worker: no heartbeat for ``FREEZE_SECONDS`` = frozen (faulthandler's
dump of its Python stack is saved with the reproducer and names the module; the cases of a frozen
batch are then run again one at a time, so that the reproducer names the case), RSS past
``RSS_LIMIT`` = memory (the family's executions are stopped and reported), a signal = crash.
The fuzz stops when ``--definitions`` and ``--executions`` are reached or after ``--seconds``.

Every distinct failure's reproducer (family, seed, variant, definition, input) is saved once
under ``--out``/reproducers; ``--replay FILE`` runs one again in this process. A table goes to
stdout and a JSON document with the machine facts (``benchmarks.suite.machine_facts``) to
``--out``/fuzz-<timestamp>.json. Exit status: 0 when nothing failed, 1 otherwise, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import datetime as _dt
import json
import multiprocessing
import multiprocessing.sharedctypes
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final, TextIO, final

from benchmarks.common import percentile
from benchmarks.fuzz_families import make_case
from benchmarks.fuzz_gen import Case
from benchmarks.fuzz_worker import (
    BATCH,
    BATCH_WALL_SECONDS,
    DEFAULT_OUT,
    FAMILIES,
    FUZZ_LIMITS,
    RSS_LIMIT,
    STALL_SECONDS,
    Counts,
    Job,
    Outcome,
    exec_main,
    fuzz_runtime_for,
    load_main,
    quiet_logs,
    reproducer,
    run_case,
    save_failure,
    try_load,
)

__all__ = ["FREEZE_SECONDS", "Supervisor", "main"]

JSON = Any

FREEZE_SECONDS: Final = 5.0
"""A worker whose heartbeat stops this long is frozen (its event loop or a load is stuck)."""
LOAD_CHUNK: Final = 20_000
LOAD_BASES: Final = 50
EXEC_CHUNK: Final = 500
JOB_SECONDS: Final = 30.0
#: Families whose cases each start many executions (self-starting machines) run in smaller
#: batches, so that a batch stays under the open-executions quota; so do families that can
#: freeze the event loop today (a frozen batch is lost, then re-run one case at a time).
SMALL_BATCH: Final = {"nested": 10, "jsonata_blowup": 5}
_ROOT: Final = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# The supervisor
# ---------------------------------------------------------------------------------------------


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


@final
@dataclass
class _Running:
    job: Job
    process: BaseProcess
    shared: Any
    stack_file: str
    beat: int = -1
    beat_at: float = 0.0
    peak: int = 0


@final
class Supervisor:
    """Runs jobs in up to ``jobs`` worker processes at once and sums what they report."""

    def __init__(
        self,
        out: Path,
        seed: int,
        *,
        deadline: float | None = None,
        jobs: int = 2,
        load_chunk: int = LOAD_CHUNK,
        exec_chunk: int = EXEC_CHUNK,
        job_seconds: float = JOB_SECONDS,
    ) -> None:
        self.deadline = deadline
        self.out = out
        self.seed = seed
        self.jobs = jobs
        self.load_chunk = load_chunk
        self.exec_chunk = exec_chunk
        self.job_seconds = job_seconds
        self.counts: dict[str, Counts] = {}
        self.failures: dict[str, dict[str, JSON]] = {}
        self.stopped: dict[str, str] = {}
        self.next_seed: dict[tuple[str, str], int] = {}
        self.queue: list[Job] = []
        """Jobs to run before new ones (a frozen batch re-run one case at a time)."""
        self.bisected: set[str] = set()
        self.running: list[_Running] = []
        self.work = out / "work"
        self.work.mkdir(parents=True, exist_ok=True)

    # -- totals -------------------------------------------------------------------------------

    def definitions(self) -> int:
        return sum(c.definitions_loaded + c.definitions_invalid for c in self.counts.values())

    def executions(self) -> int:
        return sum(c.executions for c in self.counts.values())

    # -- jobs ---------------------------------------------------------------------------------

    def make_job(self, kind: str, family: str, *, batch: int = BATCH) -> Job:
        key = (kind, family)
        first = self.next_seed.setdefault(
            key, self.seed * 10_000_000 + (0 if kind == "exec" else 5_000_000)
        )
        count = self.load_chunk if kind == "load" else self.exec_chunk
        bases = min(LOAD_BASES, count)
        self.next_seed[key] = first + (bases if kind == "load" else count)
        return self._job(kind, family, first, count, bases=bases, batch=batch)

    def _job(
        self,
        kind: str,
        family: str,
        first: int,
        count: int,
        *,
        bases: int = LOAD_BASES,
        batch: int = BATCH,
    ) -> Job:
        deadline = time.time() + self.job_seconds
        if self.deadline is not None:
            deadline = min(deadline, self.deadline)
        return Job(
            kind="load" if kind == "load" else "exec",
            family=family,
            first_seed=first,
            count=count,
            out=self.out,
            results=self.work / f"{kind}-{family}-{first}-{batch}.jsonl",
            bases=bases,
            batch=batch if family not in SMALL_BATCH else min(batch, SMALL_BATCH[family]),
            deadline=deadline,
        )

    def start(self, job: Job) -> None:
        ctx = multiprocessing.get_context("fork")
        shared = multiprocessing.sharedctypes.RawArray(ctypes.c_longlong, 6)
        shared[0] = job.first_seed
        stack_file = str(job.results.with_suffix(".stacks"))
        target = load_main if job.kind == "load" else exec_main
        process = ctx.Process(target=target, args=(job, shared, stack_file), daemon=True)
        process.start()
        self.running.append(_Running(job, process, shared, stack_file, beat_at=time.monotonic()))

    def poll(self) -> None:
        """Watch the running workers once; collect the ones that ended or were killed."""
        for run in list(self.running):
            process = run.process
            assert process.pid is not None
            rss = _rss(process.pid)
            run.peak = max(run.peak, rss)
            if run.shared[2] != run.beat:
                run.beat, run.beat_at = run.shared[2], time.monotonic()
            killed: str | None = None
            if process.is_alive():
                if rss > RSS_LIMIT:
                    killed = "memory"
                elif time.monotonic() - run.beat_at > FREEZE_SECONDS:
                    killed = "frozen"
                else:
                    continue
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGUSR1)
                time.sleep(0.3)
                process.kill()
            process.join()
            self.running.remove(run)
            self.collect(run, killed)

    def collect(self, run: _Running, killed: str | None) -> None:
        job, shared, peak = run.job, run.shared, run.peak
        family = job.family
        counts = self.counts.setdefault(family, Counts())
        counts.peak_rss = max(counts.peak_rss, peak)
        next_seed = job.first_seed
        results = job.results
        for line in results.read_text().splitlines() if results.exists() else []:
            try:
                batch = json.loads(line)
            except json.JSONDecodeError:
                continue
            counts.add(batch["counts"])
            next_seed = max(next_seed, batch.get("next_seed", next_seed))
            for failure in batch["failures"]:
                self._failure(failure)
        exitcode = run.process.exitcode
        if killed is None and exitcode not in (0, None):
            killed = "crash"
        if killed is None:
            return
        seed, variant, phase, last = shared[0], shared[1], shared[3], shared[4]
        stacks = (
            Path(run.stack_file).read_text(errors="replace")
            if Path(run.stack_file).exists()
            else ""
        )
        module = _stack_module(stacks)
        phase_name = ("loading", "executing", "canary", "closing")[phase] if 0 <= phase < 4 else "?"
        signature = f"{killed}|{family}|{phase_name}|{module}"
        if job.kind == "exec" and phase == 1 and last > seed:
            # A batch froze: the culprit is one of seeds seed..last. Re-run them one at a time
            # (once per distinct freeze), so that the reproducer names the case.
            if signature not in self.bisected:
                self.bisected.add(signature)
                self.queue.append(self._job("exec", family, seed, last - seed + 1, batch=1))
            repro_seed, repro_variant = last, -1
        else:
            repro_seed, repro_variant = seed, (variant if phase == 0 else -1)
        case = make_case(family, repro_seed)
        outcome = Outcome(
            status=killed,
            kind=killed,
            signature=signature,
            module=module,
            detail=f"worker {killed} while {phase_name} seeds {seed}..{max(seed, last)} "
            f"(exit code {exitcode}, RSS {peak / 2**20:.0f} MiB)",
        )
        repro = reproducer(case, repro_variant)
        repro["stacks"] = stacks[-6000:]
        if job.kind == "exec" and last > seed:
            repro["batch_seeds"] = [seed, last]
        # A case run alone (after its batch froze) names the culprit: its reproducer replaces
        # the batch's.
        alone = job.kind == "exec" and job.batch == 1
        file = save_failure(self.out, outcome, repro, overwrite=alone)
        known = self.failures.get(signature)
        if alone and known is not None:
            known["seed"], known["variant"], known["detail"] = repro_seed, -1, outcome.detail
        counter = "crashes" if killed == "crash" else killed
        setattr(counts, counter, getattr(counts, counter) + 1)
        if phase == 1:
            counts.executions += 1
            counts.statuses[killed.upper()] += 1
        self._failure(
            {
                "kind": killed,
                "signature": signature,
                "module": module,
                "detail": outcome.detail,
                "family": family,
                "seed": repro_seed,
                "variant": repro_variant,
                "file": file,
            }
        )
        if killed == "memory":
            self.stopped[family] = f"RSS passed {RSS_LIMIT / 2**30:.0f} GiB at seed {seed}"
        if job.kind == "exec":
            # Go on after the case (one at a time) or the batch that was lost.
            rest = job.first_seed + job.count - (max(seed, last) + 1)
            if rest > 0 and job.batch == 1:
                self.queue.append(self._job("exec", family, max(seed, last) + 1, rest, batch=1))

    def _failure(self, failure: dict[str, JSON]) -> None:
        known = self.failures.get(failure["signature"])
        if known is None:
            self.failures[failure["signature"]] = {**failure, "count": 1}
        else:
            known["count"] += 1
            if not known.get("file") and failure.get("file"):
                known["file"] = failure["file"]

    def run(
        self,
        families: Sequence[str],
        definitions: int,
        executions: int,
        report: Callable[[], None] | None = None,
    ) -> None:
        """Run jobs until both targets are reached (or the deadline passes)."""
        cursor = {"load": 0, "exec": 0}
        last_report = 0.0
        while True:
            past = self.deadline is not None and time.time() > self.deadline
            active = [f for f in families if f not in self.stopped]
            load_left = self.definitions() < definitions
            exec_left = self.executions() < executions and bool(active)
            if (past or not (load_left or exec_left or self.queue)) and not self.running:
                break
            while (
                not past
                and len(self.running) < self.jobs
                and (self.queue or load_left or exec_left)
            ):
                if self.queue:
                    self.start(self.queue.pop(0))
                    continue
                # The kind further behind its target, counting the jobs in flight as done.
                flying = {"load": 0, "exec": 0}
                for r in self.running:
                    flying[r.job.kind] += r.job.count
                load_share = (self.definitions() + flying["load"]) / max(1, definitions)
                exec_share = (self.executions() + flying["exec"]) / max(1, executions)
                pick_load = load_left and (not exec_left or load_share < exec_share)
                kind = "load" if pick_load else "exec"
                pool = list(families) if kind == "load" else active
                family = pool[cursor[kind] % len(pool)]
                cursor[kind] += 1
                self.start(self.make_job(kind, family))
            self.poll()
            time.sleep(0.1)
            if report is not None and time.monotonic() - last_report > 2.0:
                last_report = time.monotonic()
                report()


def _stack_module(stacks: str) -> str:
    """The innermost project frame of the first thread in a faulthandler dump."""
    frames = re.findall(r'File "([^"]+)", line (\d+) in (\S+)', stacks)
    for filename, line, name in frames:  # faulthandler prints the innermost frame first
        if str(_ROOT) in filename and "/benchmarks/" not in filename:
            return f"{Path(filename).relative_to(_ROOT)}:{name}:{line}"
    if frames:
        filename, line, name = frames[0]
        return f"{Path(filename).name}:{name}:{line}"
    return "?"


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fuzz from the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.replay is not None:
        return _replay(Path(args.replay))
    families = args.families.split(",") if args.families else list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        print(f"unknown families: {unknown} (known: {', '.join(FAMILIES)})", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    supervisor = Supervisor(
        out,
        args.seed,
        deadline=None if args.seconds is None else time.time() + args.seconds,
        jobs=args.jobs,
        load_chunk=args.load_chunk,
        exec_chunk=args.exec_chunk,
        job_seconds=args.job_seconds,
    )

    def report() -> None:
        if args.quiet:
            return
        loaded = sum(c.definitions_loaded for c in supervisor.counts.values())
        print(
            f"\r[{time.monotonic() - began:6.0f} s] {supervisor.definitions():,} definitions "
            f"({loaded:,} valid), {supervisor.executions():,} executions, "
            f"{len(supervisor.failures)} distinct failures",
            end="",
            file=sys.stderr,
            flush=True,
        )

    supervisor.run(families, args.definitions, args.executions, report)
    report()
    if not args.quiet:
        print(file=sys.stderr)
    document = _document(supervisor, args, time.monotonic() - began)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%S")
    path = out / f"fuzz-{stamp}.json"
    path.write_text(json.dumps(document, indent=1))
    _print_table(document, sys.stdout)
    print(f"\nJSON: {path}\nreproducers: {out / 'reproducers'}")
    return 0 if document["totals"]["failures"] == 0 else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz", description=__doc__)
    parser.add_argument("--definitions", type=int, default=1_000_000, help="definitions to load")
    parser.add_argument("--executions", type=int, default=100_000, help="executions to run")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR")
    parser.add_argument(
        "--families", default="", help=f"comma list (default all: {', '.join(FAMILIES)})"
    )
    parser.add_argument("--seed", type=int, default=1, help="base seed (cases are reproducible)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes at once")
    parser.add_argument("--load-chunk", type=int, default=LOAD_CHUNK, help="definitions per job")
    parser.add_argument("--exec-chunk", type=int, default=EXEC_CHUNK, help="cases per job")
    parser.add_argument(
        "--job-seconds", type=float, default=JOB_SECONDS, help="wall time of one job, at most"
    )
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--replay", metavar="FILE", help="run one saved reproducer here")
    return parser


def _summary(counts: Counts) -> dict[str, JSON]:
    lat = counts.canary_latencies
    return {
        **{k: v for k, v in counts.as_json().items() if k != "canary_latencies"},
        "definitions": counts.definitions_loaded + counts.definitions_invalid,
        "failures": counts.failures,
        "canary_p50_ms": percentile(lat, 0.5) * 1000 if lat else None,
        "canary_p99_ms": percentile(lat, 0.99) * 1000 if lat else None,
        "canary_max_ms": max(lat) * 1000 if lat else None,
    }


def _document(supervisor: Supervisor, args: argparse.Namespace, seconds: float) -> dict[str, JSON]:
    from benchmarks.suite import default_loop, machine_facts

    families: dict[str, JSON] = {}
    totals = Counts()
    for family, counts in supervisor.counts.items():
        families[family] = {**_summary(counts), "stopped": supervisor.stopped.get(family)}
        totals.add(counts.as_json())
    total = {**_summary(totals), "seconds": seconds}
    lat = totals.canary_latencies
    return {
        "machine": machine_facts(default_loop()),
        "params": {
            "definitions": args.definitions,
            "executions": args.executions,
            "seconds": args.seconds,
            "seed": args.seed,
            "jobs": args.jobs,
            "load_chunk": args.load_chunk,
            "exec_chunk": args.exec_chunk,
            "batch": BATCH,
            "history_events_limit": FUZZ_LIMITS.max_history_events,
            "max_open_executions": FUZZ_LIMITS.max_open_executions,
            "max_nesting_depth": FUZZ_LIMITS.max_nesting_depth,
            "stall_seconds": STALL_SECONDS,
            "freeze_seconds": FREEZE_SECONDS,
            "rss_limit_bytes": RSS_LIMIT,
        },
        "totals": total,
        "families": families,
        "failures": sorted(supervisor.failures.values(), key=lambda f: (f["kind"], -f["count"])),
        "done_when": {
            "definitions >= 1,000,000": total["definitions"] >= 1_000_000,
            "executions >= 100,000": totals.executions >= 100_000,
            "0 internal errors": totals.internal_errors + totals.load_internal_errors == 0,
            "0 exceptions escaping": totals.escaped == 0,
            "0 hangs": totals.hangs + totals.frozen + totals.runaway == 0,
            "0 runtimes broken": totals.runtimes_broken == 0,
            "0 unhandled event-loop errors": totals.loop_errors == 0,
            "canary p99 < 100 ms": bool(lat) and percentile(lat, 0.99) < 0.1,
            "RSS < 2 GiB": totals.memory == 0 and totals.peak_rss < RSS_LIMIT,
        },
    }


def _print_table(document: dict[str, JSON], out: TextIO) -> None:
    header = (
        f"{'family':<17}{'defs':>9}{'valid':>8}{'ld.err':>7}{'execs':>8}{'in.rej':>7}"
        f"{'int.err':>8}{'escap':>6}{'hang':>5}{'runaw':>6}{'frozen':>7}{'mem':>4}{'crash':>6}"
        f"{'broken':>7}{'loop':>5}{'can.n':>7}{'can.f':>6}{'p50 ms':>7}{'p99 ms':>8}{'rss MiB':>8}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    rows = [*document["families"].items(), ("TOTAL", document["totals"])]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    for name, c in rows:
        print(
            f"{name:<17}{c['definitions']:>9,}{c['definitions_loaded']:>8,}"
            f"{c['load_internal_errors']:>7}{c['executions']:>8,}{c['input_rejected']:>7,}"
            f"{c['internal_errors']:>8}{c['escaped']:>6}{c['hangs']:>5}{c['runaway']:>6}"
            f"{c['frozen']:>7}{c['memory']:>4}{c['crashes']:>6}{c['runtimes_broken']:>7}"
            f"{c['loop_errors']:>5}"
            f"{c['canary_runs']:>7,}{c['canary_failures']:>6}"
            f"{ms(c['canary_p50_ms']):>7}{ms(c['canary_p99_ms']):>8}{c['peak_rss'] / 2**20:>8.0f}",
            file=out,
        )
    statuses = Counter(document["totals"]["statuses"])
    print("\nstatuses: " + ", ".join(f"{k} {v:,}" for k, v in statuses.most_common()), file=out)
    print(
        f"slow (outlived a batch's {BATCH_WALL_SECONDS:.0f} s, ended alone): "
        f"{document['totals'].get('slow', 0):,}",
        file=out,
    )
    for family, c in document["families"].items():
        if c.get("stopped"):
            print(f"stopped: {family}: {c['stopped']}", file=out)
    print(f"\ndistinct failures: {len(document['failures'])}", file=out)
    for failure in document["failures"]:
        print(
            f"  {failure['count']:>6} x {failure['kind']:<20} {failure['family']:<16} "
            f"seed {failure['seed']} v{failure['variant']} {failure['module'] or '-'}  "
            f"{failure['detail'][:110]!r}  [{failure.get('file', '')}]",
            file=out,
        )
    print("\ndone when:", file=out)
    for check, ok in document["done_when"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {check}", file=out)


def _replay(path: Path) -> int:
    """Run one saved reproducer in this process (load, then execute) and print the outcome."""
    data = json.loads(path.read_text())
    if "definition" not in data:
        print(
            "this reproducer holds values JSON cannot; rebuilt from "
            f"benchmarks.fuzz_gen.make_case({data['family']!r}, {data['seed']})"
        )
        case = make_case(data["family"], data["seed"])
        definition, data_input = reproducer(case, data["variant"])["definition"], case.input
    else:
        definition, data_input = data["definition"], data["input"]
    quiet_logs()
    print("load:", try_load(definition, data.get("machine_type", "STANDARD")))
    case = Case(
        family=data["family"],
        seed=data["seed"],
        definition=definition,
        input=data_input,
        machine_type=data.get("machine_type", "STANDARD"),
        name=data.get("name") or "Replay",
    )

    async def go() -> Outcome:
        async with fuzz_runtime_for(case.family) as rt:
            return await run_case(rt, case)

    outcome = asyncio.run(go())
    print("execution:", outcome)
    return 0 if outcome.kind is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
