"""``ScoringContext.network`` places a fresh network without torch's module walks where nothing
moves (``zcnas.scoring.context._placed``): the tensors must be exactly those ``Module.to``
gives, strides included (oneDNN picks its kernels by strides; a 1x1 weight's size-1 dims are
restrided by ``Module.to`` and must be here too)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zcnas.models import build_model
from zcnas.models.init import remove_batchnorm
from zcnas.scoring import ScoringContext
from zcnas.scoring.context import _placed

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def _torch_way(net, device, dtype, channels_last):
    net = net.to(device=device, dtype=dtype)
    return net.to(memory_format=torch.channels_last) if channels_last else net


SSS = "8:16:24:32:40"


def _same(ours: nn.Module, theirs: nn.Module) -> int:
    """Assert equal tensors, dtypes and strides (gradients too); return how many 1x1 weights
    are among them."""
    a, b = (dict([*n.named_parameters(), *n.named_buffers()]) for n in (ours, theirs))
    assert a.keys() == b.keys()
    ones = 0
    for name, t in b.items():
        got = a[name]
        assert got.dtype == t.dtype and got.stride() == t.stride(), name
        assert torch.equal(got, t), name
        if t.grad is not None:
            assert got.grad.stride() == t.grad.stride() and torch.equal(got.grad, t.grad), name
        ones += t.dim() == 4 and t.shape[2:] == (1, 1)
    return ones


@pytest.mark.parametrize("space,arch", [("nats-tss", ARCH), ("nats-sss", SSS)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("affine,track", [(False, False), (True, True), (True, False)])
def test_placement_gives_module_to_tensors_exactly(space, arch, dtype, channels_last, affine,
                                                    track):
    ctx = ScoringContext(arch, space=space)
    nets = []
    for place in (_placed, _torch_way):
        torch.manual_seed(0)
        net = build_model(ctx.search_space, ctx.arch, 10, affine=affine, track=track)
        nets.append(place(net, torch.device("cpu"), dtype, channels_last))
    assert _same(*nets) > 0  # the 1x1 case (restrided by Module.to) is on the path


def test_a_network_with_gradients_or_without_batch_norm_is_placed_alike():
    ctx = ScoringContext(ARCH)
    nets = []
    for place in (_placed, _torch_way):
        torch.manual_seed(0)
        net = build_model(ctx.search_space, ctx.arch, 10)
        net(torch.randn(2, 3, 32, 32)).sum().backward()  # gradients, contiguous
        nets.append(place(net, torch.device("cpu"), torch.float32, True))
    _same(*nets)
    nets = []
    for place in (_placed, _torch_way):
        torch.manual_seed(0)
        net = remove_batchnorm(build_model(ctx.search_space, ctx.arch, 10))
        nets.append(place(net, torch.device("cpu"), torch.float64, True))
    _same(*nets)


def test_the_context_network_is_placed():
    ctx = ScoringContext(ARCH)
    net = ctx.network(dtype=torch.float64, channels_last=True)
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.dtype == torch.float64
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    assert net.training
