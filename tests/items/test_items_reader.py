"""ItemReader: every input type and option, MaxItems, resume offsets, and each failure."""

from __future__ import annotations

import gzip
import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from runtime.items import (
    InvalidSpec,
    ItemReaderFailed,
    LocalObjectStore,
    parse_item_reader,
    read_items,
)

pytestmark = pytest.mark.anyio


def get_object(key: str, **config: Any) -> dict[str, Any]:
    return {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": config,
        "Parameters": {"Bucket": "bucket", "Key": key},
    }


async def collect(store: LocalObjectStore, spec: dict[str, Any], start: int = 0) -> list[Any]:
    return [item async for item in read_items(parse_item_reader(spec), store, start=start)]


async def drain(items: Any, seen: list[Any]) -> None:
    """Collect into ``seen`` until the reader ends or raises (to see what came before)."""
    async for item in items:
        seen.append(item)  # noqa: PERF401 (the items before a failure are the point)


def write(root: Path, key: str, data: bytes | str) -> None:
    path = root / "bucket" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


async def test_json_array_elements_in_order(store: LocalObjectStore, tmp_path: Path) -> None:
    items = [1, "two", {"three": [3, "]", '\\"']}, [4, {"a": "}"}], None, True, 1.5]
    write(tmp_path, "a.json", json.dumps(items, indent=2))
    assert await collect(store, get_object("a.json", InputType="JSON")) == items


async def test_json_array_split_across_tiny_chunks(tmp_path: Path) -> None:
    items = [{"k": 'a,b]\\"c', "n": [1, [2, {"x": "}"}]]} for _ in range(50)]
    write(tmp_path, "a.json", "\ufeff" + json.dumps(items))

    class Tiny(LocalObjectStore):
        async def open(self, bucket: str, key: str):  # type: ignore[no-untyped-def,override]
            async for chunk in super().open(bucket, key):
                for i in range(len(chunk)):
                    yield chunk[i : i + 1]

    got = [
        i
        async for i in read_items(
            parse_item_reader(get_object("a.json", InputType="JSON")), Tiny(tmp_path)
        )
    ]
    assert got == items


async def test_empty_json_array(store: LocalObjectStore, tmp_path: Path) -> None:
    write(tmp_path, "a.json", " [ ] \n")
    assert await collect(store, get_object("a.json", InputType="JSON")) == []


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"a": 1}', "Attempting to map over non-iterable node."),
        ("42", "Attempting to map over non-iterable node."),
        ("", "empty"),
        ("[1, 2", "unexpected end of file"),
        ("[1,,2]", "missing value"),
        ("[1,]", "missing value"),
        ("[1] x", "after the end"),
    ],
)
async def test_json_malformed(
    store: LocalObjectStore, tmp_path: Path, text: str, match: str
) -> None:
    write(tmp_path, "a.json", text)
    with pytest.raises(ItemReaderFailed, match=match) as info:
        await collect(store, get_object("a.json", InputType="JSON"))
    assert info.value.error == "States.ItemReaderFailed"


