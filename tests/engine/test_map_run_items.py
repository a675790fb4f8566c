"""A distributed Map's ItemReader and ResultWriter, run by the engine (issue 14)."""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from runtime import Runtime, TaskContext, TaskFailed
from runtime.items import LocalObjectStore, ObjectStoreError

pytestmark = pytest.mark.anyio

JSON = Any
DISTRIBUTED = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}


def csv_reader(key: str = "customers.csv", **config: JSON) -> dict[str, JSON]:
    return {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", **config},
        "Parameters": {"Bucket": "billing", "Key.$": "$.key"},
    }


def billing_map(reader: dict[str, JSON], **fields: JSON) -> dict[str, JSON]:
    return {
        "StartAt": "Customers",
        "States": {
            "Customers": {
                "Type": "Map",
                "ItemReader": reader,
                "ItemProcessor": {
                    "ProcessorConfig": DISTRIBUTED,
                    "StartAt": "Bill",
                    "States": {"Bill": {"Type": "Task", "Resource": "Bill", "End": True}},
                },
                "End": True,
                **fields,
            }
        },
    }


def write_customers(root: Path, rows: int, name: str = "customers.csv") -> None:
    (root / "billing").mkdir(parents=True, exist_ok=True)
    with (root / "billing" / name).open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "plan"])
        for n in range(rows):
            writer.writerow([n, "pro" if n % 3 == 0 else "basic"])


async def bill(payload: JSON, context: TaskContext) -> JSON:
    return {"id": payload["id"], "due": 30 if payload["plan"] == "pro" else 10}


async def run(
    root: Path, definition: dict[str, JSON], input: JSON, handler: Any = bill
) -> tuple[Any, Runtime, str]:
    rt = Runtime("memory", handlers={"Bill": handler}, object_store=LocalObjectStore(root))
    async with rt:
        machine = await rt.create_state_machine("Billing", definition)
        started = await rt.start_execution(machine.arn, input)
        done = await rt.wait_for_execution(started.execution_arn, timeout=30)
        runs = await rt.list_map_runs(started.execution_arn)
        children = []
        if runs:
            children = await rt.list_executions(map_run_arn=runs[0].map_run_arn, max_results=5000)
        return done, runs, children


async def test_rows_of_a_csv_file_are_the_children_inputs_in_order(tmp_path: Path) -> None:
    write_customers(tmp_path, 2500)
    definition = billing_map(csv_reader(), MaxConcurrency=40)

    done, _, children = await run(tmp_path, definition, {"key": "customers.csv"})

    assert done.status == "SUCCEEDED"
    assert done.output_value == [
        {"id": str(n), "due": 30 if n % 3 == 0 else 10} for n in range(2500)
    ]
    assert len(children) == 2500
    assert {json.loads(c.input)["plan"] for c in children} == {"pro", "basic"}


async def test_max_items_and_item_selector_with_the_item_index(tmp_path: Path) -> None:
    write_customers(tmp_path, 50)
    definition = billing_map(
        csv_reader(MaxItems=7),
        ItemSelector={"id.$": "$$.Map.Item.Value.id", "plan": "pro", "at.$": "$$.Map.Item.Index"},
    )

    done, _, children = await run(tmp_path, definition, {"key": "customers.csv"})

    assert done.status == "SUCCEEDED"
    assert [item["id"] for item in done.output_value] == [str(n) for n in range(7)]
    assert sorted(json.loads(c.input)["at"] for c in children) == list(range(7))


