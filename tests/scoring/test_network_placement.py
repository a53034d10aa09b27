"""``ScoringContext.network`` places a fresh network without torch's module walks where nothing
moves (``zcnas.scoring.context._placed``): the tensors must be exactly those ``Module.to``
gives, strides included (oneDNN picks its kernels by strides; a 1x1 weight's size-1 dims are
restrided by ``Module.to`` and must be here too)."""

from __future__ import annotations

import pytest
import torch

from zcnas.models import build_model
from zcnas.scoring import ScoringContext
from zcnas.scoring.context import _placed

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"


def _torch_way(net, device, dtype, channels_last):
    net = net.to(device=device, dtype=dtype)
    return net.to(memory_format=torch.channels_last) if channels_last else net


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("affine", [False, True])
def test_placement_gives_module_to_tensors_exactly(dtype, channels_last, affine):
    ctx = ScoringContext(ARCH)
    nets = []
    for place in (_placed, _torch_way):
        torch.manual_seed(0)
        net = build_model(ctx.search_space, ctx.arch, 10, affine=affine, track=True, prune=True)
        nets.append(place(net, torch.device("cpu"), dtype, channels_last))
    ours, theirs = (dict([*n.named_parameters(), *n.named_buffers()]) for n in nets)
    assert ours.keys() == theirs.keys()
    restrided = 0
    for name, t in theirs.items():
        got = ours[name]
        assert got.dtype == t.dtype and got.stride() == t.stride(), name
        assert torch.equal(got, t), name
        restrided += t.dim() == 4 and t.shape[2:] == (1, 1) and channels_last
    assert restrided or not channels_last  # the 1x1 case is on the path


def test_the_context_network_is_placed():
    ctx = ScoringContext(ARCH)
    net = ctx.network(dtype=torch.float64, channels_last=True)
    conv = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.dtype == torch.float64
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    assert net.training
