"""Pure expression languages of ASL: compiled at load time, evaluated at run time.

Modules: ``paths`` (JSONPath / reference paths, ResultPath merge), ``payload`` (Parameters,
ResultSelector and ItemSelector templates), ``intrinsics`` (the ``States.*`` functions),
``choice`` (Choice rules), ``scope`` (what an evaluation may read: context object, variables,
recorded entropy). Nothing here reads the clock, the environment or does I/O.
"""
