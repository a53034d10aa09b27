"""Zen-score: how much a tiny input perturbation moves the pre-pooling features, BN-corrected.

Recipe (idstcv/ZenNAS ``ZeroShotProxy/compute_zen_score.py``; the NB201 port is
cvlab-yonsei/AZ-NAS ``NB201/ZeroShotProxy/compute_zen_score.py`` run from
``NB201/tss_general.ipynb``), under ``torch.no_grad`` with BN in train mode:

1. Every conv/linear weight N(0, 1), biases 0, BN weight 1 and bias 0
   (``network_weight_gaussian_init``).
2. Two N(0, 1) batches ``x`` and ``e``; ``f`` = the features before global average pooling
   (``forward_pre_GAP``: stem, cells, then the head's BN + ReLU);
   ``d = mean over the batch of sum_chw |f(x) - f(x + 0.01 e)|``.
3. Both forwards update the BN running statistics (momentum 0.1, from the fresh var = 1);
   ``score = log(d) + sum over every BatchNorm2d of log(sqrt(mean(running_var)))``.
4. With ``n_batches > 1`` (the reference's ``repeat``) steps 1-3 repeat on the same network
   (weights re-drawn, running statistics carried over as in the reference loop), one input
   batch per repeat, and the scores are averaged.

Settings: the AZ-NAS NB201 port runs one repeat on a batch of 64 (the notebook's loader batch,
``repeat=1`` default); ZenNAS's own defaults are 16 x 32 repeats. We default to the NB201 port
(``batch_size=64, n_batches=1``): it is the setting behind the published NB201 correlations and
costs 2 forwards of 64 images instead of 64 forwards of 16. ``Zen(batch_size=16, n_batches=32)``
gives the ZenNAS setting.

Network: the official NB201 network (affine, tracked BN: the notebook builds ``InferCell`` with
its defaults), built naive (``prune=False``): the BN layers of dead edges see inputs and update
their running variance in the reference, so they must exist and count here too.

The all-``none`` cell gives ``f(x) = f(x')`` and ``log(0) = -inf``, as in the reference.
Deviations: ``x`` is the shared seeded Gaussian batch ``r`` and ``e`` comes from a generator
seeded by the context (both fixed across architectures) instead of fresh global-RNG draws; the
BN log-terms are summed in float64.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zcnas.models import body
from zcnas.proxy import Proxy, ProxyInfo

MIXUP_GAMMA = 1e-2
NOISE_SEED = 0x2E9  # the perturbation's generator: derived from ctx.seed


def redraw_normal(net: nn.Module, generator: torch.Generator) -> None:
    """``network_weight_gaussian_init`` from ``generator``, independent of device and layout.

    Weights are drawn as contiguous CPU tensors in module order and copied in, so the values
    equal ``initialise(net, "normal", generator)`` on the freshly built CPU network (what
    ``ctx.network(init="normal")`` does) whatever the network's device or memory format.
    """
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                w = torch.empty(m.weight.shape, dtype=m.weight.dtype)
                m.weight.copy_(w.normal_(0.0, 1.0, generator=generator))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm | nn.LayerNorm):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()


def pre_gap_features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``forward_pre_GAP``: stem, every cell, then the head's BN + ReLU (before pooling)."""
    return body(net, proxy="zen").features(x)


def bn_log_scale(net: nn.Module) -> float:
    """sum over BatchNorm2d layers of log(sqrt(mean(running_var)))."""
    total = 0.0
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            total += math.log(math.sqrt(float(m.running_var.double().mean())))
    return total


def zen_score(
    net: nn.Module, x: torch.Tensor, e: torch.Tensor, gamma: float = MIXUP_GAMMA
) -> float:
    """One Zen-score of ``net`` (train mode, tracked BN) for inputs ``x`` and noise ``e``."""
    with torch.no_grad():
        out = pre_gap_features(net, x)
        mixed = pre_gap_features(net, x + gamma * e)
        d = (out - mixed).abs().sum(dim=(1, 2, 3)).mean()
        value = float(torch.log(d))
    return value + bn_log_scale(net)


class Zen(Proxy):
    info = ProxyInfo(
        name="zen", version="1",
        reference="Lin et al., Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition, "
                  "ICCV 2021",
        code="https://github.com/idstcv/ZenNAS (ZeroShotProxy/compute_zen_score.py); NB201 port "
             "https://github.com/cvlab-yonsei/AZ-NAS (NB201/ZeroShotProxy/compute_zen_score.py)",
        needs_labels=False, needs_images=False, input="gaussian", bn="train", init="normal",
        transform="log", batch_size=64,
        deviations="NB201-port setting (batch 64, 1 repeat = n_batches) by default; shared "
                   "seeded Gaussian batch and seeded perturbation instead of fresh global-RNG "
                   "draws; BN log-terms summed in float64",
        per_arch=True,
    )
    params = {"mixup_gamma": MIXUP_GAMMA}

    def score(self, ctx) -> float:
        net = ctx.network(affine=True, track=True, init="default", prune=False)
        weights = torch.Generator().manual_seed(ctx.seed)
        noise = torch.Generator().manual_seed(ctx.seed + NOISE_SEED)
        scores = []
        for x, _ in ctx.batches(self.batch_size, self.n_batches, "gaussian"):
            redraw_normal(net, weights)
            e = torch.randn(x.shape, generator=noise).to(device=x.device, dtype=x.dtype)
            scores.append(zen_score(net, x, e, self.mixup_gamma))
        return float(sum(scores) / len(scores))
