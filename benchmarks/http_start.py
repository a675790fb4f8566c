"""``http_start``: StartExecution over HTTP beside the in-process API (issue 13's Done-when).

One STANDARD state machine of a single Pass state; ``calls`` StartExecution calls, ``concurrency``
(100) in flight at once, each client loop starting the next as soon as its call is answered.
Per store (memory, then SQLite with ``synchronous=FULL``) four ways are measured in the same
run, each on a fresh ``Runtime`` and store (``raw`` shares ``sub``'s server):

- ``api``: ``Runtime.start_execution`` from ``concurrency`` tasks in this process: the baseline;
- ``http``: the API app (``runtime.http.app.create_app``) served by uvicorn on a free loopback
  port in this process and event loop, driven by an ``httpx.AsyncClient`` in the same loop. The
  client's CPU is the server's loss here;
- ``sub``: ``statemill serve`` (``python -m runtime serve``, uvloop) as a child process, driven by
  the same client from this process. This is what a deployment looks like (the client is
  elsewhere), though on a 2-core machine the two processes still share the cores;
- ``raw`` (``raw=1``): the same child server and the same request bytes, written on plain
  asyncio sockets with no client library. httpx spends more CPU per call than the server
  (about 1.7 ms against 0.4-0.8 ms here), so ``http`` and ``sub`` are bound by the client;
  ``raw`` shows what the server itself sustains.

Each request is what botocore sends: ``POST /`` with ``X-Amz-Target:
AWSStepFunctions.StartExecution``, ``Content-Type: application/x-amz-json-1.0``, botocore's other
headers (a fixed ``Authorization`` the server does not verify) and the input as a JSON string.
Latency is per call, client side, from the request sent to the response read. Each loop has its
own connection, kept alive (as botocore's pool keeps them); ``warmup`` calls before the
measurement open them. A short boto3 run (``boto3_calls``, as many threads as ``concurrency``,
one shared client) against the memory child server checks that the figures are what a boto3
user sees (boto3 is a test dependency: without it the run says so).

CPU per call is read from ``getrusage`` (this process) and ``/proc/<pid>/stat`` (the child
server), so a reader can tell a client-bound figure from a server-bound one.

Checks: no call failed, and every started execution exists and ended SUCCEEDED (counted by
``ListExecutions`` over the same API, or ``Runtime.list_executions`` for ``api``).

Where an HTTP start's time goes: run ``py-spy record -f raw -o serve.txt -- python -m runtime
serve --store memory --port 18999`` and drive it with :func:`drive_http`.

Imports the standard library, httpx, uvicorn, the public ``runtime`` API and
``runtime.http.app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, Literal

import httpx
import uvicorn

from benchmarks.common import (
    Comparison,
    Measured,
    Metric,
    Params,
    Progress,
    Scenario,
    as_int,
    now,
    open_store,
    percentile,
    sqlite_file,
)
from runtime import Runtime
from runtime.http.app import create_app

JSON = Any
Kind = Literal["memory", "sqlite"]

ROOT: Final = Path(__file__).resolve().parent.parent
DEFINITION: Final = json.dumps(
    {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
)
ROLE_ARN: Final = "arn:aws:iam::123456789012:role/statemill-bench"
#: What botocore sends besides the body (values as botocore 1.3x writes them; the signature is
#: a fixed string of the real length: the server does not verify SigV4 yet).
BOTOCORE_HEADERS: Final = {
    "X-Amz-Target": "AWSStepFunctions.StartExecution",
    "Content-Type": "application/x-amz-json-1.0",
    "User-Agent": "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux lang/python#3.11 "
    "cfg/retry-mode#legacy Botocore/1.34.0",
    "X-Amz-Date": "20250101T000000Z",
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/states/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64,
    "amz-sdk-invocation-id": "00000000-0000-4000-8000-000000000000",
    "amz-sdk-request": "attempt=1; max=5",
}
#: How long the executions may take to end after the last start, and a server to start.
SETTLE_S: Final = 120.0
SERVER_START_S: Final = 60.0
#: ListExecutions page size while counting (AWS's maximum).
PAGE: Final = 1000


@dataclass(kw_only=True)
class Driven:
    """What one measured stretch of calls gave: wall time, per-call latencies, ARNs, errors."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    arns: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def drive(
    call: Callable[[int, int], Awaitable[str]],
    first: int,
    count: int,
    concurrency: int,
    progress: Progress | None = None,
) -> Driven:
    """``count`` calls ``call(i, loop)`` (``i`` from ``first``), ``concurrency`` loops at once
    (``loop``: which one makes the call)."""
    driven = Driven()
    next_index = first
    end = first + count

    async def loop(number: int) -> None:
        nonlocal next_index
        while next_index < end:
            index = next_index
            next_index += 1
            began = time.perf_counter()
            try:
                arn = await call(index, number)
            except Exception as exc:  # counted and reported: one failure must not hide the rest
                driven.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            driven.latencies.append(time.perf_counter() - began)
            driven.arns.append(arn)
            if progress is not None:
                progress.advance()

    began = now()
    await asyncio.gather(*(loop(number) for number in range(min(concurrency, count))))
    driven.seconds = now() - began
    return driven


