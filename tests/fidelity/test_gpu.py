"""The training fidelities on a CUDA device: same code path, results agree with the CPU.

Run on a GPU machine: ``pytest -m gpu tests/fidelity/test_gpu.py``.
"""

from __future__ import annotations

import pytest
import torch

from zcnas.data.training import TrainingData
from zcnas.fidelity.supernet import SupernetRecipe, SupernetTrainer
from zcnas.fidelity.train import Recipe, train_arch

pytestmark = pytest.mark.gpu
ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
       "nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def data(data_root):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return TrainingData.load("cifar10", data_root, valid=64, limit=320)


def test_training_on_cuda_matches_cpu(data, tmp_path):
    r = Recipe(epochs=2, batch_size=64)
    cpu = train_arch(ARCH, data=data, recipe=r, device="cpu")
    gpu = train_arch(ARCH, data=data, recipe=r, device="cuda", checkpoint=tmp_path / "g.pt")
    assert abs(cpu.history[0]["train_loss"] - gpu.history[0]["train_loss"]) < 0.05
    assert gpu.seconds_per_epoch > 0
    again = train_arch(ARCH, data=data, recipe=r, device="cuda", checkpoint=tmp_path / "g.pt")
    assert again.resumed_from == 2 and again.valid_acc == gpu.valid_acc


def test_supernet_on_cuda_scores_like_cpu(data, tmp_path):
    t = SupernetTrainer(data=data, device="cuda", recipe=SupernetRecipe(batch_size=32))
    t.train(1.0)
    t.save(tmp_path / "sn.pt")
    c = SupernetTrainer(data=data, device="cpu", recipe=SupernetRecipe(batch_size=32))
    c.load(tmp_path / "sn.pt")
    acc_gpu, loss_gpu = t.accuracy(ARCH)
    acc_cpu, loss_cpu = c.accuracy(ARCH)
    assert abs(loss_gpu - loss_cpu) < 1e-3 and abs(acc_gpu - acc_cpu) <= 100 / 64
    assert t.gradient_search([ARCH], steps=2) is not None
