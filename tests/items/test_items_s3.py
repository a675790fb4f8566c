"""S3ObjectStore against moto's S3 server on loopback: getObject, listObjectsV2, ResultWriter."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("moto.server", reason="moto[server] is a test dependency for the S3 store")
boto3 = pytest.importorskip("boto3")

from moto.server import ThreadedMotoServer  # noqa: E402

from runtime.items import (  # noqa: E402
    ItemReaderFailed,
    ResultWriter,
    S3ObjectStore,
    parse_item_reader,
    parse_result_writer,
    read_items,
)

pytestmark = pytest.mark.anyio
ARN = "arn:aws:states:us-east-1:123456789012:mapRun:billing/Map:run-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def client(endpoint: str) -> Any:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="data")
    return s3


async def test_csv_via_get_object(client: Any) -> None:
    client.put_object(Bucket="data", Key="in/customers.csv", Body=b"id,name\n1,Ann\n2,Bob\n")
    store = S3ObjectStore(client)
    spec = parse_item_reader(
        {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            "Parameters": {"Bucket": "data", "Key": "in/customers.csv"},
        }
    )
    assert [i async for i in read_items(spec, store)] == [
        {"id": "1", "name": "Ann"},
        {"id": "2", "name": "Bob"},
    ]
    missing = parse_item_reader(
        {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": "data", "Key": "nope.json"},
        }
    )
    with pytest.raises(ItemReaderFailed, match="The specified key does not exist"):
        [i async for i in read_items(missing, store)]


async def test_list_objects_v2_pages(client: Any) -> None:
    for n in range(5):
        client.put_object(Bucket="data", Key=f"logs/{n}.txt", Body=b"x" * n)
    client.put_object(Bucket="data", Key="other.txt", Body=b"")

    class SmallPages(S3ObjectStore):
        async def _call(self, bucket: str, key: str | None, method: str, **kwargs: Any) -> Any:
            if method == "list_objects_v2":
                kwargs["MaxKeys"] = 2  # force continuation tokens
            return await super()._call(bucket, key, method, **kwargs)

    spec = parse_item_reader(
        {
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": "data", "Prefix": "logs/"},
        }
    )
    items = [i async for i in read_items(spec, SmallPages(client))]
    assert [i["Key"] for i in items] == [f"logs/{n}.txt" for n in range(5)]
    assert [i["Size"] for i in items] == list(range(5))
    assert all(i["Etag"].startswith('"') and i["StorageClass"] == "STANDARD" for i in items)
    assert all(isinstance(i["LastModified"], int) for i in items)


async def test_result_writer_to_s3_and_manifest_back(client: Any) -> None:
    store = S3ObjectStore(client)
    writer = ResultWriter(
        parse_result_writer(
            {
                "Resource": "arn:aws:states:::s3:putObject",
                "Parameters": {"Bucket": "data", "Prefix": "results"},
            }
        ),
        store,
        ARN,
    )
    await writer.add({"Name": "a", "Status": "SUCCEEDED", "Output": "1"})
    await writer.add({"Name": "b", "Status": "FAILED", "Error": "E", "Cause": "c"})
    output = await writer.close()
    assert output["ResultWriterDetails"] == {"Bucket": "data", "Key": "results/run-1/manifest.json"}
    manifest = json.loads(
        client.get_object(Bucket="data", Key="results/run-1/manifest.json")["Body"].read()
    )
    assert manifest["DestinationBucket"] == "data"
    assert manifest["MapRunArn"] == ARN
    succeeded = manifest["ResultFiles"]["SUCCEEDED"]
    assert [f["Key"] for f in succeeded] == ["results/run-1/SUCCEEDED_0.json"]
    body = client.get_object(Bucket="data", Key=succeeded[0]["Key"])["Body"].read()
    assert len(body) == succeeded[0]["Size"]
    assert json.loads(body) == [{"Name": "a", "Status": "SUCCEEDED", "Output": "1"}]


async def test_multipart_upload(client: Any) -> None:
    store = S3ObjectStore(client, part_size=5 * 1024 * 1024)
    blob = bytes(range(256)) * (11 * 1024 * 1024 // 256)

    async def chunks() -> Any:
        for i in range(0, len(blob), 1024 * 1024):
            yield blob[i : i + 1024 * 1024]

    assert await store.upload("data", "big.bin", chunks()) == len(blob)
    back = b"".join([c async for c in store.open("data", "big.bin")])
    assert back == blob
