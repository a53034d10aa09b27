import math

import numpy as np
import pytest
import torch
from torch import nn

from zcnas.scoring import InputBank, ScoringContext
from zcnas_proxies.aznas import (
    Complexity,
    Expressivity,
    Progressivity,
    Trainability,
    az_components_of,
    expressivity_of,
    sign_tensor,
    trainability_of,
)

MID = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
DEAD = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
IDENTITY = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
BS = 8


def _ctx(arch, seed=0, proxies=(), dataset="ImageNet16-120"):
    # 16x16 inputs keep the tests fast; the recipe does not depend on the resolution
    bank = InputBank(dataset, seed=seed, source="synthetic")
    return ScoringContext(arch, dataset=dataset, inputs=bank, seed=seed,
                          requests=[r for p in proxies for r in p.requests()])


def _reference(net, x, gen):
    """compute_az_nas_score.py, literally (the +-1 draws taken from ``gen`` in the same order)."""
    feats = []
    f = net.stem(x)
    f.retain_grad()
    feats.append(f)
    for cell in net.cells:
        f = cell(f)
        f.retain_grad()
        feats.append(f)
    scores = []
    for feat in feats:
        feat = feat.detach().clone()
        b, c, h, w = feat.size()
        feat = feat.permute(0, 2, 3, 1).contiguous().view(b * h * w, c)
        feat = feat - feat.mean(dim=0, keepdim=True)
        sigma = torch.mm(feat.transpose(1, 0), feat) / feat.size(0)
        s = torch.linalg.eigvalsh(sigma)
        p = s / s.sum()
        scores.append(((-p) * torch.log(p + 1e-8)).sum().item())
    scores = np.array(scores)
    progressivity = np.min(scores[1:] - scores[:-1])
    expressivity = np.sum(scores)
    tr = []
    for i in reversed(range(1, len(feats))):
        f_out, f_in = feats[i], feats[i - 1]
        g_out = sign_tensor(f_out.shape, gen)
        g_in = torch.autograd.grad(outputs=f_out, inputs=f_in, grad_outputs=g_out,
                                   retain_graph=False)[0]
        if g_out.size() == g_in.size() and torch.all(g_in == g_out):
            tr.append(-np.inf)
            continue
        if g_out.size(2) != g_in.size(2):
            g_in = nn.PixelUnshuffle(int(g_in.size(2) / g_out.size(2)))(g_in)
        bo, co, ho, wo = g_out.size()
        bi, ci, hi, wi = g_in.size()
        a = g_in.permute(0, 2, 3, 1).contiguous().view(bi * hi * wi, ci)
        bb = g_out.permute(0, 2, 3, 1).contiguous().view(bo * ho * wo, co)
        mat = torch.mm(a.transpose(1, 0), bb) / (bo * ho * wo)
        if mat.size(0) < mat.size(1):
            mat = mat.transpose(0, 1)
        s = torch.linalg.svdvals(mat)
        tr.append(-s.max().item() - 1 / (s.max().item() + 1e-6) + 2)
    trainability = np.mean(tr)
    fix = lambda v: float(v) if not np.isnan(v) else -np.inf  # noqa: E731
    return {"expressivity": fix(expressivity), "progressivity": fix(progressivity),
            "trainability": fix(trainability)}


@pytest.mark.parametrize("arch", [MID, DEAD])
def test_matches_literal_reference_on_the_naive_network(arch):
    ctx = _ctx(arch)
    naive = ctx.network(affine=True, track=False, init="kaiming_normal_fan_in", prune=False)
    pruned = ctx.network(affine=True, track=False, init="default")
    pruned.load_state_dict(naive.state_dict(), strict=False)
    x = ctx.batch(BS, "gaussian")[0]
    want = _reference(naive, x, torch.Generator().manual_seed(5))
    got = az_components_of(pruned, x, 5)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-5), key