def record(measured: Measured, prefix: str, driven: Driven, cpu_s: float) -> None:
    """The figures of one measured stretch under ``prefix`` (e.g. ``memory_http``)."""
    calls = len(driven.latencies)
    measured.values[f"{prefix}_calls_per_s"] = calls / driven.seconds if driven.seconds else 0.0
    measured.values[f"{prefix}_p50_ms"] = percentile(driven.latencies, 0.50) * 1000
    measured.values[f"{prefix}_p99_ms"] = percentile(driven.latencies, 0.99) * 1000
    measured.values[f"{prefix}_cpu_us_per_call"] = cpu_s / calls * 1e6 if calls else 0.0
    measured.checks[f"{prefix}_no_call_failed"] = not driven.errors
    if driven.errors:
        measured.notes.append(
            f"{prefix}: {len(driven.errors)} calls failed, e.g. {driven.errors[0]}"
        )


def own_cpu_s() -> float:
    """This process's CPU time so far (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_cpu_s(pid: int) -> float:
    """A running child's CPU time so far (0 where unknown).

    The sum of its threads' ``/proc/<pid>/task/<tid>/schedstat`` first fields, nanoseconds on
    a CPU (proc(5)); ``/proc/<pid>/stat`` counts clock ticks of 10 ms, coarser than a quick
    run's whole server time."""
    try:
        tasks = [task.path for task in os.scandir(f"/proc/{pid}/task")]
    except OSError:
        return 0.0
    total_ns = 0
    for task in tasks:
        try:
            with open(f"{task}/schedstat", encoding="ascii") as schedstat:
                total_ns += int(schedstat.read().split()[0])
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total_ns / 1e9


# -- the in-process API ---------------------------------------------------------------------------


async def run_api(
    kind: Kind, path: str, params: Params, progress: Progress, measured: Measured
) -> None:
    """``Runtime.start_execution`` from ``concurrency`` tasks: the baseline."""
    calls, warmup, concurrency = _sizes(params)
    async with open_store(kind, path) as store, Runtime(store) as rt:
        machine = await rt.create_state_machine("http-start", json.loads(DEFINITION))

        async def call(index: int, loop: int) -> str:
            started = await rt.start_execution(machine.arn, {"i": index})
            return started.execution_arn

        await drive(call, 0, warmup, concurrency)
        progress.start(f"{kind}/api", calls)
        cpu = own_cpu_s()
        driven = await drive(call, warmup, calls, concurrency, progress)
        record(measured, f"{kind}_api", driven, own_cpu_s() - cpu)
        progress.finish()
        for arn in driven.arns:
            await rt.wait_for_execution(arn, timeout=SETTLE_S)
        succeeded: set[str] = set()
        after: tuple[float, str] | None = None
        while True:
            page = await rt.list_executions(
                machine.arn, status_filter="SUCCEEDED", after=after, max_results=PAGE
            )
            succeeded.update(item.execution_arn for item in page)
            if len(page) < PAGE:
                break
            after = (page[-1].start_date, page[-1].execution_arn)
    _check_all_succeeded(measured, f"{kind}_api", driven, succeeded, warmup)


# -- over HTTP ------------------------------------------------------------------------------------


