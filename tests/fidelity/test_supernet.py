"""The supernet fidelity: training, inherited-weight scores, pruning, gradient-guided search,
checkpoints, and its schedule behind the evaluator contract."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from zcnas.data.training import TrainingData
from zcnas.errors import CheckpointError, OutsideSupernetError
from zcnas.fidelity.supernet import (
    SupernetEvaluator,
    SupernetPool,
    SupernetRecipe,
    SupernetTrainer,
    _best_combinations,
    make_supernet,
)
from zcnas.spaces import nats_tss

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
    "nor_conv_1x1~2|"
B = "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
    "nor_conv_3x3~2|"
C = "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
TINY = SupernetRecipe(batch_size=16, recalib_batches=2)


@pytest.fixture(scope="module")
def data(data_root) -> TrainingData:
    return TrainingData.load("cifar10", data_root, valid=32, limit=96)


@pytest.fixture()
def trainer(data) -> SupernetTrainer:
    return SupernetTrainer(data=data, recipe=TINY)


def test_training_is_seeded_and_logged(data, trainer):
    row = trainer.train(0.5)
    assert row["steps"] == 2 and row["paths"] == 6466 and row["seconds"] > 0
    assert trainer.epochs_done == pytest.approx(0.5)
    other = SupernetTrainer(data=data, recipe=TINY)
    other.train(0.5)
    assert all(torch.equal(a, b) for a, b in zip(trainer.net.state_dict().values(),
                                                 other.net.state_dict().values(), strict=True)
               if isinstance(a, torch.Tensor))


def test_accuracy_recalibrates_bn_per_path_and_is_repeatable(trainer):
    trainer.train(0.5)
    a1 = trainer.accuracy(A)
    trainer.accuracy(B)
    assert trainer.accuracy(A) == a1  # B's statistics do not leak into A's score
    assert 0 <= a1[0] <= 100


def test_training_on_a_pool_only_updates_the_pools_ops(trainer):
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()
              if isinstance(v, torch.Tensor)}
    trainer.train(0.5, pool=[A])
    after = trainer.net.state_dict()
    # cell 0, edge 0->1: A uses nor_conv_3x3 (op 3) there, never nor_conv_1x1 (op 2)
    w3, w2 = "cells.0.edges.e01.3.1.weight", "cells.0.edges.e01.2.1.weight"
    assert not torch.equal(before[w3], after[w3])
    assert torch.equal(before[w2], after[w2])


def test_prune_then_outside_cells_are_refused(trainer):
    removed = trainer.prune([A, B])
    assert removed and trainer.net.space_size() == 2 * 1 * 1 * 1 * 1 * 2
    assert trainer.history[-1]["what"] == "prune"
    with pytest.raises(OutsideSupernetError, match="pruned"):
        trainer.accuracy(C)


def test_gradient_search_stays_in_the_elites_op_table(trainer):
    trainer.train(0.25)
    out = trainer.gradient_search([A, B, C], steps=2, candidates=3)
    assert 1 <= len(out) <= 3
    keys = {nats_tss.canonical_key(a) for a in (A, B, C)}
    for arch in out:
        cell = nats_tss.parse_arch(arch)
        assert nats_tss.canonical_key(cell) not in keys
        for e, op in enumerate(cell.ops):  # every op is used by some elite on that edge
            assert op in {nats_tss.parse_arch(x).ops[e] for x in (A, B, C)}
    assert trainer.net.space_size() == 5 ** 6  # the relaxation does not prune


def test_best_combinations_match_brute_force():
    rng = np.random.default_rng(0)
    logp = rng.normal(size=(6, 5))
    logp[1, 2] = logp[4, 0] = -math.inf
    best = _best_combinations(logp, 7)
    every = [c for c in itertools.product(range(5), repeat=6)
             if math.isfinite(sum(logp[e, k] for e, k in enumerate(c)))]
    every.sort(key=lambda c: -sum(logp[e, k] for e, k in enumerate(c)))
    assert best == every[:7]


def test_save_load_round_trip_and_mismatches(trainer, data, tmp_path):
    trainer.train(0.25)
    trainer.prune([A, B, C])
    path = tmp_path / "sn.pt"
    trainer.save(path)
    other = SupernetTrainer(data=data, recipe=TINY, seed=5)
    other.load(path)
    assert other.accuracy(A) == trainer.accuracy(A)
    assert np.array_equal(other.net.allowed, trainer.net.allowed)
    with pytest.raises(CheckpointError, match="no supernet checkpoint"):
        other.load(tmp_path / "nothing.pt")
    fewer = TrainingData.load("cifar10", data.source.rsplit("/cifar10", 1)[0], valid=32,
                              limit=80)
    with pytest.raises(CheckpointError, match="other images"):
        SupernetTrainer(data=fewer, recipe=TINY).load(path)
    state = torch.load(path, weights_only=True)
    state["dataset"] = "cifar100"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="dataset mismatch"):
        other.load(path)


def test_evaluator_schedule(data):
    from zcnas.methods.oneshot import GradientProposer
    from zcnas.search import Ladder, Stage

    ev = SupernetEvaluator(data=data, recipe=TINY, warmup_epochs=0.25, finetune_every=2,
                           finetune_epochs=0.2, prune_every=3, elites=2)
    out = ev.evaluate([A, B, C])
    assert [e.arch for e in out] == [A, B, C] and all(e.cost > 0 for e in out)
    kinds = [h["what"] for h in ev.trainer.history]
    assert kinds == ["warm-up", "fine-tune", "prune"]
    assert ev.trainer.net.space_size() < 5 ** 6
    # the gradient-guided search is a proposer on the searcher's side, every 3 cells
    ladder = Ladder([Stage(ev)])
    ladder.records[0].update({e.canonical: e for e in out})
    proposer = GradientProposer(ev, stage=0, every=3, steps=1, candidates=2)
    assert proposer.due(ladder, None)
    found = proposer.propose(ladder, None)
    assert len(found) == 2 and not proposer.due(ladder, None)  # not again before 6 cells
    assert proposer.state_dict() == {"last": 3}
    assert all(ev.admits(a) for a in found)
    assert proposer.propose(ladder, None, time_limit=0.0) == []  # past its deadline
    outside = [a for a in (A, B, C) if not ev.admits(a)]
    if outside:
        (e,) = ev.evaluate(outside[:1])
        assert math.isnan(e.value) and e.meta["outside"] == 1.0
    warm, tune = ev.trainer.history[0]["seconds"], ev.trainer.history[1]["seconds"]
    assert out[0].cost >= warm and out[1].cost >= tune  # charged to the cell that caused it


def test_evaluator_resumes_from_its_checkpoint(data, tmp_path):
    kw = dict(data=data, recipe=TINY, warmup_epochs=0.25, checkpoint=tmp_path / "sn.pt")
    ev = SupernetEvaluator(**kw)
    (a,) = ev.evaluate([A])
    state = ev.state_dict()
    assert (tmp_path / "sn-1.pt").is_file() and state["checkpoint"] == str(tmp_path / "sn-1.pt")
    again = SupernetEvaluator(**kw)
    again.load_state_dict(state)
    (b,) = again.evaluate([A])
    assert b.value == a.value
    assert [h["what"] for h in again.trainer.history] == ["warm-up"]  # not trained again


def test_costs_add_up_to_the_wall_time(data):
    import time

    ev = SupernetEvaluator(data=data, recipe=TINY, warmup_epochs=0.25, finetune_every=1,
                           finetune_epochs=0.2, prune_every=2, elites=2)
    t0 = time.perf_counter()
    out = ev.evaluate([A, B, C])
    wall = time.perf_counter() - t0
    assert 0.9 * wall <= sum(e.cost for e in out) <= wall  # every second once, none twice


def test_a_time_limit_kills_the_warm_up(data):
    ev = SupernetEvaluator(data=data, recipe=TINY, warmup_epochs=50)
    ev.time_limit = 0.05
    (e,) = ev.evaluate([A, B])
    assert e.meta == {"killed": 1.0} and math.isnan(e.value) and e.cost < 5


def test_gradient_search_fills_its_quota_past_isomorphs(trainer):
    # node 1 is zero in both elites: edges 1->2 and 1->3 do not matter, so most of the
    # op table's 32 cells are isomorphs of a few classes
    elites = ["|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|"
              "nor_conv_3x3~2|",
              "|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|skip_connect~1|"
              "nor_conv_1x1~2|"]
    table = [sorted({nats_tss.parse_arch(a).ops[e] for a in elites}) for e in range(6)]
    classes = {nats_tss.canonical_key(nats_tss.Cell(ops)) for ops in itertools.product(*table)}
    new = classes - {nats_tss.canonical_key(a) for a in elites}
    assert 3 <= len(new) < 32
    out = trainer.gradient_search(elites, steps=1, candidates=len(new) + 5)
    assert {nats_tss.canonical_key(a) for a in out} == new and len(out) == len(new)


def test_the_schedule_keeps_its_length(trainer):
    trainer.train_schedule(4, until=0.25)
    assert trainer.schedule_done == pytest.approx(0.25)
    trainer.train(0.25, pool=[A])  # fine-tuning does not move the schedule
    assert trainer.schedule_done == pytest.approx(0.25)
    from zcnas.errors import UserError

    with pytest.raises(UserError, match="4-epoch schedule"):
        trainer.train_schedule(8)


def test_the_value_is_accuracy_or_negative_loss(data):
    acc = SupernetEvaluator(data=data, recipe=TINY, warmup_epochs=0.1)
    loss = SupernetEvaluator(data=data, recipe=TINY, warmup_epochs=0.1, metric="loss")
    (a,), (b,) = acc.evaluate([A]), loss.evaluate([A])
    assert a.value == a.meta["accuracy"] and b.value == -b.meta["loss"]
    assert a.meta["loss"] == b.meta["loss"]  # same seed, same supernet
    from zcnas.errors import UserError

    with pytest.raises(UserError, match="metric"):
        SupernetEvaluator(data=data, metric="top1")


def _weights(net) -> list[torch.Tensor]:
    return [v for v in net.state_dict().values() if isinstance(v, torch.Tensor)]


def test_a_pool_is_its_members_mean_member_0_the_lone_supernet(data):
    pool = make_supernet(data=data, recipe=TINY, supernets=2)
    assert isinstance(pool, SupernetPool) and [m.seed for m in pool.members] == [0, 100_003]
    row = pool.train(0.5, pool=[A, B])
    assert row["supernets"] == 2 and row["steps"] == 2
    lone = SupernetTrainer(data=data, recipe=TINY)
    lone.train(0.5, pool=[A, B])
    assert all(torch.equal(a, b) for a, b in zip(_weights(pool.members[0].net),
                                                 _weights(lone.net), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(_weights(pool.members[0].net),
                                                     _weights(pool.members[1].net),
                                                     strict=True))
    each = [m.accuracy(A) for m in pool.members]
    assert pool.accuracy(A) == pytest.approx((np.mean([a for a, _ in each]),
                                              np.mean([x for _, x in each])))
    assert each[0] != each[1]
    assert isinstance(make_supernet(data=data, recipe=TINY), SupernetTrainer)


def test_a_pool_prunes_searches_and_round_trips_as_one(data, tmp_path):
    pool = make_supernet(data=data, recipe=TINY, supernets=2)
    pool.train(0.25)
    found = pool.gradient_search([A, B, C], steps=2, candidates=2)
    assert 1 <= len(found) <= 2
    assert all(m.net.space_size() == 5 ** 6 for m in pool.members)  # relaxation only
    assert nats_tss.parse_arch(pool.refine(A, steps=2))  # a cell of the space
    before = [[w.detach().clone() for w in m.net.parameters()] for m in pool.members]
    pool.refine(B, steps=2)
    assert all(torch.equal(a, b) for m, w in zip(pool.members, before, strict=True)
               for a, b in zip(m.net.parameters(), w, strict=True))  # weights frozen
    pool.prune([A, B])
    assert [m.net.space_size() for m in pool.members] == [4, 4]
    with pytest.raises(OutsideSupernetError):
        pool.accuracy(C)
    path = tmp_path / "pool.pt"
    pool.save(path)
    again = make_supernet(data=data, recipe=TINY, supernets=2, seed=7)
    again.load(path)
    assert again.accuracy(A) == pool.accuracy(A)
    assert again.epochs_done == pool.epochs_done == pytest.approx(0.25)
    for m, n in zip(again.members, pool.members, strict=True):
        assert m.history == n.history and m.rng.bit_generator.state == n.rng.bit_generator.state
        assert str(m.opt.state_dict()) == str(n.opt.state_dict())
    assert [m.seed for m in again.members] == [7, 100_010]  # the weights are what was saved
    with pytest.raises(CheckpointError, match="holds 2 supernets, not 3"):
        make_supernet(data=data, recipe=TINY, supernets=3).load(path)
    pool.members[0].save(tmp_path / "one.pt")
    with pytest.raises(CheckpointError, match="not a zcnas supernet pool checkpoint"):
        again.load(tmp_path / "one.pt")
    # a mismatch in a later member leaves every member as it was
    state = torch.load(path, weights_only=True)
    state["members"][1]["dataset"] = "cifar100"
    torch.save(state, path)
    fresh = make_supernet(data=data, recipe=TINY, supernets=2, seed=7)
    before = [w.clone() for w in _weights(fresh.members[0].net)]
    with pytest.raises(CheckpointError, match="dataset mismatch"):
        fresh.load(path)
    assert all(torch.equal(a, b) for a, b in zip(_weights(fresh.members[0].net), before,
                                                 strict=True))


def test_the_evaluator_scores_by_a_pool(data):
    ev = SupernetEvaluator(data=data, recipe=TINY, warmup_epochs=0.25, supernets=2,
                           metric="loss")
    assert ev.describe().startswith("mean of 2 weight-sharing supernets on ")
    (e,) = ev.evaluate([A])
    losses = [m.accuracy(A)[1] for m in ev.trainer.members]
    assert e.value == pytest.approx(-np.mean(losses))
    assert all(m.epochs_done == pytest.approx(0.25) for m in ev.trainer.members)
