"""The evaluator contract: one fidelity of an architecture's quality, with its cost in seconds.

An :class:`Evaluator` turns a batch of architectures into :class:`Evaluation` records (value,
cost in seconds, metadata). Values are "higher is better". The cost is what the evaluation
would take for real: measured wall time for proxies (or the wall time recorded when a cached
score was computed), the benchmark's own training time for a lookup. The searcher's budget is
spent in these seconds.

Every hook the search driver and the ladder call is declared here with a default
(:meth:`Evaluator.set_deadline`, :meth:`Evaluator.admits`, :meth:`Evaluator.observe_population`,
:meth:`Evaluator.forget`, the relative values of a rank ensemble, state for checkpoints).

Ladder stages are plugins (:data:`EVALUATORS`, entry-point group ``zcnas.evaluators``): a
factory ``factory(ctx, **options) -> Evaluator`` where ``ctx`` is the run's
:class:`zcnas.search.BuildContext`; the built-ins (``proxy``, ``lookup``, ``supernet``,
``train``, :mod:`zcnas.fidelity.stages`) register through the group exactly as a third-party
fidelity does, and ``zcnas search --ladder`` names them.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from zcnas.plugins import Registry


@dataclass(frozen=True)
class Evaluation:
    """One architecture at one fidelity: ``value`` (higher is better; NaN when the evaluation
    failed or is degenerate), ``cost`` in seconds, and what the evaluator wants to record."""

    arch: str
    canonical: str
    fidelity: str
    value: float
    cost: float
    meta: Mapping[str, Any] = field(default_factory=dict)


class Evaluator(abc.ABC):
    """One fidelity. Subclasses set :attr:`name` (a short label such as ``lookup@12``) and
    implement :meth:`evaluate`.

    ``relative = True`` marks an evaluator whose values are only meaningful relative to the
    other architectures it has seen (a rank ensemble); the ladder then asks
    :meth:`relative_values` for the current values of everything it evaluated.
    ``uses_test_split`` is True when the value is read from a test split (only allowed for a
    fidelity that is not the reported outcome; reports flag it).
    """

    name: str
    relative: ClassVar[bool] = False
    uses_test_split: bool = False
    #: Seconds the next :meth:`evaluate` call may take (set by the ladder through
    #: :meth:`set_deadline`; None: no limit).
    time_limit: float | None = None

    @abc.abstractmethod
    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        """Evaluate distinct (non-isomorphic) arch strings; one record per arch, in order."""

    def estimate_cost(self, arch: str) -> float | None:
        """The cost of evaluating ``arch``, when it is known before evaluating (a lookup's
        training time); None when only measuring tells (a proxy)."""
        return None

    def forget(self, canonicals: Sequence[str]) -> None:
        """Drop evaluations that were discarded (killed at the budget's deadline) from any
        state the evaluator keeps, so they never influence later values."""
        return None

    def set_deadline(self, seconds: float | None) -> None:
        """What is left of the budget for the next :meth:`evaluate` call. An evaluator that
        trains stops at its first step past it and returns the cell being evaluated with the
        seconds it took (the ladder discards it); others may ignore it."""
        self.time_limit = seconds

    def admits(self, arch: str) -> bool:
        """Whether ``arch`` can be evaluated at all (e.g. it is inside a pruned supernet); a
        search refuses the others before spending anything on them. Default: every arch."""
        return True

    def observe_population(self, members: Sequence[str]) -> None:
        """The searcher's current population, shown after every step (a supernet fine-tunes
        on its paths). Default: ignored."""
        return None

    def relative_values(self, canonicals: Sequence[str]) -> list[float]:
        raise NotImplementedError(f"{self.name} is not a relative evaluator")

    def cost_parts(self) -> dict[str, float]:
        """Seconds spent so far by part (e.g. a supernet's warm-up, upkeep and scoring), for
        reports; they add up to what the evaluator spent (an evaluation killed at the budget's
        deadline is booked up to the kill, the ladder charges only what was left).
        Default: no breakdown."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What must survive a restart (JSON-able)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None

    def describe(self) -> str:
        return self.name


def _validate(name: str, obj: Any) -> None:
    if not callable(obj):
        raise TypeError(f"evaluator plugin {name!r} is not callable (a class or factory)")


#: Ladder-stage plugins: ``name -> factory(ctx, **options) -> Evaluator``.
EVALUATORS = Registry("zcnas.evaluators", kind="evaluator", validate=_validate,
                      list_command="zcnas methods list")
