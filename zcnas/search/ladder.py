"""The fidelity ladder: how far to push each candidate.

A :class:`Ladder` is an ordered list of :class:`Stage`\\ s, cheapest first. Every new candidate
is evaluated at stage 0; a :class:`Promotion` rule then escalates the best candidates of a
stage to the next, costlier one, *during* the run:

* asynchronously (default, ASHA-style): after every batch, any candidate ranked within the
  stage's quota (``top_k`` best, or the best ``fraction``, of everything evaluated at that
  stage so far) that has not been escalated yet is escalated now;
* synchronously (``sync=True``, successive halving): once a stage is closed (its
  ``max_evals`` reached, or every candidate promoted into it evaluated), its quota is escalated
  in one go.

The ladder turns its records into the fitness the searcher sees (:meth:`Ladder.fitnesses`: the
highest stage reached plus the percentile within that stage, so an escalated candidate always
outranks one that was not and a costlier evaluation feeds back into selection), and picks the
architecture a search returns (:meth:`Ladder.choice`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zcnas.fidelity.base import Evaluation, Evaluator

SELECT_RULES = ("top", "fused")


@dataclass(frozen=True)
class Promotion:
    """Which candidates of a stage move on: the ``top_k`` best and/or the best ``fraction``
    (rounded up), once the stage has ``min_results`` results; ``sync`` waits for the stage to
    close (successive halving) instead of promoting after every batch."""

    top_k: int | None = None
    fraction: float | None = None
    min_results: int = 1
    sync: bool = False

    def __post_init__(self) -> None:
        if self.top_k is None and self.fraction is None:
            raise ValueError("a promotion rule needs top_k or fraction")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("top_k must be >= 1")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")

    def quota(self, n: int) -> int:
        if n < self.min_results or n == 0:
            return 0
        q = n
        if self.fraction is not None:
            q = min(q, math.ceil(self.fraction * n - 1e-9))
        if self.top_k is not None:
            q = min(q, self.top_k)
        return q

    def describe(self) -> str:
        parts = []
        if self.top_k is not None:
            parts.append(f"top {self.top_k}")
        if self.fraction is not None:
            parts.append(f"top {self.fraction:.0%}")
        how = "successive halving" if self.sync else "during the run"
        return " and ".join(parts) + f" ({how})"


@dataclass
class Stage:
    """One rung: an evaluator, the rule that promotes out of it (None on the last stage), and
    optional caps on how many candidates it evaluates and on the seconds it may spend (its
    share of the run's budget)."""

    evaluator: Evaluator
    promote: Promotion | None = None
    max_evals: int | None = None
    max_cost: float | None = None


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks 1..n, higher value = higher rank; NaN/-inf rank lowest (tied)."""
    from scipy.stats import rankdata

    v = np.where(np.isfinite(values) | (values == np.inf), values, -np.inf)
    return rankdata(v, method="average")


class _Ranking:
    """The cells of one stage and their ranks (1 = worst); the cell -> rank map is built on the
    first lookup (a search asks for a few cells per step out of thousands)."""

    def __init__(self, keys: list[str], ranks: np.ndarray) -> None:
        self.keys = keys
        self.ranks = ranks
        self._of: dict[str, float] | None = None

    def rank_of(self, canonical: str) -> float:
        if self._of is None:
            self._of = dict(zip(self.keys, self.ranks.tolist(), strict=True))
        return self._of[canonical]


class Budget:
    """Seconds to spend and spent. An evaluation is started only when it fits."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.spent = 0.0

    @property
    def left(self) -> float:
        return self.seconds - self.spent

    def fits(self, cost: float) -> bool:
        return cost <= self.left + 1e-9

    def charge(self, cost: float) -> None:
        self.spent += float(cost)


class Ladder:
    def __init__(self, stages: Sequence[Stage], *, select: str = "top") -> None:
        if not stages:
            raise ValueError("a ladder needs at least one stage")
        if any(s.promote is None for s in stages[:-1]):
            raise ValueError("every stage but the last needs a promotion rule")
        if select not in SELECT_RULES:
            raise ValueError(f"unknown selection rule {select!r}; valid: {', '.join(SELECT_RULES)}")
        self.stages = list(stages)
        self.select = select
        #: Which cells may be the answer (None: any); e.g. only whole cells of a growth search.
        #: When none of the top stage's cells is eligible, any is.
        self.eligible: Callable[[str], bool] | None = None
        self.records: list[dict[str, Evaluation]] = [{} for _ in stages]
        self.promoted: list[set[str]] = [set() for _ in stages]
        self.log: list[tuple[int, str, float]] = []  # (stage, canonical, cost) in order
        #: Set when no new candidate will come (the searcher has exhausted the space).
        self.input_closed = False
        self._capped: set[int] = set()  # stages that refused an evaluation over max_cost
        self._spent_now = 0.0  # seconds spent by the stage being evaluated
        # the costs of log[:_costed] summed per stage (the log is append-only)
        self._stage_cost = [0.0] * len(self.stages)
        self._costed = 0
        self._values_cache: dict[int, dict[str, float]] = {}
        self._ranks_cache: dict[int, _Ranking] = {}

    # --- state -------------------------------------------------------------------------------

    @property
    def uses_test_split(self) -> bool:
        return any(s.evaluator.uses_test_split for s in self.stages)

    def describe(self) -> list[str]:
        out = []
        for i, s in enumerate(self.stages):
            line = f"stage {i}: {s.evaluator.describe()}"
            if s.max_evals is not None:
                line += f", at most {s.max_evals} cells"
            if s.max_cost is not None:
                line += f", at most {s.max_cost:,.0f} s"
            if s.promote is not None:
                line += f"; promote {s.promote.describe()}"
            out.append(line)
        return out

    def values(self, stage: int) -> dict[str, float]:
        """Current values of every cell evaluated at ``stage`` (re-aggregated for a relative
        evaluator)."""
        if stage not in self._values_cache:
            recs = self.records[stage]
            ev = self.stages[stage].evaluator
            if ev.relative and recs:
                keys = list(recs)
                vals = dict(zip(keys, ev.relative_values(keys), strict=True))
            else:
                vals = {k: r.value for k, r in recs.items()}
            self._values_cache[stage] = vals
        return self._values_cache[stage]

    def _ranking(self, stage: int) -> _Ranking:
        """The ranking of the cells of ``stage``, cached with the values."""
        if stage not in self._ranks_cache:
            vals = self.values(stage)
            keys = list(vals)
            self._ranks_cache[stage] = _Ranking(
                keys, _ranks(np.array([vals[k] for k in keys], dtype=np.float64)))
        return self._ranks_cache[stage]

    def fitnesses(self) -> dict[str, float]:
        """Fitness of every evaluated cell (one ranking per stage)."""
        return {k: self.fitness(k) for s in range(len(self.stages)) for k in self.records[s]}

    def fitness(self, canonical: str, default: float = -math.inf) -> float:
        """Stage + rank fraction at the highest stage that evaluated ``canonical`` (``default``
        when none did); a search asks for a few cells per step out of thousands."""
        for s in range(len(self.stages) - 1, -1, -1):
            if canonical in self.records[s]:
                return s + self._ranking(s).rank_of(canonical) / len(self.records[s])
        return default

    def closed(self, stage: int) -> bool:
        """No more candidates will enter ``stage``."""
        st = self.stages[stage]
        if st.max_evals is not None and len(self.records[stage]) >= st.max_evals:
            return True
        if stage in self._capped:
            return True
        if stage == 0:
            return self.input_closed
        return self.closed(stage - 1) and set(self._quota_keys(stage - 1)) <= set(
            self.records[stage])

    def _quota_keys(self, stage: int) -> list[str]:
        """The cells of ``stage`` that its promotion rule escalates now, best first."""
        rule = self.stages[stage].promote
        ranking = self._ranking(stage)
        keys, ranks = ranking.keys, ranking.ranks
        q = rule.quota(len(keys)) if rule is not None else 0
        if q == 0:
            return []
        # best first, ties in evaluation order (a stable sort of the negated ranks)
        return [keys[i] for i in np.argsort(-ranks, kind="stable")[:q].tolist()]

    # --- evaluation --------------------------------------------------------------------------

    def _evaluate(self, stage: int, archs: Sequence[str], budget: Budget) -> list[Evaluation]:
        st = self.stages[stage]
        ev = st.evaluator
        if st.max_evals is not None:
            archs = list(archs)[: max(0, st.max_evals - len(self.records[stage]))]
        done: list[Evaluation] = []
        if not archs:
            return done
        self._spent_now = self.cost_by_stage()[stage]

        def room() -> float:  # seconds this stage may still spend
            own = math.inf if st.max_cost is None else st.max_cost - self._spent_now
            return min(budget.left, own)

        if ev.estimate_cost(archs[0]) is not None:  # cost known in advance: one at a time
            for a in archs:
                cost = ev.estimate_cost(a)
                if cost > room() + 1e-9:
                    if cost <= budget.left + 1e-9:
                        self._capped.add(stage)
                    break
                done.extend(ev.evaluate([a]))
                budget.charge(done[-1].cost)
                self._spent_now += done[-1].cost
        else:  # measured cost: known only afterwards
            done = self._evaluate_measured(stage, list(archs), budget, room)
        for e in done:
            self.records[stage][e.canonical] = e
            self.log.append((stage, e.canonical, e.cost))
        self._forget_ranks(stage)
        return done

    def _forget_ranks(self, stage: int) -> None:
        self._values_cache.pop(stage, None)
        self._ranks_cache.pop(stage, None)

    def _evaluate_measured(self, stage: int, archs: list[str], budget: Budget,
                           room) -> list[Evaluation]:
        """Evaluate in batches sized so that the batch should fit (mean cost so far, with the
        largest cost seen as a margin); near the end, one at a time. An evaluation that runs
        past what is left is killed at the deadline, as a real job would be: the seconds left
        are spent and its result is discarded (never recorded or used to select)."""
        ev = self.stages[stage].evaluator
        costs = [r.cost for r in self.records[stage].values()]
        done: list[Evaluation] = []
        i = 0
        while i < len(archs):
            n = 1
            if costs:
                mean, worst = sum(costs) / len(costs), max(costs)
                n = len(archs) - i if mean <= 0 else int((room() - worst) // mean)
                n = max(1, min(len(archs) - i, n))
            ev.set_deadline(max(0.0, room()))  # a long evaluation may stop itself there
            batch = ev.evaluate(archs[i:i + n])
            for j, e in enumerate(batch):
                left = room()
                if e.cost > left + 1e-9 or e.meta.get("killed"):  # killed at the deadline
                    budget.charge(max(0.0, left))
                    self.log.append((stage, e.canonical, max(0.0, left)))
                    if left < budget.left:
                        self._capped.add(stage)
                    ev.forget([x.canonical for x in batch[j:]])
                    return done
                budget.charge(e.cost)
                self._spent_now += e.cost
                costs.append(e.cost)
                done.append(e)
            i += n
        return done

    def submit(self, archs: Sequence[str], budget: Budget) -> list[Evaluation]:
        """Evaluate new candidates at stage 0, then escalate; returns the stage-0 records made."""
        fresh = [a for a in archs if self.stages and a]
        done = self._evaluate(0, fresh, budget)
        self.cascade(budget)
        return done

    def cascade(self, budget: Budget) -> int:
        """Escalate whatever the promotion rules allow now; returns how many were evaluated."""
        total = 0
        for s in range(len(self.stages) - 1):
            rule = self.stages[s].promote
            if rule.sync and not self.closed(s):
                continue
            todo = [k for k in self._quota_keys(s)
                    if k not in self.promoted[s] and k not in self.records[s + 1]]
            if not todo:
                continue
            archs = [self.records[s][k].arch for k in todo]
            done = self._evaluate(s + 1, archs, budget)
            for e in done:
                self.promoted[s].add(e.canonical)
            total += len(done)
            if len(done) < len(todo):
                break  # out of budget (or the next stage is full)
        return total

    # --- the answer --------------------------------------------------------------------------

    def top_level(self) -> int:
        for s in range(len(self.stages) - 1, -1, -1):
            if self.records[s]:
                return s
        return -1

    def choice(self) -> Evaluation | None:
        """The architecture the search returns now (see ``select``): among the cells of the
        highest stage reached, the best value there ("top"), or the best sum over stages of
        log rank fractions (AZ-NAS aggregation) of every stage's value ("fused")."""
        top = self.top_level()
        if top < 0:
            return None
        keys = list(self.records[top])
        if self.eligible is not None:
            keys = [k for k in keys if self.eligible(self.records[top][k].arch)] or keys
        if self.select == "top" or top == 0:
            vals = self.values(top)
            best = max(range(len(keys)), key=lambda i: (_finite(vals[keys[i]]), -i))
            return self.records[top][keys[best]]
        total = np.zeros(len(keys))
        for s in range(top + 1):
            vals = self.values(s)
            v = np.array([vals.get(k, -math.inf) for k in keys], dtype=np.float64)
            total += np.log(_ranks(v) / len(keys))
        best = max(range(len(keys)), key=lambda i: (total[i], -i))
        return self.records[top][keys[best]]

    def upkeep(self, stage: int, seconds: float) -> None:
        """Book ``seconds`` of work done for ``stage`` outside any one evaluation (a
        proposer's search), so :meth:`cost_by_stage` adds up to what the run spent."""
        self.log.append((stage, "", float(seconds)))

    def cost_by_stage(self) -> list[float]:
        for s, _, c in self.log[self._costed:]:  # the same additions, in log order
            self._stage_cost[s] += c
        self._costed = len(self.log)
        return list(self._stage_cost)

    def refresh(self) -> None:
        """Rank every stage now (cached until its records change): the values of a stage
        that reads another stage's evaluator (a fused supernet stage) are fixed at the end of
        each search step, whichever cells are looked up."""
        for s in range(len(self.stages)):
            self._ranking(s)

    def state_dict(self) -> dict[str, Any]:
        return {
            "records": [[[e.arch, e.canonical, e.value, e.cost, dict(e.meta)]
                         for e in recs.values()] for recs in self.records],
            "promoted": [sorted(p) for p in self.promoted],
            "log": [list(x) for x in self.log],
            "input_closed": self.input_closed,
            "capped": sorted(self._capped),
            "evaluators": [s.evaluator.state_dict() for s in self.stages],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if len(state["records"]) != len(self.stages):
            raise ValueError("checkpoint is for a ladder with a different number of stages")
        self.records = [
            {c: Evaluation(a, c, self.stages[i].evaluator.name, float(v), float(cost), m)
             for a, c, v, cost, m in recs}
            for i, recs in enumerate(state["records"])]
        self.promoted = [set(p) for p in state["promoted"]]
        self.log = [(int(s), c, float(x)) for s, c, x in state["log"]]
        self._stage_cost = [0.0] * len(self.stages)
        self._costed = 0
        self.input_closed = bool(state.get("input_closed", False))
        self._capped = set(state.get("capped", []))
        for st, es in zip(self.stages, state["evaluators"], strict=True):
            st.evaluator.load_state_dict(es)
        self._values_cache.clear()
        self._ranks_cache.clear()


def _finite(x: float) -> float:
    return x if math.isfinite(x) or x == math.inf else -math.inf
