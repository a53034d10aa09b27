import math

import pytest
import torch
from torch import nn

from zcnas.scoring import InputBank, ScoringContext
from zcnas.spaces import nats_tss
from zcnas_proxies.meco import Meco, correlations, meco_score, module_multiplicities

MID = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
DEAD = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"

# --- a literal port of the reference model (MeCo correlation/foresight/models/nasbench2*.py) ---

OPS = ["none", "avg_pool_3x3", "nor_conv_3x3", "nor_conv_1x1", "skip_connect"]


class FReLUConvBN(nn.Module):
    def __init__(self, c_in, c_out, k, stride, pad, affine, track):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad,
                                          bias=not affine),
                                nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track))

    def forward(self, x):
        return self.op(x)


class FIdentity(nn.Module):
    def forward(self, x):
        return x


class FZero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class FPooling(nn.Module):
    def __init__(self):
        super().__init__()
        self.avgpool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        return self.avgpool(x)


def f_op(name, c):
    if name == "none":
        return FZero()
    if name == "avg_pool_3x3":
        return FPooling()
    if name == "nor_conv_3x3":
        return FReLUConvBN(c, c, 3, 1, 1, False, False)
    if name == "nor_conv_1x1":
        return FReLUConvBN(c, c, 1, 1, 0, False, False)
    return FIdentity()


class FSearchCell(nn.Module):
    def __init__(self, c, keep):
        super().__init__()
        self.options = nn.ModuleList(f_op(name, c) for _ in range(6) for name in OPS)
        self.keep = keep

    def forward(self, x):
        outs, idx = [x], 0
        for cur in range(3):
            edges = []
            for _prev in range(cur + 1):
                for _op in range(len(OPS)):
                    if self.keep[idx]:
                        edges.append(self.options[idx](outs[_prev]))
                    idx += 1
            outs.append(sum(edges))
        return outs[-1]


class FReduction(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.residual = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(c_in, c_out, 1, bias=False))
        self.conv_a = FReLUConvBN(c_in, c_out, 3, 2, 1, True, True)
        self.conv_b = FReLUConvBN(c_out, c_out, 3, 1, 1, True, True)

    def forward(self, x):
        return self.residual(x) + self.conv_b(self.conv_a(x))


