import math

import pytest
import torch
from torch import nn

from zcnas.scoring import InputBank, ScoringContext
from zcnas_proxies.zen import NOISE_SEED, Zen, bn_log_scale, redraw_normal, zen_score

MID = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
# edge 0->1 (conv) and 1->2 (conv 1x1) feed node 2, which only feeds ``none``: dead BN layers
DEAD = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
BS = 8
DATASET = "ImageNet16-120"  # 16x16 inputs keep the tests fast


def _inputs(ctx, n=1):
    """The proxy's inputs: shared Gaussian batches and the seeded perturbations."""
    noise = torch.Generator().manual_seed(ctx.seed + NOISE_SEED)
    return [(x, torch.randn(x.shape, generator=noise)) for x, _ in ctx.batches(BS, n, "gaussian")]


def _ctx(arch, seed=0):
    bank = InputBank(DATASET, seed=seed, source="synthetic")
    return ScoringContext(arch, dataset=DATASET, inputs=bank, seed=seed)


def _reference(net, x, x2, gamma=1e-2):
    """compute_zen_score.py's loop body, literally (weights already N(0, 1))."""
    with torch.no_grad():
        def pre_gap(inp):
            f = net.stem(inp)
            for cell in net.cells:
                f = cell(f)
            return net.lastact(f)

        out = pre_gap(x)
        mixed = pre_gap(x + gamma * x2)
        s = torch.mean(torch.sum(torch.abs(out - mixed), dim=[1, 2, 3]))
        log_bn = 0.0
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                log_bn += torch.log(torch.sqrt(torch.mean(m.running_var)))
        return float(torch.log(s) + log_bn)


@pytest.mark.parametrize("arch", [MID, DEAD])
def test_matches_literal_reference_on_the_naive_network(arch):
    ctx = _ctx(arch)
    got = Zen(batch_size=BS).score(ctx)
    net = ctx.network(affine=True, track=True, init="normal", prune=False)
    x, x2 = _inputs(ctx)[0]
    assert got == pytest.approx(_reference(net, x, x2), rel=1e-5)


def test_dead_edge_batchnorms_count():
    # The pruned network lacks the BN layers of dead edges, whose running variance the
    # reference adds: the proxy must score the naive network.
    ctx = _ctx(DEAD)
    naive = ctx.network(affine=True, track=True, init="normal", prune=False)
    pruned = ctx.network(affine=True, track=True, init="default", prune=True)
    pruned.load_state_dict(naive.state_dict(), strict=False)
    n_bn = lambda net: sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # noqa: E731
    assert n_bn(naive) == n_bn(pruned) + 15  # edge 1->2 is dead in each of the 15 cells
    x, x2 = _inputs(ctx)[0]
    on_pruned = _reference(pruned, x, x2)
    on_naive = _reference(naive, x, x2)
    assert Zen(batch_size=BS).score(ctx) == pytest.approx(on_naive, rel=1e-6)
    assert on_pruned != pytest.approx(on_naive, rel=1e-3)


class _Toy(nn.Module):
    """stem/cells/lastact with no BN: f(x) = 3 x, so d = 3 * gamma * mean_b sum |e|."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Identity()
        self.cells = nn.ModuleList()
        self.lastact = nn.Identity()

    def forward(self, x):  # pragma: no cover - not used
        return x


def test_closed_form_without_batchnorm():
    net = _Toy()
    net.stem = _Scale(3.0)
    x = torch.randn(4, 3, 5, 5)
    e = torch.randn(4, 3, 5, 5)
    want = math.log(3 * 0.01 * float(e.abs().sum()) / 4)
    assert zen_score(net, x, e) == pytest.approx(want, rel=1e-5)


class _Scale(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return self.k * x


def test_redraw_equals_the_initialisation_of_a_fresh_network():
    ctx = _ctx(MID)
    fresh = ctx.network(init="normal", prune=False)
    net = ctx.network(init="default", prune=False)  # channels-last on CPU
    redraw_normal(net, torch.Generator().manual_seed(ctx.seed))
    for (name, a), b in zip(fresh.state_dict().items(), net.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_bn_log_scale_reads_running_var():
    net = nn.Sequential(nn.BatchNorm2d(2), nn.BatchNorm2d(3))
    net[0].running_var.copy_(torch.tensor([4.0, 12.0]))  # mean 8
    net[1].running_var.fill_(0.25)
    assert bn_log_scale(net) == pytest.approx(math.log(math.sqrt(8)) + math.log(0.5))


def test_repeats_carry_running_stats_like_the_reference():
    ctx = _ctx(MID)
    got = Zen(batch_size=BS, n_batches=2).score(ctx)
    net = ctx.network(affine=True, track=True, init="default", prune=False)
    gen = torch.Generator().manual_seed(ctx.seed)
    want = []
    for x, e in _inputs(ctx, 2):
        redraw_normal(net, gen)
        want.append(_reference(net, x, e))
    assert got == pytest.approx(sum(want) / 2, rel=1e-5)


def test_all_none_cell_is_minus_inf():
    value = Zen(batch_size=BS).score(_ctx(ALL_NONE))
    assert isinstance(value, float) and value == -math.inf


def test_deterministic_across_fresh_contexts():
    assert Zen(batch_size=BS).score(_ctx(DEAD)) == Zen(batch_size=BS).score(_ctx(DEAD))


def test_recipe_declared():
    info = Zen.info
    assert (info.input, info.needs_images, info.init, info.transform) == (
        "gaussian", False, "normal", "log")
    assert Zen().batch_size == 64 and Zen().n_batches == 1
