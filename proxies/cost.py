"""#params and FLOPs: analytic counts of the network, as the NATS-Bench API reports them.

No network is built: :func:`zcnas.spaces.plan.count_costs` reproduces the official
``get_cost_info`` values exactly (the BN affine pair counted, pooling FLOPs not counted).
AZ-NAS uses these FLOPs as its "complexity" term (see :mod:`zcnas_proxies.aznas`).
"""

from __future__ import annotations

from zcnas.proxy import Proxy, ProxyInfo
from zcnas.spaces.plan import count_costs, sss_plan, tss_plan

NATS = "Dong et al., NATS-Bench, TPAMI 2021"
NATS_CODE = "https://github.com/D-X-Y/NATS-Bench (get_cost_info)"


def costs(ctx):
    plan = (tss_plan if ctx.space == "nats-tss" else sss_plan)(ctx.arch, ctx.dataset)
    return count_costs(plan)


class Params(Proxy):
    """Number of trainable parameters, in millions."""

    info = ProxyInfo(
        name="params", version="1", reference=NATS, code=NATS_CODE, needs_labels=False,
        needs_images=False, input="none", bn="n/a", init="n/a", batch_size=1,
    )

    def score(self, ctx) -> float:
        return float(costs(ctx).params_m)


class Flops(Proxy):
    """Forward multiply-adds for one image, in millions (NATS-Bench's "flops")."""

    info = ProxyInfo(
        name="flops", version="1", reference=NATS, code=NATS_CODE, needs_labels=False,
        needs_images=False, input="none", bn="n/a", init="n/a", batch_size=1,
    )

    def score(self, ctx) -> float:
        return float(costs(ctx).flops_m)
