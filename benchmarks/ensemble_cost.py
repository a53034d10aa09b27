"""Is any training-free ensemble cheaper than ``ensemble:zcnas`` as good on the held-out half?

Run (the file in results/correlations/ensemble-cost.md)::

    ZCNAS_DATA=../shared/data python -m benchmarks.ensemble_cost \
        results/scores/tss-cifar10-all-1000.parquet results/scores/tss-cifar10-vkdnw-1000.parquet \
        --cells 5 --out results/correlations/ensemble-cost.md

1. **Cost** of every proxy on this machine, one thread: each proxy is scored alone on
   ``--cells`` seeded distinct cells (a fresh context per cell), and the shared passes it reads
   are timed apart, so a set of proxies is charged each pass once plus each proxy's own work
   (the AZ-NAS components share one memoised pass and count once). The ensemble's cost is then
   measured directly (all components in one context on the same cells) for the rows reported.
2. **Quality**: the same 500 dev / 500 held-out split as ``benchmarks.ensemble_selection``
   (seed 0); every ``az`` rank aggregation of 2 to ``--max-components`` distinct score columns
   whose estimated cost is below ``ensemble:zcnas``'s is evaluated on the held-out half.
   Picking the best *on the held-out half itself* is an optimistic bound (it selects on the
   test set): if even that bound does not reach ``ensemble:zcnas``'s held-out rho and tau, no
   cheaper ensemble of these proxies is as good.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

import torch
from scipy.stats import kendalltau

from benchmarks._machine import as_scoring_worker, cpu_name
from benchmarks.ensemble_selection import _ens, scored_halves
from benchmarks.scoring_floor import score_all
from benchmarks.scoring_speed import sample_archs
from zcnas._text import markdown_table
from zcnas.analysis.metrics import spearman
from zcnas.lookup import open_benchmark
from zcnas.registry import create_scorer, create_scorers
from zcnas.scoring import InputBank, ScoringContext

AZ_GROUP = ("az_expressivity", "az_progressivity", "az_trainability")
BANDS = (1.0, 1.5, 2.0, 3.0, 4.0)


def proxy_costs(names, cells, bank):
    """Per proxy: (own seconds per cell, {pass ident: seconds per cell})."""
    out = {}
    for name in names:
        (p,) = create_scorers(name)
        own, passes = 0.0, {}
        for arch in cells:
            ctx = ScoringContext(arch, inputs=bank, requests=p.requests())
            start = time.perf_counter()
            p.score(ctx)
            total = time.perf_counter() - start
            shared = sum(ctx.pass_seconds.values())
            own += total - shared
            for ident, sec in ctx.pass_seconds.items():
                passes[ident] = passes.get(ident, 0.0) + sec
        n = len(cells)
        out[name] = (own / n, {k: v / n for k, v in passes.items()})
    return out


def set_cost(names, costs) -> float:
    """Estimated seconds per cell of scoring ``names`` together: each shared pass once, the
    AZ-NAS group's one memoised pass once (its dearest member's measurement), every other
    proxy's own work."""
    passes: dict = {}
    total = 0.0
    az = [costs[n][0] for n in names if n in AZ_GROUP]
    for name in names:
        own, ps = costs[name]
        if name not in AZ_GROUP:
            total += own
        for ident, sec in ps.items():
            passes[ident] = max(passes.get(ident, 0.0), sec)
    return total + (max(az) if az else 0.0) + sum(passes.values())


