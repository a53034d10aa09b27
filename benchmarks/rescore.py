"""Bring a score table up to date with the current proxies, keeping every other row bit for bit.

Two kinds of rows go stale:

- **outdated versions**: a proxy whose version was bumped since the table was written (e.g.
  grad_norm, snip and fisher 1 -> 2, contiguous tensors). Every row of that proxy is re-scored
  with the current version (a class-wide proxy on the class's representative, see below);
- **copied per-arch rows**: until zcnas 0.1 (commit "Proxies whose value reads the cell's dead
  edges ... are scored for every architecture") every proxy was scored once per isomorphism
  class and the other members got a copy (origin ``isomorph``). For the proxies now marked
  ``per_arch`` (params, flops, az_complexity, meco, zen, vkdnw, swap, te_nas_lr) those copies
  are wrong: the value reads the cell's dead edges. Those rows are re-scored (origin
  ``computed``);
- **class-wide rows computed on another member**: until the commit "A class's shared scores
  are computed on its representative", a class-wide proxy was computed on the first member of
  the class that a run met, so a table depended on what had been scored before it. Now it is
  computed on the class's representative (``SearchSpace.representative``: for NATS-tss its
  first member in NATS-Bench's index order, scored even when it is not in the table). The
  rows of a class whose ``computed`` row is another member are re-scored; so are the rows
  read from a store (origin ``store``) when that store is given (``--store``): the engine
  reads a record only when it was computed on the representative, and recomputes the rest.

::

    python -m benchmarks.rescore results/scores/tss-cifar10-all-1000.parquet \\
        --data ../shared/data --workers 2 --store ~/.cache/zcnas/scores.sqlite

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
    spaces = table.get("space")
    space = spaces.iloc[0] if spaces is not None else "nats-tss"
    member = other_member_rows(table, space, [p for p in scorers if p not in per_arch],
                               check_store=store is not None)
    stale = outdated | copied | member
    done = {"proxies": sorted(table.loc[stale, "proxy"].unique()), "rows": int(stale.sum()),
            "outdated": int(outdated.sum()), "copied": int((copied & ~outdated).sum()),
            "member": int((member & ~outdated & ~copied).sum()), "changed": 0,
            "seconds": 0.0}
    if not stale.any():
        return table, done
    dataset, seed = table["dataset"].iloc[0], int(table["seed"].iloc[0])
    out = table.copy()
    start = time.perf_counter()
    for kind in (outdated, copied & ~outdated, member & ~outdated & ~copied):
        # one engine call per set of proxies that are stale on the same architectures (they
        # share passes), so no proxy is scored on an architecture where it is not stale
        by_archs: dict[tuple[str, ...], list[str]] = {}
        for proxy, archs in table[kind].groupby("proxy", sort=True)["arch"]:
            by_archs.setdefault(tuple(dict.fromkeys(archs)), []).append(proxy)
        for archs, proxies in by_archs.items():
            _rescore_rows(out, kind & table["proxy"].isin(proxies), archs,
                          [scorers[p] for p in proxies], space=space, dataset=dataset,
                          seed=seed, root=root, workers=workers, store=store)
    done["seconds"] = time.perf_counter() - start
    before = table["value"].to_numpy(dtype=float).view("u8")
    done["changed"] = int((out["value"].to_numpy(dtype=float).view("u8") != before).sum())
    return out, done


def _rescore_rows(out: pd.DataFrame, rows_of: pd.Series, archs, proxies, *, space, dataset,
                  seed, root, workers, store) -> None:
    """Score ``archs`` with ``proxies`` and write the results into ``out``'s ``rows_of``."""
    rows = score_archs(make_items(list(archs), space), proxies, space=space, dataset=dataset,
                       seed=seed, root=root, workers=workers, store=store, progress=None)
    new = rows_to_frame(rows).set_index(["arch", "proxy"])
    idx = out.index[rows_of]
    got = new.reindex(pd.MultiIndex.from_arrays([out.loc[idx, "arch"], out.loc[idx, "proxy"]]))
    for col in ("value", "seconds", "version", "origin"):
        out.loc[idx, col] = got[col].to_numpy()


def other_member_rows(table: pd.DataFrame, space: str, class_wide: list[str], *,
                      check_store: bool) -> pd.Series:
    """The rows of the ``class_wide`` proxies whose class's score was not computed on the
    class's representative: a ``computed`` row of another member in the class; with
    ``check_store``, also every row read from a store (the engine then tells)."""
    from zcnas.spaces import get_space

    sp = get_space(space)
    rows = table["proxy"].isin(class_wide)
    computed = table[rows & (table["origin"] == "computed")]
    reps = {c: sp.representative(a) for a, c in zip(computed["arch"], computed["canonical"],
                                                      strict=True)}
    off = {(p, c) for a, c, p in zip(computed["arch"], computed["canonical"], computed["proxy"],
                                     strict=True)
           if reps[c] is not None and a != reps[c]}
    stale = rows & pd.Series([(p, c) in off for p, c in zip(table["proxy"], table["canonical"],
                                                            strict=True)], index=table.index)
    if check_store:
        stale |= rows & (table["origin"] == "store")
    return stale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("table", type=Path, help="a score table (.parquet) written by zcnas score")
    ap.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--store", type=Path, default=None,
                    help="the score store the table's 'store' rows were read from: they are "
                         "checked (and re-scored when computed on another member of their "
                         "class); new scores are written to it")
    args = ap.parse_args()
    table = pd.read_parquet(args.table)
    if args.store is not None:
        from zcnas.runtime import ScoreStore

        with ScoreStore(args.store) as store:
            out, done = rescore(table, args.data, args.workers, store=store)
    else:
        out, done = rescore(table, args.data, args.workers)
    print(f"{args.table}: {done['rows']} rows of {', '.join(done['proxies']) or '-'} "
          f"re-scored ({done['outdated']} of an older proxy version, {done['copied']} copied "
          f"per-arch rows, {done['member']} class-wide rows not shown computed on the "
          f"class's representative) in {done['seconds']:.1f} s; {done['changed']} values "
          "changed")
    if done["changed"] or done["rows"]:
        out.to_parquet(args.table, index=False)


if __name__ == "__main__":
    main()