def client_for(url: str, concurrency: int) -> httpx.AsyncClient:
    """An async client with up to ``concurrency`` kept-alive connections."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # One TLS context for every client: each of its own costs ~40 ms (the CA bundle) and
    # plain-HTTP loopback never uses it.
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0, verify=_tls_context())


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


async def api_call(client: httpx.AsyncClient, action: str, body: JSON) -> JSON:
    """One call of the Step Functions API; its decoded answer (an error raises)."""
    headers = {**BOTOCORE_HEADERS, "X-Amz-Target": f"AWSStepFunctions.{action}"}
    response = await client.post("/", content=json.dumps(body).encode(), headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"{action}: HTTP {response.status_code} {response.text[:200]}")
    return response.json()


Post = Callable[[int, bytes], Awaitable[tuple[int, bytes]]]


async def httpx_posts(stack: contextlib.AsyncExitStack, url: str, concurrency: int) -> Post:
    """StartExecution through httpx: one ``AsyncClient`` (and connection) per loop.

    httpcore's pool scans every connection for each request, so one pool of 100 connections
    spent more CPU than the server (cProfile: 3 M ``is_idle`` calls for 2,000 requests).
    """
    clients = [await stack.enter_async_context(client_for(url, 1)) for _ in range(concurrency)]
    posts = [client.post for client in clients]
    headers = BOTOCORE_HEADERS

    async def post(loop: int, body: bytes) -> tuple[int, bytes]:
        response = await posts[loop]("/", content=body, headers=headers)
        return response.status_code, response.content

    return post


async def raw_posts(stack: contextlib.AsyncExitStack, url: str, concurrency: int) -> Post:
    """StartExecution as the same bytes on one kept-alive socket per loop, with no client
    library: what the server alone can do (httpx costs more CPU per call than the server)."""
    host, port = url.removeprefix("http://").split(":")
    connections = []
    for _ in range(concurrency):
        reader, writer = await asyncio.open_connection(host, int(port))
        stack.callback(writer.close)
        connections.append((reader, writer))
    lines = [b"POST / HTTP/1.1", f"Host: {host}:{port}".encode(), b"Accept: */*"]
    lines += [f"{name}: {value}".encode() for name, value in BOTOCORE_HEADERS.items()]
    head = b"\r\n".join(lines) + b"\r\nContent-Length: "

    async def post(loop: int, body: bytes) -> tuple[int, bytes]:
        reader, writer = connections[loop]
        writer.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        answer = await reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        length = 0
        for line in answer.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await reader.readexactly(length)

    return post


async def drive_http(
    url: str,
    label: str,
    params: Params,
    progress: Progress,
    measured: Measured,
    cpu: Callable[[], float],
    client_cpu: Callable[[], float] | None = None,
    *,
    raw: bool = False,
) -> None:
    """Create the machine, warm up, measure ``calls`` starts and check them, all over HTTP.

    ``cpu`` reads the server's CPU time; ``client_cpu``, when the client is another process,
    the client's (recorded as ``<label>_client_cpu_us_per_call``). ``raw``: the calls go
    through :func:`raw_posts` instead of httpx.
    """
    calls, warmup, concurrency = _sizes(params)
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(client_for(url, 1))
        created = await api_call(
            client,
            "CreateStateMachine",
            {"name": f"http-start-{label}", "definition": DEFINITION, "roleArn": ROLE_ARN},
        )
        machine = created["stateMachineArn"]
        post = await (raw_posts if raw else httpx_posts)(stack, url, concurrency)

        async def call(index: int, loop: int) -> str:
            body = json.dumps({"stateMachineArn": machine, "input": json.dumps({"i": index})})
            status, answer = await post(loop, body.encode())
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")
            arn: str = json.loads(answer)["executionArn"]
            return arn

        await drive(call, 0, warmup, concurrency)
        progress.start(label, calls)
        spent, spent_client = cpu(), client_cpu() if client_cpu is not None else 0.0
        driven = await drive(call, warmup, calls, concurrency, progress)
        record(measured, label, driven, cpu() - spent)
        if client_cpu is not None and driven.arns:
            client_s = client_cpu() - spent_client
            measured.values[f"{label}_client_cpu_us_per_call"] = client_s / len(driven.arns) * 1e6
        progress.finish()
        succeeded = await succeeded_over_http(client, machine, calls + warmup)
    _check_all_succeeded(measured, label, driven, succeeded, warmup)


async def succeeded_over_http(client: httpx.AsyncClient, machine: str, expected: int) -> set[str]:
    """The SUCCEEDED executions of ``machine`` (ListExecutions), once ``expected`` have ended
    or ``SETTLE_S`` has passed."""
    deadline = now() + SETTLE_S
    while True:
        succeeded: set[str] = set()
        token: str | None = None
        while True:
            body: dict[str, JSON] = {
                "stateMachineArn": machine,
                "statusFilter": "SUCCEEDED",
                "maxResults": PAGE,
            }
            if token is not None:
                body["nextToken"] = token
            page = await api_call(client, "ListExecutions", body)
            succeeded.update(item["executionArn"] for item in page["executions"])
            token = page.get("nextToken")
            if token is None:
                break
        if len(succeeded) >= expected or now() > deadline:
            return succeeded
        await asyncio.sleep(0.2)


def _check_all_succeeded(
    measured: Measured, label: str, driven: Driven, succeeded: set[str], warmup: int
) -> None:
    measured.checks[f"{label}_every_execution_succeeded"] = set(driven.arns) <= succeeded
    measured.info[f"{label}_succeeded"] = len(succeeded)
    measured.info[f"{label}_started"] = len(driven.arns) + warmup


async def run_http_here(
    kind: Kind, path: str, params: Params, progress: Progress, measured: Measured
) -> None:
    """uvicorn serving ``create_app`` in this event loop, as ``statemill serve`` configures it."""
    async with open_store(kind, path) as store, Runtime(store) as rt, served(rt) as url:
        await drive_http(url, f"{kind}_http", params, progress, measured, own_cpu_s)


@contextlib.asynccontextmanager
async def served(rt: Runtime) -> AsyncIterator[str]:
    """Serve ``rt``'s API on a free loopback port in this loop; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(rt), log_config=None, access_log=False, lifespan="off", timeout_keep_alive=60
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = now() + SERVER_START_S
        while not server.started:
            if task.done() or now() > deadline:
                await task  # its exception, if it has one
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def run_http_child(
    kind: Kind, path: str, params: Params, progress: Progress, measured: Measured
) -> None:
    """``statemill serve`` in a child process, driven from this one."""
    store = "memory" if kind == "memory" else path
    async with serve_child(store) as (url, pid):
        server_cpu = functools.partial(child_cpu_s, pid)
        await drive_http(url, f"{kind}_sub", params, progress, measured, server_cpu, own_cpu_s)
        if as_int(params, "raw"):
            await drive_http(
                url, f"{kind}_raw", params, progress, measured, server_cpu, own_cpu_s, raw=True
            )
        if kind == "memory" and as_int(params, "boto3_calls") > 0:
            await run_boto3(url, params, progress, measured)


