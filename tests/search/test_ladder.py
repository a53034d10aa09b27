"""The fidelity ladder and the driver: promotions, budgets, fitness feedback, final choice,
checkpoint/resume, constraints, and that selection never sees the reported accuracy."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from zcnas.errors import UserError
from zcnas.fidelity import Evaluation, Evaluator, LookupEvaluator
from zcnas.search import (
    Budget,
    Ladder,
    Promotion,
    SearchConfig,
    Stage,
    build,
    run_search,
)
from zcnas.spaces import nats_tss
from zcnas.spaces.plan import count_costs, tss_plan


class Toy(Evaluator):
    """Deterministic fidelity: value = f(arch) (+ a per-cell offset), fixed cost per cell."""

    def __init__(self, name, cost, fn, known_cost=True):
        self.name, self.cost, self.fn, self.known = name, cost, fn, known_cost
        self.calls = []

    def estimate_cost(self, arch):
        return self.cost if self.known else None

    def evaluate(self, archs):
        self.calls.extend(archs)
        return [Evaluation(a, nats_tss.canonical_key(a), self.name, float(self.fn(a)),
                           self.cost) for a in archs]


def flops(arch):
    return count_costs(tss_plan(arch)).flops_m


def cells(n, seed=0):
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    while len(out) < n:
        c = nats_tss.sample(rng)
        k = nats_tss.canonical_key(c)
        if k not in seen:
            seen.add(k)
            out.append(nats_tss.format_arch(c))
    return out


def test_promotion_quota():
    assert Promotion(fraction=0.05).quota(100) == 5
    assert Promotion(fraction=0.05).quota(101) == 6  # rounded up
    assert Promotion(top_k=32).quota(2000) == 32
    assert Promotion(top_k=3, fraction=0.5).quota(4) == 2
    assert Promotion(fraction=0.5, min_results=10).quota(9) == 0
    with pytest.raises(ValueError):
        Promotion()


def test_async_promotion_escalates_the_best_during_the_run():
    cheap = Toy("cheap", 1.0, flops)
    dear = Toy("dear", 100.0, lambda a: -flops(a))
    ladder = Ladder([Stage(cheap, Promotion(fraction=0.1, min_results=20)), Stage(dear)])
    budget = Budget(10_000)
    archs = cells(60)
    ladder.submit(archs[:10], budget)
    assert dear.calls == []  # fewer than min_results
    ladder.submit(archs[10:20], budget)
    top2 = sorted(archs[:20], key=flops)[-2:]
    assert sorted(dear.calls, key=flops) == top2
    ladder.submit(archs[20:60], budget)
    assert len(dear.calls) == 6  # 10% of 60, each escalated once
    assert budget.spent == pytest.approx(60 * 1.0 + 6 * 100.0)
    fits = ladder.fitnesses()
    for a in dear.calls:  # an escalated cell outranks every cell that was not
        assert fits[nats_tss.canonical_key(a)] > 1.0
    assert ladder.choice().arch == min(dear.calls, key=flops)  # best at the top stage


def test_sync_successive_halving_32_16_8_4_2():
    rungs = [Toy(f"r{i}", 10.0, flops) for i in range(5)]
    stages = [Stage(Toy("zc", 1.0, flops), Promotion(top_k=32, sync=True), max_evals=200)]
    stages += [Stage(r, Promotion(fraction=0.5, sync=True)) for r in rungs[:-1]]
    stages.append(Stage(rungs[-1]))
    ladder = Ladder(stages)
    budget = Budget(1e9)
    archs = cells(250)
    ladder.submit(archs[:100], budget)
    assert rungs[0].calls == []  # stage 0 not closed yet
    ladder.submit(archs[100:250], budget)  # only 200 fit under max_evals
    while ladder.cascade(budget):
        pass
    assert [len(r.calls) for r in rungs] == [32, 16, 8, 4, 2]
    assert len(ladder.records[0]) == 200


def test_budget_is_never_exceeded_by_known_costs():
    ladder = Ladder([Stage(Toy("look", 300.0, flops))])
    budget = Budget(1000)
    ladder.submit(cells(10), budget)
    assert budget.spent == 900 and len(ladder.records[0]) == 3


def test_measured_costs_measure_one_then_batch_and_never_overspend():
    ev = Toy("proxy", 10.0, flops, known_cost=False)
    ladder = Ladder([Stage(ev)])
    budget = Budget(100)
    ladder.submit(cells(30), budget)
    assert len(ladder.records[0]) == 10 and budget.spent == 100
    assert len(ev.calls) == 11  # 1, then 8, then 1, then 1 more that cannot finish


def test_an_evaluation_past_the_deadline_is_killed_and_discarded():
    class Forgetful(Toy):
        forgotten = []

        def forget(self, canonicals):
            self.forgotten.extend(canonicals)

    ev = Forgetful("proxy", 10.0, flops, known_cost=False)
    ladder = Ladder([Stage(ev)])
    budget = Budget(95)
    done = ladder.submit(cells(30), budget)
    assert len(done) == 9 and budget.spent == 95  # the 10th ran into the deadline
    assert len(ev.forgotten) == 1 and ev.forgotten[0] not in ladder.records[0]
    assert sum(ladder.cost_by_stage()) == 95


def test_fused_choice_aggregates_ranks_over_fidelities():
    a, b, c = cells(3)
    vals0 = {a: 3.0, b: 2.0, c: 1.0}
    vals1 = {a: 1.0, b: 3.0, c: 2.5}
    s0, s1 = Toy("zc", 0, vals0.get), Toy("look", 0, vals1.get)
    for select, want in (("top", b), ("fused", b)):
        ladder = Ladder([Stage(s0, Promotion(fraction=1.0)), Stage(s1)], select=select)
        ladder.submit([a, b, c], Budget(10))
        assert ladder.choice().arch == want
    vals1[c] = 3.5  # now c is best at the top fidelity, b second; zero-cost: a > b > c
    ladder = Ladder([Stage(s0, Promotion(fraction=1.0)), Stage(s1)], select="fused")
    ladder.submit([a, b, c], Budget(10))
    # log-rank sums: a: log(3/3)+log(1/3), b: log(2/3)+log(2/3), c: log(1/3)+log(3/3)
    assert ladder.choice().arch == b


class FakeBench:
    """Just enough of a benchmark for LookupEvaluator's checks."""

    full_epochs = 200
    space = "nats-tss"

    def schedule(self, e):
        return e


