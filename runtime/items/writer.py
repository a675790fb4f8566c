"""ResultWriter (Map): the child executions' results, written as files in AWS's layout.

With ``Resource: arn:aws:states:::s3:putObject`` and ``Bucket``/``Prefix`` in its
``Parameters`` (JSONPath) or ``Arguments`` (JSONata), a Distributed Map writes under
``<Prefix>/<map run id>/``:

* ``SUCCEEDED_<n>.json``, ``FAILED_<n>.json``, ``PENDING_<n>.json``: the results grouped by
  status (``FAILED`` also takes ``TIMED_OUT`` and ``ABORTED`` children; ``PENDING`` the ones
  that never finished), a new file each time one would pass :data:`MAX_RESULT_FILE_BYTES`;
* ``manifest.json``: ``DestinationBucket``, ``MapRunArn`` and ``ResultFiles`` (per status, the
  ``Key`` and ``Size`` of each file).

The Map state's output is then ``{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}``,
the key being the manifest's. ``WriterConfig`` chooses each result's shape
(``Transformation``: ``NONE`` the whole execution description, ``COMPACT`` only a succeeded
child's output, ``FLATTEN`` that output with arrays spliced in; a failed child's description is
always kept whole) and the file format (``OutputType`` ``JSON`` array or ``JSONL`` lines).
Without ``Resource`` nothing is exported: :func:`transform_result` gives the state the results.

Memory is one file's buffer (spooled to a temporary file past 8 MiB), never all results.
Every store failure raises :class:`ResultWriterFailed`.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Mapping
from typing import IO, Any, Final, Literal, final

import anyio.to_thread
import msgspec

from runtime.items.errors import InvalidSpec, ResultWriterFailed
from runtime.items.objects import CHUNK_SIZE, ObjectStore, ObjectStoreError

JSON = Any

PUT_OBJECT: Final = "arn:aws:states:::s3:putObject"
#: A result file is closed before it passes this size (S3's single PutObject limit, 5 GB).
MAX_RESULT_FILE_BYTES: Final = 5 * 1024**3
#: A file buffer stays in memory up to this size, then spills to a temporary file.
SPOOL_BYTES: Final = 8 * 1024 * 1024

Transformation = Literal["NONE", "COMPACT", "FLATTEN"]
OutputType = Literal["JSON", "JSONL"]
Category = Literal["SUCCEEDED", "FAILED", "PENDING"]
CATEGORIES: Final[tuple[Category, ...]] = ("SUCCEEDED", "FAILED", "PENDING")
#: Execution Status -> result file.
STATUS_CATEGORY: Final[dict[str, Category]] = {
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
    "TIMED_OUT": "FAILED",
    "ABORTED": "FAILED",
    "PENDING": "PENDING",
    "RUNNING": "PENDING",
}
_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder()


@final
class ResultWriterSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A resolved ``ResultWriter``; ``bucket`` is None when results are not exported."""

    bucket: str | None = None
    prefix: str = ""
    transformation: Transformation = "NONE"
    output_type: OutputType = "JSON"


def parse_result_writer(spec: Mapping[str, JSON]) -> ResultWriterSpec:
    """Validate a resolved ``ResultWriter`` object; raise :class:`InvalidSpec` naming the field.

    ResultWriter: it cannot be empty; ``WriterConfig`` alone previews the formatted output,
    ``Resource`` with ``Parameters``/``Arguments`` exports with ``Transformation`` NONE, all
    three export formatted output.
    """
    for name in spec:
        if name not in {"Resource", "Parameters", "Arguments", "WriterConfig"}:
            raise InvalidSpec(f"/{name}", "is not a ResultWriter field")
    if not spec:
        raise InvalidSpec("", "ResultWriter cannot be empty")
    config = spec.get("WriterConfig")
    transformation: str = "COMPACT" if "Resource" not in spec else "NONE"
    output_type: str = "JSON"
    if config is not None:
        if not isinstance(config, Mapping):
            raise InvalidSpec("/WriterConfig", "must be an object")
        for name in config:
            if name not in {"Transformation", "OutputType"}:
                raise InvalidSpec(f"/WriterConfig/{name}", "is not a WriterConfig field")
        transformation = config.get("Transformation", transformation)
        output_type = config.get("OutputType", output_type)
        if transformation not in ("NONE", "COMPACT", "FLATTEN"):
            raise InvalidSpec("/WriterConfig/Transformation", "must be NONE, COMPACT or FLATTEN")
        if output_type not in ("JSON", "JSONL"):
            raise InvalidSpec("/WriterConfig/OutputType", "must be JSON or JSONL")
    if "Resource" not in spec:
        if "Parameters" in spec or "Arguments" in spec:
            raise InvalidSpec("/Resource", "is required with Parameters or Arguments")
        return ResultWriterSpec(transformation=transformation, output_type=output_type)  # type: ignore[arg-type]
    if spec["Resource"] != PUT_OBJECT:
        raise InvalidSpec("/Resource", f"must be {PUT_OBJECT}")
    if "Parameters" in spec and "Arguments" in spec:
        raise InvalidSpec("/Arguments", "Parameters and Arguments cannot both be set")
    field = "Arguments" if "Arguments" in spec else "Parameters"
    params = spec.get(field)
    if not isinstance(params, Mapping):
        raise InvalidSpec(f"/{field}", "must be an object with Bucket and Prefix")
    bucket, prefix = params.get("Bucket"), params.get("Prefix", "")
    if not isinstance(bucket, str) or not bucket:
        raise InvalidSpec(f"/{field}/Bucket", "must be a non-empty string")
    if not isinstance(prefix, str):
        raise InvalidSpec(f"/{field}/Prefix", "must be a string")
    return ResultWriterSpec(
        bucket=bucket,
        prefix=prefix,
        transformation=transformation,  # type: ignore[arg-type]
        output_type=output_type,  # type: ignore[arg-type]
    )


