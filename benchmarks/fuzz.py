"""The long fuzz of issue 11: ``python -m benchmarks.fuzz [--definitions N] [--executions N]
[--seconds S] [--out DIR] [--families F,...] [--replay FILE]``.

A supervisor runs the families of ``benchmarks.fuzz_families`` round-robin in chunks, one forked
worker process per chunk (``benchmarks.fuzz_worker``), so that a frozen event loop, a crash or
a memory blow-up loses one chunk, never the fuzz. It watches each worker: no heartbeat from its
event loop for ``FREEZE_SECONDS`` = frozen (faulthandler's dump of the frozen worker's Python
stack is saved with the reproducer and names the module), RSS past ``RSS_LIMIT`` = memory (the
family is stopped and reported), a signal = crash. The fuzz stops when ``--definitions`` and
``--executions`` are reached or after ``--seconds``.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, TextIO, final

from benchmarks.common import percentile
from benchmarks.fuzz_families import make_case
from benchmarks.fuzz_gen import Case
from benchmarks.fuzz_worker import (
    CHUNK,
    DEFAULT_OUT,
    FAMILIES,
    HANDLERS,
    RSS_LIMIT,
    STALL_SECONDS,
    Chunk,
    Counts,
    Outcome,
    quiet_logs,
    reproducer,
    run_case,
    save_failure,
    try_load,
    worker_main,
)
from runtime import Runtime

__all__ = ["FREEZE_SECONDS", "Supervisor", "main"]

JSON = Any

FREEZE_SECONDS: Final = 10.0
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
class Supervisor:
    """Runs chunks in worker processes and sums what they report."""

    def __init__(self, out: Path, ratio: int, seed: int, deadline: float | None = None) -> None:
        self.deadline = deadline
        self.out = out
        self.ratio = ratio
        self.seed = seed
        self.counts: dict[str, Counts] = {}
        self.failures: dict[str, dict[str, JSON]] = {}
        self.stopped: dict[str, str] = {}
        self.next_seed: dict[str, int] = {}
        self.work = out / "work"
        self.work.mkdir(parents=True, exist_ok=True)

    def run_chunk(self, family: str, count: int) -> None:
        first = self.next_seed.setdefault(family, self.seed * 10_000_000)
        results = self.work / f"{family}-{first}.jsonl"
        stack_file = str(self.work / f"{family}-{first}.stacks")
        chunk = Chunk(
            family=family,
            first_seed=first,
            count=count,
            ratio=self.ratio,
            out=self.out,
            results=results,
            deadline=self.deadline,
        )
        ctx = multiprocessing.get_context("fork")
        shared = multiprocessing.sharedctypes.RawArray(ctypes.c_longlong, 4)
        shared[0] = first
        process = ctx.Process(target=worker_main, args=(chunk, shared, stack_file), daemon=True)
        process.start()
        assert process.pid is not None
        beat, beat_at, peak = -1, time.monotonic(), 0
        killed: str | None = None
        while process.is_alive():
            process.join(0.2)
            rss = _rss(process.pid)
            peak = max(peak, rss)
            if shared[2] != beat:
                beat, beat_at = shared[2], time.monotonic()
            if rss > RSS_LIMIT:
                killed = "memory"
            elif time.monotonic() - beat_at > FREEZE_SECONDS:
                killed = "frozen"
            if killed is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGUSR1)
                time.sleep(0.5)
                process.kill()
                process.join()
                break
        counts = self.counts.setdefault(family, Counts())
        counts.peak_rss = max(counts.peak_rss, peak)
        done_to = first + count
        for line in results.read_text().splitlines() if results.exists() else []:
            try:
                batch = json.loads(line)
            except json.JSONDecodeError:
                continue
            counts.add(batch["counts"])
            for failure in batch["failures"]:
                self._failure(failure)
        if killed is None and process.exitcode not in (0, None):
            killed = "crash"
        if killed is not None:
            seed, variant, phase = shared[0], shared[1], shared[3]
            done_to = seed + 1
            stacks = (
                Path(stack_file).read_text(errors="replace") if Path(stack_file).exists() else ""
            )
            module = _stack_module(stacks)
            case = make_case(family, seed)
            phase_name = ("loading", "executing", "canary")[phase] if 0 <= phase < 3 else "?"
            outcome = Outcome(
                status=killed,
                kind=killed,
                signature=f"{killed}|{family}|{phase_name}|{module}",
                module=module,
                detail=f"worker {killed} while {phase_name} "
                f"(exit code {process.exitcode}, RSS {peak / 2**20:.0f} MiB)",
            )
            repro = reproducer(case, variant if phase == 0 else -1)
            repro["stacks"] = stacks[-6000:]
            file = save_failure(self.out, outcome, repro)
            counter = "crashes" if killed == "crash" else killed
            setattr(counts, counter, getattr(counts, counter) + 1)
            if phase == 1:
                counts.executions += 1
                counts.statuses[killed.upper()] += 1
            self._failure(
                {
                    "kind": killed,
                    "signature": outcome.signature,
                    "module": module,
                    "detail": outcome.detail,
                    "family": family,
                    "seed": seed,
                    "variant": variant,
                    "file": file,
                }
            )
            if killed == "memory":
                self.stopped[family] = f"RSS passed {RSS_LIMIT / 2**30:.0f} GiB at seed {seed}"
        self.next_seed[family] = done_to

    def _failure(self, failure: dict[str, JSON]) -> None:
        known = self.failures.get(failure["signature"])
        if known is None:
            self.failures[failure["signature"]] = {**failure, "count": 1}
        else:
            known["count"] += 1
            if not known.get("file") and failure.get("file"):
                known["file"] = failure["file"]


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
    ratio = max(1, round(args.definitions / max(1, args.executions)))
    began = time.monotonic()
    wall_deadline = None if args.seconds is None else time.time() + args.seconds
    supervisor = Supervisor(out, ratio, args.seed, wall_deadline)
    deadline = None if args.seconds is None else began + args.seconds
    while True:
        executions = sum(c.executions for c in supervisor.counts.values())
        definitions = sum(
            c.definitions_loaded + c.definitions_invalid for c in supervisor.counts.values()
        )
        active = [f for f in families if f not in supervisor.stopped]
        enough = executions >= args.executions and definitions >= args.definitions
        if enough or not active or (deadline is not None and time.monotonic() > deadline):
            break
        for family in active:
            if deadline is not None and time.monotonic() > deadline:
                break
            supervisor.run_chunk(family, args.chunk)
            if not args.quiet:
                total = sum(c.executions for c in supervisor.counts.values())
                loaded = sum(c.definitions_loaded for c in supervisor.counts.values())
                print(
                    f"\r[{time.monotonic() - began:7.0f} s] {loaded:,} loaded, "
                    f"{total:,} executions, {len(supervisor.failures)} distinct failures",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
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
    parser.add_argument("--chunk", type=int, default=CHUNK, help="cases per worker process")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--replay", metavar="FILE", help="run one saved reproducer here")
    return parser


def _document(supervisor: Supervisor, args: argparse.Namespace, seconds: float) -> dict[str, JSON]:
    from benchmarks.suite import default_loop, machine_facts

    families: dict[str, JSON] = {}
    totals = Counts()
    for family, counts in supervisor.counts.items():
        lat = counts.canary_latencies
        families[family] = {
            **{k: v for k, v in counts.as_json().items() if k != "canary_latencies"},
            "failures": counts.failures,
            "canary_p50_ms": percentile(lat, 0.5) * 1000 if lat else None,
            "canary_p99_ms": percentile(lat, 0.99) * 1000 if lat else None,
            "stopped": supervisor.stopped.get(family),
        }
        totals.add({k: v for k, v in counts.as_json().items() if k != "seconds"})
    lat = totals.canary_latencies
    total = {
        **{k: v for k, v in totals.as_json().items() if k not in ("canary_latencies", "seconds")},
        "failures": totals.failures,
        "canary_p50_ms": percentile(lat, 0.5) * 1000 if lat else None,
        "canary_p99_ms": percentile(lat, 0.99) * 1000 if lat else None,
        "seconds": seconds,
    }
    definitions = totals.definitions_loaded + totals.definitions_invalid
    return {
        "machine": machine_facts(default_loop()),
        "params": {
            "definitions": args.definitions,
            "executions": args.executions,
            "seconds": args.seconds,
            "seed": args.seed,
            "chunk": args.chunk,
            "stall_seconds": STALL_SECONDS,
            "freeze_seconds": FREEZE_SECONDS,
            "rss_limit_bytes": RSS_LIMIT,
        },
        "totals": total,
        "families": families,
        "failures": sorted(supervisor.failures.values(), key=lambda f: (f["kind"], -f["count"])),
        "done_when": {
            "definitions >= 1,000,000": definitions >= 1_000_000,
            "executions >= 100,000": totals.executions >= 100_000,
            "0 internal errors": totals.internal_errors + totals.load_internal_errors == 0,
            "0 exceptions escaping": totals.escaped == 0,
            "0 hangs": totals.hangs + totals.frozen + totals.runaway == 0,
            "0 runtimes broken": totals.runtimes_broken == 0,
            "canary p99 < 100 ms": bool(lat) and percentile(lat, 0.99) < 0.1,
            "RSS < 2 GiB": totals.memory == 0 and totals.peak_rss < RSS_LIMIT,
        },
    }


def _print_table(document: dict[str, JSON], out: TextIO) -> None:
    header = (
        f"{'family':<17}{'defs':>9}{'invalid':>9}{'ld.err':>7}{'execs':>7}{'int.err':>8}"
        f"{'escap':>6}{'hang':>5}{'runaw':>6}{'frozen':>7}{'mem':>4}{'crash':>6}{'broken':>7}"
        f"{'can.p50':>8}{'can.p99':>8}{'rss MiB':>8}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    rows = [*document["families"].items(), ("TOTAL", document["totals"])]
    for name, c in rows:

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"

        print(
            f"{name:<17}{c['definitions_loaded'] + c['definitions_invalid']:>9,}"
            f"{c['definitions_invalid']:>9,}{c['load_internal_errors']:>7}{c['executions']:>7,}"
            f"{c['internal_errors']:>8}{c['escaped']:>6}{c['hangs']:>5}{c['runaway']:>6}"
            f"{c['frozen']:>7}{c['memory']:>4}{c['crashes']:>6}{c['runtimes_broken']:>7}"
            f"{ms(c['canary_p50_ms']):>8}{ms(c['canary_p99_ms']):>8}{c['peak_rss'] / 2**20:>8.0f}",
            file=out,
        )
    statuses = Counter(document["totals"]["statuses"])
    print("\nstatuses: " + ", ".join(f"{k} {v:,}" for k, v in statuses.most_common()), file=out)
    for family, c in document["families"].items():
        if c.get("stopped"):
            print(f"stopped: {family}: {c['stopped']}", file=out)
    print(f"\ndistinct failures: {len(document['failures'])}", file=out)
    for failure in document["failures"]:
        print(
            f"  {failure['count']:>6} x {failure['kind']:<20} {failure['family']:<16} "
            f"{failure['module'] or '-'}  {failure['detail'][:110]!r}  [{failure.get('file', '')}]",
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
        async with Runtime(
            "memory", handlers=HANDLERS, virtual_time=True, request_poll_interval=None
        ) as rt:
            return await run_case(rt, case)

    outcome = asyncio.run(go())
    print("execution:", outcome)
    return 0 if outcome.kind is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
