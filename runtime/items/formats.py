"""Incremental splitters for the ItemReader's file formats: pure, sync, bounded memory.

Each splitter is fed the file chunk by chunk (``feed``) and told when it ends (``finish``); it
returns the complete records found so far and keeps only the unfinished tail. None of them
holds more than one record plus one chunk, whatever the file's size:

* :class:`JsonArraySplitter`: the raw text of each element of a top-level JSON array, found
  by a scan that tracks strings and nesting depth (elements are decoded by the caller, so an
  element skipped on resume is never decoded).
* :class:`LineSplitter`: the lines of a JSON Lines file.
* :class:`CsvSplitter`: the rows of a delimited text file as lists of strings, parsed with the
  standard :mod:`csv` module one complete record at a time (a quoted field may span lines).

They raise :class:`FormatError` with a message saying what is wrong and where; the reader turns
it into ``States.ItemReaderFailed``. Imports only the standard library.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import deque
from collections.abc import Iterator
from typing import Final, final

_OUTSIDE: Final = re.compile(rb'[^"\[\]{},]*')
_STRING_BODY: Final = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_WHITESPACE: Final = re.compile(rb"[ \t\r\n]*")
_BOM: Final = b"\xef\xbb\xbf"
_QUOTE, _BACKSLASH, _COMMA = ord('"'), ord("\\"), ord(",")
_OPENERS: Final = frozenset(b"[{")
_CLOSERS: Final = frozenset(b"]}")


@final
class FormatError(ValueError):
    """The file is not in the format its ``InputType`` says."""


@final
class JsonArraySplitter:
    """Split a JSON text holding one array into the raw bytes of its elements."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0  # scan position in _buf
        self._start = 0  # where the element being scanned starts
        self._started = False  # the opening "[" was seen
        self._done = False  # the closing "]" was seen
        self._in_string = False
        self._depth = 0  # nesting inside the current element
        self._element_seen = False  # the current element has a non-blank byte
        self._count = 0  # elements emitted
        self._offset = 0  # bytes dropped from the front of _buf

    def feed(self, data: bytes) -> list[bytes]:
        """Add a chunk; return the elements it completed."""
        self._buf += data
        out: list[bytes] = []
        if not self._started and not self._open():
            return out
        if self._done:
            self._check_trailing()
        else:
            self._scan(out)
        self._compact()
        return out

    def finish(self) -> list[bytes]:
        """End of file: raise :class:`FormatError` unless the array was closed."""
        if not self._started:
            if _WHITESPACE.fullmatch(self._buf.removeprefix(_BOM)):
                raise FormatError("the file is empty: expected a JSON array")
            raise FormatError("Attempting to map over non-iterable node.")
        if not self._done:
            raise FormatError(
                f"unexpected end of file inside the JSON array after {self._count} items"
            )
        return []

    def _open(self) -> bool:
        buf = self._buf
        if len(buf) < len(_BOM) and _BOM.startswith(bytes(buf)):
            return False  # maybe the start of a byte order mark
        pos = len(_BOM) if buf.startswith(_BOM) else 0
        pos = _WHITESPACE.match(buf, pos).end()  # type: ignore[union-attr]
        if pos == len(buf):
            return False
        if buf[pos] != ord("["):
            raise FormatError("Attempting to map over non-iterable node.")
        self._started = True
        self._pos = self._start = pos + 1
        return True

    def _scan(self, out: list[bytes]) -> None:
        buf = self._buf
        pos = self._pos
        end = len(buf)
        while pos < end:
            if self._in_string:
                pos = _STRING_BODY.match(buf, pos).end()  # type: ignore[union-attr]
                if pos >= end or buf[pos] == _BACKSLASH:
                    break  # the string (or an escape) continues in the next chunk
                pos += 1
                self._in_string = False
                continue
            stop = _OUTSIDE.match(buf, pos).end()  # type: ignore[union-attr]
            if stop > pos and not self._element_seen and buf[pos:stop].strip():
                self._element_seen = True
            pos = stop
            if pos >= end:
                break
            char = buf[pos]
            if char == _QUOTE:
                self._in_string = True
                self._element_seen = True
                pos += 1
            elif char in _OPENERS:
                self._depth += 1
                self._element_seen = True
                pos += 1
            elif char in _CLOSERS and self._depth > 0:
                self._depth -= 1
                pos += 1
            elif char == _COMMA and self._depth > 0:
                pos += 1
            else:  # "," or "]" at depth 0: the element ends here
                closing = char != _COMMA
                if closing and char != ord("]"):
                    raise FormatError(
                        f"unexpected '}}' in the JSON array after {self._count} items"
                    )
                if self._element_seen:
                    out.append(bytes(buf[self._start : pos]))
                    self._count += 1
                elif not closing or self._count > 0:
                    raise FormatError(f"missing value in the JSON array after {self._count} items")
                self._element_seen = False
                pos += 1
                self._start = pos
                if closing:
                    self._done = True
                    self._pos = pos
                    self._check_trailing()
                    return
        self._pos = pos

    def _check_trailing(self) -> None:
        rest = self._buf[self._pos :]
        if rest.strip(b" \t\r\n"):
            raise FormatError("unexpected data after the end of the JSON array")
        self._pos = len(self._buf)
        self._start = self._pos

    def _compact(self) -> None:
        cut = min(self._start, self._pos)
        if cut > CHUNK_COMPACT:
            del self._buf[:cut]
            self._pos -= cut
            self._start -= cut
            self._offset += cut


