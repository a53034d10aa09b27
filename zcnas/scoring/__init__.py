"""Scoring architectures with zero-cost proxies: the per-architecture context, shared passes,
and the engine that spreads the work over processes and caches scores."""

from zcnas.scoring.context import InputBank, ScoringContext

__all__ = ["InputBank", "ScoringContext"]
