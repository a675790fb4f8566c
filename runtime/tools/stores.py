"""Opening the store a command names: ``memory``, a SQLite file, or a PostgreSQL URL.

Every ``statemill`` command that takes ``--store`` opens it with :func:`open_store`, so each
accepts the same forms and refuses the same mistakes the same way (issue 16): a
:class:`StoreUnavailable` whose message is one line saying what is wrong and what to do; the
command line prints it and exits with its own code. What is refused:

* a SQLite path that does not exist, for a command that only reads (``create=False``): a typo
  must not silently create a new, empty store. Commands that run work or write definitions
  (``run``, ``worker``, ``serve``, ``import``, ``start --definition``) create it;
* a SQLite path in a folder that does not exist, or that is a folder;
* a file that is not a SQLite database (checked by its header before SQLite touches it), or
  that SQLite finds damaged when it opens or reads it;
* a store whose schema is newer than this code (the store's ``migrate`` says so);
* a SQLite file another process holds locked past the store's busy timeout;
* a PostgreSQL server that cannot be reached (the message names host:port), refuses the login
  or has no such database.

A PostgreSQL URL may carry ``?schema=NAME``: the tables live in that PostgreSQL schema (created
if missing; ``PostgresStore.open(dsn, schema=...)``); the other query parameters are asyncpg's.
Messages never show a URL's password.

The commands that only read (``describe``, ``list``, ``requests``, ``machines list|describe``)
use :func:`open_reads` instead: the same checks and messages, then a SQLite file of this
code's schema is read without an event loop (:class:`runtime.store.sqlite_read.SqliteReader`:
no asyncio, anyio or aiosqlite to import), any other store through :func:`open_store` on an
event loop in a thread.

Imports only the standard library and the store base at the top: ``aiosqlite`` and ``asyncpg``
load when a store of theirs is opened (a fast ``statemill --help``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol, final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

    from runtime.store.base import EventStore, ExecutionRecord, StateMachineRecord
    from runtime.store.requests import RequestLog

__all__ = [
    "POSTGRES_SCHEMES",
    "StoreReads",
    "StoreUnavailable",
    "is_postgres",
    "open_reads",
    "open_store",
    "postgres_target",
    "redact",
    "runtime_store",
]

#: A ``--store`` with one of these prefixes is a PostgreSQL URL (as ``Runtime(store=...)``).
POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")

#: The first 16 bytes of every SQLite 3 database file (an empty file is an empty database).
SQLITE_HEADER: Final = b"SQLite format 3\x00"

#: PostgreSQL's port when the URL names none.
DEFAULT_POSTGRES_PORT: Final = 5432


@final
class StoreUnavailable(Exception):
    """The store a command names cannot be opened; the message is one line for the user."""


def is_postgres(spec: str) -> bool:
    """Whether ``spec`` is a PostgreSQL URL."""
    return spec.startswith(POSTGRES_SCHEMES)


def postgres_target(url: str) -> tuple[str, str | None]:
    """``url`` without its ``schema`` query parameter, and that parameter (``None``: absent).

    Raises:
        StoreUnavailable: ``schema`` is given twice.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    if len(schemas) > 1:
        raise StoreUnavailable(f"store {redact(url)}: give ?schema= once")
    rest = urlencode([(key, value) for key, value in query if key != "schema"])
    return urlunsplit(parts._replace(query=rest)), schemas[0] if schemas else None