@contextlib.asynccontextmanager
async def serve_child(store: str) -> AsyncIterator[tuple[str, int]]:
    """``python -m runtime serve --store STORE`` on a free port; yields its URL and pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "runtime", "serve", "--store", store, "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        # stderr to a file, not a pipe: a pipe nobody reads would block the server once full.
        process = await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            await _wait_until_up(url, process, log)
            yield url, process.pid
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def _wait_until_up(url: str, process: asyncio.subprocess.Process, log: IO[str]) -> None:
    deadline = now() + SERVER_START_S
    async with client_for(url, 1) as client:
        while True:
            if process.returncode is not None:
                log.seek(0)
                raise RuntimeError(f"statemill serve exited {process.returncode}: {log.read()}")
            try:
                await api_call(client, "ListActivities", {})
                return
            except httpx.TransportError:
                if now() > deadline:
                    raise RuntimeError("statemill serve did not start") from None
                await asyncio.sleep(0.05)


async def run_boto3(url: str, params: Params, progress: Progress, measured: Measured) -> None:
    """A short run with boto3 itself (threads, one shared client), against the child server."""
    try:
        import boto3  # type: ignore[import-untyped]  # a test dependency, without stubs
        from botocore.config import Config  # type: ignore[import-untyped]
    except ImportError:
        measured.notes.append("boto3 is not installed: the boto3 sanity run was skipped")
        return
    count, threads = as_int(params, "boto3_calls"), as_int(params, "concurrency")
    client = boto3.client(
        "stepfunctions",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=threads, retries={"max_attempts": 1}),
    )
    machine = client.create_state_machine(
        name="http-start-boto3", definition=DEFINITION, roleArn=ROLE_ARN
    )["stateMachineArn"]

    def one(index: int) -> tuple[float, str]:
        began = time.perf_counter()
        arn = client.start_execution(stateMachineArn=machine, input=json.dumps({"i": index}))
        return time.perf_counter() - began, str(arn["executionArn"])

    def measure() -> Driven:
        driven = Driven()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, range(min(threads, count))))  # warm up the pool's connections
            began = now()
            for latency, arn in pool.map(one, range(threads, threads + count)):
                driven.latencies.append(latency)
                driven.arns.append(arn)
            driven.seconds = now() - began
        return driven

    progress.start("memory/boto3", count)
    cpu = own_cpu_s()
    try:
        driven = await asyncio.to_thread(measure)
    finally:
        client.close()  # its kept-alive connections would hold the server's graceful shutdown
    record(measured, "memory_boto3", driven, own_cpu_s() - cpu)
    progress.finish()
    async with client_for(url, 1) as http:
        succeeded = await succeeded_over_http(http, machine, count + min(threads, count))
    _check_all_succeeded(measured, "memory_boto3", driven, succeeded, min(threads, count))


# -- the scenario ---------------------------------------------------------------------------------


def _sizes(params: Params) -> tuple[int, int, int]:
    return as_int(params, "calls"), as_int(params, "warmup"), as_int(params, "concurrency")


def _uvicorn_http() -> str:
    """The HTTP parser uvicorn's ``http="auto"`` picks here (httptools when installed)."""
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


