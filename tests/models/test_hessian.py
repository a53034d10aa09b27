"""Modules with the double backward written out: the same values and first-order gradients as
the plain modules (bitwise), and correct second-order gradients."""

import pytest
import torch
from torch import nn

from zcnas.models import build_tss_network
from zcnas.models.hessian import HessianAvgPool3x3, HessianBatchNorm2d, for_double_backward
from zcnas.models.ops import AvgPool3x3

ARCH = "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|"


def _modules():
    return [(AvgPool3x3(), HessianAvgPool3x3()),
            (nn.BatchNorm2d(3, affine=False, track_running_stats=False),
             HessianBatchNorm2d(3, affine=False, track_running_stats=False))]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("which", [0, 1], ids=["pool", "bn"])
def test_first_and_second_order_gradients(which, channels_last):
    _, module = _modules()[which]
    x = torch.randn(4, 3, 5, 6, dtype=torch.float64)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(module, (x,))
    assert torch.autograd.gradgradcheck(module, (x,))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("which", [0, 1], ids=["pool", "bn"])
def test_values_and_first_order_gradients_are_bitwise_the_plain_modules(which, channels_last):
    plain, ours = _modules()[which]
    x = torch.randn(16, 3, 12, 12)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    g = torch.randn(16, 3, 12, 12)
    outs = []
    for m in (plain, ours):
        xi = x.clone().requires_grad_(True)
        y = m(xi)
        (gx,) = torch.autograd.grad(y, xi, g)
        outs.append((y, gx))
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.equal(outs[0][1], outs[1][1])


def _hessian_gradient_product(net, x, y):
    weights = [m.weight for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    loss = nn.functional.cross_entropy(net(x), y)
    grads = torch.autograd.grad(loss, weights, create_graph=True)
    z = sum((g.detach() * g).sum() for g in grads)
    return loss.detach(), torch.autograd.grad(z, weights)


def test_a_network_keeps_its_values_and_its_hessian_gradient_product():
    torch.manual_seed(0)
    net = build_tss_network(ARCH, 10, affine=False, track=False).double().train()
    x, y = torch.randn(8, 3, 32, 32, dtype=torch.float64), torch.randint(0, 10, (8,))
    loss0, hg0 = _hessian_gradient_product(net, x, y)
    before = {type(m).__name__ for m in net.modules()}
    assert for_double_backward(net) is net
    after = [type(m) for m in net.modules()]
    assert HessianAvgPool3x3 in after and HessianBatchNorm2d in after
    assert "AvgPool3x3" in before and AvgPool3x3 not in after
    # the stem's and the reductions' affine, tracked BN stay as they are
    assert any(type(m) is nn.BatchNorm2d and m.affine for m in net.modules())
    assert not any(type(m) is nn.BatchNorm2d and not m.affine for m in net.modules())
    loss1, hg1 = _hessian_gradient_product(net, x, y)
    assert torch.equal(loss0, loss1)
    for a, b in zip(hg0, hg1, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_eval_mode_and_unbatched_input_fall_back_to_the_plain_module():
    bn = HessianBatchNorm2d(3, affine=False, track_running_stats=False).eval()
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(bn(x), nn.BatchNorm2d(3, affine=False,
                                                     track_running_stats=False).eval()(x))
    u = torch.randn(3, 6, 6)
    assert torch.equal(HessianAvgPool3x3()(u), AvgPool3x3()(u))
