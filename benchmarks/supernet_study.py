"""Does a CPU-sized supernet rank cells well enough to be worth escalating to? Ranking of a
reduced supernet against NATS-Bench 200-epoch test accuracy, alone and fused with the zero-cost
ensemble, along one training schedule, and before / after fine-tuning and pruning.

Run (the numbers in results/supernet/)::

    python -m benchmarks.supernet_study --data ../shared/data \\
        --out results/supernet/study-c8n1-s0 --channels 8 --cells 1 --epochs 120 \\
        --checkpoints 10,20,30,50,80,120 --finetune-epochs 10 --seed 0

then, over several seeds' studies, ``--combine PREFIX...`` (the seeds side by side and their
mean rank), ``--pairs PREFIX...`` (one supernet against every pool of two, the
:class:`~zcnas.fidelity.supernet.SupernetPool` rule), ``--pools PREFIX...`` (pools of every
size, with a bootstrap interval of the top region's gain) and ``--plot CSV...``; the commands of
each committed table are in results/supernet/README.md.

Protocol (seeded; the held-out images are part of the training split, never the test set):

1. **Cells.** A score table (``--scores``; by default the 1,000-cell sample of
   ``results/scores/tss-cifar10-all-1000.parquet``) gives the zero-cost ensemble
   (``--ensemble``, AZ-NAS rank aggregation over the table's cells). Two subsets of distinct
   isomorphism classes: ``sample``, ``--sample`` cells drawn with a fixed seed (the same for
   every supernet seed), and ``top``, the ensemble's best 100 cells of the table (the region a
   search escalates from). With the full-space table
   (``results/scores/tss-cifar10-zcnas-full.parquet``, ``benchmarks/after_full_space.sh``)
   ``top`` is the ensemble's best 100 of all 15,625 cells, as issue 16 asks; with the default
   table it is the best 100 of the 1,000-cell sample.
2. **One-shot.** The supernet (``--channels`` x ``--cells`` per stage) trains along one cosine
   schedule of ``--epochs`` epochs (NB201's weight-sharing recipe, uniform de-isomorphic single
   paths). At each of ``--checkpoints`` every cell is scored with inherited weights after
   re-estimating its BN statistics, by held-out accuracy and by held-out loss. Training time
   is the process's CPU seconds (one torch thread), so a busy machine does not inflate it.
3. **Metrics** per checkpoint: Kendall tau and Spearman rho against the 200-epoch test accuracy
   over ``sample`` and inside ``top``, for accuracy, loss, and loss averaged over this and the
   two previous checkpoints (a temporal ensemble); inside ``top`` also the ensemble alone and the
   fusion of the two ranks (sum of log rank fractions, AZ-NAS's rule: the ladder's ``fused``).
4. **Continuations** of the final supernet, ``--finetune-epochs`` each, lr 0.01 cosine to the
   recipe's minimum: uniform training (the control), fine-tuning on the paths of ``top`` (the
   search region), and pruning each edge to the ops of the 10 best ``top`` cells by fused score
   then training inside the pruned supernet; ``top`` is scored after each (cells outside the
   pruned space are left out and counted).
"""

from __future__ import annotations

import argparse
import json
import math
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
from zcnas.ensemble import parse_ensemble
from zcnas.errors import OutsideSupernetError
from zcnas.fidelity.supernet import SupernetRecipe, SupernetTrainer
from zcnas.fidelity.supernet_fitness import log_rank_fractions
from zcnas.lookup import open_benchmark

DATASET = "cifar10"
SCORES = Path(__file__).resolve().parents[1] / "results/scores/tss-cifar10-all-1000.parquet"


def ensemble_cells(path: Path, ensemble: str) -> pd.DataFrame:
    """One row per distinct cell of the scored sample: index, arch, canonical, ensemble score
    (aggregated over the whole sample, then the first cell of each isomorphism class kept)."""
    d = pd.read_parquet(path)
    d = d[d.dataset == DATASET]
    wide = d.pivot_table(index="index", columns="proxy", values="value")
    first = d.drop_duplicates("index").set_index("index").loc[wide.index]
    ens = parse_ensemble(ensemble)
    score = ens.aggregate({c.spec(): wide[c.spec()].to_numpy() for c in ens.components})
    out = pd.DataFrame({"index": wide.index.to_numpy(), "arch": first.arch.to_numpy(),
                        "canonical": first.canonical.to_numpy(), "ensemble": score})
    return out.drop_duplicates("canonical").reset_index(drop=True)


