"""The searchers: random search, regularised evolution, local search and the multi-fidelity
evolutionary searcher (MFEA). All are ask/tell, resumable, and never propose a cell twice
(isomorphic cells are the same cell).

A third party plugs a searcher of its own in through a method record
(:class:`zcnas.search.Method`, entry-point group ``zcnas.methods``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from zcnas.search.base import Searcher, best_of


class RandomSearch(Searcher):
    """Uniformly random cells, each distinct (NATS-Bench's RANDOM baseline)."""

    name = "random"

    def ask(self, n: int = 1) -> list[str]:
        out = []
        for _ in range(n):
            a = self._random_fresh()
            if a is None:
                break
            out.append(a)
        return out


class _Population(Searcher):
    """Shared bookkeeping: ``population`` (oldest first) and ``pending`` (asked, not told)."""

    def __init__(self, space: str = "nats-tss", seed: int = 0) -> None:
        super().__init__(space, seed)
        self.population: list[str] = []
        self.pending: list[str] = []

    def members(self) -> list[str]:
        return list(self.population)

    def _state(self) -> dict[str, Any]:
        return {"population": list(self.population), "pending": list(self.pending)}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.population = list(state["population"])
        self.pending = list(state["pending"])

    def _sample(self, k: int) -> list[str]:
        k = min(k, len(self.population))
        idx = self.rng.choice(len(self.population), size=k, replace=False)
        return [self.population[int(i)] for i in sorted(idx)]

    def _mutant(self, parent: str) -> str | None:
        child = self._fresh_neighbour(parent)
        return child if child is not None else self._random_fresh()


class RegularizedEvolution(_Population):
    """Regularised (ageing) evolution, Real et al. 2019, as NATS-Bench runs it: a population of
    ``population_size`` random cells; then, per child, ``sample_size`` members are drawn at
    random, the fittest is mutated (one edge), the child joins and the oldest member leaves."""

    name = "rea"

    def __init__(self, space: str = "nats-tss", seed: int = 0, *, population_size: int = 10,
                 sample_size: int = 3) -> None:
        super().__init__(space, seed)
        if population_size < 1 or not 1 <= sample_size <= population_size:
            raise ValueError("need population_size >= 1 and 1 <= sample_size <= population_size")
        self.population_size = population_size
        self.sample_size = sample_size

    def ask(self, n: int = 1) -> list[str]:
        out = []
        for _ in range(n):
            if len(self.population) + len(self.pending) + len(out) < self.population_size:
                a = self._random_fresh()
            elif not self.population:
                break  # the first population is still being evaluated
            else:
                a = self._mutant(best_of(self._sample(self.sample_size), self.fit))
            if a is None:
                break
            out.append(a)
        self.pending.extend(out)
        return out

    def _told(self, arch: str) -> None:
        if arch in self.pending:
            self.pending.remove(arch)
            self.population.append(arch)
            if len(self.population) > self.population_size:
                self.population.pop(0)


class MultiFidelityEvolution(_Population):
    """The MFEA searcher: MFNAS's evolutionary loop over the op-table genotype.

    A first population of ``population_size`` random cells; then each generation draws a
    tournament of ``tournament_size`` members, takes the ``parents`` fittest, makes
    ``mutants`` one-edge mutants of each and ``crossovers`` uniform crossovers of the parents;
    when the whole generation is told, the children join, the ``age_out`` oldest members leave
    (ageing) and the population is truncated to the ``population_size`` fittest. Fitness is
    whatever the ladder tells: the multi-fidelity rank of each cell, updated when a cell is
    escalated to a costlier fidelity.
    """

    name = "mfea"

    def __init__(self, space: str = "nats-tss", seed: int = 0, *, population_size: int = 100,
                 tournament_size: int = 25, parents: int = 2, mutants: int = 4,
                 crossovers: int = 1, age_out: int = 1) -> None:
        super().__init__(space, seed)
        if not (population_size >= 2 and 2 <= tournament_size <= population_size
                and 1 <= parents <= tournament_size and mutants >= 0 and crossovers >= 0
                and mutants + crossovers >= 1 and age_out >= 0):
            raise ValueError("invalid MFEA settings")
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.parents = parents
        self.mutants = mutants
        self.crossovers = crossovers
        self.age_out = age_out
        self.queue: list[str] = []

    accepts_injection = True

    def inject(self, archs: Iterable[str]) -> list[str]:
        """Put fresh ``archs`` at the front of the queue: they are proposed next and join the
        population like any child of this generation."""
        fresh = [a for a in archs if self._fresh(a)]
        self.queue = fresh + self.queue
        return fresh

    def _generation(self) -> list[str]:
        pool = self._sample(self.tournament_size)
        order = sorted(range(len(pool)), key=lambda i: -self.fit(pool[i]))
        parents = [pool[i] for i in order[: self.parents]]
        children = []
        for p in parents:
            for _ in range(self.mutants):
                c = self._mutant(p)
                if c is not None:
                    children.append(c)
        for _ in range(self.crossovers if len(parents) > 1 else 0):
            a, b = parents[0], parents[1]
            ga, gb = self.genotype(a), self.genotype(b)
            c = self._fresh_child(lambda ga=ga, gb=gb: self._space.crossover(ga, gb, self.rng))
            if c is not None:
                children.append(c)
        return children

    def ask(self, n: int = 1) -> list[str]:
        if not self.population and not self.pending:
            self.queue = [a for a in (self._random_fresh() for _ in range(self.population_size))
                          if a is not None]
        elif not self.queue and not self.pending:
            self.queue = self._generation()
        out, self.queue = self.queue[:n], self.queue[n:]
        self.pending.extend(out)
        return out

    def _told(self, arch: str) -> None:
        if arch not in self.pending:
            return
        self.pending.remove(arch)
        self.population.append(arch)
        if self.pending or self.queue:
            return
        # the generation is complete: age out, then keep the fittest
        if len(self.population) > self.population_size:
            del self.population[: min(self.age_out, len(self.population) - 1)]
        if len(self.population) > self.population_size:
            ranked = sorted(range(len(self.population)),
                            key=lambda i: (-self.fit(self.population[i]), -i))
            keep = set(ranked[: self.population_size])
            self.population = [a for i, a in enumerate(self.population) if i in keep]

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "queue": list(self.queue)}

    def _load(self, state: Mapping[str, Any]) -> None:
        super()._load(state)
        self.queue = list(state["queue"])


