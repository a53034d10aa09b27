"""The topology-space supernet: paths equal their stand-alone networks, relaxation, pruning,
de-isomorphic sampling, BN recalibration."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from zcnas.errors import OutsideSupernetError
from zcnas.models import build_network, count_parameters
from zcnas.models.supernet import PathSampler, Supernet, recalibrate_bn
from zcnas.spaces import nats_tss

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "nor_conv_1x1~2|",
    "|none~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|",  # dead edges
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # computes zero
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|"
    "skip_connect~2|",
]


@pytest.fixture(scope="module")
def supernet() -> Supernet:
    torch.manual_seed(0)
    net = Supernet("cifar10")
    net.train()
    with torch.no_grad():  # move BN statistics away from their initial values
        for arch in ARCHS:
            net(torch.randn(8, 3, 32, 32), arch)
    net.eval()
    return net


@pytest.mark.parametrize("arch", ARCHS)
def test_path_equals_its_standalone_network(supernet, arch):
    x = torch.randn(4, 3, 32, 32)
    net = supernet.extract(arch).eval()
    with torch.no_grad():
        assert torch.equal(net(x), supernet(x, arch))
    assert sum(p.numel() for p in supernet.path_parameters(arch)) == count_parameters(
        build_network(arch, affine=False))


def test_cell_bn_has_no_affine_parameters(supernet):
    cell_bns = [m for name, m in supernet.named_modules()
                if ".edges." in name and isinstance(m, torch.nn.BatchNorm2d)]
    assert cell_bns and all(not m.affine and m.track_running_stats for m in cell_bns)


def test_one_hot_relaxation_equals_the_path(supernet):
    arch = ARCHS[0]  # every edge live, every node non-zero
    w = torch.zeros(6, 5)
    for e, op in enumerate(nats_tss.parse_arch(arch).ops):
        w[e, nats_tss.OPS.index(op)] = 1.0
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(supernet(x, weights=w), supernet(x, arch), atol=1e-5)


def test_relaxation_gives_gradients_to_the_weights(supernet):
    w = torch.full((6, 5), 0.2, requires_grad=True)
    supernet(torch.randn(2, 3, 32, 32), weights=w).sum().backward()
    assert torch.all(w.grad[:, 1:] != 0)  # `none` contributes nothing
    with pytest.raises(ValueError):
        supernet(torch.randn(1, 3, 32, 32))


def test_prune_keeps_the_ops_of_the_elites_and_refuses_the_rest():
    net = Supernet("cifar10")
    elites = [ARCHS[0], ARCHS[3]]
    removed = net.prune(elites)
    assert net.space_size() == 2 ** 5 * 1  # edge 0->3 is skip_connect in both
    assert all(net.contains(a) for a in elites)
    assert (0, "none") in removed and len(removed) == 6 * 5 - 11
    with pytest.raises(OutsideSupernetError, match="pruned from the supernet"):
        net(torch.randn(1, 3, 32, 32), ARCHS[2])
    # the pruning travels with the state dict
    other = Supernet("cifar10")
    other.load_state_dict(net.state_dict())
    assert np.array_equal(other.allowed, net.allowed) and other.pruned_at == net.pruned_at


def test_resolve_finds_an_isomorph_inside_the_pruned_supernet():
    net = Supernet("cifar10")
    # keep only `none` and conv3x3 on edge 1->2
    net.allowed[2] = [True, False, False, True, False]
    dead = "|none~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_3x3~0|none~1|nor_conv_3x3~2|"
    cell = net.resolve(dead)  # node 1 is zero: the op on 1->2 does not matter
    assert net.contains(cell)
    assert nats_tss.canonical_key(cell) == nats_tss.canonical_key(dead)


def test_sampling_is_de_isomorphic():
    net = Supernet("cifar10")
    sampler = PathSampler(net)
    assert len(sampler) == 6466
    rng = np.random.default_rng(0)
    keys = Counter(nats_tss.canonical_key(sampler.sample(rng)) for _ in range(3000))
    raw = Counter(nats_tss.canonical_key(nats_tss.sample(rng)) for _ in range(3000))
    big = nats_tss.canonical_key(max(nats_tss.isomorphism_classes(), key=len)[0])
    assert raw[big] > 30  # raw strings: the 275-member class gets 1.8% of the draws
    assert keys[big] <= 5  # de-isomorphic: one class in 6,466
    assert max(keys.values()) <= 5


def test_pool_sampling_stays_in_the_pool_and_inside_the_supernet():
    net = Supernet("cifar10")
    pool = ARCHS[:2]
    sampler = PathSampler(net, pool)
    rng = np.random.default_rng(1)
    keys = {nats_tss.canonical_key(a) for a in pool}
    assert {nats_tss.canonical_key(sampler.sample(rng)) for _ in range(50)} == keys
    net.prune([ARCHS[0]])
    with pytest.raises(RuntimeError):
        sampler.sample(rng)
    pruned = PathSampler(net)
    assert len(pruned) == 1 and net.contains(pruned.sample(rng))
    with pytest.raises(OutsideSupernetError):
        PathSampler(net, [ARCHS[3]])


def test_recalibration_sets_the_cumulative_batch_statistics():
    torch.manual_seed(0)
    net = Supernet("cifar10")
    batches = [torch.randn(8, 3, 32, 32) * (i + 1) for i in range(3)]
    assert recalibrate_bn(net, batches, lambda x: net(x, ARCHS[0])) == 3
    assert not net.training
    stem_bn = net.stem[1]
    means = [net.stem[0](b).mean(dim=(0, 2, 3)) for b in batches]
    assert torch.allclose(stem_bn.running_mean, torch.stack(means).mean(0), atol=1e-5)
    assert stem_bn.momentum == 0.1  # restored
