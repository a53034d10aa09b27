"""SWAP: the number of distinct sample-wise activation patterns of the untrained network.

Recipe (pym1024/SWAP ``src/metrics/swap.py``, ``correlation.py``): forward hooks on every
``nn.ReLU`` whose input is 4-D take ``sign`` of the post-ReLU output; the outputs of one batch
are flattened per sample and concatenated into a (samples x neurons) 0/1 matrix; the SWAP score
is the number of distinct rows of its transpose, i.e. of distinct per-neuron patterns across the
samples (``torch.unique(A.T, dim=0)``). Before each of ``repeats`` evaluations every conv/linear
weight is re-drawn N(0, 1) (biases 0, BN weight 1, bias 0: ``network_weight_gaussian_init``);
BN in train mode; ``torch.no_grad``; the score is the mean over repeats. One fixed batch of real
training images serves every architecture.

Regularised SWAP (the paper's reg-SWAP): the score times ``exp(-(P - mu)^2 / sigma)`` where
``P`` is the parameter count in thousands (``count_parameters``: all trainable parameters / 1e3;
here the NATS-Bench count of the naive network). Off unless both ``mu`` and ``sigma`` are given;
the paper's NB201 values of ``mu``/``sigma`` are not in the released code.

Settings: the released code covers only DARTS (a C=3, 1-layer network; 16 samples x 32 repeats);
there is no NB201 script, so the NB201 setting is unconfirmed. We use the NB201 network itself
(official, affine BN) with the repo's 16 samples but **4 repeats** by default instead of 32:
each repeat costs one forward pass, and the count moves little between re-initialisations
(one standard deviation is 2-7% of the count on four sampled NB201 cells, against differences
of 10-60% between those cells), so the mean of 4 is within ~1-3.5%. ``Swap(repeats=32)`` gives
the repo's setting.

Network semantics: every ReLU of the naive network counts (dead edges included), reproduced on
the pruned network with ReLU probes (``relu_probes=True``), which see exactly the naive ReLU
inputs; a test checks the count against the naive (``prune=False``) network with the same
weights. A neuron is identified by its 0/1 pattern over the samples; patterns are packed into
integers (exact: ``unique`` of the packed codes equals ``unique`` of the rows).

Deviations: 4 repeats by default (see above); the shared fixed batch without augmentation; the
N(0, 1) draws come from a generator seeded by the context (fixed per architecture).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zcnas.proxy import Proxy, ProxyError, ProxyInfo
from zcnas_proxies.zen import redraw_normal

_WORD = 62  # samples packed per int64 word


class PatternCounter:
    """Collects sign(post-ReLU) codes per neuron across the batch and counts distinct ones."""

    def __init__(self) -> None:
        self.codes: list[torch.Tensor] = []

    def hook(self, _module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(inputs, tuple) and inputs[0].dim() == 4:
            self.codes.append(pack_signs(output.detach().flatten(1)))

    def count(self) -> int:
        if not self.codes:
            return 0
        codes = torch.cat(self.codes, dim=0)
        return int(torch.unique(codes, dim=0).shape[0]) if codes.shape[1] > 1 else int(
            torch.unique(codes[:, 0]).numel())


def pack_signs(act: torch.Tensor) -> torch.Tensor:
    """(samples, neurons) activations -> (neurons, words) int64 codes of ``sign(act) > 0``.

    ``sign`` of a post-ReLU value is 0 or 1 (NaN would be its own pattern; it does not occur
    in finite networks), so bit ``s`` of a neuron's code is sample ``s``'s sign.
    """
    bits = act > 0
    n = bits.shape[0]
    words = []
    for start in range(0, n, _WORD):
        chunk = bits[start:start + _WORD].to(torch.int64)
        weights = torch.ones(chunk.shape[0], dtype=torch.int64, device=act.device)
        weights = weights << torch.arange(chunk.shape[0], device=act.device)
        words.append((chunk * weights[:, None]).sum(0))
    return torch.stack(words, dim=1)


def swap_count(net: nn.Module, x: torch.Tensor) -> int:
    """Number of distinct neuron activation patterns of ``net`` on the batch ``x``."""
    counter = PatternCounter()
    handles = [m.register_forward_hook(counter.hook) for m in net.modules()
               if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return counter.count()


class Swap(Proxy):
    info = ProxyInfo(
        name="swap", version="1",
        reference="Peng et al., SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS, "
                  "ICLR 2024",
        code="https://github.com/pym1024/SWAP (src/metrics/swap.py, correlation.py)",
        needs_labels=False, needs_images=True, input="real", bn="train", init="normal",
        batch_size=16,
        deviations="NB201 network with 4 N(0,1) re-initialisations by default (repo: 32, "
                   "DARTS only); fixed un-augmented batch; seeded generator",
        per_arch=True,
    )
    params = {"repeats": 4, "mu": None, "sigma": None}

    def check(self) -> None:
        if self.repeats < 1:
            raise ProxyError("proxy 'swap': repeats must be >= 1")
        if (self.mu is None) != (self.sigma is None):
            raise ProxyError("proxy 'swap': give both mu and sigma (regularised SWAP) or neither")
        if self.sigma is not None and float(self.sigma) <= 0:
            raise ProxyError("proxy 'swap': sigma must be > 0")

    def regular_factor(self, ctx) -> float:
        if self.mu is None:
            return 1.0
        params_k = ctx.costs().params / 1e3
        return math.exp(-((params_k - float(self.mu)) ** 2) / float(self.sigma))

    def score(self, ctx) -> float:
        net = ctx.network(affine=True, track=False, init="default", relu_probes=True)
        x = ctx.batch(self.batch_size, "real")[0]
        gen = torch.Generator().manual_seed(ctx.seed)
        counts = []
        for _ in range(self.repeats):
            redraw_normal(net, gen)
            counts.append(swap_count(net, x))
        return float(sum(counts) / len(counts)) * self.regular_factor(ctx)
