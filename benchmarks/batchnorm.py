"""Train-mode batch norm: the compiled kernels (zcnas.runtime.kernels) against torch's.

Two parts, one thread, on this machine:

1. **Kernels**: forward and backward of one BN at the shapes the NB201 networks run
   (float32, channels-last and NCHW, mean 5 and std 3 so the statistics are not trivial), best of
   ``--reps``; each side's largest error against torch's float64 batch norm, relative to the
   largest float64 value.
2. **Suites**: the default suite and the cheapest training-free ensemble at least as good as
   ``ensemble:zcnas`` on the held-out half (results/correlations/fast-ensemble.md), scored
   with torch's BN and with the kernels, interleaved per cell (a fresh context each), best of
   ``--rounds`` rounds over ``--archs`` seeded distinct cells; and each proxy's largest
   relative score difference between the two::

    python -m benchmarks.batchnorm --data ../shared/data --out results/benchmarks/batchnorm-cpu.txt
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

import torch

from benchmarks._machine import cpu_name, emit
from benchmarks.scoring_speed import sample_archs
from zcnas.models.batchnorm import BatchNorm2d
from zcnas.registry import create_scorers
from zcnas.runtime import kernels
from zcnas.runtime.allocator import tune_allocator
from zcnas.scoring import InputBank, ScoringContext
from zcnas.scoring.engine import freeze_heap

SUITES = {
    "default suite": "synflow,naswot,stable",
    "cheapest match": "meco,stable(batch_size=32),jacov(batch_size=32),gradsign(batch_size=16),"
                      "az_progressivity,az_trainability",
    "ensemble:zcnas": "meco,stable,jacov,gradsign,az_progressivity,az_trainability",
}
#: (batch, channels, side): the cells' BN shapes of the three stages
SHAPES = [(b, c, s) for b in (128, 32) for c, s in ((16, 32), (32, 16), (64, 8))]
#: channels-last (the CPU scoring default) and NCHW (foresight's recipes, jacov, MeCo)
LAYOUTS = {"channels-last": torch.channels_last, "NCHW": torch.contiguous_format}


def _best(fn, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _error(got: torch.Tensor, ref: torch.Tensor) -> float:
    return float((got.double() - ref).abs().max() / ref.abs().max())


def kernel_lines(reps: int) -> list[str]:
    lines = ["## one batch norm, forward and backward (ms, best of reps)", "",
             "| layout | shape (N, C, H, W) | copy | torch fwd | kernels fwd | speed-up "
             "| torch bwd | kernels bwd | speed-up | error torch / kernels (y, dx, dw) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    gen = torch.Generator().manual_seed(0)
    for (layout, fmt), (n, c, s) in itertools.product(LAYOUTS.items(), SHAPES):
        # torch's side: torch's own module; the kernels' side: zcnas's, the same parameters
        x = (torch.randn(n, c, s, s, generator=gen) * 3 + 5).contiguous(memory_format=fmt)
        g = torch.randn(n, c, s, s, generator=gen).contiguous(memory_format=fmt)
        ours = BatchNorm2d(c, track_running_stats=False)
        with torch.no_grad():
            ours.weight.uniform_(0.5, 1.5, generator=gen)
            ours.bias.normal_(generator=gen)
        theirs = torch.nn.BatchNorm2d(c, track_running_stats=False)
        theirs.load_state_dict(ours.state_dict())
        xr = x.detach().requires_grad_(True)
        ref = torch.nn.functional.batch_norm(
            xr.double(), None, None, ours.weight.double(), ours.bias.double(), True, 0.0,
            ours.eps)
        ref_grads = torch.autograd.grad(ref, [xr, ours.weight], g.double())
        row, errs = [], []
        for bn in (theirs, ours):
            params = [xr, bn.weight]
            y = bn(xr)
            grads = torch.autograd.grad(y, params, g)
            errs.append(tuple(_error(a, b) for a, b in
                              ((y, ref), (grads[0], ref_grads[0]), (grads[1], ref_grads[1]))))
            fwd = _best(lambda bn=bn, x=x: bn(x), reps)
            both = _best(lambda bn=bn, xr=xr, p=params, g=g: torch.autograd.grad(bn(xr), p, g),
                         reps)
            row.append((fwd, both - fwd))
        (tf, tb), (kf, kb) = row
        copy = _best(lambda x=x: x.clone(), reps)
        err = " / ".join(", ".join(f"{e:.0e}" for e in side) for side in errs)
        lines.append(f"| {layout} | ({n}, {c}, {s}, {s}) | {copy * 1e3:.3f} "
                     f"| {tf * 1e3:.3f} | {kf * 1e3:.3f} "
                     f"| {tf / kf:.2f}x | {tb * 1e3:.3f} | {kb * 1e3:.3f} | {tb / kb:.2f}x "
                     f"| {err} |")
    return lines


def suite_lines(name: str, spec: str, archs: list[str], bank, rounds: int) -> list[str]:
    proxies = create_scorers(spec)
    times = {False: [0.0] * rounds, True: [0.0] * rounds}
    scores: dict[bool, dict[tuple[str, str], float]] = {False: {}, True: {}}
    for r in range(rounds):
        for arch in archs:
            for use in ((False, True) if r % 2 == 0 else (True, False)):
                os.environ["ZCNAS_KERNELS"] = "1" if use else "0"
                t0 = time.perf_counter()
                ctx = ScoringContext(arch, inputs=bank,
                                     requests=[q for p in proxies for q in p.requests()])
                for p in proxies:
                    scores[use][(arch, p.spec())] = p.score(ctx)
                times[use][r] += time.perf_counter() - t0
    torch_s, ours_s = (min(times[u]) / len(archs) for u in (False, True))
    lines = [f"## {name}: {spec}", "",
             f"s/cell, best of {rounds} rounds over {len(archs)} cells, interleaved per cell:",
             f"  torch's batch norm   {torch_s:.3f}",
             f"  the kernels          {ours_s:.3f}   ({torch_s / ours_s:.3f}x)",
             "  rounds (torch / kernels): " + ", ".join(
                 f"{a / len(archs):.3f} / {b / len(archs):.3f}"
                 for a, b in zip(times[False], times[True], strict=True)),
             "largest relative score difference, kernels against torch's batch norm:"]
    for p in proxies:
        diffs = []
        for arch in archs:
            a, b = scores[False][(arch, p.spec())], scores[True][(arch, p.spec())]
            diffs.append(0.0 if a == b else abs(a - b) / max(abs(a), 1e-12))
        lines.append(f"  {p.spec():28s} {max(diffs):.1e}")
    return lines + [""]


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--suites", default="default suite,cheapest match",
                    help=f"comma-separated, of: {', '.join(SUITES)}")
    ap.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    suites = [s.strip() for s in args.suites.split(",") if s.strip()]
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        ap.error(f"unknown suite {unknown[0]!r}; valid: {', '.join(SUITES)}")
    torch.set_num_threads(1)
    before = os.environ.get("ZCNAS_KERNELS")
    if kernels.library() is None:
        ap.error(f"the kernels are not available here: {kernels.reason}")
    bank = InputBank("cifar10", seed=0, root=args.data)
    freeze_heap()
    tune_allocator()
    archs = sample_archs(args.archs, args.seed)
    lines = ["# train-mode batch norm: the compiled kernels against torch's, one thread",
             f"# machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}; "
             f"allocator tuned, heap frozen (as a scoring worker)", ""]
    try:
        lines += kernel_lines(args.reps) + [
            "", "copy: x.clone(); error: largest |value - float64 value| / largest |float64 "
            "value|; bwd: the fwd+bwd time less the fwd time; NCHW's backward is torch's kernel "
            "on both sides (given the kernels' statistics on theirs): the difference is the "
            "kernels' autograd Function (Python), which shows at small batches", ""]
        for name in suites:
            lines += suite_lines(name, SUITES[name], archs, bank, args.rounds)
    finally:
        if before is None:
            os.environ.pop("ZCNAS_KERNELS", None)
        else:
            os.environ["ZCNAS_KERNELS"] = before
    report = "\n".join(lines).rstrip()
    emit(report, args.out)
    return report


if __name__ == "__main__":
    main()
