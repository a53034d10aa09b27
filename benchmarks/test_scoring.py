"""Scoring benchmark (pytest-benchmark): the default suite, engine vs one-proxy-at-a-time.

Run: ``ZCNAS_DATA=../shared/data pytest benchmarks/test_scoring.py --benchmark-only -o addopts=""``.
The fuller report with the compute floor and the full-space projection is
``python -m benchmarks.scoring_speed`` (see its docstring).
"""

from __future__ import annotations

import os

import pytest

from benchmarks.scoring_speed import SUITE, baseline, engine, sample_archs
from zcnas.scoring import InputBank

N_ARCHS = 12


@pytest.fixture(scope="module")
def setup():
    root = os.environ.get("ZCNAS_DATA")
    if not root:
        pytest.skip("ZCNAS_DATA is not set (the default suite needs real images)")
    bank = InputBank("cifar10", seed=0, root=root)
    bank.batches("real", 128, 2)
    return sample_archs(N_ARCHS), bank, root


@pytest.mark.benchmark(group=f"default suite {SUITE}, {N_ARCHS} distinct archs")
def test_one_proxy_at_a_time_baseline(benchmark, setup):
    archs, bank, _ = setup
    benchmark.pedantic(baseline, args=(archs, SUITE, bank), rounds=1)


@pytest.mark.benchmark(group=f"default suite {SUITE}, {N_ARCHS} distinct archs")
def test_engine(benchmark, setup):
    archs, _, root = setup
    benchmark.pedantic(engine, args=(archs, SUITE, root, os.cpu_count() or 1), rounds=1)
