"""One member process of the chaos run (``benchmarks/chaos.py``): a ``Runtime`` on the shared
PostgreSQL store, with the run's handlers, an activity worker and a task-token answerer.

    python -m benchmarks.chaos_member DSN SCHEMA WORKDIR LEASE_TTL

Handlers record each call they complete (its idempotency key) in ``WORKDIR/calls-PID.log``,
so the driver can tell calls run twice (at-least-once after a takeover) from results recorded
twice (never allowed). ``Approve`` (a ``.waitForTaskToken`` Task) leaves its token in
``WORKDIR/tokens``; every member takes tokens from there (a rename claims one) and answers them
through its own ``Runtime``: most belong to executions another member owns, so the answer
travels as a request to the owner. Each member also polls the ``Review`` activity. It prints
``ready`` once it holds its first share and runs until SIGTERM (a clean hand-over) or SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio

from runtime import Runtime, TaskContext
from runtime.errors import StatemillError, TaskDoesNotExist, TaskTimedOut
from runtime.store.postgres import PostgresStore

ACTIVITY = "Review"


class Flake(Exception):
    """Raised by the ``Flaky`` handler on an attempt's first try (Retry applies)."""


class Boom(Exception):
    """Always raised by the ``Boom`` handler (Catch applies)."""


class Member:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.tokens = workdir / "tokens"
        self.calls = (workdir / f"calls-{os.getpid()}.log").open("a", buffering=1)

    def completed(self, context: TaskContext) -> None:
        self.calls.write(context.idempotency_key + "\n")

    async def work(self, payload: Any, context: TaskContext) -> Any:
        await asyncio.sleep(0.01)
        self.completed(context)
        return {"n": payload["n"] * 2}

    async def flaky(self, payload: Any, context: TaskContext) -> Any:
        if context.attempt == 0:
            raise Flake("first try fails")
        self.completed(context)
        return {"ok": payload["n"]}

    async def boom(self, payload: Any, context: TaskContext) -> Any:
        raise Boom("always")

    async def approve(self, payload: Any, context: TaskContext) -> Any:
        token = payload["token"]
        name = f"{abs(hash(token)) % 10**12}-{os.getpid()}.json"
        partial = self.tokens / (name + ".part")
        partial.write_text(json.dumps({"token": token, "n": payload["n"]}))
        partial.rename(self.tokens / name)
        return None

    async def answer_tokens(self, runtime: Runtime) -> None:
        """Answer tokens left by any member (claimed by rename, so once per file); a claim
        whose process died goes back for another member."""
        while True:
            await anyio.sleep(0.1)
            for path in sorted(self.tokens.glob("*.json")):
                claimed = path.with_suffix(f".claimed-{os.getpid()}")
                try:
                    path.rename(claimed)
                except FileNotFoundError:
                    continue
                body = json.loads(claimed.read_text())
                try:
                    await runtime.send_task_success(body["token"], {"approved": body["n"]})
                except (TaskDoesNotExist, TaskTimedOut):
                    pass  # answered already (a claim re-done after a crash)
                except (StatemillError, TimeoutError):
                    claimed.rename(path)  # try again later
                    continue
                claimed.unlink()
            for claimed in self.tokens.glob("*.claimed-*"):
                pid = int(claimed.suffix.rsplit("-", 1)[1])
                if not _alive(pid):
                    with contextlib.suppress(FileNotFoundError):
                        claimed.rename(claimed.with_suffix(".json"))

    async def review(self, runtime: Runtime, activity_arn: str) -> None:
        """An activity worker: each task is handed to one worker of all the processes."""
        while True:
            try:
                task = await runtime.get_activity_task(activity_arn, f"w{os.getpid()}", timeout=1)
            except StatemillError:
                await anyio.sleep(0.5)
                continue
            if task is None:
                continue
            value = json.loads(task.input)
            with contextlib.suppress(StatemillError, TimeoutError):
                await runtime.send_task_success(task.task_token, {"reviewed": value["n"]})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def main(dsn: str, schema: str, workdir: Path, lease_ttl: float) -> None:
    member = Member(workdir)
    handlers = {
        "Work": member.work,
        "Flaky": member.flaky,
        "Boom": member.boom,
        "Approve": member.approve,
    }
    stop = anyio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with (
        PostgresStore.open(dsn, schema=schema) as store,
        Runtime(
            store, handlers=handlers, lease_ttl=lease_ttl, request_poll_interval=0.2
        ) as runtime,
    ):
        activity = await runtime.create_activity(ACTIVITY)
        print("ready", flush=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(member.answer_tokens, runtime)
            tg.start_soon(member.review, runtime, activity.activity_arn)
            await stop.wait()
            tg.cancel_scope.cancel()


if __name__ == "__main__":
    import structlog
    import uvloop

    # Log lines go to the member's log file: stdout carries only "ready".
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

    uvloop.install()
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])))
