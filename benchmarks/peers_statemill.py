"""The Statemill side of ``benchmarks/peers.py``: one workload, in a fresh process.

``python -m benchmarks.peers_statemill --loop uvloop --store memory < spec.json`` reads the
same spec ``peers_node.mjs`` reads for aws-local-stepfunctions (definition, input, executions,
in_flight, warmup, transitions_per_execution, expect) and prints one line of JSON with the same
fields: ``in_flight`` client loops each start an execution and wait for its end, then start the
next, until ``executions`` have run, after ``warmup`` untimed executions run the same way.

Only the public ``runtime`` API is used: a ``Runtime`` on its defaults (the system clock: real
time, as the peer has no virtual clock) over a ``MemoryStore`` or a fresh SQLite file with
``synchronous=FULL``. ``min_duration_s`` is the shortest execution by the runtime's own record
(stop date minus start date), so a Wait of 1 s is seen to take at least 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import Any, Final, Literal

from benchmarks.common import JSON, now, open_store, peak_rss_bytes, sqlite_file
from runtime import Runtime

__all__ = ["main", "run_spec"]

StoreKind = Literal["memory", "sqlite"]
STORES: Final[tuple[StoreKind, ...]] = ("memory", "sqlite")


class _Tally:
    """What the timed executions did (the warm-up's are not counted)."""

    __slots__ = ("failures", "last_error", "min_duration", "wrong")

    def __init__(self) -> None:
        self.failures = 0
        self.wrong = 0
        self.min_duration = float("inf")
        self.last_error: str | None = None


async def run_spec(spec: dict[str, JSON], store_kind: StoreKind) -> dict[str, JSON]:
    """Run ``spec`` on a fresh runtime over ``store_kind``; the figures as a JSON object."""
    async with (
        sqlite_file("peers") as path,
        open_store(store_kind, path) as store,
        Runtime(store=store, tune_gc=True) as rt,
    ):
        machine = await rt.create_state_machine("peers", spec["definition"])
        base: dict[str, Any] = dict(spec["input"])
        items_expected = spec.get("expect") == "items"

        async def drive(count: int, in_flight: int, tally: _Tally | None) -> tuple[float, float]:
            next_index = 0
            started = 0
            last_start = 0.0

            async def client() -> None:
                nonlocal next_index, started, last_start
                while next_index < count:
                    index = next_index
                    next_index += 1
                    execution_input = {**base, "i": index}
                    output = await rt.start_execution(machine.arn, execution_input)
                    started += 1
                    if started == count:
                        last_start = now()
                    description = await rt.wait_for_execution(output.execution_arn)
                    if tally is None:
                        continue
                    if description.status != "SUCCEEDED":
                        tally.failures += 1
                        tally.last_error = f"{description.status}: {description.error}"
                        continue
                    if description.stop_date is not None:
                        duration = description.stop_date - description.start_date
                        tally.min_duration = min(tally.min_duration, duration)
                    expected = execution_input["items"] if items_expected else execution_input
                    if description.output_value != expected:
                        tally.wrong += 1

            began = now()
            await asyncio.gather(*(client() for _ in range(min(in_flight, count))))
            return now() - began, last_start - began

        executions = int(spec["executions"])
        in_flight = int(spec["in_flight"])
        if int(spec["warmup"]) > 0:
            await drive(int(spec["warmup"]), in_flight, None)
        tally = _Tally()
        seconds, started_seconds = await drive(executions, in_flight, tally)
    return {
        "side": "statemill",
        "store": store_kind,
        "seconds": seconds,
        "started_seconds": started_seconds,
        "executions": executions,
        "transitions": executions * int(spec["transitions_per_execution"]),
        "failures": tally.failures,
        "wrong_outputs": tally.wrong,
        "last_error": tally.last_error,
        "min_duration_s": None if tally.min_duration == float("inf") else tally.min_duration,
        "peak_rss_bytes": peak_rss_bytes(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Read the spec on stdin, run it, print the figures as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers_statemill")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--store", choices=STORES, default="memory")
    args = parser.parse_args(argv)
    spec = json.loads(sys.stdin.read())
    store_kind: StoreKind = args.store
    if args.loop == "uvloop":
        import uvloop  # optional: imported only when asked for

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(run_spec(spec, store_kind))
    else:
        with asyncio.Runner() as runner:
            result = runner.run(run_spec(spec, store_kind))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
