"""CUDA scoring (deselected by default: run with `pytest -m gpu` on a machine with a GPU)."""

import math

import pytest
import torch

from zcnas.registry import create_proxies
from zcnas.scoring.engine import make_items, score_archs

pytestmark = pytest.mark.gpu

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
]


@pytest.fixture(autouse=True)
def _needs_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")


def test_default_suite_on_cuda_matches_cpu(data_root):
    items = make_items(ARCHS, "nats-tss")
    suite = create_proxies("synflow,naswot,stable,zico,az_expressivity")
    cpu = score_archs(items, suite, root=data_root, progress=False)
    gpu = score_archs(items, suite, root=data_root, device="cuda", progress=False)
    for a, b in zip(cpu, gpu, strict=True):
        assert b.device == "cuda"
        assert math.isfinite(b.value)
        # different kernels, different rounding; the stable proxy divides by std + 1e-5
        assert b.value == pytest.approx(a.value, rel=2e-2), (a.proxy, a.arch)


@pytest.mark.parametrize("batches", [2, 3])
def test_stable_statistics_side_by_side_equal_per_layer_on_cuda(data_root, batches):
    from zcnas.models import block_indices
    from zcnas.scoring import InputBank, ScoringContext
    from zcnas_proxies.stable import Stable, stable_score, stable_score_per_layer

    bank = InputBank("cifar10", seed=0, root=data_root, device="cuda")
    proxy = Stable(batch_size=32, n_batches=batches)
    for arch in ARCHS:
        ctx = ScoringContext(arch, inputs=bank, device="cuda", requests=proxy.requests())
        result = ctx.run_pass(proxy.requests()[0])
        cells = block_indices(result.model, proxy="stable")
        grads = result.grads[:batches]
        assert all(g.is_cuda for g in grads[0].values())
        for reduce in ("sum", "mean"):
            want = stable_score_per_layer(grads, reduce, cells)
            assert stable_score(grads, reduce, cells) == want, (arch, reduce)
