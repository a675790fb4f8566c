"""ItemReader (Map): the items of a Distributed Map, read as a stream from an object store.

:func:`parse_item_reader` checks a resolved ``ItemReader`` object (after the core evaluated
its ``Parameters``/``Arguments``) and returns an :class:`ItemReaderSpec`; :func:`read_items`
yields the items in order from a given index, so a restarted Map Run resumes where it was.

What each source yields, as Step Functions hands items to child executions:

* ``s3:getObject`` + ``InputType: JSON``: the elements of the file's top-level array (a file
  that is not an array fails with "Attempting to map over non-iterable node.").
* ``JSONL``: one JSON value per non-blank line.
* ``CSV``: one object per row, keyed by the header (``CSVHeaderLocation`` ``FIRST_ROW`` or
  ``GIVEN`` with ``CSVHeaders``), every value a string; a row with fewer fields than the header
  gets empty strings, extra fields are dropped; duplicate headers fail the reader.
* ``MANIFEST``: an S3 Inventory ``manifest.json``; the rows of its (gzip) CSV files, keyed by
  its ``fileSchema``.
* ``s3:listObjectsV2``: one object per key under ``Prefix``: ``Etag``, ``Key``,
  ``LastModified`` (epoch seconds), ``Size`` and ``StorageClass``.

``ReaderConfig.MaxItems`` caps the items counted from the start of the data set. Every failure,
before the first item or half way, raises :class:`ItemReaderFailed`. Nothing holds the file:
memory is one chunk plus one record.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final, Literal, final

import msgspec

from runtime.items.errors import InvalidSpec, ItemReaderFailed
from runtime.items.formats import CsvSplitter, FormatError, JsonArraySplitter, LineSplitter
from runtime.items.objects import ObjectStore, ObjectStoreError

JSON = Any

GET_OBJECT: Final = "arn:aws:states:::s3:getObject"
LIST_OBJECTS_V2: Final = "arn:aws:states:::s3:listObjectsV2"

#: ``CSVDelimiter`` values and the character each names.
CSV_DELIMITERS: Final[dict[str, str]] = {
    "COMMA": ",",
    "PIPE": "|",
    "SEMICOLON": ";",
    "SPACE": " ",
    "TAB": "\t",
}
#: The largest ``MaxItems`` Step Functions accepts.
MAX_ITEMS_LIMIT: Final = 100_000_000
#: A manifest is read whole; it lists files, it is not the data set.
MAX_MANIFEST_BYTES: Final = 16 * 1024 * 1024

InputType = Literal["JSON", "JSONL", "CSV", "MANIFEST"]
_INPUT_TYPES: Final = ("JSON", "JSONL", "CSV", "MANIFEST")
_READER_CONFIG_FIELDS: Final = frozenset(
    {"InputType", "CSVHeaderLocation", "CSVHeaders", "CSVDelimiter", "MaxItems", "ManifestType"}
)
_DECODER: Final = msgspec.json.Decoder()


@final
class ReaderConfig(msgspec.Struct, frozen=True, kw_only=True):
    """``ItemReader.ReaderConfig``, validated."""

    input_type: InputType | None = None
    csv_header_location: Literal["FIRST_ROW", "GIVEN"] | None = None
    csv_headers: tuple[str, ...] | None = None
    csv_delimiter: str = "COMMA"
    max_items: int | None = None


@final
class ItemReaderSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A resolved ``ItemReader``: where the items are and how to read them."""

    resource: str
    bucket: str
    key: str | None = None
    prefix: str = ""
    reader_config: ReaderConfig = ReaderConfig()


@asynccontextmanager
async def _closing(chunks: AsyncIterator[Any]) -> AsyncGenerator[AsyncIterator[Any], None]:
    """Close an inner stream (and the file under it) when its reader stops early or fails."""
    try:
        yield chunks
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def _string(value: object, pointer: str) -> str:
    if not isinstance(value, str):
        raise InvalidSpec(pointer, "must be a string")
    return value


