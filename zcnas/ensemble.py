"""Training-free ensembles: rank aggregations of several proxies over a population.

An ensemble score is *relative*: where an architecture stands among the others scored with
it. So an ensemble is not a proxy but a population scorer: its per-architecture work is its
components' work, plus an :meth:`Ensemble.aggregate` step over the population (the scored
table, or a searcher's population). The engine (``zcnas score``), ``zcnas correlate`` and the
searchers call it; :func:`zcnas.registry.create_scorer` builds either kind from a spec.

Spec strings (anywhere a proxy name is accepted)::

    ensemble:METHOD(COMPONENT,COMPONENT,...)     e.g. ensemble:az(naswot,synflow,flops)
    ensemble:PRESET                              e.g. ensemble:az_nas

Methods (no accuracy labels anywhere):

* ``mean_rank``: mean of the components' ranks (1 = worst, N = best; ties share the average
  rank). TE-NAS ranks its two indicators this way.
* ``az``: the AZ-NAS non-linear aggregation ``sum_i log(rank_i / N)``
  (``AZ-NAS:NB201/tss_general.ipynb``); a low rank in any component is punished hard.
* ``maxnorm``: the MFNAS fitness ``sum_i v_i / (max_population |v_i| + 1e-9)``, with
  ``1 - v / (max |v| + 1e-9)`` for a lower-is-better component (``MFNAS:nas_utils.py``,
  ``return_top_k``).

Degenerate component values (NaN, +-inf) count as that component's worst value: the lowest
rank (tied), or the lowest normalised value of the population. No torch here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from zcnas.proxy import Proxy, ProxyError, goodness, split_specs

PREFIX = "ensemble"
MAXNORM_EPS = 1e-9


def _ranks(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(goodness(values, higher_is_better), method="average")


def mean_rank(matrix: np.ndarray, higher: Sequence[bool]) -> np.ndarray:
    return np.mean([_ranks(matrix[:, j], h) for j, h in enumerate(higher)], axis=0)


def az(matrix: np.ndarray, higher: Sequence[bool]) -> np.ndarray:
    n = matrix.shape[0]
    return np.sum([np.log(_ranks(matrix[:, j], h) / n) for j, h in enumerate(higher)], axis=0)


def maxnorm(matrix: np.ndarray, higher: Sequence[bool]) -> np.ndarray:
    total = np.zeros(matrix.shape[0])
    for j, h in enumerate(higher):
        v = np.asarray(matrix[:, j], dtype=np.float64)
        ok = np.isfinite(v)
        if not ok.any():
            continue
        scaled = v / (np.max(np.abs(v[ok])) + MAXNORM_EPS)
        if not h:
            scaled = 1.0 - scaled
        worst = scaled[ok].min()
        total += np.where(ok, scaled, worst)
    return total


METHODS = {"mean_rank": mean_rank, "az": az, "maxnorm": maxnorm}

#: Named ensembles. ``zcnas`` is the engine's default training-free ensemble (see
#: results/correlations/README.md for how it was chosen and what it reaches).
PRESETS: dict[str, str] = {
    # chosen by greedy forward selection on the dev half of a 1,000-cell sample, reported on
    # the other half (benchmarks/ensemble_selection.py, results/correlations/)
    "zcnas": "az(meco,stable,jacov,gradsign,az_progressivity,az_trainability)",
    # ensemble:zcnas on fewer images (stable 2 x 16, jacov 32, GradSign 16, the AZ-NAS pair 32;
    # MeCo reads one image anyway): the best dev rho of the batch grid at or under 1.0 s per
    # cell on one CPU thread (benchmarks/fast_ensemble.py, results/correlations/fast-ensemble.md)
    "zcnas_fast": "az(meco,stable(batch_size=16),jacov(batch_size=32),gradsign(batch_size=16),"
                  "az_progressivity(batch_size=32),az_trainability(batch_size=32))",
    "az_nas": "az(az_expressivity,az_progressivity,az_trainability,flops)",
    # the best data-free aggregation by rho on the dev half of the 1,000-cell sample, reported
    # on the other half (benchmarks/data_free_ensemble.py, results/correlations/): the quick
    # start's fitness when no images are found
    "data_free": "az(synflow,az_expressivity,az_progressivity,az_trainability,flops)",
    # VKDNW_agg (Tybl & Neumann, CVPR 2025; ondratybl/VKDNW NB201/tss_utils.py vkdnw_comb_rank);
    # its jacov here is foresight's recipe, the reference's is the AZ-NAS code base's (Kaiming
    # init on the official network): a documented difference of this preset
    "vkdnw": "az(vkdnw,jacov,az_expressivity,az_trainability,flops)",
    "mfnas": "maxnorm(stable,stable_mean)",
    "te_nas": "mean_rank(te_nas_ntk,te_nas_lr)",
}


_REFERENCES = {
    "az": ("Lee & Ham, AZ-NAS, CVPR 2024 (non-linear rank aggregation)",
           "cvlab-yonsei/AZ-NAS NB201/tss_general.ipynb"),
    "maxnorm": ("MFNAS (PRICAI 2024), max-normalised sum", "mine7777/MFNAS nas_utils.py "
                "(return_top_k)"),
    "mean_rank": ("mean rank (TE-NAS-style rank sum)", "zcnas.ensemble"),
}


class Ensemble:
    """A population scorer: a rank aggregation of component proxies (see the module
    docstring). It scores no architecture alone: the engine scores the components and calls
    :meth:`aggregate` over the population. Higher is better.
    """

    version = "1"
    higher_is_better = True

    def __init__(self, method: str, components: Sequence[Proxy], *, preset: str | None = None):
        if method not in METHODS:
            raise ProxyError(f"unknown ensemble method {method!r}; valid: {', '.join(METHODS)}")
        comps = list(components)
        if any(isinstance(c, Ensemble) for c in comps):
            raise ProxyError("an ensemble cannot contain another ensemble")
        if len(comps) < 2:
            raise ProxyError("an ensemble needs at least two component proxies")
        specs = [c.spec() for c in comps]
        if len(set(specs)) != len(specs):
            raise ProxyError(f"an ensemble component is given twice: {', '.join(specs)}")
        self.method = method
        self.components = comps
        self.preset = preset
        self.reference, self.code = _REFERENCES[method]
        self.needs_images = any(c.info.needs_images for c in comps)
        self.needs_labels = any(c.info.needs_labels for c in comps)
        declared = [set(c.info.spaces) for c in comps if c.info.spaces is not None]
        #: The spaces every component supports (None: any).
        self.spaces: tuple[str, ...] | None = (
            None if not declared else tuple(sorted(set.intersection(*declared))))

    @property
    def name(self) -> str:
        return self.spec()

    def supports(self, space: str) -> bool:
        return all(c.info.supports(space) for c in self.components)

    def config(self) -> dict[str, Any]:
        return {"method": self.method, "components": [c.spec() for c in self.components]}

    def spec(self) -> str:
        if self.preset is not None:
            return f"{PREFIX}:{self.preset}"
        return f"{PREFIX}:{self.method}(" + ",".join(c.spec() for c in self.components) + ")"

    def aggregate(self, values: Mapping[str, Sequence[float]] | np.ndarray) -> np.ndarray:
        """Ensemble scores (higher is better) of a population.

        ``values``: a mapping component spec -> values (one per architecture), or a matrix
        with one column per component in :attr:`components` order.
        """
        if isinstance(values, Mapping):
            missing = [c.spec() for c in self.components if c.spec() not in values]
            if missing:
                raise ProxyError(f"{self.spec()}: no values for component(s) "
                                 f"{', '.join(missing)}")
            matrix = np.column_stack([np.asarray(values[c.spec()], dtype=np.float64)
                                      for c in self.components])
        else:
            matrix = np.asarray(values, dtype=np.float64)
            if matrix.ndim != 2 or matrix.shape[1] != len(self.components):
                raise ProxyError(f"{self.spec()}: expected a (N, {len(self.components)}) "
                                 f"matrix, got shape {matrix.shape}")
        if matrix.shape[0] == 0:
            return np.zeros(0)
        higher = [c.info.higher_is_better for c in self.components]
        return METHODS[self.method](matrix, higher)

    def __repr__(self) -> str:
        return f"<ensemble {self.spec()}>"


#: What a score can come from: a proxy (one architecture) or an ensemble (a population).
Scorer = Proxy | Ensemble


def parse_ensemble(rest: str) -> Ensemble:
    """``'az(naswot,synflow)'`` or a preset name ``'az_nas'`` -> :class:`Ensemble`."""
    from zcnas.registry import create_scorer

    text = rest.strip()
    preset = None
    if text in PRESETS:
        preset, text = text, PRESETS[text]
    method, paren, body = text.partition("(")
    method = method.strip()
    if not paren:
        raise ProxyError(
            f"malformed ensemble {PREFIX + ':' + rest!r}; expected {PREFIX}:METHOD(A,B,...) "
            f"with METHOD one of {', '.join(METHODS)}, or a preset: {', '.join(PRESETS)}")
    if not body.rstrip().endswith(")"):
        raise ProxyError(f"malformed ensemble {PREFIX + ':' + rest!r}: missing ')'")
    body = body.rstrip()[:-1]
    if method not in METHODS:
        raise ProxyError(f"unknown ensemble method {method!r} in {PREFIX + ':' + rest!r}; "
                         f"valid: {', '.join(METHODS)}")
    comps = [create_scorer(s) for s in split_specs(body)] if body.strip() else []
    return Ensemble(method, comps, preset=preset)


def expand(scorers: Sequence[Scorer]) -> tuple[list[Proxy], list[Ensemble]]:
    """Split a scorer list into the per-architecture proxies to run (the plain ones plus every
    ensemble's components, each once, in order) and the ensembles."""
    plain: list[Proxy] = []
    seen: set[str] = set()
    ensembles: list[Ensemble] = []
    for p in scorers:
        parts = p.components if isinstance(p, Ensemble) else [p]
        if isinstance(p, Ensemble):
            ensembles.append(p)
        for c in parts:
            if c.spec() not in seen:
                seen.add(c.spec())
                plain.append(c)
    return plain, ensembles


__all__ = ["METHODS", "PREFIX", "PRESETS", "Ensemble", "Scorer", "az", "expand", "maxnorm",
           "mean_rank", "parse_ensemble"]
