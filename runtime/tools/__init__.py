"""Tools beside the runtime: debugging, inspecting and operating executions from outside.

Each module serves one ``statemill`` command family and can be used from Python too:

- :mod:`~runtime.tools.replay`: step through a log, check a changed definition against recorded
  executions, diagnose a failure (``runtime.replay``, ``runtime.check``, ``runtime.diagnose``).
- :mod:`~runtime.tools.aws_history`: AWS ``get-execution-history`` JSON to and from our events.
- :mod:`~runtime.tools.history`: read an execution's log from a store and show it as text.
- :mod:`~runtime.tools.export`: the JSON-lines format of ``statemill export`` and ``import``.
- :mod:`~runtime.tools.graph`: the state machine as Mermaid, DOT or SVG, coloured by an execution.
- :mod:`~runtime.tools.report`: one self-contained HTML page about an execution.
- :mod:`~runtime.tools.operations`: one execution run to its end, and a worker.
- :mod:`~runtime.tools.store_ops`: a store read, and operators' requests recorded in it for a
  runtime, without running one.
- :mod:`~runtime.tools.bench`: the benchmark suite of a checkout, in a child process.

Dependency rule: tools import the public ``runtime`` API and, for pure replay, ``runtime.core``
and ``runtime.definition.model``; nothing in ``core``, ``definition``, ``lang``, ``engine``,
``store`` or ``api.py`` imports a tool. ``replay`` and ``aws_history`` are what
``runtime/__init__.py`` re-exports, so they import only the layers below the public package.
This package imports none of its modules: importing one costs only what it needs.
"""
