"""grad_norm, snip and fisher: foresight's single-backward gradient saliencies.

Recipe (SamsungLabs/zero-cost-nas ``foresight/pruners/measures/grad_norm.py``, ``snip.py``,
``fisher.py``; ``predictive.find_measures`` sums every per-layer array to one number):

- network: foresight's NB201 model (cells' BN ``affine=False, track_running_stats=False``, so the
  cell convs carry a bias; stem, reduction and head BN affine and tracked), PyTorch default
  initialisation, BN in train mode (batch statistics);
- data: one batch of 64 real training images with labels, ``F.cross_entropy`` (mean);
- the three proxies read ONE shared ``ce`` pass (same :class:`CESpec`), i.e. one forward and one
  backward per architecture, as foresight's measures would if computed together; GraSP reads
  the same pass (its first gradient is this gradient), on contiguous (NCHW) tensors;
- ``grad_norm`` = sum over every Conv2d/Linear layer of the L2 norm of its weight gradient (a sum
  of per-layer norms, not one global norm);
- ``snip`` = sum over every Conv2d/Linear weight of ``|dL/dmask|`` for a multiplicative mask of
  ones, which is ``|theta * dL/dtheta|``;
- ``fisher`` = sum over Conv2d/Linear layers of the per-output-channel Fisher
  ``0.5 * mean_n (sum_hw act * dL/dact)^2`` (``act`` = the layer's output), each channel's value
  broadcast to the ``in * kh * kw`` weights of that channel (foresight's ``reshape_elements``
  with mode ``channel``) before summing: so every channel counts ``weight[0].numel()`` times.

Version 2 (contiguous tensors; version 1 ran channels-last on the CPU): the values moved by
float32 rounding only, but on ill-conditioned cells that is up to 2% (grad_norm 1.0%, snip
0.8%, fisher 2.0% on ``tests/scoring`` reference cell 3, whose gradients are ten times the
others'); the contiguous values are the closer to float64 (grad_norm there: 3.8e-4 against
9.5e-3 relative). The cost: alone, on this 2-core Xeon, grad_norm takes 0.54 s per cell instead
of 0.43 and fisher 0.64 instead of 0.41 (``results/correlations/ensemble-cost.md``); with GraSP,
all four take 1.66-1.80 s where grad_norm's pass and GraSP took 2.20 s
(``results/benchmarks/foresight-cpu.txt``, two runs).

Edges the reference computes and zcnas does not build (our networks are pruned, with the naive
network's weights):

- candidate ops foresight keeps but never runs, and edges whose target cannot reach the cell
  output (their gradient is multiplied by ``none``'s zero): zero gradient, they add 0 to all
  three proxies;
- **conv edges whose source node is always zero** (e.g. ``nor_conv_3x3~1`` after ``none~0``):
  the reference computes ReLU(0) -> conv with bias (the cells' BN is ``affine=False``) ->
  train-mode BN of a per-channel constant. Their weight gradient is exactly zero (the input is
  zero), so grad_norm and snip lose nothing; the BN's forward output is rounding noise (~1e-6 on
  contiguous CPU tensors; far more channels-last), which moves grad_norm and snip by ~1e-4
  relative on such cells. But the BN's input gradient is ``(dy - mean dy) / sqrt(var + eps)``
  with ``var`` ~ 0, i.e. scaled by ``1/sqrt(eps)`` ~ 316, and fisher multiplies it by the
  activation, the conv bias: these layers dominate the reference's fisher on the 2,140 of the
  15,625 cells where such an edge feeds a node that reaches the output.

fisher's default leaves those edges out (the pruned network): a **deliberate deviation**. The
terms are an artefact of BN's eps acting on a constant, not a property of the cell, and they
make the reference rank these worse-than-average cells near the top; measured in
``results/fidelity/zero-source-400.md``. ``fisher(literal=True)`` reproduces the reference
value, zero-source edges included: the naive network on contiguous tensors (a separate pass,
not shared with grad_norm/snip). On cells whose output is always zero but fed by such an edge
the reference's logits are BN-amplified rounding noise, so its fisher (literal included) depends
on the hardware and memory format there. ``tests/proxies/test_leading_edge.py`` pins both
against foresight's layout.

Deviations: a fixed seeded batch without augmentation instead of a fresh random augmented batch
per architecture; with ``n_batches > 1`` grad_norm and snip use the mean of the per-batch
gradients (BN statistics per batch) where foresight concatenates the batches into one; fisher
reads one batch only; fisher leaves out the zero-source conv edges unless ``literal=True``.
"""

from __future__ import annotations

import dataclasses

import torch

from zcnas.proxy import Proxy, ProxyError, ProxyInfo
from zcnas.scoring.passes import CESpec, ce_request

