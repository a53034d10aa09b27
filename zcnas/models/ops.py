"""The NATS-Bench cell operations and the ResNet reduction block.

They follow the official inference network (NATS-Bench ``xautodl/models/cell_operations.py``):
ops are ReLU -> Conv -> BN; a conv carries a bias exactly when its BN has no affine parameters;
``none`` multiplies by zero; ``skip_connect`` between different widths is a 1x1 conv + BN; an
``avg_pool_3x3`` between different widths is preceded by a 1x1 ReLU-conv-BN.

``avg_pool_3x3`` (3x3, stride 1, padding 1, ``count_include_pad=False``) is computed as a
depthwise 3x3 convolution with a kernel of ones divided by the number of in-image taps
(:class:`AvgPool3x3`): the same average, faster forward + backward than ``nn.AvgPool2d`` on
the CPU at the NB201 shapes of a 128-image batch (3-7x contiguous, 1.1-1.8x channels-last;
``benchmarks.scoring_floor``). The forward is bitwise the same there; the backward sums in
another order (rounding-level differences, see ``tests/scoring/test_reference_scores.py``).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from zcnas.models.leaves import batchnorm2d, conv2d, relu


def _bn(c: int, affine: bool, track: bool) -> nn.BatchNorm2d:
    return batchnorm2d(c, affine=affine, track=track)


class ReLUConvBN(nn.Sequential):
    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, *,
        affine: bool = True, track: bool = True,
    ) -> None:
        super().__init__(
            relu(inplace=False),
            conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=not affine),
            _bn(c_out, affine, track),
        )


class Zero(nn.Module):
    """The ``none`` op: zeros of the output width (``x * 0`` when the width is unchanged)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_in == self.c_out:
            return x.mul(0.0)
        shape = list(x.shape)
        shape[1] = self.c_out
        return x.new_zeros(shape)


class WidthChange(nn.Sequential):
    """``skip_connect`` between different widths: 1x1 conv + BN, no ReLU (stride 1)."""

    def __init__(self, c_in: int, c_out: int, *, affine: bool = True, track: bool = True) -> None:
        super().__init__(conv2d(c_in, c_out, 1, bias=not affine), _bn(c_out, affine, track))


@functools.lru_cache(maxsize=64)
def _tap_counts(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(1, 1, h, w): how many of the 3x3 taps around each pixel lie inside the image. Built as
    a plain tensor whatever mode the first caller runs under (an inference-mode tensor in the
    cache would break a later backward)."""
    with torch.inference_mode(False), torch.no_grad():
        rows = torch.full((h,), 3.0, dtype=torch.float64)
        cols = torch.full((w,), 3.0, dtype=torch.float64)
        rows[0] -= 1
        rows[-1] -= 1
        cols[0] -= 1
        cols[-1] -= 1
        if h == 1:
            rows[:] = 1
        if w == 1:
            cols[:] = 1
        return torch.outer(rows, cols).to(dtype=dtype, device=device).view(1, 1, h, w)


class AvgPool3x3(nn.Module):
    """``nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)``, computed as a
    depthwise convolution with ones divided by the in-image tap count (see the module
    docstring). Works under autograd (double backward included) and ``torch.func``; takes
    (N, C, H, W) or unbatched (C, H, W) input, as ``nn.AvgPool2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return self.forward(x.unsqueeze(0)).squeeze(0)
        c, h, w = x.shape[-3:]
        ones = torch.ones((c, 1, 3, 3), dtype=x.dtype, device=x.device)
        return F.conv2d(x, ones, padding=1, groups=c) / _tap_counts(h, w, x.dtype, x.device)


class AvgPool(nn.Module):
    def __init__(
        self, c_in: int, c_out: int, *, affine: bool = True, track: bool = True
    ) -> None:
        super().__init__()
        self.preprocess = (
            ReLUConvBN(c_in, c_out, 1, affine=affine, track=track) if c_in != c_out else None
        )
        self.pool = AvgPool3x3()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.pool(x)


def make_op(
    op: str, c_in: int, c_out: int, *, affine: bool = True, track: bool = True
) -> nn.Module:
    """The module for one cell edge."""
    if op == "none":
        return Zero(c_in, c_out)
    if op == "skip_connect":
        return nn.Identity() if c_in == c_out else WidthChange(c_in, c_out, affine=affine,
                                                               track=track)
    if op == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, affine=affine, track=track)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, affine=affine, track=track)
    if op == "avg_pool_3x3":
        return AvgPool(c_in, c_out, affine=affine, track=track)
    raise ValueError(f"unknown op {op!r}")


class ResNetReduction(nn.Module):
    """The stride-2 ResNet basic block that joins the stages (always affine, tracked BN)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            conv2d(c_in, c_out, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))
