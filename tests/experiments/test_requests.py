"""The library entry points behind the commands: frozen requests, score_model, method
parameters, ladder specs, deduplication, output names."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from torch import nn

from zcnas import score_model
from zcnas.errors import UserError
from zcnas.experiments import SearchRequest, SearchSession
from zcnas.search import BuildContext, SearchConfig, build, parse_ladder


def cnn(width: int, blocks: int = 1):
    def make(num_classes):
        layers = [nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(blocks):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(width, num_classes))
    return make


def test_score_model_scores_any_family_deterministically():
    family = {"w4": cnn(4), "w16": cnn(16, 2), "w32": cnn(32, 2)}
    df = score_model(family, "synflow,params,az_expressivity,ensemble:az_nas")
    assert isinstance(df, pd.DataFrame)
    wide = df.pivot(index="arch", columns="proxy", values="value")
    assert list(wide.index.sort_values()) == ["w16", "w32", "w4"]
    assert wide.loc["w32", "params"] > wide.loc["w16", "params"] > wide.loc["w4", "params"]
    want = (3 * 32 * 9 + 32) + 2 * (32 * 32 * 9 + 32) + 3 * 64 + 32 * 10 + 10
    assert wide.loc["w32", "params"] == pytest.approx(want / 1e6)
    assert all(math.isfinite(v) for v in wide["synflow"])
    again = score_model(family, "synflow,params,az_expressivity,ensemble:az_nas")
    assert df.value.equals(again.value)  # same seed, same networks, same scores
    other = score_model(family, "synflow,az_expressivity", seed=1)
    assert not (other[other.proxy == "az_expressivity"].value.to_numpy()
                == df[df.proxy == "az_expressivity"].value.to_numpy()).all()
    ens = df[df.proxy == "ensemble:az_nas"]
    assert set(ens.origin) == {"ensemble"}  # aggregated over the family given


def test_score_model_takes_one_factory_or_a_list_and_says_what_is_wrong():
    one = score_model(cnn(8), "params")
    assert list(one.arch) == ["model0"]
    two = score_model([lambda: cnn(8)(10), cnn(4)], "params")
    assert list(two.arch) == ["model0", "model1"]
    with pytest.raises(UserError, match="not a factory"):
        score_model({"x": 3}, "params")
    with pytest.raises(UserError, match="at least one"):
        score_model({}, "params")
    lone = {"net": lambda n: nn.Linear(3 * 32 * 32, n)}  # no blocks to read features from
    with pytest.raises(UserError, match="feature blocks"):
        score_model(lone, "zen")


def test_method_parameters_are_checked_and_reach_the_method():
    plan = build(SearchConfig(method="mfea", fitness="synflow",
                              params={"population_size": 20, "tournament_size": 5}))
    assert plan.searcher.population_size == 20 and plan.searcher.tournament_size == 5
    with pytest.raises(UserError, match="no parameter 'populaton'"):
        build(SearchConfig(method="mfea", fitness="synflow", params={"populaton": 3}))
    with pytest.raises(UserError, match="is not an integer"):
        build(SearchConfig(method="rea", fitness="synflow", params={"sample_size": 2.5}))
    with pytest.raises(UserError, match="population must be at least 4"):
        SearchSession.create(SearchRequest(methods=("oneshot",), params=(("population", 2),),
                                           lookup="none", fitness="synflow"))
    with pytest.raises(UserError, match="no selected method"):
        SearchSession.create(SearchRequest(methods=("mfea", "rea"),
                                           params=(("warmup_epochs", 1),), lookup="none",
                                           fitness="synflow"))


def test_the_quick_start_takes_the_methods_quick_parameters():
    """No lookup and the default budget: MFEA evolves a population of 20 (tournament 5), not
    MFNAS's 100 that 60 s of proxies would never get past; a parameter the user sets wins, and
    any other budget or a lookup keeps the defaults."""
    def mfea(**kw):
        s = SearchSession.create(SearchRequest(methods=("mfea", "rea"), fitness="synflow",
                                               store=None, **kw))
        return {c.method: dict(c.params) for c in s.configs}, s.notes

    params, notes = mfea(lookup="none")
    assert params == {"mfea": {"population_size": 20, "tournament_size": 5}, "rea": {}}
    assert any("mfea with population_size=20, tournament_size=5" in n for n in notes)
    params, _ = mfea(lookup="none", params=(("population_size", 30),))
    assert params["mfea"] == {"population_size": 30, "tournament_size": 5}
    assert mfea(lookup="none", budget="60")[0]["mfea"] == {}


def test_the_quick_parameters_stay_out_of_searches_with_a_lookup(data_root):
    s = SearchSession.create(SearchRequest(methods=("mfea",), fitness="synflow", store=None,
                                           data=str(data_root)))
    assert dict(s.configs[0].params) == {}


def test_duplicate_methods_and_datasets_are_searched_once():
    s = SearchSession.create(SearchRequest(methods=("rea", "rea", "mfea"),
                                           datasets=("cifar10", "CIFAR10"), seeds=2,
                                           lookup="none", fitness="synflow", store=None))
    assert [(c.method, c.dataset, c.seed) for c in s.configs] == [
        ("rea", "cifar10", 0), ("rea", "cifar10", 1), ("mfea", "cifar10", 0),
        ("mfea", "cifar10", 1)]


def test_a_ladder_spec_builds_the_stages_it_names():
    ctx = BuildContext(SearchConfig(fitness="synflow"), None)
    ladder = parse_ladder("proxy(promote_top=4,max_evals=50),"
                          "proxy(proxy=ensemble:mean_rank(params,flops))", ctx)
    assert [s.evaluator.name for s in ladder.stages] == [
        "proxy:synflow", "proxy:ensemble:mean_rank(params,flops)"]
    assert ladder.stages[0].promote.top_k == 4 and ladder.stages[0].max_evals == 50
    for spec, fragment in [
        ("proxy,proxy", "needs promote_top"),
        ("proxy(promote_top=2)", "promotes to nothing"),
        ("proxy(promote_top=2),nothing", "unknown evaluator 'nothing'"),
        ("proxy(promote_top=2),proxy(bogus=1)", "unexpected keyword argument 'bogus'"),
        ("proxy(promote_top=2,proxy", "unbalanced parentheses"),
        ("proxy(promote_top=2),proxy(x=1)y", "missing ')'"),
        ("proxy(promote_top=0),proxy", "top_k must be >= 1"),
        ("proxy(promote_top=2),lookup", "needs a NATS-Bench lookup"),
    ]:
        with pytest.raises(UserError) as err:
            parse_ladder(spec, ctx)
        assert fragment in str(err.value) and "\n" not in str(err.value)


def test_table_names_keep_every_dot_of_out(tmp_path):
    from zcnas._io import table_paths, write_table

    assert [p.name for p in table_paths(tmp_path / "tss.1000")] == ["tss.1000.parquet",
                                                                  "tss.1000.csv"]
    assert [p.name for p in table_paths(tmp_path / "run.csv")] == ["run.parquet", "run.csv"]
    df = pd.DataFrame({"a": [1, 2]})
    write_table(df, tmp_path / "tss.500")
    write_table(df.assign(a=[3, 4]), tmp_path / "tss.1000")
    assert pd.read_csv(tmp_path / "tss.500.csv").a.tolist() == [1, 2]  # not overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tss.1000.csv", "tss.1000.parquet", "tss.500.csv", "tss.500.parquet"]  # no temp left
