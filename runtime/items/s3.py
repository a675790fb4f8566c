"""S3ObjectStore: the :class:`runtime.items.objects.ObjectStore` port over boto3.

For S3 itself or any S3-compatible store (MinIO, moto's server, LocalStack) through
``endpoint_url``. boto3 is imported only when a store is created, so the runtime does not
depend on it; every boto3 call runs in a worker thread (anyio), since boto3 blocks. Objects are
streamed in 64 KiB chunks; an upload larger than ``part_size`` becomes a multipart upload, so no
call holds more than one part. botocore's errors become :class:`ObjectStoreError` with S3's code.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any, Final, final

import anyio.to_thread

from runtime.items.objects import (
    CHUNK_SIZE,
    NoSuchBucket,
    NoSuchKey,
    ObjectInfo,
    ObjectStoreError,
)

#: S3's smallest multipart part (except the last one).
MIN_PART_SIZE: Final = 5 * 1024 * 1024


def _translate(exc: Exception, bucket: str, key: str | None = None) -> ObjectStoreError:
    """A botocore exception as an :class:`ObjectStoreError` with S3's code and message."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500) or 500)
        if code in {"NoSuchKey", "404"} and key is not None:
            return NoSuchKey(bucket, key)
        if code == "NoSuchBucket":
            return NoSuchBucket(bucket)
        return ObjectStoreError(code, str(error.get("Message", exc)), status)
    return ObjectStoreError("InternalError", f"{type(exc).__name__}: {exc}", 500)


@final
class S3ObjectStore:
    """An object store served by S3 (or an S3-compatible endpoint) through boto3."""

    def __init__(
        self, client: Any = None, *, part_size: int = 8 * 1024 * 1024, **client_kwargs: Any
    ) -> None:
        """Use ``client`` (a boto3 S3 client) or make one with ``boto3.client("s3", ...)``."""
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        if client is None:
            boto3 = importlib.import_module("boto3")
            client = boto3.client("s3", **client_kwargs)
        self._client = client
        self._part_size = part_size

    async def _call(self, bucket: str, key: str | None, method: str, **kwargs: Any) -> Any:
        function = getattr(self._client, method)
        try:
            return await anyio.to_thread.run_sync(lambda: function(**kwargs))
        except Exception as exc:
            raise _translate(exc, bucket, key) from exc

    async def open(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        """GetObject, streamed in 64 KiB chunks."""
        response = await self._call(bucket, key, "get_object", Bucket=bucket, Key=key)
        body = response["Body"]
        try:
            while True:
                try:
                    chunk = await anyio.to_thread.run_sync(body.read, CHUNK_SIZE)
                except Exception as exc:
                    raise _translate(exc, bucket, key) from exc
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def list_objects(self, bucket: str, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """ListObjectsV2, page by page (continuation tokens), in S3's key order."""
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token is not None:
                kwargs["ContinuationToken"] = token
            page = await self._call(bucket, None, "list_objects_v2", **kwargs)
            for entry in page.get("Contents", []):
                yield ObjectInfo(
                    key=entry["Key"],
                    size=int(entry["Size"]),
                    last_modified=entry["LastModified"],
                    etag=entry["ETag"],
                    storage_class=entry.get("StorageClass", "STANDARD"),
                )
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        """PutObject."""
        await self._call(bucket, key, "put_object", Bucket=bucket, Key=key, Body=data)

    async def upload(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        """PutObject for a small stream, a multipart upload past ``part_size``."""
        part = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                part += chunk
                size += len(chunk)
                if len(part) >= self._part_size:
                    if upload_id is None:
                        created = await self._call(
                            bucket, key, "create_multipart_upload", Bucket=bucket, Key=key
                        )
                        upload_id = created["UploadId"]
                    parts.append(await self._part(bucket, key, upload_id, len(parts) + 1, part))
                    part = bytearray()
            if upload_id is None:
                await self.put(bucket, key, bytes(part))
                return size
            if part:
                parts.append(await self._part(bucket, key, upload_id, len(parts) + 1, part))
            await self._call(
                bucket,
                key,
                "complete_multipart_upload",
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            if upload_id is not None:
                with anyio.CancelScope(shield=True):
                    await self._call(
                        bucket,
                        key,
                        "abort_multipart_upload",
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload_id,
                    )
            raise
        return size

    async def _part(
        self, bucket: str, key: str, upload_id: str, number: int, data: bytearray
    ) -> dict[str, Any]:
        response = await self._call(
            bucket,
            key,
            "upload_part",
            Bucket=bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=bytes(data),
        )
        return {"ETag": response["ETag"], "PartNumber": number}
