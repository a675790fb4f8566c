"""Operating a store without running it: what the command line reads and records.

``statemill describe|list|requests|machines ...`` read a store, and ``statemill
start|stop|redrive|send-task-success|send-task-failure`` record a request in the store's
``requests`` table (SQLite or PostgreSQL) that whichever ``Runtime`` runs on the store applies
(at once if one is running, else as soon as one starts: ``statemill worker``). Each function
opens the store (:func:`runtime.tools.stores.open_store`: a SQLite path or a PostgreSQL URL,
the same ``spec`` as ``--store``), records or reads, and closes it; ``wait_for_request`` polls
until a runtime has applied the request. Only :func:`put_state_machine` creates a SQLite file
that does not exist. Running executions is :mod:`runtime.tools.operations`.

A module apart from that one so that these commands import no runtime, engine or definition
loader (issue 16: ``statemill describe`` starts in well under 0.2 s): it imports the stores,
their records, ``runtime.errors``, msgspec and the standard library, and the definition loader
only to validate a definition it stores. The reads (``describe``, ``list_*``,
``describe_state_machine``) are plain functions on :func:`runtime.tools.stores.open_reads`: a
SQLite file is read with no event loop at all.
"""

from __future__ import annotations

import datetime as _dt
import sys
import time
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from runtime.errors import ExecutionDoesNotExist, StateMachineDoesNotExist
from runtime.store.base import (
    EventStore,
    ExecutionRecord,
    StateMachineRecord,
    StateMachineRevisions,
)
from runtime.store.partitions import partition_of
from runtime.store.requests import RequestLog
from runtime.tools.stores import StoreReads, StoreUnavailable, open_reads, open_store

__all__ = [
    "delete_state_machine",
    "describe",
    "describe_state_machine",
    "duration",
    "executions_table",
    "iso_time",
    "list_executions",
    "list_requests",
    "list_state_machines",
    "machines_table",
    "put_state_machine",
    "request",
    "requests_table",
    "update_state_machine",
    "wait_for_request",
]

JSON = Any


def _describe(record: ExecutionRecord) -> dict[str, JSON]:
    """DescribeExecution's fields of a stored execution."""
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


async def put_state_machine(
    path: str, name: str, definition: str, machine_type: str = "STANDARD"
) -> str:
    """Store (create or update) a state machine in the file; returns its ARN.

    Raises:
        InvalidDefinition: the definition is not valid ASL.
    """
    import hashlib

    from runtime.definition.load import load_definition  # only to store: reads need none

    load_definition(definition, machine_type=machine_type)
    arn = f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
    async with open_store(path, create=True) as store:
        existing = await store.get_state_machine(arn)
        if (
            existing is not None
            and existing.definition == definition
            and existing.type == machine_type
        ):
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
    import uuid

    out: dict[str, JSON] = {}
    async with open_store(path, create=False) as store:
        requests = _request_log(store, path)
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
        out["requestId"] = await _record(requests, kind, text, out.get("executionArn"), body)
    out["status"] = "PENDING"
    if wait > 0:
        out.update(await wait_for_request(path, out["requestId"], wait))
    return out


async def _record(
    requests: RequestLog, kind: str, text: str, started: JSON, body: dict[str, JSON]
) -> int:
    """Record a request; on PostgreSQL, for the owner of its execution's partition (a start
    of an EXPRESS machine, whose ARN is drawn when it starts, for the owner of partition 0)."""
    postgres = sys.modules.get("runtime.store.postgres")
    if postgres is None or not isinstance(requests, postgres.PostgresStore):
        return await requests.add_request(kind, text, time.time())
    if isinstance(started, str):
        arn: str | None = started
    else:  # an EXPRESS start has no ARN yet
        from runtime.api_requests import request_subject  # PostgreSQL only: asyncpg is heavier

        arn = None if kind == "start" else request_subject(kind, body)
    partition = 0 if arn is None else partition_of(arn)
    return int(await requests.add_request(kind, text, time.time(), partition))


async def wait_for_request(path: str, request_id: int, timeout: float) -> dict[str, JSON]:
    """Poll until a runtime applied request ``request_id`` (or ``timeout`` seconds passed)."""
    import anyio

    deadline = time.monotonic() + timeout
    async with open_store(path, create=False) as store:
        requests = _request_log(store, path)
        while True:
            found = await requests.get_request(request_id)
            if found is None:
                return {"requestId": request_id, "status": "UNKNOWN"}
            _, status, result = found
            if status != "PENDING" or time.monotonic() >= deadline:
                out: dict[str, JSON] = {"requestId": request_id, "status": status}
                if result is not None:
                    out["result"] = msgspec.json.decode(result)
                return out
            await anyio.sleep(0.1)


