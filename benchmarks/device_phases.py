"""Where one process's time goes per cell of the default suite on a device (a GPU above all).

On a GPU the default suite (synflow, naswot, stable 2 x 128) is bound by the CPU that builds
the networks and launches the kernels (results/benchmarks/gpu-h200.txt). This times, without a
profiler, one process on a seeded sample of topology cells, each phase closed by a wait for
the device:

- ``build``: a network built and initialised on the CPU, as ``ScoringContext.network`` does
  before it places it;
- ``place``: that network moved to the device (``Module.to``; its tensors one copy each);
- ``score``: the whole suite on the cell, as a worker scores a task (``score_task``: the
  networks built and placed, every pass, every proxy), and the proxies' own shares of it.

    python -m benchmarks.device_phases --device cuda --archs 40 --data ../shared/data
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from benchmarks._machine import cpu_name, emit

SUITE = "synflow,naswot,stable"


def main(argv: list[str] | None = None) -> str:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3, help="cells scored first, not timed")
    ap.add_argument("--suite", default=SUITE, help="the proxies (default: the default suite)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None, help="reference data (the real images)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    from zcnas.registry import create_proxies
    from zcnas.scoring import ScoringContext
    from zcnas.scoring.engine import init_scoring, score_task, select_archs

    device = torch.device(args.device)

    def wait() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    proxies = create_proxies(args.suite)
    state = init_scoring({"space": "nats-tss", "dataset": "cifar10", "seed": 0,
                          "device": str(device), "root": args.data,
                          "source": "real" if args.data else "synthetic",
                          "proxies": proxies, "threads": 1})
    archs = [i.arch for i in select_archs(str(args.archs + args.warmup), "nats-tss",
                                          root=args.data, seed=args.seed)]
    warm, archs = archs[:args.warmup], archs[args.warmup:]
    every = tuple(range(len(proxies)))
    for arch in warm:  # first kernels, cuDNN's choices, the input batches
        score_task(state, (arch, arch, every))
    wait()

    ms: dict[str, list[float]] = {k: [] for k in ("build", "place", "score")}
    own: dict[str, list[float]] = {p.name: [] for p in proxies}
    start_all = time.perf_counter()
    for arch in archs:
        ctx = ScoringContext(arch, device="cpu")
        t = time.perf_counter()
        net = ctx.network(channels_last=False)
        ms["build"].append(time.perf_counter() - t)
        wait()
        t = time.perf_counter()
        net.to(device)
        wait()
        ms["place"].append(time.perf_counter() - t)
        t = time.perf_counter()
        _tag, out, error = score_task(state, (arch, arch, every))
        wait()
        ms["score"].append(time.perf_counter() - t)
        if error:
            raise SystemExit(f"{arch}: {error}")
        for i, p in enumerate(proxies):
            own[p.name].append(out[i][1])
    total = time.perf_counter() - start_all
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    lines = [f"# one process's time per cell on {name} (CPU: {cpu_name()}), torch "
             f"{torch.__version__}, one intra-op thread; {args.suite}; {len(archs)} cells (seed "
             f"{args.seed}) after {len(warm)} to warm up, each phase closed by a wait for the "
             "device; no profiler",
             "", f"{'phase':<24}{'mean ms':>9}{'median ms':>11}"]

    def row(label: str, seconds: list[float]) -> str:
        return (f"{label:<24}{1e3 * statistics.fmean(seconds):>9.2f}"
                f"{1e3 * statistics.median(seconds):>11.2f}")

    lines += [row(key, values) for key, values in ms.items()]
    lines.append("of score, each proxy's own share (its passes split as the engine does):")
    lines += [row(f"  {key}", values) for key, values in own.items()]
    scored = sum(ms["score"])
    lines += ["", f"score alone: {len(archs) / scored:.2f} cells/s in one process "
                  f"({len(archs)} cells in {scored:.1f} s; the loop with the extra build and "
                  f"placement: {total:.1f} s)"]
    report = "\n".join(lines)
    emit(report, args.out)
    return report


if __name__ == "__main__":
    main()
