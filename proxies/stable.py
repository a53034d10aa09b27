"""The MFNAS "stable" proxy: how consistent the gradients of stable weights are over batches.

Recipe (mine7777/MFNAS ``metrics/intgrad_param.py`` and ``intgrad_mean.py``):

1. The official network (affine, tracked BN), PyTorch default initialisation, train mode;
   cross-entropy gradients of B fixed batches of real training images (default 2 x 128).
2. Only conv/linear weights under ``model.cells`` (the cells and the reduction blocks; not the
   stem or classifier), and only layers with a non-zero gradient.
3. The bin: |g| of every such weight on every batch is counted into 21 bins with edges
   {0, 5e-10, 1e-9, 5e-9, ..., 1, 5} ([lo, hi)); per cell the fraction of its weights in each
   bin; the bin with the largest sum of per-cell fractions is chosen.
4. Per layer, over the weights whose |mean_b g| lies in the chosen bin ([lo, hi]):
   ``stable`` sums, ``stable_mean`` averages, |mean_b g| / (std_b g + 1e-5); the layer adds
   log(1 + that) unless it is 0 or NaN. The score is the sum over layers (1e-5 if none).

Deviations: a layer whose gradient is zero on some batches but not on all is kept with all B
batches (the reference's per-batch bookkeeping is undefined there); ties between bins go to the
lower bin; no augmentation on the fixed batches. Statistics are float32 like the reference's
numpy arrays; the per-layer logs are summed in float64.
Runs on whatever device the context has (CUDA minibatches when a GPU is given).
"""

from __future__ import annotations

import functools
import itertools
import math

import torch

from zcnas.models import block_indices
from zcnas.proxy import Proxy, ProxyError, ProxyInfo
from zcnas.scoring.passes import CESpec, ce_request

EDGES = (0, 5e-10, 1e-9, 5e-9, 1e-8, 5e-8, 1e-7, 5e-7, 1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4,
         1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1, 1.0, 5.0)
EPS = 1e-5
EMPTY_SCORE = 1e-5

REFERENCE = ("Multi-fidelity NAS with a stable zero-cost proxy (MFNAS); filtered-gradient "
             "proxies intgrad_param / intgrad_mean")
CODE = "https://github.com/mine7777/MFNAS (metrics/intgrad_param.py, metrics/intgrad_mean.py)"
DEVIATIONS = ("layers zero on some batches keep all batches; bin ties go to the lower bin; "
              "no augmentation")


def _nats_cells(names) -> dict[str, int]:
    """Layer name -> cell position for NATS-Bench names ``cells.i...``."""
    return {n: int(n.split(".")[1]) for n in names if n.startswith("cells.")}


_NO_EDGE = 2**31 - 1  # above the bits of every float32 below the infinities
_INF_BITS = 0x7F800000  # +inf's bits: the infinities' and NaNs' binade starts there


