"""The supernet search methods (genas, gevonas, ftga): registered by name, run end to end on
real images within their budget, never compare fitness taken under different supernet
weights, and resume exactly after SIGKILL, supernet weights included."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.search._method_run import config, run
from zcnas.fidelity.supernet_fitness import SupernetFitness
from zcnas.search import METHODS, Ladder, SearchConfig, Stage, build, run_search
from zcnas.search.tables import TableGA

METHODS_ = ("genas", "gevonas", "ftga")


def test_the_methods_are_registered_plugins():
    for name in METHODS_:
        m = METHODS.get(name)
        assert m.trains and m.spaces == ("nats-tss",)


@pytest.mark.parametrize("bad", [{"population": 2}, {"metric": "top1"}, {"channels": 0},
                                 {"supernets": 0}])
def test_bad_parameters_are_one_line_errors(bad, data_root):
    from zcnas.errors import UserError

    with pytest.raises(UserError, match="search method 'ftga'"):
        build(SearchConfig(method="ftga", fitness="synflow", params=bad), root=data_root)


class StubTrainer:
    """Stands in for a supernet: every training call moves the weights on, and a cell's loss
    depends on the weights, so a value from older weights is visibly off."""

    def __init__(self):
        self.weights = 0
        self.bar = None
        self.pools = []
        self.recipe = SimpleNamespace(min_lr=0.001, channels=1, cells=1)
        self.data = SimpleNamespace(y_train=[0], y_valid=[0])
        self.dataset, self.device = "cifar10", "cpu"
        self.net = SimpleNamespace(space_size=lambda: 15625)

    def train(self, epochs, *, pool=None, lr=None, label="", deadline=None):
        self.weights += 1
        self.pools.append(sorted(pool) if pool is not None else None)

    def value(self, arch):
        return arch.count("conv") + 10.0 * self.weights

    def accuracy(self, arch, *, adapt_steps=0, adapt_lr=0.01):
        v = self.value(arch)
        return v, -v


class Watched(TableGA):
    """A GA that checks, at every selection, that every fitness it compares was taken under
    the supernet's current weights."""

    name = "table-ga"
    fitness_ev = None
    checked = 0

    def _select(self):
        ev = self.fitness_ev
        for a in self.population + self.children:
            arch, value, version, _ = ev.values[self.key(a)]
            assert version == ev.version, f"{a} was scored under older weights"
            assert value == ev.trainer.value(a)  # and its value is the current one
        Watched.checked += 1
        super()._select()


def test_ftga_never_compares_fitness_from_different_supernet_weights():
    trainer = StubTrainer()
    searcher = Watched(seed=0, population_size=6)
    ev = SupernetFitness(trainer, searcher=searcher, warmup_epochs=1.0, upkeep="finetune")
    searcher.fitness_ev = ev
    ladder = Ladder([Stage(ev)])
    cfg = SearchConfig(method="ftga", budget=1e9)
    run_search(cfg, searcher, ladder, batch=64, max_steps=6)
    assert Watched.checked >= 4 and ev.version == trainer.weights - 1 == Watched.checked
    # each fine-tuning trained on the population the generation started from
    assert all(p is not None and len(p) == 6 for p in trainer.pools[1:])
    # the values the ladder ranks by are the current version's; older cells are NaN
    keys = list(ladder.records[0])
    values = ladder.values(0)
    current = {searcher.key(a) for a in searcher.members()}
    assert all(np.isfinite(values[k]) == (k in current or ev.values[k][2] == ev.version)
               for k in keys)
    assert sum(math.isnan(values[k]) for k in keys) > 0


def test_without_rescoring_the_check_fails():
    """The check above can fail: a fitness that keeps the parents' old values trips it."""
    trainer = StubTrainer()
    searcher = Watched(seed=0, population_size=6)
    ev = SupernetFitness(trainer, searcher=searcher, warmup_epochs=1.0, upkeep="finetune")
    searcher.fitness_ev = ev
    ev.relative_values = lambda keys: [ev.values[k][1] for k in keys]  # stale values kept
    original = ev._maintain

    def no_rescore(deadline):
        s = ev.searcher
        if s.generation > ev._seen_generation:
            ev.trainer.train(1.0, pool=s.members())
            ev.version += 1
            ev._seen_generation = s.generation
    ev._maintain = no_rescore
    with pytest.raises(AssertionError, match="older weights"):
        run_search(SearchConfig(method="ftga", budget=1e9), searcher, Ladder([Stage(ev)]),
                   batch=64, max_steps=6)
    assert original is not None


