"""``python -m runtime``: the ``statemill`` command (see :mod:`runtime.cli`)."""

from __future__ import annotations

from runtime.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