class LocalSearch(Searcher):
    """First-improvement hill climbing over one-edge neighbours with random restarts (the
    local search of White et al. 2021 and MF-NAS's FLS without its distance-2 escape): from
    the current cell, evaluate its unvisited neighbours in random order and move to the first
    one that is fitter; when none is, restart from a random cell."""

    name = "ls"

    def __init__(self, space: str = "nats-tss", seed: int = 0) -> None:
        super().__init__(space, seed)
        self.current: str | None = None
        self.queue: list[str] = []
        self.pending: list[str] = []

    def members(self) -> list[str]:
        return [self.current] if self.current is not None else []

    def _neighbours(self, arch: str) -> list[str]:
        nb = [self.fmt(g) for g in self._space.neighbours(self.genotype(arch))]
        return [nb[int(i)] for i in self.rng.permutation(len(nb))]

    def ask(self, n: int = 1) -> list[str]:
        if self.pending:
            return []
        out: list[str] = []
        if self.current is None:
            a = self._random_fresh()
            out = [a] if a is not None else []
        else:
            while self.queue and len(out) < n:
                a = self.queue.pop(0)
                if self._fresh(a):
                    out.append(a)
            if not out:  # a local optimum: restart
                self.current = None
                return self.ask(n)
        self.pending = list(out)
        return out

    def _told(self, arch: str) -> None:
        if arch not in self.pending:
            return
        self.pending.remove(arch)
        if self.current is None:
            self.current = arch
            self.queue = self._neighbours(arch)
        elif self.fit(arch) > self.fit(self.current):
            self.current = arch
            self.queue = self._neighbours(arch)

    def _state(self) -> dict[str, Any]:
        return {"current": self.current, "queue": list(self.queue), "pending": list(self.pending)}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.current = state["current"]
        self.queue = list(state["queue"])
        self.pending = list(state["pending"])
