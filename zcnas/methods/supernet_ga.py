"""The three supernet papers as search methods: ``genas``, ``gevonas`` and ``ftga``.

Each is a searcher over edge x op tables (:mod:`zcnas.search.tables`) whose fitness is a
weight-sharing supernet kept in step with the search (:class:`SupernetFitness`), on the
dataset's own images; the budget is wall seconds of this machine, a lookup (when given) only
reports the chosen cell. Every part resumes exactly from the search's checkpoint, supernet
weights, optimiser and RNGs included.

**genas** (gradient-guided evolutionary NAS, Xue et al., TNNLS 2024). A generational GA on
edge x op tables (binary tournaments, table crossover, table mutation, mu + lambda). Every
``local_search_every`` generations the ``local_search_top`` best members undergo the
differentiable local search: the member's table is relaxed (``confidence`` on its ops), Adam
steps on held-out cross-entropy move the relaxation with the supernet frozen, the argmax of
each edge is taken back, and the refined cell joins the next generation (a
:class:`~zcnas.search.Proposer`). Evaluation is decoupled: each cell's inherited weights take
``adapt_steps`` SGD steps of their own before it is scored, then are put back.

**gevonas** (G-EvoNAS, network growth and elite pruning, Zou et al.). The cell grows node by
node: stage 1 evolves node 1's incoming edge, stage 2 node 2's, stage 3 node 3's, earlier
nodes fixed to the previous stage's elite group (a partial cell is the cell whose newest node
feeds the output, later nodes cut off). At each new stage the supernet is pruned to the ops
the elite group uses on the grown edges and trained ``stage_epochs`` on the new stage's cells
inside the pruned space. The answer is the best whole cell of stage 3; a run whose budget ends
before stage 3 answers with the best cell of the last stage reached (itself a cell of the space,
its newest node wired to the output).

**ftga** (one-shot NAS with supernet fine-tuning, Yuan, Xue and Zhang, GECCO 2023). The same
GA; before each generation's children are scored, the supernet is fine-tuned
``finetune_epochs`` on paths of the current population (the region the search is in), and
every member is scored again with the new weights, so a child is only ever compared with
parents scored under the same weights (values of older weights are never compared:
:meth:`SupernetFitness.relative_values`).

Deviations from the papers, all forced by the topology space or this CPU:

* The supernet is the NAS-Bench-201 skeleton at ``channels`` x ``cells`` per stage (8 x 1 by
  default on CPU, 16 x 5 is NAS-Bench-201's own): results/supernet measured the narrow one
  ranking better within an hour of CPU training. Training follows NAS-Bench-201's
  weight-sharing recipe with uniform de-isomorphic paths; the papers train their own spaces.
* The fitness is the held-out loss (``metric``), not accuracy: on 500 held-out images the
  accuracy cannot order paths a few points apart (results/supernet). With ``fused`` the
  search ranks by the AZ-NAS fusion of the supernet's rank and the run's zero-cost fitness,
  where results/supernet shows the fusion beating either alone.
* G-EvoNAS grows a chain of blocks in its own space; on a NAS-Bench-201 cell "growing" is
  node by node, the only order in which a node's inputs exist before it.
* Population sizes and generation counts are scaled to a CPU budget of minutes (the GPU
  protocol in the README uses the papers' sizes).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zcnas.search.base import Searcher
from zcnas.search.ladder import Ladder, Stage
from zcnas.search.method import BuildContext, Method
from zcnas.search.proposer import Proposer
from zcnas.search.tables import GrowthGA, TableGA


@dataclass(frozen=True)
class SupernetGAParams:
    """``population``: cells per generation; ``warmup_epochs``: supernet training before the
    first cell is scored; ``channels`` / ``cells``: the supernet's width and cells per stage;
    ``metric``: ``loss`` or ``accuracy`` on the held-out images; ``fused``: rank by the fusion
    of the supernet and the run's zero-cost fitness; ``held_out``: held-out images;
    ``image_limit``: train on the first N training images only (None: all); ``supernets``:
    independently seeded supernets whose mean scores a cell (:class:`SupernetPool`; each is
    trained alike, so the fitness costs that many times one supernet)."""

    population: int = 20
    warmup_epochs: float = 50.0
    channels: int = 8
    cells: int = 1
    metric: str = "loss"
    fused: bool = True
    held_out: int = 500
    image_limit: int | None = None
    supernets: int = 1

    def __post_init__(self) -> None:
        if self.population < 4:
            raise ValueError(f"population must be at least 4, got {self.population}")
        if self.supernets < 1:
            raise ValueError(f"supernets must be >= 1, got {self.supernets}")
        if self.warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {self.warmup_epochs:g}")
        if self.channels < 1 or self.cells < 1:
            raise ValueError("channels and cells must be >= 1")
        if self.metric not in ("loss", "accuracy"):
            raise ValueError(f"metric must be loss or accuracy, got {self.metric!r}")
        if self.held_out < 1:
            raise ValueError(f"held_out must be >= 1, got {self.held_out}")
        if self.image_limit is not None and self.image_limit < 1:
            raise ValueError(f"image_limit must be >= 1, got {self.image_limit}")


@dataclass(frozen=True)
class GenasParams(SupernetGAParams):
    """GENAS: ``local_search_every`` generations, the ``local_search_top`` best members take
    ``local_search_steps`` gradient steps; ``adapt_steps``: each cell's own SGD steps before
    it is scored (decoupled evaluation)."""

    local_search_every: int = 2
    local_search_top: int = 4
    local_search_steps: int = 5
    adapt_steps: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.local_search_every < 1 or self.local_search_top < 0 \
                or self.local_search_steps < 1 or self.adapt_steps < 0:
            raise ValueError("local_search_every and local_search_steps must be >= 1, "
                             "local_search_top and adapt_steps >= 0")


@dataclass(frozen=True)
class GevonasParams(SupernetGAParams):
    """G-EvoNAS: ``stage_generations`` generations of children at stage 2 after its first
    population (stage 1 has only five cells, stage 3 runs to the end of the budget);
    ``elites``: the elite group each stage grows from and prunes to; ``stage_epochs``:
    supernet training on each new stage's pruned space."""

    stage_generations: int = 3
    elites: int = 5
    stage_epochs: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.stage_generations < 1 or self.elites < 1 or self.stage_epochs < 0:
            raise ValueError("stage_generations and elites must be >= 1, stage_epochs >= 0")


