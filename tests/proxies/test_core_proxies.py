"""params, flops, synflow, naswot and the MFNAS stable proxy against literal re-computations
of their reference recipes on the naive (unpruned) network."""

import math
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zcnas.models import build_network
from zcnas.proxy import ProxyError
from zcnas.scoring import InputBank, ScoringContext
from zcnas_proxies.cost import Flops, Params
from zcnas_proxies.naswot import Naswot
from zcnas_proxies.stable import (
    EDGES,
    Stable,
    StableMean,
    _buckets,
    stable_score,
    stable_score_per_layer,
)
from zcnas_proxies.synflow import Synflow

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
DEAD = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|"
ZERO = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
BS = 16


def bits(v):
    return struct.pack("<d", v)


def naive_net(arch, seed=0, **kw):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_network(arch, prune=False, **kw).train()


@pytest.fixture(scope="module")
def bank(data_root):
    return InputBank("cifar10", seed=0, root=data_root)


def ctx_for(arch, bank, *proxies):
    return ScoringContext(arch, inputs=bank, requests=[r for p in proxies for r in p.requests()])


def test_params_and_flops_are_the_official_counts():
    ctx = ScoringContext(A)
    assert Params().score(ctx) == pytest.approx(0.802426, rel=1e-6)
    assert Flops().score(ctx) == pytest.approx(113.95137, rel=1e-6)


