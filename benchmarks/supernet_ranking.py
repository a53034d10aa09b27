"""How well does the supernet rank cells, and what do fine-tuning, pruning and the
gradient-guided search change? Measured against NATS-Bench 200-epoch test accuracy.

Run (the numbers in results/supernet/)::

    python -m benchmarks.supernet_ranking --data ../shared/data --out results/supernet/cifar10-cpu

Protocol (all seeded; the held-out images are part of the training split, never the test set):

1. A sample of ``--sample`` cells of distinct isomorphism classes is drawn from the benchmark.
2. **One-shot**: the supernet trains ``--epochs`` epochs of uniform de-isomorphic single paths
   (SPOS, BN without affine). At each of ``--checkpoints`` it scores every sampled cell
   (inherited weights, BN re-estimated per cell) and Kendall tau / Spearman rho against the
   200-epoch test accuracy are recorded.
3. From the final one-shot supernet, three continuations of ``--finetune-epochs`` epochs each:
   * *uniform* (the control): more uniform training of the whole supernet;
   * *region*: fine-tuning only on paths of the search region, the best ``--region`` fraction
     of the sample by one-shot score (a population that has concentrated);
   * *pruned*: prune every edge to the ops of the ``--elites`` best sampled cells, then
     uniform training inside the pruned supernet; scored on a fresh sample of cells inside
     the pruned space (``--pruned-sample``).
   Each subset is scored before and after, and by the control, so the effect of the
   continuation is separated from the effect of training longer.
4. **Gradient-guided search** (GENAS-style) from the one-shot supernet around the elites: the
   candidates it proposes and their true accuracy next to the elites'.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from zcnas._text import markdown_table
from zcnas.analysis.metrics import kendall, spearman
from zcnas.data.training import TrainingData
from zcnas.fidelity.supernet import SupernetTrainer
from zcnas.lookup import open_benchmark
from zcnas.spaces import nats_tss

DATASET = "cifar10"


def distinct_sample(bench, n: int, rng: np.random.Generator, inside=None) -> list[int]:
    """``n`` benchmark indices of distinct isomorphism classes (optionally only cells for
    which ``inside(arch)`` holds), in the order drawn."""
    out, keys = [], set()
    for i in rng.permutation(len(bench)):
        arch = bench.arch(int(i))
        if inside is not None and not inside(arch):
            continue
        k = nats_tss.canonical_key(arch)
        if k not in keys:
            keys.add(k)
            out.append(int(i))
            if len(out) == n:
                break
    return out


def score(trainer: SupernetTrainer, bench, indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Held-out accuracy and loss of each cell with the supernet's weights."""
    out = np.array([trainer.accuracy(bench.arch(i)) for i in indices])
    return out[:, 0], out[:, 1]


