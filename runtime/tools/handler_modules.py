"""Task handlers from the modules a user names (``statemill run|worker --handlers MODULE``).

A module is named by a ``.py`` path (imported from that file) or by a dotted name, looked up
first in the working directory, as ``python -m`` would (a console script's ``sys.path`` does not
hold it), then on ``sys.path``. ``sys.path`` itself is never changed: the module is loaded from
the spec found, and only ``sys.modules`` learns its name, as any import does.

Imports the public ``runtime`` API and the standard library.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import final

from runtime import HandlerRegistry

__all__ = ["HandlerModuleError", "load_handlers"]


@final
class HandlerModuleError(Exception):
    """A handlers module cannot be found or imported, or it provides no handlers."""


def load_handlers(modules: Sequence[str]) -> HandlerRegistry:
    """One registry with the handlers of every module named.

    A module contributes every ``HandlerRegistry`` instance among its attributes and its
    ``HANDLERS`` mapping (name -> async callable), if it has one.

    Raises:
        HandlerModuleError: a module cannot be imported or provides no handlers.
    """
    registry = HandlerRegistry()
    for name in modules:
        module = _import(name)
        found = False
        for value in vars(module).values():
            if isinstance(value, HandlerRegistry):
                registry.update(value)
                found = True
        table = getattr(module, "HANDLERS", None)
        if isinstance(table, Mapping):
            registry.update(table)
            found = True
        if not found:
            raise HandlerModuleError(f"{name}: no HandlerRegistry instance and no HANDLERS dict")
    return registry


def _import(name: str) -> ModuleType:
    try:
        if name.endswith(".py") or os.sep in name or "/" in name:
            path = Path(name)
            if not path.is_file():
                raise HandlerModuleError(f"no such handlers file: {path}")
            module_name = f"statemill_handlers_{path.stem}"
            return _load(importlib.util.spec_from_file_location(module_name, path), module_name)
        top = name.partition(".")[0]
        if top not in sys.modules:
            # The working directory first; its submodules then come through the package's
            # __path__, so nothing needs to go on sys.path.
            found = importlib.machinery.PathFinder.find_spec(top, [os.getcwd()])
            if found is not None:
                _load(found, top)
        return importlib.import_module(name)
    except HandlerModuleError:
        raise
    except Exception as exc:  # an import runs arbitrary code: report whatever it raised
        message = f"cannot import handlers {name}: {type(exc).__name__}: {exc}"
        raise HandlerModuleError(message) from exc


def _load(spec: importlib.machinery.ModuleSpec | None, module_name: str) -> ModuleType:
    if spec is None or spec.loader is None:
        raise HandlerModuleError(f"cannot load handlers {module_name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before exec, so the module can refer to itself
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]  # as the import system does: no half-run module stays
        raise
    return module
