"""The benchmark protocol: many seeds of many (method, dataset) searches, side by side.

:func:`run_protocol` runs every (method, dataset, seed) as an independent task on an executor
(:mod:`zcnas.runtime.executors`: this process, a local process pool or Ray), each
checkpointed under ``out/runs/``: re-running the same
command resumes unfinished runs and reuses finished ones. The tables and figures of the
results are :mod:`zcnas.analysis.search`'s.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from zcnas.search.driver import SearchConfig, SearchResult, build, write_json

#: NATS-Bench topology-space budgets (seconds) per dataset.
NATS_BUDGETS = {"cifar10": 20_000.0, "cifar100": 40_000.0, "ImageNet16-120": 120_000.0}


def run_name(cfg: SearchConfig) -> str:
    return f"{cfg.method}-{cfg.dataset}-seed{cfg.seed}"


def _open(root: Any, lookup: str, space: str):
    if lookup == "none":
        return None
    from zcnas.lookup import open_benchmark

    return open_benchmark(space, root=root, kind=lookup)


def run_one(cfg: SearchConfig, *, root: Any = None, lookup: str = "auto", store: Any = None,
            checkpoint: str | os.PathLike | None = None, bench: Any = None,
            executor: Any = None, progress: Callable[[float], None] | None = None
            ) -> SearchResult:
    """One seed of one search. ``store``: a score store (or a :class:`SnapshotStore` in a
    worker); ``executor``: scores the population in parallel; ``progress(spent)``: budget
    spent so far, after every step. Without a lookup the chosen cell's index comes from the
    space's own numbering when it has one."""
    bench = bench if bench is not None else _open(root, lookup, cfg.space)
    workdir = Path(checkpoint).with_suffix("") if checkpoint is not None else None
    plan = build(cfg, bench, root=root, store=store, workdir=workdir, executor=executor)
    reporter = index_of = None
    if bench is not None:
        def reporter(arch: str) -> float:
            return bench.accuracy(arch, cfg.dataset, epochs=bench.full_epochs,
                                  split="test").value
        index_of = bench.index
    else:
        from zcnas.spaces import get_space

        order = get_space(cfg.space).index_order()
        index_of = order.index if order is not None else None
    return plan.run(reporter=reporter, index_of=index_of, checkpoint=checkpoint,
                    lookup=bench.fingerprint if bench is not None else None,
                    progress=progress)


class SnapshotStore:
    """A worker's score store: the driver's scores it may need, read-only, plus what this
    worker computes, handed back to the driver (the single writer) with the run's result."""

    def __init__(self, records: Sequence[Any]) -> None:
        self._found = {r.key: r for r in records}
        self.new: list[Any] = []

    def get_many(self, keys):
        return {k: self._found[k] for k in keys if k in self._found}

    def put_many(self, records) -> None:
        for r in records:
            self._found[r.key] = r
            self.new.append(r)


def _init_runs(setup: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)  # one intra-op thread per run: bitwise the same scores anywhere
    return {**setup, "bench": _open(setup["root"], setup["lookup"], setup["space"])}


def _run_task(state: dict[str, Any], task: tuple) -> tuple[dict[str, Any], list]:
    cfg, checkpoint = task
    store = SnapshotStore(state["snapshot"]) if state["snapshot"] is not None else None
    result = run_one(cfg, root=state["root"], lookup=state["lookup"], store=store,
                     checkpoint=checkpoint, bench=state["bench"])
    return result.to_dict(), (store.new if store is not None else [])


def _snapshot(store: Any, configs: Sequence[SearchConfig]) -> list:
    """The driver's stored scores a run may read: its space, its proxies' dataset, seed 0."""
    if store is None:
        return None
    wanted = {(c.space, c.proxy_dataset or c.dataset, c.device.split(":")[0]) for c in configs}
    return [r for r in store.records()
            if (r.key.space, r.key.dataset, r.key.device_kind) in wanted and r.key.seed == 0]


def run_protocol(configs: Sequence[SearchConfig], out: str | os.PathLike | None, *,
                 root: Any = None, lookup: str = "auto", store_path: str | None = None,
                 workers: int = 1, executor: Any = None,
                 on_done: Callable[[SearchResult], None] | None = None,
                 on_progress: Callable[[int, float], None] | None = None
                 ) -> list[SearchResult]:
    """Run every config (checkpointed in ``out/runs/NAME.json`` unless ``out`` is None);
    results in config order.

    Several runs go to ``executor`` (default: a local process pool of ``workers``), one run
    per worker; a single run scores its population on it instead. This process is the only
    writer of the score store: workers read a snapshot of it and hand their new scores back
    with their results, which are committed as each run finishes; the finished runs'
    checkpoints are written here too, so a re-run reuses them wherever the workers ran.
    ``on_progress(i, spent)``: the budget run ``i`` has spent, as it goes (runs in this
    process) or when it finishes (runs on workers)."""
    from zcnas.runtime.executors import open_executor

    runs = None if out is None else Path(out) / "runs"
    if runs is not None:
        runs.mkdir(parents=True, exist_ok=True)
    store = None
    if store_path is not None:
        from zcnas.runtime import ScoreStore

        store = ScoreStore(store_path)
    own = executor is None
    if own:
        executor = open_executor("process" if workers > 1 else "inprocess", workers)
    tasks = [(cfg, None if runs is None else str(runs / f"{run_name(cfg)}.json"))
             for cfg in configs]
    results: dict[int, SearchResult] = {}
    try:
        if executor.kind == "inprocess" or len(tasks) <= 1:
            bench = _open(root, lookup, configs[0].space) if configs else None
            inner = None if executor.kind == "inprocess" else executor
            for i, (cfg, ckpt) in enumerate(tasks):
                results[i] = run_one(cfg, root=root, lookup=lookup, store=store,
                                     checkpoint=ckpt, bench=bench, executor=inner,
                                     progress=None if on_progress is None else
                                     (lambda spent, i=i: on_progress(i, spent)))
                if on_done is not None:
                    on_done(results[i])
        else:
            setup = {"root": None if root is None else str(root), "lookup": lookup,
                     "space": configs[0].space, "snapshot": _snapshot(store, configs)}
            opened = _open(root, lookup, configs[0].space)
            state_lookup = opened.fingerprint if opened is not None else None
            for i, (res, new) in executor.map_unordered(_run_task, tasks, init=_init_runs,
                                                         setup=setup):
                result = SearchResult.from_dict(res)
                if store is not None and new:
                    store.put_many(new)
                if tasks[i][1] is not None:
                    write_json(Path(tasks[i][1]), {"config": result.config.to_dict(),
                                                   "stages": result.stages,
                                                   "lookup": state_lookup,
                                                   "result": result.to_dict()})
                results[i] = result
                if on_progress is not None:
                    on_progress(i, result.cost)
                if on_done is not None:
                    on_done(result)
    finally:
        if own:
            executor.shutdown()
        if store is not None:
            store.close()
    return [results[i] for i in range(len(tasks))]


def config_grid(base: SearchConfig, methods: Sequence[str], datasets: Sequence[str],
                seeds: Sequence[int], budgets: dict[str, float] | None = None
                ) -> list[SearchConfig]:
    out = []
    for ds in datasets:
        for m in methods:
            for s in seeds:
                b = budgets[ds] if budgets is not None else base.budget
                out.append(replace(base, method=m, dataset=ds, seed=s, budget=b))
    return out
