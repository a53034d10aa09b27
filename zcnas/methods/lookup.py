"""The lookup-based methods: random search, regularised evolution, local search, MFEA and an
MF-NAS-like successive-halving method.

Without a lookup every one of them searches on the zero-cost fidelity alone (the run's
``--fitness``), so a search can run anywhere; with one, the baselines evaluate every cell at
the 12-epoch lookup (NATS-Bench's protocol) and the multi-fidelity methods escalate the best
zero-cost cells to lookups during the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from zcnas.fidelity.stages import lookup, proxy
from zcnas.search.ladder import Ladder, Promotion, Stage
from zcnas.search.method import BuildContext, Method, NoParams
from zcnas.search.searchers import (
    LocalSearch,
    MultiFidelityEvolution,
    RandomSearch,
    RegularizedEvolution,
)

#: MF-NAS's rungs (epochs of the full schedule); the full schedule's length is always the last.
MFNAS_RUNGS = (12, 25, 50, 100, 200)


def _zero_cost_only(ctx: BuildContext) -> Ladder:
    return Ladder([Stage(proxy(ctx))], select="top")


def _lookup_baseline(ctx: BuildContext, _searcher) -> Ladder:
    """Every cell at the 12-epoch lookup (no lookup: the zero-cost fidelity)."""
    if ctx.bench is None:
        return _zero_cost_only(ctx)
    return Ladder([Stage(lookup(ctx, 12))], select="top")


@dataclass(frozen=True)
class ReaParams:
    population_size: int = 10
    sample_size: int = 3


@dataclass(frozen=True)
class MfeaParams:
    """MFNAS's loop (population 100, tournament 25, 2 parents x 4 one-edge mutants + 1
    crossover, ageing of the oldest) and the share of the zero-cost stage escalated."""

    population_size: int = 100
    tournament_size: int = 25
    parents: int = 2
    mutants: int = 4
    crossovers: int = 1
    age_out: int = 1
    promote_fraction: float = 0.05


@dataclass(frozen=True)
class MfnasParams:
    zero_cost_evals: int = 2000
    top_k: int = 32


def _mfea_searcher(ctx: BuildContext) -> MultiFidelityEvolution:
    p = ctx.params
    return MultiFidelityEvolution(ctx.config.space, ctx.config.seed,
                                  population_size=p.population_size,
                                  tournament_size=p.tournament_size, parents=p.parents,
                                  mutants=p.mutants, crossovers=p.crossovers,
                                  age_out=p.age_out)


def _mfea_ladder(ctx: BuildContext, searcher: MultiFidelityEvolution) -> Ladder:
    """Zero-cost ensemble -> top ``promote_fraction`` -> 12-epoch lookup; with a validation
    split it continues -> top 25% -> the full schedule's validation accuracy. Final choice
    (auto): the best cell at the highest stage reached (chosen on CIFAR-10 with the default
    fitness; ``results/search/README.md``)."""
    if ctx.bench is None:
        return _zero_cost_only(ctx)
    split = ctx.selection_split()
    stages = [Stage(proxy(ctx), Promotion(fraction=ctx.params.promote_fraction,
                                          min_results=searcher.population_size)),
              Stage(lookup(ctx, 12))]
    if split == "valid":
        stages[-1].promote = Promotion(fraction=0.25, min_results=4)
        stages.append(Stage(lookup(ctx, ctx.bench.full_epochs, split="valid")))
    return Ladder(stages, select=ctx.select("top"))


def _mfnas_ladder(ctx: BuildContext, _searcher) -> Ladder:
    """``zero_cost_evals`` zero-cost evaluations, then the best ``top_k`` go through
    successive halving on the validation learning curve at MF-NAS's rungs where the archive
    records it (CIFAR-10), else the 12-epoch schedule then (validation only) the full one."""
    if ctx.bench is None:
        return _zero_cost_only(ctx)
    bench, ds, p = ctx.bench, ctx.config.dataset, ctx.params
    split = ctx.selection_split()
    full = bench.full_epochs
    stages = [Stage(proxy(ctx), Promotion(top_k=p.top_k, sync=True),
                    max_evals=p.zero_cost_evals)]
    candidates = sorted({e for e in MFNAS_RUNGS if e < full} | {full})
    rungs = [e for e in candidates
             if split == "valid" and bench.has_curve_point(ds, e, hp=full, split="valid")]
    if len(rungs) > 1:
        paid: dict[str, int] = {}
        for e in rungs:
            stages[-1].promote = stages[-1].promote or Promotion(fraction=0.5, sync=True)
            stages.append(Stage(lookup(ctx, e, hp=full, split="valid", paid=paid)))
    else:
        stages.append(Stage(lookup(ctx, 12)))
        if split == "valid":
            stages[-1].promote = Promotion(fraction=0.5, sync=True)
            stages.append(Stage(lookup(ctx, full, split="valid")))
    return Ladder(stages, select=ctx.select("top"))


RANDOM = Method(
    name="random", description="random search on 12-epoch lookups",
    searcher=lambda ctx: RandomSearch(ctx.config.space, ctx.config.seed),
    ladder=_lookup_baseline, params=NoParams, batch=1, uses_fitness=False)

REA = Method(
    name="rea", description="regularised evolution on 12-epoch lookups (population 10, "
                            "sample 3)",
    searcher=lambda ctx: RegularizedEvolution(
        ctx.config.space, ctx.config.seed, population_size=ctx.params.population_size,
        sample_size=ctx.params.sample_size),
    ladder=_lookup_baseline, params=ReaParams, batch=1, uses_fitness=False)

LS = Method(
    name="ls", description="local search (first improvement, restarts) on 12-epoch lookups",
    searcher=lambda ctx: LocalSearch(ctx.config.space, ctx.config.seed),
    ladder=_lookup_baseline, params=NoParams, batch=1, uses_fitness=False)

MFEA = Method(
    name="mfea", description="multi-fidelity evolution: zero-cost ensemble -> lookups, "
                             "escalated during the run",
    searcher=_mfea_searcher, ladder=_mfea_ladder, params=MfeaParams,
    # 60 s of data-free proxies score 60-70 cells: MFNAS's population of 100 would spend them
    # all on random cells. A population of 20 (tournament 5) evolves for the rest: median
    # chosen cell 93.43 % against 93.27 % over seeds 0-9 (results/search/quickstart-data-free.md)
    quick_params=(("population_size", 20), ("tournament_size", 5)))

MFNAS = Method(
    name="mfnas", description="MF-NAS-like: 2,000 zero-cost evaluations, top 32 -> "
                              "successive halving",
    searcher=lambda ctx: RandomSearch(ctx.config.space, ctx.config.seed),
    ladder=_mfnas_ladder, params=MfnasParams)
