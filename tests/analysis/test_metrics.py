"""Ranking metrics: agreement with scipy, degenerate scores ranked last, tie-fair top-k/NDCG,
bootstrap intervals."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau, spearmanr

from zcnas.analysis.metrics import (
    METRIC_NAMES,
    evaluate,
    kendall,
    ndcg,
    spearman,
    top_overlap,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    acc = rng.normal(size=400)
    return acc + rng.normal(size=400), acc


def test_spearman_and_kendall_match_scipy_without_degenerate_scores(data):
    s, a = data
    assert spearman(s, a) == pytest.approx(spearmanr(s, a).statistic, abs=1e-12)
    assert kendall(s, a) == pytest.approx(kendalltau(s, a).statistic, abs=1e-12)
    # lower-is-better flips the sign
    assert spearman(s, a, higher_is_better=False) == pytest.approx(-spearman(s, a), abs=1e-12)


def test_degenerate_scores_rank_last_and_are_not_dropped(data):
    s, a = data
    bad = s.copy()
    bad[:30] = np.nan
    bad[30:40] = np.inf  # +inf is degenerate too, not "best"
    floor = s.copy()
    floor[:40] = s.min() - 1.0  # the same as ranking them last, tied
    assert spearman(bad, a) == pytest.approx(spearman(floor, a), abs=1e-12)
    assert kendall(bad, a) == pytest.approx(kendall(floor, a), abs=1e-12)
    for lower in (False, True):
        worst = s.copy()
        worst[:40] = s.max() + 1.0 if lower else s.min() - 1.0
        assert spearman(bad, a, not lower) == pytest.approx(spearman(worst, a, not lower))
    # dropped would be: better than ranked last when the NaN archs are the best ones
    best = np.argsort(-a)[:40]
    nan_on_best = s.copy()
    nan_on_best[best] = np.nan
    kept = np.setdiff1d(np.arange(len(a)), best)
    assert spearman(nan_on_best, a) < spearman(s[kept], a[kept]) - 0.05


def test_top_overlap_perfect_reversed_and_ties():
    a = np.arange(100.0)
    assert top_overlap(a, a, 0.1) == 1.0
    assert top_overlap(-a, a, 0.1) == 0.0
    # all scores tied: every arch is in the top 10 with probability 10/100
    assert top_overlap(np.zeros(100), a, 0.1) == pytest.approx(0.1)
    # a tie across the cut: two archs share places 10-11 -> each counts half
    s = a.copy()
    s[89] = s[90] = 89.5  # true ranks 10 and 11 from the top
    assert top_overlap(s, a, 0.1) == pytest.approx(9.5 / 10)
    # k is at least one architecture
    assert top_overlap(a, a, 0.001) == 1.0


def test_ndcg_perfect_reversed_ties_and_invariance():
    rng = np.random.default_rng(0)
    a = rng.permutation(200).astype(float)
    assert ndcg(a, a) == pytest.approx(1.0)
    assert ndcg(-a, a) == 0.0
    tied = ndcg(np.zeros(200), a)
    assert 0.0 < tied < 1.0
    # monotone transforms of the scores change nothing
    assert ndcg(np.exp(a / 50), a) == pytest.approx(1.0)
    # swapping the two best picks costs something, but little
    s = a.copy()
    top = np.argsort(-a)[:2]
    s[top] = s[top[::-1]]
    assert 0.9 < ndcg(s, a) < 1.0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=60, unique=True),
       st.integers(0, 2**31))
def test_rank_metrics_are_invariant_to_monotone_transforms(scores, seed):
    s = np.array(scores)
    a = np.random.default_rng(seed).permutation(len(s)).astype(float)
    t = np.sign(s) * np.log1p(np.abs(s))  # strictly increasing in exact arithmetic
    assume(len(np.unique(t)) == len(s))  # floats so close that rounding ties them are no test
    for fn in (spearman, kendall, ndcg):
        x, y = fn(s, a), fn(t, a)
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, abs=1e-9)
    assert top_overlap(s, a, 0.2) == pytest.approx(top_overlap(t, a, 0.2))


def test_evaluate_gives_every_metric_with_a_seeded_interval(data):
    s, a = data
    one = evaluate(s, a, bootstrap=100, rng=np.random.default_rng(1))
    two = evaluate(s, a, bootstrap=100, rng=np.random.default_rng(1))
    assert [e.metric for e in one] == list(METRIC_NAMES)
    assert one == two
    for e in one:
        assert e.ci_low <= e.value <= e.ci_high, e
    rho = one[0]
    assert 0.55 < rho.value < 0.8 and rho.ci_high - rho.ci_low < 0.2
    none = evaluate(s, a, bootstrap=0)
    assert all(math.isnan(e.ci_low) and math.isnan(e.ci_high) for e in none)
    with pytest.raises(ValueError, match="shape"):
        evaluate(s, a[:-1])
    with pytest.raises(ValueError, match="two"):
        evaluate(s[:1], a[:1])