REFERENCE = ("Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021; "
             "Lee et al., SNIP, ICLR 2019 (snip); Theis et al. 2018 / Turner et al. 2020 (fisher)")
CODE = "https://github.com/SamsungLabs/zero-cost-nas (foresight/pruners/measures/{}.py)"
DEVIATIONS = ("fixed seeded batch without augmentation; n_batches > 1 averages the per-batch "
              "gradients (foresight concatenates batches)")
FISHER_DEVIATIONS = ("conv edges whose source node is always zero are not built (the reference "
                     "computes them: bias x a BN input gradient scaled by 1/sqrt(eps)); "
                     "literal=True builds them; fixed seeded batch without augmentation; "
                     "one batch only")


def foresight_spec(batch_size: int) -> CESpec:
    """The ``ce`` pass of the foresight recipes: cells' BN without affine/tracking, default
    init, contiguous (NCHW) tensors as the reference's CUDA run: GraSP's double backward is
    faster and closer to float64 so on the CPU (see ``zcnas_proxies.grasp``), and grad_norm,
    snip, fisher, GraSP and jacov (its input Jacobian, ``zcnas_proxies.jacobian``) then share
    one pass."""
    return CESpec(affine=False, track=False, init="default", batch_size=batch_size,
                  channels_last=False)


def mean_grads(grads: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Per layer, the mean of the per-batch weight gradients (the batch-0 tensors when n = 1)."""
    if len(grads) == 1:
        return grads[0]
    return {name: torch.stack([b[name] for b in grads]).mean(0) for name in grads[0]}


def grad_norm_score(grads: dict[str, torch.Tensor]) -> float:
    """Sum over layers of the L2 norm of each layer's weight gradient."""
    if not grads:
        return 0.0
    norms = torch._foreach_norm(list(grads.values()))
    return float(torch.stack(norms).double().sum())


def snip_score(weights: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> float:
    """Sum over layers and weights of |theta * g|."""
    total = torch.zeros((), dtype=torch.float64)
    for name, g in grads.items():
        total += (weights[name] * g).abs().sum(dtype=torch.float64).cpu()
    return float(total)


def fisher_score(weights: dict[str, torch.Tensor], fisher: dict[str, torch.Tensor]) -> float:
    """Sum over layers of per-channel Fisher x the number of weights of that channel."""
    total = torch.zeros((), dtype=torch.float64)
    for name, per_channel in fisher.items():
        w = weights[name]
        total += per_channel.abs().sum(dtype=torch.float64).cpu() * (w.numel() // w.shape[0])
    return float(total)


def layer_weights(result) -> dict[str, torch.Tensor]:
    modules = dict(result.model.named_modules())
    return {name: modules[name].weight.detach() for name in result.layers}


class _Foresight(Proxy):
    collect = "grads"
    measure = ""

    def _request(self):
        return ce_request(foresight_spec(self.batch_size), self.n_batches, self.collect)

    def requests(self):
        return (self._request(),)


def _info(name: str, **extra) -> ProxyInfo:
    return ProxyInfo(
        name=name, version="2", reference=REFERENCE, code=CODE.format(name), needs_labels=True,
        needs_images=True, input="real", bn="train", init="default", batch_size=64,
        n_batches=1, **extra,
    )


class GradNorm(_Foresight):
    """Sum over conv/linear layers of ||dL/dW||_2."""

    info = _info("grad_norm", deviations=DEVIATIONS)

    def score(self, ctx) -> float:
        result = ctx.run_pass(self._request())
        return grad_norm_score(mean_grads(result.grads[: self.n_batches]))


class Snip(_Foresight):
    """Sum over conv/linear weights of |theta * dL/dtheta|."""

    info = _info("snip", deviations=DEVIATIONS)

    def score(self, ctx) -> float:
        result = ctx.run_pass(self._request())
        return snip_score(layer_weights(result), mean_grads(result.grads[: self.n_batches]))


class Fisher(_Foresight):
    """Sum over conv/linear output channels of 0.5 mean_n (sum_hw a g)^2, x weights per channel.

    ``literal=True``: on the naive network (every edge built, contiguous tensors), so the conv
    edges whose source node is always zero count as in the reference (see the module docstring);
    the default, pruned network leaves them out.
    """

    info = _info("fisher", deviations=FISHER_DEVIATIONS)
    params = {"literal": False}
    collect = "fisher"

    def check(self) -> None:
        if self.n_batches != 1:
            raise ProxyError("fisher reads one batch (n_batches=1); raise batch_size instead")

    def _request(self):
        spec = foresight_spec(self.batch_size)
        if self.literal:
            spec = dataclasses.replace(spec, prune=False, channels_last=False)
        return ce_request(spec, self.n_batches, self.collect)

    def score(self, ctx) -> float:
        result = ctx.run_pass(self._request())
        return fisher_score(layer_weights(result), result.fisher or {})
