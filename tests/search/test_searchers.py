"""Searchers: the ask/tell contract, no duplicates, exact resume, method semantics, no torch."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from zcnas.search import (
    METHODS,
    LocalSearch,
    MultiFidelityEvolution,
    RandomSearch,
    RegularizedEvolution,
)
from zcnas.spaces import nats_tss

ALL = [RandomSearch, RegularizedEvolution, MultiFidelityEvolution, LocalSearch]


def conv_count(arch):
    """A deterministic toy fitness: the number of 3x3 convolutions, ties broken by 1x1s."""
    ops = nats_tss.parse_arch(arch).ops
    return ops.count("nor_conv_3x3") + 0.1 * ops.count("nor_conv_1x1")


def drive(searcher, steps, batch=8, fitness=conv_count):
    asked = []
    for _ in range(steps):
        archs = searcher.ask(batch)
        asked.extend(archs)
        searcher.tell([(a, fitness(a)) for a in archs])
    return asked


@pytest.mark.parametrize("cls", ALL)
def test_never_proposes_an_isomorphic_cell_twice(cls):
    asked = drive(cls(seed=1), 60)
    keys = [nats_tss.canonical_key(a) for a in asked]
    assert len(asked) > 50
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("cls", ALL)
def test_state_dict_resumes_exactly(cls):
    a = cls(seed=3)
    drive(a, 15)
    state = json.loads(json.dumps(a.state_dict()))  # must survive JSON
    b = cls(seed=99)
    b.load_state_dict(state)
    assert drive(a, 15) == drive(b, 15)


@pytest.mark.parametrize("cls", ALL)
def test_seeds_own_their_rng(cls):
    np.random.seed(0)
    first = drive(cls(seed=5), 10)
    np.random.seed(12345)  # the global RNG must not matter
    assert drive(cls(seed=5), 10) == first
    assert drive(cls(seed=6), 10) != first


def test_loading_another_searchers_state_is_refused():
    with pytest.raises(ValueError, match="state of searcher"):
        RandomSearch().load_state_dict(LocalSearch().state_dict())


def test_method_registry_lists_the_built_ins_in_order():
    from zcnas.search import SearchConfig, build, list_methods

    assert list_methods()[:6] == ["mfea", "rea", "random", "ls", "mfnas", "oneshot"]
    assert list_methods(lookup_only=True)[:5] == ["mfea", "rea", "random", "ls", "mfnas"]
    assert METHODS.get("rea").batch == 1 and METHODS.get("oneshot").trains
    plan = build(SearchConfig(method="rea", fitness="synflow", params={"population_size": 5}))
    assert isinstance(plan.searcher, RegularizedEvolution)
    assert plan.searcher.population_size == 5


def test_rea_keeps_a_population_of_ten_and_ages_out_the_oldest():
    s = RegularizedEvolution(seed=0, population_size=10, sample_size=3)
    first = s.ask(10)
    s.tell([(a, conv_count(a)) for a in first])
    assert s.members() == first
    child = s.ask(1)
    assert len(child) == 1
    s.tell([(child[0], 0.0)])
    assert s.members() == first[1:] + child  # the oldest left, whatever its fitness


def test_rea_mutates_the_best_of_its_sample():
    s = RegularizedEvolution(seed=0, population_size=10, sample_size=10)
    pop = s.ask(10)
    best = pop[4]
    s.tell([(a, 1.0 if a == best else 0.0) for a in pop])
    child = s.ask(1)[0]
    diff = sum(x != y for x, y in zip(nats_tss.parse_arch(child).ops,
                                      nats_tss.parse_arch(best).ops, strict=True))
    assert diff == 1


def test_mfea_generation_population_and_truncation():
    s = MultiFidelityEvolution(seed=0, population_size=20, tournament_size=5)
    init = s.ask(100)
    assert len(init) == 20
    s.tell([(a, conv_count(a)) for a in init])
    children = s.ask(100)
    assert len(children) == 2 * 4 + 1  # 4 mutants of each of 2 parents + 1 crossover
    assert s.ask(5) == []  # waits for the generation
    s.tell([(a, 10.0) for a in children])  # all children fitter than anyone
    members = s.members()
    assert len(members) == 20
    assert set(children) <= set(members)
    assert init[0] not in members  # the oldest aged out


def test_mfea_fitness_updates_feed_back_into_selection():
    s = MultiFidelityEvolution(seed=0, population_size=10, tournament_size=10, mutants=1,
                               crossovers=0, parents=1)
    pop = s.ask(10)
    s.tell([(a, 0.0) for a in pop])
    s.tell([(pop[7], 5.0)])  # escalated: its fitness rises
    child = s.ask(10)[0]
    diff = sum(x != y for x, y in zip(nats_tss.parse_arch(child).ops,
                                      nats_tss.parse_arch(pop[7]).ops, strict=True))
    assert diff == 1


def test_mfea_climbs_a_toy_fitness():
    s = MultiFidelityEvolution(seed=0, population_size=20, tournament_size=5)
    asked = drive(s, 80, batch=100)
    assert max(conv_count(a) for a in asked) == 6  # all six edges 3x3


def test_local_search_moves_to_a_fitter_neighbour_and_restarts_at_an_optimum():
    s = LocalSearch(seed=0)
    start = s.ask(1)
    s.tell([(start[0], conv_count(start[0]))])
    moves, restarts, prev = 0, 0, s.current
    for _ in range(400):
        (a,) = s.ask(1)
        s.tell([(a, conv_count(a))])
        if s.current == a:  # the new cell became the current one
            if conv_count(a) > conv_count(prev):
                moves += 1
            else:
                restarts += 1  # only a restart may move to a cell that is not fitter
            prev = a
    assert moves >= 6 and restarts >= 1  # it climbs, and leaves a local optimum


def test_rejected_cells_get_minus_inf_and_nan_counts_as_worst():
    s = RandomSearch(seed=0)
    a = s.ask(2)
    s.tell([(a[0], math.nan), (a[1], -math.inf)])
    assert s.fit(a[0]) == -math.inf and s.fit(a[1]) == -math.inf


def test_random_search_exhausts_the_space_without_repeats():
    s = RandomSearch(seed=0)
    s._proposed = {nats_tss.canonical_key(c) for c in nats_tss.all_cells()}
    drawn = []
    sample_archs = s._space.sample_archs
    s._space.sample_archs = lambda rng, n: drawn.append(n) or sample_archs(rng, n)
    try:
        assert s.ask(3) == []
    finally:
        del s._space.sample_archs
    # every class proposed: the try stops after 21 draws instead of 10,000
    assert drawn == [1, 4, 16]  # and the search stops asking
    assert len(s._space.distinct_keys()) == 6466
    # a key that is no class of the space (an old checkpoint's) does not make it exhausted
    last = nats_tss.canonical_key(nats_tss.all_cells().__next__())
    s = RandomSearch(seed=0)
    s._proposed = ({nats_tss.canonical_key(c) for c in nats_tss.all_cells()} - {last}) | {"x"}
    assert [nats_tss.canonical_key(a) for a in s.ask(2)] == [last]


def test_a_subclass_with_its_own_sampler_is_drawn_from_it():
    """The space module's batched draw stands in for ``sample`` only when ``sample`` and
    ``format_arch`` are the module's own."""
    from zcnas.spaces import get_space

    tss = get_space("nats-tss")

    class OnlyConvs(type(tss)):
        def sample(self, rng):
            return nats_tss.Cell(tuple(rng.choice(["nor_conv_1x1", "nor_conv_3x3"], 6)))

    sub = OnlyConvs()
    a, b = np.random.default_rng(0), np.random.default_rng(0)
    drawn = sub.sample_archs(a, 20)
    assert drawn == [sub.format_arch(sub.sample(b)) for _ in range(20)]
    assert all("none" not in x and "skip" not in x and "pool" not in x for x in drawn)