STORES: Final[tuple[Kind, ...]] = ("memory", "sqlite")


async def run(params: Params, progress: Progress) -> Measured:
    """Each way (api, http, sub) on each store, in that order, each on a fresh runtime."""
    measured = Measured()
    measured.info.update(
        calls=as_int(params, "calls"),
        concurrency=as_int(params, "concurrency"),
        uvicorn_http=_uvicorn_http(),
    )
    ways = [run_api, run_http_here]
    if as_int(params, "sub"):
        ways.append(run_http_child)
    for kind in STORES:
        for way in ways:
            async with sqlite_file("http_start") as path:
                await way(kind, path, params, progress, measured)
    return measured


def _metrics() -> tuple[Metric, ...]:
    names = {
        "api": "in-process API",
        "http": "HTTP, server in this loop",
        "sub": "HTTP, statemill serve child",
        "raw": "HTTP, serve child, raw client",
    }
    metrics: list[Metric] = []
    for kind in STORES:
        for way, name in names.items():
            prefix = f"{kind}_{way}"
            metrics += [
                Metric(key=f"{prefix}_calls_per_s", label=f"{kind}: {name}: starts/s", unit="/s"),
                Metric(key=f"{prefix}_p50_ms", label=f"{kind}: {name}: p50", unit=" ms"),
                Metric(key=f"{prefix}_p99_ms", label=f"{kind}: {name}: p99", unit=" ms"),
                Metric(
                    key=f"{prefix}_cpu_us_per_call",
                    label=f"{kind}: {name}: CPU/call"
                    + (" (server)" if way in ("sub", "raw") else " (whole process)"),
                    unit=" us",
                ),
            ]
            if way in ("sub", "raw"):
                metrics.append(
                    Metric(
                        key=f"{prefix}_client_cpu_us_per_call",
                        label=f"{kind}: {name}: CPU/call (client)",
                        unit=" us",
                    )
                )
    metrics += [
        Metric(key="memory_boto3_calls_per_s", label="memory: boto3 threads: starts/s", unit="/s"),
        Metric(key="memory_boto3_p50_ms", label="memory: boto3 threads: p50", unit=" ms"),
        Metric(key="memory_boto3_p99_ms", label="memory: boto3 threads: p99", unit=" ms"),
    ]
    return tuple(metrics)


def _comparisons() -> tuple[Comparison, ...]:
    comparisons: list[Comparison] = []
    for kind in STORES:
        for way, name in (("http", "HTTP here"), ("sub", "HTTP child"), ("raw", "raw child")):
            comparisons.append(
                Comparison(
                    label=f"{kind}: {name} / in-process (starts/s)",
                    value=f"{kind}_{way}_calls_per_s",
                    baseline=f"{kind}_api_calls_per_s",
                )
            )
    comparisons.append(
        Comparison(
            label="memory: boto3 / httpx, child server (starts/s)",
            value="memory_boto3_calls_per_s",
            baseline="memory_sub_calls_per_s",
        )
    )
    return tuple(comparisons)


SCENARIO = Scenario(
    name="http_start",
    description="StartExecution over HTTP (httpx, 100 in flight; uvicorn in this loop and "
    "statemill serve as a child) beside the in-process API; memory and SQLite",
    quick={
        "calls": 3_000,
        "warmup": 200,
        "concurrency": 100,
        "sub": 1,
        "raw": 1,
        "boto3_calls": 500,
    },
    full={
        "calls": 10_000,
        "warmup": 500,
        "concurrency": 100,
        "sub": 1,
        "raw": 1,
        "boto3_calls": 2_000,
    },
    metrics=_metrics(),
    comparisons=_comparisons(),
    run=run,
)
