"""The searcher contract: ask/tell over genotypes, resumable, no torch.

A :class:`Searcher` decides *what to try next*. It proposes arch strings with :meth:`ask` and
learns their fitness (higher is better; ``-inf`` for a rejected cell, e.g. one over a size
constraint) through :meth:`tell`. Telling the fitness of an arch it already holds updates it:
that is how the fidelity ladder feeds a costlier evaluation of a candidate back into
selection. *How far to push* a candidate (which fidelity, when to promote) is the ladder's
business (:mod:`zcnas.search.ladder`), never the searcher's.

Every searcher owns its ``numpy.random.Generator``; :meth:`state_dict` /
:meth:`load_state_dict` round-trip everything (RNG included) through JSON-able dicts, so a
search resumes after a crash exactly where it stopped.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from zcnas.spaces import canonical_space, get_space


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state


def rng_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = dict(state)
    return rng


class Searcher(abc.ABC):
    """Base class: space helpers, the set of canonical cells already proposed, RNG state."""

    #: Registry / CLI name.
    name: ClassVar[str]

    def __init__(self, space: str = "nats-tss", seed: int = 0) -> None:
        self.space = canonical_space(space)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._space = get_space(self.space)
        self._proposed: set[str] = set()
        self.fitness: dict[str, float] = {}  # canonical -> latest fitness told
        self._keys: dict[str, str] = {}  # arch string -> canonical key (memo)

    # --- the contract ------------------------------------------------------------------------

    @abc.abstractmethod
    def ask(self, n: int = 1) -> list[str]:
        """Up to ``n`` arch strings to evaluate next, never a cell proposed before (isomorphic
        cells count as the same cell). Fewer (or none) when the searcher is waiting for
        results or has exhausted the space."""

    def tell(self, results: Iterable[tuple[str, float]]) -> None:
        """Fitness of evaluated archs, new or updated. Every fitness is updated before any
        hook runs, so decisions made while telling (a move, a truncation) compare current
        values only."""
        results = list(results)
        for arch, fit in results:
            f = float(fit)
            self.fitness[self.key(arch)] = f if not math.isnan(f) else -math.inf
        for arch, _ in results:
            self._told(arch)

    def _told(self, arch: str) -> None:  # noqa: B027 (an optional hook)
        """Hook: called once per told arch after :attr:`fitness` is updated."""

    def members(self) -> list[str]:
        """The archs the searcher currently holds (its population); default none."""
        return []

    #: Whether :meth:`inject` is supported (candidates found elsewhere, e.g. by a supernet's
    #: gradient-guided search, join the next proposals).
    accepts_injection: ClassVar[bool] = False

    def inject(self, archs: Iterable[str]) -> list[str]:
        """Queue ``archs`` to be proposed next (those never proposed before); returns them."""
        raise NotImplementedError(f"searcher {self.name!r} does not take injected candidates")

    # --- helpers -----------------------------------------------------------------------------

    def key(self, arch: str) -> str:
        k = self._keys.get(arch)
        if k is None:
            k = self._keys[arch] = self._space.canonical_key(arch)
        return k

    def genotype(self, arch: str) -> Any:
        """The space's genotype of an arch string (what the space's operators take)."""
        return self._space.as_genotype(arch)

    def fmt(self, genotype: Any) -> str:
        return self._space.format_arch(genotype)

    def fit(self, arch: str) -> float:
        return self.fitness.get(self.key(arch), -math.inf)

    def _fresh(self, arch: str) -> bool:
        """Mark ``arch`` proposed; False when it (or an isomorph) was proposed before."""
        k = self.key(arch)
        if k in self._proposed:
            return False
        self._proposed.add(k)
        return True

    def _random_fresh(self, tries: int = 10_000) -> str | None:
        """The first of up to ``tries`` random cells never proposed before, or None.

        Draws in growing batches (most calls succeed at once; near the end of a small space
        thousands of draws are rejected), then rewinds ``rng`` so that exactly the draws up
        to the accepted cell are consumed: the same stream as one cell at a time. Once the
        first 21 draws fail (batches of 1, 4 and 16) and every class of the space has been
        proposed, it stops (the space is exhausted; drawing on would only spend the
        generator). A collision now and then never pays for listing the classes."""
        drawn, block = 0, 1
        while drawn < tries:
            if drawn == 21:
                keys = self._space.distinct_keys()
                if keys is not None and keys <= self._proposed:
                    return None
            n = min(block, tries - drawn)
            state = self.rng.bit_generator.state
            for j, a in enumerate(self._space.sample_archs(self.rng, n)):
                if self._fresh(a):
                    if j + 1 < n:  # give the draws after it back
                        self.rng.bit_generator.state = state
                        self._space.sample_archs(self.rng, j + 1)
                    return a
            drawn += n
            block = min(4 * block, 1024)
        return None

    def _fresh_neighbour(self, arch: str) -> str | None:
        """A uniformly random one-edge mutant of ``arch`` never proposed before, or None.

        The same distribution as redrawing the space's ``mutate`` until the child is new, in
        one pass over the neighbours."""
        nb = [self.fmt(g) for g in self._space.neighbours(self.genotype(arch))]
        for i in self.rng.permutation(len(nb)):
            if self._fresh(nb[int(i)]):
                return nb[int(i)]
        return None

    def _fresh_child(self, make, tries: int = 50) -> str | None:
        """A child from ``make()`` (a genotype) that was never proposed, or None."""
        for _ in range(tries):
            a = self.fmt(make())
            if self._fresh(a):
                return a
        return None

    # --- persistence -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"name": self.name, "space": self.space, "seed": self.seed,
                "rng": rng_state(self.rng), "proposed": sorted(self._proposed),
                "fitness": dict(self.fitness), **self._state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state of searcher {state.get('name')!r}, not {self.name!r}")
        self.rng = rng_from_state(state["rng"])
        self._proposed = set(state["proposed"])
        self.fitness = {k: float(v) for k, v in state["fitness"].items()}
        self._load(state)

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, state: Mapping[str, Any]) -> None:
        return None


def best_of(archs: Sequence[str], fitness) -> str:
    """The arch with the highest ``fitness(arch)``; the first one wins ties."""
    best, best_f = archs[0], fitness(archs[0])
    for a in archs[1:]:
        f = fitness(a)
        if f > best_f:
            best, best_f = a, f
    return best
