"""Access to the AWS-recorded conformance data beside the checkout (``../shared/conformance``).

The folder is data, not part of the project: tests read it in place and skip, with a clear
message, when it is absent (a fresh clone).
"""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

from tests.conformance.harness import CONFORMANCE

MISSING = f"AWS conformance data not found at {CONFORMANCE} (expected beside the checkout)"


def load_cases(folder: str) -> list[tuple[str, dict[str, Any]]]:
    """(file stem, case) for every JSON file in ``CONFORMANCE/folder``, sorted by name."""
    directory = CONFORMANCE / folder
    if not directory.is_dir():
        return []
    return [
        (path.stem, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(directory.glob("*.json"))
    ]


def load_compare() -> ModuleType | None:
    """The shared ``compare.py`` module, imported from its path (it is not a package)."""
    path = CONFORMANCE / "compare.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("conformance_compare", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