def test_lookup_refuses_the_reported_accuracy(tmp_path):
    with pytest.raises(UserError, match="never used to select"):
        LookupEvaluator(FakeBench(), "cifar10", epochs=200, split="test")
    assert LookupEvaluator(FakeBench(), "cifar10", epochs=12, split="test").uses_test_split
    assert not LookupEvaluator(FakeBench(), "cifar10", epochs=200, split="valid").uses_test_split


@pytest.fixture(scope="module")
def table(data_root):
    from zcnas.lookup import open_benchmark

    return open_benchmark(root=data_root, kind="table")


def _run(table, cfg, **kw):
    plan = build(cfg, table)
    s, ladder = plan.searcher, plan.ladder
    return run_search(cfg, s, ladder, reporter=lambda a: table.accuracy(a, cfg.dataset).value,
                      index_of=table.index, **kw)


@pytest.mark.parametrize("method", ["rea", "random", "ls"])
def test_lookup_baselines_respect_the_budget_and_report_200_epoch_test(table, method):
    cfg = SearchConfig(method=method, budget=20_000, seed=0)
    r = _run(table, cfg)
    assert 0 < r.cost <= 20_000
    assert r.evals_by_stage[0] > 50
    assert r.uses_test_split  # the compact table has no validation split
    assert r.reported == table.accuracy(r.index, "cifar10").value
    assert r.stages == ["lookup:12ep:test"]
    best12 = max(r.chosen_values.values())
    assert best12 == table.accuracy(r.index, "cifar10", epochs=12).value
    costs = [t[0] for t in r.trajectory]
    assert costs == sorted(costs) and costs[-1] == r.cost


def test_rea_12_epoch_cost_is_the_benchmarks_training_time(table):
    cfg = SearchConfig(method="rea", budget=20_000, seed=1)
    plan = build(cfg, table)
    s, ladder = plan.searcher, plan.ladder
    r = run_search(cfg, s, ladder)
    spent = sum(12 * table.cost(e.arch, "cifar10", epochs=12).train_seconds_per_epoch
                for e in ladder.records[0].values())
    assert r.cost == pytest.approx(spent)


