"""ZiCo: the inverse coefficient of variation of the weight gradients across batches.

Recipe (SLDGroup/ZiCo ``ZeroShotProxy/compute_zico.py``; the NB201 settings of its AZ-NAS port
``cvlab-yonsei/AZ-NAS NB201/ZeroShotProxy/compute_zico_score.py``):

- network: the NATS-Bench network with the cells' BN ``affine=True, track_running_stats=False``
  (AZ-NAS ``--affine 1 --track_running_stats 0``), PyTorch default initialisation (the port does
  not re-initialise), train mode;
- data: 2 batches of 64 real training images (``batch_iter=2``), CE loss, gradients zeroed before
  each batch, so each batch gives its own weight gradient ``g_b``;
- per Conv2d/Linear layer (every one: stem, cells, reductions, classifier), over the weights whose
  ``std_b(g)`` (population std, ``np.std``) is non-zero: ``tmp = sum mean_b|g| / std_b(g)``; the
  layer adds ``log(tmp)`` unless ``tmp == 0``; the score is the sum over layers.

The gradients come from the shared ``ce`` pass (``collect="grads"``), so any proxy with the same
network/batch configuration reads the same backward passes.

Deviations: fixed seeded batches without augmentation; statistics in float64 (numpy works in the
gradients' float32). The official SLDGroup function never zeroes the gradients between batches
(its second snapshot is ``g_1 + g_2``); we follow the AZ-NAS NB201 port, which does, as the
paper's per-batch gradient statistics describe.
"""

from __future__ import annotations

import math

import torch

from zcnas.proxy import Proxy, ProxyError, ProxyInfo
from zcnas.scoring.passes import CESpec, ce_request


def zico_score(grads: list[dict[str, torch.Tensor]]) -> float:
    """ZiCo from per-batch weight gradients (layer name -> tensor, one dict per batch)."""
    total = 0.0
    for name in grads[0]:
        g = torch.stack([b[name].reshape(-1) for b in grads]).double()
        std = g.std(0, unbiased=False)
        keep = std > 0
        if not bool(keep.any()):
            continue
        tmp = float((g[:, keep].abs().mean(0) / std[keep]).sum())
        if tmp != 0:
            total += math.log(tmp)
    return total


class Zico(Proxy):
    info = ProxyInfo(
        name="zico", version="1",
        reference="Li et al., ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on "
                  "Gradients, ICLR 2023",
        code="https://github.com/SLDGroup/ZiCo (ZeroShotProxy/compute_zico.py); NB201 port: "
             "https://github.com/cvlab-yonsei/AZ-NAS (NB201/ZeroShotProxy/compute_zico_score.py)",
        needs_labels=True, needs_images=True, input="real", bn="train", init="default",
        transform="log", batch_size=64, n_batches=2,
        deviations="fixed seeded batches without augmentation; float64 statistics; gradients "
                   "zeroed between batches as in the AZ-NAS port (the SLDGroup function "
                   "accumulates them)",
    )

    def check(self) -> None:
        if self.n_batches < 2:
            raise ProxyError("zico needs n_batches >= 2 (a std over batches)")

    def _request(self):
        spec = CESpec(affine=True, track=False, init="default", batch_size=self.batch_size)
        return ce_request(spec, self.n_batches, "grads")

    def requests(self):
        return (self._request(),)

    def score(self, ctx) -> float:
        return zico_score(ctx.run_pass(self._request()).grads[: self.n_batches])
