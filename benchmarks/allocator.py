"""What keeping freed memory in the process is worth: glibc's defaults against
:func:`zcnas.runtime.allocator.tune_allocator`, side by side.

Run (CPU; the numbers in results/benchmarks/allocator-cpu.txt)::

    python -m benchmarks.allocator --archs 20 --data ../shared/data \
        --out results/benchmarks/allocator-cpu.txt

The thresholds cannot be set back once set, so each side runs in a process of its own: every
round starts one child process with glibc's defaults and one with the allocator tuned (the
order alternating between rounds, never both at once), and each child scores the same seeded
distinct cells with three proxy sets, a fresh :class:`ScoringContext` per cell and set, one
thread, its heap frozen as a scoring worker's (:func:`zcnas.scoring.engine.freeze_heap`):

- foresight's six (``grad_norm,snip,grasp,fisher,jacov,synflow``, batch 64:
  ``benchmarks.foresight_speed``);
- the default suite (``synflow,naswot,stable``);
- the cheapest training-free ensemble at least as good as ``ensemble:zcnas`` on the held-out
  half (its components: ``results/correlations/fast-ensemble.md``).

Per cell and set, each side's best round counts; the report gives the mean seconds, page
faults (``ru_minflt``) and system time per cell of each side. The children's first cell is
scored once untimed (imports, first allocations).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

from benchmarks._machine import cpu_name, emit
from benchmarks.foresight_speed import ZCNAS as FORESIGHT_SIX
from benchmarks.foresight_speed import timing_options
from benchmarks.scoring_speed import SUITE, sample_archs

SETS = {
    "foresight's six": ",".join(FORESIGHT_SIX),
    "default suite": SUITE,
    "ensemble match": "meco,stable(batch_size=32),jacov(batch_size=32),gradsign(batch_size=16),"
                      "az_progressivity,az_trainability",
}
SIDES = ("glibc defaults", "tuned")


def child(side: str, archs: list[str], data: str | None) -> None:
    """Score every cell with every set; one JSON line per (cell, set) on stdout."""
    from zcnas.registry import create_scorers
    from zcnas.runtime.allocator import tune_allocator
    from zcnas.scoring import InputBank, ScoringContext
    from zcnas.scoring.engine import freeze_heap

    torch.set_num_threads(1)
    if side == "tuned" and not tune_allocator():
        raise SystemExit("error: this process's allocator cannot be tuned (not glibc)")
    bank = InputBank("cifar10", seed=0, root=data)
    sets = {name: create_scorers(spec) for name, spec in SETS.items()}

    def score(arch: str, proxies: list) -> None:
        ctx = ScoringContext(arch, inputs=bank,
                             requests=[r for p in proxies for r in p.requests()])
        for p in proxies:
            p.score(ctx)

    for proxies in sets.values():
        score(archs[0], proxies)
    freeze_heap()
    for arch in archs:
        for name, proxies in sets.items():
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            score(arch, proxies)
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
            print(json.dumps({"arch": arch, "set": name, "seconds": seconds,
                              "faults": after.ru_minflt - before.ru_minflt,
                              "system": after.ru_stime - before.ru_stime}), flush=True)


def run_child(side: str, args: argparse.Namespace) -> list[dict]:
    cmd = [sys.executable, "-m", "benchmarks.allocator", "--child", side,
           "--archs", str(args.archs), "--seed", str(args.seed)]
    if args.data:
        cmd += ["--data", args.data]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"error: the {side} child failed: {out.stderr.strip()[-500:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    # not parse_timing_options: the parent times nothing, and the glibc side's children
    # must keep glibc's defaults
    args = timing_options(ap, archs=20, rounds_help="child processes per side; each cell's "
                                                    "best counts (default 2)")
    archs = sample_archs(args.archs, args.seed)
    if args.child:
        child(args.child, archs, args.data)
        return

    best: dict[tuple[str, str, str], dict] = {}  # (side, set, arch) -> the best round's row
    for r in range(args.rounds):
        for side in (SIDES if r % 2 == 0 else SIDES[::-1]):
            for row in run_child(side, args):
                key = (side, row["set"], row["arch"])
                if key not in best or row["seconds"] < best[key]["seconds"]:
                    best[key] = row

    def mean(side: str, name: str, field: str) -> float:
        rows = [best[(side, name, a)][field] for a in archs]
        return sum(rows) / len(rows)

    lines = [
        "# glibc's malloc defaults against zcnas.runtime.allocator.tune_allocator, side by side",
        f"# machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, one "
        f"thread; {len(archs)} distinct cells (seed {args.seed}); {args.rounds} child "
        "process(es) per side, alternating, one at a time; per cell and set each side's best",
        "",
        f"{'proxy set':18s}{'side':16s}{'s/cell':>8s}{'faults/cell':>13s}{'system s':>10s}"
        f"{'speed-up':>10s}",
    ]
    for name in SETS:
        plain = mean(SIDES[0], name, "seconds")
        for side in SIDES:
            s = mean(side, name, "seconds")
            lines.append(f"{name:18s}{side:16s}{s:8.3f}{mean(side, name, 'faults'):13.0f}"
                         f"{mean(side, name, 'system'):10.3f}"
                         + (f"{plain / s:9.2f}x" if side == "tuned" else ""))
    lines.append("(faults and system seconds are the best round's, per cell)")
    emit("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
