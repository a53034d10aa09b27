"""The foresight proxies on cells with a conv edge whose source node is always zero.

Run (the files in results/fidelity/)::

    ZCNAS_DATA=../shared/data python -m benchmarks.reference_fidelity --archs 400 \
        --out results/fidelity/zero-source-400

The reference (SamsungLabs/zero-cost-nas) builds every edge of the cell. A conv edge whose
source node is always zero (e.g. ``nor_conv_3x3~1`` after ``none~0``) then computes
ReLU(0) -> conv with bias (the cells' BN is ``affine=False``) -> train-mode BN of a per-channel
constant; zcnas does not build it. This script measures what that changes, on a seeded sample of
``--archs`` cells of the 15,625 (rows of the compact table, isomorphs included), one thread:

- every cell: ``fisher`` (zcnas default: pruned network) and ``fisher(literal=True)`` (naive
  network, contiguous tensors: the reference's layout); ``synflow`` (zcnas: every BN removed,
  pruned), the same on the naive network, and the reference's BN-free copy (naive, the 4 BN
  layers of the two reduction blocks kept);
- cells with a zero-source conv edge, and ``--controls`` cells without one: grad_norm, snip,
  jacov and grasp on the pruned and on the naive network, both contiguous (so the difference is
  the edges alone, not the memory format), same weights and batch.

Writes ``OUT.csv`` (one row per cell) and ``OUT.md`` (the summary: Spearman rho / Kendall tau
against the CIFAR-10 200-epoch test accuracy, rank agreement literal vs pruned, the size of the
zero-source terms, the relative change of the other proxies).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import kendalltau, spearmanr
from torch import nn

from zcnas.models.init import remove_batchnorm
from zcnas.models.network import Cell
from zcnas.registry import create_proxy
from zcnas.scoring import InputBank, ScoringContext
from zcnas.spaces import nats_tss

CONV_OPS = ("nor_conv_1x1", "nor_conv_3x3")
OTHERS = ("grad_norm", "snip", "jacov", "grasp")


def zero_source_edges(arch) -> list[tuple[int, int]]:
    """Conv edges whose source node is always zero (no non-``none`` path from the input)."""
    cell = nats_tss.as_cell(arch)
    nonzero = {0}
    for node in range(1, nats_tss.NUM_NODES):
        if any(op != "none" and src in nonzero for op, src in cell.inputs(node)):
            nonzero.add(node)
    return [(src, dst) for op, (src, dst) in zip(cell.ops, nats_tss.EDGES, strict=True)
            if op in CONV_OPS and src not in nonzero]


def reaches_output(arch) -> set[int]:
    """Nodes with a non-``none`` path to the cell output."""
    cell = nats_tss.as_cell(arch)
    last = nats_tss.NUM_NODES - 1
    out = {last}
    for node in range(last - 1, -1, -1):
        if any(cell.op(node, dst) != "none" and dst in out for dst in range(node + 1, last + 1)):
            out.add(node)
    return out


def zero_output(arch) -> bool:
    """The cell's output is always zero (in the pruned network: the logits are constant)."""
    return not any(nats_tss.live_edges(arch)[i] for i, (_, dst) in enumerate(nats_tss.EDGES)
                   if dst == nats_tss.NUM_NODES - 1)


