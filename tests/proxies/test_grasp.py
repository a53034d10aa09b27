"""grasp: an explicit Hessian on a tiny network, the literal foresight two-forward algorithm on the
naive NB201 network, determinism, degenerate cells, the pass shared with grad_norm/snip/fisher."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zcnas.models.hessian import for_double_backward
from zcnas.scoring import InputBank, ScoringContext
from zcnas_proxies.gradient import Fisher, GradNorm, Snip
from zcnas_proxies.grasp import Grasp, grasp_score

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
DEAD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|none~2|"
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
BS = 12


@pytest.fixture(scope="module")
def bank(data_root):
    return InputBank("cifar10", seed=0, source="real", root=data_root)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.fc = nn.Linear(3 * 4 * 4, 5)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


def explicit_hessian_score(net, batches):
    """-W . (H g) with H the full Hessian matrix of sum_b L_b and g = sum_b grad L_b."""
    weights = [net.conv.weight, net.fc.weight]
    flat = torch.cat([w.detach().reshape(-1) for w in weights])
    shapes = [w.shape for w in weights]
    sizes = [w.numel() for w in weights]

    def loss_of(v):
        parts = [p.reshape(s) for p, s in zip(v.split(sizes), shapes, strict=True)]
        params = {"conv.weight": parts[0], "fc.weight": parts[1],
                  "fc.bias": net.fc.bias.detach()}
        return sum(F.cross_entropy(torch.func.functional_call(net, params, (x,)), y)
                   for x, y in batches)

    g = torch.autograd.functional.jacobian(loss_of, flat)
    h = torch.autograd.functional.hessian(loss_of, flat, vectorize=True)
    return float(-(flat * (h @ g)).sum())


@pytest.mark.parametrize("n", [1, 2])
def test_explicit_hessian_on_tiny_network(n):
    gen = torch.Generator().manual_seed(3)
    net = Tiny().double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    batches = [(torch.randn(6, 2, 4, 4, generator=gen, dtype=torch.float64),
                torch.randint(0, 5, (6,), generator=gen)) for _ in range(n)]
    want = explicit_hessian_score(net, batches)
    assert grasp_score(net, batches) == pytest.approx(want, rel=1e-9)
    assert want != 0


def foresight_grasp(net, x, y):
    """The reference: grad_w from forward 1, grad_f (create_graph) from forward 2, z.backward()."""
    weights = [m.weight for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    net.zero_grad()
    grad_w = torch.autograd.grad(F.cross_entropy(net(x), y), weights, allow_unused=True)
    grad_f = torch.autograd.grad(F.cross_entropy(net(x), y), weights, create_graph=True,
                                 allow_unused=True)
    z = 0
    for gw, gf in zip(grad_w, grad_f, strict=True):
        if gw is not None:
            z += (gw.data * gf).sum()
    z.backward()
    total = 0.0
    for w in weights:
        if w.grad is not None:
            total += float((-w.data * w.grad).sum())
    return total


@pytest.mark.parametrize("arch", [ARCH, DEAD])
def test_matches_literal_foresight_on_naive_network(bank, arch):
    ctx = ScoringContext(arch, inputs=bank, seed=0)
    build = ctx.network  # pruned networks carry the naive network's weights
    got = Grasp(batch_size=BS).score(ctx)
    # NCHW like the proxy (and the reference's CUDA run): float32 GraSP moves by ~1e-2 between
    # memory formats, more than the difference between one forward and two
    naive = build(affine=False, track=False, prune=False, channels_last=False)
    x, y = ctx.batch(BS)
    want = foresight_grasp(naive, x.contiguous(), y)
    assert got == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert got != 0


def test_deterministic_across_contexts(bank):
    def run():
        return Grasp(batch_size=BS).score(ScoringContext(ARCH, inputs=bank, seed=0))

    assert run() == run()


def test_all_none_cell_returns_float(bank):
    value = Grasp(batch_size=BS).score(ScoringContext(NONE, inputs=bank, seed=0))
    assert isinstance(value, float) and value == 0.0


def test_recipe_declared():
    info = Grasp.info
    assert (info.batch_size, info.n_batches, info.bn, info.init) == (64, 1, "train", "default")
    assert info.needs_images and info.needs_labels and info.higher_is_better


def _scores(arch, bank, proxies):
    ctx = ScoringContext(arch, inputs=bank, seed=0,
                         requests=[r for p in proxies for r in p.requests()])
    return [p.score(ctx) for p in proxies], ctx


@pytest.mark.parametrize("arch", [ARCH, DEAD, NONE])
def test_shares_one_pass_with_the_foresight_gradient_proxies(bank, arch):
    """foresight's four gradient proxies run one pass; every value is bitwise the value it has
    alone, and GraSP's the value of its own unshared network (grasp_score)."""
    def four():
        return [GradNorm(batch_size=BS), Snip(batch_size=BS), Fisher(batch_size=BS),
                Grasp(batch_size=BS)]

    shared, ctx = _scores(arch, bank, four())
    assert len(ctx.pass_seconds) == 1
    alone = [_scores(arch, bank, [p])[0][0] for p in four()]
    assert shared == alone
    net = for_double_backward(ctx.network(affine=False, track=False, channels_last=False))
    x, y = ctx.batch(BS)
    assert shared[3] == grasp_score(net, [(x.contiguous(), y)])
    if arch != NONE:
        assert all(v != 0 for v in shared)


def test_more_batches_keep_their_own_unshared_network(bank):
    proxies = [GradNorm(batch_size=BS), Grasp(batch_size=BS, n_batches=2)]
    (_, two), ctx = _scores(ARCH, bank, proxies)
    assert Grasp(batch_size=BS, n_batches=2).requests() == ()
    assert len(ctx.pass_seconds) == 1  # grad_norm's; GraSP over two batches is computed apart
    net = for_double_backward(ctx.network(affine=False, track=False, channels_last=False))
    batches = [(x.contiguous(), y) for x, y in ctx.batches(BS, 2)]
    assert two == grasp_score(net, batches)
