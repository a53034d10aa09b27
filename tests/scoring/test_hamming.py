"""NASWOT's kernel from ReLU inputs (zcnas.scoring.passes.HammingKernel) against its
definition, K = sum over ReLUs of c c^T + (1 - c)(1 - c)^T with c = (x > 0)."""

from __future__ import annotations

import math

import pytest
import torch

from zcnas.scoring import passes
from zcnas.scoring.passes import HammingKernel


def _definition(xs: list[torch.Tensor]) -> torch.Tensor:
    k = torch.zeros(xs[0].shape[0], xs[0].shape[0], dtype=torch.float64)
    for x in xs:
        c = (x.reshape(x.shape[0], -1) > 0).double()
        k += c @ c.T + (1 - c) @ (1 - c).T
    return k


@pytest.mark.parametrize("products", ["int8", "float32"])
def test_the_kernel_is_its_definition_for_every_kind_of_value(products, monkeypatch):
    if products == "float32":  # the path of devices and builds without an int8 GEMM
        monkeypatch.setattr(passes, "_int8_products", lambda: False)
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


@pytest.mark.parametrize("shape", [(16, 1), (64, 1, 1, 1), (4, 70000)])
def test_the_kernel_is_exact_at_one_feature_and_past_int16_counts(shape):
    """One feature per image (a transposed view with ambiguous strides, which the int8 GEMM
    misreads: the float path takes it) and 70,000 (counts past int16's range)."""
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(2))
    x[:2] = 1.0
    kernel = HammingKernel(shape[0], torch.device("cpu"))
    kernel.add(x)
    assert torch.equal(kernel.k, _definition([x]))


def test_this_torch_has_the_int8_product():
    """The CI's torch (CPU, oneDNN) takes the int8 path; the probe is not silently off."""
    assert passes._int8_products()
