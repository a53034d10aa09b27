import numpy as np
import pytest
import torch

from zcnas.models import build_network, count_flops, count_parameters
from zcnas.spaces import nats_sss, nats_tss
from zcnas.spaces.plan import count_costs, sss_plan, tss_plan

TSS = {
    0: "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    11: "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    284: "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|",
}
SSS = {0: "8:8:8:8:8", 11: "8:8:8:16:32", 284: "8:8:40:32:40"}
# Official values: nats_bench get_cost_info(i, dataset) on the sample archives
# (params in millions, FLOPs in millions).
OFFICIAL = {
    ("tss", 0): {"cifar10": (0.129306, 15.64737), "cifar100": (0.135156, 15.65322),
                 "ImageNet16-120": (0.136456, 3.91948)},
    ("tss", 11): {"cifar10": (0.802426, 113.95137), "cifar100": (0.808276, 113.95722),
                  "ImageNet16-120": (0.809576, 28.49548)},
    ("tss", 284): {"cifar10": (0.101306, 11.71521), "cifar100": (0.107156, 11.72106),
                   "ImageNet16-120": (0.108456, 2.93644)},
    ("sss", 0): {"cifar10": (0.011714, 4.481114), "cifar100": (0.012524, 4.481924),
                 "ImageNet16-120": (0.012704, 1.121336)},
    ("sss", 11): {"cifar10": (0.049202, 6.84065), "cifar100": (0.052172, 6.84362),
                  "ImageNet16-120": (0.052832, 1.71404)},
    ("sss", 284): {"cifar10": (0.144834, 21.827994), "cifar100": (0.148524, 21.831684),
                   "ImageNet16-120": (0.149344, 5.461816)},
}
CASES = [(sp, i, ds) for (sp, i), per in OFFICIAL.items() for ds in per]


@pytest.mark.parametrize("space, index, dataset", CASES)
def test_params_and_flops_match_official(space, index, dataset):
    arch = TSS[index] if space == "tss" else SSS[index]
    want_params, want_flops = OFFICIAL[(space, index)][dataset]
    plan = (tss_plan if space == "tss" else sss_plan)(arch, dataset)
    costs = count_costs(plan)
    assert costs.params_m == pytest.approx(want_params, rel=5e-3)
    assert costs.flops_m == pytest.approx(want_flops, rel=5e-3)
    # The torch build counts the same (dead edges included in the naive build).
    net = build_network(arch, space, dataset, prune=False)
    assert count_parameters(net) / 1e6 == pytest.approx(want_params, rel=5e-3)
    assert count_flops(net, plan.resolution) / 1e6 == pytest.approx(want_flops, rel=5e-3)


def test_analytic_costs_agree_with_torch_on_random_cells():
    rng = np.random.default_rng(7)
    for _ in range(10):
        cell = nats_tss.sample(rng)
        net = build_network(cell, prune=False)
        costs = count_costs(tss_plan(cell))
        assert count_parameters(net) == costs.params
        assert count_flops(net, 32) == costs.flops
    for _ in range(5):
        g = nats_sss.sample(rng)
        net = build_network(g, "sss", "cifar100", prune=False)
        costs = count_costs(sss_plan(g, "cifar100"))
        assert count_parameters(net) == costs.params
        assert count_flops(net, 32) == costs.flops


DEGENERATE = [
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",
    TSS[284],
    TSS[11],
    "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|",
]


@pytest.mark.parametrize("arch", DEGENERATE)
@pytest.mark.parametrize("space", ["tss"])
def test_pruned_build_gives_identical_logits(arch, space):
    torch.manual_seed(0)
    naive = build_network(arch, prune=False)
    pruned = build_network(arch, prune=True)
    missing, _unexpected = pruned.load_state_dict(naive.state_dict(), strict=False)
    assert not missing
    x = torch.randn(4, 3, 32, 32)
    for mode in (True, False):
        naive.train(mode)
        pruned.train(mode)
        assert torch.equal(naive(x), pruned(x))
    assert count_parameters(pruned) <= count_parameters(naive)


def test_pruned_build_random_cells_identical_logits_and_grads():
    rng = np.random.default_rng(3)
    x = torch.randn(4, 3, 32, 32)
    n_smaller = 0
    for _ in range(12):
        cell = nats_tss.sample(rng)
        naive = build_network(cell, prune=False)
        pruned = build_network(cell)
        pruned.load_state_dict(naive.state_dict(), strict=False)
        a, b = naive(x), pruned(x)
        assert torch.equal(a, b)
        a.sum().backward()
        b.sum().backward()
        grads = dict(naive.named_parameters())
        for name, p in pruned.named_parameters():
            assert torch.allclose(p.grad, grads[name].grad, atol=1e-6), name
        n_smaller += count_parameters(pruned) < count_parameters(naive)
    assert n_smaller > 0  # pruning did remove something on some cells


