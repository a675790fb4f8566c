"""Distributed Map data: ItemReader (items in) and ResultWriter (results out), issue 14.

* :mod:`runtime.items.objects`: the :class:`ObjectStore` port (GetObject, ListObjectsV2,
  PutObject as async streams) and :class:`LocalObjectStore` (a folder per bucket).
* :mod:`runtime.items.s3`: :class:`S3ObjectStore`, the same port over boto3 (imported lazily).
* :mod:`runtime.items.formats`: pure incremental splitters for JSON arrays, JSON Lines and CSV.
* :mod:`runtime.items.reader`: ``ItemReader`` specs and :func:`read_items`, a resumable stream.
* :mod:`runtime.items.writer`: ``ResultWriter`` specs and :class:`ResultWriter`, which writes
  SUCCEEDED/FAILED/PENDING files and ``manifest.json`` in AWS's layout.

Failures are ``States.ItemReaderFailed`` / ``States.ResultWriterFailed``
(:class:`ItemReaderFailed`, :class:`ResultWriterFailed`); a spec that can never work is
:class:`InvalidSpec`. This package imports the standard library, msgspec, anyio and
``runtime.errors``; the core never imports it (it does I/O), the engine does.
"""

from __future__ import annotations

from runtime.items.errors import InvalidSpec, ItemReaderFailed, ResultWriterFailed
from runtime.items.objects import (
    LocalObjectStore,
    NoSuchBucket,
    NoSuchKey,
    ObjectInfo,
    ObjectStore,
    ObjectStoreError,
)
from runtime.items.reader import ItemReaderSpec, ReaderConfig, parse_item_reader, read_items
from runtime.items.s3 import S3ObjectStore
from runtime.items.writer import (
    ResultWriter,
    ResultWriterSpec,
    parse_result_writer,
    transform_result,
)

__all__ = [
    "InvalidSpec",
    "ItemReaderFailed",
    "ItemReaderSpec",
    "LocalObjectStore",
    "NoSuchBucket",
    "NoSuchKey",
    "ObjectInfo",
    "ObjectStore",
    "ObjectStoreError",
    "ReaderConfig",
    "ResultWriter",
    "ResultWriterFailed",
    "ResultWriterSpec",
    "S3ObjectStore",
    "parse_item_reader",
    "parse_result_writer",
    "read_items",
    "transform_result",
]
