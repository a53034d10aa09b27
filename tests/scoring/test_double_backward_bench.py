"""benchmarks.double_backward rebuilds autograd's own double backward by switching zcnas's
block off: each version must run what it says, and leave zcnas as it was."""

import pytest
import torch
from torch import nn

from benchmarks.double_backward import VERSIONS
from zcnas.scoring.passes import grad_and_hvp


def _double_backward_calls() -> int:
    """convolution_backward calls during one Hessian-vector product of a small network."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3),
                        nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))
    loss = nn.functional.cross_entropy(net(x), y)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        grad_and_hvp(loss, [m.weight for m in net if hasattr(m, "weight")])
    return sum(e.count for e in prof.key_averages() if e.key == "aten::convolution_backward")


def test_autograds_own_is_switched_on_and_back_off():
    zcnas = _double_backward_calls()
    with VERSIONS["autograd's own"]():
        own = _double_backward_calls()
    assert zcnas > own  # zcnas's double backward asks convolution_backward for its products
    assert _double_backward_calls() == zcnas


@pytest.mark.parametrize("name", ["autograd's own", "zcnas"])
def test_the_report_has_the_two_versions(name):
    assert name in VERSIONS and len(VERSIONS) == 2
