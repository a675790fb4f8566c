"""The shell's randomness: decision seeds and execution names, from the OS's CSPRNG.

Task tokens are drawn from decision seeds, so a seed is wide (128 bits) and unpredictable; names
of executions started without one are version-4 UUIDs, as AWS makes them. Both come from one
pool of ``os.urandom`` bytes read in bulk (``os.urandom`` per seed was ~1.5 us: ``benchmarks
parked``; ``uuid.uuid4`` read the OS once per name: issue 10, the start path). The core never
draws randomness; seeds reach it inside incoming events. Imports the standard library only.
"""

from __future__ import annotations

import os
from typing import Final, final

#: Seeds drawn from one ``os.urandom`` read.
POOL_SEEDS: Final = 1024
#: The bits a version-4 UUID fixes (RFC 9562 section 5.4): the version nibble and the variant.
_UUID4_CLEAR: Final = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET: Final = (0x4 << 76) | (0x2 << 62)


@final
class Entropy:
    """A pool of 128-bit random numbers, refilled from the OS in bulk."""

    __slots__ = ("_seeds",)

    def __init__(self) -> None:
        self._seeds: list[int] = []

    def seed(self) -> int:
        """A fresh 128-bit random number (a decision seed)."""
        seeds = self._seeds
        if not seeds:
            pool = os.urandom(16 * POOL_SEEDS)
            seeds.extend(int.from_bytes(pool[i : i + 16], "big") for i in range(0, len(pool), 16))
        return seeds.pop()

    def uuid4(self) -> str:
        """A fresh random UUID as text (``str(uuid.uuid4())``'s form)."""
        return uuid4_text(self.seed())


def uuid4_text(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` for 128 random ``bits``, without the object."""
    # ``bytes.hex`` rather than a ``:032x`` format: a quarter less per name (``peers`` a).
    h = ((bits & _UUID4_CLEAR) | _UUID4_SET).to_bytes(16, "big").hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
