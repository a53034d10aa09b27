"""benchmarks.scoring_floor records the kernels a scoring runs and re-times them on fresh
tensors of the same layout (the floor): its record of NASWOT's int8 product and the re-made
arguments are checked here."""

from __future__ import annotations

import pytest
import torch

from benchmarks.scoring_floor import (
    FLOOR_CALLS,
    MATMUL,
    OTHER,
    SUMS,
    Recorder,
    _describe,
    _make,
    copy_rate,
    flops,
    rest_class,
    rest_lines,
    timing_cost,
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
        y.backward(torch.randn_like(y))  # a whole gradient (sum()'s is an expanded scalar)
    del z
    assert not rec.calls  # the floor's record is the other mode's
    classes = dict(rec.rest)
    size = x.numel() * 4
    assert classes["batch norm"][0] == 2  # forward and backward
    # relu reads x and writes y; threshold_backward reads the gradient and y, writes one
    assert classes["ReLU"][0] == 2 and classes["ReLU"][2] == 5 * size
    calls, seconds, moved = classes[SUMS]
    assert calls >= 1 and seconds > 0 and moved % size == 0 and moved >= 3 * size
    conv = torch.nn.Conv2d(4, 4, 3)
    with rec:
        conv(x)
    assert rec.rest[FLOOR_CALLS][0] == 1


def test_op_classes():
    x = torch.randn(8, 4, 6, 6)
    assert rest_class(aten.div.Tensor, (x, torch.ones(1, 1, 6, 6))).startswith("pooling")
    assert rest_class(aten.div.Tensor, (x, torch.ones(8, 4, 6, 6))) == OTHER
    assert rest_class(aten.add.Tensor, (x, x)) == SUMS
    assert rest_class(aten.add.Tensor, (x, torch.tensor(1e-5))) == OTHER  # x + eps
    assert rest_class(aten.clamp_min.default, (x, 1e-8)) == OTHER
    assert rest_class(aten.threshold_backward.default, (x, x, 0)) == "ReLU"


def _moved(fn) -> int:
    rec = Recorder(rest=True)
    with rec:
        fn()
    return sum(b for _, _, b in rec.rest.values())


def test_bytes_count_each_tensor_read_or_written_once():
    x, y = torch.randn(1000), torch.randn(1000)
    out = torch.empty(1000)
    size = 4000
    assert _moved(lambda: x + y) == 3 * size
    assert _moved(lambda: x.clone().add_(y)) == 2 * size + 3 * size  # clone; add_ reads self
    assert _moved(lambda: torch.add(x, y, out=out)) == 3 * size  # out= is written only
    assert _moved(lambda: out.copy_(x)) == 2 * size
    assert _moved(lambda: out.zero_()) == size
    assert _moved(lambda: torch.empty(1000)) == 0
    row = torch.randn(1, 1000)
    assert _moved(lambda: row.expand(10, 1000) + 1) == size + 10 * size  # the memory under it
    assert _moved(lambda: x + x) == 2 * size  # x is read once
    xs = [torch.randn(1000), torch.randn(1000)]
    assert _moved(lambda: torch._foreach_add_(xs, 1.0)) == 2 * 2 * size  # returns nothing
    assert _moved(lambda: torch.randn(1000).to_sparse()) > 0  # no storage: no crash
    cl = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    assert _moved(lambda: cl.reshape(2, -1)) == 2 * cl.numel() * 4  # a copy, then a view


def test_the_timing_cost_is_measured():
    assert 0 < timing_cost(200) < 1e-3


def test_a_view_moves_no_bytes():
    x = torch.randn(64, 64)
    assert _moved(lambda: (x.view(-1), x.T.detach(), x.clone().t_())) == 2 * x.numel() * 4
    y = x.clone().unsqueeze(0)
    assert _moved(lambda: aten.squeeze_.dims(y, [0])) == 0  # every overload of a view
    assert _moved(lambda: aten.squeeze_.default(y)) == 0


def test_the_rest_report_and_its_bound():
    rec = Recorder(rest=True)
    rec.rest[FLOOR_CALLS] = [10, 2.0, 0]
    rec.rest["batch norm"] = [4, 0.4, 4_000_000_000]
    rec.rest[OTHER] = [6, 0.2, 2_000_000_000]
    rec.other.update({"aten.gt.Scalar": [2, 0.12], "aten.bucketize.Tensor": [2, 0.06],
                      "aten.detach.default": [1, 0.016], "aten.empty.memory_format": [1, 0.005]})
    lines = rest_lines(rec, n=2, wall=1.5, in_place=0.9, floor=1.0, copy=(10e9, 5e9),
                       per_op=0.01)
    text = "\n".join(lines)
    rows = {line[:44].strip(): line[44:].split() for line in lines if len(line) > 44}
    # per cell: floor's calls 1.0, batch norm 0.2 s and 2 GB (10 GB/s: 0.5x the cold copy
    # time, 2 GB at 5 GB/s = 0.4 s), other 0.1 s
    assert rows["batch norm"] == ["0.200", "13.3%", "2", "2.00", "10.0", "0.50"]
    assert rows["other tensor ops"] == ["0.100", "6.7%", "3", "1.00", "10.0", "0.50"]
    # its three heaviest ops, per cell, right under it
    at = next(i for i, line in enumerate(lines) if line.startswith("other tensor ops"))
    assert [line.split() for line in lines[at + 1:at + 4]] == [
        ["of", "it", "aten.gt.Scalar", "0.060", "1"],
        ["of", "it", "aten.bucketize.Tensor", "0.030", "1"],
        ["of", "it", "aten.detach.default", "0.008", "0"]]
    assert rows["outside any op (Python, autograd, timing)"] == ["0.200", "13.3%"]
    # 10 ops per cell x 10 ms of timing = 0.1 s: Python 0.1 s of the 1.4 s untimed wall
    assert rows["of it the timing (10 ops x 10000 us)"] == ["0.100"]
    assert rows["so Python and the autograd engine (est.)"] == ["0.100", "7.1%"]
    # 3 GB per cell: warm 0.3 s, (0.9 + 0.3) / 1.0 = 1.20x; cold 0.6 s, 1.50x;
    # 1.3x leaves 0.4 s: 1.33x the warm copy time, 0.67x the cold
    assert "  warm: 0.300 s/cell, so 1.20x the floor" in text
    assert "  cold: 0.600 s/cell, so 1.50x the floor" in text
    assert ("leaves 0.400 s/cell beside the floor's calls: 1.33x the warm copy time, "
            "0.67x the cold") in text
    over = "\n".join(rest_lines(rec, n=2, wall=1.5, in_place=1.4, floor=1.0, copy=(10e9, 5e9)))
    assert "already take 1.3x the floor or more" in over and "leaves" not in over


def test_small_batches_keep_every_setting_but_the_batch():
    from benchmarks.scoring_floor import SMALL_BATCH, small_batches
    from zcnas.registry import create_scorers

    proxies = create_scorers("synflow,stable(n_batches=3),jacov(batch_size=32),meco,"
                             "az_trainability")
    small = small_batches(proxies)
    for p, q in zip(proxies, small, strict=True):
        assert type(q) is type(p)
        assert q.batch_size == min(p.batch_size, SMALL_BATCH)
        assert {**q.config(), "batch_size": 0} == {**p.config(), "batch_size": 0}
    assert [p.batch_size for p in proxies] == [1, 128, 32, 1, 64]  # the originals untouched


def test_small_batches_refuse_a_set_whose_passes_would_merge():
    from benchmarks.scoring_floor import small_batches
    from zcnas.registry import create_scorers

    # two ce passes (batches of 4 and 8) would become one at 2 images: the bound would
    # undercount, so there is none
    with pytest.raises(ValueError, match="merge"):
        small_batches(create_scorers("stable(batch_size=4),naswot(batch_size=8)"))


def test_cold_copies_cycle_through_distinct_buffers(monkeypatch):
    made = []
    real = torch.randn

    def counting(*args, **kwargs):
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "randn", counting)
    rate = copy_rate(1 << 20, 1, total=4 << 20)
    assert len(made) == 4 and rate > 0  # four 1 MB sources for 4 MB
    made.clear()
    assert copy_rate(1 << 20, 1) > 0 and len(made) == 1  # warm: one buffer again and again
