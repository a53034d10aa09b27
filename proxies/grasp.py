"""GraSP: the Hessian-gradient product of the loss, weighted by the weights.

Recipe (SamsungLabs/zero-cost-nas ``foresight/pruners/measures/grasp.py``, ``T=1``,
``num_iters=1``; summed by ``predictive.find_measures``):

1. foresight's NB201 model (cells' BN ``affine=False, track_running_stats=False``), PyTorch
   default initialisation, BN in train mode; one batch of 64 real training images, CE loss;
2. ``g = dL/dW`` for every Conv2d/Linear weight ``W`` (first forward/backward);
3. ``Hg = d(sum_W <stop_grad(g), dL/dW>)/dW`` (second forward with ``create_graph=True`` and a
   double backward);
4. score = sum over those weights of ``-W * Hg`` (foresight adds the minus sign because accuracy
   correlated negatively with ``W * Hg``; higher is better).

With BN in train mode both reference forwards see the same batch and give the same loss, so we
run one forward with ``create_graph=True`` and reuse its gradient (detached) as ``g``: the same
quantity for one fewer forward/backward. That gradient is also the one grad_norm, snip and
fisher read, so for ``n_batches = 1`` GraSP is the ``hessian`` collect of their shared ``ce``
pass (:mod:`zcnas.scoring.passes`): foresight's four gradient proxies cost one forward, one
create-graph backward and one double backward together. ``n_batches = k`` is not part of the
recipe (foresight only splits a batch after running out of GPU memory, and then keeps the last
split's ``g``): it runs on its own network, not shared, and ``g`` is the sum of the per-batch
gradients and ``Hg`` the sum over batches of each batch's Hessian times that ``g``, i.e. the
Hessian-gradient product of the summed loss.

The network's 3x3 average pools and cell BN are swapped for versions with their double
backward written out (:mod:`zcnas.models.hessian`): the same forward and gradient, a cheaper
Hessian-gradient product, equal to autograd's up to float rounding.

Memory format: contiguous (NCHW) tensors, as the reference's CUDA run. On the CPU they are
faster than channels-last for this double backward and closer to float64: float32 GraSP is only
good to about 1e-3..3e-2 relative on these networks (channels-last: up to 7e-2), and version 2
(contiguous) differs from version 1 (channels-last) by that much
(``results/benchmarks/memory-format-cpu.txt``).

Zero-source conv edges (a conv edge whose source node is always zero): the reference computes
ReLU(0) -> conv + bias -> BN of a constant, whose output is rounding noise that the pruned
network does not have; on such cells GraSP differs from the reference by that noise only
(about 2e-4 relative here, see ``results/fidelity/``).

Deviations: a fixed seeded batch without augmentation (foresight draws a fresh augmented batch per
architecture); one forward instead of two for ``n_batches = 1`` (same value); ``n_batches > 1``
as described above; zero-source conv edges not built (their BN noise is absent).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from zcnas.models.hessian import for_double_backward
from zcnas.proxy import Proxy, ProxyInfo
from zcnas.scoring.passes import ce_request, grad_and_hvp, hvp
from zcnas_proxies.gradient import foresight_spec, layer_weights


def grasp_score(net: nn.Module, batches) -> float:
    """sum(-W * H g) over Conv2d/Linear weights of ``net`` for the CE loss of ``batches``."""
    weights = [m.weight for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    if len(batches) == 1:
        x, y = batches[0]
        _, hg = grad_and_hvp(F.cross_entropy(net(x), y), weights)
    else:
        g_sum = [torch.zeros_like(w) for w in weights]
        for x, y in batches:
            step = torch.autograd.grad(F.cross_entropy(net(x), y), weights, allow_unused=True)
            g_sum = [a if b is None else a + b for a, b in zip(g_sum, step, strict=True)]
        hg = [torch.zeros_like(w) for w in weights]
        for x, y in batches:
            grads = torch.autograd.grad(F.cross_entropy(net(x), y), weights, create_graph=True,
                                        allow_unused=True)
            z = sum((gw * g).sum() for gw, g in zip(g_sum, grads, strict=True) if g is not None)
            step = hvp(z, weights)
            hg = [a if b is None else a + b for a, b in zip(hg, step, strict=True)]
    return weighted_hessian_score(weights, hg)


def weighted_hessian_score(weights, hg) -> float:
    """sum(-W * Hg) over the weights (``None`` entries of ``hg`` add nothing), in float64."""
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for w, h in zip(weights, hg, strict=True):
            if h is not None:
                total -= (w.detach() * h).sum(dtype=torch.float64).cpu()
    return float(total)


class Grasp(Proxy):
    info = ProxyInfo(
        name="grasp", version="2",
        reference="Wang et al., Picking Winning Tickets Before Training by Preserving Gradient "
                  "Flow (GraSP), ICLR 2020; Abdelfattah et al., Zero-Cost Proxies for "
                  "Lightweight NAS, ICLR 2021",
        code="https://github.com/SamsungLabs/zero-cost-nas (foresight/pruners/measures/grasp.py)",
        needs_labels=True, needs_images=True, input="real", bn="train", init="default",
        batch_size=64, n_batches=1,
        deviations="fixed seeded batch without augmentation; one create_graph forward reused "
                   "for g (same value as foresight's two forwards); n_batches > 1 uses the "
                   "summed loss (not in the recipe); zero-source conv edges not built (the "
                   "reference's BN rounding noise there is absent)",
    )

    def _request(self):
        return ce_request(foresight_spec(self.batch_size), 1, "hessian")

    def requests(self):
        return (self._request(),) if self.n_batches == 1 else ()

    def score(self, ctx) -> float:
        if self.n_batches == 1:  # the hessian collect of foresight's shared pass
            result = ctx.run_pass(self._request())
            weights = layer_weights(result)
            return weighted_hessian_score([weights[n] for n in result.layers],
                                          [result.hessian[n] for n in result.layers])
        # contiguous (NCHW) tensors: on the CPU the double backward is faster than
        # channels-last and closer to float64 (results/benchmarks/memory-format-cpu.txt)
        # pools and cell BN with their double backward written out (zcnas.models.hessian)
        net = for_double_backward(ctx.network(affine=False, track=False,
                                              channels_last=False))
        batches = [(x.contiguous(), y) for x, y in ctx.batches(self.batch_size, self.n_batches)]
        return grasp_score(net, batches)
