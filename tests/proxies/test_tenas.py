import math
import sys

import numpy as np
import pytest
import torch
from torch import nn

from zcnas.scoring import InputBank, ScoringContext
from zcnas_proxies.tenas import (
    NAN_COND,
    TeNasLr,
    TeNasNtk,
    ThinNetwork,
    condition_number,
    default_init,
    linear_regions,
    ntk_gram,
    random_crops,
)

MID = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
# conv edges 0->1 and 1->2 are dead (node 2 feeds only ``none``)
DEAD = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _ctx(arch, seed=0, source="synthetic", root=None, dataset="ImageNet16-120"):
    bank = InputBank(dataset, seed=seed, source=source, root=root)
    return ScoringContext(arch, dataset=dataset, inputs=bank, seed=seed)


# --- NTK --------------------------------------------------------------------------------------


def _reference_ntk(net, x):
    """ntk.py get_ntk_n, literally (one network, one batch, train mode)."""
    net.zero_grad()
    logit = net(x)
    grads = []
    for i in range(len(x)):
        logit[i:i + 1].backward(torch.ones_like(logit[i:i + 1]), retain_graph=True)
        g = [w.grad.reshape(-1).detach().clone() for name, w in net.named_parameters()
             if "weight" in name and w.grad is not None]
        grads.append(torch.cat(g, -1))
        net.zero_grad()
    grads = torch.stack(grads, 0)
    return torch.einsum("nc,mc->nm", [grads, grads]), grads


@pytest.mark.parametrize("arch", [pytest.param(MID, marks=pytest.mark.slow), DEAD])
def test_ntk_matches_literal_reference_on_the_naive_network(arch):
    ctx = _ctx(arch)
    naive = ctx.network(affine=True, track=True, prune=False)
    pruned = ctx.network(affine=True, track=False)
    pruned.load_state_dict(naive.state_dict(), strict=False)
    x = ctx.batch(4, "gaussian")[0]
    want32, grads = _reference_ntk(naive, x)
    want = grads.double() @ grads.double().T  # the reference's NTK without float32 round-off
    got = ntk_gram(pruned, x)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=0)
    # the reference's float32 einsum is itself only good to ~1e-3 here
    torch.testing.assert_close(got, want32.double(), rtol=5e-3, atol=0)
    eig = torch.linalg.eigvalsh(want)
    assert condition_number(got) == pytest.approx(float(eig[-1] / eig[0]), rel=1e-9)
    eig32 = torch.linalg.eigvalsh(want32)
    assert condition_number(got) == pytest.approx(float(eig32[-1] / eig32[0]), rel=2e-2)


def test_condition_number_closed_forms():
    assert condition_number(torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))) == 4.0
    assert condition_number(torch.zeros(3, 3, dtype=torch.float64)) == NAN_COND  # 0/0
    assert condition_number(torch.diag(torch.tensor([0.0, 2.0]))) == sys.float_info.max
    assert condition_number(torch.diag(torch.tensor([-1.0, 2.0]))) == -2.0  # kept, as the reference


def test_ntk_degenerate_cell_scores_the_nan_fallback(data_root):
    kw = {"source": "real", "root": data_root, "dataset": "cifar10"}
    assert TeNasNtk(batch_size=4).score(_ctx(ALL_NONE, **kw)) == NAN_COND
    a = TeNasNtk(batch_size=4).score(_ctx(DEAD, **kw))
    assert a == TeNasNtk(batch_size=4).score(_ctx(DEAD, **kw))
    assert math.isfinite(a) and a >= 1.0


# --- linear regions ---------------------------------------------------------------------------


def _reference_lr(net, inputs):
    """linear_region_counter.py: sign codes of ReLU outputs, sum of 1/multiplicity."""
    acts, feats = [], []

    def hook(_m, inp, out):
        if isinstance(inp, tuple) and len(inp[0].size()) == 4:
            feats.append(out.detach())

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        for x in inputs:
            feats.clear()
            net(x)
            acts.append(torch.sign(torch.cat([f.view(x.size(0), -1) for f in feats], 1)))
    for h in handles:
        h.remove()
    a = torch.cat(acts)
    res = a @ (1 - a).T  # float32 instead of float16: exact for these small counts
    res += res.clone().T
    res = 1 - torch.sign(res)
    return (1.0 / res.sum(1)).sum().item()


@pytest.mark.parametrize("arch", [MID, DEAD])
def test_lr_matches_literal_reference(arch):
    net = ThinNetwork(arch)
    default_init(net, torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(2)
    inputs = [torch.randn(300, 1, 3, 3, generator=gen) for _ in range(2)]
    got = linear_regions(net, inputs)
    assert got == pytest.approx(_reference_lr(net, inputs), abs=1e-3)
    assert 1 < got <= 600


def test_thin_network_keeps_dead_edge_relus():
    n_relu = lambda arch: sum(isinstance(m, nn.ReLU) for m in ThinNetwork(arch).modules())  # noqa: E731
    assert n_relu(DEAD) == 2 + 1  # conv edges 0->1 and 1->2 (dead) and the head
    assert n_relu(ALL_NONE) == 1


def test_lr_closed_form():
    net = nn.Sequential(nn.ReLU())
    x = torch.tensor([1.0, -1.0, 2.0, -3.0, 0.5]).reshape(5, 1, 1, 1)
    assert linear_regions(net, [x]) == 2
    x2 = torch.tensor([[1.0, -1.0], [1.0, 1.0], [2.0, -1.0]]).reshape(3, 1, 1, 2)
    assert linear_regions(net, [x2]) == 2  # patterns (1, 0), (1, 1), (1, 0)


def test_random_crops_are_sub_blocks():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    crops = random_crops(x, 3, torch.Generator().manual_seed(0))
    assert crops.shape == (2, 1, 3, 3)
    for n in range(2):
        c = crops[n, 0]
        v = int(c[0, 0])
        chan, rest = divmod(v - n * 192, 64)
        top, left = divmod(rest, 8)
        torch.testing.assert_close(c, x[n, chan, top:top + 3, left:left + 3])


def test_lr_proxy_real_images(data_root):
    kw = {"source": "real", "root": data_root, "dataset": "cifar10"}
    proxy = TeNasLr(batch_size=200, n_batches=2, repeat=2)
    a = proxy.score(_ctx(MID, **kw))
    assert a == proxy.score(_ctx(MID, **kw))
    assert 1 < a <= 400
    assert proxy.score(_ctx(ALL_NONE, **kw)) == 1.0  # the head sees an all-zero cell output
    assert TeNasLr(batch_size=200, n_batches=2, repeat=1, init="kaiming_normal_fan_in").score(
        _ctx(MID, **kw)) > 1


def test_recipe_declared():
    assert TeNasNtk.info.higher_is_better is False and TeNasNtk.info.batch_size == 64
    assert (TeNasLr.info.batch_size, TeNasLr.info.n_batches, TeNasLr().repeat) == (1000, 3, 3)
    assert np.isclose(NAN_COND, 1e5)
