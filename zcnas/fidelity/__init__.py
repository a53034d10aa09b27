"""Evaluators, one per fidelity; each returns (value, cost in seconds, metadata) per arch.

Built-ins: :class:`ProxyEvaluator` (zero-cost proxies and ensembles) and
:class:`LookupEvaluator` (NATS-Bench lookups charged their training time). The training
fidelities register in :data:`EVALUATORS` under their own names.
"""

from zcnas.fidelity.base import EVALUATORS, Evaluation, Evaluator
from zcnas.fidelity.lookup import LookupEvaluator
from zcnas.fidelity.proxy import ProxyEvaluator

EVALUATORS.register("proxy", ProxyEvaluator)
EVALUATORS.register("lookup", LookupEvaluator)

__all__ = ["EVALUATORS", "Evaluation", "Evaluator", "LookupEvaluator", "ProxyEvaluator"]