class Shuffled:
    """The table with its 200-epoch test column permuted: what selection must never read."""

    def __init__(self, table):
        self.t = table
        self.perm = np.random.default_rng(0).permutation(len(table))

    def __getattr__(self, name):
        return getattr(self.t, name)

    def accuracy(self, arch, dataset, *, epochs=None, split="test", seed=None):
        if (epochs or 200) == 200:
            return self.t.accuracy(int(self.perm[self.t._to_index(arch)]), dataset,
                                   epochs=200, split=split)
        return self.t.accuracy(arch, dataset, epochs=epochs, split=split)


@pytest.mark.parametrize("method", ["rea", "mfnas", "mfea"])
def test_selection_never_reads_the_reported_accuracy(table, method):
    cfg = SearchConfig(method=method, budget=6_000, seed=2, fitness="ensemble:az(flops,params)")
    a = _run(table, cfg, max_steps=60)
    shuffled = Shuffled(table)
    b = _run(shuffled, cfg, max_steps=60)
    assert a.index == b.index and a.evals_by_stage == b.evals_by_stage
    assert [t[1] for t in a.trajectory] == [t[1] for t in b.trajectory]
    assert b.reported == table.accuracy(int(shuffled.perm[b.index]), "cifar10").value


def test_mfea_escalates_during_the_run_and_feeds_back(table):
    cfg = SearchConfig(method="mfea", budget=8_000, seed=0, fitness="ensemble:az(flops,params)")
    plan = build(cfg, table)
    s, ladder = plan.searcher, plan.ladder
    r = run_search(cfg, s, ladder, reporter=lambda a: table.accuracy(a, "cifar10").value,
                   index_of=table.index, max_steps=60)
    assert r.stages == ["proxy:ensemble:az(flops,params)", "lookup:12ep:test"]
    assert r.evals_by_stage[1] >= 10 and r.evals_by_stage[0] > 100
    order = [s_ for s_, _, _ in ladder.log]
    assert order.index(1) < len(order) - 1 - order[::-1].index(0)  # 12-ep lookups in between
    fits = ladder.fitnesses()
    for k in ladder.records[1]:
        assert fits[k] > 1.0
    assert r.cost <= 8_000


def test_running_bookkeeping_equals_recomputing_it(table):
    """The ladder's per-cell fitness, its per-stage costs and the proxy stage's ensemble values
    are kept up to date as a search runs; each equals what recomputing it from scratch gives,
    also after a checkpoint round trip and after the stage forgets cells."""
    cfg = SearchConfig(method="mfea", budget=8_000, seed=1, fitness="ensemble:az(flops,params)")
    plan = build(cfg, table)
    ladder = plan.ladder
    run_search(cfg, plan.searcher, ladder, reporter=lambda a: table.accuracy(a, "cifar10").value,
               index_of=table.index, max_steps=60)

    def check(lad):
        fits = lad.fitnesses()
        assert len(fits) > 100
        assert {k: lad.fitness(k) for k in fits} == fits
        assert lad.fitness("not a cell") == -math.inf and lad.fitness("x", 0.5) == 0.5
        sums = [0.0] * len(lad.stages)
        for s, _, c in lad.log:
            sums[s] += c
        assert lad.cost_by_stage() == sums  # bitwise: the same additions in the same order
        ev = lad.stages[0].evaluator
        hist = ev.state_dict()["history"]
        agg = ev.ensemble.aggregate(np.array(list(hist.values())))
        assert ev.relative_values(list(hist)) == agg.tolist()

    check(ladder)
    before = ladder.cost_by_stage()
    ladder.log.append((0, "", 2.5))  # the log is public: an entry appended to it is counted
    assert ladder.cost_by_stage() == [before[0] + 2.5, *before[1:]]
    again = build(cfg, table).ladder
    again.load_state_dict(json.loads(json.dumps(ladder.state_dict())))
    check(again)
    ev = again.stages[0].evaluator
    gone = list(ev.state_dict()["history"])[::3]
    ev.forget(gone)
    hist = ev.state_dict()["history"]
    assert len(hist) and not set(gone) & set(hist)
    assert ev.relative_values(list(hist)) == ev.ensemble.aggregate(
        np.array(list(hist.values()))).tolist()


