"""Operating a store file: one execution run to its end, a worker, and operators' requests.

``statemill run`` and ``statemill worker`` run a ``Runtime`` on the file (:func:`run_execution`,
:func:`serve`). ``statemill start|stop|redrive|send-task-success|send-task-failure`` do not run
executions themselves (the command line has no handlers): they record a request in the SQLite
file's ``requests`` table, and whichever ``Runtime`` runs on the file applies it (at once if one
is running, else as soon as one starts: ``statemill worker``). Each of those functions opens the
store, records or reads, and closes it; ``wait_for_request`` polls until a runtime has applied
the request.

Imports the public ``runtime`` API and the standard library (plus anyio and msgspec).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import anyio
import msgspec

from runtime import (
    ExecutionDescription,
    ExecutionDoesNotExist,
    HandlerRegistry,
    Runtime,
    SqliteStore,
    StateMachineDoesNotExist,
    StateMachineRecord,
    StatemillError,
    load_definition,
)

__all__ = [
    "describe",
    "list_executions",
    "put_state_machine",
    "request",
    "run_execution",
    "serve",
    "wait_for_request",
]

JSON = Any


def _describe(record: ExecutionDescription) -> dict[str, JSON]:
    return {
        "executionArn": record.execution_arn,
        "stateMachineArn": record.state_machine_arn,
        "name": record.name,
        "status": record.status,
        "startDate": record.start_date,
        "stopDate": record.stop_date,
        "input": record.input,
        "output": record.output,
        "error": record.error,
        "cause": record.cause,
        "redriveCount": record.redrive_count,
    }


async def run_execution(
    definition: str,
    execution_input: JSON,
    *,
    store: str,
    handlers: HandlerRegistry,
    machine_type: str = "STANDARD",
    history: bool = False,
    virtual_time: bool = False,
) -> dict[str, JSON]:
    """Create the state machine, run one execution to its end; returns what ``statemill run``
    prints: ``executionArn``, ``status``, ``output``, ``error``, ``cause`` (and ``history``).

    Raises:
        StatemillError: e.g. ``InvalidDefinition``, ``InvalidExecutionInput``.
    """
    failure: StatemillError
    async with Runtime(
        store=store,
        handlers=handlers,
        virtual_time=virtual_time,
        # A history of an EXPRESS run: keep its log (EXPRESS logs are in memory by default).
        express_history="durable" if history else "memory",
    ) as runtime:
        # Caught inside the block: leaving it with an exception would wrap it in the runtime's
        # task group's ExceptionGroup.
        try:
            done = await runtime.run(definition, execution_input, type=machine_type)
            result: dict[str, JSON] = {
                "executionArn": done.execution_arn,
                "status": done.status,
                "output": done.output_value,
                "error": done.error,
                "cause": done.cause,
            }
            if history:
                events = await runtime.get_execution_history(done.execution_arn)
                result["history"] = [event.to_aws() for event in events]
            return result
        except StatemillError as exc:
            failure = exc
    raise failure


async def serve(
    path: str, handlers: HandlerRegistry, *, poll: float, exit_when_idle: bool = False
) -> dict[str, JSON]:
    """Run a runtime on the file: resume its executions, apply requests every ``poll`` seconds;
    with ``exit_when_idle``, return ``{"status": "idle"}`` once no execution runs and no request
    is pending (else run until cancelled)."""
    async with Runtime(path, handlers=handlers, request_poll_interval=poll) as runtime:
        while True:
            await anyio.sleep(poll)
            if not exit_when_idle:
                continue
            await runtime.apply_requests()
            running = await runtime.list_executions(status_filter="RUNNING", max_results=1)
            if not running and await runtime.apply_requests() == 0:
                return {"status": "idle"}


async def put_state_machine(
    path: str, name: str, definition: str, machine_type: str = "STANDARD"
) -> str:
    """Store (create or update) a state machine in the file; returns its ARN.

    Raises:
        InvalidDefinition: the definition is not valid ASL.
    """
    load_definition(definition, machine_type=machine_type)
    arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
    async with SqliteStore.open(path) as store:
        existing = await store.get_state_machine(arn)
        if existing is not None and existing.definition == definition:
            return arn
        await store.put_state_machine(
            StateMachineRecord(
                arn=arn,
                name=name,
                definition=definition,
                type=machine_type,
                creation_date=time.time(),
                revision_id=hashlib.sha256(definition.encode()).hexdigest()[:32],
            )
        )
    return arn


async def request(
    path: str, kind: str, body: dict[str, JSON], *, wait: float = 0.0
) -> dict[str, JSON]:
    """Record a request for a runtime to apply; returns ``{"requestId", "status", ...}``: with
    ``wait`` > 0, as :func:`wait_for_request` finds it within ``wait`` seconds.

    A ``start`` request gets its execution's name now (a UUID unless given), so its ARN is
    known before any runtime applies it (except for an EXPRESS machine, whose execution ARNs end
    with an id drawn at the start: the request's result carries it).

    Raises:
        StateMachineDoesNotExist: a ``start`` names a state machine the file does not hold.
        ExecutionDoesNotExist: a ``stop`` names an execution the file does not hold.
    """
    out: dict[str, JSON] = {}
    async with SqliteStore.open(path) as store:
        if kind == "start":
            machine = await store.get_state_machine(body["stateMachineArn"])
            if machine is None:
                raise StateMachineDoesNotExist(
                    f"State Machine Does Not Exist: '{body['stateMachineArn']}'"
                )
            body = {**body, "name": body.get("name") or str(uuid.uuid4())}
            if machine.type != "EXPRESS":
                # An EXPRESS execution's ARN ends with an id drawn when it starts: the request's
                # result (``--wait``) carries it.
                prefix = machine.arn.rsplit(":stateMachine:", 1)[0]
                out["executionArn"] = f"{prefix}:execution:{machine.name}:{body['name']}"
        elif (
            kind in ("stop", "redrive") and await store.get_execution(body["executionArn"]) is None
        ):
            raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{body['executionArn']}'")
        text = msgspec.json.encode(body).decode()
        out["requestId"] = await store.add_request(kind, text, time.time())
    out["status"] = "PENDING"
    if wait > 0:
        out.update(await wait_for_request(path, out["requestId"], wait))
    return out


async def wait_for_request(path: str, request_id: int, timeout: float) -> dict[str, JSON]:
    """Poll until a runtime applied request ``request_id`` (or ``timeout`` seconds passed)."""
    deadline = time.monotonic() + timeout
    async with SqliteStore.open(path) as store:
        while True:
            found = await store.get_request(request_id)
            if found is None:
                return {"requestId": request_id, "status": "UNKNOWN"}
            _, status, result = found
            if status != "PENDING" or time.monotonic() >= deadline:
                out: dict[str, JSON] = {"requestId": request_id, "status": status}
                if result is not None:
                    out["result"] = msgspec.json.decode(result)
                return out
            await anyio.sleep(0.1)


async def describe(path: str, execution_arn: str) -> dict[str, JSON]:
    """DescribeExecution, read from the file."""
    async with SqliteStore.open(path) as store:
        record = await store.get_execution(execution_arn)
    if record is None:
        raise ExecutionDoesNotExist(f"Execution Does Not Exist: '{execution_arn}'")
    return _describe(ExecutionDescription.of(record))


async def list_executions(
    path: str, state_machine_arn: str | None, status: str | None, limit: int
) -> list[dict[str, JSON]]:
    """ListExecutions, read from the file (newest first)."""
    async with SqliteStore.open(path) as store:
        records = await store.list_executions(state_machine_arn, status=status, limit=limit)
    return [_describe(ExecutionDescription.of(record)) for record in records]
