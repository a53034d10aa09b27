"""avg_pool_3x3 as a depthwise convolution: the same values and gradients as nn.AvgPool2d."""

import pytest
import torch

from zcnas.models.ops import AvgPool3x3, _tap_counts

REF = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


@pytest.mark.parametrize("shape", [(2, 3, 1, 1), (2, 3, 1, 4), (2, 3, 2, 2), (1, 4, 5, 3),
                                   (3, 16, 8, 8)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_avgpool2d(shape, dtype, channels_last):
    x = torch.randn(shape, dtype=dtype)
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    ours = AvgPool3x3()(x)
    torch.testing.assert_close(ours, REF(x), rtol=0, atol=4 * torch.finfo(dtype).eps)
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    g = torch.randn(shape, dtype=dtype)
    AvgPool3x3()(a).backward(g)
    REF(b).backward(g)
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-6, atol=8 * torch.finfo(dtype).eps)


def test_double_backward_and_unbatched_input():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(AvgPool3x3(), (x,))
    assert torch.autograd.gradgradcheck(AvgPool3x3(), (x,))
    u = torch.randn(3, 6, 6)
    assert AvgPool3x3()(u).shape == (3, 6, 6)
    torch.testing.assert_close(AvgPool3x3()(u), REF(u))


def test_a_first_call_in_inference_mode_does_not_break_later_backward():
    _tap_counts.cache_clear()
    with torch.inference_mode():
        AvgPool3x3()(torch.randn(1, 2, 7, 7))
    x = torch.randn(1, 2, 7, 7, requires_grad=True)
    AvgPool3x3()(x).sum().backward()
    assert x.grad is not None