@dataclass(frozen=True)
class FtgaParams(SupernetGAParams):
    """FTGA: ``finetune_epochs`` of fine-tuning on the population's paths each generation."""

    finetune_epochs: float = 2.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.finetune_epochs <= 0:
            raise ValueError(f"finetune_epochs must be > 0, got {self.finetune_epochs:g}")


class LocalSearchProposer(Proposer):
    """GENAS's differentiable local search as a proposer: every ``every`` generations, the
    ``top`` best members are refined by :meth:`SupernetTrainer.refine`; refined cells that are
    new join the next generation."""

    name = "differentiable local search"
    stage = 0

    def __init__(self, fitness: Any, *, every: int, top: int, steps: int) -> None:
        self.fitness, self.every, self.top, self.steps = fitness, every, top, steps
        self._last = 0  # the generation it last ran at

    def due(self, ladder: Ladder, searcher: Searcher) -> bool:
        g = searcher.generation
        return self.top > 0 and g >= self.every and g % self.every == 0 and g != self._last

    def propose(self, ladder: Ladder, searcher: Searcher,
                time_limit: float | None = None) -> list[str]:
        from zcnas.fidelity.train import DeadlineExceeded

        self._last = searcher.generation
        deadline = None if time_limit is None else time.perf_counter() + time_limit
        best = sorted(searcher.members(), key=lambda a: -searcher.fit(a))[: self.top]
        out = []
        try:
            for a in best:
                refined = self.fitness.trainer.refine(a, steps=self.steps, deadline=deadline)
                if searcher.key(refined) != searcher.key(a):
                    out.append(refined)
        except DeadlineExceeded:
            return []
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"last": self._last}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._last = int(state.get("last", 0))


