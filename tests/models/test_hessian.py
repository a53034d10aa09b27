"""Modules with the double backward written out: the same values and first-order gradients as
the plain modules (bitwise), and correct second-order gradients."""

import contextlib

import pytest
import torch
from torch import nn

from zcnas.models import build_tss_network
from zcnas.models.hessian import (
    HessianAvgPool3x3,
    HessianBatchNorm2d,
    conv_double_backward,
    for_double_backward,
)
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


CONVS = {  # (in, out, kernel, stride, padding, groups, bias, channels_last)
    "3x3": (4, 6, 3, 1, 1, 1, False, False),
    "1x1-stride2-bias": (4, 6, 1, 2, 0, 1, True, False),
    "3x3-groups-channels-last": (4, 6, 3, 1, 1, 2, True, True),
    "5x5-stride2": (3, 5, 5, 2, 2, 1, False, True),
}


def _conv_second_order(spec, inside: bool, third: bool = False):
    """Every product of a convolution's double backward: the gradients of
    ``<a, gx> + <c, gW> + <d, gb>`` (the first backward's outputs against fixed ``a, c, d``)
    with respect to the input, the weight and the upstream gradient ``v`` of ``y``; with
    ``third``, the gradient of their squared norms with respect to the input and the weight
    (a third order, through whatever the double backward recorded)."""
    c_in, c_out, k, stride, pad, groups, bias, cl = spec
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, c_in, 9, 9, dtype=torch.float64, generator=gen)
    if cl:
        x = x.to(memory_format=torch.channels_last)
    w = torch.randn(c_out, c_in // groups, k, k, dtype=torch.float64, generator=gen)
    b = torch.randn(c_out, dtype=torch.float64, generator=gen) if bias else None
    leaves = [t.requires_grad_(True) for t in (x, w) + ((b,) if bias else ())]
    y = nn.functional.conv2d(x, w, b, stride=stride, padding=pad, groups=groups)
    v = torch.randn(y.shape, dtype=torch.float64, generator=gen).requires_grad_(True)
    first = torch.autograd.grad((y * v).sum(), leaves, create_graph=True)
    z = sum((g * torch.randn(g.shape, dtype=torch.float64, generator=gen)).sum() for g in first)
    with conv_double_backward() if inside else contextlib.nullcontext():
        second = torch.autograd.grad(z, [x, w, v], create_graph=third)
    if not third:
        return second
    return torch.autograd.grad(sum((t * t).sum() for t in second), [x, w])


@pytest.mark.parametrize("spec", list(CONVS.values()), ids=list(CONVS))
def test_conv_double_backward_gives_autograds_products(spec):
    for ours, theirs in zip(_conv_second_order(spec, True), _conv_second_order(spec, False),
                            strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_conv_double_backward_runs_only_inside_the_block():
    def backward_calls(inside: bool) -> int:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            _conv_second_order(CONVS["3x3"], inside)
        return sum(e.count for e in prof.key_averages() if e.key == "aten::convolution_backward")

    outside, inside = backward_calls(False), backward_calls(True)
    assert inside == outside + 2  # the double backward's own two calls
    assert backward_calls(False) == outside  # the block left nothing switched on


@pytest.mark.parametrize("name", ["1x1-stride2-bias", "3x3-groups-channels-last"])
def test_what_the_block_records_differentiates_like_autograds_own(name):
    for ours, theirs in zip(_conv_second_order(CONVS[name], True, third=True),
                            _conv_second_order(CONVS[name], False, third=True), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("spec", [  # (in, out, kernel, stride, padding, dilation, groups, size)
    (2, 4, 3, 1, 2, 2, 1, 7),   # dilation
    (2, 4, 3, 2, 1, 1, 1, 8),   # an even input at stride 2, as NB201's reductions
    (4, 2, 1, 1, 0, 1, 2, 5),   # groups, 1x1
], ids=["dilation", "even-stride2", "groups"])
def test_the_blocks_double_backward_passes_gradgradcheck(spec):
    """An oracle of its own: finite differences of the first backward."""
    c_in, c_out, k, stride, pad, dil, groups, size = spec
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, c_in, size, size, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(c_out, c_in // groups, k, k, dtype=torch.float64, generator=gen,
                    requires_grad=True)

    def conv(x, w):
        return nn.functional.conv2d(x, w, stride=stride, padding=pad, dilation=dil,
                                    groups=groups)

    with conv_double_backward():
        assert torch.autograd.gradgradcheck(conv, (x, w))


@pytest.mark.parametrize("wrt", [(0,), (1,), (2,), (0, 2), (1, 2)], ids=str)
@pytest.mark.parametrize("upstream", [(0,), (1,), (2,), (0, 1)], ids=str)
def test_partial_double_backwards_match_autograds_own(upstream, wrt):
    """``z`` built from some of the first backward's outputs (the others' upstream gradients
    are None) and differentiated with respect to some of (input, weight, v): the masks and
    missing inputs autograd passes."""
    def products(inside: bool):
        gen = torch.Generator().manual_seed(2)
        x = torch.randn(2, 3, 8, 8, dtype=torch.float64, generator=gen, requires_grad=True)
        w = torch.randn(4, 3, 3, 3, dtype=torch.float64, generator=gen, requires_grad=True)
        b = torch.randn(4, dtype=torch.float64, generator=gen, requires_grad=True)
        y = nn.functional.conv2d(x, w, b, stride=2, padding=1)
        v = torch.randn(y.shape, dtype=torch.float64, generator=gen, requires_grad=True)
        first = torch.autograd.grad((y * v).sum(), (x, w, b), create_graph=True)
        z = sum((first[i] * first[i].detach().sin()).sum() for i in upstream)
        with conv_double_backward() if inside else contextlib.nullcontext():
            return torch.autograd.grad(z, [(x, w, v)[i] for i in wrt], allow_unused=True)

    for ours, theirs in zip(products(True), products(False), strict=True):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_transposed_convolutions_keep_autograds_own_double_backward():
    def hg(inside: bool):
        gen = torch.Generator().manual_seed(3)
        x = torch.randn(2, 3, 5, 5, generator=gen, requires_grad=True)
        w = torch.randn(3, 4, 3, 3, generator=gen, requires_grad=True)
        (gw,) = torch.autograd.grad(nn.functional.conv_transpose2d(x, w, stride=2).pow(2).sum(),
                                    w, create_graph=True)
        with conv_double_backward() if inside else contextlib.nullcontext():
            return torch.autograd.grad((gw * gw.detach()).sum(), (x, w))

    for ours, theirs in zip(hg(True), hg(False), strict=True):
        assert torch.equal(ours, theirs)


def test_the_switch_is_this_threads_and_is_restored():
    import threading

    from zcnas.models import hessian

    def active() -> bool:
        return getattr(hessian._STATE, "active", False)

    seen = []
    with conv_double_backward():
        with conv_double_backward():
            assert active()
        assert active()  # the inner block restored the outer's switch
        t = threading.Thread(target=lambda: seen.append(active()))
        t.start()
        t.join()
    assert seen == [False] and not active()
    with pytest.raises(RuntimeError), conv_double_backward():
        raise RuntimeError("inside")
    assert not active()