def test_checkpoint_resumes_where_it_stopped(table, tmp_path):
    cfg = SearchConfig(method="mfea", budget=8_000, seed=4, fitness="ensemble:az(flops,params)")
    full = _run(table, cfg, max_steps=40)
    ck = tmp_path / "run.json"

    class Killed(Exception):
        pass

    calls = []

    def dies_at_step_8(arch):
        calls.append(arch)
        if len(calls) == 8:
            raise Killed
        return table.accuracy(arch, "cifar10").value

    plan = build(cfg, table)
    s, ladder = plan.searcher, plan.ladder
    with pytest.raises(Killed):
        run_search(cfg, s, ladder, reporter=dies_at_step_8, index_of=table.index,
                   checkpoint=ck, checkpoint_seconds=0, max_steps=40)
    state = json.loads(ck.read_text())
    assert state["result"] is None and state["steps"] == 7
    resumed = _run(table, cfg, checkpoint=ck, max_steps=40)
    assert resumed.index == full.index
    assert resumed.evals_by_stage == full.evals_by_stage
    assert [t[1] for t in resumed.trajectory] == [t[1] for t in full.trajectory]
    again = _run(table, cfg, checkpoint=ck)  # finished: returned as is
    assert again.to_dict() == resumed.to_dict()
    with pytest.raises(UserError, match="another search configuration"):
        _run(table, replace(cfg, seed=5), checkpoint=ck)
    ck.write_text("{not json")
    with pytest.raises(UserError, match="unreadable"):
        _run(table, cfg, checkpoint=ck)


def test_size_constraints_reject_cells_before_evaluation(table):
    cfg = SearchConfig(method="rea", budget=10_000, seed=0, max_params=0.5)
    plan = build(cfg, table)
    s, ladder = plan.searcher, plan.ladder
    r = run_search(cfg, s, ladder, index_of=table.index)
    assert r.evals_by_stage[0] > 5 and r.rejected > 5
    for e in ladder.records[0].values():
        assert count_costs(tss_plan(e.arch)).params_m <= 0.5
    assert math.isfinite(r.cost)


def test_proxy_only_ladder_without_lookup():
    cfg = SearchConfig(method="mfea", budget=3.0, seed=0, fitness="ensemble:az(flops,params)")
    plan = build(cfg, None)
    s, ladder = plan.searcher, plan.ladder
    r = run_search(cfg, s, ladder, max_steps=20)
    assert r.reported is None and r.index is None and r.arch is not None
    assert r.stages == ["proxy:ensemble:az(flops,params)"] and r.cost <= 3.0
    stage = "proxy:ensemble:az(flops,params)"
    assert set(r.chosen_values) == {stage, f"{stage}/flops", f"{stage}/params"}
    assert r.chosen_values[f"{stage}/flops"] == count_costs(tss_plan(r.arch)).flops_m


def test_ladders_on_the_official_archive_select_on_validation(sample_archive):
    from zcnas.lookup import open_benchmark

    bench = open_benchmark(root=sample_archive.parent, kind="archive")
    arch11 = bench.arch(11)
    ladder = build(SearchConfig(method="mfea"), bench).ladder
    assert [s.evaluator.name for s in ladder.stages] == [
        "proxy:ensemble:zcnas", "lookup:12ep:valid", "lookup:200ep:valid"]
    assert not ladder.uses_test_split and ladder.select == "top"  # 200-epoch valid at the top
    # NATS-Bench's simulate_train_eval(hp='12') charges 153.7 / 299.9 / 907.9 s for arch 11
    for ds, secs in (("cifar10", 153.7), ("cifar100", 299.9), ("ImageNet16-120", 907.9)):
        ladder = build(SearchConfig(method="rea", dataset=ds), bench).ladder
        assert ladder.stages[0].evaluator.evaluate([arch11])[0].cost == pytest.approx(secs,
                                                                                      abs=0.1)
    ladder = build(SearchConfig(method="mfnas"), bench).ladder  # CIFAR-10 has x-valid curves
    assert [s.evaluator.name for s in ladder.stages][1:] == [
        f"lookup:{e}ep/200:valid" for e in (12, 25, 50, 100, 200)]
    ladder = build(SearchConfig(method="mfnas", dataset="cifar100"), bench).ladder  # no curve
    assert [s.evaluator.name for s in ladder.stages][1:] == ["lookup:12ep:valid",
                                                             "lookup:200ep:valid"]
    rung = build(SearchConfig(method="mfnas"), bench).ladder.stages[2].evaluator
    first = rung.evaluate([arch11])[0].cost
    assert rung.evaluate([arch11])[0].cost < first  # warm start: the 25 epochs are paid


