"""benchmarks.scoring_floor records the kernels a scoring runs and re-times them on fresh
tensors of the same layout (the floor): its record of NASWOT's int8 product and the re-made
arguments are checked here."""

from __future__ import annotations

import torch

from benchmarks.scoring_floor import (
    FLOOR_CALLS,
    MATMUL,
    Recorder,
    _describe,
    _make,
    flops,
    rest_class,
)
from zcnas.scoring.passes import HammingKernel, _int8_products

aten = torch.ops.aten


def test_the_naswot_product_is_recorded_and_remade_in_its_layout():
    x = torch.randn(16, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    _int8_products()  # its one-time probe (a small product of its own) runs before recording
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


def test_the_rest_is_timed_by_class_with_the_bytes_it_moves():
    x = torch.randn(8, 4, 6, 6, requires_grad=True)
    bn = torch.nn.BatchNorm2d(4)
    rec = Recorder(rest=True)
    with rec:
        y = torch.relu(bn(x)) + x
        z = y.detach()  # a view: no bytes
        y.sum().backward()
    del z
    assert not rec.calls  # the floor's record is the other mode's
    classes = dict(rec.rest)
    size = x.numel() * 4
    assert classes["batch norm"][0] == 2  # forward and backward
    assert classes["ReLU"][0] == 2 and classes["ReLU"][2] >= 4 * size  # relu, threshold_backward
    calls, seconds, moved = classes["sums (node sums, gradient accumulation)"]
    assert calls >= 2 and seconds > 0 and moved >= 3 * size  # the forward add reads 2, writes 1
    conv = torch.nn.Conv2d(4, 4, 3)
    with rec:
        conv(x)
    assert rec.rest[FLOOR_CALLS][0] == 1
    assert rest_class(aten.detach.default, (x,)) == "other tensor ops"
    assert rest_class(aten.div.Tensor, (x, torch.ones(1, 1, 6, 6))).startswith("pooling")
    assert rest_class(aten.div.Tensor, (x, torch.ones(8, 4, 6, 6))) == "other tensor ops"


def test_a_view_moves_no_bytes():
    rec = Recorder(rest=True)
    x = torch.randn(64, 64)
    with rec:
        x.view(-1)
        x.T.detach()
    assert rec.rest["other tensor ops"][2] == 0