def test_expressivity_of_white_features_is_log_channels():
    # 4 positions x 2 channels, centred, orthogonal, equal norm: covariance = I
    f = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    feature = f.T.reshape(1, 2, 2, 2)
    assert expressivity_of(feature) == pytest.approx(math.log(2), abs=1e-6)


def test_trainability_closed_forms():
    g = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]).T.reshape(1, 2, 2, 2)
    f_in = torch.randn(1, 2, 2, 2, requires_grad=True)
    # f_out = 2 f_in: M = 2 g^T g / 4 = 2 I, sigma = 2 -> -2 - 1/2 + 2
    assert trainability_of(f_in, f_in * 2, g) == pytest.approx(-0.5, abs=1e-5)
    f_in = torch.randn(1, 2, 2, 2, requires_grad=True)
    assert trainability_of(f_in, f_in * 1.0, g) == -math.inf  # identity layer


def test_identity_cells_give_minus_inf_trainability_and_zero_progressivity():
    ctx = _ctx(IDENTITY)
    p = dict(batch_size=BS)
    assert Trainability(**p).score(ctx) == -math.inf
    assert Progressivity(**p).score(ctx) == 0.0
    assert math.isfinite(Expressivity(**p).score(ctx))


def test_all_none_cell_is_a_float_and_ranks_last():
    ctx = _ctx(ALL_NONE)
    for cls in (Expressivity, Progressivity, Trainability):
        value = cls(batch_size=BS).score(ctx)
        assert isinstance(value, float)
    assert Expressivity(batch_size=BS).score(ctx) == -math.inf
    assert Complexity().score(_ctx(ALL_NONE, dataset="cifar10")) == pytest.approx(7.78305,
                                                                                  rel=1e-6)


def test_one_pass_shared_and_equal_to_scoring_alone(monkeypatch):
    import zcnas_proxies.aznas as mod

    calls = []
    real = mod.az_components

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mod, "az_components", counting)
    proxies = [Expressivity(batch_size=BS), Progressivity(batch_size=BS),
               Trainability(batch_size=BS)]
    ctx = _ctx(MID, proxies=proxies)
    together = [p.score(ctx) for p in proxies]
    assert len(calls) == 1
    alone = [p.score(_ctx(MID, proxies=[p])) for p in proxies]
    assert together == alone


def test_deterministic_across_fresh_contexts():
    for cls in (Expressivity, Progressivity, Trainability):
        a = cls(batch_size=BS).score(_ctx(DEAD))
        b = cls(batch_size=BS).score(_ctx(DEAD))
        assert a == b
    assert Expressivity(batch_size=BS).score(_ctx(DEAD, seed=1)) != Expressivity(
        batch_size=BS).score(_ctx(DEAD))


def test_complexity_is_the_official_flops():
    # NATS-Bench get_cost_info for arch 11 on cifar10 (see tests/models/test_network.py)
    assert Complexity().score(_ctx(MID, dataset="cifar10")) == pytest.approx(113.95137, rel=5e-3)
    assert Complexity().score(_ctx(MID)) == pytest.approx(28.49548, rel=5e-3)


def test_recipe_declared():
    info = Expressivity.info
    assert (info.input, info.needs_images, info.needs_labels, info.bn, info.init) == (
        "gaussian", False, False, "train", "kaiming_normal_fan_in")
    assert info.batch_size == 64 and info.higher_is_better


def _features(shapes, channels_last=True):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return [torch.randn(s).to(memory_format=fmt) for s in shapes]


def _fresh_sign_cache(monkeypatch):
    import zcnas_proxies.aznas as mod

    monkeypatch.setattr(mod, "_SIGNS", type(mod._SIGNS)())
    monkeypatch.setattr(mod, "_MISSES", type(mod._MISSES)())
    return mod