@pytest.mark.parametrize("arch", [A, DEAD])
def test_synflow_matches_literal_recipe(arch):
    net = naive_net(arch, affine=False, track_running_stats=False)
    for m in list(net.modules()):  # remove every BN
        for cname, child in list(m.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(m, cname, nn.Identity())
    net = net.double()
    for t in net.state_dict().values():
        t.abs_()
    net(torch.ones(1, 3, 32, 32, dtype=torch.float64)).sum().backward()
    want = sum(float((m.weight * m.weight.grad).abs().sum().detach()) for m in net.modules()
               if isinstance(m, nn.Conv2d | nn.Linear) and m.weight.grad is not None)
    got = Synflow().score(ScoringContext(arch))
    assert got == pytest.approx(math.log(want), rel=1e-9)


def test_synflow_of_a_disconnected_cell_is_minus_inf():
    assert Synflow().score(ScoringContext(ZERO)) == -math.inf


def _naswot_literal(arch, x):
    net = naive_net(arch, num_classes=1)
    k = np.zeros((x.shape[0], x.shape[0]))

    def hook(_m, inp, _out):
        c = (inp[0].detach().reshape(x.shape[0], -1) > 0).double().numpy()
        k[:] += c @ c.T + (1.0 - c) @ (1.0 - c).T

    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(x)
    return np.linalg.slogdet(k)[1]


@pytest.mark.parametrize("arch", [A, DEAD])
def test_naswot_matches_literal_recipe_on_the_naive_network(arch, bank):
    p = Naswot(batch_size=BS)
    got = p.score(ctx_for(arch, bank, p))
    x, _ = bank.batches("real", BS, 1)[0]
    assert got == pytest.approx(_naswot_literal(arch, x.contiguous()), rel=1e-4)


def test_naswot_of_a_disconnected_cell_is_degenerate(bank):
    p = Naswot(batch_size=BS)
    v = p.score(ctx_for(ZERO, bank, p))
    assert not math.isfinite(v) or v < 0  # K of identical codes is singular


def _stable_literal(arch, batches, reduce, net=None):
    """MFNAS's algorithm written out over the naive network (or ``net``), numpy float32."""
    net = naive_net(arch) if net is None else net
    grads: dict[str, list] = {}
    for b, (x, y) in enumerate(batches):
        net.zero_grad()
        F.cross_entropy(net(x.contiguous()), y).backward()
        for ci, cell in enumerate(net.cells):
            for name, m in cell.named_modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    g = m.weight.grad.reshape(-1).numpy().copy()
                    if b == 0 and np.any(g):
                        grads[f"{ci}.{name}"] = [g]
                    elif b > 0 and f"{ci}.{name}" in grads:
                        grads[f"{ci}.{name}"].append(g)
    edges = [0, 5e-10, 1e-9, 5e-9, 1e-8, 5e-8, 1e-7, 5e-7, 1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4,
             1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1, 1.0, 5.0]
    ratio = np.zeros(len(edges) - 1)
    for ci in range(len(net.cells)):
        arrs = [np.abs(np.array(v)) for k, v in grads.items() if k.split(".")[0] == str(ci)]
        total = sum(a.size for a in arrs)
        for i in range(len(edges) - 1):
            n = sum(((a >= edges[i]).sum() - (a >= edges[i + 1]).sum()) for a in arrs)
            ratio[i] += n / max(1, total)
    best = int(np.argmax(ratio))
    lo, hi = edges[best], edges[best + 1]
    res = []
    for v in grads.values():
        g = np.array(v)
        mean = np.abs(g.mean(0))
        std = g.std(0) + 1e-5
        sel = (mean >= lo) & (mean <= hi)
        vals = mean[sel] / std[sel]
        t = vals.sum() if reduce == "sum" else (vals.mean() if vals.size else np.nan)
        if t > 0 and not np.isnan(t):
            res.append(np.log(t + 1))
    return float(np.sum(res)) if res else 1e-5


@pytest.mark.parametrize("arch", [A, DEAD])
def test_stable_matches_literal_recipe_on_the_naive_network(arch, bank):
    batches = [(x.contiguous(), y) for x, y in bank.batches("real", BS, 2)]
    net = naive_net(arch)
    grads = []
    for x, y in batches:
        net.zero_grad()
        F.cross_entropy(net(x), y).backward()
        grads.append({n: m.weight.grad.clone() for n, m in net.named_modules()
                      if isinstance(m, nn.Conv2d | nn.Linear)})
    for cls, reduce in ((Stable, "sum"), (StableMean, "mean")):
        want = _stable_literal(arch, batches, reduce)
        # the algorithm, on the same gradients: equal up to float32 summation order
        assert stable_score(grads, reduce) == pytest.approx(want, rel=1e-6), reduce
        # end to end (pruned, channels-last network): the proxy divides by std + 1e-5, so
        # float rounding of near-identical gradients moves it by ~0.1%
        p = cls(batch_size=BS)
        assert p.score(ctx_for(arch, bank, p)) == pytest.approx(want, rel=1e-2), reduce


def _layer_grads(seed, batches=2):
    """Gradient-like tensors of a cell network's shapes: cells of interleaved layers, one
    layer zero on every batch, one zero on one batch, NaN and infinities, exact zeros."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [(16, 16, 3, 3), (16, 16, 1, 1), (32, 16, 3, 3), (32, 32, 3, 3), (64, 32, 1, 1),
              (64, 64, 3, 3), (10, 64)]
    names = [f"cells.{i % 5}.layer{i}" for i in range(len(shapes))] + ["stem.0", "classifier"]
    shapes += [(16, 3, 3, 3), (10, 64)]
    scale = [10.0 ** float(torch.randint(-9, -1, (), generator=gen)) for _ in shapes]
    out = []
    for b in range(batches):
        grads = {}
        for i, (name, shape) in enumerate(zip(names, shapes, strict=True)):
            g = torch.randn(shape, generator=gen) * scale[i]
            g[torch.rand(shape, generator=gen) < 0.2] = 0.0
            if i == 1 or (i == 3 and b == 0):
                g.zero_()
            if i == 5 and seed % 2:
                g.view(-1)[:3] = torch.tensor([math.nan, math.inf, -math.inf])
            grads[name] = g
        out.append(grads)
    return out, {n: int(n.split(".")[1]) for n in names if n.startswith("cells.")}


def _cells_of(*layers):
    """Two batches of gradients: per layer (cell, |values| on batch 0, on batch 1)."""
    grads = [{}, {}]
    cells = {}
    for i, (cell, b0, b1) in enumerate(layers):
        name = f"cells.{cell}.l{i}"
        grads[0][name], grads[1][name] = torch.tensor(b0), torch.tensor(b1)
        cells[name] = cell
    return grads, cells


def test_stable_bins_each_cell_by_its_own_fractions_without_its_dead_layers():
    # cell 0: 1,000 weights in [1e-3, 5e-3); cells 1 and 2: 10 each in [1e-5, 5e-5): by the
    # cells' fractions (each cell one vote) the bin is [1e-5, 5e-5), by raw counts [1e-3, ..)
    big = [2e-3] * 1000
    small = [2e-5] * 9 + [3e-5]
    grads, cells = _cells_of((0, big, big), (1, small, small), (2, small, small))
    on_small = 2 * math.log(1 + (9 * 2e-5 + 3e-5) / 1e-5)
    assert stable_score(grads, "sum", cells) == pytest.approx(on_small, rel=1e-6)
    # a dead layer (zero on every batch) does not vote: 10,000 zeros in cell 1 and 2 would
    # put both cells' votes on [0, 5e-10) and the bin there
    zeros = [0.0] * 10_000
    grads, cells = _cells_of((0, big, big), (1, small, small), (1, zeros, zeros),
                             (2, small, small), (2, zeros, zeros))
    assert stable_score(grads, "sum", cells) == pytest.approx(on_small, rel=1e-6)
    assert stable_score(grads, "sum", cells) == stable_score_per_layer(grads, "sum", cells)


def test_stable_bin_ties_go_low_and_a_mean_on_an_edge_counts():
    # half the values in [1e-4, 5e-4), half in [5e-4, 1e-3): a tie, the lower bin wins; a
    # weight whose mean lies exactly on the bin's upper edge (5e-4) is counted ([lo, hi])
    lo = [2e-4] * 4
    hi = [np.float32(5e-4).item()] * 4
    grads, cells = _cells_of((0, lo + hi, lo + hi))
    want = math.log(1 + 4 * 2e-4 / 1e-5 + 4 * np.float32(5e-4).item() / 1e-5)
    assert stable_score(grads, "sum", cells) == pytest.approx(want, rel=1e-6)
    assert stable_score(grads, "sum", cells) == stable_score_per_layer(grads, "sum", cells)


def test_stable_buckets_are_bucketize_s_nan_payloads_and_signed_nans_included():
    from zcnas_proxies.stable import _buckets

    edges = torch.tensor(EDGES, dtype=torch.float32)
    words = np.array([0x7FC00000, 0x7FFFFFFF, 0xFFFFFFFF, 0x7F800001, 0x7F800000, 0, 1,
                      0x00800000, 0x3F800000], dtype=np.uint32)
    values = torch.from_numpy(words.view(np.float32).copy()).abs()  # -NaN: its sign cleared
    rng = np.random.default_rng(1)
    values = torch.cat([values, torch.from_numpy(np.abs(
        rng.standard_normal(20_000) * 10.0 ** rng.integers(-12, 2, 20_000)).astype(np.float32))])
    assert torch.equal(_buckets(values, edges).long(),
                       torch.bucketize(values, edges, right=True))
    grads, cells = _cells_of((0, [1e-3, 2e-3, 3e-3], [1e-3, 1e-3, 1e-3]),
                             (1, [2e-3, 1e-3, 0.0], [1e-3, 1e-3, 1e-3]))
    for g in grads:  # the largest NaN payload in the last cell
        g["cells.1.l1"][2] = torch.from_numpy(np.array([0x7FFFFFFF], np.uint32).view(
            np.float32))[0]
    assert bits(stable_score(grads, "sum", cells)) == bits(
        stable_score_per_layer(grads, "sum", cells))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_stable_score_equals_the_per_layer_computation_bitwise(seed, reduce):
    grads, cells = _layer_grads(seed, batches=2 + seed % 3)
    want = stable_score_per_layer(grads, reduce, cells)
    assert bits(stable_score(grads, reduce, cells)) == bits(want)


@pytest.mark.parametrize("arch", [A, DEAD])
def test_stable_score_equals_the_per_layer_computation_on_a_network(arch, bank):
    p = Stable(batch_size=BS)
    ctx = ctx_for(arch, bank, p)
    result = ctx.run_pass(p.requests()[0])
    from zcnas.models import block_indices

    cells = block_indices(result.model, proxy="stable")
    for reduce in ("sum", "mean"):
        want = stable_score_per_layer(result.grads[:2], reduce, cells)
        assert bits(stable_score(result.grads[:2], reduce, cells)) == bits(want), reduce


def test_stable_score_unit_cases():
    # two layers of one cell; gradients chosen by hand
    g1 = torch.tensor([[1e-3, 2e-3, 0.0], [3e-3, 2e-3, 0.0]])
    g2 = torch.tensor([[4e-3], [4e-3]])
    grads = [{"cells.0.a": g1[0], "cells.0.b": g2[0]}, {"cells.0.a": g1[1], "cells.0.b": g2[1]}]
    # |g| values: 1e-3,2e-3,0,3e-3,2e-3,0,4e-3,4e-3 -> bin [1e-3, 5e-3) holds 6 of 8
    # layer a: |mean| = 2e-3, 2e-3, 0; std = 1e-3, 0, 0 -> in bin: 2e-3/(1e-3+1e-5), 2e-3/1e-5
    a = 2e-3 / (1e-3 + 1e-5) + 2e-3 / 1e-5
    b = 4e-3 / 1e-5
    assert stable_score(grads, "sum") == pytest.approx(math.log(1 + a) + math.log(1 + b),
                                                       rel=1e-5)
    assert stable_score(grads, "mean") == pytest.approx(math.log(1 + a / 2) + math.log(1 + b),
                                                        rel=1e-5)
    zeros = [{"cells.0.a": torch.zeros(3)}, {"cells.0.a": torch.zeros(3)}]
    assert stable_score(zeros) == 1e-5
    # stem/classifier gradients are ignored
    assert stable_score([{"stem.0": g1[0]}, {"stem.0": g1[1]}]) == 1e-5


def bin_counts(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """How many ``values`` (non-negative, or NaN) the stable proxy's binning puts in each bin
    [edges[k], edges[k + 1]); values from the last edge up (and NaN) in none."""
    n = len(edges) - 1
    return torch.bincount(_buckets(values.reshape(-1), edges), minlength=n + 2)[1: n + 1]


def test_stable_bins_count_like_searchsorted_edges_included():
    edges = torch.tensor(EDGES, dtype=torch.float32)
    rng = np.random.default_rng(0)
    e32 = np.array(EDGES, dtype=np.float32)
    values = np.concatenate([
        np.abs(rng.standard_normal(5000) * 10.0 ** rng.integers(-11, 1, 5000)),
        e32,  # every edge exactly: it opens its own bin
        np.nextafter(e32[1:], np.float32(0)), np.nextafter(e32, np.float32(np.inf)),  # beside
        [1e-45, 1e-40, 1.1754942e-38, 1.1754944e-38],  # subnormals and the smallest normals
        [np.nan, np.inf, 5.0, 7.0, 3e38, 0.0],  # from the last edge up and NaN: no bin
    ]).astype(np.float32)
    nans = np.array([0x7FC00000, 0x7FFFFFFF, 0x7F800001], dtype=np.uint32).view(np.float32)
    values = np.concatenate([values, nans])  # NaN payloads up to the largest: no bin either
    want = np.bincount(np.searchsorted(np.array(EDGES, dtype=np.float32),
                                       values[np.isfinite(values)], side="right") - 1,
                       minlength=len(EDGES))[: len(EDGES) - 1]
    got = bin_counts(torch.from_numpy(values), edges)
    assert got.dtype == torch.int64
    assert got.tolist() == want.tolist()
    assert bin_counts(torch.from_numpy(values).double(), edges).tolist() == want.tolist()


def test_stable_needs_two_batches():
    with pytest.raises(ProxyError, match="n_batches >= 2"):
        Stable(n_batches=1)
    assert Stable(n_batches=4).spec() == "stable(n_batches=4)"


@pytest.mark.parametrize("arch", [A, ZERO])
def test_scores_are_bitwise_deterministic(arch, bank):
    proxies = [Synflow(), Naswot(batch_size=BS), Stable(batch_size=BS)]
    first = [p.score(ctx_for(arch, bank, *proxies)) for p in proxies]
    again = [p.score(ctx_for(arch, bank, *proxies)) for p in proxies]
    assert [bits(v) for v in first] == [bits(v) for v in again]
