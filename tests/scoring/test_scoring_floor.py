"""benchmarks.scoring_floor records the kernels a scoring runs and re-times them on fresh
tensors of the same layout (the floor): its record of NASWOT's int8 product and the re-made
arguments are checked here."""

from __future__ import annotations

import torch

from benchmarks.scoring_floor import MATMUL, Recorder, _describe, _make, flops
from zcnas.scoring.passes import HammingKernel

aten = torch.ops.aten


def test_the_naswot_product_is_recorded_and_remade_in_its_layout():
    x = torch.randn(16, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    rec = Recorder()
    with rec:
        HammingKernel(16, torch.device("cpu")).add(x)
    (func, sig), = [key for key in rec.calls if key[0] in MATMUL]
    assert func is aten._int_mm.default
    assert [a[3] for a in sig] == ["c", "t"]  # c and its transpose, a view
    assert rec.in_place[(func, sig)] > 0
    args = _make(sig, torch.Generator().manual_seed(0))
    assert _describe(tuple(args)) == sig  # re-made with the same shapes, dtypes and strides
    assert args[1].dtype == torch.int8 and not args[1].is_contiguous()
    assert flops(func, sig) == 2 * 16 * 256 * 16
    assert func(*args).dtype == torch.int32
