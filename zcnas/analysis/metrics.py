"""Ranking-quality metrics of a proxy against benchmark accuracies.

Every metric takes raw proxy scores and accuracies over the same architectures. Scores are
first turned into *goodness* (:func:`zcnas.proxy.goodness`: larger is better, NaN and
infinities become ``-inf``), so degenerate architectures are ranked last, tied with each
other, and never dropped.

Ties are handled without arbitrary tie-breaking, so every number is a pure function of the
data (isomorphic cells score identically, so ties are common):

* Spearman rho and Kendall tau-b use average ranks (``scipy.stats``);
* ``top_overlap`` (precision of the top p%) counts a tied block at the cut-off as the
  *expected* overlap under a random tie break (each member is in the top k with probability
  ``places left / block size``);
* ``ndcg`` likewise gives each member of a tied block the mean discount of the block's
  positions. The list is cut at the top p% (k architectures); relevance is how far an
  architecture's accuracy lies above the (k+1)-th best accuracy (zero for all but the true
  top k), the gain is linear and the discount ``1/log2(position + 1)``. So it asks: do the
  proxy's first k picks hold the truly best architectures, best first? (Relevance scaled over
  the whole population would give every proxy about 0.99: the top 10% all sit near the top
  accuracy.)

No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from zcnas.proxy import goodness

#: Fractions of the population whose top-k overlap ("precision@top p%") is reported.
TOP_FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.10)
#: Cut-off of the NDCG list, as a fraction of the population.
NDCG_FRACTION = 0.10


def _rank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def _k(n: int, frac: float) -> int:
    return max(1, min(n, math.ceil(frac * n - 1e-9)))


def _membership(g: np.ndarray, k: int) -> np.ndarray:
    """Probability that each element is among the ``k`` largest under a random tie break."""
    order = np.sort(g)[::-1]
    t = order[k - 1]
    above = g > t
    tied = g == t
    p = above.astype(np.float64)
    p[tied] = (k - int(above.sum())) / int(tied.sum())
    return p


def spearman(scores: Sequence[float], acc: Sequence[float], higher_is_better: bool = True) -> float:
    g = goodness(scores, higher_is_better)
    a = np.asarray(acc, dtype=np.float64)
    rg, ra = _rank(g), _rank(a)
    if rg.std() == 0 or ra.std() == 0:
        return float("nan")
    return float(np.corrcoef(rg, ra)[0, 1])


def kendall(scores: Sequence[float], acc: Sequence[float], higher_is_better: bool = True) -> float:
    from scipy.stats import kendalltau

    g = goodness(scores, higher_is_better)
    # ranks instead of values: -inf is a valid, tied, lowest value
    return float(kendalltau(_rank(g), np.asarray(acc, dtype=np.float64)).statistic)


def top_overlap(
    scores: Sequence[float], acc: Sequence[float], frac: float, higher_is_better: bool = True
) -> float:
    """Share of the true top ``frac`` that the proxy's top ``frac`` holds (expected, tie-fair)."""
    g = goodness(scores, higher_is_better)
    a = np.asarray(acc, dtype=np.float64)
    k = _k(len(g), frac)
    return float(np.dot(_membership(g, k), _membership(a, k)) / k)


def _tie_mean(values: np.ndarray, by: np.ndarray) -> np.ndarray:
    """``values`` (per sorted position) averaged within blocks of equal ``by`` (sorted desc)."""
    n = len(by)
    starts = np.flatnonzero(np.r_[True, by[1:] != by[:-1]])
    ends = np.r_[starts[1:], n]
    sums = np.add.reduceat(values, starts)
    return np.repeat(sums / (ends - starts), ends - starts)


def ndcg(
    scores: Sequence[float], acc: Sequence[float], frac: float = NDCG_FRACTION,
    higher_is_better: bool = True,
) -> float:
    """NDCG of the proxy's ordering, cut at the top ``frac`` (see the module docstring)."""
    g = goodness(scores, higher_is_better)
    a = np.asarray(acc, dtype=np.float64)
    n = len(g)
    k = _k(n, frac)
    if k >= n:
        floor = a.min()
    else:
        floor = np.sort(a)[::-1][k]
    rel = np.clip(a - floor, 0.0, None)
    if not rel.any():
        return float("nan")
    disc = np.zeros(n)
    disc[:k] = 1.0 / np.log2(np.arange(2, k + 2))
    order = np.argsort(-g, kind="stable")
    dcg = float(np.dot(rel[order], _tie_mean(disc, g[order])))
    ideal = np.sort(rel)[::-1]
    idcg = float(np.dot(ideal, disc))
    return dcg / idcg if idcg > 0 else float("nan")


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    fn: Callable[[np.ndarray, np.ndarray], float]  # on goodness (higher better) and accuracy