async def test_json_malformed_mid_file_fails_after_yielding(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    write(tmp_path, "a.json", '[1, 2, {"bad": tru}, 4]')
    seen: list[Any] = []
    reader = read_items(parse_item_reader(get_object("a.json", InputType="JSON")), store)
    with pytest.raises(ItemReaderFailed, match=r"Item 2 of s3://bucket/a\.json is not valid JSON"):
        await drain(reader, seen)
    assert seen == [1, 2]


async def test_jsonl(store: LocalObjectStore, tmp_path: Path) -> None:
    write(tmp_path, "a.jsonl", '{"a": 1}\r\n\n[2]\n"three"\n   \n4')
    assert await collect(store, get_object("a.jsonl", InputType="JSONL")) == [
        {"a": 1},
        [2],
        "three",
        4,
    ]


async def test_jsonl_bad_line(store: LocalObjectStore, tmp_path: Path) -> None:
    write(tmp_path, "a.jsonl", '{"a": 1}\n{oops\n')
    with pytest.raises(ItemReaderFailed, match=r"Item 1 .* not valid JSON"):
        await collect(store, get_object("a.jsonl", InputType="JSONL"))


async def test_csv_first_row(store: LocalObjectStore, tmp_path: Path) -> None:
    write(tmp_path, "a.csv", 'id,name,note\r\n1,Ann,"a, b"\n2,Bob,"two\nlines"\n\n3,"Cy ""C""",\n')
    assert await collect(
        store, get_object("a.csv", InputType="CSV", CSVHeaderLocation="FIRST_ROW")
    ) == [
        {"id": "1", "name": "Ann", "note": "a, b"},
        {"id": "2", "name": "Bob", "note": "two\nlines"},
        {"id": "3", "name": 'Cy "C"', "note": ""},
    ]


async def test_csv_given_headers_and_field_count(store: LocalObjectStore, tmp_path: Path) -> None:
    # AWS: missing fields become empty strings, extra fields are dropped.
    write(tmp_path, "a.csv", "1,2\n3\n4,5,6,7\n")
    spec = get_object(
        "a.csv", InputType="CSV", CSVHeaderLocation="GIVEN", CSVHeaders=["x", "y", "z"]
    )
    assert await collect(store, spec) == [
        {"x": "1", "y": "2", "z": ""},
        {"x": "3", "y": "", "z": ""},
        {"x": "4", "y": "5", "z": "6"},
    ]


@pytest.mark.parametrize(
    ("name", "char"),
    [("COMMA", ","), ("PIPE", "|"), ("SEMICOLON", ";"), ("SPACE", " "), ("TAB", "\t")],
)
async def test_csv_delimiters(
    store: LocalObjectStore, tmp_path: Path, name: str, char: str
) -> None:
    write(tmp_path, "a.csv", f"a{char}b\n1{char}two words\n".replace("two words", '"two words"'))
    spec = get_object("a.csv", InputType="CSV", CSVHeaderLocation="FIRST_ROW", CSVDelimiter=name)
    assert await collect(store, spec) == [{"a": "1", "b": "two words"}]


async def test_csv_duplicate_headers(store: LocalObjectStore, tmp_path: Path) -> None:
    write(tmp_path, "a.csv", "a,a\n1,2\n")
    with pytest.raises(
        ItemReaderFailed,
        match=r"^States.ItemReaderFailed: CSV headers cannot contain duplicates\.$",
    ):
        await collect(store, get_object("a.csv", InputType="CSV", CSVHeaderLocation="FIRST_ROW"))


async def test_csv_not_utf8_fails_half_way(store: LocalObjectStore, tmp_path: Path) -> None:
    write(tmp_path, "a.csv", b"a\n" + b"".join(b"%08d\n" % i for i in range(20_000)) + b"\xff\n")
    seen = []
    config = get_object("a.csv", InputType="CSV", CSVHeaderLocation="FIRST_ROW")
    reader = read_items(parse_item_reader(config), store)
    with pytest.raises(ItemReaderFailed, match="not UTF-8"):
        await drain(reader, seen)
    # The rows of the chunks before the bad byte were handed out first.
    assert len(seen) >= 7_000
    assert seen[:2] == [{"a": "00000000"}, {"a": "00000001"}]


@pytest.mark.parametrize("input_type", ["JSON", "JSONL", "CSV"])
async def test_max_items_and_start(
    store: LocalObjectStore, tmp_path: Path, input_type: str
) -> None:
    values = list(range(10))
    if input_type == "JSON":
        write(tmp_path, "f", json.dumps(values))
        expect = values
        config: dict[str, Any] = {}
    elif input_type == "JSONL":
        write(tmp_path, "f", "\n".join(map(str, values)))
        expect = values
        config = {}
    else:
        write(tmp_path, "f", "v\n" + "\n".join(map(str, values)))
        expect = [{"v": str(v)} for v in values]
        config = {"CSVHeaderLocation": "FIRST_ROW"}
    assert await collect(store, get_object("f", InputType=input_type, **config)) == expect
    assert (
        await collect(store, get_object("f", InputType=input_type, **config), start=7) == expect[7:]
    )
    capped = get_object("f", InputType=input_type, MaxItems=4, **config)
    assert await collect(store, capped) == expect[:4]
    assert await collect(store, capped, start=2) == expect[2:4]
    assert await collect(store, capped, start=4) == []


async def test_resume_skips_without_decoding_earlier_items(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    # Item 0 is not valid JSON but a resumed run past it never decodes it.
    write(tmp_path, "a.json", "[tru, 2, 3]")
    assert await collect(store, get_object("a.json", InputType="JSON"), start=1) == [2, 3]


async def test_missing_object_and_bucket(store: LocalObjectStore) -> None:
    with pytest.raises(
        ItemReaderFailed, match=r"The specified key does not exist\..*404.*NoSuchKey"
    ):
        await collect(store, get_object("nope.json", InputType="JSON"))
    spec = get_object("a.json", InputType="JSON")
    spec["Parameters"]["Bucket"] = "other"
    with pytest.raises(ItemReaderFailed, match="The specified bucket does not exist"):
        await collect(store, spec)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
async def test_unreadable_file(store: LocalObjectStore, tmp_path: Path) -> None:
    write(tmp_path, "a.json", "[1]")
    (tmp_path / "bucket" / "a.json").chmod(0)
    with pytest.raises(ItemReaderFailed, match="Access Denied"):
        await collect(store, get_object("a.json", InputType="JSON"))


async def test_directory_as_key_is_missing(store: LocalObjectStore, tmp_path: Path) -> None:
    (tmp_path / "bucket" / "folder").mkdir()
    with pytest.raises(ItemReaderFailed, match="NoSuchKey"):
        await collect(store, get_object("folder", InputType="JSON"))


async def test_list_objects_v2(store: LocalObjectStore, tmp_path: Path) -> None:
    for key in ["logs/b.txt", "logs/a-1.txt", "logs/a/x.txt", "other/c.txt", "logsz.txt"]:
        write(tmp_path, key, key)
    spec = {
        "Resource": "arn:aws:states:::s3:listObjectsV2",
        "Parameters": {"Bucket": "bucket", "Prefix": "logs/"},
    }
    items = await collect(store, spec)
    assert [i["Key"] for i in items] == ["logs/a-1.txt", "logs/a/x.txt", "logs/b.txt"]
    first = items[0]
    assert set(first) == {"Etag", "Key", "LastModified", "Size", "StorageClass"}
    assert first["Size"] == len("logs/a-1.txt")
    assert first["Etag"] == '"' + __import__("hashlib").md5(b"logs/a-1.txt").hexdigest() + '"'
    assert isinstance(first["LastModified"], int)
    assert first["StorageClass"] == "STANDARD"
    spec["ReaderConfig"] = {"MaxItems": 2}
    assert [i["Key"] for i in await collect(store, spec, start=1)] == ["logs/a/x.txt"]
    all_keys = [
        i["Key"]
        for i in await collect(
            store, {**spec, "ReaderConfig": {}, "Parameters": {"Bucket": "bucket"}}
        )
    ]
    assert all_keys == sorted(all_keys)
    assert len(all_keys) == 5


async def test_manifest_s3_inventory(store: LocalObjectStore, tmp_path: Path) -> None:
    (tmp_path / "inventory").mkdir()
    rows1 = (
        '"src","a.csv","10","2022-11-16T00:29:32.000Z"\n'
        '"src","b.csv","20","2022-11-16T00:29:33.000Z"\n'
    )
    rows2 = '"src","c.csv","30","2022-11-16T00:29:34.000Z"\n'
    (tmp_path / "inventory" / "data").mkdir()
    (tmp_path / "inventory" / "data" / "1.csv.gz").write_bytes(gzip.compress(rows1.encode()))
    (tmp_path / "inventory" / "data" / "2.csv.gz").write_bytes(gzip.compress(rows2.encode()))
    manifest = {
        "sourceBucket": "src",
        "destinationBucket": "arn:aws:s3:::inventory",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate",
        "files": [{"key": "data/1.csv.gz", "size": 1}, {"key": "data/2.csv.gz", "size": 1}],
    }
    write(tmp_path, "manifest.json", json.dumps(manifest))
    items = await collect(store, get_object("manifest.json", InputType="MANIFEST"))
    assert items == [
        {
            "Bucket": "src",
            "Key": "a.csv",
            "Size": "10",
            "LastModifiedDate": "2022-11-16T00:29:32.000Z",
        },
        {
            "Bucket": "src",
            "Key": "b.csv",
            "Size": "20",
            "LastModifiedDate": "2022-11-16T00:29:33.000Z",
        },
        {
            "Bucket": "src",
            "Key": "c.csv",
            "Size": "30",
            "LastModifiedDate": "2022-11-16T00:29:34.000Z",
        },
    ]
    capped = get_object("manifest.json", InputType="MANIFEST", MaxItems=2)
    assert [i["Key"] for i in await collect(store, capped, start=1)] == ["b.csv"]
    manifest["fileFormat"] = "ORC"
    write(tmp_path, "manifest.json", json.dumps(manifest))
    with pytest.raises(ItemReaderFailed, match="unsupported inventory fileFormat 'ORC'"):
        await collect(store, get_object("manifest.json", InputType="MANIFEST"))


@pytest.mark.parametrize(
    ("spec", "pointer"),
    [
        ({"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b"}}, "/Resource"),
        (get_object("k", InputType="XML"), "/ReaderConfig/InputType"),
        (get_object("k"), "/ReaderConfig/InputType"),
        (get_object("k", InputType="CSV"), "/ReaderConfig/CSVHeaderLocation"),
        (get_object("k", InputType="CSV", CSVHeaderLocation="GIVEN"), "/ReaderConfig/CSVHeaders"),
        (
            get_object("k", InputType="CSV", CSVHeaderLocation="FIRST_ROW", CSVHeaders=["a"]),
            "/ReaderConfig/CSVHeaders",
        ),
        (
            get_object("k", InputType="CSV", CSVHeaderLocation="FIRST_ROW", CSVDelimiter="COLON"),
            "/ReaderConfig/CSVDelimiter",
        ),
        (get_object("k", InputType="JSON", CSVDelimiter="PIPE"), "/ReaderConfig/CSVDelimiter"),
        (get_object("k", InputType="JSON", MaxItems=0), "/ReaderConfig/MaxItems"),
        (get_object("k", InputType="JSON", MaxItems=100_000_001), "/ReaderConfig/MaxItems"),
        (get_object("k", InputType="JSON", MaxItems=True), "/ReaderConfig/MaxItems"),
        (get_object("k", InputType="JSON", Bogus=1), "/ReaderConfig/Bogus"),
        (
            {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {"Key": "k"}},
            "/Parameters/Bucket",
        ),
        (
            {
                "Resource": "arn:aws:states:::s3:listObjectsV2",
                "Arguments": {"Bucket": "b", "Key": "k"},
            },
            "/Arguments/Key",
        ),
    ],
)
def test_invalid_specs(spec: dict[str, Any], pointer: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_item_reader(spec)
    assert info.value.pointer == pointer


async def test_keys_that_leave_the_bucket_are_refused(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    (tmp_path / "secret.json").write_text("[1]")
    for key in ["../secret.json", "/etc/passwd", "a//b", "./x"]:
        with pytest.raises(ItemReaderFailed, match="InvalidArgument"):
            await collect(store, get_object(key, InputType="JSON"))


async def test_big_csv_streams_in_bounded_memory(store: LocalObjectStore, tmp_path: Path) -> None:
    path = tmp_path / "bucket" / "big.csv"
    row = "x" * 1990
    with path.open("w") as file:
        file.write("id,payload\n")
        for i in range(25_000):
            file.write(f"{i},{row}\n")
    assert path.stat().st_size > 48_000_000
    spec = parse_item_reader(get_object("big.csv", InputType="CSV", CSVHeaderLocation="FIRST_ROW"))
    tracemalloc.start()
    try:
        count = 0
        item: Any = None
        async for item in read_items(spec, store):  # noqa: B007 (the last item is checked)
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 25_000
    assert item == {"id": "24999", "payload": row}
    assert peak < 4_000_000, peak
