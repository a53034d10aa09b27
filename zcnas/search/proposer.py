"""Proposers: candidates for the searcher from outside its own operators.

A searcher decides what to try next from what it was told; a :class:`Proposer` brings it cells
found another way, e.g. a weight-sharing supernet's gradient-guided local search around the
best cells so far (GENAS). It belongs to the searcher's side ("what to try next"), not to the
fidelity ladder ("how far to push it"): the driver asks every proposer after each step, hands
what it proposes to :meth:`Searcher.inject`, and charges the wall time it took to the budget
(booked on the ladder stage the proposer names, so ``cost_by_stage`` still adds up).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from zcnas.search.base import Searcher
    from zcnas.search.ladder import Ladder


class Proposer(abc.ABC):
    """One source of candidates. ``name`` labels it; ``stage`` is the ladder stage its seconds
    are booked on."""

    name: str = "proposer"
    stage: int = 0

    @abc.abstractmethod
    def due(self, ladder: Ladder, searcher: Searcher) -> bool:
        """Whether :meth:`propose` should run now (e.g. every N cells of a stage)."""

    @abc.abstractmethod
    def propose(self, ladder: Ladder, searcher: Searcher,
                time_limit: float | None = None) -> list[str]:
        """Arch strings to try next. Work past ``time_limit`` seconds may stop early; the
        driver discards what a proposer returns after its deadline."""

    def state_dict(self) -> dict[str, Any]:
        """What must survive a restart (JSON-able)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None
