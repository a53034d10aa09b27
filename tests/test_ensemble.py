"""Training-free ensembles: the three aggregations, spec strings, errors, and the engine."""

import numpy as np
import pytest
from scipy.stats import rankdata

from zcnas.ensemble import PRESETS, Ensemble, az, expand, maxnorm, mean_rank
from zcnas.errors import UnknownNameError
from zcnas.proxy import Proxy, ProxyError
from zcnas.registry import create_proxy, create_scorer, create_scorers


def test_mean_rank_by_hand_with_lower_is_better_and_nan():
    m = np.array([[1, 5, 3], [2, 4, np.nan], [3, 3, 1.0]])
    # col 0 higher-better -> ranks 1,2,3; col 1 -> 3,2,1; col 2 lower-better, NaN worst -> 2,1,3
    assert mean_rank(m, [True, True, False]) == pytest.approx([2.0, 5 / 3, 7 / 3])


def test_az_is_the_sum_of_log_rank_over_n():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(50, 3))
    m[4, 1] = np.nan
    want = sum(np.log(rankdata(np.where(np.isfinite(c), c, -np.inf)) / 50) for c in m.T)
    assert az(m, [True] * 3) == pytest.approx(want)
    assert az(m, [True] * 3).max() <= 0.0
    # one very bad component rank is punished harder than by the mean rank
    # rows 0 and 1 have component ranks (1, 10) and (5, 6) among 10: equal mean rank
    two = np.array([[1, 10], [5, 6], [2, 1], [3, 2], [4, 3], [6, 4], [7, 5], [8, 7], [9, 8],
                    [10, 9]], dtype=float)
    assert mean_rank(two, [True, True])[0] == mean_rank(two, [True, True])[1]
    assert az(two, [True, True])[0] == pytest.approx(np.log(0.1) + np.log(1.0))
    assert az(two, [True, True])[0] < az(two, [True, True])[1]


def test_maxnorm_is_the_mfnas_fitness():
    v = np.array([[2.0, -4.0, 10.0], [1.0, 2.0, 5.0], [-1.0, np.inf, 1.0]])
    got = maxnorm(v, [True, True, False])
    c0 = v[:, 0] / (2 + 1e-9)
    c1 = np.array([-4.0, 2.0, 0.0]) / (4 + 1e-9)
    c1[2] = c1[:2].min()  # degenerate: the worst normalised value of the population
    c2 = 1 - v[:, 2] / (10 + 1e-9)  # lower is better, as MFNAS treats ntk
    assert got == pytest.approx(c0 + c1 + c2)


def test_specs_presets_and_round_trip():
    e = create_scorer("ensemble:az(synflow,naswot,stable(n_batches=4))")
    assert isinstance(e, Ensemble)
    assert e.spec() == "ensemble:az(synflow,naswot,stable(n_batches=4))"
    assert [c.spec() for c in e.components] == ["synflow", "naswot", "stable(n_batches=4)"]
    assert create_scorer(e.spec()).config() == e.config()
    assert e.needs_labels and e.needs_images and e.higher_is_better
    for name, body in PRESETS.items():
        p = create_scorer(f"ensemble:{name}")
        assert p.spec() == f"ensemble:{name}"
        assert p.config() == create_scorer(f"ensemble:{body}").config()
    free = create_scorer("ensemble:mean_rank(params,flops)")
    assert not free.needs_images and free.spaces is None
    assert create_scorer("ensemble:az(meco,synflow)").spaces == ("nats-tss",)
    listed = create_scorers("synflow,ensemble:maxnorm(naswot,synflow),flops")
    assert [p.spec() for p in listed] == ["synflow", "ensemble:maxnorm(naswot,synflow)", "flops"]


@pytest.mark.parametrize("spec,err,fragment", [
    ("ensemble:median(synflow,naswot)", ProxyError, "unknown ensemble method"),
    ("ensemble:az(synflow)", ProxyError, "at least two"),
    ("ensemble:az(synflow,synflow)", ProxyError, "twice"),
    ("ensemble:az", ProxyError, "expected ensemble:METHOD"),
    ("ensemble:az(synflow,naswot", ProxyError, "unbalanced"),
    ("ensemble:az(synflow,nope)", UnknownNameError, "nope"),
    ("ensemble:az(synflow,ensemble:az_nas)", ProxyError, "another ensemble"),
    ("ensembel:az(synflow,naswot)", UnknownNameError, "prefix"),
])
def test_bad_specs_are_one_clear_error(spec, err, fragment):
    with pytest.raises(err, match=fragment):
        create_scorers(spec)


