"""grad_norm, snip, fisher: closed-form cases, the literal foresight algorithms on the naive
network, the shared pass's per-channel Fisher, determinism, degenerate cells, sharing."""

from __future__ import annotations

import math
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zcnas.proxy import ProxyError
from zcnas.scoring import InputBank, ScoringContext
from zcnas.scoring.passes import CESpec, ce_request
from zcnas_proxies.gradient import (
    Fisher,
    GradNorm,
    Snip,
    fisher_score,
    foresight_spec,
    grad_norm_score,
    snip_score,
)

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
# conv edges 0->1, 0->2, 1->2 are dead (they only feed ``none``): zero gradient in the naive net
DEAD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|none~2|"
BS = 16


@pytest.fixture(scope="module")
def bank(data_root):
    return InputBank("cifar10", seed=0, source="real", root=data_root)


def make_ctx(arch, bank, proxies=()):
    return ScoringContext(arch, inputs=bank, seed=0,
                          requests=[r for p in proxies for r in p.requests()])


def layers(net):
    return [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


# --- closed form ---------------------------------------------------------------------------------


def test_scores_closed_form():
    grads = {"a": torch.tensor([3.0, 4.0]), "b": torch.eye(2)}
    assert grad_norm_score(grads) == pytest.approx(5 + math.sqrt(2))
    weights = {"a": torch.tensor([-2.0, 0.5]), "b": torch.tensor([[1.0, 7.0], [7.0, -3.0]])}
    assert snip_score(weights, grads) == pytest.approx(6 + 2 + 1 + 3)
    # per-channel Fisher [1, 2] of a (2, 3, 1, 1) conv: each channel counts 3 weights
    conv_w = {"c": torch.zeros(2, 3, 1, 1), "l": torch.zeros(4, 5)}
    fisher = {"c": torch.tensor([1.0, 2.0]), "l": torch.tensor([0.5, 0.0, 0.0, 0.0])}
    assert fisher_score(conv_w, fisher) == pytest.approx(9 + 2.5)


# --- the literal foresight algorithms on the naive network ---------------------------------------


def foresight_reference(net, x, y):
    """grad_norm, snip (weight masks), fisher (dummy-identity hooks + channel broadcast)."""
    convs = layers(net)
    # grad_norm
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    gn = sum(float(m.weight.grad.norm()) if m.weight.grad is not None else 0.0 for m in convs)
    # snip: gradient w.r.t. a multiplicative mask of ones
    masks = {}
    for m in convs:
        masks[m] = torch.ones_like(m.weight, requires_grad=True)

        def fwd(self, inp, mask=masks[m]):
            w = self.weight * mask
            if isinstance(self, nn.Linear):
                return F.linear(inp, w, self.bias)
            return F.conv2d(inp, w, self.bias, self.stride, self.padding, self.dilation,
                            self.groups)

        m.forward = types.MethodType(fwd, m)
    loss = F.cross_entropy(net(x), y)
    mask_grads = torch.autograd.grad(loss, list(masks.values()))
    sn = sum(float(g.abs().sum()) for g in mask_grads)
    for m in convs:
        del m.forward
    # fisher: act after an identity, its gradient via a backward hook, broadcast per channel
    per_channel = {}
    for m in convs:
        m.dummy = nn.Identity()

        def fwd(self, inp):
            out = nn.Linear.forward(self, inp) if isinstance(self, nn.Linear) else \
                nn.Conv2d.forward(self, inp)
            self.act = self.dummy(out)
            return self.act

        def hook(module, grad_in, grad_out, layer=m):
            act, g = layer.act.detach(), grad_out[0].detach()
            g_nk = (act * g).sum(list(range(2, act.dim()))) if act.dim() > 2 else act * g
            per_channel[layer] = g_nk.pow(2).mean(0).mul(0.5)

        m.forward = types.MethodType(fwd, m)
        m.dummy.register_full_backward_hook(hook)
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    fi = 0.0
    for m in convs:
        values = per_channel.get(m, torch.zeros(m.weight.shape[0]))
        fi += float(torch.stack([torch.full(m.weight.shape[1:], float(v)) for v in values]).sum())
    return gn, sn, fi, per_channel


@pytest.mark.parametrize("arch", [ARCH, DEAD])
def test_matches_literal_foresight_on_naive_network(bank, arch):
    proxies = [GradNorm(batch_size=BS), Snip(batch_size=BS), Fisher(batch_size=BS)]
    ctx = make_ctx(arch, bank, proxies)
    build = ctx.network  # pruned networks carry the naive network's weights
    got = [p.score(ctx) for p in proxies]
    naive = build(affine=False, track=False, prune=False, channels_last=False)
    x, y = ctx.batch(BS)  # the recipe's contiguous tensors (foresight_spec)
    want = foresight_reference(naive, x.contiguous(), y)[:3]
    assert got == pytest.approx(want, rel=1e-5)
    assert all(v > 0 for v in got)


def test_shared_pass_fisher_is_foresight_per_channel_fisher(bank):
    ctx = make_ctx(DEAD, bank)
    build = ctx.network  # pruned networks carry the naive network's weights
    result = ctx.run_pass(ce_request(foresight_spec(BS), 1, "fisher"))
    naive = build(affine=False, track=False, prune=False, channels_last=False)
    x, y = ctx.batch(BS)
    per_channel = foresight_reference(naive, x.contiguous(), y)[3]
    by_name = {name: per_channel[m] for name, m in naive.named_modules() if m in per_channel}
    assert set(result.fisher) < set(by_name)
    for name, value in result.fisher.items():
        torch.testing.assert_close(value, by_name[name], rtol=1e-4, atol=1e-12)
    # the dead conv edges the pruned network does not build have zero Fisher in the naive one
    dead = set(by_name) - set(result.fisher)
    assert {n.split(".")[3] for n in dead} == {"e01", "e02", "e12"}
    assert all(float(by_name[n].abs().max()) == 0.0 for n in dead)


# --- determinism, degenerate cells, sharing ------------------------------------------------------


def test_deterministic_across_contexts(bank):
    def run():
        proxies = [GradNorm(batch_size=BS), Snip(batch_size=BS), Fisher(batch_size=BS)]
        ctx = make_ctx(ARCH, bank, proxies)
        return [p.score(ctx) for p in proxies]

    assert run() == run()


def test_all_none_cell_returns_floats(bank):
    proxies = [GradNorm(batch_size=BS), Snip(batch_size=BS), Fisher(batch_size=BS)]
    ctx = make_ctx(NONE, bank, proxies)
    values = [p.score(ctx) for p in proxies]
    assert all(isinstance(v, float) for v in values)
    assert values[0] == 0.0 and values[1] == 0.0  # the cells cut every gradient path


def test_sharing_one_pass_same_scores(bank):
    proxies = [GradNorm(batch_size=BS), Snip(batch_size=BS), Fisher(batch_size=BS)]
    ctx = make_ctx(ARCH, bank, proxies)
    shared = [p.score(ctx) for p in proxies]
    assert len(ctx.pass_seconds) == 1  # one forward/backward for all three
    alone = [p.score(make_ctx(ARCH, bank, [p])) for p in proxies]
    assert shared == alone


def test_n_batches_mean_gradient(bank):
    ctx = make_ctx(ARCH, bank)
    result = ctx.run_pass(ce_request(foresight_spec(BS), 2, "grads"))
    mean = {k: (result.grads[0][k] + result.grads[1][k]) / 2 for k in result.grads[0]}
    assert GradNorm(batch_size=BS, n_batches=2).score(ctx) == pytest.approx(
        grad_norm_score(mean), rel=1e-6)
    assert GradNorm(batch_size=BS).score(ctx) == pytest.approx(
        grad_norm_score(result.grads[0]), rel=1e-12)
    with pytest.raises(ProxyError):
        Fisher(n_batches=2)


def test_each_batch_keeps_its_own_gradients(bank):
    """The pass hands out the gradient tensors themselves (no copies): a later batch's
    backward must not write into an earlier batch's, and the model keeps no gradient."""
    two = make_ctx(ARCH, bank).run_pass(ce_request(foresight_spec(BS), 2, "grads"))
    one = make_ctx(ARCH, bank).run_pass(ce_request(foresight_spec(BS), 1, "grads"))
    assert two.grads[0].keys() == one.grads[0].keys()
    for name, g in one.grads[0].items():
        assert torch.equal(two.grads[0][name], g), name
    assert any(not torch.equal(two.grads[1][k], g) for k, g in one.grads[0].items())
    assert all(p.grad is None for p in two.model.parameters())


def test_recipe_declared():
    for cls in (GradNorm, Snip, Fisher):
        info = cls.info
        assert (info.batch_size, info.n_batches, info.bn, info.init) == (64, 1, "train", "default")
        assert info.needs_images and info.needs_labels and info.input == "real"
    assert GradNorm().requests() == Snip().requests()
    assert GradNorm().requests()[0].spec == foresight_spec(64)
    assert Fisher().requests()[0].spec == GradNorm().requests()[0].spec


# --- fisher: the default is unchanged, literal=True builds the zero-source edges -----------------

ZERO_SOURCE = "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
# computed by the code before fisher gained ``literal`` (commit 784601d), batch 16, then moved to
# contiguous tensors (version 2: ARCH moved by 3e-3, ZERO_SOURCE by 1e-4, NONE not at all); equal
# bitwise on the machine that made them, rel 1e-3 leaves room for other CPUs' summation order
PRE_LITERAL = {ARCH: 2.5932899010828976, ZERO_SOURCE: 0.2660595689879628,
               NONE: 0.0005657485154131336}


@pytest.mark.parametrize("arch", list(PRE_LITERAL))
def test_default_fisher_scores_are_unchanged(bank, arch):
    assert Fisher(batch_size=BS).score(make_ctx(arch, bank)) == pytest.approx(
        PRE_LITERAL[arch], rel=1e-3)


def test_default_fisher_reads_the_pre_literal_pass():
    # the pruned network on contiguous tensors, shared with grad_norm, snip and GraSP
    spec = Fisher().requests()[0].spec
    assert spec == CESpec(affine=False, track=False, init="default", batch_size=64,
                          channels_last=False)
    assert (spec.prune, spec.channels_last) == (True, False)
    assert Fisher().config() == {"batch_size": 64, "n_batches": 1, "literal": False}
    assert Fisher().spec() == "fisher"


def test_literal_fisher_is_its_own_naive_contiguous_pass(bank):
    literal = Fisher(batch_size=BS, literal=True)
    assert Fisher(literal=True).spec() == "fisher(literal=True)"
    spec = literal.requests()[0].spec
    assert (spec.prune, spec.channels_last) == (False, False)
    proxies = [GradNorm(batch_size=BS), Fisher(batch_size=BS), literal]
    ctx = make_ctx(ZERO_SOURCE, bank, proxies)
    default, lit = proxies[1].score(ctx), literal.score(ctx)
    assert len(ctx.pass_seconds) == 2  # the literal pass is not the shared pruned one
    assert lit > 10 * default  # bias x a gradient scaled by 1/sqrt(eps) on the zero-source edges
    # on a cell without zero-source edges the two differ by float32 rounding only
    ctx = make_ctx(ARCH, bank, proxies)
    assert literal.score(ctx) == pytest.approx(proxies[1].score(ctx), rel=1e-2)
    with pytest.raises(ProxyError):
        Fisher(literal=True, n_batches=2)
