"""The compiled batch-norm kernels (zcnas.runtime.kernels) behind the networks' BN layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from zcnas.models.batchnorm import BatchNorm2d, _TrainBatchNorm
from zcnas.models.leaves import batchnorm2d
from zcnas.runtime import kernels

CL, NCHW = torch.channels_last, torch.contiguous_format


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pair(c, affine=True, track=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    ours, theirs = BatchNorm2d(c, affine=affine, track_running_stats=track), nn.BatchNorm2d(
        c, affine=affine, track_running_stats=track)
    if affine:
        with torch.no_grad():
            ours.weight.uniform_(0.5, 1.5, generator=gen)
            ours.bias.normal_(generator=gen)
            theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _batch(shape, fmt, seed=1, mean=5.0, std=3.0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=gen) * std + mean).contiguous(memory_format=fmt)


def _counting(monkeypatch):
    calls = []
    real = _TrainBatchNorm.apply

    def apply(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(_TrainBatchNorm, "apply", apply)
    return calls


def test_the_kernels_build_here():
    # CI and a user's machine with a C compiler take the fast path: a failed build is a bug
    assert kernels.library() is not None, kernels.reason


def test_the_networks_bn_layers_are_the_fast_class():
    bn = batchnorm2d(16)
    assert type(bn) is BatchNorm2d and isinstance(bn, nn.BatchNorm2d)


@pytest.mark.parametrize("fmt", [CL, NCHW], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("shape", [(32, 16, 8, 8), (4, 64, 7, 7), (3, 5, 1, 1), (2, 3, 5, 3),
                                   (5, 24, 3, 37)])
@pytest.mark.parametrize("affine", [True, False])
def test_values_gradients_and_running_statistics_match_torch(monkeypatch, fmt, shape, affine):
    calls = _counting(monkeypatch)
    ours, theirs = _pair(shape[1], affine=affine)
    x = _batch(shape, fmt).requires_grad_(True)
    g = _batch(shape, fmt, seed=2, mean=0.0, std=1.0)
    for _ in range(2):  # twice: the running statistics' second update reads the first
        y_ours, y_theirs = ours(x), theirs(x)
    assert len(calls) == 2
    assert y_ours.is_contiguous(memory_format=fmt)
    ref = nn.functional.batch_norm(x.double(), None, None,
                                   None if not affine else theirs.weight.double(),
                                   None if not affine else theirs.bias.double(), True, 0.0, 1e-5)
    # about as close to float64 as torch's float32 (both end in y = x * alpha + beta, whose
    # rounding dominates at these sizes), and close to torch's
    err_ours = float((y_ours.detach().double() - ref.detach()).abs().max())
    err_theirs = float((y_theirs.detach().double() - ref.detach()).abs().max())
    assert err_ours <= 2 * err_theirs + 2e-6
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-5, atol=1e-5)
    params_ours = [x] + ([ours.weight, ours.bias] if affine else [])
    params_theirs = [x] + ([theirs.weight, theirs.bias] if affine else [])
    for a, b in zip(torch.autograd.grad(y_ours, params_ours, g),
                    torch.autograd.grad(y_theirs, params_theirs, g), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(theirs, name), rtol=1e-5,
                                   atol=1e-6)


def test_the_statistics_do_not_cancel_under_a_large_mean():
    ours, theirs = _pair(16)
    x = _batch((64, 16, 8, 8), CL, mean=1e4, std=1.0)
    y = ours(x)
    ref = nn.functional.batch_norm(x.double(), None, None, theirs.weight.double(),
                                   theirs.bias.double(), True, 0.0, 1e-5)
    assert float((y.double() - ref).abs().max()) < 1e-2  # torch's float32 BN: about 5e-3


def test_nan_and_inf_poison_only_their_channel():
    ours, theirs = _pair(8)
    x = _batch((4, 8, 5, 5), CL)
    x[1, 2, 3, 3] = float("nan")
    x[0, 5, 0, 0] = float("inf")
    y_ours, y_theirs = ours(x), theirs(x)
    assert torch.equal(y_ours.isnan(), y_theirs.isnan())
    keep = [c for c in range(8) if c not in (2, 5)]
    torch.testing.assert_close(y_ours[:, keep], y_theirs[:, keep], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", ["eval", "float64", "strided", "threads", "one value",
                                  "vmap", "dispatch mode", "disabled"])
def test_elsewhere_it_is_torchs_batch_norm(monkeypatch, case):
    calls = _counting(monkeypatch)
    ours, theirs = _pair(8)
    x = _batch((4, 8, 6, 6), CL)
    if case == "eval":
        ours.eval(), theirs.eval()
    elif case == "float64":
        ours.double(), theirs.double()
        x = x.double()
    elif case == "strided":
        x = x[:, :, ::2]
    elif case == "threads":
        torch.set_num_threads(2)
    elif case == "one value":
        x = x[:1, :, :1, :1]
    elif case == "disabled":
        monkeypatch.setenv("ZCNAS_KERNELS", "0")
    if case == "one value":
        with pytest.raises(ValueError, match="more than 1 value"):
            ours(x)
        return
    if case == "vmap":
        torch.func.replace_all_batch_norm_modules_(ours)  # as GradSign does
        torch.func.replace_all_batch_norm_modules_(theirs)
        y = torch.func.vmap(ours, in_dims=0)(x.unsqueeze(1))
        ref = torch.func.vmap(theirs, in_dims=0)(x.unsqueeze(1))
    elif case == "dispatch mode":
        from torch.utils._python_dispatch import TorchDispatchMode

        class Seen(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                return func(*args, **(kwargs or {}))

        with Seen():
            y = ours(x)
        ref = theirs(x)
    else:
        y, ref = ours(x), theirs(x)
    assert calls == []
    assert torch.equal(y, ref)


@pytest.mark.parametrize("fmt", [CL, NCHW], ids=["channels_last", "nchw"])
@pytest.mark.parametrize("affine", [True, False])
def test_double_backward_keeps_the_first_order_values_and_torchs_second_order(fmt, affine):
    ours, theirs = _pair(8, affine=affine)
    x = _batch((6, 8, 5, 5), fmt).requires_grad_(True)
    g = _batch((6, 8, 5, 5), fmt, seed=3, mean=0.0, std=1.0)
    wrt, wrt_t = [x] + ([ours.weight] if affine else []), [x] + ([theirs.weight] if affine else [])
    seen = []
    x.register_hook(lambda grad: seen.append(grad))  # as foresight's Fisher hooks a conv output
    plain = torch.autograd.grad(ours(x), wrt, g)
    first = torch.autograd.grad(ours(x), wrt, g, create_graph=True)
    for a, b in zip(plain, first, strict=True):
        assert torch.equal(a, b)  # the kernels' values under create_graph too
    assert len(seen) == 2 and torch.equal(seen[0], seen[1])  # no inner gradient reached x
    z = sum((f * f).sum() for f in first)
    second = torch.autograd.grad(z, wrt)
    first_t = torch.autograd.grad(theirs(x), wrt_t, g, create_graph=True)
    second_t = torch.autograd.grad(sum((f * f).sum() for f in first_t), wrt_t)
    for a, b in zip(second, second_t, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3 * float(b.abs().max()))


def test_grasps_batch_norm_takes_the_kernels_and_its_second_order_is_torchs(monkeypatch):
    """HessianBatchNorm2d (GraSP's pass): the plain BN's values, bitwise, and the same
    Hessian-gradient product as torch's double backward, in float32 on the kernels."""
    from zcnas.models import hessian

    used = []
    real = hessian.train_forward
    monkeypatch.setattr(hessian, "train_forward", lambda *a: used.append(1) or real(*a))
    plain = BatchNorm2d(8, affine=False, track_running_stats=False)
    ours = hessian.HessianBatchNorm2d(8, affine=False, track_running_stats=False)
    theirs = nn.BatchNorm2d(8, affine=False, track_running_stats=False)
    x = _batch((6, 8, 5, 5), CL).requires_grad_(True)
    w = _batch((6, 8, 5, 5), CL, seed=6, mean=0.0, std=1.0)
    results = []
    for bn in (plain, ours, theirs):
        first = torch.autograd.grad((bn(x) * w).square().sum(), x, create_graph=True)[0]
        results.append((first, torch.autograd.grad((first * first).sum(), x)[0]))
    assert used
    assert torch.equal(results[0][0], results[1][0])
    for _, second in results[:2]:
        torch.testing.assert_close(second, results[2][1], rtol=1e-3,
                                   atol=1e-3 * float(results[2][1].abs().max()))


def test_a_scoring_pass_runs_on_the_kernels(monkeypatch, data_root):
    from zcnas.registry import create_scorers
    from zcnas.scoring import InputBank, ScoringContext

    calls = _counting(monkeypatch)
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    proxies = create_scorers("stable(batch_size=8),jacov(batch_size=8)")
    bank = InputBank("cifar10", seed=0, root=data_root)
    ctx = ScoringContext(arch, inputs=bank, requests=[r for p in proxies for r in p.requests()])
    scores = [p.score(ctx) for p in proxies]
    assert all(s == s for s in scores)
    assert len(calls) > 20


def test_momentum_none_and_no_batch_counter_update_the_running_statistics_as_torch(monkeypatch):
    calls = _counting(monkeypatch)
    for counter in (True, False):
        ours, theirs = _pair(8)
        ours.momentum = theirs.momentum = None if counter else 0.3
        if not counter:  # a buffer set to None: torch then takes the momentum as it is
            ours.num_batches_tracked = theirs.num_batches_tracked = None
        for seed in (1, 2, 3):
            x = _batch((4, 8, 5, 5), CL, seed=seed)
            ours(x), theirs(x)
        for name in ("running_mean", "running_var"):
            torch.testing.assert_close(getattr(ours, name), getattr(theirs, name), rtol=1e-5,
                                       atol=1e-6)
    assert len(calls) == 6


def test_a_mismatched_input_is_refused_as_torch_refuses_it():
    ours, theirs = _pair(16, track=False)
    x = _batch((4, 8, 5, 5), CL)
    for bn in (ours, theirs):
        with pytest.raises(RuntimeError, match="16"):
            bn(x)


def test_a_strided_weight_is_held_through_the_backward(monkeypatch):
    calls = _counting(monkeypatch)
    ours, theirs = _pair(8)
    with torch.no_grad():
        ours.weight = nn.Parameter(torch.linspace(0.5, 1.5, 16)[::2])
        theirs.weight = nn.Parameter(ours.weight.detach().clone())
    x = _batch((4, 8, 5, 5), CL).requires_grad_(True)
    g = _batch((4, 8, 5, 5), CL, seed=4, mean=0.0, std=1.0)
    got = torch.autograd.grad(ours(x), [x, ours.weight], g)
    want = torch.autograd.grad(theirs(x), [x, theirs.weight], g)
    assert calls
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


@pytest.mark.parametrize("fmt", [CL, NCHW], ids=["channels_last", "nchw"])
def test_batched_gradients_take_torchs_backward(monkeypatch, fmt):
    calls = _counting(monkeypatch)
    ours, theirs = _pair(8, track=False)
    x = _batch((4, 8, 5, 5), fmt).requires_grad_(True)
    grads = _batch((3, 4, 8, 5, 5), NCHW, seed=5, mean=0.0, std=1.0)
    got = torch.autograd.grad(ours(x), x, grads, is_grads_batched=True)[0]
    want = torch.autograd.grad(theirs(x), x, grads, is_grads_batched=True)[0]
    assert calls and got.shape == (3, 4, 8, 5, 5)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_turning_the_kernels_off_between_forward_and_backward(monkeypatch):
    calls = _counting(monkeypatch)
    ours, theirs = _pair(8)
    x = _batch((4, 8, 5, 5), CL).requires_grad_(True)
    y = ours(x)
    monkeypatch.setenv("ZCNAS_KERNELS", "0")
    got = torch.autograd.grad(y.sum(), x)[0]
    want = torch.autograd.grad(theirs(x).sum(), x)[0]
    assert len(calls) == 1
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_a_jit_trace_records_torchs_batch_norm(monkeypatch):
    calls = _counting(monkeypatch)
    ours, theirs = _pair(8)
    x = _batch((4, 8, 5, 5), CL)
    traced = torch.jit.trace(ours, x, check_trace=False)
    assert calls == [] and "batch_norm" in str(traced.graph)


@pytest.mark.parametrize("fmt", [CL, NCHW], ids=["channels_last", "nchw"])
def test_an_outlying_first_value_does_not_cancel_the_variance(fmt):
    ours, theirs = _pair(8)
    x = _batch((16, 8, 6, 6), fmt, mean=0.0, std=1.0)
    x[0, :, 0, 0] = 1e4  # the first value of every channel, in either layout
    ref = nn.functional.batch_norm(x.double(), None, None, theirs.weight.double(),
                                   theirs.bias.double(), True, 0.0, 1e-5)
    err_ours = float((ours(x).double() - ref).abs().max())
    err_theirs = float((theirs(x).double() - ref).abs().max())
    assert err_ours <= 2 * err_theirs + 2e-6


def test_the_build_fails_cleanly_and_a_broken_cache_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setattr(kernels, "_TRIED", False)
    monkeypatch.setattr(kernels, "_LIBRARY", None)
    monkeypatch.setenv("ZCNAS_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("CC", "zcnas-no-such-compiler")
    assert kernels.library() is None and "no C compiler" in kernels.reason
    monkeypatch.setattr(kernels, "_TRIED", False)
    monkeypatch.setenv("CC", "false")  # a compiler that fails
    assert kernels.library() is None and "failed" in kernels.reason
    monkeypatch.delenv("CC")
    monkeypatch.setattr(kernels, "_TRIED", False)
    assert kernels.library() is not None and kernels.reason == ""
    # a truncated file where the build belongs (never loaded by this process) is rebuilt
    monkeypatch.setenv("ZCNAS_CACHE", str(tmp_path / "b"))
    _, target = kernels._cached(kernels._compiler())
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a shared object")
    monkeypatch.setattr(kernels, "_TRIED", False)
    assert kernels.library() is not None and target.stat().st_size > 100
