"""How many partitions a member should hold, and which to give up: pure arithmetic.

Every member runs the same rule on the same facts (the number of live members, the leases it
holds), so the partitions spread evenly without a coordinator: each member aims at its fair
share, ``ceil(partitions / members)``; one below it claims free or expired leases, one above it
(after another member joined) releases the excess. Shares rounded up sum to at least the
number of partitions, so every partition has a member willing to hold it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import final

import msgspec

__all__ = ["LeasePlan", "fair_share", "plan_leases"]


def fair_share(partitions: int, members: int) -> int:
    """The most partitions one of ``members`` live members should hold."""
    return -(-partitions // max(members, 1))


@final
class LeasePlan(msgspec.Struct, frozen=True):
    """What a member does with its leases this round."""

    claim: int
    """How many free or expired leases to try to take."""
    release: tuple[int, ...]
    """Partitions to hand over (highest first: the same choice on every round)."""


def plan_leases(held: Mapping[int, int], members: int, partitions: int) -> LeasePlan:
    """The plan of a member holding ``held`` (partition -> epoch) among ``members`` live
    members (itself included) sharing ``partitions``."""
    share = fair_share(partitions, members)
    if len(held) < share:
        return LeasePlan(claim=share - len(held), release=())
    excess = len(held) - share
    return LeasePlan(claim=0, release=tuple(sorted(held, reverse=True)[:excess]))