def _plain_random_fresh(searcher, space, tries=10_000):
    """The searchers' random draw, one cell at a time: skip the cells proposed before, and
    stop after 21 failed draws when every class has been proposed."""
    for i in range(tries):
        a = searcher.fmt(space.sample(searcher.rng))
        if searcher._fresh(a):
            return a
        if i == 20 and space.distinct_keys() <= searcher._proposed:
            return None
    return None


@pytest.mark.parametrize("space", ["nats-tss", "nats-sss"])
def test_batched_random_draws_consume_the_stream_of_one_draw_at_a_time(space):
    """``_random_fresh`` draws in batches and rewinds: what it returns, and every draw made
    after it, must be those of the plain loop."""
    from zcnas.spaces import get_space

    sp = get_space(space)
    keys = sorted({sp.canonical_key(a) for a in sp.all_archs()})
    pick = np.random.default_rng(7)
    # nothing proposed; 300 classes proposed; all but 40 proposed (thousands of draws per
    # cell, batches of up to 1024 rewound, and the 10,000-draw cap reached)
    cases = [(0, len(keys)), (1, len(keys) - 300)] + ([(2, 40)] if space == "nats-tss" else [])
    for seed, left in cases:
        s, plain = RandomSearch(space=space, seed=seed), RandomSearch(space=space, seed=seed)
        keep = set(pick.choice(len(keys), size=left, replace=False).tolist())
        for x in (s, plain):
            x._proposed = {k for i, k in enumerate(keys) if i not in keep}
        calls = 45 if left == 40 else 30
        got = [s._random_fresh() for _ in range(calls)]
        assert got == [_plain_random_fresh(plain, sp) for _ in range(calls)]
        assert s.rng.integers(1 << 62) == plain.rng.integers(1 << 62)
        if left == 40:
            assert None in got and len(set(got) - {None}) > 5
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    batch = sp.sample_archs(rng_a, 37)
    assert batch == [sp.format_arch(sp.sample(rng_b)) for _ in range(37)]
    assert rng_a.random() == rng_b.random()


def test_searchers_do_not_import_torch():
    code = ("import sys, zcnas.search, zcnas.search.searchers, zcnas.search.ladder;"
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tell_updates_every_fitness_before_any_decision():
    s = MultiFidelityEvolution(seed=0, population_size=4, tournament_size=2, mutants=1,
                               crossovers=0, parents=1, age_out=0)
    pop = s.ask(4)
    s.tell([(a, 0.1 if a == pop[1] else 1.0) for a in pop])
    kid = s.ask(4)
    assert len(kid) == 1
    # the child and an escalated member arrive together: truncation must see the member's 5.0
    s.tell([(kid[0], 1.5), (pop[1], 5.0)])
    assert pop[1] in s.members()
    ls = LocalSearch(seed=0)
    start = ls.ask(1)[0]
    ls.tell([(start, 1.0)])
    nb = ls.ask(1)[0]
    ls.tell([(nb, 0.8), (start, 0.5)])  # the current cell is re-ranked in the same tell
    assert ls.current == nb
