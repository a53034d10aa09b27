"""gradsign: both batchings of the per-sample gradients (vmap; one pass with per-sample BN)
against the reference's literal loop of single-sample forward/backward passes (per-sample BN
statistics), which one the proxy takes, determinism, degenerate cells."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zcnas.models import build_network
from zcnas.scoring import InputBank, ScoringContext
from zcnas_proxies import gradsign as gs
from zcnas_proxies.gradsign import GradSign, gradsign_score, gradsign_score_batched

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
DEAD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|none~2|"
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
BS = 8
BOTH = pytest.mark.parametrize("score", [gradsign_score, gradsign_score_batched],
                               ids=["vmap", "batched"])


@pytest.fixture(scope="module")
def bank(data_root):
    return InputBank("cifar10", seed=0, source="real", root=data_root)


def reference_loop(net, inputs, targets):
    """GradSign's ``get_grad_conflict``: one sample per forward/backward, numpy signs."""
    batch_grad = []
    for i in range(inputs.shape[0]):
        net.zero_grad()
        loss = F.cross_entropy(net.forward(inputs[[i]]), targets[[i]])
        loss.backward()
        flat = [m.weight.grad.detach().numpy().ravel() if m.weight.grad is not None
                else np.zeros(m.weight.numel())
                for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
        batch_grad.append(np.concatenate(flat))
    direction_code = np.abs(np.sign(np.stack(batch_grad)).sum(axis=0))
    return float(np.nansum(direction_code))


class TinyBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


@BOTH
def test_per_sample_bn_statistics_on_tiny_network(score):
    gen = torch.Generator().manual_seed(0)
    net = TinyBN().double().train()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    x = torch.randn(10, 3, 5, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (10,), generator=gen)
    want = reference_loop(copy.deepcopy(net), x, y)
    assert score(copy.deepcopy(net), x, y) == want
    assert score(copy.deepcopy(net), x, y, chunk=3) == want
    # statistics of the whole batch would change the gradients and the score
    loss = F.cross_entropy(net(x), y, reduction="sum")
    batch_bn = torch.autograd.grad(loss, [net.conv.weight])[0]
    single = torch.autograd.grad(F.cross_entropy(net(x[:1]), y[:1]), [net.conv.weight])[0]
    assert not torch.allclose(batch_bn, single)  # sanity: BN couples the samples of a batch


@BOTH
@pytest.mark.parametrize("arch", [ARCH, DEAD])
def test_matches_reference_loop_on_naive_network_float64(bank, arch, score):
    ctx = ScoringContext(arch, inputs=bank, seed=0)
    naive = ctx.network(affine=False, track=False, prune=False, dtype=torch.float64)
    pruned = ctx.network(affine=False, track=False, dtype=torch.float64)
    pruned.load_state_dict(naive.state_dict(), strict=False)
    x, y = ctx.batch(BS)
    x = x.double().contiguous()
    want = reference_loop(naive, x, y)
    assert score(pruned, x, y) == want  # float64: no rounding-level sign flips


def test_proxy_matches_float32_reference_loop(bank):
    ctx = ScoringContext(ARCH, inputs=bank, seed=0)
    build = ctx.network

    def network(**kw):
        pruned = build(**kw)
        pruned.load_state_dict(build(**{**kw, "prune": False}).state_dict(), strict=False)
        return pruned

    ctx.network = network
    got = GradSign(batch_size=BS).score(ctx)
    naive = build(affine=False, track=False, prune=False)
    want = reference_loop(naive, *ctx.batch(BS))
    assert got == pytest.approx(want, rel=2e-3)  # float32 rounding flips a few near-zero signs


@pytest.mark.parametrize("batch, taken", [(gs.BATCHED_UP_TO, "batched"),
                                          (gs.BATCHED_UP_TO + 1, "vmap")])
def test_the_proxy_takes_the_batched_pass_up_to_its_bound(bank, monkeypatch, batch, taken):
    calls = []
    for name, fn in (("vmap", gs.gradsign_score), ("batched", gs.gradsign_score_batched)):
        monkeypatch.setattr(gs, fn.__name__,
                            lambda *a, name=name, fn=fn, **k: calls.append(name) or fn(*a, **k))
    GradSign(batch_size=batch).score(ScoringContext(ARCH, inputs=bank, seed=0))
    assert calls == [taken]


def test_both_batchings_give_the_proxy_the_same_score(bank):
    ctx = ScoringContext(ARCH, inputs=bank, seed=0)
    x, y = ctx.batch(16)
    x = x.contiguous()
    a = gradsign_score(ctx.network(affine=False, track=False, channels_last=False), x, y)
    b = gradsign_score_batched(ctx.network(affine=False, track=False, channels_last=False), x, y)
    assert b == pytest.approx(a, rel=1e-6)


@pytest.mark.parametrize("conv", [
    nn.Conv2d(3, 16, 3, padding=1, groups=1, dilation=2),
    nn.Conv2d(3, 48, 3, padding=1, groups=3),
    nn.Conv2d(3, 16, 3, padding=1, padding_mode="reflect"),
    nn.Conv2d(3, 16, 3, padding="same"),
], ids=["dilated", "grouped", "reflect-padded", "same-padded"])
def test_convolutions_the_batched_pass_cannot_take_are_left_to_vmap(conv):
    net = build_network(ARCH, affine=False, track_running_stats=False)
    x = torch.zeros(2, 3, 32, 32)
    assert gs._batchable(net, x)
    net.stem[0] = conv
    assert not gs._batchable(net, x)


def test_other_modules_and_other_networks_are_left_to_vmap():
    class Mixing(nn.Module):  # mixes the samples of a batch, as BN does
        def forward(self, x):
            return x - x.mean(0, keepdim=True)

    x = torch.zeros(2, 3, 32, 32)
    net = build_network(ARCH, affine=False, track_running_stats=False)
    net.lastact.append(Mixing())
    assert not gs._batchable(net, x)
    assert not gs._batchable(TinyBN(), x)
    assert not gs._batchable(build_network(ARCH), torch.zeros(2, 3, 32, 32, device="meta"))


def test_eval_mode_batch_norm_is_per_sample_in_both_batchings():
    gen = torch.Generator().manual_seed(2)
    net = TinyBN().double()
    x = torch.randn(6, 3, 5, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (6,), generator=gen)
    with torch.no_grad():
        net.bn.running_mean.fill_(3.0)  # running statistics that would change every gradient
    net.eval()
    want = reference_loop(copy.deepcopy(net).train(), x, y)
    assert gradsign_score_batched(copy.deepcopy(net), x, y) == want
    assert gradsign_score(copy.deepcopy(net), x, y) == want


def test_deterministic_across_contexts(bank):
    def run():
        return GradSign(batch_size=BS).score(ScoringContext(ARCH, inputs=bank, seed=0))

    assert run() == run()


def test_all_none_cell_returns_float(bank):
    value = GradSign(batch_size=BS).score(ScoringContext(NONE, inputs=bank, seed=0))
    assert isinstance(value, float) and value == 0.0


def test_recipe_declared():
    info = GradSign.info
    assert (info.batch_size, info.n_batches, info.bn, info.init) == (128, 1, "train", "default")
    assert info.needs_images and info.needs_labels