def quality(phase: str, subset: str, scored: tuple[np.ndarray, np.ndarray],
            truth: np.ndarray, **extra) -> dict:
    acc, loss = scored
    top = np.argsort(-acc, kind="stable")[: max(1, len(acc) // 10)]
    return {"phase": phase, "subset": subset, "n": len(acc),
            "kendall": kendall(acc, truth), "spearman": spearman(acc, truth),
            "kendall_by_loss": kendall(-loss, truth),
            "best_true_in_top10pct": float(truth[top].max()), "true_max": float(truth.max()),
            **extra}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--checkpoints", default="10,20,30")
    ap.add_argument("--finetune-epochs", type=float, default=10)
    ap.add_argument("--region", type=float, default=0.25)
    ap.add_argument("--elites", type=int, default=10)
    ap.add_argument("--pruned-sample", type=int, default=40)
    ap.add_argument("--valid", type=int, default=500)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--oneshot-only", action="store_true",
                    help="Stop after the one-shot checkpoints (longer schedules).")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    bench = open_benchmark("nats-tss", root=args.data, kind="table")
    rng = np.random.default_rng(args.seed)
    sample = distinct_sample(bench, args.sample, rng)
    truth = bench.accuracies(sample, DATASET, epochs=200)
    data = TrainingData.load(DATASET, args.data, valid=args.valid, limit=args.limit)
    trainer = SupernetTrainer(DATASET, data=data, seed=args.seed, device=args.device)
    rows, log = [], []

    def note(msg: str) -> None:
        line = f"[{time.perf_counter() - t_start:7.0f} s] {msg}"
        print(line, flush=True)
        log.append(line)

    # --- 1-2. one-shot, with checkpoints along one cosine schedule -------------------------
    cells: list[dict] = []

    def keep(phase: str, subset: str, indices: list[int], scored, true) -> None:
        for i, a, lo, t in zip(indices, *scored, true, strict=True):
            cells.append({"phase": phase, "subset": subset, "index": i, "arch": bench.arch(i),
                          "supernet_acc": a, "supernet_loss": lo, "true_200ep": t})

    checkpoints = sorted({int(c) for c in args.checkpoints.split(",")} | {args.epochs})
    oneshot = None
    for c in checkpoints:
        trained = trainer.train_schedule(args.epochs, until=c)
        t0 = time.perf_counter()
        oneshot = score(trainer, bench, sample)
        eval_s = (time.perf_counter() - t0) / len(sample)
        phase = f"one-shot, {c} epochs"
        rows.append(quality(phase, "sample", oneshot, truth, epochs=c,
                            eval_seconds_per_cell=eval_s))
        keep(phase, "sample", sample, oneshot, truth)
        per_epoch = sum(r["seconds"] for r in trained) / max(sum(r["epochs"] for r in trained),
                                                             1e-9)
        note(f"epoch {c}: kendall {rows[-1]['kendall']:.3f} spearman "
             f"{rows[-1]['spearman']:.3f} (by loss {rows[-1]['kendall_by_loss']:.3f}; "
             f"{per_epoch:.1f} s/epoch, {eval_s:.2f} s/cell)")
    train_seconds = sum(r["seconds"] for r in trainer.history)
    sec_per_epoch = train_seconds / args.epochs
    base = out.with_name(out.name + "-oneshot.pt")
    trainer.save(base)
    if args.oneshot_only:
        write(out, args, argv, rows, cells, {
            "machine": _machine(args.device), "train_images": len(data.y_train),
            "held_out_images": len(data.y_valid), "seconds_per_epoch": sec_per_epoch,
            "sample": sample, "total_seconds": time.perf_counter() - t_start, "log": log}, [])
        base.unlink(missing_ok=True)
        return

    # --- 3. continuations --------------------------------------------------------------------
    order = np.argsort(-oneshot[0], kind="stable")
    region = [sample[i] for i in order[: max(2, round(args.region * len(sample)))]]
    region_truth = bench.accuracies(region, DATASET, epochs=200)
    region_before = (oneshot[0][order[: len(region)]], oneshot[1][order[: len(region)]])
    elites = [bench.arch(sample[i]) for i in order[: args.elites]]

    def fresh() -> SupernetTrainer:
        t = SupernetTrainer(DATASET, data=data, seed=args.seed, device=args.device)
        t.load(base)
        return t

    def measure(phase: str, subset: str, t: SupernetTrainer | None, indices: list[int],
                true: np.ndarray, scored=None, **extra) -> None:
        scored = scored if scored is not None else score(t, bench, indices)
        rows.append(quality(phase, subset, scored, true, **extra))
        keep(phase, subset, indices, scored, true)

    probe = fresh()
    probe.prune(elites)
    pruned = distinct_sample(bench, args.pruned_sample, np.random.default_rng(args.seed + 1),
                             inside=probe.net.contains)
    pruned_truth = bench.accuracies(pruned, DATASET, epochs=200)
    ft = f"{args.finetune_epochs:g}"
    measure("one-shot", "region", None, region, region_truth, scored=region_before)
    measure("one-shot, pruned (before training)", "pruned space", probe, pruned, pruned_truth)
    ft_lr = (0.01, trainer.recipe.min_lr)

    control = fresh()
    control.train(args.finetune_epochs, lr=ft_lr, label="uniform")
    for subset, idx, true in (("sample", sample, truth), ("region", region, region_truth),
                              ("pruned space", pruned, pruned_truth)):
        measure(f"+{ft} epochs uniform (control)", subset, control, idx, true)
    note("control done")

    tuned = fresh()
    tuned.train(args.finetune_epochs, pool=[bench.arch(i) for i in region], lr=ft_lr,
                label="region fine-tune")
    measure(f"+{ft} epochs fine-tuned on the region", "sample", tuned, sample, truth)
    measure(f"+{ft} epochs fine-tuned on the region", "region", tuned, region, region_truth)
    note("region fine-tune done")

    probe.train(args.finetune_epochs, lr=ft_lr, label="pruned fine-tune")
    measure(f"pruned by {args.elites} elites + {ft} epochs", "pruned space", probe, pruned,
            pruned_truth, space=probe.net.space_size())
    note("pruned fine-tune done")

    # --- 4. gradient-guided search --------------------------------------------------------------
    g = fresh()
    t0 = time.perf_counter()
    cands = g.gradient_search(elites, steps=5, candidates=4)
    genas_s = time.perf_counter() - t0
    elite_truth = bench.accuracies([bench.index(a) for a in elites], DATASET, epochs=200)
    cand_truth = bench.accuracies([bench.index(a) for a in cands], DATASET, epochs=200)

    meta = {
        "machine": _machine(args.device), "train_images": len(data.y_train),
        "held_out_images": len(data.y_valid), "seconds_per_epoch": sec_per_epoch,
        "sample": sample, "region": region, "pruned_sample": pruned, "elites": elites,
        "pruned_space_size": probe.net.space_size(),
        "gradient_search": {"candidates": cands, "true": cand_truth.tolist(),
                            "elites_true": elite_truth.tolist(), "seconds": genas_s},
        "total_seconds": time.perf_counter() - t_start, "log": log,
    }
    extra = [f"Gradient-guided search around the {len(elites)} elites ({genas_s:.1f} s): "
             f"candidates' true accuracy {', '.join(f'{v:.2f}' for v in cand_truth)}; elites "
             f"mean {elite_truth.mean():.2f}, best {elite_truth.max():.2f}.", ""]
    write(out, args, argv, rows, cells, meta, extra)
    base.unlink(missing_ok=True)


def _machine(device: str) -> str:
    return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
            f"threads, device {device}")


def write(out: Path, args, argv, rows: list[dict], cells: list[dict], meta: dict,
          extra: list[str]) -> None:
    """``OUT.csv`` (one row per phase x subset), ``OUT-cells.parquet`` (every cell scored),
    ``OUT.json`` (the command, settings, samples, log) and ``OUT.md``."""
    table = pd.DataFrame(rows)
    table.to_csv(out.with_suffix(".csv"), index=False)
    pd.DataFrame(cells).to_parquet(out.with_name(out.name + "-cells.parquet"), index=False)
    meta = {"command": "python -m benchmarks.supernet_ranking "
                       + " ".join(argv if argv is not None else sys.argv[1:]),
            "args": vars(args), **meta}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    lines = [f"# Supernet ranking quality, {DATASET} ({meta['machine']})", "",
             f"{meta['train_images']} training / {meta['held_out_images']} held-out images; "
             "ground truth: NATS-Bench 200-epoch test accuracy. Supernet training: "
             f"{meta['seconds_per_epoch']:.1f} s per epoch.", "",
             markdown_table(table.round(3).values.tolist(), list(table.columns)), "",
             *extra, f"Total {meta['total_seconds'] / 60:.1f} min."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
