"""Training-fidelity benchmark (pytest-benchmark): the cost of the supernet and of stand-alone
training, side by side, on the real CIFAR-10 images of ``$ZCNAS_DATA``.

* one supernet training epoch (de-isomorphic single paths, batch 64) vs one stand-alone
  training epoch of a fixed mid-size cell with the NATS recipe (batch 256), on the same
  4,160 training images: weight sharing pays one path per batch, so an epoch of the
  supernet costs about one epoch of an average cell;
* scoring one cell with the supernet (BN re-estimated on 4 x 64 training images, 500
  held-out images) vs the zero-cost ``synflow`` on the same cell.

The ranking quality the supernet reaches is measured by ``benchmarks/supernet_ranking.py``
(results/supernet/). Run::

    ZCNAS_DATA=../shared/data pytest benchmarks/test_training.py --benchmark-only -o addopts=""

On a CUDA machine add ``--device cuda`` via ``ZCNAS_BENCH_DEVICE=cuda``.
"""

from __future__ import annotations

import os

import pytest

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
       "nor_conv_1x1~2|"
DEVICE = os.environ.get("ZCNAS_BENCH_DEVICE", "cpu")


@pytest.fixture(scope="module")
def data():
    root = os.environ.get("ZCNAS_DATA")
    if not root:
        pytest.skip("ZCNAS_DATA is not set (the benchmark trains on real images)")
    from zcnas.data.training import TrainingData

    return TrainingData.load("cifar10", root, valid=500)


@pytest.fixture(scope="module")
def trainer(data):
    from zcnas.fidelity.supernet import SupernetTrainer

    return SupernetTrainer(data=data, device=DEVICE)


@pytest.mark.benchmark(group="one training epoch, 4,160 CIFAR-10 images")
def test_supernet_epoch(benchmark, trainer):
    row = benchmark.pedantic(trainer.train, args=(1.0,), rounds=2)
    assert row["steps"] == trainer.steps_per_epoch()


@pytest.mark.benchmark(group="one training epoch, 4,160 CIFAR-10 images")
def test_standalone_epoch(benchmark, data):
    from zcnas.fidelity.train import train_arch

    res = benchmark.pedantic(train_arch, args=(ARCH,), kwargs={
        "data": data, "epochs": 1, "device": DEVICE}, rounds=2)
    assert res.epochs == 1


@pytest.mark.benchmark(group="scoring one cell")
def test_supernet_score(benchmark, trainer):
    acc, _ = benchmark.pedantic(trainer.accuracy, args=(ARCH,), rounds=5)
    assert 0 <= acc <= 100


@pytest.mark.benchmark(group="scoring one cell")
def test_synflow_score(benchmark):
    from zcnas.registry import create_proxy
    from zcnas.scoring.engine import make_items, score_archs

    synflow = create_proxy("synflow")

    def one():
        return score_archs(make_items([ARCH], "nats-tss"), [synflow], space="nats-tss",
                           dataset="cifar10", device=DEVICE, workers=1, store=None,
                           progress=False)

    rows = benchmark.pedantic(one, rounds=5)
    assert rows