def transform_result(result: Mapping[str, JSON], transformation: Transformation) -> list[JSON]:
    """WriterConfig: Transformation: what one child's result contributes to the results.

    ``NONE`` keeps the description; ``COMPACT`` keeps a succeeded child's parsed ``Output``;
    ``FLATTEN`` also splices an array output into the results. A child that did not succeed is
    kept unchanged whatever the transformation.
    """
    if transformation == "NONE" or result.get("Status") != "SUCCEEDED":
        return [dict(result)]
    output = result.get("Output")
    value = _DECODER.decode(output) if isinstance(output, str) else output
    if transformation == "FLATTEN" and isinstance(value, list):
        return list(value)
    return [value]


def map_run_id(map_run_arn: str) -> str:
    """The id at the end of a Map Run ARN (``...:mapRun:<machine>/<label>:<id>``)."""
    return map_run_arn.rsplit(":", 1)[-1]


def result_folder(prefix: str, map_run_arn: str) -> str:
    """``<Prefix>/<map run id>/``: where a Map Run's result files and manifest go."""
    head = prefix.rstrip("/")
    return f"{head}/{map_run_id(map_run_arn)}/" if head else f"{map_run_id(map_run_arn)}/"


@final
class _OpenFile:
    """The result file being filled: a spooled buffer plus what the manifest needs."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.buffer: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        self.size = 0
        self.count = 0


@final
class ResultWriter:
    """Write a Map Run's results incrementally: :meth:`add` each, then :meth:`close` once."""

    def __init__(
        self,
        spec: ResultWriterSpec,
        store: ObjectStore,
        map_run_arn: str,
        *,
        max_file_bytes: int = MAX_RESULT_FILE_BYTES,
    ) -> None:
        if spec.bucket is None:
            raise InvalidSpec("/Resource", "this ResultWriter does not export results")
        self._spec = spec
        self._bucket = spec.bucket
        self._store = store
        self._map_run_arn = map_run_arn
        self._folder = result_folder(spec.prefix, map_run_arn)
        self._max = max_file_bytes
        self._open: dict[Category, _OpenFile] = {}
        self._written: dict[Category, list[dict[str, JSON]]] = {c: [] for c in CATEGORIES}
        self._closed = False

    async def add(self, result: Mapping[str, JSON]) -> None:
        """Append one child execution's description to its status's file."""
        if self._closed:
            raise RuntimeError("the ResultWriter is closed")
        status = result.get("Status")
        category = STATUS_CATEGORY.get(status) if isinstance(status, str) else None
        if category is None:
            raise ValueError(f"a result needs an execution Status, got {status!r}")
        try:
            entries = transform_result(result, self._spec.transformation)
        except msgspec.DecodeError as exc:
            raise ResultWriterFailed(f"the Output of a child is not JSON: {exc}") from None
        for entry in entries:
            await self._append(category, _ENCODER.encode(entry))

    async def _append(self, category: Category, data: bytes) -> None:
        jsonl = self._spec.output_type == "JSONL"
        current = self._open.get(category)
        # JSON: "[" + entries joined by "," + "]"; JSONL: each entry then "\n".
        extra = len(data) + 1
        if current is not None and current.count and current.size + extra + 1 > self._max:
            await self._flush(category)
            current = None
        if current is None:
            index = len(self._written[category])
            current = self._open[category] = _OpenFile(f"{self._folder}{category}_{index}.json")
        piece = data + b"\n" if jsonl else (b"," if current.count else b"[") + data
        current.buffer.write(piece)
        current.size += len(piece)
        current.count += 1

    async def _flush(self, category: Category) -> None:
        current = self._open.pop(category)
        try:
            if self._spec.output_type == "JSON":
                current.buffer.write(b"]")
                current.size += 1
            current.buffer.seek(0)
            size = await self._store.upload(self._bucket, current.key, _chunks(current.buffer))
        except ObjectStoreError as exc:
            raise ResultWriterFailed(exc.describe()) from None
        finally:
            current.buffer.close()
        self._written[category].append({"Key": current.key, "Size": size})

    async def close(self) -> dict[str, JSON]:
        """Write the open files and ``manifest.json``; return the Map state's output."""
        if self._closed:
            raise RuntimeError("the ResultWriter is closed")
        self._closed = True
        for category in CATEGORIES:
            if category in self._open:
                await self._flush(category)
        manifest_key = f"{self._folder}manifest.json"
        manifest = {
            "DestinationBucket": self._bucket,
            "MapRunArn": self._map_run_arn,
            "ResultFiles": {category: self._written[category] for category in CATEGORIES},
        }
        try:
            await self._store.put(self._bucket, manifest_key, _ENCODER.encode(manifest))
        except ObjectStoreError as exc:
            raise ResultWriterFailed(exc.describe()) from None
        return {
            "MapRunArn": self._map_run_arn,
            "ResultWriterDetails": {"Bucket": self._bucket, "Key": manifest_key},
        }

    async def aclose(self) -> None:
        """Drop buffered results without writing them (the Map Run was abandoned)."""
        self._closed = True
        for current in self._open.values():
            current.buffer.close()
        self._open.clear()


async def _chunks(buffer: IO[bytes]) -> AsyncIterator[bytes]:
    while True:
        chunk = await anyio.to_thread.run_sync(buffer.read, CHUNK_SIZE)
        if not chunk:
            return
        yield chunk
