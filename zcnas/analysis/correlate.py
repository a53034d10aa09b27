"""Ranking correlations of proxy scores against NATS-Bench accuracies.

Inputs: score tables written by ``zcnas score`` (Parquet or CSV, long format) and a lookup
(:mod:`zcnas.lookup`). Output: one tidy row per (proxy, dataset, epochs, metric) with the
value, its bootstrap interval, the number of architectures and how many of them had a
degenerate (NaN/inf) score, which are ranked last and never dropped.

The proxies never see the lookup: scores are computed first (``zcnas score``) and joined to
accuracies here by arch string (the benchmark's own index order).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zcnas.analysis.metrics import MAX_BOOTSTRAP, METRICS, evaluate
from zcnas.errors import CorruptDataError, DataNotFoundError, UserError

SCORE_COLUMNS = ("arch", "proxy", "value")
RESULT_COLUMNS = ["proxy", "dataset", "epochs", "split", "metric", "value", "ci_low", "ci_high",
                  "n", "degenerate", "scores_on", "sample"]


def read_scores(paths: Sequence[str | os.PathLike]):
    """Concatenate score tables; the same (arch, proxy) in two files must agree bitwise."""
    import pandas as pd

    if not paths:
        raise UserError("no score tables given; write one with `zcnas score --out FILE`")
    frames = []
    for path in paths:
        p = Path(path)
        if not p.is_file():
            raise DataNotFoundError(f"score table not found: {p}")
        try:
            df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        except Exception as err:  # noqa: BLE001 - any reader failure means a bad file
            raise CorruptDataError(f"cannot read score table {p}: "
                                   f"{' '.join(str(err).split())[:200]}") from None
        missing = [c for c in SCORE_COLUMNS if c not in df.columns]
        if missing:
            raise CorruptDataError(f"{p} is not a `zcnas score` table: missing column(s) "
                                   f"{', '.join(missing)}")
        df = df.copy()
        df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
        df["_file"] = str(p)
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    df["arch"] = df["arch"].astype(str)
    df["proxy"] = df["proxy"].astype(str)
    # ensemble rows of a score table are relative to the population they were scored with;
    # correlate recomputes ensembles over its own sample instead
    if "origin" in df.columns:
        df = df[df["origin"] != "ensemble"]
    dup = df.duplicated(["arch", "proxy"], keep=False)
    if dup.any():
        d = df[dup]
        bits = d["value"].to_numpy().view(np.int64)
        d = d.assign(_bits=np.where(np.isnan(d["value"].to_numpy()), -1, bits))
        clash = d.groupby(["arch", "proxy"])["_bits"].nunique()
        clash = clash[clash > 1]
        if len(clash):
            arch, proxy = clash.index[0]
            files = sorted(set(d[(d.arch == arch) & (d.proxy == proxy)]["_file"]))
            raise UserError(f"conflicting {proxy} scores for {arch} in {', '.join(files)} "
                            "(different seed, dataset or proxy version?); pass one of them")
        df = df.drop_duplicates(["arch", "proxy"], keep="first")
    return df.drop(columns=["_file"])


def _orientation(spec: str, scores=None) -> bool:
    """Whether higher ``spec`` scores are better: as the score table records it, else as the
    installed plugin declares."""
    if scores is not None and "higher_is_better" in scores.columns:
        recorded = scores.loc[scores["proxy"] == spec, "higher_is_better"].dropna().unique()
        if len(recorded) == 1:
            return bool(recorded[0])
    from zcnas.registry import create_scorer

    try:
        return bool(create_scorer(spec).higher_is_better)
    except UserError as err:
        raise UserError(f"cannot tell whether higher {spec!r} scores are better ({err}); "
                        "install its plugin or leave it out with --proxies") from None


@dataclass(frozen=True)
class Selection:
    """The proxies to evaluate: plain ones read from the tables, ensembles built from them."""

    plain: list[str]
    ensembles: list[Any]


def select_proxies(text: str, available: Iterable[str]) -> Selection:
    """``all`` (every proxy in the tables), or a comma list that may include ``all`` and
    ``ensemble:...`` specs; each plain name must be in the tables."""
    from zcnas.ensemble import Ensemble
    from zcnas.proxy import split_specs
    from zcnas.registry import create_scorer

    available = list(dict.fromkeys(available))
    plain: list[str] = []
    ensembles = []
    for spec in split_specs(text):
        if spec == "all":
            plain += [a for a in available if a not in plain]
            continue
        if spec in available:
            if spec not in plain:
                plain.append(spec)
            continue
        e = create_scorer(spec)  # one line for an unknown name or prefix
        if isinstance(e, Ensemble):
            missing = [c.spec() for c in e.components if c.spec() not in available]
            if missing:
                raise UserError(f"{e.spec()} needs {', '.join(missing)}, which the score "
                                "tables do not have; score them first with `zcnas score`")
            ensembles.append(e)
            continue
        raise UserError(f"no {spec!r} scores in the tables; they have "
                        f"{', '.join(available) or 'none'}")
    if not plain and not ensembles:
        raise UserError("no proxies selected")
    return Selection(plain, ensembles)


def _sample(indices: np.ndarray, archs: str | int, seed: int) -> np.ndarray:
    if str(archs) == "all":
        return indices
    n = int(archs)
    if not 1 <= n <= len(indices):
        raise UserError(f"--archs {n}: the tables hold {len(indices):,} architectures")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(indices, size=n, replace=False))


@dataclass(frozen=True)
class Prepared:
    """Scores ready to correlate: per proxy (or ensemble) its values by benchmark index."""

    scored: list[tuple[str, Any, bool]]  # (name, pandas Series index -> value, higher better)
    population: np.ndarray  # the sampled benchmark indices
    sample: str  # "all" or "N (seed S)"
    scores_on: str  # the dataset(s) whose images the scores were computed on


def prepare(scores, bench, *, proxies: str = "all", archs: str | int = "all",
            seed: int = 0) -> Prepared:
    """Join ``scores`` (from :func:`read_scores`) to ``bench``'s indices, sample, and build the
    ensembles over the sample. Each proxy keeps the sampled architectures it has scores for;
    an ensemble those that have every component."""
    import pandas as pd

    order = bench.order
    try:
        where = {a: order.index(a) for a in scores["arch"].unique()}
    except UserError as err:
        raise UserError(f"a scored architecture is not in {bench.source}: {err}") from None
    index = scores["arch"].map(where).to_numpy(dtype=np.int64)
    scores = scores.assign(_index=index)
    sel = select_proxies(proxies, scores["proxy"].unique())
    population = _sample(np.unique(index), archs, seed)
    scores = scores[np.isin(index, population)]
    sample = "all" if str(archs) == "all" else f"{int(archs)} (seed {seed})"
    on = (", ".join(sorted(scores["dataset"].astype(str).unique()))
          if "dataset" in scores.columns else "unknown")
    names = sel.plain + [c.spec() for e in sel.ensembles for c in e.components]
    series = {p: scores[scores.proxy == p].set_index("_index")["value"].sort_index()
              for p in dict.fromkeys(names)}
    scored: list[tuple[str, Any, bool]] = [(p, series[p], _orientation(p, scores))
                                           for p in sel.plain]
    for e in sel.ensembles:
        comps = [c.spec() for c in e.components]
        common = series[comps[0]].index
        for c in comps[1:]:
            common = common.intersection(series[c].index)
        common = common.sort_values()
        agg = e.aggregate({c: series[c].loc[common].to_numpy() for c in comps})
        scored.append((e.spec(), pd.Series(agg, index=common), True))
    for name, values, _ in scored:
        if len(values) < 2:
            raise UserError(f"{name}: fewer than two scored architectures in the sample")
    return Prepared(scored, population, sample, on)


def check_bootstrap(n) -> int:
    """``n`` bootstrap resamples as an int in 0..:data:`MAX_BOOTSTRAP`; anything else is a
    one-line :class:`UserError` naming the valid range (before any work is done)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise UserError(f"--bootstrap must be a whole number of resamples, got {n!r}")
    n = int(n)
    if n < 0:
        raise UserError(f"--bootstrap must be >= 0 (0: no intervals), got {n:,}")
    if n > MAX_BOOTSTRAP:
        raise UserError(
            f"--bootstrap {n:,} is more than the maximum of {MAX_BOOTSTRAP:,} resamples (the "
            "95% interval is stable long before; 1,000 to 10,000 are plenty); "
            f"pass --bootstrap {MAX_BOOTSTRAP} or less"
        )
    return n


