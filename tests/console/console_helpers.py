"""Helpers of the console tests: the example machine, the app as the HTTP app mounts it, and
readers of the forms a page offers."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount

from runtime import Runtime
from runtime.console import create_console

ROOT = Path(__file__).resolve().parents[2]
APPROVAL = (ROOT / "examples" / "approval.asl.json").read_text()


def console_app(runtime: Runtime) -> Starlette:
    """The console where the HTTP app mounts it."""
    return Starlette(routes=[Mount("/console", app=create_console(runtime))])


def frames_of(page: str) -> list[str]:
    """The frames of the waiting tasks a page offers to answer (each has two forms)."""
    return list(dict.fromkeys(re.findall(r'name="frame" value="([^"]*)"', page)))