class LayoutContext(ScoringContext):
    """A context whose networks are built naive or pruned, and whose tensors are contiguous."""

    def __init__(self, *args, prune: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prune = prune

    def network(self, **kwargs):
        kwargs["prune"] = self.prune
        kwargs["channels_last"] = False
        return super().network(**kwargs)

    def batches(self, batch_size, n=1, kind="real"):
        return [(x.contiguous(), y) for x, y in super().batches(batch_size, n, kind)]


def synflow_reference(ctx: ScoringContext) -> float:
    """foresight's synflow: naive network, BN removed from the stem, cells and head only."""
    net = ctx.network(affine=False, track=False, dtype=torch.float64, prune=False)
    remove_batchnorm(net.stem)
    remove_batchnorm(net.lastact)
    for layer in net.cells:
        if isinstance(layer, Cell):
            remove_batchnorm(layer)
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    net(ctx.ones(1, torch.float64)).sum().backward()
    with torch.no_grad():
        total = sum(float((m.weight * m.weight.grad).abs().sum()) for m in net.modules()
                    if isinstance(m, nn.Conv2d | nn.Linear) and m.weight.grad is not None)
    return math.log(total) if total > 0 else -math.inf


def score_cell(arch: str, bank: InputBank, others: bool) -> dict:
    row: dict = {}
    ctx = ScoringContext(arch, inputs=bank, seed=0)
    row["fisher"] = create_proxy("fisher").score(ctx)
    row["fisher_literal"] = create_proxy("fisher(literal=True)").score(ctx)
    row["synflow"] = create_proxy("synflow").score(ctx)
    row["synflow_naive"] = create_proxy("synflow").score(LayoutContext(arch, seed=0, prune=False))
    row["synflow_reference"] = synflow_reference(ctx)
    if others:
        for prune, tag in ((True, "pruned"), (False, "naive")):
            lctx = LayoutContext(arch, inputs=bank, seed=0, prune=prune)
            for name in OTHERS:
                row[f"{name}_{tag}"] = create_proxy(name).score(lctx)
    return row


def rel_change(a: pd.Series, b: pd.Series) -> pd.Series:
    """|a - b| / |b|; 0 where equal (NaN and NaN included), inf where only one is finite."""
    same = (a == b) | (a.isna() & b.isna())
    out = (a - b).abs() / b.abs()
    return out.where(~same, 0.0).fillna(np.inf)


def _ranked(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return np.where(np.isfinite(v), v, -np.inf)  # degenerate scores (NaN, -inf) rank last


def rho(x, y) -> float:
    return float(spearmanr(_ranked(x), _ranked(y)).statistic)


def tau(x, y) -> float:
    return float(kendalltau(_ranked(x), _ranked(y)).statistic)


def summarise(df: pd.DataFrame) -> list[str]:
    acc = df["acc200"].to_numpy()
    zs = df["zero_source"].to_numpy()
    reach = df["zero_source_reaching"].to_numpy()
    out = [f"cells: {len(df)}; with a zero-source conv edge: {int(zs.sum())} "
           f"({int(reach.sum())} with such an edge whose target reaches the cell output, "
           f"{int((zs & df['zero_output']).sum())} with an always-zero cell output); "
           f"mean CIFAR-10 accuracy {acc[zs].mean():.2f} with vs {acc[~zs].mean():.2f} without", ""]
    out += ["## fisher: default (pruned) vs literal (naive network)", "",
            "| | rho vs acc | tau vs acc | rho vs acc, without zero-source cells |",
            "|---|---|---|---|"]
    for col in ("fisher", "fisher_literal"):
        v = df[col].to_numpy()
        out.append(f"| {col} | {rho(v, acc):.3f} | {tau(v, acc):.3f} | "
                   f"{rho(v[~zs], acc[~zs]):.3f} |")
    f, lit = df["fisher"].to_numpy(), df["fisher_literal"].to_numpy()
    pct = pd.Series(lit).rank(pct=True).to_numpy()
    pct_default = pd.Series(f).rank(pct=True).to_numpy()
    rel = np.abs(lit - f) / np.abs(f)
    out += ["",
            f"- rank agreement (Spearman) literal vs default: all cells {rho(lit, f):.3f}, "
            f"without zero-source cells {rho(lit[~zs], f[~zs]):.4f}",
            f"- cells without a zero-source edge: max relative difference literal vs default "
            f"{np.nanmax(rel[~zs]):.1e} (naive contiguous vs pruned channels-last: rounding)",
            f"- zero-source cells: median fisher literal {np.median(lit[zs]):.4g} vs default "
            f"{np.median(f[zs]):.4g} (all cells' default median {np.median(f):.4g}); median "
            f"percentile in the literal ranking {100 * np.median(pct[zs]):.0f} "
            f"(default ranking {100 * np.median(pct_default[zs]):.0f})",
            f"- zero-source edge reaching the output: literal / default ratio median "
            f"{np.median(lit[reach] / f[reach]):.3g}, min {np.min(lit[reach] / f[reach]):.3g}; "
            f"zero-source edges not reaching it only: max relative difference "
            f"{np.max(rel[zs & ~reach], initial=0):.1e}", ""]
    out += ["## synflow: zcnas (every BN removed, pruned) vs naive vs the reference's copy", "",
            "| | rho vs acc | tau vs acc |", "|---|---|---|"]
    for col in ("synflow", "synflow_naive", "synflow_reference"):
        v = df[col].to_numpy()
        out.append(f"| {col} | {rho(v, acc):.4f} | {tau(v, acc):.4f} |")
    s, sn, sr = (df[c].to_numpy() for c in ("synflow", "synflow_naive", "synflow_reference"))
    ok = np.isfinite(s)
    dz = sn[ok & zs] - s[ok & zs]
    shift = sr[ok] - s[ok]
    out += ["",
            f"- reference minus zcnas (log synflow), finite cells: mean {shift.mean():.3f}, "
            f"min {shift.min():.3f}, max {shift.max():.3f}; rank agreement {rho(sr, s):.4f}",
            f"- naive minus pruned (the zero-source biases), zero-source cells with a finite "
            f"zcnas value: median {np.median(dz):.2g}, max {dz.max():.2g}; cells whose output "
            f"is always zero: zcnas -inf, naive {', '.join(f'{v:.3g}' for v in sn[~ok])}",
            f"- cells without a zero-source edge: max |naive - pruned| "
            f"{np.max(np.where(sn[~zs] == s[~zs], 0.0, np.abs(sn[~zs] - s[~zs]))):.1e}", ""]
    checked = df[df[f"{OTHERS[0]}_pruned"].notna() | df[f"{OTHERS[0]}_naive"].notna()]
    if len(checked):
        out += ["## grad_norm, snip, jacov, grasp: naive vs pruned network (both contiguous)", "",
                "relative change |naive - pruned| / |pruned|; cells with an always-zero output "
                "apart (pruned: 0, or NaN for jacov; naive: rounding noise amplified by BN, "
                "so inf where it is not exactly 0)", "",
                "| proxy | group | cells | median | max |", "|---|---|---|---|---|"]
        groups = (("zero-source, live output",
                   checked["zero_source"] & ~checked["zero_output"]),
                  ("zero-source, zero output", checked["zero_source"] & checked["zero_output"]),
                  ("control (no zero-source edge)", ~checked["zero_source"]))
        for name in OTHERS:
            r = rel_change(checked[f"{name}_naive"], checked[f"{name}_pruned"])
            for label, mask in groups:
                if mask.any():
                    out.append(f"| {name} | {label} | {int(mask.sum())} | "
                               f"{r[mask].median():.1e} | {r[mask].max():.1e} |")
        live = checked["zero_source"] & ~checked["zero_output"]
        for name in OTHERS:
            pruned = checked[f"{name}_pruned"].to_numpy()
            naive = checked[f"{name}_naive"].to_numpy()
            a = checked["acc200"].to_numpy()
            out.append(f"- {name}: rho vs acc over the {len(checked)} checked cells "
                       f"pruned {rho(pruned, a):.4f}, naive {rho(naive, a):.4f}; rank "
                       f"agreement {rho(naive, pruned):.4f} (zero-source cells with a live "
                       f"output: {rho(naive[live], pruned[live]):.4f})")
        out.append("")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=400)
    parser.add_argument("--controls", type=int, default=20,
                        help="cells without a zero-source edge that also get the naive check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--from-csv", type=Path,
                        help="summarise this earlier OUT.csv instead of measuring again")
    args = parser.parse_args(argv)
    if args.from_csv:
        df = pd.read_csv(args.from_csv)
        head = [f"# Zero-source conv edges: zcnas vs the reference layout ({len(df)} cells)", "",
                f"Summary of `{args.from_csv.name}` (`python -m benchmarks.reference_fidelity "
                f"--from-csv {args.from_csv} --out {args.out}`). Accuracy: CIFAR-10 test "
                "accuracy after 200 epochs (compact NATS-Bench table).", ""]
        text = "\n".join(head + summarise(df)) + "\n"
        args.out.with_suffix(".md").write_text(text)
        print(text)
        return
    torch.set_num_threads(1)
    table = pd.read_csv(Path(args.data) / "nats-tss" / "tss_test_accuracy.csv")
    rows = np.random.default_rng(args.seed).choice(len(table), args.archs, replace=False)
    sample = table.iloc[np.sort(rows)]
    bank = InputBank("cifar10", seed=0, root=args.data, source="real")
    records = []
    controls = 0
    start = time.perf_counter()
    for k, (_, r) in enumerate(sample.iterrows()):
        zs = bool(zero_source_edges(r["arch"]))
        others = zs or controls < args.controls
        controls += others and not zs
        rec = {"index": int(r["index"]), "arch": r["arch"], "acc200": r["cifar10_test_200ep"],
               "zero_source": zs,
               "zero_source_reaching": any(dst in reaches_output(r["arch"])
                                           for _, dst in zero_source_edges(r["arch"])),
               "zero_output": zero_output(r["arch"])}
        rec.update(score_cell(r["arch"], bank, others))
        records.append(rec)
        print(f"[{k + 1}/{len(sample)} {time.perf_counter() - start:.0f}s] {r['arch']} "
              f"zs={zs} fisher {rec['fisher']:.4g} literal {rec['fisher_literal']:.4g}",
              flush=True)
    df = pd.DataFrame.from_records(records)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.10g")
    head = [f"# Zero-source conv edges: zcnas vs the reference layout ({len(df)} cells)", "",
            f"Measured by `python -m benchmarks.reference_fidelity --archs {args.archs} "
            f"--controls {args.controls} --seed {args.seed}` on {platform.machine()} CPU, one "
            f"thread, torch {torch.__version__}, {time.perf_counter() - start:.0f} s. "
            "Accuracy: CIFAR-10 test accuracy after 200 epochs (compact NATS-Bench table).", ""]
    text = "\n".join(head + summarise(df)) + "\n"
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
