"""VKDNW (CVPR 2025) on the 1,000-cell sample against the paper's NB201 numbers.

    zcnas score --space nats-tss --proxies vkdnw --archs 1000 --data ../shared/data \\
        --out results/scores/tss-cifar10-vkdnw-1000
    python -m benchmarks.vkdnw_reproduction results/scores/tss-cifar10-all-1000.parquet \\
        results/scores/tss-cifar10-vkdnw-1000.parquet --data ../shared/data \\
        --out results/correlations/vkdnw-1000.md

Spearman rho and Kendall tau-b (scipy) against the 200-epoch test accuracy of CIFAR-10,
CIFAR-100 and ImageNet16-120 (the compact table: CIFAR-10 ``ori-test``, the others ``x-test``,
as the reference's ``get_results_from_api`` reads them), for

- ``aleph``: the number of parameter tensors of the naive network (the paper's "number of
  trainable layers"), the integer part of the ``vkdnw`` score;
- ``VKDNW``: the Fisher spectrum entropy alone (``vkdnw(aleph=false)``, recovered from the
  fractional part);
- ``VKDNW_single``: ``vkdnw`` itself (aleph, ties broken by the entropy);
- ``VKDNW_agg``: ``ensemble:vkdnw``, the log-rank sum of VKDNW_single, jacov, expressivity,
  trainability and FLOPs,

on all 1,000 cells and on the cells the paper evaluates: its table is computed on the 9,445
NB201 cells without unreachable operations (GRAF's ``nb201_valid_nets.csv``), which we count
as the cells whose every non-``none`` edge lies on a path from the input to the output.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
#: Tybl & Neumann, CVPR 2025, Table 1 (NB201; Kendall tau, Spearman rho), mean of 5 runs
PUBLISHED = {
    "aleph": {"cifar10": (0.626, 0.767), "cifar100": (0.646, 0.787),
              "ImageNet16-120": (0.623, 0.764)},
    "VKDNW_single": {"cifar10": (0.618, 0.815), "cifar100": (0.634, 0.829),
                     "ImageNet16-120": (0.622, 0.814)},
    "VKDNW_agg": {"cifar10": (0.750, 0.919), "cifar100": (0.753, 0.919),
                  "ImageNet16-120": (0.743, 0.906)},
}


def without_unreachable_ops(arch) -> bool:
    """Every non-``none`` edge is live (:func:`zcnas.spaces.nats_tss.live_edges`): its source is
    reached from the input and its target reaches the output."""
    from zcnas.spaces import nats_tss

    cell = nats_tss.as_cell(arch)
    return all(live or op == "none"
               for op, live in zip(cell.ops, nats_tss.live_edges(cell), strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("tables", nargs="+")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import pandas as pd
    from scipy.stats import kendalltau, spearmanr

    from zcnas.ensemble import parse_ensemble
    from zcnas.lookup import open_benchmark
    from zcnas.spaces import nats_tss

    scores = pd.concat([pd.read_parquet(t) for t in args.tables])
    w = scores.pivot_table(index="arch", columns="proxy", values="value", aggfunc="first")
    w = w.dropna(subset=["vkdnw"])
    aleph = np.floor(w["vkdnw"].to_numpy())
    entropy = (w["vkdnw"].to_numpy() - aleph) * (math.log(9) + 1e-6)

    def preset(name: str) -> np.ndarray:  # the engine's own aggregation of a preset
        ens = parse_ensemble(name)
        return ens.aggregate({c.spec(): w[c.spec()].to_numpy() for c in ens.components})

    columns = {"aleph": aleph, "VKDNW": entropy, "VKDNW_single": w["vkdnw"].to_numpy(),
               "VKDNW_agg": preset("vkdnw"), "ensemble:az_nas": preset("az_nas")}
    bench = open_benchmark("nats-tss", root=args.data, kind="table")
    index = [bench.index(a) for a in w.index]
    valid = np.array([without_unreachable_ops(a) for a in w.index])
    n_valid_space = sum(without_unreachable_ops(c) for c in nats_tss.all_cells())

    lines = ["# VKDNW on the 1,000-cell sample against the paper", "",
             "Command: `python -m benchmarks.vkdnw_reproduction "
             + " ".join(args.tables) + " --data DATA`. Scores on CIFAR-10 (Gaussian inputs for "
             "VKDNW, CIFAR-10 images for jacov), ground truth: 200-epoch test accuracy. Kendall "
             "tau-b / Spearman rho; published: Tybl & Neumann, CVPR 2025, Table 1 (mean of 5 "
             "seeds, on the NB201 cells without unreachable operations).", "",
             f"Cells: {len(w)} of the sample; {int(valid.sum())} of them without unreachable "
             f"operations ({n_valid_space:,} such cells in the space; the paper's set has "
             "9,445).", ""]
    for label, mask in (("cells without unreachable operations (the paper's set)", valid),
                        ("all cells of the sample", np.ones(len(w), dtype=bool))):
        lines += [f"## {label}: n = {int(mask.sum())}", "",
                  "| proxy | " + " | ".join(f"{d} tau / rho" for d in DATASETS)
                  + " | published C10 tau / rho | gap C10 rho |",
                  "|---|" + "---|" * (len(DATASETS) + 2)]
        for name, values in columns.items():
            cells, gap = [], ""
            for d in DATASETS:
                acc = bench.accuracies(index, d, epochs=200)
                tau = kendalltau(values[mask], acc[mask]).statistic
                rho = spearmanr(values[mask], acc[mask]).statistic
                cells.append(f"{tau:.3f} / {rho:.3f}")
                if d == "cifar10" and name in PUBLISHED:
                    gap = f"{rho - PUBLISHED[name][d][1]:+.3f}"
            pub = PUBLISHED.get(name, {}).get("cifar10")
            lines.append(f"| {name} | " + " | ".join(cells)
                         + f" | {pub[0]:.3f} / {pub[1]:.3f} |" if pub else
                         f"| {name} | " + " | ".join(cells) + " | - |")
            lines[-1] += f" {gap or '-'} |"
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