async def test_batches_of_read_items_are_one_child_each(tmp_path: Path) -> None:
    write_customers(tmp_path, 10)

    async def count(payload: JSON, context: TaskContext) -> JSON:
        return [item["id"] for item in payload["Items"]]

    definition = billing_map(csv_reader(), ItemBatcher={"MaxItemsPerBatch": 4})

    rt = Runtime("memory", handlers={"Bill": count}, object_store=LocalObjectStore(tmp_path))
    async with rt:
        machine = await rt.create_state_machine("Billing", definition)
        started = await rt.start_execution(machine.arn, {"key": "customers.csv"})
        done = await rt.wait_for_execution(started.execution_arn, timeout=30)
        (map_run,) = await rt.list_map_runs(started.execution_arn)
        children = await rt.list_executions(map_run_arn=map_run.map_run_arn)
        summary = await rt.describe_map_run(map_run.map_run_arn)

    assert done.status == "SUCCEEDED"
    assert done.output_value == [["0", "1", "2", "3"], ["4", "5", "6", "7"], ["8", "9"]]
    assert len(children) == 3
    # AWS counts the items in itemCounts and the child executions in executionCounts.
    assert (summary.item_counts.total, summary.item_counts.succeeded) == (10, 10)
    assert (summary.execution_counts.total, summary.execution_counts.succeeded) == (3, 3)


async def test_a_json_array_and_a_json_lines_file(tmp_path: Path) -> None:
    (tmp_path / "billing").mkdir()
    rows = [{"id": n, "plan": "basic"} for n in range(30)]
    (tmp_path / "billing" / "c.json").write_text(json.dumps(rows))
    (tmp_path / "billing" / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for kind, key in (("JSON", "c.json"), ("JSONL", "c.jsonl")):
        reader = {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": kind},
            "Parameters": {"Bucket": "billing", "Key": key},
        }
        done, _, _ = await run(tmp_path, billing_map(reader), {})
        assert done.status == "SUCCEEDED", kind
        assert [item["id"] for item in done.output_value] == list(range(30)), kind


async def test_a_missing_file_fails_the_map_with_item_reader_failed(tmp_path: Path) -> None:
    (tmp_path / "billing").mkdir()
    definition = billing_map(csv_reader())
    definition["States"]["Customers"]["Catch"] = [
        {"ErrorEquals": ["States.ItemReaderFailed"], "Next": "Missing"}
    ]
    definition["States"]["Customers"].pop("End")
    definition["States"]["Customers"]["Next"] = "Done"
    definition["States"]["Done"] = {"Type": "Succeed"}
    definition["States"]["Missing"] = {"Type": "Pass", "End": True}

    done, runs, _ = await run(tmp_path, definition, {"key": "nowhere.csv"})

    assert done.status == "SUCCEEDED"
    assert done.output_value["Error"] == "States.ItemReaderFailed"
    assert "NoSuchKey" in done.output_value["Cause"]
    assert runs  # the Map Run started, then failed


async def test_a_malformed_file_fails_the_map_run(tmp_path: Path) -> None:
    (tmp_path / "billing").mkdir()
    good = ",".join(json.dumps({"id": n, "plan": "basic"}) for n in range(1500))
    (tmp_path / "billing" / "broken.json").write_text(f"[{good}, {{oops]")
    reader = {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "billing", "Key": "broken.json"},
    }

    done, _, _ = await run(tmp_path, billing_map(reader, MaxConcurrency=10), {})

    assert done.status == "FAILED"
    assert done.error == "States.ItemReaderFailed"