def test_all_zero_cell_outputs_zero_features():
    net = build_network("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert all(len(c.edges) == 0 for c in net.cells if hasattr(c, "edges"))
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("dataset, classes, res", [("cifar10", 10, 32), ("cifar100", 100, 32),
                                                    ("ImageNet16-120", 120, 16)])
@pytest.mark.parametrize("space, arch", [("tss", TSS[11]), ("sss", SSS[284])])
def test_forward_shapes(space, arch, dataset, classes, res):
    net = build_network(arch, space, dataset)
    assert net(torch.randn(2, 3, res, res)).shape == (2, classes)


def test_options_bn_and_classes():
    net = build_network(TSS[11], affine=False, track_running_stats=False, num_classes=1)
    convs = [m for c in net.cells if hasattr(c, "edges") for m in c.modules()
             if isinstance(m, torch.nn.Conv2d)]
    bns = [m for c in net.cells if hasattr(c, "edges") for m in c.modules()
           if isinstance(m, torch.nn.BatchNorm2d)]
    assert convs and all(c.bias is not None for c in convs)
    assert bns and all(not b.affine and b.running_mean is None for b in bns)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 1)
    official = build_network(TSS[11])
    assert all(m.bias is None for m in official.modules() if isinstance(m, torch.nn.Conv2d))


def _relu_kernel(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """NASWOT's kernel: sum over ReLU modules of c c^T + (1-c)(1-c)^T of binary input codes."""
    k = torch.zeros(x.shape[0], x.shape[0], dtype=torch.float64)

    def hook(_m, inp, _out):
        nonlocal k
        c = (inp[0].flatten(1) > 0).double()
        k = k + c @ c.T + (1 - c) @ (1 - c).T

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if isinstance(m, torch.nn.ReLU)]
    net.train()
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    return k


DEGENERATE = [
    "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",  # output always zero
    "|none~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|",  # probe reads a zero node
    "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|skip_connect~0|none~1|none~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|none~2|",
]


@pytest.mark.parametrize("seed", [0, 1])
def test_relu_probes_reproduce_every_naive_relu_input(seed):
    rng = np.random.default_rng(seed)
    cells = [nats_tss.parse_arch(a) for a in DEGENERATE] + [nats_tss.sample(rng)
                                                           for _ in range(10)]
    x = torch.randn(6, 3, 32, 32)
    n_cheaper = 0
    for cell in cells:
        naive = build_network(cell, prune=False)
        probed = build_network(cell, relu_probes=True)
        missing, _ = probed.load_state_dict(naive.state_dict(), strict=False)
        assert not missing
        assert torch.equal(_relu_kernel(naive, x), _relu_kernel(probed, x)), str(cell)
        naive.eval()
        probed.eval()
        assert torch.equal(naive(x), probed(x))
        n_cheaper += count_flops(probed, 32) < count_flops(naive, 32)
    assert n_cheaper > 0


def test_plain_pruning_loses_dead_relu_inputs():
    # the reason probes exist: without them a dead conv edge's ReLU is not seen
    cell = DEGENERATE[2]
    x = torch.randn(6, 3, 32, 32)
    naive = build_network(cell, prune=False)
    pruned = build_network(cell)
    pruned.load_state_dict(naive.state_dict(), strict=False)
    assert not torch.equal(_relu_kernel(naive, x), _relu_kernel(pruned, x))


def _structure(net):
    return [(name, type(m).__name__) for name, m in net.named_modules()]


@pytest.mark.parametrize("relu_probes", [False, True])
def test_pruning_in_place_is_the_pruned_build_with_the_naive_weights(relu_probes):
    rng = np.random.default_rng(5)
    cells = [nats_tss.parse_arch(a) for a in DEGENERATE] + [nats_tss.sample(rng)
                                                           for _ in range(8)]
    x = torch.randn(4, 3, 32, 32)
    for cell in cells:
        naive = build_network(cell, prune=False)
        built = build_network(cell, relu_probes=relu_probes)
        built.load_state_dict(naive.state_dict(), strict=False)
        in_place = naive.prune_(relu_probes=relu_probes)
        assert _structure(in_place) == _structure(built), str(cell)  # order too
        assert list(in_place.state_dict()) == list(built.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(in_place.state_dict().values(),
                                                    built.state_dict().values(), strict=True))
        assert torch.equal(_relu_kernel(in_place, x), _relu_kernel(built, x)), str(cell)
        assert torch.equal(in_place(x), built(x))
    with pytest.raises(ValueError, match="already pruned"):
        in_place.prune_()


def test_pruning_a_size_space_network_in_place_keeps_it_whole():
    # the size space's cell has every edge live: pruning drops nothing
    naive = build_network(SSS[284], "sss", prune=False)
    built = build_network(SSS[284], "sss")
    built.load_state_dict(naive.state_dict(), strict=False)
    before = _structure(naive)
    x = torch.randn(4, 3, 32, 32)
    assert _structure(naive.prune_()) == before == _structure(built)
    assert torch.equal(naive(x), built(x))