@pytest.mark.parametrize("method", [
    "ftga", pytest.param("genas", marks=pytest.mark.slow),
    pytest.param("gevonas", marks=pytest.mark.slow)])
def test_each_method_searches_on_real_images_within_its_budget(method, data_root, tmp_path):
    torch.manual_seed(0)
    cfg = SearchConfig(method=method, budget=5.0, fitness="synflow",
                       params={**dict(config(method).params), "warmup_epochs": 0.05})
    plan = build(cfg, root=data_root, workdir=tmp_path / "run")
    t0 = time.perf_counter()
    res = plan.run(checkpoint=tmp_path / "run.json", checkpoint_seconds=0.0)
    wall = time.perf_counter() - t0
    assert res.cost <= cfg.budget + 1e-6 and res.arch is not None
    assert wall < cfg.budget + 15  # the budget is this machine's seconds
    ev = plan.ladder.stages[0].evaluator
    assert isinstance(ev, SupernetFitness) and ev.name == "supernet+zc"
    assert sorted(p.name for p in (tmp_path / "run").glob("supernet-*.pt"))
    if method == "gevonas":
        assert plan.searcher.stage >= 2 and ev.upkeep_log[0]["what"] == "growth"
    if method == "ftga":
        assert ev.version >= 1
    if method == "genas":
        assert [p.name for p in plan.proposers] == ["differentiable local search"]


def _snapshot(plan) -> dict:
    ev = plan.ladder.stages[0].evaluator
    members = getattr(ev.trainer, "members", [ev.trainer])
    nets = [m.net for m in members]
    return {"searcher": plan.searcher.state_dict(),
            "allowed": [net.allowed.tolist() for net in nets],
            "rngs": [m.rng.bit_generator.state for m in members],
            "values": {k: v[:3] for k, v in ev.values.items()}, "version": ev.version,
            "weights": {f"{i}.{k}": v.clone() for i, net in enumerate(nets)
                        for k, v in net.state_dict().items() if isinstance(v, torch.Tensor)},
            "records": {k: r.value for k, r in plan.ladder.records[0].items()}}


def _same(a: dict, b: dict) -> None:
    assert a["searcher"] == b["searcher"]
    assert a["allowed"] == b["allowed"] and a["rngs"] == b["rngs"]
    assert a["values"] == b["values"] and a["version"] == b["version"]
    assert a["records"] == b["records"]
    assert a["weights"].keys() == b["weights"].keys()
    for k in a["weights"]:
        assert torch.equal(a["weights"][k], b["weights"][k]), k


@pytest.mark.parametrize("method,supernets", [
    ("ftga", 1), pytest.param("genas", 1, marks=pytest.mark.slow),
    pytest.param("gevonas", 1, marks=pytest.mark.slow),
    # a pool of two supernets: every member's weights and RNG come back (slow: 21 s; the
    # pool's checkpoint round trip is in the default run, tests/fidelity/test_supernet.py)
    pytest.param("ftga", 2, marks=pytest.mark.slow),
    pytest.param("genas", 2, marks=pytest.mark.slow),
    pytest.param("gevonas", 2, marks=pytest.mark.slow)])
