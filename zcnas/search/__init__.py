"""The search core: searchers (ask/tell), the fidelity ladder (promotion), proposers, method
records and the driver. No torch, pandas or matplotlib here (a test holds it): evaluators
(:mod:`zcnas.fidelity`) do the work, experiments (:mod:`zcnas.experiments`) run many seeds and
write tables, :mod:`zcnas.analysis` reports.
"""

from zcnas.search.base import Searcher
from zcnas.search.driver import (
    DATA_FREE_FITNESS,
    DEFAULT_FITNESS,
    SearchConfig,
    SearchPlan,
    SearchResult,
    build,
    run_search,
)
from zcnas.search.ladder import Budget, Ladder, Promotion, Stage
from zcnas.search.method import (
    METHODS,
    TRAINING_BUDGET,
    BuildContext,
    Method,
    NoParams,
    get_method,
    list_methods,
)
from zcnas.search.proposer import Proposer
from zcnas.search.searchers import (
    LocalSearch,
    MultiFidelityEvolution,
    RandomSearch,
    RegularizedEvolution,
)
from zcnas.search.spec import parse_ladder

__all__ = ["DATA_FREE_FITNESS", "DEFAULT_FITNESS", "METHODS", "TRAINING_BUDGET", "Budget",
           "BuildContext", "Ladder", "LocalSearch", "Method", "MultiFidelityEvolution",
           "NoParams", "Promotion", "Proposer", "RandomSearch", "RegularizedEvolution",
           "SearchConfig", "SearchPlan", "SearchResult", "Searcher", "Stage", "build",
           "get_method", "list_methods", "parse_ladder", "run_search"]
