"""Pure expression languages of ASL: compiled at load time, evaluated at run time.

Modules: ``paths`` (JSONPath / reference paths, ResultPath merge; with ``pathsyntax``,
``patheval``, ``pathregex`` and ``jsontext``), ``payload`` (Parameters, ResultSelector and
ItemSelector templates), ``intrinsics`` (the ``States.*`` functions), ``choice`` (Choice rules),
``jsonata`` (JSONata expressions and templates; with ``jsonata_engine``, the budgets and the
engine port, and ``jsonata_functions``, AWS's host functions), ``scope`` (what an evaluation may
read: context object, variables, recorded entropy). Nothing here reads the clock, the
environment or does I/O.
"""
