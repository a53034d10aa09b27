"""Experiments: what the commands do, as library calls on frozen requests.

- :mod:`.session`: ``zcnas search`` (:class:`SearchRequest` -> :class:`SearchSession`: many
  seeds of many methods and datasets, reports, tables, plots);
- :mod:`.protocol`: running (method, dataset, seed) runs side by side, checkpointed;
- :mod:`.scoring`: ``zcnas score`` (:class:`ScoreRequest` -> :func:`run_score`) and
  :func:`score_model` for any torch model family;
- :mod:`.correlation`: ``zcnas correlate`` (:class:`CorrelateRequest` -> :func:`run_correlate`).
"""

from zcnas.experiments.correlation import CorrelateRequest, run_correlate
from zcnas.experiments.scoring import ScoreRequest, run_score, score_model
from zcnas.experiments.session import SearchRequest, SearchSession

__all__ = ["CorrelateRequest", "ScoreRequest", "SearchRequest", "SearchSession",
           "run_correlate", "run_score", "score_model"]