def test_sign_tensors_are_the_recipes_draws_kept_from_the_second_cell(monkeypatch):
    mod = _fresh_sign_cache(monkeypatch)
    shapes = [(2, 8, 4, 4), (2, 4, 8, 8), (2, 4, 8, 8)]
    feats = _features(shapes)

    def want(seed, sub=shapes):
        gen = torch.Generator().manual_seed(seed)
        return [sign_tensor(s, gen) for s in sub]  # in order, from one generator

    first = list(mod.sign_tensors(feats, 7))  # met once: drawn, not kept
    assert not mod._SIGNS
    second = list(mod.sign_tensors(_features(shapes), 7))  # the next cell, same shapes: kept
    third = list(mod.sign_tensors(_features(shapes), 7))
    assert all(a is b for a, b in zip(second, third, strict=True)) and len(mod._SIGNS) == 1
    for w, a, b, f in zip(want(7), first, second, feats, strict=True):
        assert torch.equal(w, a) and torch.equal(w, b)
        assert a.stride() == b.stride() == f.stride()
    # another shape sequence is drawn from its own generator, not read from the kept one
    assert all(torch.equal(w, g) for w, g in zip(
        want(7, shapes[1:]), mod.sign_tensors(feats[1:], 7), strict=True))
    # a layout is part of the key: the same values, contiguous
    flat = _features(shapes, channels_last=False)
    got = list(mod.sign_tensors(flat, 7))
    assert got[0].is_contiguous() and not second[0].is_contiguous()
    assert all(torch.equal(w, g) for w, g in zip(want(7), got, strict=True))
    # least recently used out: keep A (7) and B (8), touch A, add C (9): B goes
    for seed in (8, 8):
        list(mod.sign_tensors(feats, seed))
    assert len(mod._SIGNS) == 2
    list(mod.sign_tensors(feats, 7))
    for seed in (9, 9):
        list(mod.sign_tensors(feats, seed))
    assert [k[0] for k in mod._SIGNS] == [7, 9]


def test_two_alternating_sequences_are_both_kept(monkeypatch):
    # ensemble:zcnas beside ensemble:zcnas_fast: AZ-NAS on 64 and on 32 images in every cell
    mod = _fresh_sign_cache(monkeypatch)
    a, b = _features([(4, 2, 4, 4), (4, 3, 2, 2)]), _features([(2, 2, 4, 4), (2, 3, 2, 2)])
    for feats in (a, b, a, b):
        list(mod.sign_tensors(feats, 0))
    assert len(mod._SIGNS) == 2


def test_a_sequence_met_once_is_drawn_as_it_is_walked(monkeypatch):
    mod = _fresh_sign_cache(monkeypatch)
    drawn = []
    real = mod.sign_tensor
    monkeypatch.setattr(mod, "sign_tensor", lambda *a: drawn.append(1) or real(*a))
    signs = mod.sign_tensors(_features([(2, 2, 4, 4)] * 5), 3)
    assert not drawn
    next(signs)
    assert len(drawn) == 1  # one tensor at a time, not the whole list


def test_components_identical_whether_the_signs_are_drawn_or_kept(monkeypatch):
    mod = _fresh_sign_cache(monkeypatch)
    ctx = _ctx(MID)
    runs = []
    for _ in range(3):  # drawn lazily, drawn and kept, read from the cache
        net = ctx.network(affine=True, track=False, init="kaiming_normal_fan_in")
        runs.append(az_components_of(net, ctx.batch(BS, "gaussian")[0], 5))
    assert len(mod._SIGNS) == 1
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("r", [1, 2])
def test_unshuffled_rows_is_pixel_unshuffle_as_rows(channels_last, r):
    from zcnas_proxies.aznas import _unshuffled_rows

    g = _features([(3, 5, 4 * r, 2 * r)], channels_last)[0]
    u = nn.functional.pixel_unshuffle(g, r) if r > 1 else g
    want = u.permute(0, 2, 3, 1).reshape(-1, u.shape[1])
    assert torch.equal(_unshuffled_rows(g, r), want)
