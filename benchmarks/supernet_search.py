"""The supernet methods side by side on this CPU: ``genas``, ``gevonas``, ``ftga``, ``oneshot``
and proxy-only ``mfea``, CIFAR-10, the same wall-clock budget per run, several seeds; the
200-epoch test accuracy of each choice (read from the lookup, never shown to the search) and
where each run's seconds went.

Run the searches with ``zcnas search`` (checkpointed: a re-run resumes, so the protocol can run
in parts), then this script writes the table::

    zcnas search --method genas,gevonas,ftga,oneshot --budget 300 --seeds 3 --workers 2 \\
        --data ../shared/data --out results/search/supernet-cpu/trains \\
        --param warmup_epochs=15 --param population=20 --param train_epochs=1 \\
        --param stage_epochs=3 --param finetune_epochs=1
    zcnas search --method mfea --ladder proxy --budget 300 --seeds 3 --workers 2 \\
        --data ../shared/data --out results/search/supernet-cpu/mfea-proxy \\
        --param population_size=20 --param tournament_size=5
    zcnas search --method oneshot,genas,gevonas,ftga --budget 300 --seeds 3 --workers 2 \\
        --data ../shared/data --out results/search/supernet-cpu/trains-pool2 \\
        --param warmup_epochs=15 --param population=20 --param train_epochs=1 \\
        --param stage_epochs=3 --param finetune_epochs=1 --param supernets=2
    python -m benchmarks.supernet_search results/search/supernet-cpu

The third command runs the four supernet methods with a pool of two supernets (the mean of two
independently seeded supernets' held-out losses, ``zcnas.fidelity.supernet.SupernetPool``) at
the same budget; their rows read ``genas (2 supernets)`` and so on.

It writes ``README.md`` (the tables) and ``results.json`` (every finished run's result, the
per-run checkpoints under ``*/runs/`` being too large to commit) beside the output folders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from zcnas._text import markdown_table

METHODS = ("genas", "gevonas", "ftga", "oneshot", "mfea")


def label(run: dict) -> str:
    """The method, with its supernet pool when it has more than one supernet."""
    method = run["config"]["method"]
    k = int(run["config"].get("params", {}).get("supernets", 1))
    return f"{method} ({k} supernets)" if k > 1 else method


def order_key(name: str) -> tuple:
    """The paper methods in a fixed order, each followed by its pools (by size); others
    after."""
    method, _, pool = name.partition(" (")
    size = int(pool.split()[0]) if pool else 1
    return (METHODS.index(method) if method in METHODS else len(METHODS), method, size)


def run_key(result: dict) -> str:
    """A run is its whole configuration (method, seed, budget, parameters, ...)."""
    return json.dumps(result["config"], sort_keys=True)


def load(root: Path) -> list[dict]:
    """Every finished run: the checkpoints under ``*/runs/`` on this machine, and the results
    of ``results.json`` (written by an earlier call) that no checkpoint here replaces (same
    configuration), so a protocol run in parts, or on several machines, keeps every finished
    run's row. A row stays until it is removed from ``results.json``, even when its output
    folder is gone."""
    found = {}
    for f in sorted(root.glob("*/runs/*.json")):
        state = json.loads(f.read_text())
        if state.get("result") is not None:
            found[run_key(state["result"])] = state["result"]
    kept = root / "results.json"
    earlier = json.loads(kept.read_text()) if kept.exists() else []
    return [r for r in earlier if run_key(r) not in found] + list(found.values())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", help="folder holding the protocol's output folders")
    args = ap.parse_args(argv)
    root = Path(args.root)
    runs = load(root)
    if not runs:
        sys.exit(f"no finished runs under {root}")
    by: dict[str, list[dict]] = {}
    for r in runs:
        by.setdefault(label(r), []).append(r)
    order = sorted(by, key=order_key)
    summary, detail = [], []
    for m in order:
        rs = sorted(by[m], key=lambda r: r["config"]["seed"])
        acc = [r["reported"] for r in rs]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        summary.append([m, len(rs), f"{statistics.mean(acc):.2f} +- {sd:.2f}",
                        f"{min(acc):.2f} / {max(acc):.2f}",
                        f"{statistics.mean(r['cost'] for r in rs):.0f}",
                        f"{statistics.mean(r['wall_seconds'] for r in rs):.0f}",
                        f"{statistics.mean(sum(r['evals_by_stage']) for r in rs):.0f}"])
        for r in rs:
            parts = {f"{s}": c for s, c in zip(r["stages"], r["cost_by_stage"], strict=True)}
            if r.get("cost_parts"):
                parts = r["cost_parts"]
            where = ", ".join(f"{k} {v:.0f}" for k, v in parts.items() if v >= 0.5)
            detail.append([m, r["config"]["seed"], r["index"], f"{r['reported']:.2f}",
                           f"{r['cost']:.0f}", f"{r['wall_seconds']:.0f}",
                           "/".join(str(n) for n in r["evals_by_stage"]), where])
    cfg = runs[0]["config"]
    lines = [
        "# Supernet methods on CIFAR-10, this CPU",
        "",
        f"Budget {cfg['budget']:.0f} s of this machine per run (wall seconds; cached zero-cost "
        "scores are charged the seconds they took to compute); the 200-epoch test accuracy of "
        "the chosen cell is read from the NATS-Bench table after the run. Commands: "
        "`benchmarks/supernet_search.py`.",
        "",
        markdown_table(summary, ["method", "runs", "test acc (200 ep)", "min / max",
                                 "cost s", "wall s", "cells scored"]),
        "",
        "Per run, and where its seconds went (supernet methods: warm-up, upkeep = fine-tuning "
        "or pruning and training or re-scoring, zero-cost scoring, supernet scoring, "
        "proposals = differentiable local search; the others: seconds per ladder stage):",
        "",
        markdown_table(detail, ["method", "seed", "index", "test acc", "cost s", "wall s",
                                "cells per stage", "seconds by part"]),
        "",
    ]
    (root / "README.md").write_text("\n".join(lines))
    # the finished runs' results (the checkpoints under */runs/ are not committed)
    (root / "results.json").write_text(json.dumps(runs, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
