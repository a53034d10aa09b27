"""The search engine's own cost, this tree against an earlier revision, side by side.

Both trees run the same searches (NATS-Bench topology space, CIFAR-10 budget of 20,000
simulated seconds, the zero-cost stage on ``ensemble:mean_rank(params,flops)`` read from one
score store filled beforehand, so every stored cost is the same for both and the runs are
deterministic). The trees alternate run by run in fresh processes, and every field of every
result except its wall time must be equal: a change that only makes the engine faster keeps
the searches bitwise the same.

A cheap fitness makes MFEA evaluate the whole space within the budget (6,466 zero-cost
evaluations), which is where bookkeeping that grows with the history shows.

Run::

    ZCNAS_DATA=../shared/data .venv/bin/python -m benchmarks.search_overhead --against 3bf09e0 \\
        --out results/benchmarks/search-overhead-cpu.txt
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._machine import cpu_name, emit

ROOT = Path(__file__).resolve().parents[1]
FITNESS = "ensemble:mean_rank(params,flops)"

RUNNER = r"""
import json, sys, time
tree, store, data, method, seed, fitness = sys.argv[1:7]
sys.path.insert(0, tree)
import zcnas
assert zcnas.__file__.startswith(tree), zcnas.__file__
from zcnas.experiments.protocol import _open, run_one
from zcnas.runtime import ScoreStore
from zcnas.search import SearchConfig
bench = _open(data, "auto", "nats-tss")
cfg = SearchConfig(method=method, seed=int(seed), dataset="cifar10", fitness=fitness)
with ScoreStore(store, readonly=True) as st:
    t = time.perf_counter()
    r = run_one(cfg, root=data, store=st, bench=bench).to_dict()
    wall = time.perf_counter() - t
r.pop("wall_seconds")
print(json.dumps({"wall": wall, "result": r}, sort_keys=True, default=str))
"""


def fill_store(path: Path, data: str) -> None:
    """The store both trees' fitness reads: params and flops of every cell, filled by the CLI
    (which also writes them as a table beside it)."""
    subprocess.run([sys.executable, "-m", "zcnas", "score", "--space", "nats-tss", "--archs", "all",
                    "--proxies", "params,flops", "--data", data, "--executor", "inprocess",
                    "--store", str(path), "--out", str(path.with_suffix("")), "--no-progress"],
                   check=True, capture_output=True)


def run(tree: Path, store: Path, data: str, method: str, seed: int) -> dict:
    out = subprocess.run([sys.executable, "-c", RUNNER, str(tree), str(store), data, method,
                          str(seed), FITNESS], capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(tree)})
    if out.returncode != 0:
        raise SystemExit(f"{tree}: {method} seed {seed} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", required=True, help="the earlier revision (a git ref)")
    ap.add_argument("--methods", default="rea,ls,mfnas,mfea")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2, help="runs of each (method, seed) per tree")
    ap.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if not args.data:
        raise SystemExit("give --data or set ZCNAS_DATA (the search reads the lookup table)")
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.against],
                         capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base),
                        rev], check=True)
        try:
            store = Path(tmp) / "scores.sqlite"
            fill_store(store, args.data)
            walls: dict[tuple[str, str], list[float]] = {}
            differ: list[str] = []
            for method in args.methods.split(","):
                for seed in range(args.seeds):
                    results = {}
                    for _ in range(args.reps):
                        for name, tree in ((rev, base), ("this tree", ROOT)):
                            r = run(tree, store, args.data, method, seed)
                            walls.setdefault((method, name), []).append(r["wall"])
                            results.setdefault(name, []).append(r["result"])
                    first = results[rev][0]
                    if any(x != first for xs in results.values() for x in xs):
                        differ.append(f"{method} seed {seed}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           check=False)
    lines = [f"Search engine cost: {rev} against this tree, NATS-Bench topology space, CIFAR-10 "
             f"budget 20,000 s, zero-cost stage {FITNESS} from one filled store; "
             f"{args.seeds} seeds x {args.reps} runs per tree, the trees alternating run by run "
             "(fresh processes; wall of `run_one`, with the imports it makes on first use).",
             "",
             f"| method | {rev} median s | this tree median s | speed-up |", "|---|---|---|---|"]
    for method in args.methods.split(","):
        a = statistics.median(walls[(method, rev)])
        b = statistics.median(walls[(method, "this tree")])
        lines.append(f"| {method} | {a:.2f} | {b:.2f} | {a / b:.2f}x |")
    lines += ["", "Results (every field but the wall time) equal between the trees and across "
              f"runs: {'yes' if not differ else 'NO: ' + ', '.join(differ)}"]
    report = f"Machine: {cpu_name()}, {os.cpu_count()} cores\n\n" + "\n".join(lines)
    emit(report, Path(args.out) if args.out else None)


if __name__ == "__main__":
    main()
