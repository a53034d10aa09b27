"""The table searchers of the supernet methods: table operators, the generational GA and
G-EvoNAS's growth stages (pure, no torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from zcnas.search import Ladder, Stage
from zcnas.search.tables import (
    NODE_EDGES,
    GrowthGA,
    TableGA,
    from_table,
    grown_cell,
    table_crossover,
    table_mutation,
    to_table,
)
from zcnas.spaces import nats_tss

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
B = "|none~0|+|skip_connect~0|none~1|+|nor_conv_1x1~0|avg_pool_3x3~1|none~2|"


def conv_count(arch: str) -> float:
    return float(arch.count("conv"))


def drive(searcher, fitness, steps: int, batch: int = 64) -> list[str]:
    """ask/tell like the driver: every asked cell and every member told each step."""
    asked = []
    for _ in range(steps):
        got = searcher.ask(batch)
        if not got:
            break
        asked += got
        told = [(a, fitness(a)) for a in got]
        searcher.tell(told + [(m, fitness(m)) for m in searcher.members()])
    return asked


def test_table_round_trip_and_operators():
    assert from_table(to_table(A)) == A
    t = to_table(A)
    assert t.shape == (6, 5) and (t.sum(1) == 1).all()
    rng = np.random.default_rng(0)
    ta, tb = to_table(A), to_table(B)
    for _ in range(50):
        c, d = table_crossover(ta, tb, rng)
        swapped = [r for r in range(6) if not (c[r] == ta[r]).all()]
        # one block of consecutive rows changed hands, and the children are complementary
        assert swapped == list(range(swapped[0], swapped[-1] + 1)) if swapped else True
        assert ((c + d) == (ta + tb)).all()
        m = table_mutation(ta, rng, rate=0.0, at_least_one=True)
        assert (m != ta).any(axis=1).sum() == 1 and (m.sum(1) == 1).all()
        g = table_mutation(ta, rng, rate=1.0, rows=[3, 4])
        moved = set(np.flatnonzero((g != ta).any(axis=1)))
        assert moved == {3, 4}


def test_table_ga_is_generational_mu_plus_lambda_and_never_repeats():
    s = TableGA(seed=3, population_size=8)
    asked = drive(s, conv_count, 12)
    keys = [nats_tss.canonical_key(a) for a in asked]
    assert len(keys) == len(set(keys)) == 8 * 12
    assert s.generation == 12
    # mu + lambda: the population is the 8 fittest of everything seen
    best = sorted((conv_count(a) for a in asked), reverse=True)[:8]
    assert sorted((conv_count(a) for a in s.members()), reverse=True) == best


def test_table_ga_takes_injected_cells_into_the_generation():
    s = TableGA(seed=0, population_size=4)
    drive(s, conv_count, 1)
    fresh = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|" \
            "nor_conv_3x3~2|"
    assert s.inject([fresh, s.members()[0]]) == [fresh]
    got = s.ask(64)
    assert got[0] == fresh and len(got) == 5
    s.tell([(a, conv_count(a)) for a in got])
    assert fresh in s.members() and s.generation == 2


@pytest.mark.parametrize("cls", [TableGA, GrowthGA])
def test_state_round_trips_through_json(cls):
    s = cls(seed=5, population_size=6)
    drive(s, conv_count, 4)
    t = cls(seed=99, population_size=6)
    t.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert drive(t, conv_count, 3) == drive(s, conv_count, 3)


def test_grown_cells_cut_off_the_nodes_not_grown_yet():
    ops = ["nor_conv_3x3"] * 6
    one, two = grown_cell(ops, 1), grown_cell(ops, 2)
    # stage 1: only node 1 reaches the output, through a skip connection
    assert nats_tss.live_edges(one) == (True, False, False, False, True, False)
    assert nats_tss.parse_arch(one).ops[4] == "skip_connect"
    assert nats_tss.live_edges(two) == (True, True, True, False, False, True)
    assert grown_cell(ops, 3) == nats_tss.format_arch(nats_tss.Cell(tuple(ops)))


def test_growth_ga_grows_node_by_node_from_the_elites():
    s = GrowthGA(seed=1, population_size=6, generations=(1, 3), elites=2)
    seen = {1: [], 2: [], 3: []}
    for _ in range(12):
        got = s.ask(64)
        if not got:
            break
        seen[s.stage] += got
        s.tell([(a, conv_count(a)) for a in got] + [(m, conv_count(m)) for m in s.members()])
    assert seen[1] and seen[2] and seen[3]
    # stage 1 is node 1 only (the five ops, isomorphs once); later stages keep node 1 of an
    # elite of stage 1, stage 3 keeps nodes 1-2 of an elite of stage 2
    assert len(seen[1]) <= 5
    for stage, cells in seen.items():
        for a in cells:
            assert a == grown_cell(nats_tss.parse_arch(a).ops, stage)
    elite1 = {nats_tss.parse_arch(a).ops[0] for a in s.stage_elites[1]}
    assert {nats_tss.parse_arch(a).ops[0] for a in seen[2]} <= elite1
    fixed = [e for k in (1, 2) for e in NODE_EDGES[k]]
    prefixes = {tuple(nats_tss.parse_arch(a).ops[e] for e in fixed) for a in s.stage_elites[2]}
    assert {tuple(nats_tss.parse_arch(a).ops[e] for e in fixed) for a in seen[3]} <= prefixes
    assert all(s.final(a) for a in seen[3]) and not any(s.final(a) for a in seen[1] + seen[2])


def test_a_growth_search_answers_with_a_whole_cell():
    from tests.search.test_ladder import Toy

    s = GrowthGA(seed=2, population_size=4, generations=(1, 2), elites=2)
    # a fitness that ranks every partial cell above every whole one: the answer is whole
    ev = Toy("toy", 1.0, lambda a: (0.0 if s.final(a) else 10.0) + a.count("conv"),
             known_cost=True)
    ladder = Ladder([Stage(ev)])
    ladder.eligible = s.final
    from zcnas.search import Budget

    budget = Budget(1e9)
    for _ in range(8):
        got = s.ask(64)
        done = ladder.submit(got, budget)
        fits = ladder.fitnesses()
        s.tell([(e.arch, fits[e.canonical]) for e in done]
               + [(m, fits.get(s.key(m), -1)) for m in s.members()])
    assert s.stage == 3
    assert s.final(ladder.choice().arch)
    ladder.eligible = None
    assert not s.final(ladder.choice().arch)  # without the rule a partial cell would win


def test_a_converged_growth_stage_runs_until_every_reachable_cell_is_tried():
    """A population settled on one prefix still makes new cells of its stage; the search ends
    only when every cell reachable from the elites was proposed."""
    import itertools

    s = GrowthGA(seed=0, population_size=20, generations=(1, 3), elites=5)
    stage3 = []
    for _ in range(500):
        got = s.ask(64)
        if not got:
            break
        if s.stage == 3:
            stage3 += got
        s.tell([(a, conv_count(a)) for a in got] + [(m, conv_count(m)) for m in s.members()])
    grown = NODE_EDGES[3]
    reachable = set()
    for elite in s.stage_elites[2]:
        for combo in itertools.product(nats_tss.OPS, repeat=3):
            ops = list(nats_tss.parse_arch(elite).ops)
            for e, op in zip(grown, combo, strict=True):
                ops[e] = op
            reachable.add(nats_tss.canonical_key(grown_cell(ops, 3)))
    proposed = {nats_tss.canonical_key(a) for a in stage3}
    earlier = s._proposed - proposed  # isomorphs proposed at stages 1-2
    assert proposed <= reachable and reachable - proposed <= earlier
