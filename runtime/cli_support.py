"""What the ``statemill`` commands share: files and input, a definition, handlers, a store, JSON.

The helpers read a file or JSON input (a :class:`~runtime.cli_table.UsageError` when they
cannot), load a definition, load the ``--handlers`` modules, open a store (through
:func:`runtime.tools.stores.open_store`) and run a coroutine on a fresh event loop; and they
tell an error a user gets as one line (:func:`is_reported`, :func:`is_store_error`) from a bug,
whose traceback is shown.

Imports only the standard library and ``runtime.errors`` at the top: each helper imports the
runtime part it uses when first called (a fast start, issue 16).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

from runtime.cli_table import UsageError
from runtime.errors import StatemillError

if TYPE_CHECKING:
    import argparse

    from runtime import EventStore, HandlerRegistry
    from runtime.definition.model import StateMachine

__all__ = [
    "handler_registry",
    "is_reported",
    "is_store_error",
    "load_machine",
    "on_store",
    "parse_input",
    "print_json",
    "read_file",
    "run_async",
    "single",
]

JSON = Any
T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def read_file(argument: str, what: str) -> str:
    """The text of the file ``argument`` (an ``@`` before it is dropped); ``what`` names it in
    the error."""
    path = argument.removeprefix("@")
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {path}: {exc}") from exc


def parse_input(argument: str) -> JSON:
    """The JSON value ``argument``, or that of the file ``@FILE``."""
    text = read_file(argument, "input") if argument.startswith("@") else argument
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"input is not valid JSON: {exc}") from exc


def load_machine(text: str, machine_type: str = "STANDARD") -> StateMachine:
    """``load_definition`` (imported when first needed: a fast start)."""
    from runtime.definition.load import load_definition

    return load_definition(text, machine_type=machine_type)


def handler_registry(args: argparse.Namespace) -> HandlerRegistry:
    """The registry of the ``--handlers`` modules."""
    from runtime.tools.handler_modules import load_handlers

    return load_handlers(args.handlers)


def on_store(spec: str, use: Callable[[EventStore], Awaitable[T]], *, create: bool = False) -> T:
    """``use(store)`` with the store ``spec`` open (a SQLite file must exist unless ``create``)."""
    from runtime.tools.stores import open_store

    async def opened() -> T:
        async with open_store(spec, create=create) as store:
            return await use(store)

    return run_async(opened)


def run_async(fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
    """Run ``fn(*args)`` on a fresh event loop, on uvloop where it is installed (STYLE.md 6)."""
    import anyio

    use_uvloop = importlib.util.find_spec("uvloop") is not None
    return anyio.run(fn, *args, backend="asyncio", backend_options={"use_uvloop": use_uvloop})


def print_json(value: JSON) -> None:
    """``value`` on stdout as indented JSON."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def single(exc: Exception) -> Exception:
    """The one exception inside nested single-exception groups (a runtime's task group wraps
    what its body raises), else ``exc``."""
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def is_reported(exc: BaseException) -> bool:
    """An error a user gets as one line (not a traceback): bad usage, a ``StatemillError``, a
    store that cannot be opened, a handlers module that does not load."""
    if isinstance(exc, (UsageError, StatemillError)) or is_store_error(exc):
        return True
    # Looked up, not imported: a command that never loaded handlers cannot have their error.
    handler_modules = sys.modules.get("runtime.tools.handler_modules")
    return handler_modules is not None and isinstance(exc, handler_modules.HandlerModuleError)


def is_store_error(exc: BaseException) -> bool:
    """The store cannot be opened (exit 3): ``StoreUnavailable`` from the opener, or the
    runtime's ``StoreLocked`` (another runtime holds the store)."""
    stores = sys.modules.get("runtime.tools.stores")
    if stores is not None and isinstance(exc, stores.StoreUnavailable):
        return True
    # Looked up by name: ``StoreLocked`` is the runtime's error for a held store (issue 12).
    locked = getattr(sys.modules["runtime.errors"], "StoreLocked", None)
    return isinstance(locked, type) and isinstance(exc, locked)
