"""Reporting search runs: one row per run, summaries over seeds, anytime curves, and the
published NATS-Bench search numbers beside ours. Pure functions of
:class:`zcnas.search.SearchResult` lists; tables are pandas DataFrames and figures matplotlib
Figures (neither is imported until used)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from zcnas._text import markdown_table
from zcnas.lookup.table import TABLE_DATASETS
from zcnas.search.driver import SearchResult

#: Published NATS-Bench topology-space search results (200-epoch test accuracy, %):
#: (cifar10, cifar100, ImageNet16-120), and where they come from.
PUBLISHED: dict[str, tuple[tuple[float, float, float], str]] = {
    "REA (NAS-Bench-201)": ((93.92, 71.84, 45.54),
                            "NB201 protocol: 12,000 s, searched on CIFAR-10, 500 runs"),
    "FreeREA / MF-NAS": ((94.36, 73.51, 46.34),
                         "cell 9930 found in every run (MF-NAS GECCO'24 README; FreeREA)"),
    "optimum": ((94.37, 73.51, 47.31), "best 200-epoch test accuracy of the space"),
}
DATASETS = TABLE_DATASETS  # the order of the PUBLISHED tuples
COST_NOTE = ("Cost: seconds of the budget spent. A lookup is charged the benchmark's training "
             "time (simulated); a proxy, a supernet or a training its measured seconds on this "
             "machine.")
TEST_SPLIT_NOTE = (
    "Selection used test-split lookups: this lookup (the compact table) has no validation "
    "split, so the 12-epoch *test* accuracy served as a low fidelity. The 200-epoch test "
    "accuracy reported was never seen by the search.")


# --- tables --------------------------------------------------------------------------------

def runs_frame(results: Sequence[SearchResult]):
    """One row per run."""
    import pandas as pd

    rows = []
    for r in results:
        c = r.config
        row = {"method": c.method, "dataset": c.dataset, "seed": c.seed, "budget": c.budget,
               "fitness": c.fitness, "arch": r.arch, "index": r.index,
               "reported_test_acc": r.reported, "cost_s": r.cost, "wall_s": r.wall_seconds,
               "selection_used_test_split": r.uses_test_split, "stages": " -> ".join(r.stages),
               "evals": " / ".join(map(str, r.evals_by_stage)),
               "cost_by_stage_s": " / ".join(f"{x:.0f}" for x in r.cost_by_stage)}
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(results: Sequence[SearchResult], optimum: Callable[[str], float] | None = None):
    """Mean +- std per (method, dataset)."""
    import pandas as pd

    df = runs_frame(results)
    out = []
    for (m, ds), g in df.groupby(["method", "dataset"], sort=False):
        acc = g["reported_test_acc"].astype(float)
        row = {"method": m, "dataset": ds, "runs": len(g), "budget_s": float(g["budget"].iloc[0]),
               "mean": acc.mean(), "std": acc.std(ddof=0), "min": acc.min(), "max": acc.max(),
               "top_index": int(g["index"].mode().iloc[0]) if g["index"].notna().any() else None,
               "top_index_share": float((g["index"] == g["index"].mode().iloc[0]).mean())
               if g["index"].notna().any() else math.nan,
               # every cell chosen most often: a tie is shown as one, "655 / 5374"
               "top_indices": " / ".join(str(int(i)) for i in sorted(g["index"].mode()))
               if g["index"].notna().any() else "",
               "cost_mean_s": g["cost_s"].mean(), "cost_max_s": g["cost_s"].max(),
               "wall_mean_s": g["wall_s"].mean(),
               "test_split_selection": bool(g["selection_used_test_split"].any())}
        if optimum is not None:
            row["optimum_share"] = float((acc >= optimum(ds) - 1e-9).mean())
        out.append(row)
    return pd.DataFrame(out)


def most_chosen(row, show: int = 3) -> str:
    """``5374 (97%)``, a tie ``655 / 5374 (47% each)``, or a tie of more than ``show`` cells
    ``81 / 111 / 168 / +27 more (3% each)``."""
    cells = str(row.top_indices or row.top_index).split(" / ")
    share = f"{row.top_index_share:.0%}" + (" each" if len(cells) > 1 else "")
    if len(cells) > show:
        cells = [*cells[:show], f"+{len(cells) - show} more"]
    return f"{' / '.join(cells)} ({share})"


def published_rows(datasets: Sequence[str]) -> list[tuple[str, str, str]]:
    out = []
    for name, (vals, source) in PUBLISHED.items():
        for ds in datasets:
            if ds in DATASETS:
                out.append((name, ds, f"{vals[DATASETS.index(ds)]:.2f}", source))
    return out


def anytime_frame(results: Sequence[SearchResult], grid: int = 200):
    """Tidy anytime curves: per run, the reported accuracy of the current choice on a common
    grid of simulated cost (0 .. budget); NaN before the first choice."""
    import numpy as np
    import pandas as pd

    rows = []
    for r in results:
        c = r.config
        xs = np.linspace(0, c.budget, grid + 1)[1:]
        costs = np.array([t[0] for t in r.trajectory], dtype=float)
        accs = np.array([np.nan if t[2] is None else t[2] for t in r.trajectory], dtype=float)
        pos = np.searchsorted(costs, xs, side="right") - 1
        vals = np.where(pos >= 0, accs[np.clip(pos, 0, None)] if len(accs) else np.nan, np.nan)
        for x, v in zip(xs, vals, strict=True):
            rows.append({"method": c.method, "dataset": c.dataset, "seed": c.seed,
                         "cost_s": float(x), "acc": float(v)})
    return pd.DataFrame(rows)


def anytime_figure(frame, published: bool = True):
    """Mean (line) and +- std (band) of the anytime curves, one panel per dataset."""
    from matplotlib.figure import Figure

    datasets = list(dict.fromkeys(frame["dataset"]))
    fig = Figure(figsize=(5.2 * len(datasets), 4.2), layout="constrained")
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, ds in zip(axes, datasets, strict=True):
        sub = frame[frame["dataset"] == ds]
        lows = []
        for m, g in sub.groupby("method", sort=False):
            stats = g.groupby("cost_s")["acc"].agg(["mean", "std", "count"]).reset_index()
            few = int(stats["mean"].notna().sum()) <= 2  # one point still shows: a marker
            line, = ax.plot(stats["cost_s"], stats["mean"], label=m, marker="o" if few else None)
            ax.fill_between(stats["cost_s"], stats["mean"] - stats["std"].fillna(0),
                            stats["mean"] + stats["std"].fillna(0), alpha=0.15,
                            color=line.get_color())
            tail = stats["mean"].dropna()
            if len(tail):
                lows.append(float(tail.iloc[len(tail) // 4]))
        if published and ds in DATASETS:
            for (name, (vals, _)), ls in zip(PUBLISHED.items(), (":", "--", "-."), strict=False):
                v = vals[DATASETS.index(ds)]
                ax.axhline(v, ls=ls, lw=1, color="grey", label=f"{name}: {v:.2f}")
        if lows:
            top = max(PUBLISHED["optimum"][0][DATASETS.index(ds)] if ds in DATASETS else 0,
                      float(sub["acc"].max()))
            ax.set_ylim(min(lows) - 0.5, top + 0.3)
        ax.set_title(f"{ds}: accuracy of the current choice")
        ax.set_xlabel("cost (s of the budget; lookups simulated, the rest measured)")
        ax.set_ylabel("200-epoch test accuracy (%)")
        ax.legend(fontsize=8, loc="lower right")
    return fig


def summary_markdown(summ, results, description: Sequence[str]) -> str:
    """The Markdown summary: the table, the published numbers and the ladders used."""
    rows = [[s.method, s.dataset, s.runs, f"{s.budget_s:,.0f}",
             f"**{s['mean']:.2f}** +- {s['std']:.2f}",
             f"{s['min']:.2f} / {s['max']:.2f}", most_chosen(s),
             f"{s.optimum_share:.0%}", f"{s.cost_mean_s:,.0f} (max {s.cost_max_s:,.0f})",
             f"{s.wall_mean_s:.1f}"] for _, s in summ.iterrows()]
    parts = ["# Search results", "",
             markdown_table(rows, ["method", "dataset", "runs", "budget s", "test acc (200 ep)",
                                   "min / max", "most chosen cell", "runs at optimum",
                                   "cost s", "wall s / run"]), "", COST_NOTE, ""]
    datasets = list(dict.fromkeys(summ["dataset"]))
    parts += ["Published (200-epoch test accuracy, %):", "",
              markdown_table([list(r) for r in published_rows(datasets)],
                             ["method", "dataset", "accuracy", "protocol / source"]), ""]
    if any(r.uses_test_split for r in results):
        parts += [TEST_SPLIT_NOTE, ""]
    parts += ["Ladders:", "", *[f"    {line}" for line in description], ""]
    return "\n".join(parts)
