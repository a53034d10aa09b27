"""NASWOT's kernel from ReLU inputs (zcnas.scoring.passes.HammingKernel) against its
definition, K = sum over ReLUs of c c^T + (1 - c)(1 - c)^T with c = (x > 0)."""

from __future__ import annotations

import math

import pytest
import torch

from zcnas.scoring.passes import HammingKernel


def _definition(xs: list[torch.Tensor]) -> torch.Tensor:
    k = torch.zeros(xs[0].shape[0], xs[0].shape[0], dtype=torch.float64)
    for x in xs:
        c = (x.reshape(x.shape[0], -1) > 0).double()
        k += c @ c.T + (1 - c) @ (1 - c).T
    return k


@pytest.mark.parametrize("products", ["int8", "float32"])
def test_the_kernel_is_its_definition_for_every_kind_of_value(products, monkeypatch):
    if products == "float32":  # the path of devices without an int8 GEMM
        monkeypatch.delattr(torch, "_int_mm")
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(6, 4, 5, 5, generator=gen)
    a.view(-1)[:7] = torch.tensor([math.nan, -math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-45])
    b = torch.randn(6, 3, 4, 4, generator=gen).contiguous(memory_format=torch.channels_last)
    c = torch.randn(6, 10, generator=gen, dtype=torch.float64)
    kernel = HammingKernel(6, torch.device("cpu"))
    for x in (a, b, c, a):  # a read by two ReLUs counts twice (coded once)
        kernel.add(x)
    assert torch.equal(kernel.k, _definition([a, b, c, a]))


def test_the_kernel_is_exact_at_the_width_of_a_first_stage_relu():
    """128 images x 16,384 features (16 channels of 32 x 32): counts up to 16,384 stay exact."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(128, 16, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
    x[:3] = 1.0  # rows with every code set: the largest counts
    kernel = HammingKernel(128, torch.device("cpu"))
    kernel.add(x)
    assert torch.equal(kernel.k, _definition([x]))
    assert kernel.k[0, 1] == 16384
