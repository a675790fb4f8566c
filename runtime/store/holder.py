"""One writer per SQLite file (issue 12, part 6): the ``Runtime`` running a SQLite store holds an
OS advisory lock, and a second runtime on the same file is refused with :class:`StoreLocked`.

Decision: **refuse, not standby.** A second runtime on a held file raises at once with a message
naming the holder (pid, host, since when); it does not wait to take over. Two runtimes never run
one file at once, so no handler call is made twice by two of them. Scaling out is PostgreSQL's
job (leases and fencing); a SQLite file has one runtime.

How: ``fcntl.flock(LOCK_EX | LOCK_NB)`` on a sidecar file ``<database>.lock`` beside the
database (the database's real path, so a symlink or a relative path names the same lock). After
the lock is taken the holder writes one JSON line into it: ``{"pid", "host", "since"}``
(``since`` an ISO 8601 UTC time); a refused runtime reads it for its message. The kernel releases
the lock when its file description closes, which it does when the process dies, SIGKILL
included: there is no stale lock to clean up, and the sidecar file is never deleted (deleting it
would let a newcomer lock a fresh inode while an old holder still holds the unlinked one).

Invariants:

* ``flock`` locks belong to an open file description, so two opens in one process conflict as
  two processes do: a second ``Runtime`` on the same file in the same process is refused too.
  The descriptor is close-on-exec (Python's default), so a child started with ``exec`` does not
  inherit the lock; a bare ``os.fork`` shares it, as every descriptor is shared.
* The lock is the runtime's, not the store's: ``SqliteStore.open`` takes no lock, so the CLI
  commands that only record requests (``statemill start|stop|send-task-*``) and read-only
  commands work while a runtime holds the file, and the holder applies their requests.
* A new sidecar gets the database's mode if the database exists (as SQLite does for its
  ``-wal``/``-shm`` files), else ``0600``; a symlink or a non-regular file at the sidecar's path
  is refused, never followed or truncated.
* ``flock`` is advisory and local: a process that opens the file without this lock is not
  stopped, and on a network file system (NFS) the kernel may emulate it with byte-range locks
  that do not conflict within one process. Use local disks for SQLite stores.

Imports only the standard library and ``runtime.errors``. POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from runtime.errors import StoreLocked

__all__ = ["LOCK_SUFFIX", "hold_writer", "lock_path"]

#: The sidecar file's name is the database's with this suffix.
LOCK_SUFFIX: Final = ".lock"

#: A new sidecar's mode when the database does not exist yet: read and write for its owner.
LOCK_MODE: Final = 0o600

#: Paths that name no file (SQLite's private in-memory or temporary databases): nothing to hold.
_NO_FILE: Final = frozenset({"", ":memory:"})

#: How long a refused runtime waits for a holder that has just taken the lock to write its line.
_HOLDER_LINE_WAIT: Final = 0.2


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The sidecar lock file of the SQLite database at ``path`` (its real path + ``.lock``)."""
    return Path(os.path.realpath(path) + LOCK_SUFFIX)


@contextlib.contextmanager
def hold_writer(path: str | os.PathLike[str]) -> Iterator[Path | None]:
    """Hold the one-writer lock of the SQLite database at ``path`` for the ``with`` block.

    Yields the sidecar's path, or None for ``":memory:"`` and ``""`` (no file to share).

    Raises:
        StoreLocked: another runtime holds the file; the message names it (pid, host, since).
        OSError: the sidecar cannot be opened (no such folder, no permission), or a symlink or
            a non-regular file stands at its path.
    """
    if os.fspath(path) in _NO_FILE:
        yield None
        return
    sidecar = lock_path(path)
    fd = _open_sidecar(sidecar, Path(os.path.realpath(path)))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreLocked(
                f"store file {os.fspath(path)!r} is held by another runtime: {_holder(fd)}"
            ) from None
        _write_line(fd, _holder_line())
        try:
            yield sidecar
        finally:
            # Cleared before the lock goes, so a stale line is only ever left by a dead holder.
            _write_line(fd, b"")
    finally:
        os.close(fd)  # releases the lock


def _open_sidecar(sidecar: Path, database: Path) -> int:
    """Open (creating if needed) the sidecar for reading and writing, never through a symlink.

    ``O_EXCL`` makes the check and the creation one step; ``fchmod`` undoes the umask.
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        # Owner read/write whatever the database's mode, so the owner can always lock it.
        mode = stat.S_IMODE(os.stat(database).st_mode) | LOCK_MODE
    except FileNotFoundError:
        mode = LOCK_MODE
    try:
        fd = os.open(sidecar, flags | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        fd = os.open(sidecar, flags)
    else:
        os.fchmod(fd, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"store lock {os.fspath(sidecar)!r} is not a regular file")
    return fd


def _holder_line() -> bytes:
    """This process as the holder: one JSON line with ``pid``, ``host`` and ``since``."""
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": since}
    return json.dumps(holder).encode() + b"\n"


def _write_line(fd: int, line: bytes) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, line, 0)


def _holder(fd: int) -> str:
    """The holder as its line names it: ``pid 123 on host h since 2026-12-01T10:00:00Z``.

    A holder that has just taken the lock may not have written its line yet: wait briefly.
    """
    deadline = time.monotonic() + _HOLDER_LINE_WAIT
    while True:
        text = os.pread(fd, 4096, 0)
        try:
            holder = json.loads(text)
            return f"pid {holder['pid']} on host {holder['host']} since {holder['since']}"
        except (ValueError, TypeError, KeyError):
            if time.monotonic() >= deadline:
                return "holder not recorded (it may be starting)"
        time.sleep(0.01)