class FailingHalfWay(LocalObjectStore):
    """A store whose reads after the first (the count) break off after 64 KiB, as a lost
    connection would."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened = 0

    async def open(self, bucket: str, key: str) -> AsyncIterator[bytes]:  # type: ignore[override]
        self.opened += 1
        sent = 0
        chunks = super().open(bucket, key)
        try:
            async for chunk in chunks:
                if self.opened > 1 and sent >= 65_536:
                    raise ObjectStoreError("InternalError", "connection reset", 500)
                sent += len(chunk)
                yield chunk
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]


async def test_a_reader_failing_half_way_fails_the_map_run(tmp_path: Path) -> None:
    write_customers(tmp_path, 30_000)
    store = FailingHalfWay(tmp_path)
    async with Runtime("memory", handlers={"Bill": bill}, object_store=store) as rt:
        machine = await rt.create_state_machine("Billing", billing_map(csv_reader()))
        started = await rt.start_execution(machine.arn, {"key": "customers.csv"})
        done = await rt.wait_for_execution(started.execution_arn, timeout=30)
        (map_run,) = await rt.list_map_runs(started.execution_arn)
        summary = await rt.describe_map_run(map_run.map_run_arn)

    assert done.status == "FAILED"
    assert done.error == "States.ItemReaderFailed"
    assert "connection reset" in (done.cause or "")
    assert summary.status == "FAILED"
    assert summary.execution_counts.total == 30_000
    assert 0 < summary.execution_counts.succeeded < 30_000  # some ran before the break


async def test_without_an_object_store_the_map_says_how_to_give_one(tmp_path: Path) -> None:
    async with Runtime("memory", handlers={"Bill": bill}) as rt:
        machine = await rt.create_state_machine("Billing", billing_map(csv_reader()))
        started = await rt.start_execution(machine.arn, {"key": "customers.csv"})
        done = await rt.wait_for_execution(started.execution_arn, timeout=10)

    assert done.status == "FAILED"
    assert done.error == "States.ItemReaderFailed"
    assert "object_store" in (done.cause or "")


async def test_the_result_writer_writes_aws_layout_and_the_map_outputs_its_manifest(
    tmp_path: Path,
) -> None:
    write_customers(tmp_path, 12)

    async def picky(payload: JSON, context: TaskContext) -> JSON:
        if payload["id"] in ("4", "9"):
            raise TaskFailed("Billing.NoAddress", f"customer {payload['id']}")
        return await bill(payload, context)

    writer = {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "billing", "Prefix.$": "$.out"},
    }
    definition = billing_map(csv_reader(), ResultWriter=writer, ToleratedFailureCount=2)

    done, runs, _ = await run(tmp_path, definition, {"key": "customers.csv", "out": "runs"}, picky)

    assert done.status == "SUCCEEDED"
    run_id = runs[0].map_run_arn.rsplit(":", 1)[1]
    assert done.output_value == {
        "MapRunArn": runs[0].map_run_arn,
        "ResultWriterDetails": {"Bucket": "billing", "Key": f"runs/{run_id}/manifest.json"},
    }
    folder = tmp_path / "billing" / "runs" / run_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "FAILED_0.json",
        "SUCCEEDED_0.json",
        "manifest.json",
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["MapRunArn"] == runs[0].map_run_arn
    assert manifest["ResultFiles"]["PENDING"] == []
    succeeded = json.loads((folder / "SUCCEEDED_0.json").read_text())
    failed = json.loads((folder / "FAILED_0.json").read_text())
    assert len(succeeded) == 10
    assert {r["Status"] for r in succeeded} == {"SUCCEEDED"}
    assert sorted(json.loads(r["Output"])["id"] for r in succeeded) == sorted(
        str(n) for n in range(12) if n not in (4, 9)
    )
    assert sorted(r["Error"] for r in failed) == ["Billing.NoAddress"] * 2
    assert all(r["StartDate"].endswith("Z") for r in succeeded + failed)


async def test_a_restart_resumes_reading_where_the_run_was(tmp_path: Path) -> None:
    """Children wait for task tokens when the runtime closes; the reopened runtime reads the
    rest of the file from where the run was and starts no child twice."""
    write_customers(tmp_path, 9)
    tokens: list[str] = []

    async def ask(payload: JSON, context: TaskContext) -> None:
        assert context.task_token is not None
        if context.task_token not in tokens:  # a handler may be called again after a restart
            tokens.append(context.task_token)

    definition = billing_map(csv_reader(), MaxConcurrency=4)
    processor = definition["States"]["Customers"]["ItemProcessor"]
    processor["States"]["Bill"]["Resource"] = "Ask.waitForTaskToken"
    processor["States"]["Bill"]["Parameters"] = {"id.$": "$.id"}
    db = tmp_path / "billing.db"
    store = LocalObjectStore(tmp_path)
    async with Runtime(db, handlers={"Ask": ask}, object_store=store) as rt:
        machine = await rt.create_state_machine("Billing", definition)
        started = await rt.start_execution(machine.arn, {"key": "customers.csv"})
        for _ in range(500):
            if len(tokens) == 4:
                break
            await asyncio.sleep(0.01)
    assert len(tokens) == 4  # MaxConcurrency: the first four children wait
    async with Runtime(db, handlers={"Ask": ask}, object_store=store) as rt:
        answered = 0
        for _ in range(2000):
            while answered < len(tokens):
                await rt.send_task_success(tokens[answered], {"paid": answered})
                answered += 1
            done = await rt.describe_execution(started.execution_arn)
            if done.status != "RUNNING":
                break
            await asyncio.sleep(0.01)
        (map_run,) = await rt.list_map_runs(started.execution_arn)
        children = await rt.list_executions(map_run_arn=map_run.map_run_arn)

    assert done.status == "SUCCEEDED"
    assert len(done.output_value) == 9
    assert len(children) == 9
    assert sorted(json.loads(c.input)["id"] for c in children) == [str(n) for n in range(9)]


async def test_two_maps_reading_and_writing_at_once_in_a_parallel(tmp_path: Path) -> None:
    """Each Map's reads and writes are its own (they are told apart by the run that opened
    them), so two branches at the same point both go on."""
    write_customers(tmp_path, 300)
    writer = {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "billing", "Prefix": "out"},
    }
    branches = []
    for name in ("North", "South"):
        branch = billing_map(csv_reader(), MaxConcurrency=20, ResultWriter=writer)
        state = branch["States"]["Customers"]
        state["ItemProcessor"]["StartAt"] = f"Bill{name}"
        state["ItemProcessor"]["States"] = {f"Bill{name}": state["ItemProcessor"]["States"]["Bill"]}
        branch["States"] = {name: state}
        branch["StartAt"] = name
        branches.append(branch)
    definition = {
        "StartAt": "Both",
        "States": {"Both": {"Type": "Parallel", "Branches": branches, "End": True}},
    }

    done, _, _ = await run(tmp_path, definition, {"key": "customers.csv"})

    assert done.status == "SUCCEEDED"
    first, second = done.output_value
    assert first["MapRunArn"] != second["MapRunArn"]
    for output in (first, second):
        manifest = json.loads(
            (tmp_path / "billing" / output["ResultWriterDetails"]["Key"]).read_text()
        )
        (written,) = manifest["ResultFiles"]["SUCCEEDED"]
        assert len(json.loads((tmp_path / "billing" / written["Key"]).read_text())) == 300


class CountingOpens(LocalObjectStore):
    """Counts the objects opened: each open is a pass over the file from its start."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opened = 0

    def open(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        self.opened += 1
        return super().open(bucket, key)


async def test_the_file_is_read_in_two_passes_however_many_reads(tmp_path: Path) -> None:
    """One pass to count the data set, one to read it: a read asked for again before its
    answer was taken in gets the same answer, never a new pass up to it (a 1,000,000-row run
    spent 75 % of its time re-reading the file)."""
    write_customers(tmp_path, 4000)
    store = CountingOpens(tmp_path)
    db = tmp_path / "billing.db"
    async with Runtime(db, handlers={"Bill": bill}, object_store=store) as rt:
        machine = await rt.create_state_machine(
            "Billing", billing_map(csv_reader(), MaxConcurrency=40)
        )
        started = await rt.start_execution(machine.arn, {"key": "customers.csv"})
        done = await rt.wait_for_execution(started.execution_arn, timeout=60)

    assert done.status == "SUCCEEDED"
    assert len(done.output_value) == 4000
    assert store.opened == 2
