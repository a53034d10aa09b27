"""The built-in ladder stages as plugins: ``factory(ctx, **options) -> Evaluator``.

``ctx`` is the run's :class:`zcnas.search.BuildContext` (configuration, lookup, data folder,
score store, working folder). These factories are registered in the ``zcnas.evaluators``
entry-point group, exactly as a third party registers its own fidelity, and ``zcnas search
--ladder "proxy(promote_fraction=0.05),lookup(epochs=12)"`` names them.

- ``proxy(proxy=None, seed=0)``: the zero-cost fidelity (default: the run's ``--fitness``),
  on the proxy dataset's images;
- ``lookup(epochs=12, split=None, hp=None)``: a NATS-Bench lookup charged its training time
  (``split`` None: the run's selection split);
- ``supernet(**options)``: the weight-sharing supernet (:class:`SupernetEvaluator` options);
- ``train(epochs=12, **options)``: stand-alone training with the NATS-Bench recipe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zcnas.errors import UserError
from zcnas.fidelity.base import Evaluator

if TYPE_CHECKING:  # pragma: no cover
    from zcnas.search.method import BuildContext


def proxy(ctx: BuildContext, proxy: str | None = None, seed: int = 0) -> Evaluator:
    from zcnas.fidelity.proxy import ProxyEvaluator

    return ProxyEvaluator(proxy or ctx.config.fitness, space=ctx.config.space,
                          dataset=ctx.proxy_dataset, root=ctx.root, seed=seed,
                          device=ctx.config.device, store=ctx.store, executor=ctx.executor)


def lookup(ctx: BuildContext, epochs: int = 12, split: str | None = None,
           hp: int | None = None, paid: dict[str, int] | None = None) -> Evaluator:
    from zcnas.fidelity.lookup import LookupEvaluator

    if ctx.bench is None:
        raise UserError("a lookup stage needs a NATS-Bench lookup; pass --data PATH with the "
                        "lookup table or archive, or leave the stage out")
    return LookupEvaluator(ctx.bench, ctx.config.dataset, epochs=epochs,
                           split=split or ctx.selection_split(), hp=hp, paid=paid)


def supernet(ctx: BuildContext, **options: Any) -> Evaluator:
    from zcnas.fidelity.supernet import SupernetEvaluator

    c = ctx.config
    return SupernetEvaluator(**{"dataset": c.dataset, "root": ctx.root, "seed": c.seed,
                                "device": c.device, **options})


def train(ctx: BuildContext, epochs: int = 12, **options: Any) -> Evaluator:
    from zcnas.fidelity.train import TrainEvaluator

    c = ctx.config
    return TrainEvaluator(epochs, **{"dataset": c.dataset, "root": ctx.root, "seed": c.seed,
                                     "device": c.device, **options})
