"""The stable proxy's statistics: its layers side by side against one layer at a time.

MFNAS's stable proxy bins every counted weight's |gradient| on every batch, picks the bin the
cells share most, and sums, per layer, |mean| / std over the weights in that bin. Its cost does
not grow with the batch: about 20 ms per cell at NB201's ~600,000 cell weights, 2-20% of the
proxy (2 x 128 or 2 x 32 images) on one CPU thread; on an H200, per layer, about 19 ms per
cell (a dozen small kernel launches and three waits for the device per layer), side by side
3.7 ms (results/benchmarks/gpu-h200.txt). ``stable_score`` lays the layers side by side (a
few whole-matrix operations, one wait per step) and bins by the float bits (two table look-ups
instead of a binary search); ``stable_score_per_layer`` is the computation one layer at a
time. Both on the same gradients, interleaved per cell, best of
``--rounds``; the scores must be bitwise equal::

    python -m benchmarks.stable_stats --archs 30 --data ../shared/data \
        --out results/benchmarks/stable-stats-cpu.txt
"""

from __future__ import annotations

import argparse
import struct
import time
from pathlib import Path

import torch

from benchmarks._machine import cpu_name, emit


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-sizes", default="128,32")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None, help="reference data (the real images)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    from zcnas.models import block_indices
    from zcnas.scoring import InputBank, ScoringContext
    from zcnas.scoring.engine import select_archs
    from zcnas_proxies.stable import Stable, stable_score, stable_score_per_layer

    torch.set_num_threads(1)
    device = torch.device(args.device)
    archs = [i.arch for i in select_archs(str(args.archs), "nats-tss", root=args.data,
                                          seed=args.seed)]
    bank = InputBank("cifar10", seed=0, root=args.data, device=device,
                     source="real" if args.data else "synthetic")
    ways = {"per layer": stable_score_per_layer, "side by side": stable_score}

    def timed(fn, grads, cells):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        value = fn(grads, "sum", cells)
        return time.perf_counter() - start, value

    lines = ["# the stable proxy's statistics: per layer against side by side",
             f"# machine: {cpu_name() if device.type == 'cpu' else torch.cuda.get_device_name()}"
             f", torch {torch.__version__}, one CPU thread; {len(archs)} cells (seed {args.seed}), "
             f"each way on the same gradients, interleaved, best of {args.rounds} per cell",
             "", f"{'images':<10}{'way':<15}{'ms/cell':>9}{'speed-up':>10}  bitwise equal"]
    for bs in (int(b) for b in args.batch_sizes.split(",")):
        proxy = Stable(batch_size=bs)
        best = {w: [] for w in ways}
        equal = 0
        for i, arch in enumerate(archs):
            ctx = ScoringContext(arch, inputs=bank, device=device, requests=proxy.requests())
            result = ctx.run_pass(proxy.requests()[0])
            grads = result.grads[: proxy.n_batches]
            cells = block_indices(result.model, proxy="stable")
            times = {w: float("inf") for w in ways}
            values = {}
            for r in range(args.rounds):
                for w in (list(ways) if (i + r) % 2 == 0 else list(ways)[::-1]):
                    took, values[w] = timed(ways[w], grads, cells)
                    times[w] = min(times[w], took)
            for w in ways:
                best[w].append(times[w])
            equal += len({struct.pack("<d", v) for v in values.values()}) == 1
        base = None
        for w in ways:
            ms = 1e3 * sum(best[w]) / len(archs)
            gain = "" if base is None else f"{base / ms:9.2f}x"
            base = ms if base is None else base
            note = f"  {equal}/{len(archs)}" if w == "side by side" else ""
            lines.append(f"{f'2 x {bs}':<10}{w:<15}{ms:9.2f}{gain:>10}{note}")
    report = "\n".join(lines)
    emit(report, args.out)
    return report


if __name__ == "__main__":
    main()