def measured_cost(names, cells, bank) -> float:
    start = time.perf_counter()
    score_all(cells, create_scorers(",".join(names)), bank)
    return (time.perf_counter() - start) / len(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scores", nargs="+")
    ap.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    ap.add_argument("--cells", type=int, default=5)
    ap.add_argument("--max-components", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()

    bench = open_benchmark("nats-tss", root=args.data)
    df, higher, acc, dev_pos, test_pos = scored_halves(args.scores, bench, args.seed,
                                                       distinct=True)
    test, test_acc = df.iloc[test_pos], acc[test_pos]
    dev, dev_acc = df.iloc[dev_pos], acc[dev_pos]

    cells = sample_archs(args.cells, seed=1)
    bank = InputBank("cifar10", seed=0, root=args.data)
    bank.batches("real", 256, 1)
    as_scoring_worker()
    costs = proxy_costs(list(df.columns), cells, bank)
    zcnas = [c.spec() for c in create_scorer("ensemble:zcnas").components]
    z_est = set_cost(zcnas, costs)
    z_test = _ens("az", test, zcnas, higher)
    z_rho, z_tau = spearman(z_test, test_acc), kendalltau(z_test, test_acc)[0]

    cands = [c for c in df.columns if set_cost([c], costs) < z_est]
    best: dict[float, tuple] = {}
    as_good = []
    for k in range(2, args.max_components + 1):
        for combo in itertools.combinations(cands, k):
            if set(combo) == set(zcnas):
                continue
            cost = set_cost(combo, costs)
            if cost >= z_est:
                continue
            rho = spearman(_ens("az", test, combo, higher), test_acc)
            for band in BANDS:
                if cost <= band and (band not in best or rho > best[band][0]):
                    best[band] = (rho, combo, cost)
            if rho >= z_rho:
                as_good.append((cost, rho, combo))
    rows = []
    for band in BANDS:
        if band not in best:
            rows.append((f"<= {band:.1f}", "none", "", "", "", ""))
            continue
        rho, combo, cost = best[band]
        e = _ens("az", test, combo, higher)
        dev_rho = spearman(_ens("az", dev, combo, higher), dev_acc)
        rows.append((f"<= {band:.1f}", ", ".join(combo), f"{cost:.2f}",
                     f"{measured_cost(combo, cells, bank):.2f}", f"{rho:.3f} / "
                     f"{kendalltau(e, test_acc)[0]:.3f}", f"{dev_rho:.3f}"))
    z_meas = measured_cost(zcnas, cells, bank)
    rows.append(("ensemble:zcnas", ", ".join(zcnas), f"{z_est:.2f}", f"{z_meas:.2f}",
                 f"{z_rho:.3f} / {z_tau:.3f}",
                 f"{spearman(_ens('az', dev, zcnas, higher), dev_acc):.3f}"))
    as_good_tau = []
    for cost, _rho, combo in sorted(as_good):
        tau = kendalltau(_ens("az", test, combo, higher), test_acc)[0]
        if tau >= z_tau:
            as_good_tau.append((cost, combo))
    cost_rows = sorted(((n, costs[n][0] + sum(costs[n][1].values())) for n in df.columns),
                       key=lambda kv: kv[1])
    lines = [
        "# Cheaper than ensemble:zcnas and as good on the held-out half?",
        "",
        f"Machine: {cpu_name()}, one torch thread; costs over {args.cells} seeded distinct cells "
        f"(seed 1). Scores: {', '.join(args.scores)}; 500 dev / 500 held-out (split seed "
        f"{args.seed}, as `benchmarks.ensemble_selection`); target: CIFAR-10 200-epoch test "
        f"accuracy. {len(cands)} score columns cost less than ensemble:zcnas alone; every `az` "
        f"aggregation of 2-{args.max_components} of them costing less than it was evaluated.",
        "",
        "## Best held-out rho per cost band (selected on the held-out half: an optimistic bound)",
        "",
        markdown_table(rows, ["s/cell band", "components", "estimated s/cell",
                              "measured s/cell", "held-out rho / tau", "dev rho"]),
        "",
        f"Cheaper ensembles with held-out rho >= {z_rho:.3f}: {len(as_good)}; of them with "
        f"held-out tau >= {z_tau:.3f} as well: {len(as_good_tau)}"
        + (f" (cheapest: {', '.join(as_good_tau[0][1])}, {as_good_tau[0][0]:.2f} s/cell "
           "estimated)." if as_good_tau else "."),
        "",
        "## Each proxy alone (seconds per cell, its passes included)",
        "",
        markdown_table([(n, f"{c:.3f}") for n, c in cost_rows], ["proxy", "s/cell"]),
        "",
        f"Command: `python -m benchmarks.ensemble_cost {' '.join(args.scores)} --cells "
        f"{args.cells} --out {args.out}` ({time.perf_counter() - started:.0f} s).",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
