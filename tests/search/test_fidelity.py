"""The zero-cost fidelity: component scores, costs in seconds, the store, population-relative
ensemble values."""

import pytest

from zcnas.fidelity import EVALUATORS, ProxyEvaluator
from zcnas.runtime import ScoreStore
from zcnas.spaces import nats_tss
from zcnas.spaces.plan import count_costs, tss_plan

ARCHS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
         "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"]


def test_ensemble_values_are_relative_to_everything_scored(tmp_path):
    ev = ProxyEvaluator("ensemble:az(flops,params)", store=ScoreStore(tmp_path / "s.sqlite"))
    assert ev.relative and ev.name == "proxy:ensemble:az(flops,params)"
    out = ev.evaluate(ARCHS[:2])
    assert out[0].meta["flops"] == pytest.approx(count_costs(tss_plan(ARCHS[0])).flops_m)
    assert out[0].cost >= 0 and out[0].fidelity == ev.name
    assert out[0].value > out[1].value  # the larger cell ranks higher on both components
    before = ev.relative_values([nats_tss.canonical_key(ARCHS[1])])
    ev.evaluate(ARCHS[2:])  # a smaller cell joins: the middle one's rank rises
    after = ev.relative_values([nats_tss.canonical_key(ARCHS[1])])
    assert after[0] > before[0]
    ev.forget([nats_tss.canonical_key(ARCHS[2])])
    assert ev.relative_values([nats_tss.canonical_key(ARCHS[1])]) == before


def test_scores_from_the_store_cost_what_they_cost_when_computed(tmp_path):
    store = ScoreStore(tmp_path / "s.sqlite")
    first = ProxyEvaluator("synflow", store=store).evaluate(ARCHS[:1])[0]
    again = ProxyEvaluator("synflow", store=store).evaluate(ARCHS[:1])[0]
    assert not first.meta["cached"] and again.meta["cached"]
    assert again.cost == first.cost > 0 and again.value == first.value


def test_evaluators_are_registered_by_name():
    from zcnas.search import BuildContext, SearchConfig

    assert {"proxy", "lookup", "supernet", "train"} <= set(EVALUATORS.names())
    assert {e.dist for e in EVALUATORS.entries()} == {"zcnas"}  # through the entry points
    ctx = BuildContext(SearchConfig(fitness="synflow"), None)
    assert isinstance(EVALUATORS.get("proxy")(ctx), ProxyEvaluator)