def _metrics() -> tuple[Metric, ...]:
    out = [Metric("spearman", "Spearman rho", spearman), Metric("kendall", "Kendall tau", kendall)]
    for f in TOP_FRACTIONS:
        pct = f"{f * 100:g}%"
        out.append(Metric(f"top{pct}", f"precision@top {pct}",
                          lambda s, a, f=f: top_overlap(s, a, f)))
    pct = f"{NDCG_FRACTION * 100:g}%"
    out.append(Metric(f"ndcg@{pct}", f"NDCG@top {pct}", lambda s, a: ndcg(s, a, NDCG_FRACTION)))
    return tuple(out)


#: The most bootstrap resamples :func:`evaluate` draws. Its draws are kept for the percentile
#: interval (resamples x metrics floats: 4.8 MB at the maximum) and each resample costs a pass
#: over the sample; the 95% interval is stable long before (1,000 to 10,000 are plenty).
MAX_BOOTSTRAP = 100_000

#: Every metric ``zcnas correlate`` reports, in column order.
METRICS: tuple[Metric, ...] = _metrics()
METRIC_NAMES: tuple[str, ...] = tuple(m.name for m in METRICS)


@dataclass(frozen=True)
class Estimate:
    """A metric's value on the full sample and its percentile bootstrap interval."""

    metric: str
    value: float
    ci_low: float
    ci_high: float


def evaluate(
    scores: Sequence[float],
    acc: Sequence[float],
    *,
    higher_is_better: bool = True,
    bootstrap: int = 200,
    level: float = 0.95,
    rng: np.random.Generator | None = None,
    metrics: Sequence[Metric] = METRICS,
) -> list[Estimate]:
    """All ``metrics`` of ``scores`` vs ``acc`` with bootstrap confidence intervals.

    The bootstrap resamples architectures with replacement ``bootstrap`` times (0: no
    interval, at most :data:`MAX_BOOTSTRAP`) from ``rng`` (seeded by the caller) and reports
    the percentile interval. Memory: one resample of the sample at a time, plus
    ``bootstrap x len(metrics)`` floats.
    """
    if bootstrap > MAX_BOOTSTRAP:  # checked before anything is allocated
        raise ValueError(
            f"bootstrap={bootstrap:,} resamples is more than the maximum, {MAX_BOOTSTRAP:,}"
        )
    g = goodness(scores, higher_is_better)
    a = np.asarray(acc, dtype=np.float64)
    if g.shape != a.shape or g.ndim != 1:
        raise ValueError(f"scores and accuracies differ in shape: {g.shape} vs {a.shape}")
    if len(g) < 2:
        raise ValueError("at least two architectures are needed to measure a ranking")
    point = [m.fn(g, a) for m in metrics]
    if bootstrap <= 0:
        nan = float("nan")
        return [Estimate(m.name, v, nan, nan) for m, v in zip(metrics, point, strict=True)]
    rng = rng if rng is not None else np.random.default_rng(0)
    n = len(g)
    draws = np.empty((bootstrap, len(metrics)))
    for b in range(bootstrap):
        idx = rng.integers(0, n, n)
        gb, ab = g[idx], a[idx]
        draws[b] = [m.fn(gb, ab) for m in metrics]
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    out = []
    for j, (m, v) in enumerate(zip(metrics, point, strict=True)):
        col = draws[:, j]
        col = col[np.isfinite(col)]
        low, high = (np.percentile(col, [lo, hi]) if len(col) else (np.nan, np.nan))
        out.append(Estimate(m.name, v, float(low), float(high)))
    return out


__all__ = ["MAX_BOOTSTRAP", "METRICS", "METRIC_NAMES", "NDCG_FRACTION", "TOP_FRACTIONS",
           "Estimate", "Metric", "evaluate", "kendall", "ndcg", "spearman", "top_overlap"]
