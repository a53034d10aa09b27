"""Analysis of proxy scores against benchmark accuracies: ranking metrics with bootstrap
intervals (:mod:`~zcnas.analysis.metrics`), the correlation table behind ``zcnas correlate``
(:mod:`~zcnas.analysis.correlate`), published reference numbers
(:mod:`~zcnas.analysis.published`) and figures (:mod:`~zcnas.analysis.plots`). No torch."""

from zcnas.analysis.correlate import correlate, read_scores, to_markdown, wide
from zcnas.analysis.metrics import METRICS, evaluate, kendall, ndcg, spearman, top_overlap

__all__ = ["METRICS", "correlate", "evaluate", "kendall", "ndcg", "read_scores", "spearman",
           "to_markdown", "top_overlap", "wide"]