@functools.lru_cache(maxsize=8)
def _binades(edges: tuple[float, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per float32 exponent (a binade, [2^e, 2^(e+1)) or the subnormals): how many ``edges``
    lie below it, and the bits of the edge inside it (:data:`_NO_EDGE`: none). A binade holds
    at most one edge (consecutive edges here differ by 2x or more; checked). The last binade
    (+inf and the NaNs) is entered as the last edge's, opening at +inf's bits, so each of its
    values reaches every edge, as in ``bucketize`` (a NaN's largest payload would reach
    :data:`_NO_EDGE` itself)."""
    bits = torch.tensor(edges, dtype=torch.float32).view(torch.int32).tolist()
    if any(b < 0 for b in bits) or bits != sorted(bits):
        raise ValueError("the edges must be sorted and non-negative")
    below, inside = [], []
    for e in range(256):
        own = [b for b in bits if b >> 23 == e]
        if len(own) > 1:
            raise ValueError(f"edges {own} share a binade: bin them with bucketize")
        below.append(sum(b < e << 23 for b in bits))
        inside.append(own[0] if own else _NO_EDGE)
    if inside[255] == _NO_EDGE:  # no infinite edge: +inf and NaN lie above them all
        below[255], inside[255] = len(bits) - 1, _INF_BITS
    return (torch.tensor(below, dtype=torch.int32, device=device),
            torch.tensor(inside, dtype=torch.int32, device=device))


def _buckets(values: torch.Tensor, edges: torch.Tensor,
             bounds: tuple[float, ...] | None = None) -> torch.Tensor:
    """``bucketize(values, edges, right=True)``: per value, how many edges lie at or below it
    (NaN: above them all). Non-negative float32 values against float32 edges are bucketed by
    their bits: a non-negative float's bits order like its value, so a value's bucket is the
    number of edges below its binade plus one where it reaches the edge inside its binade
    (:func:`_binades`), two table look-ups, exact and about 2x faster than the binary search
    of ``bucketize`` or ``torch.histogram``. A negative value (its sign bit set) is an error.
    ``bounds``: the edges as numbers, where the caller has them (no read from a device)."""
    if values.dtype == torch.float32 and edges.dtype == torch.float32:
        try:
            below, inside = _binades(bounds if bounds is not None else tuple(edges.tolist()),
                                     values.device)
        except ValueError:
            pass
        else:
            bits = values.view(torch.int32)
            binade = (bits >> 23).reshape(-1)  # a value's sign bit is 0: its exponent
            # index_select: 5x faster than indexing with a tensor on the CPU
            edge = torch.index_select(inside, 0, binade).view_as(bits)
            return torch.index_select(below, 0, binade).view_as(bits).add_(bits >= edge)
    return torch.bucketize(values, edges, right=True)


def stable_score(grads: list[dict[str, torch.Tensor]], reduce: str = "sum",
                 cells: dict[str, int] | None = None) -> float:
    """The stable proxy from per-batch weight gradients (layer name -> tensor). ``cells``
    maps the layers inside the network's blocks to their block (default: NATS-Bench names
    ``cells.i...``); other layers (stem, classifier) are not counted.

    Every counted layer's gradients are laid side by side in one (batches, weights) matrix,
    so each step is a few whole-matrix operations instead of a dozen per layer (on a GPU each
    is a kernel launch), and the device is waited for once per step instead of three times
    per layer; each layer's sum is still taken over its own selected values, in their order,
    so the score is bitwise :func:`stable_score_per_layer`'s (tested on the CPU, and on CUDA
    by the gpu-marked tests)."""
    cells = cells if cells is not None else _nats_cells(grads[0])
    names = [n for n in grads[0] if n in cells]
    if not names:
        return EMPTY_SCORE
    g = torch.stack([torch.cat([b[n].reshape(-1) for n in names]) for b in grads]).float()
    spans = _spans([grads[0][n].numel() for n in names])
    live = torch.stack([g[:, a:b].any() for a, b in spans]).tolist()  # one wait
    if not all(live):  # a layer whose gradient is zero on every batch is not counted
        names = [n for n, keep in zip(names, live, strict=True) if keep]
        if not names:
            return EMPTY_SCORE
        g = torch.cat([g[:, a:b] for (a, b), keep in zip(spans, live, strict=True) if keep], 1)
        spans = _spans([grads[0][n].numel() for n in names])
    # float32 throughout, as the reference's numpy arrays (its thresholds become float32 too)
    edges = torch.tensor(EDGES, dtype=torch.float32, device=g.device)
    width = len(EDGES) + 1  # the buckets of _buckets: 0 (below the first edge) to len + 1
    # per cell (in order of first appearance): fraction of |g| values (all batches) per bin
    order: dict[int, int] = {}
    for n in names:
        order.setdefault(cells[n], len(order))
    rank = torch.tensor([order[cells[n]] * width for n in names], dtype=torch.int32,
                        device=g.device)
    offset = torch.repeat_interleave(rank, torch.tensor([b - a for a, b in spans],
                                                        device=g.device),
                                     output_size=g.shape[1])
    keys = _buckets(g.abs(), edges, EDGES) + offset  # (batches, weights): cell * width + bucket
    counts = torch.bincount(keys.reshape(-1), minlength=len(order) * width)
    counts = counts.reshape(len(order), width)[:, 1: len(EDGES)]
    sizes = [0] * len(order)
    for n, (a, b) in zip(names, spans, strict=True):
        sizes[order[cells[n]]] += (b - a) * g.shape[0]
    ratio = sum(counts[i].double() / sizes[i] for i in range(len(order)))
    best = int(torch.argmax(ratio))  # first maximum: ties go to the lower bin
    mu = g.mean(0)
    # numpy's std (ddof=0) written out: torch's reduction over a short leading dim is slow
    std = (g - mu).square_().mean(0).sqrt_().add_(EPS)
    mean = mu.abs_()
    sel = (mean >= edges[best]) & (mean <= edges[best + 1])
    ends = torch.cumsum(sel, 0)[[b - 1 for _, b in spans]].tolist()  # selected up to each end
    chosen = mean.div_(std)[sel]  # per layer, its selected values in order: one compaction
    values, start = [], 0
    for end in ends:
        if end > start:
            # its own copy: a reduction's split can follow its start's alignment (CUDA's
            # vectorized loads), and the per-layer computation sums a fresh tensor
            part = chosen[start:end].clone()
            values.append(part.sum() if reduce == "sum" else part.mean())
        start = end
    return _log_total(torch.stack(values).tolist() if values else [])  # one wait


def _spans(sizes: list[int]) -> list[tuple[int, int]]:
    """Each layer's [start, end) among the layers laid side by side, from their sizes."""
    ends = list(itertools.accumulate(sizes))
    return list(zip([0, *ends[:-1]], ends, strict=True))


