"""NASWOT (v2, log-det): how differently the untrained network codes the images of a batch.

Recipe (BayesWatch/nas-without-training ``score_networks.py``): binary codes c = 1[x > 0] of the
input of every ReLU for each image of one batch of 128 real training images; K = sum over ReLUs
of c c^T + (1 - c)(1 - c)^T; score = log|det K| (``slogdet``). Untrained network, PyTorch default
initialisation, BN in train mode; the official NATS-Bench network (affine, tracked BN).

The codes are read in the same forward pass as the first batch of the MFNAS stable proxy when
both run. Dead edges are pruned but keep ReLU probes, so every ReLU of the reference network is
counted with its reference input. The reference builds a 1-output classifier; the ReLU inputs do
not depend on the classifier, so the dataset's classes are used (same score). No augmentation.
"""

from __future__ import annotations

import torch

from zcnas.proxy import Proxy, ProxyInfo
from zcnas.scoring.passes import CESpec, ce_request


class Naswot(Proxy):
    info = ProxyInfo(
        name="naswot", version="1",
        reference="Mellor et al., Neural Architecture Search without Training, ICML 2021",
        code="https://github.com/BayesWatch/nas-without-training (score_networks.py)",
        needs_labels=False, needs_images=True, input="real", bn="train", init="default",
        transform="log", batch_size=128,
        deviations="no augmentation on the fixed batch",
    )

    def _request(self):
        return ce_request(CESpec(batch_size=self.batch_size), 1, "hamming")

    def requests(self):
        return (self._request(),)

    def score(self, ctx) -> float:
        k = ctx.run_pass(self._request()).hamming
        return float(torch.linalg.slogdet(k)[1])