def test_a_stage_budget_closes_the_stage_and_starts_successive_halving():
    zc = Toy("zc", 2.0, flops, known_cost=False)
    look = Toy("look", 50.0, flops)
    ladder = Ladder([Stage(zc, Promotion(top_k=4, sync=True), max_cost=100.0), Stage(look)])
    budget = Budget(10_000)
    archs = cells(200)
    for i in range(0, 200, 20):
        ladder.submit(archs[i:i + 20], budget)
    assert ladder.cost_by_stage()[0] <= 100.0 and ladder.closed(0)
    assert len(look.calls) == 4
    assert "at most 100 s" in ladder.describe()[0]


def test_checkpoint_of_another_ladder_or_a_damaged_one_is_one_line(table, tmp_path, sample_archive):
    cfg = SearchConfig(method="rea", budget=3_000, seed=0)
    ck = tmp_path / "run.json"
    _run(table, cfg, checkpoint=ck)
    state = json.loads(ck.read_text())
    state["stages"] = ["lookup:12ep:valid"]  # as if made with the official archive
    ck.write_text(json.dumps(state))
    with pytest.raises(UserError, match="another ladder"):
        _run(table, cfg, checkpoint=ck)
    state["stages"] = ["lookup:12ep:test"]
    del state["result"]
    ck.write_text(json.dumps(state))
    with pytest.raises(UserError, match="damaged"):
        _run(table, cfg, checkpoint=ck)


def test_no_point_of_the_reported_schedule_on_the_test_split():
    with pytest.raises(UserError, match="never used to select"):
        LookupEvaluator(FakeBench(), "cifar10", epochs=199, hp=200, split="test")
    LookupEvaluator(FakeBench(), "cifar10", epochs=199, hp=200, split="valid")


def test_local_search_through_the_driver_only_moves_uphill(table):
    cfg = SearchConfig(method="ls", budget=20_000, seed=0)
    plan = build(cfg, table)
    searcher, ladder = plan.searcher, plan.ladder
    currents = []

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def tell(self, results):
            self.inner.tell(results)
            currents.append(self.inner.current)

    run_search(cfg, Spy(searcher), ladder)
    acc = {e.arch: e.value for e in ladder.records[0].values()}
    moves = [(a, b) for a, b in zip(currents, currents[1:], strict=False)
             if a != b and b in acc and a in acc and b in nats_tss_neighbour_strings(a)]
    assert len(moves) >= 5
    assert all(acc[b] > acc[a] for a, b in moves)


def nats_tss_neighbour_strings(arch):
    return {nats_tss.format_arch(g) for g in nats_tss.neighbours(arch)}


def test_size_space_ladders_use_its_90_epoch_schedule(sample_archive):
    from zcnas.lookup import open_benchmark

    bench = open_benchmark("nats-sss", root=sample_archive.parent, kind="archive")
    cfg = SearchConfig(space="nats-sss", method="mfnas", fitness="ensemble:az(flops,params)")
    names = [s.evaluator.name for s in build(cfg, bench).ladder.stages]
    assert names[1:] == [f"lookup:{e}ep/90:valid" for e in (12, 25, 50, 90)]  # MF-NAS's sss rungs
    cfg = SearchConfig(space="nats-sss", method="mfea", fitness="ensemble:az(flops,params)")
    assert build(cfg, bench).ladder.stages[-1].evaluator.name == "lookup:90ep:valid"


def test_mfea_on_the_compact_table_chooses_the_best_12_epoch_cell_by_default(table):
    """The final-choice rule chosen on CIFAR-10 with the default fitness (results/search):
    ``top``, the best cell at the highest stage; ``fused`` only when asked for."""
    assert build(SearchConfig(method="mfea"), table).ladder.select == "top"
    assert build(SearchConfig(method="mfea", select="fused"), table).ladder.select == "fused"
