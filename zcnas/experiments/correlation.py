"""``zcnas correlate`` as a library call: score tables against a NATS-Bench lookup.

:func:`run_correlate` takes a frozen :class:`CorrelateRequest`, reads the tables, joins them
to the lookup, computes the correlation table with bootstrap intervals and writes it (Parquet,
CSV, Markdown with the published numbers beside) and the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zcnas.errors import UserError


@dataclass(frozen=True)
class CorrelateRequest:
    tables: tuple[str, ...]
    out: str
    space: str = "nats-tss"
    proxies: str = "all"
    data: str | None = None
    lookup: str = "auto"
    datasets: str = "all"
    epochs: tuple[int, ...] = (200, 12)
    split: str = "test"
    archs: str = "all"
    seed: int = 0
    bootstrap: int = 200
    plots: bool = True
    published: bool = True
    progress: bool | None = None


@dataclass
class CorrelateOutcome:
    table: Any
    paths: list[Path]
    spearman: Any  # proxies x datasets, first schedule


def run_correlate(req: CorrelateRequest) -> CorrelateOutcome:
    from zcnas._io import atomic_write, check_output_dir, write_figure, write_table
    from zcnas.analysis.correlate import (
        SMALL_SAMPLE,
        check_bootstrap,
        correlate,
        prepare,
        read_scores,
        to_markdown,
        wide,
    )
    from zcnas.lookup import open_benchmark

    check_bootstrap(req.bootstrap)  # before any work
    if req.archs != "all" and not (req.archs.isascii() and req.archs.isdigit()):
        raise UserError(f"--archs {req.archs!r}: 'all' or a number")
    if not req.epochs:
        raise UserError("--epochs names no schedule")
    names = ("correlations.parquet", "correlations.csv", "correlations.md", "scatter.png",
             *(f"heatmap-{e}ep.png" for e in req.epochs))
    outdir = check_output_dir(req.out, files=names)
    scores = read_scores(req.tables)
    bench = open_benchmark(req.space, root=req.data, kind=req.lookup)
    for e in req.epochs:
        bench.schedule(e)
    ds = (None if req.datasets == "all"
          else [d.strip() for d in req.datasets.split(",") if d.strip()])
    prepared = prepare(scores, bench, proxies=req.proxies, archs=req.archs, seed=req.seed)
    table = correlate(prepared, bench, datasets=ds, epochs=req.epochs, split=req.split,
                      seed=req.seed, bootstrap=req.bootstrap, progress=req.progress)
    small = int(table["n"].min()) if len(table) else 0
    if small < SMALL_SAMPLE:
        import warnings

        warnings.warn(f"only {small} architectures are scored for some proxy: rank "
                      f"correlations over fewer than {SMALL_SAMPLE} are noisy (see the "
                      "bootstrap intervals)", stacklevel=2)
    paths = list(write_table(table, outdir / "correlations"))
    on = ", ".join(sorted(table.scores_on.unique()))
    notes = [f"Scores: {', '.join(map(str, req.tables))} (computed on {on} inputs). "
             f"Accuracies: {bench.source}, split {req.split}. Sample: "
             f"{table['sample'].iloc[0]} architectures; {req.bootstrap} bootstrap resamples "
             "for the 95% intervals."]
    other = [d for d in table.dataset.unique() if d not in on.split(", ")]
    if other:
        notes.append(f"The {', '.join(other)} columns correlate the same {on} scores against "
                     "those datasets' accuracies; the proxies did not see their images.")
    paths.append(atomic_write(outdir / "correlations.md",
                              to_markdown(table, published=req.published, notes=notes)))
    eps = req.epochs
    if req.plots:
        import pandas as pd

        from zcnas.analysis.plots import heatmap, scatter_grid

        for ep in eps:
            fig = heatmap(wide(table, "spearman", ep),
                          title=f"Spearman rho vs {ep}-epoch {req.split} accuracy")
            paths.append(write_figure(fig, outdir / f"heatmap-{ep}ep.png", dpi=130))
        d0 = wide(table, "spearman", eps[0]).columns[0]
        pop = prepared.population  # one lookup for every panel
        acc = pd.Series(bench.accuracies(pop, d0, epochs=eps[0], split=req.split), index=pop)
        panels = {name: (values.to_numpy(), acc.loc[values.index].to_numpy(), hib)
                  for name, values, hib in prepared.scored}
        fig = scatter_grid(panels, ylabel=f"{d0} {eps[0]}-ep {req.split} acc. (%)")
        paths.append(write_figure(fig, outdir / "scatter.png", dpi=110))
    return CorrelateOutcome(table, paths, wide(table, "spearman", eps[0]))