def _log_total(values: list[float]) -> float:
    """The score from the layers' sums (or means): log(1 + v) summed over the layers whose
    value is positive; :data:`EMPTY_SCORE` where none is."""
    used = [math.log(v + 1.0) for v in values if v > 0 and not math.isnan(v)]
    return sum(used) if used else EMPTY_SCORE


def stable_score_per_layer(grads: list[dict[str, torch.Tensor]], reduce: str = "sum",
                           cells: dict[str, int] | None = None) -> float:
    """:func:`stable_score` one layer at a time, as the recipe reads (and as zcnas computed it
    before the layers were laid side by side): the yardstick its tests compare it with
    bitwise, and ``benchmarks.stable_stats`` times it against."""
    cells = cells if cells is not None else _nats_cells(grads[0])
    edges = torch.tensor(EDGES, dtype=torch.float32)
    stacked = {}
    for name in (n for n in grads[0] if n in cells):
        g = torch.stack([b[name].reshape(-1) for b in grads]).float()
        if bool(g.any()):
            stacked[name] = g
    if not stacked:
        return EMPTY_SCORE
    edges = edges.to(next(iter(stacked.values())).device)
    per_cell: dict[int, torch.Tensor] = {}
    sizes: dict[int, int] = {}
    for name, g in stacked.items():
        buckets = torch.bucketize(g.abs().reshape(-1), edges, right=True) - 1
        counts = torch.bincount(buckets, minlength=len(EDGES))[: len(EDGES) - 1]
        per_cell[cells[name]] = per_cell.get(cells[name], 0) + counts
        sizes[cells[name]] = sizes.get(cells[name], 0) + g.numel()
    best = int(torch.argmax(sum(per_cell[c].double() / sizes[c] for c in per_cell)))
    values = []
    for g in stacked.values():
        mu = g.mean(0)
        std = (g - mu).square_().mean(0).sqrt_().add_(EPS)
        mean = mu.abs_()
        sel = (mean >= edges[best]) & (mean <= edges[best + 1])
        if bool(sel.any()):
            r = mean[sel] / std[sel]
            values.append(float(r.sum() if reduce == "sum" else r.mean()))
    return _log_total(values)


class Stable(Proxy):
    """MFNAS ``intgrad_param``: log(1 + sum) per layer."""

    info = ProxyInfo(
        name="stable", version="1", reference=REFERENCE, code=CODE, needs_labels=True,
        needs_images=True, input="real", bn="train", init="default", transform="log",
        batch_size=128, n_batches=2, deviations=DEVIATIONS,
    )
    reduce = "sum"

    def check(self) -> None:
        if self.n_batches < 2:
            raise ProxyError(f"{self.name} needs n_batches >= 2 (a std over batches)")

    def _request(self):
        return ce_request(CESpec(batch_size=self.batch_size), self.n_batches, "grads")

    def requests(self):
        return (self._request(),)

    def score(self, ctx) -> float:
        result = ctx.run_pass(self._request())
        cells = block_indices(result.model, proxy=self.name)
        return stable_score(result.grads[: self.n_batches], self.reduce, cells)


class StableMean(Stable):
    """MFNAS ``intgrad_mean``: log(1 + mean) per layer."""

    info = ProxyInfo(
        name="stable_mean", version="1", reference=REFERENCE, code=CODE, needs_labels=True,
        needs_images=True, input="real", bn="train", init="default", transform="log",
        batch_size=128, n_batches=2, deviations=DEVIATIONS,
    )
    reduce = "mean"
