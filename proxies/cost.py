"""#params and FLOPs: analytic counts of the network, as the NATS-Bench API reports them.

On the NATS-Bench spaces no network is built: :func:`zcnas.spaces.plan.count_costs`
reproduces the official ``get_cost_info`` values exactly (the BN affine pair counted, pooling
FLOPs not counted). A space without an analytic count is counted on its built network
(:meth:`zcnas.scoring.ScoringContext.costs`).
AZ-NAS uses these FLOPs as its "complexity" term (see :mod:`zcnas_proxies.aznas`).
"""

from __future__ import annotations

from zcnas.proxy import Proxy, ProxyInfo

NATS = "Dong et al., NATS-Bench, TPAMI 2021"
NATS_CODE = "https://github.com/D-X-Y/NATS-Bench (get_cost_info)"


class Params(Proxy):
    """Number of trainable parameters, in millions."""

    info = ProxyInfo(
        name="params", version="1", reference=NATS, code=NATS_CODE, needs_labels=False,
        needs_images=False, input="none", bn="n/a", init="n/a", batch_size=1,
        per_arch=True,
    )

    def score(self, ctx) -> float:
        return float(ctx.costs().params_m)


class Flops(Proxy):
    """Forward multiply-adds for one image, in millions (NATS-Bench's "flops")."""

    info = ProxyInfo(
        name="flops", version="1", reference=NATS, code=NATS_CODE, needs_labels=False,
        needs_images=False, input="none", bn="n/a", init="n/a", batch_size=1,
        per_arch=True,
    )

    def score(self, ctx) -> float:
        return float(ctx.costs().flops_m)