class FStem(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return self.net(x)


class FTop(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.global_pooling(self.lastact(x)).view(x.size(0), -1)


class FModel(nn.Module):
    def __init__(self, arch, num_classes):
        super().__init__()
        cell = nats_tss.as_cell(arch)
        keep = [cell.op(src, dst) == name for dst in range(1, 4) for src in range(dst)
                for name in OPS]
        self.stem = FStem(16)
        self.stack_cell1 = nn.Sequential(*[FSearchCell(16, keep) for _ in range(5)])
        self.reduction1 = FReduction(16, 32)
        self.stack_cell2 = nn.Sequential(*[FSearchCell(32, keep) for _ in range(5)])
        self.reduction2 = FReduction(32, 64)
        self.stack_cell3 = nn.Sequential(*[FSearchCell(64, keep) for _ in range(5)])
        self.top = FTop(64)
        self.classifier = nn.Linear(64, num_classes)
        self.pre_GAP = nn.Sequential(nn.BatchNorm2d(64), nn.ReLU(inplace=True))

    def forward(self, x):
        x = self.stem(x)
        x = self.reduction1(self.stack_cell1(x))
        x = self.reduction2(self.stack_cell2(x))
        return self.classifier(self.top(self.stack_cell3(x)))


def _copy(dst: nn.Module, src: nn.Module):
    for name, t in src.named_parameters(recurse=False):
        getattr(dst, name).data.copy_(t.data)


def load_from_ours(fm: FModel, net: nn.Module):
    """Copy the weights of our naive network into the literal model, module by module."""
    _copy(fm.stem.net[0], net.stem[0])
    _copy(fm.stem.net[1], net.stem[1])
    stacks = [fm.stack_cell1, fm.stack_cell2, fm.stack_cell3]
    reductions = {5: fm.reduction1, 11: fm.reduction2}
    for i, layer in enumerate(net.cells):
        if i in reductions:
            red = reductions[i]
            for a, b in ((red.conv_a.op[1], layer.conv_a[1]), (red.conv_a.op[2], layer.conv_a[2]),
                         (red.conv_b.op[1], layer.conv_b[1]), (red.conv_b.op[2], layer.conv_b[2]),
                         (red.residual[1], layer.downsample[1])):
                _copy(a, b)
            continue
        fcell = stacks[i // 6][i % 6]
        idx = 0
        for dst in range(1, 4):
            for src in range(dst):
                for name in OPS:
                    if fcell.keep[idx] and name.startswith("nor_conv"):
                        ours = layer.edges[f"e{src}{dst}"]
                        _copy(fcell.options[idx].op[1], ours[1])
                        _copy(fcell.options[idx].op[2], ours[2])
                    idx += 1
    _copy(fm.top.lastact[0], net.lastact[0])
    _copy(fm.classifier, net.classifier)


def reference_get_score(net, x):
    """MeCo ``NAS_Bench_201.py`` ``get_score`` (measure='meco'), literally."""
    result_list = []

    def forward_hook(module, data_input, data_output):
        fea = data_output[0].clone().detach()
        n = torch.tensor(fea.shape[0])
        fea = fea.reshape(n, -1)
        corr = torch.corrcoef(fea)
        corr[torch.isnan(corr)] = 0
        corr[torch.isinf(corr)] = 0
        values = torch.linalg.eig(corr)[0]
        result_list.append(torch.min(torch.real(values)))

    handles = [m.register_forward_hook(forward_hook) for _, m in net.named_modules()]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    results = torch.tensor(result_list)
    results = results[torch.logical_not(torch.isnan(results))]
    results = results[torch.logical_not(torch.isinf(results))]
    return torch.sum(results).item(), len(result_list)


def _ctx(arch, seed=0, source="synthetic", root=None):
    bank = InputBank("cifar10", seed=seed, source=source, root=root)
    return ScoringContext(arch, inputs=bank, seed=seed)


@pytest.mark.filterwarnings("ignore:cov")
@pytest.mark.parametrize("arch", [MID, DEAD])
def test_matches_the_literal_reference_model(arch):
    ctx = _ctx(arch)
    net = ctx.network(affine=False, track=False, init="default", prune=False)
    fm = FModel(arch, ctx.num_classes).train()
    load_from_ours(fm, net)
    x = ctx.batch(1, "gaussian")[0].contiguous()
    want, n_hooks = reference_get_score(fm, x)
    got = meco_score(net, x, module_multiplicities(net))
    assert got == pytest.approx(want, abs=2e-3, rel=1e-4)
    if arch == DEAD:  # dead-edge modules fire in the reference: the pruned network misses them
        pruned = ctx.network(affine=False, track=False, init="default")
        pruned.load_state_dict(net.state_dict(), strict=False)
        assert meco_score(pruned, x, module_multiplicities(pruned)) < want - 1.0
    # every reference hook call is accounted for by a multiplicity (or is a 1-column output)
    mult = module_multiplicities(net)
    assert n_hooks == sum(
        mult[id(m)] for m in net.modules() if not isinstance(m, nn.ModuleDict | nn.ModuleList)
    ) + 1  # the reference's ``top`` wrapper (a pooled vector: adds 0)


def test_all_zero_feature_map_adds_nothing():
    net = nn.Sequential(nn.Conv2d(3, 4, 1))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].bias.zero_()
    assert meco_score(net, torch.randn(1, 3, 4, 4)) == 0.0


def test_hand_example_two_channels():
    # channel 1 = -channel 0: correlation [[1, -1], [-1, 1]] has eigenvalues 0 and 2
    class Flip(nn.Module):
        def forward(self, x):
            return torch.cat([x, -x], dim=1)

    x = torch.randn(1, 1, 3, 3)
    assert meco_score(nn.Sequential(Flip()), x) == pytest.approx(0.0, abs=1e-6)
    # independent channels of 2 points: correlation [[1, r], [r, 1]], min eigenvalue 1 - |r|
    x = torch.tensor([[[[1.0, 2.0, 3.0]], [[1.0, 3.0, 2.0]]]])
    r = float(torch.corrcoef(x[0].reshape(2, -1))[0, 1])
    assert meco_score(nn.Identity(), x) == pytest.approx(1 - abs(r), abs=1e-6)


def _min_eig(fea: torch.Tensor) -> float:
    corr = torch.corrcoef(fea)
    corr[torch.isnan(corr)] = 0
    return float(torch.linalg.eigvalsh(corr.double())[0])


def test_an_output_changed_in_place_later_is_read_as_the_hook_saw_it():
    # Shift's output is then rectified in place (the head's BN before its in-place ReLU):
    # Shift's hook counts it unrectified, the ReLU's and the Sequential's hooks rectified
    class Shift(nn.Module):
        def forward(self, x):
            return x + 0.0

    x = torch.randn(1, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    fea = x[0].reshape(3, -1)
    want = _min_eig(fea) + 2 * _min_eig(fea.relu())
    got = meco_score(nn.Sequential(Shift(), nn.ReLU(inplace=True)), x)
    assert got == pytest.approx(want, rel=1e-6)
    assert abs(_min_eig(fea) - _min_eig(fea.relu())) > 1e-3  # the test can tell them apart


def test_batched_correlations_are_torch_corrcoef_with_nan_set_to_zero():
    feas = torch.randn(4, 6, 30, generator=torch.Generator().manual_seed(1))
    feas[2, 3] = 1.5  # a constant channel: NaN correlations, set to 0
    got = correlations(feas)
    for i in range(4):
        want = torch.corrcoef(feas[i])
        want[torch.isnan(want)] = 0
        assert torch.allclose(got[i], want, atol=1e-6)
    assert torch.equal(got[2, 3], torch.zeros(6))


def test_real_image_scores_deterministic_and_degenerate(data_root):
    kw = {"source": "real", "root": data_root}
    a = Meco().score(_ctx(DEAD, **kw))
    assert a == Meco().score(_ctx(DEAD, **kw))
    assert math.isfinite(a)
    none = Meco().score(_ctx(ALL_NONE, **kw))
    assert isinstance(none, float) and math.isfinite(none)


def test_recipe_declared():
    info = Meco.info
    assert (info.input, info.needs_images, info.batch_size, info.init, info.spaces) == (
        "real", True, 1, "default", ("nats-tss",))
