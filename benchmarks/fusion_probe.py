"""Would fused kernels close the default suite's gap to the kernel floor? Eager against
``torch.compile`` (inductor, CPU), side by side on the pass the suite spends most on.

``benchmarks.scoring_floor`` leaves the default suite at 1.5-1.7x its convolution floor on
this CPU; the rest of the wall is memory-bound batch norm, ReLU and node sums between the
convolutions. Inductor fuses exactly those element-wise and reduction ops into generated C++
loops (the convolutions stay oneDNN calls), so its speed-up bounds what fusion can give
without hand-written kernels.

For each of ``--cells`` seeded distinct cells (the scoring network: pruned, channels-last,
seeded weights) and one 128-image CIFAR-10 batch, one thread: the training pass the stable
proxy runs (forward, cross-entropy, backward into every weight), timed eager and compiled in
interleaved rounds (best of ``--reps`` each), and the compile seconds of the cell (its first
compiled call, less one compiled pass). Every cell is its own graph, so each is traced and
compiled afresh (a scoring run pays that once per distinct cell); inductor's on-disk cache
starts empty for the run, so later cells may reuse kernels generated for earlier ones, as they
would in a scoring run.

Both float32 passes are also compared with the same pass in float64 (contiguous, eager): the
relative L2 distance of all weight gradients together, ``||g - g64|| / ||g64||``. The report
ends with train-mode batch norm alone on a (128, 64, 8, 8) batch of mean 0 and of mean 5 in
both memory formats against float64: on the AMD EPYC the channels-last kernel's output is about
20x further from float64 than the contiguous kernel's, whatever the mean, so its error lies in
how it sums the batch statistics, not in a cancellation. The compiled pass keeps the
channels-last convolutions and computes batch norm in its own generated loops.

    python -m benchmarks.fusion_probe --data ../shared/data --out results/benchmarks/fusion-cpu.txt
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks._machine import cpu_name, emit
from benchmarks.scoring_speed import sample_archs
from zcnas._text import markdown_table
from zcnas.scoring import InputBank, ScoringContext


def train_pass(net, x, y) -> None:
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()


def grads(net) -> torch.Tensor:
    """Every weight gradient, flattened into one float64 vector (no gradient: zeros)."""
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach()
                      .double().flatten() for p in net.parameters()])


def distance(g: torch.Tensor, ref: torch.Tensor) -> float:
    return float((g - ref).norm() / ref.norm())


def best_time(func, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - start)
    return best


VERSIONS = ("eager, channels-last (the CPU default)", "eager, contiguous",
            "compiled, channels-last")


def probe_cell(arch: str, bank: InputBank, reps: int, rounds: int) -> dict:
    ctx = ScoringContext(arch, inputs=bank)
    (x, y), = bank.batches("real", 128, 1)
    net = ctx.network()  # channels-last, the CPU scoring default
    # train mode: the running statistics never reach the gradients; restored only so that every
    # version starts from the same state
    state = {k: v.clone() for k, v in net.state_dict().items()}
    exact = copy.deepcopy(net).double().to(memory_format=torch.contiguous_format)
    train_pass(exact, x.double().contiguous(), y)
    ref = grads(exact)
    flat = copy.deepcopy(net).to(memory_format=torch.contiguous_format)
    xc = x.contiguous()
    errors = []
    for model, inputs in ((net, x), (flat, xc)):
        train_pass(model, inputs, y)  # warm-up
        model.load_state_dict(state)
        train_pass(model, inputs, y)
        errors.append(distance(grads(model), ref))
    torch._dynamo.reset()  # a fresh graph cache per cell: no recompile limit
    compiled = torch.compile(net)
    net.load_state_dict(state)
    start = time.perf_counter()
    train_pass(compiled, x, y)
    first = time.perf_counter() - start
    errors.append(distance(grads(net), ref))
    calls = ((net, x), (flat, xc), (compiled, x))
    seconds = [float("inf")] * len(calls)
    for _ in range(rounds):
        for i, (model, inputs) in enumerate(calls):
            seconds[i] = min(seconds[i], best_time(lambda m=model, a=inputs: train_pass(m, a, y),
                                                   reps))
    return {"arch": arch, "seconds": seconds, "errors": errors,
            "compile": max(0.0, first - seconds[2])}


def batchnorm_lines() -> list[str]:
    """Train-mode batch norm alone, both memory formats, against float64."""
    bn = torch.nn.BatchNorm2d(64).train()
    out = []
    for mean in (0.0, 5.0):
        z = torch.randn(128, 64, 8, 8, generator=torch.Generator().manual_seed(0)) * 3 + mean
        with torch.no_grad():
            ref = copy.deepcopy(bn).double()(z.double())
            errs = [float((bn(t).double() - ref).abs().max())
                    for t in (z.contiguous(memory_format=torch.channels_last), z)]
        out.append(f"batch norm alone, (128, 64, 8, 8), mean {mean:g}, std 3: max |out - out64| "
                   f"channels-last {errs[0]:.1e}, contiguous {errs[1]:.1e}")
    return out


def run(n_cells: int, root, reps: int, rounds: int, seed: int) -> str:
    torch.set_num_threads(1)
    bank = InputBank("cifar10", seed=0, root=root)
    # an empty inductor cache for the run: the compile seconds of a fresh machine
    saved_dir = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="zcnas-inductor-") as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        try:
            results = [probe_cell(arch, bank, reps, rounds)
                       for arch in sample_archs(n_cells, seed)]
        finally:
            if saved_dir is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = saved_dir
    rows = []
    for i, r in enumerate(results):
        base = r["seconds"][0]
        for v, (name, sec, err) in enumerate(zip(VERSIONS, r["seconds"], r["errors"],
                                                 strict=True)):
            rows.append([i + 1 if v == 0 else "", name, f"{sec * 1e3:.0f}",
                         f"{base / sec:.2f}x", f"{err:.1e}",
                         f"{r['compile']:.0f}" if v == 2 else ""])
    total = [sum(r["seconds"][v] for r in results) for v in range(len(VERSIONS))]
    compile_s = [r["compile"] for r in results]
    saved = (total[0] - total[2]) / n_cells
    lines = [
        "# eager vs torch.compile (inductor) on the stable proxy's training pass, one thread",
        f"# machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}; "
        f"{n_cells} distinct cells (seed {seed}); one 128-image cifar10 batch; "
        f"best of {reps} x {rounds} interleaved rounds; inductor's cache empty at the start "
        "of the run",
        "",
        "cells: " + "; ".join(f"{i + 1} {r['arch']}" for i, r in enumerate(results)),
        "",
        markdown_table(rows, ["cell", "version", "ms per pass", "speed-up", "gradient error",
                              "compile s"]),
        "",
        "all cells, ms per pass: " + ", ".join(
            f"{name} {t / n_cells * 1e3:.0f} ({total[0] / t:.2f}x)"
            for name, t in zip(VERSIONS, total, strict=True)),
        "compile s per distinct cell, in order: " + ", ".join(f"{c:.0f}" for c in compile_s),
        f"the compile pays for itself after {statistics.mean(compile_s) / saved:,.0f} passes "
        "of a cell (the default suite runs two such passes per cell, for stable)"
        if saved > 0 else "the compiled pass is not faster",
        "gradient error: ||g - g64|| / ||g64|| over every weight, against the float64 pass",
        *batchnorm_lines(),
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=4)
    ap.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    emit(run(args.cells, args.data, args.reps, args.rounds, args.seed), args.out)


if __name__ == "__main__":
    main()