def fused(*columns: np.ndarray) -> np.ndarray:
    """AZ-NAS's fusion: the sum of each column's log rank fractions."""
    return sum(log_rank_fractions(np.asarray(c, dtype=np.float64)) for c in columns)


def corr(score: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    return kendall(score, truth), spearman(score, truth)


STYLES = ("-", "--", ":", "-.")


def plot(csvs: list[str], out: Path) -> None:
    """Kendall tau against training CPU minutes, one line per seed and measure: over the
    sample by loss and accuracy, and inside the top region the ensemble, the supernet and
    their fusion."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    series = {"sample": [("kendall_loss", "supernet, held-out loss"),
                         ("kendall_acc", "supernet, held-out accuracy"),
                         ("kendall_ensemble", "zero-cost ensemble")],
              "top": [("kendall_loss", "supernet, held-out loss"),
                      ("kendall_ensemble", "zero-cost ensemble"),
                      ("kendall_fused", "fused ranks")]}
    for ax, subset in zip(axes, ("sample", "top"), strict=True):
        for i, csv in enumerate(csvs):
            d = pd.read_csv(csv)
            d = d[(d.subset == subset) & d.phase.str.startswith("one-shot")]
            for j, (col, label) in enumerate(series[subset]):
                ax.plot(d.train_cpu_min, d[col], marker="o", color=f"C{j}",
                        linestyle=STYLES[i % len(STYLES)], label=label if i == 0 else None)
        ax.axhline(0.40 if subset == "sample" else 0.0, color="grey", linewidth=0.8)
        ax.set_xlabel("supernet training, CPU minutes (one core)")
        ax.set_title({"sample": "200 sampled cells", "top": "ensemble's top 100"}[subset])
        ax.legend(fontsize=7)
    styles = ", ".join(f"{Path(c).stem} {n}" for c, n in zip(
        csvs, ("solid", "dashed", "dotted", "dash-dot"), strict=False))
    fig.suptitle(f"one line per supernet seed: {styles}", fontsize=8)
    axes[0].set_ylabel("Kendall tau vs 200-epoch test accuracy")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def combine(prefixes: list[str], out: Path) -> str:
    """Seeds side by side and together: per one-shot checkpoint, Kendall tau of each seed and
    of the seeds' mean loss rank (a supernet ensemble costing one training per seed), alone
    and fused with the zero-cost ensemble; writes ``out`` (markdown) and returns it."""
    from scipy.stats import rankdata

    cells = [pd.read_parquet(f"{p}-cells.parquet") for p in prefixes]
    tables = [pd.read_csv(f"{p}.csv") for p in prefixes]
    base = cells[0]
    for c in cells[1:]:
        if not (c.arch.to_numpy() == base.arch.to_numpy()).all():
            raise SystemExit("the studies scored different cells")
    truth = base.true.to_numpy()
    ens = base.ensemble.to_numpy()
    phases = [c[len("loss | "):] for c in base.columns if c.startswith("loss | ")]
    rows = []
    for phase in phases:
        losses = [c[f"loss | {phase}"].to_numpy() for c in cells]
        together = np.mean([rankdata(-x) for x in losses], axis=0)
        row = [phase]
        cpu = [t[(t.phase == phase) & (t.subset == "sample")].train_cpu_min.iloc[0]
               for t in tables]
        row.append(f"{np.mean(cpu):.1f}")
        for subset in ("in_sample", "in_top"):
            m = base[subset].to_numpy() & np.all([np.isfinite(x) for x in losses], axis=0)
            per = [kendall(-x[m], truth[m]) for x in losses]
            row += [" / ".join(f"{v:.3f}" for v in per), f"{kendall(together[m], truth[m]):.3f}"]
            if subset == "in_top":
                fz = [kendall(fused(ens[m], -x[m]), truth[m]) for x in losses]
                row += [f"{kendall(ens[m], truth[m]):.3f}", " / ".join(f"{v:.3f}" for v in fz),
                        f"{kendall(fused(ens[m], together[m]), truth[m]):.3f}"]
        rows.append(row)
    head = ["phase", "train CPU min per seed", "sample: tau by loss, per seed",
            "sample: seeds' mean rank", "top: tau by loss, per seed", "top: seeds' mean rank",
            "top: ensemble alone", "top: fused, per seed", "top: fused with seeds' mean rank"]
    text = markdown_table(rows, head)
    out.write_text(text + "\n")
    return text


def shared_studies(prefixes: list[str]) -> tuple[list[pd.DataFrame], list[pd.DataFrame],
                                                  list[str]]:
    """Per-seed studies joined on the isomorphism classes they all hold: each study's cells
    (indexed by class, in the first study's order), each study's table, and the phases whose
    losses every cell has (pruned phases left out)."""
    cells = [pd.read_parquet(f"{p}-cells.parquet").set_index("canonical") for p in prefixes]
    common = cells[0].index
    for c in cells[1:]:
        common = common.intersection(c.index)
    cells = [c.loc[common] for c in cells]
    tables = [pd.read_csv(f"{p}.csv") for p in prefixes]
    phases = [c[len("loss | "):] for c in cells[0].columns
              if c.startswith("loss | ") and "pruned" not in c]
    return cells, tables, phases


def phase_losses(cells: list[pd.DataFrame], tables: list[pd.DataFrame],
                 phase: str) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Each study's held-out losses at ``phase``, where every study has one, and the mean
    CPU minutes of training per supernet up to it."""
    losses = [c[f"loss | {phase}"].to_numpy() for c in cells]
    finite = np.all([np.isfinite(x) for x in losses], axis=0)
    cpu = float(np.mean([t[(t.phase == phase) & (t.subset == "sample")].train_cpu_min.iloc[0]
                         for t in tables]))
    return losses, finite, cpu


def pool_scores(losses: list[np.ndarray], k: int) -> list[np.ndarray]:
    """The score (minus the mean loss) of every pool of ``k`` of the studies' supernets."""
    from itertools import combinations

    return [-np.mean([losses[i] for i in g], axis=0)
            for g in combinations(range(len(losses)), k)]


def spread(v: list[float]) -> str:
    """Mean and range."""
    return f"{np.mean(v):.3f} ({min(v):.3f} - {max(v):.3f})"


def top_gain(cells: np.ndarray, pools: list[np.ndarray], ens: np.ndarray,
             truth: np.ndarray) -> float:
    """Over ``cells`` (positions, repeats allowed): the mean Kendall tau of each pool's
    score fused with the ensemble, less the ensemble's own."""
    t, e = truth[cells], ens[cells]
    return float(np.mean([kendall(fused(e, p[cells]), t) for p in pools]) - kendall(e, t))


def pool_sizes(prefixes: list[str], out: Path, resamples: int = 1000, seed: int = 0) -> str:
    """Pools of every size, from per-seed studies: for k = 1 .. the number of seeds and each
    checkpoint, Kendall tau of every pool of k seeds (a cell scored by their mean held-out
    loss) over the sample and, fused with the zero-cost ensemble, inside the top region
    (mean and range over the pools), and the top region's gain over the ensemble alone
    (the pools' mean) with a 95% bootstrap interval over the top cells: ``resamples`` draws
    of the top cells with replacement, each scoring the ensemble and every pool on the same
    draw. Writes ``out`` (markdown) and returns it."""
    cells, tables, phases = shared_studies(prefixes)
    base = cells[0]
    truth, ens = base.true.to_numpy(), base.ensemble.to_numpy()
    n = len(cells)
    rng = np.random.default_rng(seed)
    rows = []
    for phase in phases:
        losses, finite, cpu = phase_losses(cells, tables, phase)
        sample = base.in_sample.to_numpy() & finite
        top = np.flatnonzero(base.in_top.to_numpy() & finite)
        draws = [rng.integers(0, len(top), len(top)) for _ in range(resamples)]
        for k in range(1, n + 1):
            pools = pool_scores(losses, k)
            on_sample = [kendall(p[sample], truth[sample]) for p in pools]
            on_top = [kendall(fused(ens[top], p[top]), truth[top]) for p in pools]
            boot = [top_gain(top[idx], pools, ens, truth) for idx in draws]
            lo, hi = np.quantile(boot, [0.025, 0.975])
            rows.append([phase, k, f"{k * cpu:.1f}", spread(on_sample), spread(on_top),
                         f"{top_gain(top, pools, ens, truth):+.3f} [{lo:+.3f}, {hi:+.3f}]"])
    top_all = base.in_top.to_numpy()
    note = (f"{n} seeds ({', '.join(Path(p).name for p in prefixes)}): every pool of k of "
            f"them (a cell scored by the members' mean held-out loss); Kendall tau against "
            f"the 200-epoch test accuracy, the mean over pools and its range; "
            f"{int(base.in_sample.sum())} sampled and {int(top_all.sum())} top cells shared "
            f"by every study. The ensemble alone ranks the top cells at "
            f"{kendall(ens[top_all], truth[top_all]):.3f}. Gain: the pools' mean fused tau "
            f"less the ensemble's, with a 95% bootstrap interval over the top cells "
            f"({resamples} resamples, seed {seed}).\n\n")
    head = ["phase", "supernets", "train CPU min (all members)", "sample tau",
            "top tau, fused", "top: gain over the ensemble [95%]"]
    text = note + markdown_table(rows, head)
    out.write_text(text + "\n")
    return text


def pairs(prefixes: list[str], out: Path) -> str:
    """What a pool of two supernets (:class:`zcnas.fidelity.supernet.SupernetPool`, a cell
    scored by the members' mean held-out loss) buys over one, from per-seed studies: at each
    checkpoint, Kendall tau of every seed alone and of every pair of seeds (mean loss), over
    the sample and, fused with the zero-cost ensemble, inside the top region (mean and range
    over seeds and over pairs). Studies run on score tables a few classes apart are joined on
    the isomorphism classes they share (ensemble, truth and subsets of the first); writes
    ``out`` (markdown) and returns it."""
    cells, tables, phases = shared_studies(prefixes)
    base = cells[0]
    truth, ens = base.true.to_numpy(), base.ensemble.to_numpy()
    n_pairs = len(cells) * (len(cells) - 1) // 2

    rows = []
    for phase in phases:
        losses, finite, cpu = phase_losses(cells, tables, phase)
        row = [phase, f"{cpu:.1f}"]
        for subset in ("in_sample", "in_top"):
            m = base[subset].to_numpy() & finite

            def tau(score, m=m, subset=subset):
                return kendall(score[m], truth[m]) if subset == "in_sample" else \
                    kendall(fused(ens[m], score[m]), truth[m])
            row += [spread([tau(x) for x in pool_scores(losses, k)]) for k in (1, 2)]
            if subset == "in_top":
                row.append(f"{kendall(ens[m], truth[m]):.3f} ({int(m.sum())} cells)")
        rows.append(row)
    head = ["phase", "train CPU min per supernet", "sample: one supernet",
            "sample: pool of two", "top, fused: one supernet", "top, fused: pool of two",
            "top: ensemble alone"]
    note = (f"{len(cells)} seeds ({', '.join(Path(p).name for p in prefixes)}), "
            f"{n_pairs} pairs; Kendall tau against the 200-epoch test accuracy, the mean over "
            f"seeds (or pairs) and its range; {int(base.in_sample.sum())} sampled and "
            f"{int(base.in_top.sum())} top cells shared by every study.\n\n")
    text = note + markdown_table(rows, head)
    out.write_text(text + "\n")
    return text


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plot", nargs="+", metavar="CSV",
                    help="only draw tau against training time from these study tables")
    ap.add_argument("--combine", nargs="+", metavar="PREFIX",
                    help="only tabulate these studies (their --out) side by side and together")
    ap.add_argument("--pairs", nargs="+", metavar="PREFIX",
                    help="only tabulate one supernet against pools of two from these studies")
    ap.add_argument("--pools", nargs="+", metavar="PREFIX",
                    help="only tabulate pools of every size from these studies, with "
                         "bootstrap intervals of the top region's gain over the ensemble")
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--cells", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=120)
    ap.add_argument("--checkpoints", default="10,20,30,50,80,120")
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--top", type=int, default=100)
    ap.add_argument("--ensemble", default="zcnas")
    ap.add_argument("--scores", default=str(SCORES),
                    help="score table whose ensemble ranks the cells (default: the 1,000 sample)")
    ap.add_argument("--finetune-epochs", type=float, default=10)
    ap.add_argument("--elites", type=int, default=10)
    ap.add_argument("--valid", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.plot:
        plot(args.plot, Path(args.out))
        return
    if args.combine:
        print(combine(args.combine, Path(args.out)))
        return
    if args.pairs:
        print(pairs(args.pairs, Path(args.out)))
        return
    if args.pools:
        print(pool_sizes(args.pools, Path(args.out)))
        return
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    log: list[str] = []

    def note(msg: str) -> None:
        line = f"[{time.perf_counter() - t_start:7.0f} s] {msg}"
        print(line, flush=True)
        log.append(line)

    bench = open_benchmark("nats-tss", root=args.data, kind="table")
    cells = ensemble_cells(Path(args.scores), args.ensemble)
    cells["true"] = bench.accuracies(cells["index"].tolist(), DATASET, epochs=200)
    pick = np.random.default_rng(12345).permutation(len(cells))[: args.sample]
    cells["in_sample"] = False
    cells.loc[pick, "in_sample"] = True
    top = np.argsort(-cells.ensemble.to_numpy(), kind="stable")[: args.top]
    cells["in_top"] = False
    cells.loc[top, "in_top"] = True
    cells = cells[cells.in_sample | cells.in_top].reset_index(drop=True)
    note(f"{int(cells.in_sample.sum())} sampled + {int(cells.in_top.sum())} top cells "
         f"({len(cells)} distinct)")

    data = TrainingData.load(DATASET, args.data, valid=args.valid)
    recipe = SupernetRecipe(channels=args.channels, cells=args.cells)
    trainer = SupernetTrainer(DATASET, data=data, seed=args.seed, device=args.device,
                              recipe=recipe)
    trainer.bar = False

    def score(t: SupernetTrainer) -> tuple[np.ndarray, np.ndarray]:
        acc, loss = [], []
        for a in cells.arch:
            try:
                x, y = t.accuracy(a)
            except OutsideSupernetError:
                x, y = math.nan, math.nan
            acc.append(x)
            loss.append(y)
        return np.array(acc), np.array(loss)

    rows: list[dict] = []
    scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    losses: list[np.ndarray] = []
    train_cpu = 0.0
    checkpoints = sorted({int(c) for c in args.checkpoints.split(",")} | {args.epochs})

    def measure(phase: str, acc: np.ndarray, loss: np.ndarray, **extra) -> None:
        """Record both subsets; the temporal average takes this loss and the two one-shot
        checkpoints before it."""
        scored[phase] = (acc, loss)
        avg = -np.mean([*losses[-2:], loss], axis=0)
        for subset, mask in (("sample", cells.in_sample), ("top", cells.in_top)):
            m = mask.to_numpy() & np.isfinite(loss)
            t = cells.true.to_numpy()[m]
            row = {"phase": phase, "subset": subset, "n": int(m.sum()), **extra}
            row["kendall_acc"], row["spearman_acc"] = corr(acc[m], t)
            row["kendall_loss"], row["spearman_loss"] = corr(-loss[m], t)
            row["kendall_loss_avg3"], row["spearman_loss_avg3"] = corr(avg[m], t)
            ens = cells.ensemble.to_numpy()[m]
            row["kendall_ensemble"], row["spearman_ensemble"] = corr(ens, t)
            row["kendall_fused"], row["spearman_fused"] = corr(fused(ens, -loss[m]), t)
            row["kendall_fused_avg3"], row["spearman_fused_avg3"] = corr(fused(ens, avg[m]), t)
            rows.append(row)
        s, tp = rows[-2], rows[-1]
        note(f"{phase}: sample tau acc {s['kendall_acc']:.3f} loss {s['kendall_loss']:.3f} "
             f"avg3 {s['kendall_loss_avg3']:.3f}; top tau ens {tp['kendall_ensemble']:.3f} "
             f"loss {tp['kendall_loss']:.3f} fused {tp['kendall_fused']:.3f} fused-avg3 "
             f"{tp['kendall_fused_avg3']:.3f}")

    for c in checkpoints:
        c0 = time.process_time()
        trainer.train_schedule(args.epochs, until=c)
        train_cpu += time.process_time() - c0
        e0 = time.process_time()
        acc, loss = score(trainer)
        eval_cpu = (time.process_time() - e0) / len(cells)
        measure(f"one-shot, {c} epochs", acc, loss, epochs=c, train_cpu_min=train_cpu / 60,
                eval_cpu_s_per_cell=eval_cpu)
        losses.append(loss)
    base = out.with_name(out.name + "-final.pt")
    trainer.save(base)
    final_loss = losses[-1]

    def fresh() -> SupernetTrainer:
        t = SupernetTrainer(DATASET, data=data, seed=args.seed, device=args.device,
                            recipe=recipe)
        t.bar = False
        t.load(base)
        return t

    ft_lr = (0.01, recipe.min_lr)
    ft = f"{args.finetune_epochs:g}"
    region = cells.arch[cells.in_top].tolist()
    for label, how in (("uniform (control)", None), ("fine-tuned on top", "region"),
                       ("pruned by elites", "prune")):
        t = fresh()
        c0 = time.process_time()
        extra = {}
        if how == "prune":
            m = cells.in_top.to_numpy()
            f = np.full(len(cells), -np.inf)
            f[m] = fused(cells.ensemble.to_numpy()[m], -final_loss[m])
            elites = cells.arch[np.argsort(-f, kind="stable")[: args.elites]].tolist()
            t.prune(elites)
            extra["space"] = t.net.space_size()
        t.train(args.finetune_epochs, pool=region if how == "region" else None, lr=ft_lr,
                label=label)
        extra["train_cpu_min"] = train_cpu / 60 + (time.process_time() - c0) / 60
        measure(f"+{ft} epochs {label}", *score(t), epochs=args.epochs, **extra)
    base.unlink(missing_ok=True)

    table = pd.DataFrame(rows)
    table.to_csv(out.with_suffix(".csv"), index=False)
    every = cells.copy()
    for phase, (acc, loss) in scored.items():
        every[f"acc | {phase}"] = acc
        every[f"loss | {phase}"] = loss
    every.to_parquet(out.with_name(out.name + "-cells.parquet"), index=False)
    machine = (f"{platform.processor() or platform.machine()}, {args.threads} torch thread(s), "
               f"device {args.device}")
    meta = {"command": "python -m benchmarks.supernet_study "
                       + " ".join(argv if argv is not None else sys.argv[1:]),
            "args": vars(args), "machine": machine, "train_images": len(data.y_train),
            "held_out_images": len(data.y_valid), "train_cpu_minutes": train_cpu / 60,
            "total_seconds": time.perf_counter() - t_start, "log": log}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    cols = ["phase", "subset", "n", "kendall_acc", "kendall_loss", "kendall_loss_avg3",
            "kendall_ensemble", "kendall_fused", "kendall_fused_avg3", "spearman_loss",
            "train_cpu_min"]
    shown = table[cols].round(3)
    lines = [f"# Supernet ranking, {args.channels} channels x {args.cells} cell(s) per stage, "
             f"seed {args.seed} ({machine})", "",
             f"`{meta['command']}`", "",
             f"{len(data.y_train)} training / {len(data.y_valid)} held-out images; truth: "
             "NATS-Bench 200-epoch CIFAR-10 test accuracy; ensemble: "
             f"`{args.ensemble}`. Training CPU time {train_cpu / 60:.1f} min; total wall "
             f"{meta['total_seconds'] / 60:.1f} min.", "",
             markdown_table(shown.values.tolist(), cols), ""]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
