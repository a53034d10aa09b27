"""Evaluators, one per fidelity; each returns (value, cost in seconds, metadata) per arch.

Built-in ladder stages (:mod:`zcnas.fidelity.stages`, registered in :data:`EVALUATORS`
through the ``zcnas.evaluators`` entry points): ``proxy`` (:class:`ProxyEvaluator`,
zero-cost proxies and ensembles), ``lookup`` (:class:`LookupEvaluator`, NATS-Bench lookups
charged their training time), ``supernet`` (:class:`~zcnas.fidelity.supernet.SupernetEvaluator`,
a weight-sharing supernet) and ``train`` (:class:`~zcnas.fidelity.train.TrainEvaluator`,
stand-alone training). The training fidelities import torch, so they load on first use (the
searchers stay torch-free).
"""

from typing import Any

from zcnas.fidelity.base import EVALUATORS, Evaluation, Evaluator
from zcnas.fidelity.lookup import LookupEvaluator
from zcnas.fidelity.proxy import ProxyEvaluator

_LAZY = {"SupernetEvaluator": "zcnas.fidelity.supernet", "SupernetTrainer":
         "zcnas.fidelity.supernet", "SupernetRecipe": "zcnas.fidelity.supernet",
         "TrainEvaluator": "zcnas.fidelity.train",
         "train_arch": "zcnas.fidelity.train", "Recipe": "zcnas.fidelity.train"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zcnas.fidelity' has no attribute {name!r}")


__all__ = ["EVALUATORS", "Evaluation", "Evaluator", "LookupEvaluator", "ProxyEvaluator",
           "Recipe", "SupernetEvaluator", "SupernetRecipe", "SupernetTrainer", "TrainEvaluator",
           "train_arch"]
