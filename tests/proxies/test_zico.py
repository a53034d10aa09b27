"""zico: a closed-form case, the literal AZ-NAS port (numpy) on the naive network, sharing the
``ce`` pass, determinism, degenerate cells."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zcnas.proxy import ProxyError
from zcnas.scoring import InputBank, ScoringContext
from zcnas.scoring.passes import CESpec, ce_request
from zcnas_proxies.zico import Zico, zico_score

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
DEAD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|none~2|"
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
BS = 16


@pytest.fixture(scope="module")
def bank(data_root):
    return InputBank("cifar10", seed=0, source="real", root=data_root)


def make_ctx(arch, bank, proxies=(), extra=()):
    return ScoringContext(arch, inputs=bank, seed=0,
                          requests=[r for p in proxies for r in p.requests()] + list(extra))


def test_closed_form():
    grads = [
        {"a": torch.tensor([1.0, 3.0, 2.0]), "b": torch.ones(2), "c": torch.tensor([-1.0])},
        {"a": torch.tensor([3.0, 1.0, 2.0]), "b": torch.ones(2), "c": torch.tensor([1.0])},
    ]
    # a: std [1, 1, 0] -> (2/1 + 2/1) = 4; b: std 0 everywhere, skipped; c: 1/1 -> log 1 = 0
    assert zico_score(grads) == pytest.approx(math.log(4))
    assert zico_score([{"a": torch.zeros(3)}, {"a": torch.zeros(3)}]) == 0.0


def reference_zico(net, batches):
    """The AZ-NAS port: zero_grad(set_to_none) per batch, numpy snapshots, np.std statistics."""
    grad_dict = {}
    for i, (x, y) in enumerate(batches):
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        for name, mod in net.named_modules():
            if isinstance(mod, nn.Conv2d | nn.Linear) and mod.weight.grad is not None:
                grad_dict.setdefault(name, []).append(mod.weight.grad.data.reshape(-1).numpy())
                assert len(grad_dict[name]) == i + 1
    total = 0.0
    for name in grad_dict:
        g = np.array(grad_dict[name])
        std = np.std(g, axis=0)
        nonzero = np.nonzero(std)[0]
        tmpsum = np.sum(np.mean(np.abs(g), axis=0)[nonzero] / std[nonzero])
        if tmpsum != 0:
            total += np.log(tmpsum)
    return float(total)


@pytest.mark.parametrize("arch", [ARCH, DEAD])
def test_matches_reference_on_naive_network(bank, arch):
    ctx = make_ctx(arch, bank)
    build = ctx.network

    def network(**kw):
        pruned = build(**kw)
        pruned.load_state_dict(build(**{**kw, "prune": False}).state_dict(), strict=False)
        return pruned

    ctx.network = network
    got = Zico(batch_size=BS).score(ctx)
    naive = build(affine=True, track=False, prune=False)
    want = reference_zico(naive, ctx.batches(BS, 2))
    assert got == pytest.approx(want, rel=1e-5)
    assert got > 0


def test_shares_the_ce_pass_and_scores_the_same(bank):
    spec = CESpec(affine=True, track=False, init="default", batch_size=BS)
    other = ce_request(spec, 3, "grads", "losses")  # another reader of the same configuration
    ctx = make_ctx(ARCH, bank, [Zico(batch_size=BS)], [other])
    shared = Zico(batch_size=BS).score(ctx)
    ctx.run_pass(other)
    assert len(ctx.pass_seconds) == 1  # the 3-batch pass served both
    assert shared == Zico(batch_size=BS).score(make_ctx(ARCH, bank, [Zico(batch_size=BS)]))
    assert Zico().requests()[0].spec == CESpec(affine=True, track=False, batch_size=64)


def test_deterministic_across_contexts(bank):
    def run():
        return Zico(batch_size=BS).score(make_ctx(ARCH, bank, [Zico(batch_size=BS)]))

    assert run() == run()


def test_all_none_cell_returns_float(bank):
    value = Zico(batch_size=BS).score(make_ctx(NONE, bank))
    assert isinstance(value, float) and value == 0.0


def test_recipe_declared():
    info = Zico.info
    assert (info.batch_size, info.n_batches, info.bn, info.init) == (64, 2, "train", "default")
    assert info.needs_images and info.needs_labels
    with pytest.raises(ProxyError):
        Zico(n_batches=1)
