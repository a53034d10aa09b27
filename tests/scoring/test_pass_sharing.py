"""benchmarks.pass_sharing times the same work two ways: zcnas's one shared pass and
foresight's passes one by one must give the same gradients, Hessian-gradient products and input
Jacobian, or the comparison would not be of like with like."""

from __future__ import annotations

import torch

from benchmarks.pass_sharing import network, separate, shared
from zcnas.models.hessian import HessianBatchNorm2d
from zcnas.scoring import InputBank

ARCH = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


def test_shared_and_separate_passes_compute_the_same_values(data_root):
    torch.set_num_threads(1)
    bank = InputBank("cifar10", seed=0, root=data_root)
    x, y = bank.batches("real", 8, 1)[0]  # the benchmark runs 64; 8 keep the test short
    net = network(ARCH, bank)
    assert any(isinstance(m, HessianBatchNorm2d) for m in net.modules())
    a = shared(net, x.contiguous(), y)
    b = separate(net, x.contiguous(), y)
    for key in ("grads", "hessian", "jacobian"):
        assert len(a[key]) == len(b[key]) > 0
        for u, v in zip(a[key], b[key], strict=True):
            assert u is not None and v is not None
            torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-7)
    # a net whose weights had moved would give other values: the comparison can fail
    with torch.no_grad():
        next(net.parameters()).mul_(1.5)
    moved = shared(net, x.contiguous(), y)
    assert not torch.allclose(moved["hessian"][0], a["hessian"][0])