def test_a_killed_search_resumes_exactly(method, supernets, data_root, tmp_path):
    """SIGKILL a run mid-search; the resumed run ends exactly where an uninterrupted one
    does: searcher, fitness values and versions, supernet weights."""
    threads = torch.get_num_threads()
    try:
        steps = 4
        ref_plan, _ = run(method, tmp_path / "ref.json", steps, str(data_root), supernets)
        ref = _snapshot(ref_plan)
        fitness = ref_plan.ladder.stages[0].evaluator
        assert len(getattr(fitness.trainer, "members", [fitness.trainer])) == supernets
        ck = tmp_path / "killed.json"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        proc = subprocess.Popen([sys.executable, "-m", "tests.search._method_run", method,
                                 str(ck), "1000", str(data_root), str(supernets)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        seen = 0
        while time.time() < deadline and proc.poll() is None:
            try:
                seen = json.loads(ck.read_text()).get("steps", 0)
            except (OSError, ValueError):
                seen = 0
            if seen >= 2:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        seen = json.loads(ck.read_text())["steps"]  # what the killed run left behind
        assert 2 <= seen < steps, (seen, proc.stderr.read().decode()[-2000:])
        resumed, _ = run(method, ck, steps, str(data_root), supernets)
        _same(_snapshot(resumed), ref)
    finally:
        torch.set_num_threads(threads)


def test_the_oneshot_supernet_stage_ranks_by_fused_ranks(data_root):
    """oneshot's supernet rung fuses its rank with the zero-cost rank (AZ-NAS log-rank sum),
    and its elites (pruning, gradient-guided search) follow the fused ranks."""
    from zcnas.data.training import TrainingData
    from zcnas.fidelity.supernet import SupernetEvaluator, SupernetRecipe

    class ZeroCost:
        relative = False

        def __init__(self, values):
            self.values = values

        def current_values(self, keys):
            return [self.values[k] for k in keys]

    data = TrainingData.load("cifar10", data_root, valid=32, limit=96)
    keys = [f"c{i}" for i in range(5)]
    supernet = [1.0, 2.0, 3.0, 4.0, 5.0]      # supernet alone: c4 best
    zc = dict(zip(keys, [5.0, 4.0, 3.0, 2.0, 0.5], strict=True))  # zero-cost: c0 best
    ev = SupernetEvaluator(data=data, recipe=SupernetRecipe(channels=4, cells=1),
                           fuse=ZeroCost(zc), elites=2)
    assert ev.relative
    ev._seen = {k: (k, v) for k, v in zip(keys, supernet, strict=True)}
    fused = ev.relative_values(keys)
    expect = [math.log(a / 5) + math.log(b / 5) for a, b in zip([1, 2, 3, 4, 5],
                                                                 [5, 4, 3, 2, 1], strict=True)]
    assert np.allclose(fused, expect)
    assert ev.elites() == ["c2", "c1"]  # the middle cells win when both ranks count
    ev.fuse, ev.relative = None, False
    assert ev.elites() == ["c4", "c3"]


def test_every_second_is_charged_once_and_broken_down(data_root):
    """Warm-up, fine-tuning, re-scoring the parents and scoring are all charged to the cells
    that triggered them, once; the parts add up to the charge."""
    from zcnas.data.training import TrainingData
    from zcnas.fidelity.supernet import SupernetRecipe, SupernetTrainer

    data = TrainingData.load("cifar10", data_root, valid=32, limit=96)
    trainer = SupernetTrainer(data=data, recipe=SupernetRecipe(channels=4, cells=1))
    parents = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|"
               "nor_conv_3x3~1|nor_conv_1x1~2|",
               "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|none~1|none~2|"]
    searcher = SimpleNamespace(generation=1, members=lambda: parents)
    ev = SupernetFitness(trainer, searcher=searcher, warmup_epochs=0.5, upkeep="finetune",
                         finetune_epochs=0.5, adapt_steps=2)
    children = ["|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|"
                "nor_conv_3x3~1|none~2|",
                "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|none~0|"
                "nor_conv_3x3~1|avg_pool_3x3~2|"]
    t0 = time.perf_counter()
    out = ev.evaluate(children)
    wall = time.perf_counter() - t0
    charged = sum(e.cost for e in out)
    assert 0.9 * wall <= charged <= wall
    parts = ev.cost_parts()
    assert parts["warm-up"] > 0 and parts["upkeep"] > 0 and parts["scoring"] > 0
    assert 0.9 * charged <= sum(parts.values()) <= charged + 1e-9
    assert ev.version == 1 and all(ev.values[k][2] == 1 for k in ev.values)
