"""Evolution over edge x op tables of the topology space (NAS-Bench-201 cells).

The supernet-based methods (``genas``, ``ftga``, ``gevonas``) encode a cell as its 6 x 5 table
(one row per edge, a one-hot choice of the five ops): the encoding a supernet's relaxation
works on, so a table can be relaxed, moved by gradient and taken back by argmax.

* :class:`TableGA`: a generational genetic algorithm (GENAS, FTGA). Each generation draws
  ``population_size`` children: two parents by binary tournament, two-point *table crossover*
  (a block of consecutive edge rows is swapped) with probability ``crossover_rate``, then
  *table mutation* (each row moves its 1 to another op with probability ``mutation_rate``; at
  least one row moves when the child would equal a parent); when the whole generation is told,
  parents and children compete and the ``population_size`` fittest survive (mu + lambda).
* :class:`GrowthGA`: G-EvoNAS's growth on the cell: stage 1 evolves node 1's incoming edge,
  stage 2 node 2's, stage 3 node 3's, the earlier nodes fixed to the choices of the previous
  stage's elite group. A partial cell is a real cell of the space: the newest node feeds the
  output through a skip connection and the nodes not grown yet are cut off (``none``), so a
  supernet scores it like any cell. Only cells of the last stage can be the answer
  (:meth:`GrowthGA.final`).

Both are ask/tell, never propose a cell twice (isomorphs are the same cell), own their RNG and
round-trip their state through JSON. No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from zcnas.search.base import Searcher
from zcnas.spaces import nats_tss

OPS = nats_tss.OPS
EDGES = nats_tss.EDGES
NUM_OPS = len(OPS)
NODE_EDGES = nats_tss.NODE_EDGES
grown_cell = nats_tss.grown_cell


def to_table(arch: Any) -> np.ndarray:
    """The 6 x 5 one-hot table of a cell."""
    cell = nats_tss.as_cell(arch)
    t = np.zeros((len(EDGES), NUM_OPS), dtype=np.int8)
    for e, op in enumerate(cell.ops):
        t[e, OPS.index(op)] = 1
    return t


def from_table(table: np.ndarray) -> str:
    """The arch string of a table (argmax per row)."""
    return nats_tss.format_arch(nats_tss.Cell(tuple(OPS[int(k)] for k in table.argmax(1))))


def table_crossover(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                    rows: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two-point crossover over table rows: a block of consecutive rows (of ``rows``, default
    all) is swapped between the parents."""
    rows = list(range(len(a))) if rows is None else list(rows)
    i, j = sorted(int(x) for x in rng.choice(len(rows) + 1, size=2, replace=False))
    c, d = a.copy(), b.copy()
    block = rows[i:j]
    c[block], d[block] = b[block], a[block]
    return c, d


def table_mutation(t: np.ndarray, rng: np.random.Generator, rate: float,
                   rows: Sequence[int] | None = None, at_least_one: bool = False) -> np.ndarray:
    """Each row (of ``rows``) moves its 1 to a uniformly drawn other op with probability
    ``rate``; ``at_least_one``: when no row moved, one drawn row does."""
    rows = list(range(len(t))) if rows is None else list(rows)
    out = t.copy()
    moved = [r for r in rows if rng.random() < rate]
    if not moved and at_least_one:
        moved = [rows[int(rng.integers(len(rows)))]]
    for r in moved:
        cur = int(out[r].argmax())
        new = int(rng.integers(NUM_OPS - 1))
        new += new >= cur
        out[r] = 0
        out[r, new] = 1
    return out


class _Generations(Searcher):
    """Bookkeeping shared by the generational searchers: ``population``, this generation's
    ``children`` told so far, ``pending`` (asked, not told) and ``queue`` (made, not asked)."""

    def __init__(self, space: str = "nats-tss", seed: int = 0) -> None:
        super().__init__(space, seed)
        self.population: list[str] = []
        self.children: list[str] = []
        self.pending: list[str] = []
        self.queue: list[str] = []

    def members(self) -> list[str]:
        return list(self.population)

    def _take(self, arch: str, first: bool) -> bool:
        """Record a told cell (into the population during a ``first`` generation, else into
        the children; a cell refused by the size limits never joins); True when the whole
        generation has been told."""
        if arch not in self.pending:
            return False
        self.pending.remove(arch)
        if self.fit(arch) > -math.inf:
            (self.population if first else self.children).append(arch)
        return not self.pending and not self.queue

    def _survive(self, size: int) -> None:
        """mu + lambda: parents and children compete; the ``size`` fittest stay, in their
        order (ties keep the older)."""
        if self.children:
            pool = self.population + self.children
            ranked = sorted(range(len(pool)), key=lambda i: (-self.fit(pool[i]), i))
            self.population = [pool[i] for i in sorted(ranked[:size])]
            self.children = []


