"""Statemill's benchmark suite (issue 4): ``python -m benchmarks`` or ``statemill bench``.

Scenarios, one module each: ``chain``, ``map``, ``parked``, ``handlers``, ``replay``;
``common`` holds what they share and ``suite`` drives them (runs, medians, table, JSON results).
Only the public ``runtime`` API is used, plus ``runtime.core.evolve.fold`` for the fold rate.
"""
