"""The benchmark protocol: many seeds of many (method, dataset) searches, side by side.

:func:`run_protocol` runs every (method, dataset, seed) as an independent task (in parallel
with ``workers`` processes), each checkpointed under ``out/runs/``: re-running the same
command resumes unfinished runs and reuses finished ones. :func:`summarize` gives mean +- std
of the reported accuracy, the costs and the published numbers beside; :func:`anytime_frame`
and :func:`anytime_figure` the anytime curves (accuracy of the current choice vs simulated
cost).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from zcnas.lookup.table import TABLE_DATASETS
from zcnas.search.run import SearchConfig, SearchResult

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


def run_name(cfg: SearchConfig) -> str:
    return f"{cfg.method}-{cfg.dataset}-seed{cfg.seed}"


def _open(root: Any, lookup: str, space: str):
    if lookup == "none":
        return None
    from zcnas.lookup import open_benchmark

    return open_benchmark(space, root=root, kind=lookup)


def run_one(cfg: SearchConfig, *, root: Any = None, lookup: str = "auto",
            store_path: str | None = None, checkpoint: str | os.PathLike | None = None,
            bench: Any = None) -> SearchResult:
    """One seed of one search (opens the lookup and the store itself, so it runs in a
    worker process)."""
    from zcnas.search.run import build, run_search

    bench = bench if bench is not None else _open(root, lookup, cfg.space)
    store = None
    if store_path is not None:
        from zcnas.runtime import ScoreStore

        store = ScoreStore(store_path)
    try:
        workdir = Path(checkpoint).with_suffix("") if checkpoint is not None else None
        searcher, ladder = build(cfg, bench, root=root, store=store, workdir=workdir)
        reporter = index_of = None
        if bench is not None:
            def reporter(arch: str) -> float:
                return bench.accuracy(arch, cfg.dataset, epochs=bench.full_epochs,
                                      split="test").value
            index_of = bench.index
        return run_search(cfg, searcher, ladder, reporter=reporter, index_of=index_of,
                          checkpoint=checkpoint)
    finally:
        if store is not None:
            store.close()


def _task(args: tuple) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    cfg, kw = args
    return run_one(cfg, **kw).to_dict()


def run_protocol(configs: Sequence[SearchConfig], out: str | os.PathLike | None, *,
                 root: Any = None, lookup: str = "auto", store_path: str | None = None,
                 workers: int = 1,
                 on_done: Callable[[SearchResult], None] | None = None) -> list[SearchResult]:
    """Run every config (checkpointed in ``out/runs/NAME.json`` unless ``out`` is None);
    results in config order."""
    runs = None if out is None else Path(out) / "runs"
    if runs is not None:
        runs.mkdir(parents=True, exist_ok=True)
    if store_path is not None:  # create the store once, before workers open it concurrently
        from zcnas.runtime import ScoreStore

        ScoreStore(store_path).close()
    tasks = [(cfg, {"root": None if root is None else str(root), "lookup": lookup,
                    "store_path": store_path,
                    "checkpoint": None if runs is None else str(runs / f"{run_name(cfg)}.json")})
             for cfg in configs]
    results: dict[int, SearchResult] = {}
    if workers <= 1 or len(tasks) <= 1:
        bench = _open(root, lookup, configs[0].space) if configs else None
        for i, (cfg, kw) in enumerate(tasks):
            results[i] = run_one(cfg, bench=bench, **kw)
            if on_done is not None:
                on_done(results[i])
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        try:
            futures = {pool.submit(_task, t): i for i, t in enumerate(tasks)}
            for f in as_completed(futures):
                res = SearchResult.from_dict(f.result())
                results[futures[f]] = res
                if on_done is not None:
                    on_done(res)
        except BaseException:  # one run failed (or Ctrl-C): do not wait for the queued ones
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    return [results[i] for i in range(len(tasks))]


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
               "cost_mean_s": g["cost_s"].mean(), "cost_max_s": g["cost_s"].max(),
               "wall_mean_s": g["wall_s"].mean(),
               "test_split_selection": bool(g["selection_used_test_split"].any())}
        if optimum is not None:
            row["optimum_share"] = float((acc >= optimum(ds) - 1e-9).mean())
        out.append(row)
    return pd.DataFrame(out)


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
            line, = ax.plot(stats["cost_s"], stats["mean"], label=m)
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
        ax.set_xlabel("simulated cost (s)")
        ax.set_ylabel("200-epoch test accuracy (%)")
        ax.legend(fontsize=8, loc="lower right")
    return fig


def config_grid(base: SearchConfig, methods: Sequence[str], datasets: Sequence[str],
                seeds: Sequence[int], budgets: dict[str, float] | None = None
                ) -> list[SearchConfig]:
    out = []
    for ds in datasets:
        for m in methods:
            for s in seeds:
                b = budgets[ds] if budgets is not None else base.budget
                out.append(replace(base, method=m, dataset=ds, seed=s, budget=b))
    return out