#: Drop consumed bytes from the front of a buffer once this many have piled up.
CHUNK_COMPACT: Final = 64 * 1024


@final
class LineSplitter:
    """Split bytes into lines (without their ``\\n``/``\\r\\n``), keeping the unfinished tail."""

    def __init__(self) -> None:
        self._tail = b""

    def feed(self, data: bytes) -> list[bytes]:
        """Add a chunk; return the lines it completed."""
        lines = (self._tail + data).split(b"\n")
        self._tail = lines.pop()
        return [line.removesuffix(b"\r") for line in lines]

    def finish(self) -> list[bytes]:
        """End of file: the last line, if it had no newline."""
        tail, self._tail = self._tail, b""
        return [tail.removesuffix(b"\r")] if tail else []


@final
class _Feeder:
    """The line iterator under a persistent :func:`csv.reader`: lines are pushed, then pulled."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if not self.lines:
            raise StopIteration
        return self.lines.popleft()


@final
class CsvSplitter:
    """Split delimited text into rows (lists of strings), a complete record at a time.

    CSV parsing follows Step Functions' rules for ``InputType: CSV``: the configured delimiter
    separates fields and a newline separates records; double quotes enclose fields that hold
    delimiters or newlines; a doubled quote or a backslash escapes a character. A record is
    handed to :mod:`csv` only once its quotes balance, so a quoted newline never splits a row.
    Blank lines are skipped.
    """

    def __init__(self, delimiter: str) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._tail = ""
        self._pending: list[str] = []  # lines of a record whose quotes do not balance yet
        self._odd = False  # the pending lines hold an odd number of quotes
        self._feeder = _Feeder()
        self._reader = csv.reader(
            self._feeder,
            delimiter=delimiter,
            quotechar='"',
            doublequote=True,
            escapechar="\\",
            strict=False,
        )
        self.rows = 0  # records parsed so far (blank lines not counted)

    def feed(self, data: bytes) -> list[list[str]]:
        """Add a chunk; return the rows it completed."""
        try:
            text = self._tail + self._decoder.decode(data)
        except UnicodeDecodeError as exc:
            raise FormatError(f"the file is not UTF-8 text after {self.rows} rows: {exc}") from None
        lines = text.split("\n")
        self._tail = lines.pop()
        if not self._odd and not self._pending and '"' not in text:
            # No quote anywhere: every line is a record, parsed in one go (the row-by-row
            # path was a third of a million-row Map Run's CPU).
            return self._parse([line + "\n" for line in lines])
        return self._records(lines)

    def finish(self) -> list[list[str]]:
        """End of file: the last record (an unclosed quote runs to the end of the file)."""
        try:
            rest = self._tail + self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise FormatError(f"the file is not UTF-8 text after {self.rows} rows: {exc}") from None
        self._tail = ""
        rows = self._records([rest] if rest else [])
        if self._pending:
            rows.extend(self._parse(self._pending))
            self._pending = []
        return rows

    def _records(self, lines: list[str]) -> list[list[str]]:
        rows: list[list[str]] = []
        for line in lines:
            quotes = line.count('"')
            if quotes:
                quotes -= line.count('\\"')
            self._pending.append(line + "\n")
            if quotes % 2:
                self._odd = not self._odd
            if not self._odd:
                rows.extend(self._parse(self._pending))
                self._pending = []
        return rows

    def _parse(self, lines: list[str]) -> list[list[str]]:
        self._feeder.lines.extend(lines)
        rows: list[list[str]] = []
        try:
            for row in self._reader:
                if row:
                    rows.append(row)
                    self.rows += 1
        except csv.Error as exc:
            raise FormatError(f"malformed CSV after {self.rows} rows: {exc}") from None
        return rows
