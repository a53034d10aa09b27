"""synflow: iterative synaptic flow at initialisation (data-free).

Recipe (foresight ``measures/synflow.py``, DESIGN "Facts"): a network without BN, every
parameter and buffer replaced by its absolute value, cast to float64, one all-ones input, the
sum of the outputs back-propagated; score = sum over conv/linear weights of |theta * dR/dtheta|,
reported as its natural log (NASLib), since raw values span 1e30..1e60.

Network: foresight's NB201 model (cells' BN ``affine=False`` so their convs carry a bias),
PyTorch default initialisation, float64 (contiguous).

Deviations, both measured on 400 cells in ``results/fidelity/`` and pinned by
``tests/proxies/test_leading_edge.py``:

- BN: foresight's BN-free copy (``get_prunable_copy(bn=False)``) drops the BN of the stem, the
  cells and the head but keeps the 4 BN layers of the two reduction blocks (train mode, so with
  one all-ones sample they normalise over space). We remove every BN, as AZ-NAS's port does. Log
  synflow is higher by an almost constant 6.8 (5.9 to 7.0) than the reference's; the ranking is
  unchanged (Spearman 0.9998 between the two).
- Conv edges whose source node is always zero (e.g. ``nor_conv_3x3~1`` after ``none~0``) are not
  built. In the reference's BN-free network their ``|bias|`` flows forward (no cell BN cancels
  it): log synflow higher by a median 0.01 (max 0.9) on those cells. Where such an edge alone
  feeds the cell output, the output is zero here (score ``-inf``) but a small finite value in
  the reference (-0.2 to 2.3; the other cells score 15 to 100): they rank last in both.
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
        deviations="every BN removed (foresight's BN-free copy keeps the 4 BN layers of the two "
                   "reduction blocks: log synflow +6.8, ranks unchanged); zero-source conv edges "
                   "not built (their bias adds a little flow in the reference)",
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
