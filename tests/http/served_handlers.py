"""The handlers of the test server (``statemill serve --handlers`` this file).

``Ask`` is the body of ``.waitForTaskToken`` Tasks: it does nothing, the token is read back
from the history (the ``TaskScheduled`` parameters), as a client of the API sees it. The Lambda
behaviours the recorded TestState cases call are registered under the names those cases use.
"""

from __future__ import annotations

import json
from typing import Any

from runtime import TaskContext
from tests.teststate.cases import available, case_files, handlers_for

JSON = Any


async def echo(event: JSON, context: TaskContext) -> JSON:
    return event


async def boom(event: JSON, context: TaskContext) -> JSON:
    raise RuntimeError("boom")


async def ask(event: JSON, context: TaskContext) -> JSON:
    return {}


def _recorded() -> dict[str, Any]:
    found: dict[str, Any] = {}
    if available():
        for path in case_files():
            found.update(handlers_for(json.loads(path.read_text())["params"]))
    return found


HANDLERS = {**_recorded(), "Echo": echo, "Boom": boom, "Ask": ask}