def _reader_config(raw: object, resource: str) -> ReaderConfig:
    """ItemReader: ReaderConfig: InputType, CSV header and delimiter options, MaxItems."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidSpec("/ReaderConfig", "must be an object")
    for name in raw:
        if name not in _READER_CONFIG_FIELDS:
            raise InvalidSpec(f"/ReaderConfig/{name}", "is not a ReaderConfig field")
    input_type = raw.get("InputType")
    if resource == GET_OBJECT:
        if input_type not in _INPUT_TYPES:
            raise InvalidSpec(
                "/ReaderConfig/InputType", f"must be one of {', '.join(_INPUT_TYPES)}"
            )
    elif input_type is not None:
        raise InvalidSpec("/ReaderConfig/InputType", "is not allowed with s3:listObjectsV2")
    if raw.get("ManifestType", "S3_INVENTORY") != "S3_INVENTORY" or (
        "ManifestType" in raw and input_type != "MANIFEST"
    ):
        raise InvalidSpec(
            "/ReaderConfig/ManifestType", "only S3_INVENTORY with MANIFEST is supported"
        )
    location = raw.get("CSVHeaderLocation")
    headers = raw.get("CSVHeaders")
    delimiter = raw.get("CSVDelimiter", "COMMA")
    if input_type == "CSV":
        if location not in ("FIRST_ROW", "GIVEN"):
            raise InvalidSpec("/ReaderConfig/CSVHeaderLocation", "must be FIRST_ROW or GIVEN")
        if location == "GIVEN":
            if not (
                isinstance(headers, list) and headers and all(isinstance(h, str) for h in headers)
            ):
                raise InvalidSpec("/ReaderConfig/CSVHeaders", "must be a non-empty string array")
        elif headers is not None:
            raise InvalidSpec("/ReaderConfig/CSVHeaders", "needs CSVHeaderLocation GIVEN")
        if delimiter not in CSV_DELIMITERS:
            raise InvalidSpec(
                "/ReaderConfig/CSVDelimiter", f"must be one of {', '.join(CSV_DELIMITERS)}"
            )
    else:
        for name in ("CSVHeaderLocation", "CSVHeaders", "CSVDelimiter"):
            if name in raw:
                raise InvalidSpec(f"/ReaderConfig/{name}", "needs InputType CSV")
    max_items = raw.get("MaxItems")
    if max_items is not None and (
        isinstance(max_items, bool)
        or not isinstance(max_items, int)
        or not 0 < max_items <= MAX_ITEMS_LIMIT
    ):
        raise InvalidSpec(
            "/ReaderConfig/MaxItems", f"must be an integer from 1 to {MAX_ITEMS_LIMIT}"
        )
    return ReaderConfig(
        input_type=input_type,
        csv_header_location=location,
        csv_headers=tuple(headers) if location == "GIVEN" and isinstance(headers, list) else None,
        csv_delimiter=delimiter,
        max_items=max_items,
    )


def parse_item_reader(spec: Mapping[str, JSON]) -> ItemReaderSpec:
    """Validate a resolved ``ItemReader`` object; raise :class:`InvalidSpec` naming the field."""
    resource = spec.get("Resource")
    if resource not in (GET_OBJECT, LIST_OBJECTS_V2):
        raise InvalidSpec("/Resource", f"must be {GET_OBJECT} or {LIST_OBJECTS_V2}")
    if "Parameters" in spec and "Arguments" in spec:
        raise InvalidSpec("/Arguments", "Parameters and Arguments cannot both be set")
    field = "Arguments" if "Arguments" in spec else "Parameters"
    params = spec.get(field)
    if not isinstance(params, Mapping):
        raise InvalidSpec(f"/{field}", "must be an object with Bucket")
    bucket = _string(params.get("Bucket"), f"/{field}/Bucket")
    if resource == GET_OBJECT:
        key = _string(params.get("Key"), f"/{field}/Key")
        prefix = ""
    else:
        if "Key" in params:
            raise InvalidSpec(f"/{field}/Key", "is not allowed with s3:listObjectsV2")
        key = None
        prefix = _string(params.get("Prefix", ""), f"/{field}/Prefix")
    return ItemReaderSpec(
        resource=resource,
        bucket=bucket,
        key=key,
        prefix=prefix,
        reader_config=_reader_config(spec.get("ReaderConfig"), resource),
    )


async def _gunzip(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Pass plain bytes through; decompress gzip (by its magic number), member by member."""
    async with _closing(chunks):
        async for piece in _gunzip_open(chunks):
            yield piece