def test_an_ensemble_is_a_population_scorer_not_a_proxy():
    e = create_scorer("ensemble:mean_rank(params,flops)")
    assert not isinstance(e, Proxy) and not hasattr(e, "score")
    with pytest.raises(ProxyError, match="ranks a population"):
        create_proxy("ensemble:mean_rank(params,flops)")
    from zcnas.registry import create_proxies

    with pytest.raises(ProxyError, match="create_scorers"):
        create_proxies("flops,ensemble:mean_rank(params,flops)")


def test_aggregate_checks_its_input():
    e = create_scorer("ensemble:mean_rank(params,flops)")
    assert e.aggregate({"params": [1, 2], "flops": [2, 1]}) == pytest.approx([1.5, 1.5])
    assert e.aggregate(np.zeros((0, 2))).shape == (0,)
    with pytest.raises(ProxyError, match="flops"):
        e.aggregate({"params": [1, 2]})
    with pytest.raises(ProxyError, match="matrix"):
        e.aggregate(np.zeros((3, 3)))


def test_expand_runs_each_component_once():
    ps = create_scorers("flops,ensemble:mean_rank(params,flops),ensemble:az(params,synflow)")
    plain, ens = expand(ps)
    assert [p.spec() for p in plain] == ["flops", "params", "synflow"]
    assert [e.spec() for e in ens] == ["ensemble:mean_rank(params,flops)",
                                       "ensemble:az(params,synflow)"]


def test_engine_scores_components_and_aggregates_over_the_items():
    from zcnas.scoring.engine import make_items, score_archs

    archs = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|"
             "avg_pool_3x3~2|",
             "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|nor_conv_3x3~1|none~2|",
             "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"]
    items = make_items(archs, "nats-tss")
    e = create_scorer("ensemble:az(params,synflow)")
    rows = score_archs(items, [e, create_proxy("flops")], workers=1, progress=False)
    by = {(r.arch, r.proxy): r for r in rows}
    assert {r.proxy for r in rows} == {"params", "synflow", "flops", e.spec()}
    ens = [by[(a, e.spec())] for a in archs]
    assert all(r.origin == "ensemble" for r in ens)
    want = e.aggregate({c: [by[(a, c)].value for a in archs] for c in ("params", "synflow")})
    assert [r.value for r in ens] == pytest.approx(want)
    assert ens[0].seconds == pytest.approx(by[(archs[0], "params")].seconds
                                           + by[(archs[0], "synflow")].seconds)


def test_the_fast_preset_is_a_point_of_the_batch_grid_of_zcnas():
    """ensemble:zcnas_fast is ensemble:zcnas's aggregation and components, each on its recipe's
    batch or a smaller one of benchmarks.fast_ensemble's grid (the grid it was chosen from)."""
    import numpy as np

    from benchmarks.fast_ensemble import GRID, configurations, paired_bootstrap

    zc = create_scorer("ensemble:zcnas")
    fast = create_scorer("ensemble:zcnas_fast")
    assert fast.method == zc.method == "az"
    grid = list(configurations())
    assert len(grid) == int(np.prod([len(b) for _, b in GRID.values()]))
    points = [comps for _, comps in grid]
    assert [c.spec() for c in zc.components] in points  # the recipe: every family's first batch
    assert [c.spec() for c in fast.components] in points
    assert [c.name for c in fast.components] == [c.name for c in zc.components]
    assert fast.components[1].batch_size == 16 and fast.components[1].n_batches == 2
    # identical scores differ by exactly nothing in every resample
    rng = np.random.default_rng(0)
    x, acc = rng.random(50), rng.random(50)
    assert paired_bootstrap(x, x, acc, 20, rng) == {"rho": (0.0, 0.0), "tau": (0.0, 0.0)}


def test_the_cheapest_match_is_at_least_as_good_on_both_and_never_the_recipe():
    from benchmarks.fast_ensemble import cheapest_match

    recipe = {"cost": 3.0, "rho": 0.94, "tau": 0.79}
    grid = [recipe,
            {"cost": 0.5, "rho": 0.95, "tau": 0.78},   # tau below: no
            {"cost": 0.7, "rho": 0.939, "tau": 0.80},  # rho below: no
            {"cost": 1.2, "rho": 0.941, "tau": 0.791},
            {"cost": 0.9, "rho": 0.94, "tau": 0.79}]   # ties count: the cheapest that qualifies
    assert cheapest_match(grid, recipe) is grid[4]
    assert cheapest_match(grid[:4], recipe) is grid[3]
    assert cheapest_match([recipe, grid[1]], recipe) is None
