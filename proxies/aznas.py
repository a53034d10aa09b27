"""AZ-NAS components: expressivity, progressivity, trainability and complexity.

Recipe (cvlab-yonsei/AZ-NAS ``NB201/ZeroShotProxy/compute_az_nas_score.py``, driven by
``NB201/tss_general.ipynb``):

- Network: the official NB201 ``TinyNetwork`` in train mode (BN batch statistics), re-initialised
  Kaiming-normal fan-in (ReLU gain; biases 0; affine BN weight 1, bias 0). The notebook parses
  ``--affine 1 --track_running_stats 0`` but builds ``TinyNetwork(C, N, genotype, classes)``
  without them, so the cells keep the ``InferCell`` defaults (affine, tracked); in train mode
  tracking does not change any output, so we build untracked BN (no buffer updates).
- Input: one batch of 64 N(0, 1) images (``torch.randn``), no images, no labels.
- Features: the stem output and the output of every one of the 17 layers of ``net.cells``
  (15 cells and the 2 ResNet reductions): 18 feature maps (``extract_cell_features``).
- Expressivity of a feature map (B, C, H, W): the (BHW, C) matrix is centred per channel, its
  covariance ``F^T F / BHW`` has eigenvalues ``s`` (``eigvalsh``); with ``p = s / sum(s)`` the
  score is the entropy ``sum(-p * log(p + 1e-8))``. expressivity = sum over the 18 maps;
  progressivity = min over the 17 consecutive differences (later minus earlier).
- Trainability: for each consecutive pair (f_in, f_out), last pair first, a random +-1 tensor
  ``g_out`` (Bernoulli(0.5)) is back-propagated from f_out to f_in (``g_in``). If g_in equals
  g_out exactly (an identity layer) the pair scores -inf. Otherwise, where the resolution
  halves, g_in is ``PixelUnshuffle``d to the output resolution; with both flattened to
  (BHW, C), ``M = g_in^T g_out / BHW`` and ``sigma = max singular value of M``; the pair scores
  ``-sigma - 1 / (sigma + 1e-6) + 2``. trainability = mean over pairs.
- NaN results become -inf (the reference's convention); all four are higher-is-better.
- Complexity: FLOPs as the NATS-Bench API reports them (the notebook reads
  ``get_compute_costs(dataset)['flops']``), via :func:`zcnas_proxies.cost.costs`.

The three network-based components come from ONE forward/backward: the first of them scored on a
context computes all three (``ctx.memo``), the others read the memo.

The AZ-NAS score itself is a nonlinear rank aggregation over a population,
``sum over components of log(rank / N)``; that is an ensemble built elsewhere, not here.

Deviations: the Gaussian input batch and the +-1 gradients come from seeded generators (fixed
across architectures) instead of the global CUDA RNG; dead cell edges are not built (they
change no feature and add exactly zero to every gradient, so the components are unchanged);
computed on the context's device (CPU float32 by default) instead of CUDA.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from zcnas.models import body
from zcnas.proxy import Proxy, ProxyInfo

REFERENCE = ("Lee & Ham, AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search, "
             "CVPR 2024")
CODE = ("https://github.com/cvlab-yonsei/AZ-NAS (NB201/ZeroShotProxy/compute_az_nas_score.py, "
        "NB201/tss_general.ipynb)")
DEVIATIONS = ("seeded Gaussian batch and +-1 gradients (fixed across architectures) instead of the "
              "global CUDA RNG; dead edges not built (components unchanged); CPU float32 by "
              "default")
INIT = "kaiming_normal_fan_in"
SEED_OFFSET = 0xA2  # the +-1 gradients' generator: derived from ctx.seed, apart from the init


def cell_features(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The stem output and the output of every layer of ``net.cells`` (with autograd graph);
    for another space's model, of every block of its body (:func:`zcnas.models.body`)."""
    return body(net, proxy="AZ-NAS").block_outputs(x)


