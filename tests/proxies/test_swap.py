import math

import pytest
import torch
from torch import nn

from zcnas.scoring import InputBank, ScoringContext
from zcnas_proxies.swap import Swap, pack_signs, swap_count
from zcnas_proxies.zen import redraw_normal

MID = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
# conv edges 0->1 and 1->2 are dead (node 2 feeds only ``none``); their ReLUs still count
DEAD = "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
DATASET = "ImageNet16-120"  # 16x16 inputs keep the tests fast


def _ctx(arch, seed=0, source="synthetic", root=None, dataset=DATASET):
    bank = InputBank(dataset, seed=seed, source=source, root=root)
    return ScoringContext(arch, dataset=dataset, inputs=bank, seed=seed)


def _neurons(net, x):
    n = []
    handles = [m.register_forward_hook(lambda _m, i, o: n.append(o[0].numel()))
               for m in net.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    return sum(n)


def _reference_count(net, x):
    """swap.py literally: sign of 4-D-input ReLU outputs, concatenated, unique rows of A^T."""
    feats = []

    def hook(_m, inp, out):
        if isinstance(inp, tuple) and len(inp[0].size()) == 4:
            feats.append(out.detach())

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    act = torch.sign(torch.cat([f.reshape(x.size(0), -1) for f in feats], 1))
    return torch.unique(act.T, dim=0).size(0)


@pytest.mark.parametrize("arch", [MID, DEAD])
def test_probed_pruned_network_counts_like_the_naive_network(arch):
    ctx = _ctx(arch)
    naive = ctx.network(affine=True, track=False, prune=False)
    redraw_normal(naive, torch.Generator().manual_seed(3))
    probed = ctx.network(affine=True, track=False, relu_probes=True)
    probed.load_state_dict(naive.state_dict(), strict=False)
    plain = ctx.network(affine=True, track=False)
    plain.load_state_dict(naive.state_dict(), strict=False)
    x = ctx.batch(6, "gaussian")[0]
    want = _reference_count(naive, x)
    assert swap_count(probed, x) == want
    assert _reference_count(probed, x) == want
    assert _neurons(probed, x) == _neurons(naive, x)
    if arch == DEAD:  # without probes the dead-edge ReLUs would be missed
        assert _neurons(plain, x) < _neurons(naive, x)


def test_pack_signs_hand_example():
    # samples x neurons: neurons 0 and 2 share a pattern, neuron 1 is all-off
    act = torch.tensor([[0.5, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 1.0], [3.0, 0.0, 1.0, 1.0]])
    codes = pack_signs(act)
    assert codes[:, 0].tolist() == [0b101, 0, 0b101, 0b110]
    assert torch.unique(codes, dim=0).shape[0] == 3


def test_pack_signs_many_samples_uses_several_words():
    act = torch.randn(130, 50).clamp(min=0)
    codes = pack_signs(act)
    assert codes.shape == (50, 3)
    want = torch.unique(torch.sign(act).T, dim=0).shape[0]
    assert torch.unique(codes, dim=0).shape[0] == want


def test_single_relu_closed_form():
    net = nn.Sequential(nn.ReLU())
    x = torch.tensor([[1.0, -1.0], [1.0, 1.0]]).reshape(2, 1, 1, 2)  # 2 samples, 2 neurons
    assert swap_count(net, x) == 2  # patterns (1, 1) and (0, 1)


def test_regularised_factor():
    ctx = _ctx(MID)
    params_k = ctx.costs().params / 1e3
    proxy = Swap(mu=params_k - 10.0, sigma=50.0)
    assert proxy.regular_factor(ctx) == pytest.approx(math.exp(-100 / 50))
    assert Swap().regular_factor(ctx) == 1.0
    with pytest.raises(Exception, match="both mu and sigma"):
        Swap(mu=1.0)


def test_scores_with_real_images(data_root):
    bank_kw = {"source": "real", "root": data_root, "dataset": "cifar10"}
    proxy = Swap(batch_size=8, repeats=2)
    a = proxy.score(_ctx(DEAD, **bank_kw))
    b = proxy.score(_ctx(DEAD, **bank_kw))
    assert a == b and a > 1
    # the proxy equals the literal count averaged over the same re-draws
    ctx = _ctx(DEAD, **bank_kw)
    net = ctx.network(affine=True, track=False, prune=False)
    gen = torch.Generator().manual_seed(ctx.seed)
    x = ctx.batch(8, "real")[0]
    counts = []
    for _ in range(2):
        redraw_normal(net, gen)
        counts.append(_reference_count(net, x))
    # different module sets draw different weights: compare distributions only loosely
    assert abs(a - sum(counts) / 2) / a < 0.2
    assert Swap(batch_size=8, repeats=1).score(_ctx(ALL_NONE, **bank_kw)) == 1.0


def test_recipe_declared():
    info = Swap.info
    assert (info.input, info.needs_images, info.init, info.batch_size) == (
        "real", True, "normal", 16)
    assert Swap().repeats == 4