def describe(path: str, execution_arn: str) -> dict[str, JSON]:
    """DescribeExecution, read from the file.

    Raises:
        ExecutionDoesNotExist: no such execution; when a ``start`` request of that ARN is still
            pending (or failed), the message says so, with the request's id.
    """
    with open_reads(path) as store:
        record = store.get_execution(execution_arn)
        if record is None:
            found = _start_request_of(store, execution_arn)
    if record is not None:
        return _describe(record)
    message = f"Execution Does Not Exist: '{execution_arn}'"
    if found is not None:
        request_id, status, result = found
        if status == "PENDING":
            message += (
                f"; its StartExecution is request {request_id}, still PENDING: a runtime on the"
                " file applies it (statemill worker)"
            )
        else:
            message += f"; its StartExecution, request {request_id}, {status}: {result}"
    raise ExecutionDoesNotExist(message)


def _execution_arn_of(machine_arn: str, name: str) -> str:
    """The ARN a STANDARD execution named ``name`` of ``machine_arn`` gets."""
    prefix, _, machine_name = machine_arn.partition(":stateMachine:")
    return f"{prefix}:execution:{machine_name}:{name}"


def _start_request_of(store: StoreReads, execution_arn: str) -> tuple[int, str, str | None] | None:
    """The latest ``start`` request whose execution is ``execution_arn``: (id, status, result)."""
    found = None
    for item in _all_requests(store):
        if item["kind"] != "start" or "body" not in item:
            continue
        body = item["body"]
        if not isinstance(body, dict) or not isinstance(body.get("stateMachineArn"), str):
            continue
        arn = _execution_arn_of(body["stateMachineArn"], str(body.get("name")))
        if arn == execution_arn:
            found = (item["requestId"], item["status"], item.get("resultText"))
    return found


def _request_log(store: EventStore, spec: str) -> RequestLog:
    """The store's log of operators' requests (SQLite and PostgreSQL keep one)."""
    if not isinstance(store, RequestLog):
        raise StoreUnavailable(f"store {spec} keeps no requests (a SQLite file or PostgreSQL does)")
    return store


#: Missing request ids in a row after which :func:`_all_requests` stops looking for more.
ID_GAP: Final = 32


def _all_requests(store: StoreReads) -> list[dict[str, JSON]]:
    """Every request in the file, oldest first: ``requestId``, ``kind``, ``status``, ``body``
    (pending ones: what the runtime will apply), ``result``.

    The store reads a request by id (ids are 1, 2, 3 ... and requests are never deleted), and
    lists only the pending ones with their bodies. A PostgreSQL sequence may skip ids (an
    insert rolled back keeps its number): the scan goes on past up to :data:`ID_GAP` missing ids
    and always up to the newest pending request.
    """
    bodies = {
        request_id: msgspec.json.decode(payload)
        for request_id, _kind, payload, _created in store.pending_requests(limit=1_000_000)
    }
    newest_pending = max(bodies, default=0)
    out: list[dict[str, JSON]] = []
    request_id, missing = 0, 0
    while missing <= ID_GAP or request_id < newest_pending:
        request_id += 1
        found = store.get_request(request_id)
        if found is None:
            missing += 1
            continue
        missing = 0
        kind, status, result = found
        item: dict[str, JSON] = {"requestId": request_id, "kind": kind, "status": status}
        if request_id in bodies:
            item["body"] = bodies[request_id]
        if result is not None:
            item["result"] = msgspec.json.decode(result)
            item["resultText"] = _result_text(item["result"])
        out.append(item)
    return out


def _result_text(result: JSON) -> str:
    if isinstance(result, dict) and "error" in result:
        return f"{result['error']}: {result.get('message', '')}".rstrip(": ")
    return msgspec.json.encode(result).decode()


def list_requests(path: str, *, everything: bool = False) -> list[dict[str, JSON]]:
    """The pending and failed requests in the file, oldest first (``everything``: done too)."""
    with open_reads(path) as store:
        found = _all_requests(store)
    return [item for item in found if everything or item["status"] != "DONE"]


