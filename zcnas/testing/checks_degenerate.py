"""Conformance checks: degenerate genotypes (group 4) and the NaN policy (group 6)."""

from __future__ import annotations

import math

from zcnas.proxy import goodness, is_valid, rank_order
from zcnas.testing._util import _first_line, _qualname
from zcnas.testing.kit import Kit, register_check


@register_check("degenerate_cells", group=4,
                doc=('none/skip/pool-only cells return a float (NaN/inf allowed) without '
                     'raising'))
def degenerate_cells(kit: Kit) -> str | None:
    if not kit.degenerate:
        return f"n/a: the {kit.space} space declares no degenerate genotypes"
    kit.require_scorable()
    for label, arch in kit.degenerate.items():
        try:
            value = kit.plain_score(arch)
        except AssertionError as err:
            raise AssertionError(f"{label} cell: {_first_line(err)}") from err
        if type(value) is not float:
            raise AssertionError(f"{label} cell {arch}: score() returned "
                                 f"{_qualname(type(value))}, not a Python float")
    return None


@register_check("nan_policy", group=6,
                doc="zcnas.proxy.goodness ranks the proxy's degenerate outputs last")
def nan_policy(kit: Kit) -> str | None:
    kit.require_scorable()
    hib = kit.info.higher_is_better
    archs = kit.archs + list(kit.degenerate.values())
    values = []
    for arch in archs:
        value = kit.plain_score(arch)
        try:
            values.append(float(value))
        except (TypeError, ValueError) as err:
            raise AssertionError(f"score {value!r} on {arch} is not a number") from err
    values += [math.nan, math.inf, -math.inf]  # every kind of degenerate score
    good = goodness(values, hib)
    for v, g in zip(values, good, strict=True):
        want = (v if hib else -v) if is_valid(v) else -math.inf
        if not (g == want or (math.isnan(want) and math.isnan(g))):
            raise AssertionError(f"goodness maps score {v!r} to {g!r}, not {want!r}")
    order = rank_order(values, hib)
    n_valid = sum(is_valid(v) for v in values)
    if any(not is_valid(values[i]) for i in order[:n_valid]):
        raise AssertionError("rank_order puts a degenerate score before a valid one")
    best_first = [values[i] for i in order[:n_valid]]
    if best_first != sorted(best_first, reverse=hib):
        raise AssertionError("rank_order does not sort valid scores best first")
    return None
