"""Object stores: where a Distributed Map reads its items and writes its results.

:class:`ObjectStore` is the port, shaped after the three S3 calls Step Functions makes:
``GetObject`` (:meth:`ObjectStore.open`, a stream of byte chunks), ``ListObjectsV2``
(:meth:`ObjectStore.list_objects`, :class:`ObjectInfo` in key order) and ``PutObject``
(:meth:`ObjectStore.put` / :meth:`ObjectStore.upload`). Two adapters implement it:

* :class:`LocalObjectStore` (here): a bucket is a folder under a root, a key a relative path in
  it. Keys come from state machine definitions and inputs, so a key that could leave its bucket
  (``..``, an absolute path, an empty segment, NUL) is refused, never resolved.
* :class:`runtime.items.s3.S3ObjectStore`: S3 or any S3-compatible store, through boto3.

Failures are :class:`ObjectStoreError` with S3's error codes and messages (``NoSuchKey``,
``NoSuchBucket``, ``AccessDenied``...), so a reader can quote them as AWS does.
All I/O runs in worker threads (anyio), in 64 KiB chunks: nothing holds a whole object.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Protocol, final

import anyio
import anyio.to_thread
import msgspec

#: Bytes per chunk when streaming an object.
CHUNK_SIZE: Final = 64 * 1024
#: Temporary files of an upload in progress start with this; listings skip them.
_TMP_PREFIX: Final = ".statemill-upload-"


class ObjectStoreError(Exception):
    """A failed object-store call, with S3's error ``code``, ``message`` and HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int) -> None:
        self.code = code
        self.message = message
        self.status = status
        super().__init__(f"{code}: {message}")

    def describe(self) -> str:
        """The error as the AWS SDK words it inside a Step Functions cause."""
        return f"{self.message} (Service: S3, Status Code: {self.status}, Error Code: {self.code})"


@final
class NoSuchKey(ObjectStoreError):
    """The object does not exist (S3 ``NoSuchKey``)."""

    def __init__(self, bucket: str, key: str) -> None:
        super().__init__("NoSuchKey", "The specified key does not exist.", 404)
        self.bucket = bucket
        self.key = key


@final
class NoSuchBucket(ObjectStoreError):
    """The bucket does not exist (S3 ``NoSuchBucket``)."""

    def __init__(self, bucket: str) -> None:
        super().__init__("NoSuchBucket", "The specified bucket does not exist", 404)
        self.bucket = bucket


@final
class InvalidObjectName(ObjectStoreError):
    """A bucket or key this store refuses (it could leave its bucket)."""

    def __init__(self, what: str, name: str, reason: str) -> None:
        super().__init__("InvalidArgument", f"Invalid {what} {name!r}: {reason}", 400)