def redact(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _host_port(url: str) -> str:
    """``host:port`` of a PostgreSQL URL, as a user would look for the server."""
    parts = urlsplit(url)
    try:
        port = parts.port or DEFAULT_POSTGRES_PORT
    except ValueError:  # a port that is not a number: asyncpg names it too
        port = DEFAULT_POSTGRES_PORT
    host = parts.hostname or os.environ.get("PGHOST") or "localhost"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextlib.asynccontextmanager
async def open_store(spec: str, *, create: bool, memory: bool = False) -> AsyncIterator[EventStore]:
    """The store ``spec`` names, open for the ``async with`` body, closed after it.

    Args:
        spec: ``"memory"``, a PostgreSQL URL (``postgresql://`` or ``postgres://``) or a SQLite
            file path.
        create: a SQLite file that does not exist is created (else refused).
        memory: ``"memory"`` is accepted (a store that keeps nothing once the command ends).

    Raises:
        StoreUnavailable: the store cannot be opened (see the module docstring), or SQLite finds
            the file damaged while the body reads it.
    """
    if spec == "memory":
        if not memory:
            raise StoreUnavailable(
                "--store memory keeps nothing between commands: give a store file or a "
                "postgresql:// URL"
            )
        from runtime.store.memory import MemoryStore

        yield MemoryStore()
        return
    if "://" in spec and not is_postgres(spec):
        scheme = spec.partition("://")[0]
        raise StoreUnavailable(
            f"store {redact(spec)}: no store has the scheme {scheme}:// (give a SQLite file "
            "path or a postgresql:// URL)"
        )
    async with contextlib.AsyncExitStack() as stack:
        if is_postgres(spec):
            store = await _enter_postgres(stack, spec)
            yield store
            return
        store = await _enter_sqlite(stack, spec, create=create)
        try:
            yield store
        except sqlite3.DatabaseError as exc:  # a damaged page met while reading
            raise StoreUnavailable(_sqlite_message(spec, exc)) from exc


@contextlib.asynccontextmanager
async def runtime_store(spec: str, *, memory: bool = False) -> AsyncIterator[EventStore | str]:
    """What a command that runs work gives ``Runtime(store=...)``: ``spec`` checked as
    :func:`open_store` checks it (creating a SQLite file that does not exist).

    A SQLite file is opened once to check it, then handed over as its path: the ``Runtime``
    opens it itself and so holds its one-writer lock (``StoreLocked`` for a second runtime). A
    PostgreSQL store is handed over open (the URL's ``?schema=`` is understood here only).

    Raises:
        StoreUnavailable: as :func:`open_store`.
    """
    if is_postgres(spec):
        async with open_store(spec, create=True) as store:
            yield store
        return
    if spec == "memory":
        async with open_store(spec, create=True, memory=memory):
            yield spec
        return
    async with open_store(spec, create=True):
        pass
    try:
        yield spec
    except sqlite3.DatabaseError as exc:  # damaged, or locked past the busy timeout
        raise StoreUnavailable(_sqlite_message(spec, exc)) from exc


def _check_sqlite_path(spec: str, *, create: bool) -> None:
    """Refuse a SQLite path that cannot be (or, for a reader, must not be) opened as a store."""
    path = Path(spec)
    if path.is_dir():
        raise StoreUnavailable(f"store {spec} is a folder, not a store file")
    if not path.exists():
        folder = path.absolute().parent
        if not folder.is_dir():
            raise StoreUnavailable(
                f"cannot open store {spec}: no such folder {folder} (create the folder first)"
            )
        if not create:
            raise StoreUnavailable(
                f"no such store: {spec} (this command only reads a store and never creates "
                "one: check the path; run, worker, import or start --definition create a store)"
            )
        return
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise StoreUnavailable(f"cannot read store {spec}: {exc.strerror or exc}") from exc
    if header and header != SQLITE_HEADER:
        raise StoreUnavailable(
            f"store {spec} is not a SQLite database file (wrong file, or a damaged one: "
            "restore it from a backup)"
        )


def _sqlite_message(spec: str, exc: Exception) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"store {spec} is locked by another process ({text}): try again when it is done"
    if "malformed" in text or "not a database" in text:
        return f"store {spec} is damaged ({text}): restore it from a backup"
    return f"cannot open store {spec}: {text}"


async def _enter_sqlite(stack: contextlib.AsyncExitStack, spec: str, *, create: bool) -> EventStore:
    _check_sqlite_path(spec, create=create)
    from runtime.store.sqlite import SqliteStore

    try:
        return await stack.enter_async_context(SqliteStore.open(spec))
    except sqlite3.Error as exc:
        raise StoreUnavailable(_sqlite_message(spec, exc)) from exc
    except (OSError, RuntimeError) as exc:  # RuntimeError: a schema newer than this code
        raise StoreUnavailable(f"cannot open store {spec}: {exc}") from exc


async def _enter_postgres(stack: contextlib.AsyncExitStack, spec: str) -> EventStore:
    dsn, schema = postgres_target(spec)
    shown = redact(dsn)
    import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

    from runtime.store.postgres import PostgresStore

    try:
        return await stack.enter_async_context(PostgresStore.open(dsn, schema=schema))
    except ConnectionRefusedError as exc:
        raise StoreUnavailable(
            f"cannot reach PostgreSQL at {_host_port(dsn)}: connection refused (is the server "
            "running, on that port?)"
        ) from exc
    except OSError as exc:  # several addresses refused, no such host, a timeout
        why = "connection refused" if "Connect call failed" in str(exc) else str(exc) or "timed out"
        raise StoreUnavailable(f"cannot reach PostgreSQL at {_host_port(dsn)}: {why}") from exc
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # login, no such database
        raise StoreUnavailable(f"cannot open store {shown}: {exc}") from exc
    except (RuntimeError, ValueError) as exc:  # a newer schema; a bad schema name or URL
        raise StoreUnavailable(f"cannot open store {shown}: {exc}") from exc


class StoreReads(Protocol):
    """What the reading commands ask of a store, without ``await`` (see :func:`open_reads`)."""

    def get_execution(self, arn: str) -> ExecutionRecord | None: ...

    def list_executions(
        self, state_machine_arn: str | None = None, status: str | None = None, limit: int = 1000
    ) -> list[ExecutionRecord]: ...

    def get_state_machine(self, arn: str) -> StateMachineRecord | None: ...

    def list_state_machines(self) -> list[StateMachineRecord]: ...

    def pending_requests(self, limit: int = 100) -> list[tuple[int, str, str, float]]:
        """The oldest pending operators' requests: (id, kind, payload, created)."""
        ...

    def get_request(self, request_id: int) -> tuple[str, str, str | None] | None:
        """(kind, status, result) of an operators' request, or ``None``."""
        ...


@contextlib.contextmanager
def open_reads(spec: str) -> Iterator[StoreReads]:
    """The store ``spec`` names, open for reading in the ``with`` body, closed after it.

    Checked and refused as :func:`open_store` with ``create=False`` checks and refuses. A SQLite
    file of this code's schema is read on the calling thread with ``sqlite3``; an older file
    (it must be migrated first) and a PostgreSQL store are opened with :func:`open_store` on an
    event loop in a thread (anyio's blocking portal).

    Raises:
        StoreUnavailable: the store cannot be opened or read (see the module docstring).
    """
    if spec != "memory" and "://" not in spec:
        _check_sqlite_path(spec, create=False)
        from runtime.store.sqlite_read import SqliteReader

        try:
            with SqliteReader.open(spec) as reader:
                if reader is not None:
                    yield reader
                    return
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailable(_sqlite_message(spec, exc)) from exc
        except RuntimeError as exc:  # a schema newer than this code
            raise StoreUnavailable(f"cannot open store {spec}: {exc}") from exc
    from anyio.from_thread import start_blocking_portal

    with (
        start_blocking_portal(backend="asyncio") as portal,
        portal.wrap_async_context_manager(open_store(spec, create=False)) as store,
    ):
        yield _PortalReads(portal, store, spec)


@final
class _PortalReads:
    """:class:`StoreReads` of an open ``EventStore``, each call run on the portal's loop."""

    __slots__ = ("_portal", "_spec", "_store")

    def __init__(self, portal: BlockingPortal, store: EventStore, spec: str) -> None:
        self._portal = portal
        self._store = store
        self._spec = spec

    def get_execution(self, arn: str) -> ExecutionRecord | None:
        return self._portal.call(self._store.get_execution, arn)

    def list_executions(
        self, state_machine_arn: str | None = None, status: str | None = None, limit: int = 1000
    ) -> list[ExecutionRecord]:
        store = self._store
        return self._portal.call(
            lambda: store.list_executions(state_machine_arn, status=status, limit=limit)
        )

    def get_state_machine(self, arn: str) -> StateMachineRecord | None:
        return self._portal.call(self._store.get_state_machine, arn)

    def list_state_machines(self) -> list[StateMachineRecord]:
        return self._portal.call(self._store.list_state_machines)

    def pending_requests(self, limit: int = 100) -> list[tuple[int, str, str, float]]:
        return self._portal.call(self._requests().pending_requests, limit)

    def get_request(self, request_id: int) -> tuple[str, str, str | None] | None:
        return self._portal.call(self._requests().get_request, request_id)

    def _requests(self) -> RequestLog:
        from runtime.store.requests import RequestLog

        if not isinstance(self._store, RequestLog):
            raise StoreUnavailable(
                f"store {self._spec} keeps no requests (a SQLite file or PostgreSQL does)"
            )
        return self._store
