"""What an expression evaluation may read besides its input: the ``$$`` context object, the
workflow variables in scope, and a deterministic source of entropy.

``Entropy`` is a seeded PRNG: the shell draws a seed once per decision and the core records
every value that matters in the log (the state's output), so replay never re-draws. This module
imports only the standard library and msgspec.

Security invariant (issue 11): a workflow can observe this stream (``States.MathRandom``,
``States.UUID``, ``$random()``, ``$uuid()``, retry jitter) and, from 624 outputs, clone the
Mersenne Twister's state and even invert its seeding. So the generator is never seeded with the
decision seed itself but with a one-way hash of it (BLAKE2b, its own personalisation), and task
tokens are derived from the seed by a different keyed hash (``runtime.core.tasks``), never from
this generator: knowing everything the generator will ever produce tells nothing about a token.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any, final

JSON = Any


def observable_seed(seed: int) -> int:
    """The seed of the observable stream: a one-way function of the decision seed, so cloning the
    generator (and inverting its seeding) yields this hash, never ``seed`` (see the module
    docstring). Negative or huge seeds (``States.MathRandom``'s third argument) are reduced."""
    raw = (seed % (1 << 256)).to_bytes(32, "big")
    return int.from_bytes(hashlib.blake2b(raw, digest_size=32, person=b"sm-observable").digest())


@final
class Entropy:
    """Deterministic random values for ``States.UUID``, ``States.MathRandom`` and retry jitter."""

    __slots__ = ("_random", "_seed")

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._random: random.Random | None = None

    @property
    def _rng(self) -> random.Random:
        # Seeding costs ~4 us and most decisions draw nothing: seed on first use.
        if self._random is None:
            self._random = random.Random(observable_seed(self._seed))
        return self._random

    def uuid4(self) -> str:
        """A version-4 UUID string drawn from the seeded generator."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def random(self) -> float:
        """A float in [0, 1)."""
        return self._rng.random()

    def randint(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        return self._rng.randint(low, high)


@final
class Scope:
    """The read-only environment of one evaluation."""

    __slots__ = ("_context", "_context_factory", "entropy", "variables")

    def __init__(
        self,
        context: JSON = None,
        variables: Mapping[str, JSON] | None = None,
        entropy: Entropy | None = None,
        *,
        context_factory: Callable[[], JSON] | None = None,
    ) -> None:
        self._context: JSON = context
        # Building the context object costs more than most evaluations that never read it
        # (benchmarks/chain: ~40% of a Pass transition), so it can be built on first use.
        self._context_factory = context_factory
        self.variables: Mapping[str, JSON] = {} if variables is None else variables
        self.entropy: Entropy = Entropy(0) if entropy is None else entropy

    @property
    def context(self) -> JSON:
        """The ``$$`` context object."""
        if self._context is None:
            factory = self._context_factory
            self._context = {} if factory is None else factory()
        return self._context
