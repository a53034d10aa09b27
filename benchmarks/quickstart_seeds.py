"""The README's main command over 10 seeds: how good is the cell the data-free quick start picks?

    python -m benchmarks.quickstart_seeds --data ../shared/data \\
        --out results/search/quickstart-data-free.md

Runs ``zcnas search`` exactly as the quick start does (no data folder, so no lookup and no
images: 60 s of proxy compute per run on the data-free fitness), seeds 0..9, once per fitness
given (default: the quick start as it is, ``ensemble:data_free`` with MFEA's quick parameters,
population 20 and tournament 5, beside the previous quick start, ``ensemble:az_nas`` with
MFNAS's population 100 and tournament 25), each arm in a fresh score store so no arm reads
another's scores. Only
then is the lookup table (``--data``) opened, to join every chosen benchmark index with its
CIFAR-10 200-epoch test accuracy and its rank among the 15,625 cells. The target of issue 17:
median chosen accuracy >= 93.28 % (the top 5 % of the topology space).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET = 93.28


def run_arm(fitness: str, seeds: int, budget: str, workdir: Path, extra: list[str]) -> object:
    import pandas as pd

    env = {k: v for k, v in os.environ.items() if k not in ("ZCNAS_DATA", "TORCH_HOME")}
    env["ZCNAS_CACHE"] = str(workdir / "cache")  # a fresh store per arm
    out = workdir / "out"
    cmd = [sys.executable, "-m", "zcnas", "search", "--seeds", str(seeds), "--budget", budget,
           "--fitness", fitness, "--out", str(out), "--no-progress", "--no-plots", *extra]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    runs = pd.read_parquet(out / "runs.parquet")
    runs["fitness"] = " ".join([fitness, *extra])
    runs["arm_wall_s"] = time.perf_counter() - t
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="data folder with the NATS-Bench table")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--budget", default="auto", help="as `zcnas search --budget` (auto = 60 s)")
    ap.add_argument("--fitness", default="ensemble:data_free,ensemble:az_nas@--param "
                    "population_size=100 --param tournament_size=25",
                    help="comma list; FITNESS@ARGS adds `zcnas search` options to that arm, "
                         "e.g. 'ensemble:data_free@--param population_size=20'")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import pandas as pd

    from zcnas.lookup import open_benchmark

    arms = []
    for arm in args.fitness.split(","):
        fitness, _, extra = arm.partition("@")
        with tempfile.TemporaryDirectory() as tmp:
            arms.append(run_arm(fitness, args.seeds, args.budget, Path(tmp), extra.split()))
    runs = pd.concat(arms, ignore_index=True)

    bench = open_benchmark("nats-tss", root=args.data, kind="table")
    everything = bench.accuracies(range(len(bench)), "cifar10", epochs=200)
    runs["test_acc"] = bench.accuracies(runs["index"].astype(int), "cifar10", epochs=200)
    runs["top_pct"] = [100.0 * float((everything > a).sum() + 1) / len(everything)
                       for a in runs["test_acc"]]

    lines = [
        "# The data-free quick start over 10 seeds",
        "",
        f"`zcnas search --seeds {args.seeds} --budget {args.budget} --fitness F [ARGS]` with no "
        "data folder (no lookup, no images), each arm in a fresh score store (without ARGS "
        "MFEA takes the quick start's population 20 and tournament 5); the chosen "
        "benchmark indices joined afterwards with the NATS-Bench CIFAR-10 200-epoch test "
        "accuracy (`python -m benchmarks.quickstart_seeds`). Target (issue 17): median "
        f">= {TARGET:.2f} % (top 5 % of 15,625 cells). Machine: {os.cpu_count()} CPU cores.",
        "",
        "| fitness | median acc | mean acc | min / max | median top % | seeds >= target "
        "| cells scored / run | arm wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fitness, g in runs.groupby("fitness", sort=False):
        acc = g["test_acc"].to_numpy()
        cells = g["evals"].astype(str).str.split(" / ").str[0].astype(int)
        lines.append(
            f"| `{fitness}` | {np.median(acc):.2f} | {acc.mean():.2f} | {acc.min():.2f} / "
            f"{acc.max():.2f} | {np.median(g['top_pct']):.2f} | "
            f"{int((acc >= TARGET).sum())}/{len(acc)} | {cells.mean():.0f} | "
            f"{g['arm_wall_s'].iloc[0]:.0f} |")
    lines += ["", "| fitness | seed | index | test acc | top % | cells scored | proxy s |",
              "|---|---|---|---|---|---|---|"]
    for _, r in runs.iterrows():
        lines.append(f"| `{r.fitness}` | {r.seed} | {int(r['index'])} | {r.test_acc:.2f} | "
                     f"{r.top_pct:.2f} | {str(r.evals).split(' / ')[0]} | {r.cost_s:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
