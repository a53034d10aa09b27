"""MeCo: sum over every module of the smallest eigenvalue of its feature-map correlation.

Recipe (HamsterMimi/MeCo ``correlation/NAS_Bench_201.py``, ``get_score``): one real training
image (batch size 1) through the foresight NB201 model (``foresight/models/nasbench2.py``: cell
BN ``affine=False, track_running_stats=False`` with biased convs, PyTorch default init, train
mode). A forward hook on **every** module (containers and the root included) takes the first
sample of the module's output, reshaped to (C, H*W), computes ``torch.corrcoef`` (NaN and inf
set to 0) and its smallest eigenvalue; the score is the sum over all hook calls (NaN/inf
results dropped).

Which hooks fire in the reference, and how we reproduce them on our network:

- Every executed module fires, so a tensor returned by nested modules is counted once per
  level: a ReLU-conv-BN edge fires for its ReLU, conv, BN, ``op`` Sequential and wrapper (the
  BN output counted 3 times); the stem fires for conv, BN, ``net`` Sequential and ``stem``
  (its output counted 3 times); every cell fires once, plus once more for the last cell of each
  stage (the ``stack_cell`` Sequential); avg-pool edges fire twice (wrapper and pool); ``none``
  edges fire on an all-zero output (eigenvalue 0); the reduction blocks fire for
  conv_a/conv_b (as above), the residual AvgPool, conv and Sequential, and the block.
- Outputs whose (C, H*W) matrix has a single column (global pooling, the head, the classifier,
  the root) give an all-NaN correlation, hence an all-zero matrix and eigenvalue 0.
- The foresight cell runs every selected op, dead edges included, so we build the naive network
  (``prune=False``) and hook every module with the multiplicity above
  (:func:`module_multiplicities`); the head's BN is read before its in-place ReLU, as in the
  reference. A test compares against a literal port of the foresight model.

Memory format: contiguous (NCHW) network and image (version 2; version 1 ran channels-last).
The foresight network computes its zero-source conv edges (a conv edge whose source node is
always zero: ReLU(0) -> conv + bias -> BN of a constant), whose outputs are BN rounding noise
that MeCo's correlations read; that noise depends on the memory format (about 4e-6 contiguous,
up to 5e-2 channels-last on the CPU) and on the hardware. On most cells it moves MeCo by less
than 1e-4 relative, but where such an edge alone feeds the cell output (always zero otherwise,
about 1% of the cells) every later layer reads amplified noise and the value moved by 9%
between the two formats: there MeCo is not reproducible across hardware, in the reference
either.

Only the topology space is supported (the reference's module tree is the foresight TSS model).
Deviations: the image is the shared fixed batch (no augmentation) instead of the first batch of
an augmented loader; the eigenvalues are computed with ``eigvalsh`` in float64 (the reference
takes the real part of ``torch.linalg.eig`` in float32; the correlation matrix is symmetric);
the sum is in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from zcnas.models.network import Cell
from zcnas.models.ops import ReLUConvBN
from zcnas.proxy import Proxy, ProxyInfo


def module_multiplicities(net: nn.Module) -> dict[int, int]:
    """id(module) -> how many reference hooks fire on its output (see the module docstring)."""
    mult = {id(m): 1 for m in net.modules()}
    mult[id(net.stem)] = 2  # foresight: ``stem`` wraps ``net`` = Sequential(conv, BN)
    for m in net.modules():
        if isinstance(m, ReLUConvBN):
            mult[id(m)] = 2  # foresight: ReLUConvBN wraps ``op`` = Sequential(ReLU, conv, BN)
    cells = list(net.cells)
    for i, layer in enumerate(cells):
        last_of_stage = isinstance(layer, Cell) and (
            i + 1 == len(cells) or not isinstance(cells[i + 1], Cell))
        if last_of_stage:
            mult[id(layer)] = 2  # the stage's ``stack_cell`` Sequential returns its output
    for m in net.modules():
        if isinstance(m, nn.ModuleList | nn.ModuleDict):
            mult[id(m)] = 0  # never called
    return mult


def _features(output: Any) -> torch.Tensor | None:
    """The first sample of a hooked output as (C, H*W), or None where the reference's
    correlation is all NaN (one variable or one observation: pooled features, logits): set
    to 0, its eigenvalues are 0, it adds exactly nothing."""
    if isinstance(output, tuple | list):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        return None
    fea = output[0].detach()
    fea = fea.reshape(fea.shape[0], -1) if fea.dim() else fea.reshape(1, 1)
    if fea.shape[1] < 2 or fea.shape[0] < 2:
        return None
    # a copy: a later in-place op (the head's ReLU) must not change what the hook read
    return fea.clone(memory_format=torch.contiguous_format)


def correlations(feas: torch.Tensor) -> torch.Tensor:
    """``torch.corrcoef`` of each (C, N) matrix of ``feas`` (G, C, N), its steps batched (the
    mean, the centred product over N - 1, the two divisions by the standard deviations, the
    clip to [-1, 1]); NaN and inf set to 0 as in the reference."""
    n = feas.shape[2]
    centred = feas - (feas.sum(2) / n).unsqueeze(2)
    cov = torch.bmm(centred, centred.transpose(1, 2)) / (n - 1)
    std = cov.diagonal(dim1=1, dim2=2).sqrt()
    corr = (cov / std.unsqueeze(2) / std.unsqueeze(1)).clip_(-1, 1)
    return corr.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)


class _Collector:
    """Feature maps of hooked outputs with their multiplicities (a tensor is read once)."""

    def __init__(self, mult: dict[int, int]) -> None:
        self.mult = mult
        self.items: list[tuple[torch.Tensor, int]] = []
        self._seen: dict[tuple[int, int], tuple[Any, int]] = {}

    def hook(self, module: nn.Module, _inputs: Any, output: Any) -> None:
        times = self.mult.get(id(module), 1)
        if times == 0:
            return
        key = (id(output), getattr(output, "_version", 0))
        hit = self._seen.get(key)
        if hit is not None and hit[0] is output:
            self.items[hit[1]] = (self.items[hit[1]][0], self.items[hit[1]][1] + times)
            return
        fea = _features(output)
        if fea is None:
            return
        self._seen[key] = (output, len(self.items))  # keep output alive: ids stay unique
        self.items.append((fea, times))

    def total(self) -> float:
        """Sum over the collected maps of (multiplicity x smallest eigenvalue of the
        correlation), maps of one shape batched."""
        by_shape: dict[tuple[int, ...], list[tuple[torch.Tensor, int]]] = {}
        for fea, times in self.items:
            by_shape.setdefault(tuple(fea.shape), []).append((fea, times))
        total = 0.0
        for group in by_shape.values():
            corr = correlations(torch.stack([f for f, _ in group])).double()
            lam = torch.linalg.eigvalsh(corr)[:, 0]
            weights = torch.tensor([t for _, t in group], dtype=torch.float64, device=lam.device)
            keep = torch.isfinite(lam)
            total += float((lam[keep] * weights[keep]).sum())
        return total


def meco_score(net: nn.Module, x: torch.Tensor, mult: dict[int, int] | None = None) -> float:
    """MeCo of ``net`` on ``x`` (batch of 1): hooks on every module, weighted by ``mult``."""
    collector = _Collector(mult if mult is not None else {})
    hook: Callable = collector.hook
    handles = [m.register_forward_hook(hook) for m in net.modules()]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    value = collector.total()
    return value if math.isfinite(value) else math.nan


class Meco(Proxy):
    info = ProxyInfo(
        name="meco", version="2",
        reference="Jiang et al., MeCo: Zero-Shot NAS with One Data and Single Forward Pass via "
                  "Minimum Eigenvalue of Correlation, NeurIPS 2023",
        code="https://github.com/HamsterMimi/MeCo (correlation/NAS_Bench_201.py, "
             "correlation/foresight/pruners/measures/meco.py)",
        needs_labels=False, needs_images=True, input="real", bn="train", init="default",
        batch_size=1, spaces=("nats-tss",),
        deviations="fixed un-augmented image; eigvalsh in float64 instead of the real part of "
                   "eig in float32; float64 sum",
        per_arch=True,
    )

    def score(self, ctx) -> float:
        # contiguous (NCHW): faster than channels-last on the CPU for one image, and the
        # reference's layout (results/benchmarks/memory-format-cpu.txt)
        net = ctx.network(affine=False, track=False, init="default", prune=False,
                          channels_last=False)
        x = ctx.batch(self.batch_size, "real")[0].contiguous()
        return meco_score(net, x, module_multiplicities(net))
