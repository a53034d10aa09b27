"""Bring a score table written before per-arch scoring up to date.

Until zcnas 0.1 (commit "Proxies whose value reads the cell's dead edges ... are scored for every
architecture") every proxy was scored once per isomorphism class and the other members got a
copy (origin ``isomorph``). For the proxies now marked ``per_arch`` (params, flops,
az_complexity, meco, zen, vkdnw, swap, te_nas_lr) those copies are wrong: the value reads the
cell's dead edges. This re-scores exactly those rows with the current engine and writes the
table back (origin ``computed``); every other row is kept bit for bit::

    python -m benchmarks.rescore_per_arch results/scores/tss-cifar10-all-1000.parquet \\
        --data ../shared/data --workers 2

The result equals what ``zcnas score`` writes for the same architectures now (a
representative's per-arch score was already its own).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd

from zcnas.registry import create_scorer
from zcnas.scoring.engine import make_items, rows_to_frame, score_archs


def rescore(table: pd.DataFrame, root, workers: int, store=None) -> tuple[pd.DataFrame, dict]:
    """``table`` with the copied rows of per-arch proxies re-scored; and what was done.
    A table with ensemble rows is refused: an ensemble of a re-scored proxy would be stale."""
    if (table["origin"] == "ensemble").any():
        raise SystemExit("error: the table has ensemble rows, which would go stale; score the "
                         "components alone (ensembles are aggregated by zcnas correlate)")
    per_arch = sorted(p for p in table["proxy"].unique() if create_scorer(p).info.per_arch)
    stale = table["proxy"].isin(per_arch) & (table["origin"] == "isomorph")
    done = {"proxies": per_arch, "rows": int(stale.sum()), "seconds": 0.0}
    if not stale.any():
        return table, done
    spaces = table.get("space")
    space = spaces.iloc[0] if spaces is not None else "nats-tss"
    dataset, seed = table["dataset"].iloc[0], int(table["seed"].iloc[0])
    archs = list(dict.fromkeys(table.loc[stale, "arch"]))
    proxies = sorted(table.loc[stale, "proxy"].unique())
    start = time.perf_counter()
    rows = score_archs(make_items(archs, space), [create_scorer(p) for p in proxies],
                       space=space, dataset=dataset, seed=seed, root=root, workers=workers,
                       store=store, progress=None)
    done["seconds"] = time.perf_counter() - start
    new = rows_to_frame(rows).set_index(["arch", "proxy"])
    out = table.copy()
    idx = out.index[stale]
    for col in ("value", "seconds", "version", "origin"):
        out.loc[idx, col] = [new.loc[(a, p), col] for a, p in
                             zip(out.loc[idx, "arch"], out.loc[idx, "proxy"], strict=True)]
    out.loc[idx, "origin"] = "computed"
    return out, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("table", type=Path, help="a score table (.parquet) written by zcnas score")
    ap.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    table = pd.read_parquet(args.table)
    out, done = rescore(table, args.data, args.workers)
    print(f"{args.table}: {done['rows']} copied rows of {', '.join(done['proxies']) or '-'} "
          f"re-scored in {done['seconds']:.1f} s")
    if done["rows"]:
        out.to_parquet(args.table, index=False)


if __name__ == "__main__":
    main()
