"""NASWOT's kernel from ReLU inputs (zcnas.scoring.passes.HammingKernel) against its
definition, K = sum over ReLUs of c c^T + (1 - c)(1 - c)^T with c = (x > 0)."""

from __future__ import annotations

import math

import torch

from zcnas.scoring.passes import HammingKernel


def _definition(xs: list[torch.Tensor]) -> torch.Tensor:
    k = torch.zeros(xs[0].shape[0], xs[0].shape[0], dtype=torch.float64)
    for x in xs:
        c = (x.reshape(x.shape[0], -1) > 0).double()
        k += c @ c.T + (1 - c) @ (1 - c).T
    return k


def test_the_kernel_is_its_definition_for_every_kind_of_value():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 4, 5, 5, generator=gen)
    a.view(-1)[:7] = torch.tensor([math.nan, -math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-45])
    b = torch.randn(6, 3, 4, 4, generator=gen).contiguous(memory_format=torch.channels_last)
    c = torch.randn(6, 10, generator=gen, dtype=torch.float64)
    kernel = HammingKernel(6, torch.device("cpu"))
    for x in (a, b, c, a):  # a read by two ReLUs counts twice (coded once)
        kernel.add(x)
    assert torch.equal(kernel.k, _definition([a, b, c, a]))
