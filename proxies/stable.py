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

import math

import torch

from zcnas.models import block_indices
from zcnas.proxy import Proxy, ProxyError, ProxyInfo
from zcnas.scoring.passes import CESpec, ce_request

EDGES = (0, 5e-10, 1e-9, 5e-9, 1e-8, 5e-8, 1e-7, 5e-7, 1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4,
         1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1, 1.0, 5.0)
EPS = 1e-5
HISTOGRAM_LIMIT = 2**24  # values binned by torch.histogram below this: its float counts exact
EMPTY_SCORE = 1e-5

REFERENCE = ("Multi-fidelity NAS with a stable zero-cost proxy (MFNAS); filtered-gradient "
             "proxies intgrad_param / intgrad_mean")
CODE = "https://github.com/mine7777/MFNAS (metrics/intgrad_param.py, metrics/intgrad_mean.py)"
DEVIATIONS = ("layers zero on some batches keep all batches; bin ties go to the lower bin; "
              "no augmentation")


def _nats_cells(names) -> dict[str, int]:
    """Layer name -> cell position for NATS-Bench names ``cells.i...``."""
    return {n: int(n.split(".")[1]) for n in names if n.startswith("cells.")}


def bin_counts(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """How many ``values`` lie in each bin [edges[k], edges[k + 1]); values from the last edge
    up (and NaN) in none. On the CPU one ``torch.histogram`` pass (1.8x faster than
    bucketize + bincount), its last bin closed by an extra edge at +inf and dropped; its float
    counts are exact below 2**24 values."""
    if values.device.type == "cpu" and values.numel() < HISTOGRAM_LIMIT:
        closed = torch.cat([edges, edges.new_full((1,), math.inf)])
        return torch.histogram(values.to(edges.dtype), bins=closed).hist[: len(edges) - 1].long()
    bins = torch.bucketize(values, edges, right=True) - 1  # [lo, hi) bins
    return torch.bincount(bins, minlength=len(edges))[: len(edges) - 1]  # >= last: no bin


def stable_score(grads: list[dict[str, torch.Tensor]], reduce: str = "sum",
                 cells: dict[str, int] | None = None) -> float:
    """The stable proxy from per-batch weight gradients (layer name -> tensor). ``cells``
    maps the layers inside the network's blocks to their block (default: NATS-Bench names
    ``cells.i...``); other layers (stem, classifier) are not counted."""
    cells = cells if cells is not None else _nats_cells(grads[0])
    names = [n for n in grads[0] if n in cells]
    stacked = {}
    for name in names:
        g = torch.stack([b[name].reshape(-1) for b in grads]).float()
        if bool(g.any()):
            stacked[name] = g
    if not stacked:
        return EMPTY_SCORE
    # float32 throughout, as the reference's numpy arrays (its thresholds become float32 too)
    edges = torch.tensor(EDGES, dtype=torch.float32, device=next(iter(stacked.values())).device)
    # per cell: fraction of |g| values (all batches) in each bin [lo, hi)
    per_cell: dict[int, torch.Tensor] = {}
    sizes: dict[int, int] = {}
    for name, g in stacked.items():
        cell = cells[name]
        per_cell[cell] = per_cell.get(cell, 0) + bin_counts(g.abs().reshape(-1), edges)
        sizes[cell] = sizes.get(cell, 0) + g.numel()
    ratio = sum(per_cell[c].double() / sizes[c] for c in per_cell)
    best = int(torch.argmax(ratio))  # first maximum: ties go to the lower bin
    total = 0.0
    used = 0
    for g in stacked.values():
        mu = g.mean(0)
        # numpy's std (ddof=0) written out: torch's reduction over a short leading dim is slow
        std = (g - mu).square_().mean(0).sqrt_().add_(EPS)
        mean = mu.abs_()
        sel = (mean >= edges[best]) & (mean <= edges[best + 1])
        if not bool(sel.any()):
            continue
        ratio_sel = mean[sel] / std[sel]
        value = float(ratio_sel.sum() if reduce == "sum" else ratio_sel.mean())
        if value > 0 and not math.isnan(value):
            total += math.log(value + 1.0)
            used += 1
    return total if used else EMPTY_SCORE


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
