"""Foundation benchmarks: CLI start-up and the dead-path-eliminated network build.

Run: ``pytest benchmarks/test_foundation.py --benchmark-only -p no:randomly``
(they are not collected by the default test run, which covers ``tests/`` only).
Each benchmark group compares our code with its baseline in the same run.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from zcnas.models import build_network
from zcnas.spaces import nats_tss


@pytest.mark.benchmark(group="startup")
def test_python_startup_baseline(benchmark):
    benchmark.pedantic(subprocess.run, args=([sys.executable, "-c", "pass"],), rounds=5)


@pytest.mark.benchmark(group="startup")
def test_zcnas_help(benchmark):
    cmd = [sys.executable, "-m", "zcnas.cli", "--help"]
    benchmark.pedantic(subprocess.run, args=(cmd,), kwargs={"capture_output": True}, rounds=5)


def _cells(n=20):
    rng = np.random.default_rng(0)
    return [nats_tss.sample(rng) for _ in range(n)]


@pytest.mark.benchmark(group="forward-backward (20 random cells, batch 64)")
@pytest.mark.parametrize("prune", [False, True], ids=["naive", "pruned"])
def test_forward_backward(benchmark, prune):
    torch.set_num_threads(2)
    nets = [build_network(c, prune=prune) for c in _cells()]
    x = torch.randn(64, 3, 32, 32)

    def run():
        for net in nets:
            net.zero_grad()
            net(x).sum().backward()

    benchmark.pedantic(run, rounds=3, warmup_rounds=1)
