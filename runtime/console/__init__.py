"""The web console: state machines with their graph, executions with filters and paging, an
execution's graph, states and events, and the tasks that wait for a person's answer (issue 13).

``create_console(runtime)`` returns a Starlette application to mount next to the Step
Functions API (``Mount("/console", app=create_console(runtime))``). Plain HTML rendered on the
server with every value escaped (:mod:`runtime.console.markup`), one small script for live
updates and one stylesheet, shipped in ``static/`` (no build step, nothing from the network).
"""

from __future__ import annotations

from runtime.console.app import create_console

__all__ = ["create_console"]