def _fitness(ctx: BuildContext, searcher: Searcher, **options: Any):
    from zcnas.data.training import TrainingData
    from zcnas.fidelity.supernet import SupernetRecipe, make_supernet
    from zcnas.fidelity.supernet_fitness import SupernetFitness

    c, p = ctx.config, ctx.params
    data = TrainingData.load(c.dataset, ctx.root, valid=p.held_out, limit=p.image_limit)
    trainer = make_supernet(c.dataset, supernets=p.supernets, data=data, seed=c.seed,
                            device=c.device,
                            recipe=SupernetRecipe(channels=p.channels, cells=p.cells))
    fuse = None
    if p.fused:
        from zcnas.fidelity.stages import proxy

        fuse = proxy(ctx)
    wd = Path(ctx.workdir) if ctx.workdir is not None else None
    return SupernetFitness(trainer, searcher=searcher, warmup_epochs=p.warmup_epochs,
                           metric=p.metric, fuse=fuse, checkpoint_dir=wd, **options)


def _table_ga(ctx: BuildContext) -> TableGA:
    return TableGA(ctx.config.space, ctx.config.seed, population_size=ctx.params.population)


def _genas_ladder(ctx: BuildContext, searcher: Searcher) -> Ladder:
    return Ladder([Stage(_fitness(ctx, searcher, adapt_steps=ctx.params.adapt_steps))])


def _genas_proposers(ctx: BuildContext, searcher: Searcher, ladder: Ladder) -> list[Proposer]:
    from zcnas.fidelity.supernet_fitness import SupernetFitness

    ev = ladder.stages[0].evaluator
    if not isinstance(ev, SupernetFitness):  # a custom --ladder
        return []
    p = ctx.params
    return [LocalSearchProposer(ev, every=p.local_search_every, top=p.local_search_top,
                                steps=p.local_search_steps)]


def _growth_ga(ctx: BuildContext) -> GrowthGA:
    p = ctx.params
    return GrowthGA(ctx.config.space, ctx.config.seed, population_size=p.population,
                    generations=(1, p.stage_generations), elites=p.elites)


def _gevonas_ladder(ctx: BuildContext, searcher: Searcher) -> Ladder:
    ladder = Ladder([Stage(_fitness(ctx, searcher, upkeep="growth",
                                    stage_epochs=ctx.params.stage_epochs))])
    ladder.eligible = searcher.final
    return ladder


def _ftga_ladder(ctx: BuildContext, searcher: Searcher) -> Ladder:
    return Ladder([Stage(_fitness(ctx, searcher, upkeep="finetune",
                                  finetune_epochs=ctx.params.finetune_epochs))])


_COMMON = {"trains": True, "spaces": ("nats-tss",), "batch": 64}

GENAS = Method(
    name="genas",
    description="gradient-guided evolutionary NAS (Xue et al., TNNLS 2024): table GA on a "
                "supernet, differentiable local search of the best every few generations, "
                "decoupled evaluation (no lookup needed)",
    searcher=_table_ga, ladder=_genas_ladder, proposers=_genas_proposers, params=GenasParams,
    **_COMMON)

GEVONAS = Method(
    name="gevonas",
    description="G-EvoNAS: the cell grows node by node, the supernet pruned to the elite "
                "group's ops and trained at each stage (no lookup needed)",
    searcher=_growth_ga, ladder=_gevonas_ladder, params=GevonasParams, **_COMMON)

FTGA = Method(
    name="ftga",
    description="one-shot NAS with supernet fine-tuning (Yuan, Xue, Zhang, GECCO 2023): GA "
                "whose supernet is fine-tuned on the population each generation, parents "
                "re-scored with the new weights (no lookup needed)",
    searcher=_table_ga, ladder=_ftga_ladder, params=FtgaParams, **_COMMON)
