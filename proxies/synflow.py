"""synflow: iterative synaptic flow at initialisation (data-free).

Recipe (foresight ``measures/synflow.py``, DESIGN "Facts"): a network without BN, every
parameter and buffer replaced by its absolute value, cast to float64, one all-ones input, the
sum of the outputs back-propagated; score = sum over conv/linear weights of |theta * dR/dtheta|,
reported as its natural log (NASLib), since raw values span 1e30..1e60.

Network: foresight's NB201 model (cells' BN ``affine=False`` so their convs carry a bias),
PyTorch default initialisation. Deviation: foresight keeps BN in the reduction blocks, stem and
head; we remove every BN as AZ-NAS's port does (with one all-ones sample, BN batch statistics are
spatial only and the score is meant to be BN-free).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from zcnas.proxy import Proxy, ProxyInfo


class Synflow(Proxy):
    info = ProxyInfo(
        name="synflow", version="1",
        reference="Tanaka et al., Pruning neural networks without any data by iteratively "
                  "conserving synaptic flow, NeurIPS 2020; Abdelfattah et al., Zero-Cost Proxies "
                  "for Lightweight NAS, ICLR 2021",
        code="https://github.com/SamsungLabs/zero-cost-nas (foresight/pruners/measures/synflow.py)",
        needs_labels=False, needs_images=False, input="ones", bn="none", init="default",
        transform="log", batch_size=1,
        deviations="every BN removed (foresight keeps BN outside the cells)",
    )

    def score(self, ctx) -> float:
        net = ctx.network(affine=False, track=False, bn=False, dtype=torch.float64)
        with torch.no_grad():
            for tensor in net.state_dict().values():
                if tensor.is_floating_point():
                    tensor.abs_()
        x = ctx.ones(self.batch_size, dtype=torch.float64)
        net.zero_grad(set_to_none=True)
        net(x).sum().backward()
        total = torch.zeros((), dtype=torch.float64, device=x.device)
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, nn.Conv2d | nn.Linear) and m.weight.grad is not None:
                    total += (m.weight * m.weight.grad).abs().sum()
        value = float(total)
        return math.log(value) if value > 0 else -math.inf