class TableGA(_Generations):
    """A generational GA over edge x op tables (see the module docstring).

    ``generation`` counts completed generations (0 while the first population is evaluated).
    Injected cells (:meth:`inject`, e.g. GENAS's gradient-refined candidates) join the current
    generation's children.
    """

    name = "table-ga"
    accepts_injection = True

    def __init__(self, space: str = "nats-tss", seed: int = 0, *, population_size: int = 20,
                 crossover_rate: float = 0.9, mutation_rate: float = 1 / 6) -> None:
        super().__init__(space, seed)
        if population_size < 2:
            raise ValueError("population_size must be >= 2")
        if not (0 <= crossover_rate <= 1 and 0 <= mutation_rate <= 1):
            raise ValueError("crossover_rate and mutation_rate must be in [0, 1]")
        self.population_size = population_size
        self.crossover_rate = crossover_rate
        self.mutation_rate = mutation_rate
        self.generation = 0
        self._bred = False  # this generation's cells were made

    def inject(self, archs: Iterable[str]) -> list[str]:
        fresh = [a for a in archs if self._fresh(a)]
        self.queue = fresh + self.queue
        return fresh

    def _tournament(self) -> str:
        i, j = (int(x) for x in self.rng.choice(len(self.population), size=2, replace=False))
        a, b = self.population[i], self.population[j]
        return a if self.fit(a) >= self.fit(b) else b

    def _offspring(self) -> list[str]:
        out: list[str] = []
        for _ in range(20 * self.population_size if len(self.population) >= 2 else 0):
            if len(out) >= self.population_size:
                break
            pa, pb = self._tournament(), self._tournament()
            ta, tb = to_table(pa), to_table(pb)
            if self.rng.random() < self.crossover_rate:
                ta, tb = table_crossover(ta, tb, self.rng)
            for t, parents in ((ta, (pa, pb)), (tb, (pa, pb))):
                same = from_table(t) in parents
                child = from_table(table_mutation(t, self.rng, self.mutation_rate,
                                                  at_least_one=same))
                if len(out) < self.population_size and self._fresh(child):
                    out.append(child)
        while len(out) < self.population_size:  # a crowded region: fresh random cells
            a = self._random_fresh()
            if a is None:
                break
            out.append(a)
        return out

    def ask(self, n: int = 1) -> list[str]:
        if not self._bred:  # this generation's cells, after any injected ones
            if self.generation == 0:
                self.queue += [a for a in (self._random_fresh()
                                           for _ in range(self.population_size))
                               if a is not None]
            else:
                self.queue += self._offspring()
            self._bred = True
        out, self.queue = self.queue[:n], self.queue[n:]
        self.pending.extend(out)
        return out

    def _told(self, arch: str) -> None:
        if not self._take(arch, first=not self.generation):
            return
        if self.generation:
            self._select()
        else:  # the first population is in
            self.generation, self._bred = 1, False

    def _select(self) -> None:
        """The generation is told: mu + lambda, then the next generation."""
        self._survive(self.population_size)
        self.generation += 1
        self._bred = False

    def _state(self) -> dict[str, Any]:
        return {"population": self.population, "children": self.children,
                "pending": self.pending, "queue": self.queue, "generation": self.generation,
                "bred": self._bred}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.population = list(state["population"])
        self.children = list(state["children"])
        self.pending = list(state["pending"])
        self.queue = list(state["queue"])
        self.generation = int(state["generation"])
        self._bred = bool(state["bred"])


