"""Bring a score table up to date with the current proxies, keeping every other row bit for bit.

Two kinds of rows go stale:

- **outdated versions**: a proxy whose version was bumped since the table was written (e.g.
  grad_norm, snip and fisher 1 -> 2, contiguous tensors). Every row of that proxy is re-scored
  with the current version, the architectures in the table's order (so a class-wide proxy is
  computed on the same member as before and copied to the other members of its class);
- **copied per-arch rows**: until zcnas 0.1 (commit "Proxies whose value reads the cell's dead
  edges ... are scored for every architecture") every proxy was scored once per isomorphism
  class and the other members got a copy (origin ``isomorph``). For the proxies now marked
  ``per_arch`` (params, flops, az_complexity, meco, zen, vkdnw, swap, te_nas_lr) those copies
  are wrong: the value reads the cell's dead edges. Those rows are re-scored (origin
  ``computed``).

::

    python -m benchmarks.rescore results/scores/tss-cifar10-all-1000.parquet \\
        --data ../shared/data --workers 2

The result equals what ``zcnas score`` writes for the same architectures now.
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
    """``table`` with its stale rows re-scored (every row of an outdated proxy version, the
    copied rows of per-arch proxies); and what was done. A table with ensemble rows is
    refused: an ensemble of a re-scored proxy would be stale."""
    if (table["origin"] == "ensemble").any():
        raise SystemExit("error: the table has ensemble rows, which would go stale; score the "
                         "components alone (ensembles are aggregated by zcnas correlate)")
    scorers = {p: create_scorer(p) for p in table["proxy"].unique()}
    current = table["proxy"].map({p: str(s.info.version) for p, s in scorers.items()})
    outdated = table["version"].astype(str) != current
    per_arch = sorted(p for p, s in scorers.items() if s.info.per_arch)
    copied = table["proxy"].isin(per_arch) & (table["origin"] == "isomorph")
    stale = outdated | copied
    done = {"proxies": sorted(table.loc[stale, "proxy"].unique()), "rows": int(stale.sum()),
            "outdated": int(outdated.sum()), "copied": int((copied & ~outdated).sum()),
            "seconds": 0.0}
    if not stale.any():
        return table, done
    spaces = table.get("space")
    space = spaces.iloc[0] if spaces is not None else "nats-tss"
    dataset, seed = table["dataset"].iloc[0], int(table["seed"].iloc[0])
    out = table.copy()
    start = time.perf_counter()
    for rows_of, proxies in ((outdated, sorted(table.loc[outdated, "proxy"].unique())),
                             (copied & ~outdated, sorted(table.loc[copied & ~outdated,
                                                                  "proxy"].unique()))):
        if not proxies:
            continue
        # the table's order: a class-wide proxy is computed on the member it was before
        archs = list(dict.fromkeys(table.loc[rows_of, "arch"]))
        rows = score_archs(make_items(archs, space), [scorers[p] for p in proxies],
                           space=space, dataset=dataset, seed=seed, root=root,
                           workers=workers, store=store, progress=None)
        new = rows_to_frame(rows).set_index(["arch", "proxy"])
        idx = out.index[rows_of]
        for col in ("value", "seconds", "version", "origin"):
            out.loc[idx, col] = [new.loc[(a, p), col] for a, p in
                                 zip(out.loc[idx, "arch"], out.loc[idx, "proxy"], strict=True)]
    done["seconds"] = time.perf_counter() - start
    return out, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("table", type=Path, help="a score table (.parquet) written by zcnas score")
    ap.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    table = pd.read_parquet(args.table)
    out, done = rescore(table, args.data, args.workers)
    print(f"{args.table}: {done['rows']} rows of {', '.join(done['proxies']) or '-'} "
          f"re-scored ({done['outdated']} of an older proxy version, {done['copied']} copied "
          f"per-arch rows) in {done['seconds']:.1f} s")
    if done["rows"]:
        out.to_parquet(args.table, index=False)


if __name__ == "__main__":
    main()
