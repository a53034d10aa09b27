"""Seconds per architecture of the default proxy suite, engine vs baseline vs compute floor.

Run (CPU, the numbers in results/benchmarks/scoring-cpu.txt)::

    python -m benchmarks.scoring_speed --archs 40 --workers 2 --data ../shared/data \
        --out results/benchmarks/scoring-cpu.txt

Side by side, in one run, on the same seeded sample of topology-space architectures:

- **baseline**: one proxy at a time, a fresh context (so a fresh network build and its own
  passes) for every proxy, every architecture scored (no isomorph dedup), one process with
  torch's default threads: what scoring proxy by proxy in a loop costs;
- **engine**: :func:`zcnas.scoring.engine.score_archs`: one context per architecture (shared
  builds and passes), a process pool of ``--workers`` single-threaded workers;
- **floor**: the FLOPs of the engine's work (forward + backward of the networks it builds,
  NASWOT's kernel matmuls, synflow's float64 pass) divided by this machine's measured float32
  matmul rate (a 2048^3 matmul on all cores).

The full topology space (15,625 architectures, 6,466 distinct) is projected from the per-arch
times: the baseline scores all 15,625, the engine the 6,466 distinct ones.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks._machine import as_scoring_worker, cpu_name, emit
from zcnas.models.network import count_flops
from zcnas.registry import create_scorers
from zcnas.scoring import InputBank, ScoringContext
from zcnas.scoring.engine import make_items, score_archs
from zcnas.spaces import nats_tss

SUITE = "synflow,naswot,stable"
FULL, DISTINCT = 15_625, 6_466


def sample_archs(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct-class architectures, uniformly from the 15,625 (seeded)."""
    rng = np.random.default_rng(seed)
    seen, out = set(), []
    for i in rng.permutation(FULL):
        cell = nats_tss.Cell(tuple(nats_tss.OPS[(int(i) // 5**k) % 5] for k in range(6)))
        key = nats_tss.canonical_key(cell)
        if key not in seen:
            seen.add(key)
            out.append(str(cell))
        if len(out) == n:
            break
    return out


def matmul_rate(threads: int, size: int = 2048, reps: int = 8) -> float:
    """Measured float32 matmul FLOP/s with ``threads`` torch threads."""
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        for _ in range(2):
            a @ b
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        return 2 * size**3 * reps / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(prev)


def baseline(archs: list[str], suite: str, bank: InputBank) -> float:
    """Seconds for one-proxy-at-a-time scoring of every arch (fresh context per proxy)."""
    proxies = create_scorers(suite)
    start = time.perf_counter()
    for arch in archs:
        for p in proxies:
            ctx = ScoringContext(arch, inputs=bank, requests=p.requests())
            p.score(ctx)
    return time.perf_counter() - start


def engine(archs: list[str], suite: str, root, workers: int) -> float:
    items = make_items(archs, "nats-tss")
    start = time.perf_counter()
    score_archs(items, create_scorers(suite), root=root, workers=workers, progress=False)
    return time.perf_counter() - start


def work_flops(archs: list[str], bank: InputBank) -> float:
    """FLOPs of the engine's work for the default suite on ``archs``."""
    total = 0.0
    for arch in archs:
        ctx = ScoringContext(arch, inputs=bank)
        net = ctx.network(relu_probes=True, channels_last=False)
        fwd = 2.0 * count_flops(net, ctx.resolution)  # multiply-adds -> FLOPs, one image
        total += 3 * fwd * 128 * 2  # stable: 2 batches x 128, forward + backward (~2x)
        dims = []
        net.eval()
        seen: dict[int, int] = {}

        def hook(_m, inp, dims=dims, seen=seen):
            if id(inp[0]) not in seen:
                seen[id(inp[0])] = 1
                dims.append(inp[0][0].numel())

        handles = [m.register_forward_pre_hook(hook) for m in net.modules()
                   if isinstance(m, nn.ReLU)]
        with torch.no_grad():
            net(torch.zeros(1, 3, ctx.resolution, ctx.resolution))
        for h in handles:
            h.remove()
        total += sum(2.0 * 128 * 128 * d for d in dims)  # naswot: c c^T per distinct input
        total += 3 * fwd  # synflow: one image, forward + backward (float64)
    return total


def run(n_archs: int, workers: int, root, seed: int = 0) -> str:
    archs = sample_archs(n_archs, seed)
    bank = InputBank("cifar10", seed=0, root=root)
    bank.batches("real", 128, 2)  # load the images outside the timed region
    as_scoring_worker()  # the GC and page faults are not the baseline's either
    t_base = baseline(archs, SUITE, bank)
    t_eng = engine(archs, SUITE, root, workers)
    flops = work_flops(archs, bank)
    rate = matmul_rate(os.cpu_count() or 1)
    t_floor = flops / rate
    per_base, per_eng, per_floor = t_base / n_archs, t_eng / n_archs, t_floor / n_archs
    full_base, full_eng = per_base * FULL, per_eng * DISTINCT
    lines = [
        f"# zcnas scoring speed, default suite {SUITE} (stable 2 x 128, naswot 128), cifar10",
        f"# machine: {cpu_name()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}; {n_archs} distinct archs (seed {seed}), "
        f"engine workers {workers}",
        f"# matmul rate {rate / 1e9:.1f} GFLOP/s; engine work {flops / n_archs / 1e9:.2f} "
        "GFLOP per arch",
        "",
        f"{'':28s}{'s/arch':>10s}{'full tss (min)':>16s}",
        f"{'baseline (1 proxy at a time)':28s}{per_base:10.3f}{full_base / 60:16.1f}"
        f"   (15,625 archs)",
        f"{'engine':28s}{per_eng:10.3f}{full_eng / 60:16.1f}   (6,466 distinct)",
        f"{'compute floor':28s}{per_floor:10.3f}{per_floor * DISTINCT / 60:16.1f}",
        "",
        f"engine vs baseline, per arch: {per_base / per_eng:.2f}x; full space (with isomorph "
        f"dedup): {full_base / full_eng:.2f}x",
        f"engine vs floor: {per_eng / per_floor:.2f}x",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", type=int, default=40)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    report = run(args.archs, args.workers, args.data, args.seed)
    emit(report, args.out)


if __name__ == "__main__":
    main()