def expressivity_of(feature: torch.Tensor) -> float:
    """Entropy of the normalised eigenvalues of the channel covariance of one feature map."""
    b, c, h, w = feature.shape
    feat = feature.detach().permute(0, 2, 3, 1).reshape(b * h * w, c)
    feat = feat - feat.mean(dim=0, keepdim=True)
    sigma = feat.T @ feat / feat.shape[0]
    s = torch.linalg.eigvalsh(sigma)
    p = s / s.sum()
    return float((-p * torch.log(p + 1e-8)).sum())


def _unshuffled_rows(g: torch.Tensor, r: int) -> torch.Tensor:
    """``PixelUnshuffle(r)(g)`` (channel ``c*r*r + i*r + j`` holds pixel ``(r*h + i, r*w + j)``
    of channel ``c``) as (B*H*W, C*r*r) rows, in one copy (the same values and layout): torch's
    unshuffle kernel is slow on a channels-last gradient."""
    b, c, hh, ww = g.shape
    if r == 1:
        return g.permute(0, 2, 3, 1).reshape(-1, c)
    h, w = hh // r, ww // r
    return g.reshape(b, c, h, r, w, r).permute(0, 2, 4, 1, 3, 5).reshape(b * h * w, c * r * r)


def trainability_of(f_in: torch.Tensor, f_out: torch.Tensor, g_out: torch.Tensor) -> float:
    """One pair's trainability: -sigma - 1/(sigma + 1e-6) + 2 of the +-1 Jacobian product."""
    g_in = torch.autograd.grad(f_out, f_in, g_out, retain_graph=False, allow_unused=True)[0]
    if g_in is None:
        g_in = torch.zeros_like(f_in)
    if g_in.shape == g_out.shape and bool(torch.equal(g_in, g_out)):
        return -math.inf
    bo, co, ho, wo = g_out.shape
    a = _unshuffled_rows(g_in, g_in.shape[2] // ho)
    b = g_out.permute(0, 2, 3, 1).reshape(-1, co)
    mat = a.T @ b / (bo * ho * wo)
    if mat.shape[0] < mat.shape[1]:
        mat = mat.T
    smax = float(torch.linalg.svdvals(mat).max())
    return -smax - 1.0 / (smax + 1e-6) + 2.0


def _finite_or_neg_inf(value: float) -> float:
    return -math.inf if math.isnan(value) else float(value)


def az_components(ctx, batch_size: int = 64, init: str = INIT) -> dict[str, float]:
    """Expressivity, progressivity and trainability of ``ctx.arch`` from one forward/backward."""
    net = ctx.network(affine=True, track=False, init=init)
    x = ctx.batch(batch_size, "gaussian")[0]
    return az_components_of(net, x, ctx.seed + SEED_OFFSET)


def sign_tensor(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """A +-1 tensor, each entry +1 with probability 1/2 (``(bernoulli(0.5) - 0.5) * 2``)."""
    return torch.randint(0, 2, shape, generator=generator, dtype=torch.float32).mul_(2).sub_(1)


#: shape sequence -> its +-1 tensors, the most recently used last. Two lists, so two AZ-NAS
#: batch sizes (or seeds) can alternate (``ensemble:zcnas`` beside ``ensemble:zcnas_fast``);
#: with three or more they are drawn anew each time. One list at 64 images of a NATS-tss
#: cell on CIFAR-10 holds about 38 MiB.
_SIGNS: OrderedDict[tuple, tuple[torch.Tensor, ...]] = OrderedDict()
_SIGNS_KEPT = 2
_SIGNS_LOCK = threading.Lock()
#: the last few sequences met and not kept (a sequence met again among them is kept)
_MISSES: OrderedDict[tuple, None] = OrderedDict()


def _draws(features: list[torch.Tensor], seed: int) -> Iterator[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    for f in features:
        yield torch.empty_like(f).copy_(sign_tensor(f.shape, gen))


def sign_tensors(features: list[torch.Tensor], seed: int) -> Iterator[torch.Tensor]:
    """One +-1 tensor per feature, drawn in order from one generator seeded ``seed``, each
    laid out like its feature (channels-last on the CPU: a contiguous gradient into
    channels-last BN takes torch's slow mixed-format backward, 4x slower). An iterator: walk
    it once.

    They depend only on the seed and the features' shapes, which every cell of a space with a
    fixed macro skeleton shares (NATS-tss), so a shape sequence met again soon (within the
    last :data:`_SIGNS_KEPT` sequences not kept) is kept (:data:`_SIGNS`): drawing them took
    about a tenth of the components' time at 64 images. A sequence met once (every network
    of NATS-sss has its own channels) is drawn as the caller walks it, and not kept. The
    tensors handed out must not be modified (autograd does not write into the gradients it
    is given)."""
    key = (seed, tuple((tuple(f.shape), f.stride(), f.dtype, f.device) for f in features))
    with _SIGNS_LOCK:
        kept = _SIGNS.get(key)
        if kept is not None:
            _SIGNS.move_to_end(key)
            return iter(kept)
        again = key in _MISSES
        if again:
            del _MISSES[key]
        else:
            _MISSES[key] = None
            while len(_MISSES) > _SIGNS_KEPT:
                _MISSES.popitem(last=False)
    if not again:
        return _draws(features, seed)
    signs = tuple(_draws(features, seed))
    with _SIGNS_LOCK:
        _SIGNS[key] = signs
        while len(_SIGNS) > _SIGNS_KEPT:
            _SIGNS.popitem(last=False)
    return iter(signs)


def az_components_of(net: nn.Module, x: torch.Tensor, seed: int) -> dict[str, float]:
    """The three components of ``net`` (train mode) on input ``x``; the +-1 gradients are
    drawn from a generator seeded ``seed`` (:func:`sign_tensors`)."""
    feats = cell_features(net, x)
    scores = np.array([expressivity_of(f) for f in feats])
    expressivity = float(np.sum(scores))
    progressivity = float(np.min(scores[1:] - scores[:-1]))  # NaN if any entropy is NaN
    pairs = []
    outs = list(reversed(range(1, len(feats))))  # last pair first
    for i, g_out in zip(outs, sign_tensors([feats[i] for i in outs], seed), strict=True):
        pairs.append(trainability_of(feats[i - 1], feats[i], g_out))
    trainability = float(np.mean(pairs))
    return {"expressivity": _finite_or_neg_inf(expressivity),
            "progressivity": _finite_or_neg_inf(progressivity),
            "trainability": _finite_or_neg_inf(trainability)}


class _AZComponent(Proxy):
    component: str = ""

    def score(self, ctx) -> float:
        key = ("aznas", self.batch_size, INIT)
        return ctx.memo(key, lambda: az_components(ctx, self.batch_size, INIT))[self.component]


def _info(name: str, what: str) -> ProxyInfo:
    return ProxyInfo(
        name=name, version="1", reference=f"{REFERENCE} ({what})", code=CODE,
        needs_labels=False, needs_images=False, input="gaussian", bn="train", init=INIT,
        batch_size=64, deviations=DEVIATIONS,
    )


class Expressivity(_AZComponent):
    """AZ-NAS expressivity: sum over the stem and cell outputs of the covariance eigen-entropy."""

    info = _info("az_expressivity", "expressivity")
    component = "expressivity"


class Progressivity(_AZComponent):
    """AZ-NAS progressivity: the smallest increase of eigen-entropy from one layer to the next."""

    info = _info("az_progressivity", "progressivity")
    component = "progressivity"


class Trainability(_AZComponent):
    """AZ-NAS trainability: mean over layers of -sigma - 1/sigma + 2 of the +-1 Jacobian."""

    info = _info("az_trainability", "trainability")
    component = "trainability"


class Complexity(Proxy):
    """AZ-NAS complexity: forward FLOPs in millions, as the NATS-Bench API reports them."""

    info = ProxyInfo(
        name="az_complexity", version="1", reference=f"{REFERENCE} (complexity)", code=CODE,
        needs_labels=False, needs_images=False, input="none", bn="n/a", init="n/a",
        batch_size=1,
        per_arch=True,
    )

    def score(self, ctx) -> float:
        return float(ctx.costs().flops_m)
