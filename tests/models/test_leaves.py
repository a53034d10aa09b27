"""Leaves copied from prototypes are the modules torch's constructors make, draws included."""

import pytest
import torch
from torch import nn

from zcnas.models import build_network, leaves

TSS = [
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
]
HOOKS = {name for name in vars(nn.Module()) if "hook" in name}


def _built(monkeypatch, arch, space, fast, **options):
    """(network, RNG state after the build) with the copied leaves or torch's constructors."""
    if not fast:  # the counter of torch function modes reads 1: every leaf is constructed
        monkeypatch.setattr(leaves, "_MODES", lambda: 1)
    torch.manual_seed(7)
    net = build_network(arch, space, **options)
    monkeypatch.undo()
    return net, torch.get_rng_state()


def _attributes(module: nn.Module) -> dict:
    return {k: v for k, v in vars(module).items()
            if k not in ("_parameters", "_buffers", "_modules") and k not in HOOKS}


@pytest.mark.parametrize("space, arch", [("nats-tss", a) for a in TSS]
                         + [("nats-sss", "8:16:40:32:64")])
@pytest.mark.parametrize("options", [
    {}, {"affine": False, "track_running_stats": False}, {"prune": False},
    {"relu_probes": True}, {"num_classes": 1},
])
def test_a_network_of_copied_leaves_is_the_constructed_one(monkeypatch, space, arch, options):
    fast, rng_fast = _built(monkeypatch, arch, space, True, **options)
    slow, rng_slow = _built(monkeypatch, arch, space, False, **options)
    assert torch.equal(rng_fast, rng_slow)  # the same numbers drawn, in the same order
    pairs = list(zip(fast.named_modules(), slow.named_modules(), strict=True))
    for (name_f, mod_f), (name_s, mod_s) in pairs:
        assert name_f == name_s and type(mod_f) is type(mod_s)
        assert _attributes(mod_f) == _attributes(mod_s), name_f
    state_f, state_s = fast.state_dict(), slow.state_dict()
    assert list(state_f) == list(state_s)
    for key, value in state_f.items():
        assert value.dtype == state_s[key].dtype and value.stride() == state_s[key].stride()
        assert torch.equal(value, state_s[key]), key
    assert [p.requires_grad for p in fast.parameters()] == [
        p.requires_grad for p in slow.parameters()]


def test_copies_share_no_tensor_container_or_hook_with_each_other():
    a = leaves.conv2d(4, 8, 3, padding=1, bias=True)
    b = leaves.conv2d(4, 8, 3, padding=1, bias=True)
    assert a.weight.data_ptr() != b.weight.data_ptr() and a.bias.data_ptr() != b.bias.data_ptr()
    assert not torch.equal(a.weight, b.weight)  # each drew its own weights
    a.register_forward_hook(lambda *_: None)
    assert not b._forward_hooks
    mutable = [k for k, v in vars(a).items() if isinstance(v, dict | list | set)]
    assert "_forward_hooks" in mutable
    assert all(vars(a)[k] is not vars(b)[k] for k in mutable)
    bn_a, bn_b = leaves.batchnorm2d(8), leaves.batchnorm2d(8)
    bn_a.train()(torch.randn(2, 8, 3, 3))  # updates bn_a's running statistics in place
    assert torch.equal(bn_b.running_mean, torch.zeros(8))
    assert int(bn_b.num_batches_tracked) == 0
    with torch.no_grad():
        bn_a.weight.add_(1)
    assert torch.equal(bn_b.weight, torch.ones(8))


def test_a_first_copy_draws_like_the_constructor_and_the_prototype_draws_apart():
    leaves._PROTOTYPES.clear()
    torch.manual_seed(3)
    fast = leaves.linear(12, 5)
    after_fast = torch.get_rng_state()
    torch.manual_seed(3)
    slow = nn.Linear(12, 5)
    assert torch.equal(fast.weight, slow.weight) and torch.equal(fast.bias, slow.bias)
    assert torch.equal(after_fast, torch.get_rng_state())


def test_default_dtype_and_device_modes_are_followed():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert leaves.conv2d(3, 4, 1).weight.dtype == torch.float64
        assert leaves.batchnorm2d(4).running_var.dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert leaves.conv2d(3, 4, 1).weight.dtype == previous
    with torch.device("meta"):
        assert leaves.conv2d(3, 4, 1).weight.device.type == "meta"
        assert leaves.batchnorm2d(4).weight.device.type == "meta"


def test_global_registration_hooks_see_every_parameter_as_with_torch():
    seen = []
    handle = torch.nn.modules.module.register_module_parameter_registration_hook(
        lambda _m, name, _p: seen.append(name))
    try:
        leaves.conv2d(3, 4, 3, bias=True)
        leaves.batchnorm2d(4)
    finally:
        handle.remove()
    assert seen == ["weight", "bias", "weight", "bias"]


def test_layers_without_weights_are_torch_s_own():
    assert leaves.conv2d(0, 4, 1).weight.shape == (4, 0, 1, 1)
    assert leaves.linear(5, 0).weight.shape == (0, 5)


def test_a_module_with_children_is_refused_as_a_prototype():
    with pytest.raises(ValueError, match="not a leaf"):
        leaves._leaf(("test-sequential",), lambda: nn.Sequential(nn.ReLU()))