def requests_table(requests: Sequence[dict[str, JSON]]) -> str:
    """What ``statemill requests`` prints: id, kind, status and what the request is about."""
    rows = []
    for item in requests:
        body = item.get("body")
        about = ""
        if isinstance(body, dict):
            about = str(body.get("executionArn") or body.get("stateMachineArn") or "")
            if item["kind"] == "start" and body.get("name"):
                about += f" name={body['name']}"
        rows.append(
            (
                str(item["requestId"]),
                str(item["kind"]),
                str(item["status"]),
                about or str(item.get("resultText", "")),
            )
        )
    if not rows:
        return "no pending or failed requests"
    return _table(("ID", "KIND", "STATUS", "DETAIL"), rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell (the last one is not padded)."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return "\n".join(line(row) for row in [header, *rows])


def iso_time(timestamp: float | None) -> str:
    """A timestamp as local ISO 8601 time to the second (``-`` for none)."""
    if timestamp is None:
        return "-"
    return _dt.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def duration(start: float, stop: float | None, now: float) -> str:
    """``1.234s``, ``12m03s``, ``2h05m``: the time from ``start`` to ``stop`` (or ``now``)."""
    seconds = max(0.0, (stop if stop is not None else now) - start)
    if seconds < 60:
        return f"{seconds:.3f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def executions_table(executions: Sequence[dict[str, JSON]], *, now: float) -> str:
    """What ``statemill list`` prints: status, start time, duration, name, machine, ARN."""
    rows = [
        (
            str(item["status"]),
            iso_time(item["startDate"]),
            duration(item["startDate"], item["stopDate"], now)
            + ("" if item["stopDate"] is not None else " (running)"),
            str(item["name"]),
            str(item["stateMachineArn"]).rpartition(":")[2],
            str(item["executionArn"]),
        )
        for item in executions
    ]
    if not rows:
        return "no executions"
    return _table(("STATUS", "STARTED", "DURATION", "NAME", "STATE MACHINE", "EXECUTION ARN"), rows)


def _machine(record: StateMachineRecord, *, definition: bool = False) -> dict[str, JSON]:
    out: dict[str, JSON] = {
        "stateMachineArn": record.arn,
        "name": record.name,
        "type": record.type,
        "creationDate": iso_time(record.creation_date),
        "revisionId": record.revision_id,
    }
    if definition:
        out["definition"] = record.definition
    return out


def list_state_machines(path: str) -> list[dict[str, JSON]]:
    """ListStateMachines, read from the file (by name)."""
    with open_reads(path) as store:
        records = store.list_state_machines()
    return [_machine(record) for record in sorted(records, key=lambda r: r.name)]


def describe_state_machine(path: str, state_machine_arn: str) -> dict[str, JSON]:
    """DescribeStateMachine, read from the file (with the definition and execution counts).

    Raises:
        StateMachineDoesNotExist: no such state machine in the file.
    """
    with open_reads(path) as store:
        record = store.get_state_machine(state_machine_arn)
        if record is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{state_machine_arn}'")
        executions = store.list_executions(state_machine_arn, limit=1_000_000)
    counts: dict[str, int] = {}
    for execution in executions:
        counts[execution.status] = counts.get(execution.status, 0) + 1
    return {**_machine(record, definition=True), "executions": counts}


async def update_state_machine(
    path: str, state_machine_arn: str, definition: str, machine_type: str | None = None
) -> dict[str, JSON]:
    """UpdateStateMachine in the file: a new definition (and type); returns the new revision.

    Executions already started keep the definition they started with only as far as their log
    goes: a runtime opened on the file runs them on the stored definition.

    Raises:
        StateMachineDoesNotExist: no such state machine in the file.
        InvalidDefinition: the new definition is not valid ASL.
    """
    async with open_store(path, create=False) as store:
        record = await store.get_state_machine(state_machine_arn)
    if record is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{state_machine_arn}'")
    await put_state_machine(path, record.name, definition, machine_type or record.type)
    async with open_store(path, create=False) as store:
        updated = await store.get_state_machine(state_machine_arn)
    assert updated is not None
    return {
        "stateMachineArn": updated.arn,
        "revisionId": updated.revision_id,
        "updateDate": iso_time(time.time()),
    }


async def delete_state_machine(path: str, state_machine_arn: str) -> dict[str, JSON]:
    """DeleteStateMachine in the file: a ``stop`` request for each running STANDARD execution
    (applied by a runtime on the file: they end ABORTED, as the Runtime's own delete stops
    them), then the state machine deleted; its executions and their histories stay. An
    unknown ARN is not an error (as on AWS). A runtime already running on the file keeps the
    definition it holds until it restarts: delete through its API to stop new starts at once.
    """
    stops = 0
    async with open_store(path, create=False) as store:
        if not isinstance(store, StateMachineRevisions):
            raise StoreUnavailable(f"this store cannot delete state machines: {path}")
        existed = await store.get_state_machine(state_machine_arn) is not None
        if existed:
            requests = _request_log(store, path)
            cause = f"State machine deleted: '{state_machine_arn}'"
            running = await store.list_executions(
                state_machine_arn, status="RUNNING", limit=1_000_000
            )
            for record in running:
                if record.machine_type == "EXPRESS":
                    continue
                body = {"executionArn": record.execution_arn, "cause": cause}
                await requests.add_request("stop", msgspec.json.encode(body).decode(), time.time())
                stops += 1
            await store.delete_state_machine(state_machine_arn)
    return {"stateMachineArn": state_machine_arn, "deleted": existed, "stopRequests": stops}


def machines_table(machines: Sequence[dict[str, JSON]]) -> str:
    """What ``statemill machines list`` prints: name, type, creation time, ARN."""
    rows = [
        (str(m["name"]), str(m["type"]), str(m["creationDate"]), str(m["stateMachineArn"]))
        for m in machines
    ]
    if not rows:
        return "no state machines"
    return _table(("NAME", "TYPE", "CREATED", "STATE MACHINE ARN"), rows)


def list_executions(
    path: str, state_machine_arn: str | None, status: str | None, limit: int
) -> list[dict[str, JSON]]:
    """ListExecutions, read from the file (newest first)."""
    with open_reads(path) as store:
        records = store.list_executions(state_machine_arn, status=status, limit=limit)
    return [_describe(record) for record in records]
