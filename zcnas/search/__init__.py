"""Searchers (ask/tell), the fidelity ladder (promotion), and the search driver.

No torch is imported by this package itself; evaluators (``zcnas.fidelity``) do the work.
"""

from zcnas.search.base import Searcher
from zcnas.search.ladder import Budget, Ladder, Promotion, Stage
from zcnas.search.run import METHODS, NATS_BUDGETS, SearchConfig, SearchResult, build, run_search
from zcnas.search.searchers import (
                              SEARCHERS,
                              LocalSearch,
                              MultiFidelityEvolution,
                              RandomSearch,
                              RegularizedEvolution,
)

__all__ = ["METHODS", "NATS_BUDGETS", "SEARCHERS", "Budget", "Ladder", "LocalSearch",
           "MultiFidelityEvolution", "Promotion", "RandomSearch", "RegularizedEvolution",
           "SearchConfig", "SearchResult", "Searcher", "Stage", "build", "run_search"]
