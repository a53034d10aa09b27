"""The zero-cost fidelity: a proxy, or a rank ensemble of proxies, scored on the fly.

Scores go through :func:`zcnas.scoring.score_archs`, so a score store makes repeated runs (30
seeds of a search) compute each distinct cell once. The cost charged for an architecture is
the wall time its scores took when they were computed, summed over the components; a score
read back from the store costs what it cost when it was computed (the convention of FreeREA
and MFNAS, which charge the recorded time of their cached metrics), never zero.

An ensemble ranks a population, so its value for a cell depends on every cell scored so far:
:meth:`ProxyEvaluator.relative_values` re-aggregates the ensemble over the whole history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from zcnas.fidelity.base import Evaluation, Evaluator


class ProxyEvaluator(Evaluator):
    """Score architectures with ``proxy`` (one spec: a proxy or ``ensemble:...``).

    ``dataset`` picks the network head and the images (``proxy_dataset`` of a search: the
    images the proxies read, which may differ from the dataset searched when its images are
    absent); ``root`` the data folder; ``store`` a :class:`~zcnas.runtime.ScoreStore` or None;
    ``executor`` (:mod:`zcnas.runtime.executors`) scores a batch of cells in parallel (default:
    this process). Costs are each cell's own compute seconds, whatever runs them.
    """

    def __init__(self, proxy: str = "ensemble:zcnas", *, space: str = "nats-tss",
                 dataset: str = "cifar10", root: Any = None, seed: int = 0,
                 device: str = "cpu", store: Any = None, executor: Any = None) -> None:
        from zcnas.ensemble import expand
        from zcnas.registry import create_scorer

        self.proxy = create_scorer(proxy)
        self.space = space
        self.dataset = dataset
        self.root = root
        self.seed = seed
        self.device = device
        self.store = store
        self.executor = executor
        plain, ensembles = expand([self.proxy])
        self.components = plain
        self.ensemble = ensembles[0] if ensembles else None
        self.relative = self.ensemble is not None
        self.name = f"proxy:{self.proxy.spec()}"
        self._specs = [p.spec() for p in plain]
        self._history: dict[str, list[float]] = {}
        self._agg: tuple[int, dict[str, float]] | None = None  # (history size, values)
        # the history as a matrix (rows in the history's order), grown in place: rebuilding
        # it from the dict on every evaluation made a search quadratic in Python
        self._matrix: np.ndarray | None = None
        self._row: dict[str, int] = {}

    def describe(self) -> str:
        on = (f"{self.dataset} images" if self.proxy.needs_images
              else "synthetic inputs (data-free)")
        return f"{self.proxy.spec()} on {on}, seed {self.seed}, {self.device}"

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        from zcnas.scoring.engine import make_items, score_archs

        items = make_items(archs, self.space)
        rows = score_archs(items, self.components, space=self.space, dataset=self.dataset,
                           seed=self.seed, device=self.device, root=self.root, workers=1,
                           store=self.store, progress=False, executor=self.executor)
        by = {(r.arch, r.proxy): r for r in rows}
        out = []
        for item in items:
            comps = [by[(item.arch, s)] for s in self._specs]
            values = [float(r.value) for r in comps]
            self._remember(item.canonical, values)
            cost = float(sum(r.seconds for r in comps))
            meta = {s: v for s, v in zip(self._specs, values, strict=True)}
            meta["cached"] = all(r.origin == "store" for r in comps)
            value = values[0] if self.ensemble is None else math.nan
            out.append(Evaluation(item.arch, item.canonical, self.name, value, cost, meta))
        if self.ensemble is not None:
            now = self.relative_values([e.canonical for e in out])
            out = [Evaluation(e.arch, e.canonical, e.fidelity, v, e.cost, e.meta)
                   for e, v in zip(out, now, strict=True)]
        elif not self.components[0].info.higher_is_better:
            out = [Evaluation(e.arch, e.canonical, e.fidelity, -e.value, e.cost, e.meta)
                   for e in out]
        return out

    def relative_values(self, canonicals: Sequence[str]) -> list[float]:
        """The ensemble's value of each of ``canonicals`` over everything scored so far."""
        if self._agg is None or self._agg[0] != len(self._history):
            n = len(self._history)
            if self._matrix is None or n == 0:  # first use, or after a forget or a restore
                self._matrix = np.array(list(self._history.values()), dtype=np.float64)
                self._row = {k: i for i, k in enumerate(self._history)}
            agg = self.ensemble.aggregate(self._matrix[:n]) if n else np.empty(0)
            self._agg = (n, dict(zip(self._history, agg.tolist(), strict=True)))
        values = self._agg[1]
        return [values[c] for c in canonicals]

    def current_values(self, canonicals: Sequence[str]) -> list[float]:
        """The value of each of ``canonicals`` (scored before) as the ladder ranks it now,
        higher is better: the ensemble over the whole history, or the proxy's own score."""
        if self.ensemble is not None:
            return self.relative_values(canonicals)
        sign = 1.0 if self.components[0].info.higher_is_better else -1.0
        return [sign * self._history[c][0] for c in canonicals]

    def _remember(self, canonical: str, values: list[float]) -> None:
        self._history[canonical] = values
        self._agg = None
        if self._matrix is None or self._matrix.ndim != 2:
            self._matrix = None  # rebuilt from the history when next needed
            return
        i = self._row.get(canonical)
        if i is None:
            i = self._row[canonical] = len(self._row)
            if i == len(self._matrix):
                grown = np.empty((max(64, 2 * i), self._matrix.shape[1]))
                grown[:i] = self._matrix[:i]
                self._matrix = grown
        self._matrix[i] = values

    def forget(self, canonicals: Sequence[str]) -> None:
        for c in canonicals:
            self._history.pop(c, None)
        self._agg = None
        self._matrix = None

    def state_dict(self) -> dict[str, Any]:
        return {"history": {k: list(v) for k, v in self._history.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._history = {k: [float(x) for x in v] for k, v in state.get("history", {}).items()}
        self._agg = None
        self._matrix = None
