"""``tune_allocator``: freed scoring memory stays with the process (glibc), once per process.

Each check runs in a fresh interpreter: the thresholds cannot be set back, and this test
process's own allocator is left as it was."""

import os
import subprocess
import sys
import textwrap

import pytest

from zcnas.runtime import allocator

GLIBC = allocator._glibc_mallopt(()) if sys.platform.startswith("linux") else False

# page faults of the second run of the shared pass of foresight's proxies (a create-graph
# backward, GraSP's double backward, the input Jacobian) on one cell, 64 random images: what
# a scoring worker does with memory, cell after cell
FAULTS = """
    import resource, sys, torch
    import torch.nn.functional as F
    from zcnas.models.hessian import for_double_backward
    from zcnas.runtime.allocator import tune_allocator
    from zcnas.scoring import InputBank, ScoringContext
    from zcnas.scoring.passes import grad_and_hvp
    torch.set_num_threads(1)
    tuned = tune_allocator() if sys.argv[1] == "tune" else None
    arch = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    ctx = ScoringContext(arch, inputs=InputBank("cifar10", seed=0, source="synthetic"))
    net = for_double_backward(ctx.network(affine=False, track=False, channels_last=False))
    weights = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (64,), generator=gen)
    def one_pass():
        xx = x.detach().requires_grad_(True)
        logits = net(xx)
        grad_and_hvp(F.cross_entropy(logits, y), weights, keep_graph=True)
        torch.autograd.grad(logits, xx, torch.ones_like(logits))
    one_pass()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    one_pass()
    print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(*modes: str) -> list[tuple[str, float]]:
    """Per mode, in processes run side by side: what ``tune_allocator`` returned (``None``:
    not called) and the page faults of the second pass."""
    # glibc's own defaults: none of a user's malloc settings, no preloaded allocator
    env = {k: v for k, v in os.environ.items() if k not in allocator._USER_SETTINGS}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(FAULTS), mode],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env)
             for mode in modes]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-2000:]
        tuned, faults = stdout.split()
        out.append((tuned, float(faults)))
    return out


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt only")
def test_freed_tensors_are_reused_instead_of_mapped_again():
    (_, plain), (tuned, kept) = _faults("plain", "tune")
    assert tuned == "True"
    # a pass writes several hundred MB of activations, gradients and second-order terms
    assert plain > 10_000, f"glibc kept the memory by itself ({plain:.0f} page faults)"
    assert kept < plain / 10, f"{kept:.0f} page faults with the allocator tuned ({plain:.0f} not)"


def test_it_runs_mallopt_once_and_reports_what_it_got(monkeypatch):
    calls = []

    def fake(settings):
        calls.append(settings)
        return True

    monkeypatch.setattr(allocator, "_TUNED", None)
    monkeypatch.setattr(allocator, "_glibc_mallopt", fake)
    for var in allocator._USER_SETTINGS:
        monkeypatch.delenv(var, raising=False)
    assert allocator.tune_allocator() is True
    assert allocator.tune_allocator() is True
    # the mmap threshold first: a refused one must leave the trim threshold untouched
    assert calls == [((allocator.M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD),
                      (allocator.M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD))]


def test_a_refused_setting_stops_the_rest(monkeypatch):
    taken = []

    class FakeLibc:
        gnu_get_libc_version = object()

        @staticmethod
        def mallopt(param, value):
            taken.append(param)
            return 0  # refused (a 32-bit glibc's answer to a 32 MiB mmap threshold)

    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    settings = ((allocator.M_MMAP_THRESHOLD, 1), (allocator.M_TRIM_THRESHOLD, 1))
    assert allocator._glibc_mallopt(settings) is False
    assert taken == [allocator.M_MMAP_THRESHOLD]


@pytest.mark.parametrize("var", ["MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES", "LD_PRELOAD"])
def test_a_users_own_malloc_settings_are_left_alone(monkeypatch, var):
    monkeypatch.setattr(allocator, "_TUNED", None)
    monkeypatch.setattr(allocator, "_glibc_mallopt", lambda settings: pytest.fail("tuned"))
    monkeypatch.setenv(var, "1")
    assert allocator.tune_allocator() is False


def test_off_linux_nothing_is_done(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator._glibc_mallopt(((allocator.M_TRIM_THRESHOLD, 1),)) is False
