"""benchmarks.supernet_study --pairs: one supernet against every pool of two, from per-seed
study files joined on the isomorphism classes they share."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from benchmarks.supernet_study import fused, pairs, pool_sizes

PHASE = "one-shot, 10 epochs"


def _study(prefix, canon, truth, loss, in_top) -> None:
    pd.DataFrame({"canonical": canon, "arch": canon, "true": truth,
                  "ensemble": truth + np.sin(np.arange(len(truth))),  # an imperfect ensemble
                  "in_sample": True, "in_top": in_top,
                  f"loss | {PHASE}": loss}).to_parquet(f"{prefix}-cells.parquet")
    pd.DataFrame({"phase": [PHASE, PHASE], "subset": ["sample", "top"],
                  "train_cpu_min": [1.5, 1.5]}).to_csv(f"{prefix}.csv", index=False)


def _seeds(tmp_path, n, cut, noise, seed):
    """Three seeds' noisy losses over ``n`` classes of accuracy 0 .. n-1 (top: >= ``cut``)."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n, dtype=float)
    losses = [-truth + rng.normal(0, noise, n) for _ in range(3)]
    prefixes = [str(tmp_path / f"s{k}") for k in range(3)]
    return [f"c{i}" for i in range(n)], truth, truth >= cut, losses, prefixes


def test_pairs_average_the_losses_on_the_shared_classes(tmp_path):
    n = 12
    canon, truth, top, losses, prefixes = _seeds(tmp_path, n, 6, 3, seed=0)
    for k in range(2):
        _study(prefixes[k], canon, truth, losses[k], top)
    # the third study lacks class c0 and has one of its own: only the 11 shared classes count
    _study(prefixes[2], canon[1:] + ["extra"], np.append(truth[1:], 99.0),
           np.append(losses[2][1:], -99.0), np.append(top[1:], True))
    text = pairs(prefixes, tmp_path / "pairs.md")
    assert "3 seeds" in text and "3 pairs" in text and "11 sampled and 6 top cells" in text
    m = np.arange(1, n)  # the shared classes
    one = [kendalltau(-x[m], truth[m])[0] for x in losses]
    duo = [kendalltau(-(losses[i][m] + losses[j][m]) / 2, truth[m])[0]
           for i, j in ((0, 1), (0, 2), (1, 2))]
    t = m[top[m]]
    ens = truth + np.sin(np.arange(n))
    top_one = [kendalltau(fused(ens[t], -x[t]), truth[t])[0] for x in losses]
    row = next(line for line in text.splitlines() if line.startswith(f"| {PHASE}"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == f"{np.mean(one):.3f} ({min(one):.3f} - {max(one):.3f})"
    assert cells[3] == f"{np.mean(duo):.3f} ({min(duo):.3f} - {max(duo):.3f})"
    assert cells[4] == f"{np.mean(top_one):.3f} ({min(top_one):.3f} - {max(top_one):.3f})"
    assert cells[6] == f"{kendalltau(ens[t], truth[t])[0]:.3f} (6 cells)"


def test_pools_of_every_size_with_a_bootstrap_interval_of_the_top_gain(tmp_path):
    n = 30
    canon, truth, top, losses, prefixes = _seeds(tmp_path, n, 10, 8, seed=1)
    for k in range(3):
        _study(prefixes[k], canon, truth, losses[k], top)
    text = pool_sizes(prefixes, tmp_path / "pools.md", resamples=60)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith(f"| {PHASE}")]
    assert [r[1] for r in rows] == ["1", "2", "3"]
    assert [r[2] for r in rows] == ["1.5", "3.0", "4.5"]  # every member's training counts
    ens = truth + np.sin(np.arange(n))
    t = np.flatnonzero(top)
    pools = [[(0,), (1,), (2,)], [(0, 1), (0, 2), (1, 2)], [(0, 1, 2)]]  # sizes 1, 2, 3
    # the draws: 60 of the 20 top cells with replacement (seed 0), shared by every pool size
    rng = np.random.default_rng(0)
    draws = [t[rng.integers(0, len(t), len(t))] for _ in range(60)]

    def gain(cells, scores):
        return (np.mean([kendalltau(fused(ens[cells], x[cells]), truth[cells])[0]
                         for x in scores]) - kendalltau(ens[cells], truth[cells])[0])
    for row, groups in zip(rows, pools, strict=True):
        scores = [-np.mean([losses[i] for i in g], axis=0) for g in groups]
        sample = [kendalltau(x, truth)[0] for x in scores]
        fused_top = [kendalltau(fused(ens[t], x[t]), truth[t])[0] for x in scores]
        assert row[3] == f"{np.mean(sample):.3f} ({min(sample):.3f} - {max(sample):.3f})"
        assert row[4] == f"{np.mean(fused_top):.3f} ({min(fused_top):.3f} - {max(fused_top):.3f})"
        lo, hi = np.quantile([gain(d, scores) for d in draws], [0.025, 0.975])
        assert row[5] == f"{gain(t, scores):+.3f} [{lo:+.3f}, {hi:+.3f}]"
        assert hi - lo > 0.05  # 20 top cells: a wide interval
