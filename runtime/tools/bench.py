"""``statemill bench``: a Statemill checkout's benchmark suite, run as ``python -m benchmarks``.

``benchmarks/`` is not packaged: it lives in the checkout beside ``runtime/``. The command runs it
in a child process of the same interpreter, with the checkout as working directory (so Python finds
``benchmarks`` and the checkout's ``runtime`` there), and never puts anything on this process's
``sys.path``. The child writes its table and progress bar straight to this terminal.

Imports only the standard library.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["find_checkout", "run_benchmarks"]


def find_checkout(directory: Path) -> Path | None:
    """``directory`` if it is the root of a Statemill checkout (it holds ``benchmarks/``)."""
    return directory if (directory / "benchmarks" / "__main__.py").is_file() else None


def run_benchmarks(checkout: Path, argv: Sequence[str]) -> int:
    """Run ``python -m benchmarks ARGV`` in ``checkout``; returns its exit code."""
    command = [sys.executable, "-m", "benchmarks", *argv]
    return subprocess.run(command, cwd=checkout, check=False).returncode