@final
class ObjectInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a ListObjectsV2 page (S3's ``Object`` type)."""

    key: str
    size: int
    last_modified: datetime
    etag: str
    storage_class: str = "STANDARD"


class ObjectStore(Protocol):
    """The three S3 operations a Distributed Map needs, async."""

    def open(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        """Stream an object's bytes in chunks (GetObject); raises :class:`NoSuchKey` & co."""
        ...

    def list_objects(self, bucket: str, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """The objects whose key starts with ``prefix``, in key order (ListObjectsV2)."""
        ...

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        """Create or replace an object (PutObject)."""
        ...

    async def upload(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Create or replace an object from a stream of chunks; returns its size in bytes."""
        ...


def check_bucket(bucket: str) -> None:
    """Refuse a bucket name that is not one folder name."""
    if not bucket or bucket in {".", ".."} or "/" in bucket or "\\" in bucket or "\0" in bucket:
        raise InvalidObjectName("bucket", bucket, "not a single folder name")


def check_key(key: str) -> None:
    """Refuse a key that is empty, absolute, or could leave its bucket."""
    if not key:
        raise InvalidObjectName("key", key, "empty")
    if "\0" in key:
        raise InvalidObjectName("key", key, "contains NUL")
    if key.startswith("/") or key.startswith("\\"):
        raise InvalidObjectName("key", key, "absolute")
    for segment in key.split("/"):
        if segment in {"", ".", ".."}:
            raise InvalidObjectName("key", key, f"segment {segment!r} is not allowed")


def _etag(path: Path) -> str:
    """S3's ETag of a single-part object: the quoted MD5 of its bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while block := file.read(CHUNK_SIZE):
            digest.update(block)
    return f'"{digest.hexdigest()}"'


def _scan(directory: Path, relative: str) -> list[tuple[str, str, bool]]:
    """Entries of one folder as (S3 sort key, name, is_dir), in S3 key order.

    A folder sorts as its name plus ``/``, so a depth-first walk yields keys in the same
    (code point) order as ListObjectsV2 does: ``a-b`` comes before ``a/c``.
    """
    entries: list[tuple[str, str, bool]] = []
    with os.scandir(directory) as scan:
        for entry in scan:
            if entry.name.startswith(_TMP_PREFIX):
                continue
            if entry.is_dir(follow_symlinks=False):
                entries.append((f"{relative}{entry.name}/", entry.name, True))
            elif entry.is_file():
                entries.append((f"{relative}{entry.name}", entry.name, False))
    entries.sort()
    return entries


def _describe(path: Path, key: str) -> ObjectInfo:
    stat = path.stat()
    return ObjectInfo(
        key=key,
        size=stat.st_size,
        last_modified=datetime.fromtimestamp(int(stat.st_mtime), UTC),
        etag=_etag(path),
    )


@final
class LocalObjectStore:
    """An object store on the local file system: ``root/<bucket>/<key>``."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    def _bucket_dir(self, bucket: str) -> Path:
        check_bucket(bucket)
        return self._root / bucket

    def _object_path(self, bucket: str, key: str) -> tuple[Path, Path]:
        directory = self._bucket_dir(bucket)
        check_key(key)
        return directory, directory.joinpath(*key.split("/"))

    async def open(self, bucket: str, key: str) -> AsyncIterator[bytes]:
        """Stream ``root/bucket/key`` in 64 KiB chunks."""
        directory, path = self._object_path(bucket, key)
        try:
            file = await anyio.open_file(path, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            if not await anyio.Path(directory).is_dir():
                raise NoSuchBucket(bucket) from None
            raise NoSuchKey(bucket, key) from None
        except PermissionError:
            raise ObjectStoreError("AccessDenied", "Access Denied", 403) from None
        async with file:
            while True:
                try:
                    chunk = await file.read(CHUNK_SIZE)
                except IsADirectoryError:
                    raise NoSuchKey(bucket, key) from None
                except OSError as exc:
                    raise ObjectStoreError("InternalError", str(exc), 500) from exc
                if not chunk:
                    return
                yield chunk

    async def list_objects(self, bucket: str, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Walk ``root/bucket`` depth first, yielding files whose key starts with ``prefix``."""
        directory = self._bucket_dir(bucket)
        if not await anyio.Path(directory).is_dir():
            raise NoSuchBucket(bucket)
        # An explicit stack of folder listings: the depth of the tree never becomes recursion.
        stack: list[tuple[Path, Iterator[tuple[str, str, bool]]]] = []
        root_entries = await anyio.to_thread.run_sync(_scan, directory, "")
        stack.append((directory, iter(root_entries)))
        while stack:
            folder, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            sort_key, name, is_dir = entry
            if is_dir:
                if sort_key.startswith(prefix) or prefix.startswith(sort_key):
                    listing = await anyio.to_thread.run_sync(_scan, folder / name, sort_key)
                    stack.append((folder / name, iter(listing)))
            elif sort_key.startswith(prefix):
                yield await anyio.to_thread.run_sync(_describe, folder / name, sort_key)

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        """Write ``data`` as ``root/bucket/key`` (atomically: a temporary file, then rename)."""

        async def one() -> AsyncIterator[bytes]:
            yield data

        await self.upload(bucket, key, one())

    async def upload(self, bucket: str, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Write a stream of chunks as ``root/bucket/key``; returns the size written."""
        directory, path = self._object_path(bucket, key)
        if not await anyio.Path(directory).is_dir():
            raise NoSuchBucket(bucket)
        size = 0
        try:
            await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f"{_TMP_PREFIX}{path.name}")
            async with await anyio.open_file(temporary, "wb") as file:
                async for chunk in chunks:
                    await file.write(chunk)
                    size += len(chunk)
            await anyio.Path(temporary).replace(path)
        except PermissionError:
            raise ObjectStoreError("AccessDenied", "Access Denied", 403) from None
        except OSError as exc:
            raise ObjectStoreError("InternalError", str(exc), 500) from exc
        return size