def correlate(
    prepared: Prepared,
    bench,
    *,
    datasets: Sequence[str] | None = None,
    epochs: Sequence[int] = (200, 12),
    split: str = "test",
    seed: int = 0,
    bootstrap: int = 200,
    progress: bool | None = None,
):
    """The tidy correlation table (see :data:`RESULT_COLUMNS`) of :func:`prepare`'s output
    against ``bench`` (a :class:`~zcnas.lookup.Benchmark`). ``bootstrap`` resamples per cell,
    at most :data:`~zcnas.analysis.metrics.MAX_BOOTSTRAP` (:func:`check_bootstrap`)."""
    import pandas as pd
    from tqdm.auto import tqdm

    bootstrap = check_bootstrap(bootstrap)

    datasets = list(datasets) if datasets else list(bench.datasets)
    targets = [(d, ep) for d in datasets for ep in epochs]
    pop = prepared.population
    acc = {(d, ep): pd.Series(bench.accuracies(pop, d, epochs=ep, split=split), index=pop)
           for d, ep in targets}
    rows = []
    bar = tqdm(total=len(prepared.scored) * len(targets), desc="correlating", unit="cell",
               disable=progress is False, mininterval=0.5)
    try:
        for k, (name, values, higher) in enumerate(prepared.scored):
            v = values.to_numpy()
            degenerate = int((~np.isfinite(v)).sum())
            for j, (d, ep) in enumerate(targets):
                a = acc[(d, ep)].loc[values.index].to_numpy()
                rng = np.random.default_rng([seed, k, j])
                for est in evaluate(v, a, higher_is_better=higher, bootstrap=bootstrap,
                                    rng=rng):
                    rows.append((name, d, ep, split, est.metric, est.value, est.ci_low,
                                 est.ci_high, len(v), degenerate, prepared.scores_on,
                                 prepared.sample))
                bar.update(1)
    finally:
        bar.close()
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def wide(table, metric: str = "spearman", epochs: int = 200):
    """proxies x datasets of one metric (rows sorted by the first dataset, best first)."""
    t = table[(table.metric == metric) & (table.epochs == epochs)]
    out = t.pivot_table(index="proxy", columns="dataset", values="value", sort=False)
    cols = [c for c in ("cifar10", "cifar100", "ImageNet16-120") if c in out.columns]
    out = out[cols + [c for c in out.columns if c not in cols]]
    return out.sort_values(out.columns[0], ascending=False)


