"""benchmarks.supernet_study --pairs: one supernet against every pool of two, from per-seed
study files joined on the isomorphism classes they share."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from benchmarks.supernet_study import fused, pairs

PHASE = "one-shot, 10 epochs"


def _study(prefix, canon, truth, loss, in_top) -> None:
    pd.DataFrame({"canonical": canon, "arch": canon, "true": truth,
                  "ensemble": truth + np.sin(np.arange(len(truth))),  # an imperfect ensemble
                  "in_sample": True, "in_top": in_top,
                  f"loss | {PHASE}": loss}).to_parquet(f"{prefix}-cells.parquet")
    pd.DataFrame({"phase": [PHASE, PHASE], "subset": ["sample", "top"],
                  "train_cpu_min": [1.5, 1.5]}).to_csv(f"{prefix}.csv", index=False)


def test_pairs_average_the_losses_on_the_shared_classes(tmp_path):
    rng = np.random.default_rng(0)
    n = 12
    canon = [f"c{i}" for i in range(n)]
    truth = np.arange(n, dtype=float)
    top = truth >= 6
    losses = [-truth + rng.normal(0, 3, n) for _ in range(3)]
    prefixes = [str(tmp_path / f"s{k}") for k in range(3)]
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