class GrowthGA(_Generations):
    """G-EvoNAS's growth stages over the cell (see the module docstring).

    Stage ``k`` (1, 2, 3) starts from ``population_size`` cells: each takes the grown edges of
    an elite of stage ``k - 1`` (in turn) and random ops on node ``k``'s edges; then
    ``generations[k - 1]`` generations of children (fewer when the stage runs out of new
    cells; a converged population is topped up with new cells of the stage), each made of
    binary-tournament parents by table
    crossover and mutation restricted to node ``k``'s edges (the earlier nodes stay the
    parent's); parents and children compete (mu + lambda). At the end of a stage its
    ``elites`` best form the elite group the next stage grows from (:attr:`stage_elites`, what
    the supernet is pruned to). Stage 3 runs until the budget ends. ``stage`` and
    ``stage_elites`` are public for the evaluator that prunes and trains between stages.
    """

    name = "growth-ga"

    def __init__(self, space: str = "nats-tss", seed: int = 0, *, population_size: int = 20,
                 generations: Sequence[int] = (1, 4), elites: int = 5,
                 crossover_rate: float = 0.9, mutation_rate: float = 0.5) -> None:
        super().__init__(space, seed)
        if population_size < 2 or elites < 1 or any(g < 1 for g in generations):
            raise ValueError("need population_size >= 2, elites >= 1, generations >= 1")
        self.population_size = population_size
        self.generations = tuple(int(g) for g in generations)
        self.n_elites = elites
        self.crossover_rate = crossover_rate
        self.mutation_rate = mutation_rate
        self.stage = 0  # 0: not started
        self.stage_generation = 0
        self.stage_elites: dict[int, list[str]] = {}
        self._final: set[str] = set()

    def final(self, arch: str) -> bool:
        """Whether ``arch`` is a whole cell evaluated at the last growth stage."""
        return self.key(arch) in self._final

    def _stage_limit(self) -> float:
        return self.generations[self.stage - 1] if self.stage <= len(self.generations) \
            else math.inf

    def _start_stage(self, stage: int) -> list[str]:
        if self.stage >= 1:
            ranked = sorted(self.population, key=lambda a: -self.fit(a))
            self.stage_elites[self.stage] = ranked[: self.n_elites]
        self.stage, self.stage_generation = stage, 0
        self.population, self.children = [], []
        return self._stage_cells(self.population_size)

    def _stage_cells(self, k: int) -> list[str]:
        """Up to ``k`` fresh cells of the current stage, each an elite prefix of the previous
        stage (in turn) with random ops on the new node's edges; when random draws keep
        hitting cells proposed before, the rest are enumerated (only when all of them were
        proposed does this come back short)."""
        import itertools

        grown = NODE_EDGES[self.stage]
        bases = [list(nats_tss.as_cell(b).ops) for b in
                 self.stage_elites.get(self.stage - 1) or [grown_cell(["none"] * 6, 0)]]
        out: list[str] = []
        for i in range(20 * k):
            if len(out) >= k:
                return out
            ops = list(bases[i % len(bases)])
            for e in grown:
                ops[e] = OPS[int(self.rng.integers(NUM_OPS))]
            a = grown_cell(ops, self.stage)
            if self._fresh(a):
                out.append(a)
        for base in bases:
            for combo in itertools.product(OPS, repeat=len(grown)):
                if len(out) >= k:
                    return out
                ops = list(base)
                for e, op in zip(grown, combo, strict=True):
                    ops[e] = op
                a = grown_cell(ops, self.stage)
                if self._fresh(a):
                    out.append(a)
        return out

    def _offspring(self) -> list[str]:
        grown = NODE_EDGES[self.stage]
        out: list[str] = []
        for _ in range(20 * self.population_size if self.population else 0):
            if len(out) >= self.population_size:
                break
            pick = [self.population[int(i)] for i in
                    self.rng.choice(len(self.population), size=min(4, len(self.population)),
                                    replace=False)]
            pa = max(pick[:2], key=self.fit)
            pb = max(pick[2:] or pick[:1], key=self.fit)
            ta, tb = to_table(pa), to_table(pb)
            if len(grown) > 1 and self.rng.random() < self.crossover_rate:
                ta, _ = table_crossover(ta, tb, self.rng, rows=grown)
            child = grown_cell(nats_tss.parse_arch(from_table(table_mutation(
                ta, self.rng, self.mutation_rate, rows=grown,
                at_least_one=from_table(ta) in (pa, pb)))).ops, self.stage)
            if self._fresh(child):
                out.append(child)
        # a converged population: the rest of the generation from the stage's own cells
        return out + self._stage_cells(self.population_size - len(out))

    def ask(self, n: int = 1) -> list[str]:
        if self.pending:
            return []
        if not self.queue:
            if self.stage == 0:
                self.queue = self._start_stage(1)
            elif self.stage_generation > self._stage_limit() and self.stage < 3:
                self.queue = self._start_stage(self.stage + 1)
            else:
                self.queue = self._offspring()
                if not self.queue and self.stage < 3:  # the stage is exhausted: grow
                    self.queue = self._start_stage(self.stage + 1)
        out, self.queue = self.queue[:n], self.queue[n:]
        self.pending.extend(out)
        if self.stage == 3:
            self._final.update(self.key(a) for a in out)
        return out

    def _told(self, arch: str) -> None:
        if self._take(arch, first=not self.stage_generation):
            self._survive(self.population_size)
            self.stage_generation += 1

    def _state(self) -> dict[str, Any]:
        return {"stage": self.stage, "stage_generation": self.stage_generation,
                "stage_elites": {str(k): v for k, v in self.stage_elites.items()},
                "population": self.population, "children": self.children,
                "pending": self.pending, "queue": self.queue, "final": sorted(self._final)}

    def _load(self, state: Mapping[str, Any]) -> None:
        self.stage = int(state["stage"])
        self.stage_generation = int(state["stage_generation"])
        self.stage_elites = {int(k): list(v) for k, v in state["stage_elites"].items()}
        self.population = list(state["population"])
        self.children = list(state["children"])
        self.pending = list(state["pending"])
        self.queue = list(state["queue"])
        self._final = set(state["final"])
