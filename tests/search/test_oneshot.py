"""Training fidelities in a search: candidates found by an evaluator are injected into the
population, cells outside a pruned supernet are refused before any cost, the population is
shown to the evaluator, and the ``oneshot`` method runs end to end on real images."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.search.test_ladder import Toy, cells
from zcnas.search import (
    METHODS,
    Ladder,
    Promotion,
    Proposer,
    SearchConfig,
    Stage,
    build,
    run_search,
)
from zcnas.search.searchers import MultiFidelityEvolution
from zcnas.spaces import nats_tss


def test_mfea_proposes_injected_cells_next_and_never_twice():
    s = MultiFidelityEvolution(seed=0, population_size=4, tournament_size=2)
    first = s.ask(4)
    s.tell([(a, float(i)) for i, a in enumerate(first)])
    new = [a for a in cells(3, seed=9) if nats_tss.canonical_key(a) not in
           {nats_tss.canonical_key(x) for x in first}]
    assert s.inject(new + first[:1]) == new  # already proposed: dropped
    assert s.ask(len(new)) == new
    s.tell([(a, 10.0) for a in new])
    assert set(new) <= set(s.members())
    assert MultiFidelityEvolution.accepts_injection


class Guided(Toy):
    """A fidelity that, like the supernet, watches the population and refuses a region (as a
    pruned supernet does)."""

    def __init__(self, refuse):
        super().__init__("guided", 1.0, lambda a: a.count("conv"), known_cost=True)
        self.refuse = refuse
        self.populations = []

    def observe_population(self, members):
        self.populations.append(list(members))

    def admits(self, arch):
        return not self.refuse(arch)


class Once(Proposer):
    """A proposer (a gradient-guided search stands here) that proposes its cells once the
    second stage has a result, and takes a known time."""

    name = "once"
    stage = 1

    def __init__(self, cells, seconds=0.05):
        self.cells, self.seconds, self.calls = list(cells), seconds, 0

    def due(self, ladder, searcher):
        return bool(self.cells) and len(ladder.records[1]) > 0

    def propose(self, ladder, searcher, time_limit=None):
        import time

        self.calls += 1
        time.sleep(self.seconds)
        out, self.cells = self.cells, []
        return out


def test_driver_injects_proposals_refuses_outside_cells_and_shows_the_population():
    refuse = lambda a: nats_tss.parse_arch(a).ops[0] == "none"  # noqa: E731
    wanted = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|" \
             "nor_conv_3x3~1|nor_conv_3x3~2|"
    zero = Toy("zc", 0.1, lambda a: -a.count("none"))
    guided = Guided(refuse)
    ladder = Ladder([Stage(zero, Promotion(fraction=0.5, min_results=8)), Stage(guided)])
    searcher = MultiFidelityEvolution(seed=1, population_size=8, tournament_size=4)
    cfg = SearchConfig(method="mfea", budget=30.0, seed=1)
    once = Once([wanted])
    res = run_search(cfg, searcher, ladder, proposers=[once])
    assert once.calls == 1
    assert nats_tss.canonical_key(wanted) in ladder.records[0]  # proposed, then evaluated
    evaluated = [r.arch for stage in ladder.records for r in stage.values()]
    assert not any(refuse(a) for a in evaluated)
    assert res.rejected > 0  # refused cells were counted, never charged
    assert guided.populations and any(guided.populations[-1])
    # the proposer's seconds are charged and booked on its stage: the costs still add up
    assert sum(res.cost_by_stage) == pytest.approx(res.cost)
    upkeep = [c for s, k, c in ladder.log if k == ""]
    assert len(upkeep) == 1 and upkeep[0] >= 0.05


def test_all_means_the_methods_that_do_not_train():
    from zcnas.experiments.session import SearchRequest, SearchSession

    assert "oneshot" in METHODS and METHODS.get("oneshot").trains
    sess = SearchSession.create(SearchRequest(methods=("all",), lookup="none", seeds=1,
                                              fitness="synflow", store=None))
    assert "oneshot" not in {c.method for c in sess.configs}


@pytest.mark.parametrize("space", ["nats-sss"])
def test_oneshot_needs_the_topology_space(space, data_root):
    from zcnas.errors import UserError

    with pytest.raises(UserError, match="defined for the nats-tss space"):
        build(SearchConfig(space=space, method="oneshot", fitness="synflow"), root=data_root)


@pytest.mark.slow  # the command-line test runs oneshot end to end in the default run
def test_oneshot_searches_on_real_images_within_its_budget(data_root, tmp_path):
    cfg = SearchConfig(method="oneshot", budget=15.0, fitness="synflow",
                       params={"train_epochs": 1, "warmup_epochs": 0.1, "population": 8,
                               "image_limit": 120})
    plan = build(cfg, root=data_root, workdir=tmp_path / "run")
    ladder = plan.ladder
    assert [s.evaluator.name for s in ladder.stages] == ["proxy:synflow", "supernet",
                                                         "train@1"]
    assert [p.name for p in plan.proposers] == ["gradient-guided search"]
    res = plan.run(checkpoint=tmp_path / "run.json")
    assert res.cost <= cfg.budget + 1e-6
    assert res.evals_by_stage[0] >= 8 and res.evals_by_stage[1] >= 1
    assert list((tmp_path / "run").glob("supernet-*.pt"))
    assert res.arch is not None and np.isfinite(res.chosen_values["supernet"])
    assert math.isnan(res.reported or math.nan)  # no lookup given: nothing reported

