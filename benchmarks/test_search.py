"""Search benchmark (pytest-benchmark): wall time of one full run of each method, side by side,
at the NATS-Bench CIFAR-10 budget (20,000 simulated seconds) on the compact table.

The zero-cost stage of ``mfea`` / ``mfnas`` uses the data-free ``ensemble:az(flops,params)``
(exact counts, no network built) so that the numbers measure the engine (searcher, ladder,
bookkeeping), not the proxies; a real proxy's compute time is what the budget charges.

Run: ``ZCNAS_DATA=../shared/data pytest benchmarks/test_search.py --benchmark-only -o addopts=""``.
"""

from __future__ import annotations

import os

import pytest

from zcnas.search import SearchConfig, build, run_search

METHODS = ("random", "rea", "ls", "mfnas", "mfea")


@pytest.fixture(scope="module")
def table():
    root = os.environ.get("ZCNAS_DATA")
    if not root:
        pytest.skip("ZCNAS_DATA is not set (the search needs the lookup table)")
    from zcnas.lookup import open_benchmark

    return open_benchmark(root=root, kind="table")


def one_run(table, method: str) -> float:
    cfg = SearchConfig(method=method, budget=20_000, seed=0, fitness="ensemble:az(flops,params)")
    plan = build(cfg, table)
    searcher, ladder = plan.searcher, plan.ladder
    # mfea: the data-free proxy costs ~0 s, so bound the number of generations instead
    r = run_search(cfg, searcher, ladder, max_steps=200 if method == "mfea" else None,
                   reporter=lambda a: table.accuracy(a, "cifar10").value,
                   index_of=table.index)
    return r.reported


@pytest.mark.benchmark(group="one search run, cifar10, 20,000 s budget")
@pytest.mark.parametrize("method", METHODS)
def test_search_run(benchmark, table, method):
    acc = benchmark.pedantic(one_run, args=(table, method), rounds=3)
    assert 85 < acc <= 94.38
