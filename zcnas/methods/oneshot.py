"""The ``oneshot`` method: multi-fidelity evolution on training fidelities, no lookup needed.

Zero-cost ensemble -> weight-sharing supernet -> stand-alone training, on the dataset's own
images. The population's best quarter by zero-cost score is scored by the supernet (by
default the CPU recipe results/supernet measured: 8 channels x 1 cell per stage, held-out
loss, its rank fused with the zero-cost rank), which
fine-tunes on the population every quarter-population of cells and prunes its edges to the
ops of its 10 best cells every two populations; every half population a gradient-guided local
search around those 10 (GENAS) proposes new cells to the searcher (:class:`GradientProposer`);
the best tenth of the supernet stage is trained from scratch. The budget is real seconds of
this machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zcnas.fidelity.stages import proxy
from zcnas.search.base import Searcher
from zcnas.search.ladder import Ladder, Promotion, Stage
from zcnas.search.method import BuildContext, Method
from zcnas.search.proposer import Proposer
from zcnas.search.searchers import MultiFidelityEvolution


@dataclass(frozen=True)
class OneshotParams:
    """``population``: MFEA's population; ``warmup_epochs``: supernet training before it
    scores its first cell; ``train_epochs``: stand-alone training at the top stage;
    ``image_limit``: train on the first N training images only (None: all); ``channels`` /
    ``cells``: the supernet's width and cells per stage; ``metric``: what the supernet ranks
    by (held-out ``loss`` or ``accuracy``); ``fused``: the supernet stage ranks by the fusion
    of its rank and the zero-cost rank (results/supernet: better than either alone);
    ``supernets``: independently seeded supernets whose mean scores a cell (each is trained
    the full warm-up, so the stage costs that many times one supernet)."""

    population: int = 100
    warmup_epochs: float = 30.0
    train_epochs: int = 12
    image_limit: int | None = None
    channels: int = 8
    cells: int = 1
    metric: str = "loss"
    fused: bool = True
    supernets: int = 1

    def __post_init__(self) -> None:
        if self.population < 4:
            raise ValueError(f"--population must be at least 4, got {self.population}")
        if self.supernets < 1:
            raise ValueError(f"supernets must be >= 1, got {self.supernets}")
        if self.warmup_epochs < 0:
            raise ValueError(f"--warmup-epochs must be >= 0, got {self.warmup_epochs:g}")
        if self.train_epochs < 1:
            raise ValueError(f"--train-epochs must be >= 1, got {self.train_epochs}")
        if self.image_limit is not None and self.image_limit < 1:
            raise ValueError(f"--image-limit must be >= 1, got {self.image_limit}")
        if self.channels < 1 or self.cells < 1:
            raise ValueError("channels and cells must be >= 1")
        if self.metric not in ("loss", "accuracy"):
            raise ValueError(f"metric must be loss or accuracy, got {self.metric!r}")


class GradientProposer(Proposer):
    """GENAS's gradient-guided local search as a proposer: every ``every`` cells scored by the
    supernet stage, relax the op table of the supernet's ``elites`` best cells, take
    ``steps`` gradient steps on held-out data with the supernet frozen, and propose the
    ``candidates`` best new cells (:meth:`SupernetTrainer.gradient_search`)."""

    name = "gradient-guided search"

    def __init__(self, evaluator: Any, *, stage: int, every: int, steps: int = 5,
                 candidates: int = 4) -> None:
        self.evaluator = evaluator
        self.stage = stage
        self.every = every
        self.steps = steps
        self.candidates = candidates
        self._last = 0  # cells of the stage when it last ran

    def due(self, ladder: Ladder, searcher: Searcher) -> bool:
        n = len(ladder.records[self.stage])
        return self.every > 0 and n // self.every > self._last // self.every \
            and bool(self.evaluator.elites())

    def propose(self, ladder: Ladder, searcher: Searcher,
                time_limit: float | None = None) -> list[str]:
        import time

        from zcnas.fidelity.train import DeadlineExceeded

        self._last = len(ladder.records[self.stage])
        deadline = None if time_limit is None else time.perf_counter() + time_limit
        try:
            return self.evaluator.trainer.gradient_search(
                self.evaluator.elites(), steps=self.steps, candidates=self.candidates,
                deadline=deadline)
        except DeadlineExceeded:
            return []

    def state_dict(self) -> dict[str, Any]:
        return {"last": self._last}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._last = int(state.get("last", 0))


def _searcher(ctx: BuildContext) -> MultiFidelityEvolution:
    pop = ctx.params.population
    return MultiFidelityEvolution(ctx.config.space, ctx.config.seed, population_size=pop,
                                  tournament_size=max(2, pop // 4))


def _ladder(ctx: BuildContext, _searcher) -> Ladder:
    from zcnas.data.training import TrainingData
    from zcnas.fidelity.supernet import SupernetEvaluator, SupernetRecipe
    from zcnas.fidelity.train import TrainEvaluator

    c, p = ctx.config, ctx.params
    pop = p.population
    data = TrainingData.load(c.dataset, ctx.root, valid=0.1, limit=p.image_limit)
    wd = Path(ctx.workdir) if ctx.workdir is not None else None
    zero_cost = proxy(ctx)
    supernet = SupernetEvaluator(
        dataset=c.dataset, data=data, seed=c.seed, device=c.device,
        recipe=SupernetRecipe(channels=p.channels, cells=p.cells), metric=p.metric,
        fuse=zero_cost if p.fused else None,
        warmup_epochs=p.warmup_epochs, finetune_every=max(1, pop // 4), prune_every=2 * pop,
        supernets=p.supernets,
        elites=10, checkpoint=wd / "supernet.pt" if wd is not None else None)
    train = TrainEvaluator(p.train_epochs, dataset=c.dataset, data=data, seed=c.seed,
                           device=c.device,
                           checkpoint_dir=wd / "train" if wd is not None else None)
    stages = [Stage(zero_cost, Promotion(fraction=0.25, min_results=pop)),
              Stage(supernet, Promotion(fraction=0.1, min_results=10)),
              Stage(train)]
    return Ladder(stages, select=ctx.select("top"))


def _proposers(ctx: BuildContext, _searcher, ladder: Ladder) -> list[Proposer]:
    from zcnas.fidelity.supernet import SupernetEvaluator

    found = [(i, s.evaluator) for i, s in enumerate(ladder.stages)
             if isinstance(s.evaluator, SupernetEvaluator)]
    if not found:  # a custom --ladder without a supernet stage
        return []
    stage, ev = found[0]
    return [GradientProposer(ev, stage=stage, every=max(1, ctx.params.population // 2))]


ONESHOT = Method(
    name="oneshot",
    description="multi-fidelity evolution on training fidelities: zero-cost ensemble -> "
                "weight-sharing supernet (fine-tuned on the population, pruned by elites, "
                "gradient-guided candidates) -> stand-alone training (no lookup needed)",
    searcher=_searcher, ladder=_ladder, proposers=_proposers, params=OneshotParams,
    trains=True, spaces=("nats-tss",))
