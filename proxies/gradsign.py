"""GradSign: how consistently the per-sample gradients agree in sign.

Recipe (cmu-catalyst/GradSign ``zero-cost-nas-code/foresight/pruners/measures/grad_conflict.py``,
run through ``zero-cost-nas-code/build.py``: the foresight pipeline with ``--batch_size 128``):

- network: foresight's NB201 model (cells' BN ``affine=False, track_running_stats=False``),
  PyTorch default initialisation, train mode;
- one batch of B = 128 real training images; for each sample ``i`` alone (``inputs[[i]]``) a
  forward, the CE loss and a backward, so every BN normalises with the statistics of that single
  sample (spatial statistics only);
- ``g_i``: the flattened weight gradients of every Conv2d/Linear layer (zeros where none);
- score = ``nansum_theta |sum_i sign(g_i(theta))|``.

The B per-sample backward passes are batched with ``torch.func`` (``vmap`` of ``grad`` of a
``functional_call`` on one sample, in chunks): inside ``vmap`` each sample still runs the network
as a batch of one, so BN uses per-sample statistics exactly as in the reference loop. The BN
running buffers are dropped first (``replace_all_batch_norm_modules_``): in train mode they never
change the output. Per-sample gradients agree with a float64 loop at least as well as a float32
loop does (sign flips only where a gradient is at rounding level).

Memory format: contiguous (NCHW), faster than channels-last on the CPU for these per-sample
passes (``results/benchmarks/memory-format-cpu.txt``; the scores moved by <= 2e-5 relative).

Zero-source conv edges (source node always zero) are not built; the reference computes them
(ReLU(0) -> conv + bias -> per-sample BN of a constant): their weight gradient is zero, and the
BN's rounding noise flips a few near-zero gradient signs (about 1e-4 relative on such a cell).

Deviations: a fixed seeded batch without augmentation; zero-source conv edges not built.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, replace_all_batch_norm_modules_, vmap

from zcnas.proxy import Proxy, ProxyInfo

CHUNK_ELEMENTS = 2**25  # per-sample gradient elements held at once (128 MiB in float32)


def gradsign_score(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   chunk: int | None = None) -> float:
    """``nansum |sum_i sign(dL_i/dW)|`` over Conv2d/Linear weights, one sample per BN batch.

    ``net`` is modified: its BN layers lose their running buffers (outputs in train mode are
    unchanged).
    """
    replace_all_batch_norm_modules_(net)
    layers = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    params = {f"{name}.weight": m.weight.detach() for name, m in layers}
    rest = {k: v.detach() for k, v in net.named_parameters() if k not in params}
    buffers = dict(net.named_buffers())

    def sample_loss(p, xi, yi):
        out = functional_call(net, (p, rest, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    if chunk is None:
        n_weights = sum(p.numel() for p in params.values())
        chunk = max(1, min(32, CHUNK_ELEMENTS // max(n_weights, 1)))
    votes = {k: torch.zeros_like(v) for k, v in params.items()}
    for xc, yc in zip(x.split(chunk), y.split(chunk), strict=True):
        grads = per_sample(params, xc, yc)
        for k, g in grads.items():
            votes[k] += torch.sign(g).sum(0)
    total = torch.zeros((), dtype=torch.float64)
    for v in votes.values():
        total += torch.nansum(v.abs(), dtype=torch.float64).cpu()
    return float(total)


class GradSign(Proxy):
    info = ProxyInfo(
        name="gradsign", version="1",
        reference="Zhang & Jia, GradSign: Model Performance Inference with Theoretical Insights, "
                  "ICLR 2022",
        code="https://github.com/cmu-catalyst/GradSign "
             "(zero-cost-nas-code/foresight/pruners/measures/grad_conflict.py)",
        needs_labels=True, needs_images=True, input="real", bn="train", init="default",
        batch_size=128, n_batches=1,
        deviations="fixed seeded batch without augmentation; per-sample gradients batched with "
                   "torch.func.vmap (same per-sample BN statistics as the reference loop)",
    )

    def score(self, ctx) -> float:
        batches = ctx.batches(self.batch_size, self.n_batches)
        x = torch.cat([b[0] for b in batches]) if len(batches) > 1 else batches[0][0]
        y = torch.cat([b[1] for b in batches]) if len(batches) > 1 else batches[0][1]
        # contiguous (NCHW): faster than channels-last on the CPU for the per-sample passes
        # (results/benchmarks/memory-format-cpu.txt)
        x = x.contiguous()
        net = ctx.network(affine=False, track=False, channels_last=False)
        return gradsign_score(net, x, y)
