"""ResultWriter: AWS's layout (file names, split, manifest), transformations, failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from runtime.items import (
    InvalidSpec,
    LocalObjectStore,
    ResultWriter,
    ResultWriterFailed,
    parse_result_writer,
    transform_result,
)

pytestmark = pytest.mark.anyio

ARN = (
    "arn:aws:states:us-east-1:123456789012:mapRun:billing/Map:ad9b5f27-090b-3ac6-9beb-243cd77144a7"
)
RUN_ID = "ad9b5f27-090b-3ac6-9beb-243cd77144a7"


def child(n: int, status: str = "SUCCEEDED", output: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ExecutionArn": f"arn:aws:states:us-east-1:123456789012:execution:billing/Map:{n}",
        "Input": json.dumps({"n": n}),
        "InputDetails": {"Included": True},
        "Name": str(n),
        "RedriveCount": 0,
        "StartDate": "2025-01-01T00:00:00.000Z",
        "StateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:billing/Map",
        "Status": status,
        "StopDate": "2025-01-01T00:00:01.000Z",
    }
    if status == "SUCCEEDED":
        result["Output"] = json.dumps({"n": n} if output is None else output)
        result["OutputDetails"] = {"Included": True}
    else:
        result["Error"] = "Boom"
        result["Cause"] = f"item {n}"
    return result


def spec(**config: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "bucket", "Prefix": "runs/"},
    }
    if config:
        out["WriterConfig"] = config
    return out


async def test_layout_and_manifest(store: LocalObjectStore, tmp_path: Path) -> None:
    writer = ResultWriter(parse_result_writer(spec()), store, ARN)
    for n in range(3):
        await writer.add(child(n))
    await writer.add(child(3, "FAILED"))
    await writer.add(child(4, "TIMED_OUT"))
    await writer.add(child(5, "PENDING"))
    output = await writer.close()
    key = f"runs/{RUN_ID}/manifest.json"
    assert output == {"MapRunArn": ARN, "ResultWriterDetails": {"Bucket": "bucket", "Key": key}}
    folder = tmp_path / "bucket" / "runs" / RUN_ID
    assert sorted(p.name for p in folder.iterdir()) == [
        "FAILED_0.json",
        "PENDING_0.json",
        "SUCCEEDED_0.json",
        "manifest.json",
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    size = (folder / "SUCCEEDED_0.json").stat().st_size
    assert manifest == {
        "DestinationBucket": "bucket",
        "MapRunArn": ARN,
        "ResultFiles": {
            "SUCCEEDED": [{"Key": f"runs/{RUN_ID}/SUCCEEDED_0.json", "Size": size}],
            "FAILED": [
                {
                    "Key": f"runs/{RUN_ID}/FAILED_0.json",
                    "Size": (folder / "FAILED_0.json").stat().st_size,
                }
            ],
            "PENDING": [
                {
                    "Key": f"runs/{RUN_ID}/PENDING_0.json",
                    "Size": (folder / "PENDING_0.json").stat().st_size,
                }
            ],
        },
    }
    assert json.loads((folder / "SUCCEEDED_0.json").read_text()) == [child(n) for n in range(3)]
    assert json.loads((folder / "FAILED_0.json").read_text()) == [
        child(3, "FAILED"),
        child(4, "TIMED_OUT"),
    ]


async def test_no_results_writes_an_empty_manifest(store: LocalObjectStore, tmp_path: Path) -> None:
    writer = ResultWriter(parse_result_writer(spec()), store, ARN)
    await writer.close()
    folder = tmp_path / "bucket" / "runs" / RUN_ID
    assert [p.name for p in folder.iterdir()] == ["manifest.json"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["ResultFiles"] == {"SUCCEEDED": [], "FAILED": [], "PENDING": []}


async def test_files_split_at_the_size_limit(store: LocalObjectStore, tmp_path: Path) -> None:
    writer = ResultWriter(parse_result_writer(spec()), store, ARN, max_file_bytes=1000)
    for n in range(10):
        await writer.add(child(n))
    await writer.close()
    folder = tmp_path / "bucket" / "runs" / RUN_ID
    manifest = json.loads((folder / "manifest.json").read_text())
    files = manifest["ResultFiles"]["SUCCEEDED"]
    assert len(files) > 1
    assert [f["Key"] for f in files] == [
        f"runs/{RUN_ID}/SUCCEEDED_{i}.json" for i in range(len(files))
    ]
    back: list[Any] = []
    for f in files:
        assert f["Size"] <= 1000
        back.extend(json.loads((tmp_path / "bucket" / f["Key"]).read_text()))
    assert back == [child(n) for n in range(10)]


async def test_jsonl_compact_and_flatten(store: LocalObjectStore, tmp_path: Path) -> None:
    writer = ResultWriter(
        parse_result_writer(spec(OutputType="JSONL", Transformation="FLATTEN")), store, ARN
    )
    await writer.add(child(0, output=[1, 2]))
    await writer.add(child(1, output={"x": 1}))
    await writer.add(child(2, "FAILED"))
    await writer.close()
    folder = tmp_path / "bucket" / "runs" / RUN_ID
    lines = (folder / "SUCCEEDED_0.json").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [1, 2, {"x": 1}]
    failed = (folder / "FAILED_0.json").read_text().splitlines()
    assert [json.loads(line) for line in failed] == [child(2, "FAILED")]


def test_transform_result() -> None:
    assert transform_result(child(0, output=[1, 2]), "COMPACT") == [[1, 2]]
    assert transform_result(child(0, output=[1, 2]), "FLATTEN") == [1, 2]
    assert transform_result(child(0), "NONE") == [child(0)]
    assert transform_result(child(1, "FAILED"), "COMPACT") == [child(1, "FAILED")]


def test_parse_result_writer() -> None:
    parsed = parse_result_writer(spec())
    assert (parsed.bucket, parsed.prefix, parsed.transformation, parsed.output_type) == (
        "bucket",
        "runs/",
        "NONE",
        "JSON",
    )
    preview = parse_result_writer({"WriterConfig": {"OutputType": "JSON"}})
    assert preview.bucket is None
    assert preview.transformation == "COMPACT"
    jsonata = parse_result_writer(
        {"Resource": "arn:aws:states:::s3:putObject", "Arguments": {"Bucket": "b", "Prefix": "p"}}
    )
    assert jsonata.bucket == "b"


@pytest.mark.parametrize(
    ("raw", "pointer"),
    [
        ({}, ""),
        ({"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Bucket": "b"}}, "/Resource"),
        ({"Parameters": {"Bucket": "b"}}, "/Resource"),
        ({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {}}, "/Parameters/Bucket"),
        ({"WriterConfig": {"Transformation": "ZIP"}}, "/WriterConfig/Transformation"),
        ({"WriterConfig": {"OutputType": "CSV"}}, "/WriterConfig/OutputType"),
        ({"WriterConfig": {"Other": 1}}, "/WriterConfig/Other"),
    ],
)
def test_invalid_result_writer(raw: dict[str, Any], pointer: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_result_writer(raw)
    assert info.value.pointer == pointer


async def test_missing_bucket_fails(tmp_path: Path) -> None:
    writer = ResultWriter(parse_result_writer(spec()), LocalObjectStore(tmp_path), ARN)
    await writer.add(child(0))
    with pytest.raises(ResultWriterFailed, match="The specified bucket does not exist") as info:
        await writer.close()
    assert info.value.error == "States.ResultWriterFailed"


async def test_writer_memory_is_one_file_buffer(store: LocalObjectStore, tmp_path: Path) -> None:
    # Files flushed as they fill: only the open one is buffered.
    writer = ResultWriter(parse_result_writer(spec()), store, ARN, max_file_bytes=20_000)
    for n in range(200):
        await writer.add(child(n))
    folder = tmp_path / "bucket" / "runs" / RUN_ID
    flushed = len(list(folder.iterdir()))
    assert flushed >= 3  # written before close
    await writer.close()