async def _gunzip_open(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    first = b""
    async for chunk in chunks:
        first += chunk
        if len(first) >= 2:
            break
    if not first.startswith(b"\x1f\x8b"):
        if first:
            yield first
        async for chunk in chunks:
            yield chunk
        return
    inflater = zlib.decompressobj(wbits=31)
    pending = first

    def drain(data: bytes) -> list[bytes]:
        nonlocal inflater
        out: list[bytes] = []
        while data:
            # max_length bounds each piece: a small compressed chunk can inflate hugely.
            piece = inflater.decompress(data, 1024 * 1024)
            if piece:
                out.append(piece)
            if inflater.eof:
                data = inflater.unused_data
                inflater = zlib.decompressobj(wbits=31)
            else:
                data = inflater.unconsumed_tail
        return out

    try:
        for piece in drain(pending):
            yield piece
        async for chunk in chunks:
            for piece in drain(chunk):
                yield piece
    except zlib.error as exc:
        raise FormatError(f"the gzip stream is corrupt: {exc}") from None


async def _json_elements(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    splitter = JsonArraySplitter()
    async with _closing(chunks):
        async for chunk in chunks:
            for element in splitter.feed(chunk):
                yield element
    for element in splitter.finish():
        yield element


async def _json_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    splitter = LineSplitter()
    async with _closing(chunks):
        async for chunk in chunks:
            for line in splitter.feed(chunk):
                if line.strip():
                    yield line
    for line in splitter.finish():
        if line.strip():
            yield line


async def _csv_rows(
    chunks: AsyncIterator[bytes], delimiter: str, headers: tuple[str, ...] | None
) -> AsyncIterator[dict[str, str]]:
    """Rows as header -> value objects; ``headers=None`` takes them from the first row."""
    splitter = CsvSplitter(delimiter)
    columns: tuple[str, ...] | None = headers
    if columns is not None:
        _check_headers(columns)

    def items(rows: list[list[str]]) -> list[dict[str, str]]:
        nonlocal columns
        out: list[dict[str, str]] = []
        for row in rows:
            if columns is None:
                columns = tuple(row)
                _check_headers(columns)
                continue
            width = len(columns)
            if len(row) < width:
                row = row + [""] * (width - len(row))
            out.append(dict(zip(columns, row, strict=False)))
        return out

    async with _closing(chunks):
        async for chunk in chunks:
            for item in items(splitter.feed(chunk)):
                yield item
    for item in items(splitter.finish()):
        yield item


def _check_headers(headers: tuple[str, ...]) -> None:
    if len(set(headers)) < len(headers):
        raise FormatError("CSV headers cannot contain duplicates.")


async def _manifest_rows(store: ObjectStore, bucket: str, key: str) -> AsyncIterator[JSON]:
    """S3 Inventory: read manifest.json, then the rows of each CSV file it lists."""
    raw = bytearray()
    async with _closing(store.open(bucket, key)) as chunks:
        async for chunk in chunks:
            raw += chunk
            if len(raw) > MAX_MANIFEST_BYTES:
                raise FormatError(f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = _DECODER.decode(raw)
    except msgspec.DecodeError as exc:
        raise FormatError(f"the manifest is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise FormatError("the manifest is not a JSON object")
    if manifest.get("fileFormat") != "CSV":
        raise FormatError(f"unsupported inventory fileFormat {manifest.get('fileFormat')!r}")
    schema = manifest.get("fileSchema")
    files = manifest.get("files")
    destination = manifest.get("destinationBucket", f"arn:aws:s3:::{bucket}")
    if (
        not isinstance(schema, str)
        or not isinstance(files, list)
        or not isinstance(destination, str)
    ):
        raise FormatError("the manifest needs fileSchema, files and destinationBucket")
    headers = tuple(part.strip() for part in schema.split(","))
    data_bucket = destination.removeprefix("arn:aws:s3:::")
    for entry in files:
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise FormatError("a manifest files entry has no key")
        async for row in _csv_rows(_gunzip(store.open(data_bucket, entry["key"])), ",", headers):
            yield row


async def _listed_objects(store: ObjectStore, spec: ItemReaderSpec) -> AsyncIterator[JSON]:
    listing = store.list_objects(spec.bucket, spec.prefix)
    async with _closing(listing):
        async for info in listing:
            yield {
                "Etag": info.etag,
                "Key": info.key,
                "LastModified": int(info.last_modified.timestamp()),
                "Size": info.size,
                "StorageClass": info.storage_class,
            }


def _records(spec: ItemReaderSpec, store: ObjectStore) -> AsyncIterator[JSON]:
    """The data set's records: raw ``bytes`` still to decode as JSON, or finished items."""
    config = spec.reader_config
    if spec.resource == LIST_OBJECTS_V2:
        return _listed_objects(store, spec)
    assert spec.key is not None  # parse_item_reader requires Key for getObject
    match config.input_type:
        case "JSON":
            return _json_elements(store.open(spec.bucket, spec.key))
        case "JSONL":
            return _json_lines(store.open(spec.bucket, spec.key))
        case "CSV":
            return _csv_rows(
                store.open(spec.bucket, spec.key),
                CSV_DELIMITERS[config.csv_delimiter],
                config.csv_headers,
            )
        case "MANIFEST":
            return _manifest_rows(store, spec.bucket, spec.key)
        case None:
            raise InvalidSpec("/ReaderConfig/InputType", "is required with s3:getObject")


async def read_items(
    spec: ItemReaderSpec, store: ObjectStore, *, start: int = 0
) -> AsyncIterator[JSON]:
    """Yield the items of the data set from index ``start``, stopping at ``MaxItems``.

    Raises:
        ItemReaderFailed: the object or bucket is missing or unreadable, or the file is not in
            its InputType's format: before the first item or after some were yielded.
    """
    limit = spec.reader_config.max_items
    if start < 0:
        raise ValueError("start must be >= 0")
    if limit is not None and start >= limit:
        return
    index = 0
    where = f"s3://{spec.bucket}/{spec.key if spec.key is not None else spec.prefix}"
    records = _records(spec, store)
    try:
        async for record in records:
            if index >= start:
                if isinstance(record, bytes):
                    try:
                        record = _DECODER.decode(record)
                    except msgspec.DecodeError as exc:
                        raise ItemReaderFailed(
                            f"Item {index} of {where} is not valid JSON: {exc}"
                        ) from None
                yield record
            index += 1
            if limit is not None and index >= limit:
                return
    except ObjectStoreError as exc:
        raise ItemReaderFailed(exc.describe()) from None
    except FormatError as exc:
        raise ItemReaderFailed(str(exc)) from None
    finally:
        aclose = getattr(records, "aclose", None)
        if aclose is not None:
            await aclose()
