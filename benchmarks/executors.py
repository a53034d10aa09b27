"""Executors side by side: the Ray executor against the local process pool on the default suite,
scaling over a simulated multi-node Ray cluster, and what the driver costs per result.

    ZCNAS_DATA=../shared/data .venv/bin/python -m benchmarks.executors --cells 100 \\
        --out results/benchmarks/executors-cpu.txt

1. Overhead: the same ``--cells`` distinct cells of the default suite (synflow, naswot,
   stable 2x128) scored by a 2-worker process pool and by Ray on a local 2-CPU instance,
   interleaved ``--rounds`` times (pool, Ray, pool, Ray...), no store; wall seconds each.
2. Scaling: a ``ray.cluster_utils.Cluster`` of 1, 2 and 3 one-CPU nodes on this machine
   (a head with no CPU), the same cells; cells per second. On a 2-core machine a third node
   only oversubscribes the cores: the point is that nothing breaks and the driver keeps up.
3. Driver: the engine's per-result work (store commit and bookkeeping) with a proxy that
   costs nothing (``params``) over ``--driver-cells`` cells, in process, with a store:
   committed results per second.

Every score table is checked bitwise against the in-process one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from benchmarks._machine import cpu_name

SUITE = "synflow,naswot,stable"


def _table(rows):
    return sorted((r.arch, r.proxy, r.value) for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cells", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--driver-cells", type=int, default=2000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    from zcnas.registry import create_scorers
    from zcnas.runtime import ScoreStore
    from zcnas.runtime.executors import InProcess, ProcessPool, RayExecutor, usable_cpus
    from zcnas.scoring.engine import score_archs, select_archs

    root = os.environ.get("ZCNAS_DATA")
    items = select_archs(str(args.cells), "nats-tss", root=root, seed=11)
    distinct = {i.canonical: i for i in items}
    items = list(distinct.values())  # distinct cells only: every one is computed
    scorers = create_scorers(SUITE)
    lines = [f"# executors, {len(items)} distinct cells of {SUITE} (stable 2x128), "
             f"{cpu_name()}, {usable_cpus()} usable CPUs, torch one thread per worker",
             f"# command: python -m benchmarks.executors --cells {args.cells} "
             f"--rounds {args.rounds} --driver-cells {args.driver_cells}", ""]

    def timed(executor):
        t = time.perf_counter()
        rows = score_archs(items, scorers, root=root, progress=False, executor=executor)
        return time.perf_counter() - t, rows

    ref = None
    pool_s, ray_s = [], []
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with ProcessPool(2) as pool, RayExecutor() as rex:
            timed(pool)  # start the pool's workers (and Ray's) before timing
            timed(rex)
            for _ in range(args.rounds):
                s, rows = timed(pool)
                pool_s.append(s)
                ref = ref or _table(rows)
                assert _table(rows) == ref
                s, rows = timed(rex)
                ray_s.append(s)
                assert _table(rows) == ref
    finally:
        ray.shutdown()
    p, r = min(pool_s), min(ray_s)
    lines += ["## 1. Ray against the local process pool (2 workers, best of "
              f"{args.rounds} interleaved rounds, workers warm)", "",
              f"process pool  {p:8.1f} s   {len(items) / p:6.2f} cells/s   (rounds: "
              + ", ".join(f"{x:.1f}" for x in pool_s) + ")",
              f"ray (local)   {r:8.1f} s   {len(items) / r:6.2f} cells/s   (rounds: "
              + ", ".join(f"{x:.1f}" for x in ray_s) + ")",
              f"overhead      {100 * (r / p - 1):+.1f} %   (goal: within 10 %)", ""]

    lines += ["## 2. A simulated multi-node cluster (1-CPU nodes on this machine)", ""]
    for n in (1, 2, 3):
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        for _ in range(n):
            c.add_node(num_cpus=1)
        c.wait_for_nodes()
        ray.init(address=c.address, include_dashboard=False, log_to_driver=False)
        try:
            with RayExecutor(address=c.address) as rex:
                timed(rex)  # warm the workers
                s, rows = timed(rex)
                assert _table(rows) == ref
        finally:
            ray.shutdown()
            c.shutdown()
        lines.append(f"{n} node{'s' if n > 1 else ' '}  {s:8.1f} s   {len(items) / s:6.2f} "
                     "cells/s")
    lines.append("")

    driver_items = select_archs(str(args.driver_cells), "nats-tss", root=root, seed=12)
    with tempfile.TemporaryDirectory() as tmp:
        with ScoreStore(Path(tmp) / "s.sqlite") as store:
            t = time.perf_counter()
            rows = score_archs(driver_items, create_scorers("params"), store=store,
                               progress=False, executor=InProcess())
            s = time.perf_counter() - t
            n = len(store)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            with ScoreStore(Path(tmp) / "r.sqlite") as store, RayExecutor() as rex:
                score_archs(driver_items[:50], create_scorers("params"), progress=False,
                            executor=rex)  # warm
                t = time.perf_counter()
                score_archs(driver_items, create_scorers("params"), store=store,
                            progress=False, executor=rex)
                rs = time.perf_counter() - t
                rn = len(store)
        finally:
            ray.shutdown()
    lines += ["## 3. The driver: results committed per second (params: no compute)", "",
              f"in process  {n} results committed one architecture at a time to the store in "
              f"{s:.2f} s: {n / s:,.0f} results/s",
              f"ray (local) {rn} results through Ray tasks, committed as they arrive, in "
              f"{rs:.2f} s: {rn / rs:,.0f} results/s (goal: over 200)", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
