"""What zcnas's convolution double backward is worth against autograd's own, side by side.

Run (CPU; the numbers in results/benchmarks/double-backward-cpu.txt)::

    python -m benchmarks.double_backward --archs 30 --rounds 3 --data ../shared/data \
        --out results/benchmarks/double-backward-cpu.txt

foresight's six proxies (grad_norm, snip, grasp, fisher, jacov, synflow; batch 64) as zcnas
scores them, one thread, in two versions interleaved per cell (best of ``--rounds``, the order
alternating per cell and round):

- **autograd's own**: convolutions' double backward as autograd writes it (the weight's
  product a convolution with the transposed ``gO`` as its kernel);
- **zcnas**: inside the Hessian-vector product, both products by ``convolution_backward``
  (:func:`zcnas.models.hessian.conv_double_backward`).

autograd's own is rebuilt by switching the block off for the length of its run
(``unittest.mock.patch``); nothing else changes. The report also gives the largest relative
difference of GraSP's score from autograd's own (float rounding).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from unittest import mock

import torch

from benchmarks._machine import cpu_name, emit
from benchmarks.foresight_speed import (
    CONV_GROUPS,
    ZCNAS,
    conv_group,
    live_convs,
    parse_timing_options,
)
from benchmarks.scoring_speed import sample_archs
from zcnas.registry import create_scorers
from zcnas.scoring import InputBank, ScoringContext
from zcnas.scoring.engine import freeze_heap


def _autograds_own() -> contextlib.AbstractContextManager:
    return mock.patch("zcnas.scoring.passes.conv_double_backward", contextlib.nullcontext)


VERSIONS = {"autograd's own": _autograds_own, "zcnas": contextlib.nullcontext}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = parse_timing_options(ap)
    archs = sample_archs(args.archs, args.seed)
    bank = InputBank("cifar10", seed=0, root=args.data)
    proxies = create_scorers(",".join(ZCNAS))
    requests = [r for p in proxies for r in p.requests()]

    def run(arch: str) -> tuple[float, float]:
        start = time.perf_counter()
        ctx = ScoringContext(arch, inputs=bank, requests=requests)
        scores = {p.name: p.score(ctx) for p in proxies}
        return time.perf_counter() - start, float(scores["grasp"])

    run(archs[0])
    freeze_heap()
    names = list(VERSIONS)
    totals = {name: {} for name in names}  # group -> [cells, seconds]
    worst = dict.fromkeys(names, 0.0)
    for i, arch in enumerate(archs):
        best = dict.fromkeys(names, float("inf"))
        grasp = {}
        for r in range(args.rounds):
            k = (i * args.rounds + r) % len(names)
            for name in names[k:] + names[:k]:
                with VERSIONS[name]():
                    seconds, grasp[name] = run(arch)
                best[name] = min(best[name], seconds)
        c = live_convs(arch)
        for name in names:
            ref = grasp[names[0]]
            worst[name] = max(worst[name], abs(grasp[name] - ref) / max(abs(ref), 1e-30))
            for key in ("all", conv_group(c)):
                g = totals[name].setdefault(key, [0, 0.0])
                g[0] += 1
                g[1] += best[name]

    lines = [
        "# foresight's six proxies in zcnas: autograd's conv double backward against zcnas's",
        f"# machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, one "
        f"thread; {len(archs)} distinct cells (seed {args.seed}), batch 64, interleaved per "
        f"cell, best of {args.rounds} round(s); allocator: {args.allocator}",
        "",
        f"{'version':16s}{'s/cell':>8s}{'vs own':>8s}   by live convolutions "
        f"(0-1 / 2 / 3 or more, s/cell){'':4s}GraSP max rel. diff",
    ]
    own = totals[names[0]]["all"][1]
    for name in names:
        n, s = totals[name]["all"]
        groups = " / ".join(f"{totals[name][k][1] / totals[name][k][0]:.3f}"
                            if k in totals[name] else "-" for k in CONV_GROUPS)
        lines.append(f"{name:16s}{s / n:8.3f}{own / s:7.3f}x   {groups:40s}"
                     f"{worst[name]:.1e}")
    emit("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
