"""Figures of ranking quality. Each function takes data and returns a matplotlib Figure
(Agg backend; nothing is shown or saved here)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np


def _figure(w: float, h: float):
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    return Figure(figsize=(w, h), layout="constrained")


def scatter_grid(scores: Mapping[str, tuple[np.ndarray, np.ndarray, bool]], *,
                 ylabel: str = "accuracy (%)", title: str | None = None, cols: int = 5):
    """One panel per proxy: architectures by proxy rank (x: percentile, 1 = best; degenerate
    scores, ranked last, in red at the left) against accuracy (y), titled with Spearman rho.

    ``scores``: name -> (raw scores, accuracies, higher_is_better).
    """
    from scipy.stats import rankdata

    from zcnas.analysis.metrics import spearman
    from zcnas.proxy import goodness

    n = len(scores)
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig = _figure(2.6 * cols, 2.3 * rows + (0.4 if title else 0))
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax, (name, (s, acc, higher)) in zip(axes.flat, scores.items(), strict=False):
        g = goodness(s, higher)
        x = (rankdata(g, method="average") - 1) / max(1, len(g) - 1)
        bad = ~np.isfinite(g)
        ax.scatter(x[~bad], np.asarray(acc)[~bad], s=3, alpha=0.35, linewidths=0,
                   color="tab:blue", rasterized=True)
        if bad.any():
            ax.scatter(x[bad], np.asarray(acc)[bad], s=3, alpha=0.5, linewidths=0,
                       color="tab:red", rasterized=True)
        rho = spearman(s, acc, higher)
        label = name if len(name) <= 28 else name[:26] + "..."
        ax.set_title(f"{label}\nrho {rho:.3f}" + (f", {int(bad.sum())} degenerate"
                                                    if bad.any() else ""), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlim(-0.02, 1.02)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=8)
    for ax in axes[-1, :]:
        ax.set_xlabel("proxy rank (percentile)", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def heatmap(matrix, *, title: str | None = None, label: str = "Spearman rho"):
    """Proxies (rows) x datasets (columns) of one metric, annotated with the values.

    ``matrix``: a pandas DataFrame (index: proxies, columns: datasets).
    """
    values = matrix.to_numpy(dtype=float)
    fig = _figure(1.6 + 1.3 * values.shape[1], 0.8 + 0.32 * values.shape[0])
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="viridis", vmin=min(0.0, np.nanmin(values)), vmax=1.0,
                   aspect="auto")
    ax.set_xticks(range(values.shape[1]), labels=list(matrix.columns), fontsize=8)
    ax.set_yticks(range(values.shape[0]), labels=[str(i) for i in matrix.index], fontsize=8)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if v > 0.6 else "white")
    fig.colorbar(im, ax=ax, label=label, shrink=0.8)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


__all__ = ["heatmap", "scatter_grid"]