def _fmt(v: float, lo: float, hi: float, ci: bool) -> str:
    if not math.isfinite(v):
        return "n/a"
    if ci and math.isfinite(lo) and math.isfinite(hi):
        return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
    return f"{v:.3f}"


def _significant(proxy: str, dataset: str, metric: str, est, g: float) -> bool:
    """A gap worth marking: over 0.05, and the bootstrap interval (the value when there is
    none) misses the published range."""
    from zcnas.analysis import published as pub

    if abs(g) <= 0.05:
        return False
    lo, hi = est.ci_low, est.ci_high
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return True
    return pub.gap(proxy, dataset, metric, lo) > 0 or pub.gap(proxy, dataset, metric, hi) < 0


#: Fewer architectures than this and a rank correlation is noisy: ``zcnas correlate`` warns.
SMALL_SAMPLE = 100


def to_markdown(table, *, published: bool = True, title: str | None = None,
                notes: Sequence[str] = ()) -> str:
    """Human tables: a rho summary, then per (epochs, dataset) every metric with its CI and,
    for rho and tau, the published values with sources."""
    from zcnas._text import markdown_table
    from zcnas.analysis import published as pub

    lines = [f"# {title}" if title else "# Ranking correlations", ""]
    for n in notes:
        lines += [n, ""]
    n_rows = table.groupby("proxy")["n"].max()
    deg = table.groupby("proxy")["degenerate"].max()
    for ep in sorted(table.epochs.unique(), reverse=True):
        sub = table[table.epochs == ep]
        w = wide(sub, "spearman", ep)
        lines += [f"## Spearman rho vs {ep}-epoch {sub.split.iloc[0]} accuracy, all datasets", ""]
        lines += [markdown_table([[p, *[f"{x:.3f}" for x in w.loc[p]]] for p in w.index],
                                 ["proxy", *w.columns]), ""]
        for d in w.columns:
            lines += [f"### {d}, {ep} epochs", ""]
            head = ["proxy", "n", "degenerate", *[m.name for m in METRICS]]
            if published and ep == 200:
                head += ["published rho", "gap rho", "published tau", "gap tau"]
            body = []
            for p in w.sort_values(d, ascending=False).index:
                cell = sub[(sub.proxy == p) & (sub.dataset == d)].set_index("metric")
                r = [p, f"{n_rows[p]:,}", str(deg[p])]
                for m in METRICS:
                    x = cell.loc[m.name]
                    r.append(_fmt(x.value, x.ci_low, x.ci_high,
                                  m.name in ("spearman", "kendall")))
                if published and ep == 200:
                    for metric in ("spearman", "kendall"):
                        x = cell.loc[metric]
                        g = pub.gap(p, d, metric, x.value)
                        r += [pub.format_range(p, d, metric),
                              "" if g is None else f"{g:+.3f}"
                              + (" **" if _significant(p, d, metric, x, g) else "")]
                body.append(r)
            lines += [markdown_table(body, head), ""]
    if published:
        lines += ["Gap: our value minus the nearest end of the published range (0 inside it); "
                  "** marks a gap larger than 0.05 whose 95% bootstrap interval misses the "
                  "published range.", "", "Published sources:", ""]
        lines += [f"- `{k}`: {v}" for k, v in pub.SOURCES.items()]
        lines += ["", "Best published training-free ensembles (CIFAR-10, 200 epochs): "
                  + "; ".join(f"{n} rho {r:.3f} / tau {t:.3f} [{s}]"
                              for n, _, r, t, s in pub.BEST_TRAINING_FREE), ""]
    return "\n".join(lines)


__all__ = ["RESULT_COLUMNS", "Prepared", "Selection", "check_bootstrap", "correlate", "prepare",
           "read_scores", "select_proxies", "to_markdown", "wide"]
