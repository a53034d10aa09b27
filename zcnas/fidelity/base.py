"""The evaluator contract: one fidelity of an architecture's quality, with its cost in seconds.

An :class:`Evaluator` turns a batch of architectures into :class:`Evaluation` records (value,
cost in seconds, metadata). Values are "higher is better". The cost is what the evaluation
would take for real: measured wall time for proxies (or the wall time recorded when a cached
score was computed), the benchmark's own training time for a lookup. The searcher's budget is
spent in these seconds.

Evaluators are registered in :data:`EVALUATORS` (entry-point group ``zcnas.evaluators``), so a
fidelity added later (a supernet, stand-alone training, a third-party one) plugs into the
fidelity ladder by name, the same way proxies do.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from zcnas.registry import Registry


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

    def relative_values(self, canonicals: Sequence[str]) -> list[float]:
        raise NotImplementedError(f"{self.name} is not a relative evaluator")

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


#: Fidelity plugins: ``name -> factory(**options) -> Evaluator``. Built-ins: ``proxy`` and
#: ``lookup``; the training fidelities register under their own names.
EVALUATORS = Registry("zcnas.evaluators", kind="evaluator", validate=_validate)
