"""What a newcomer reads: ties shown as ties, a stalled ladder said plainly, a one-point anytime
curve drawn, ``**`` only where the bootstrap interval misses the published range, a warning on
small samples, tables that fit 100 columns, help that names the files written."""

from __future__ import annotations

import types
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from zcnas.analysis.correlate import _significant
from zcnas.analysis.search import anytime_figure, most_chosen, summarize
from zcnas.cli import main
from zcnas.experiments.session import SearchSession
from zcnas.search.driver import SearchConfig, SearchResult


def result(seed: int, index: int | None, *, evals=(32, 0), acc: float | None = 93.0,
           method: str = "mfea") -> SearchResult:
    return SearchResult(
        config=SearchConfig(method=method, seed=seed), arch=None if index is None else "x",
        index=index, reported=acc, cost=60.0, cost_by_stage=[60.0, 0.0],
        evals_by_stage=list(evals), stages=["proxy:synflow", "lookup:12"], wall_seconds=1.0,
        uses_test_split=False, chosen_values={}, trajectory=[(60.0, index, acc)])


def test_a_tie_in_most_chosen_is_shown_as_a_tie():
    rows = summarize([result(0, 655), result(1, 5374), result(2, 5374), result(3, 655)])
    assert most_chosen(rows.iloc[0]) == "655 / 5374 (50% each)"
    rows = summarize([result(0, 655), result(1, 5374), result(2, 5374)])
    assert most_chosen(rows.iloc[0]) == "5374 (67%)"
    rows = summarize([result(i, 100 + i) for i in range(30)])  # 30 cells, one run each
    assert most_chosen(rows.iloc[0]) == "100 / 101 / 102 / +27 more (3% each)"


def test_a_ladder_that_never_escalated_says_so():
    lines = SearchSession._stalled([result(0, 1, evals=(32, 0)), result(1, 2, evals=(30, 0))])
    assert lines == ["mfea on cifar10: the budget was spent on the zero-cost stage: 62 cells "
                     "scored, none escalated; first runs compute proxy scores, later runs "
                     "read them from the store"]
    assert SearchSession._stalled([result(0, 1, evals=(32, 1))]) == []


def test_a_one_point_anytime_curve_is_drawn():
    frame = pd.DataFrame({"method": ["mfea"], "dataset": ["cifar10"], "seed": [0],
                          "cost_s": [60.0], "acc": [93.5]})
    fig = anytime_figure(frame)
    (line,) = [ln for ln in fig.axes[0].get_lines() if ln.get_label() == "mfea"]
    assert line.get_marker() == "o" and list(line.get_ydata()) == [93.5]
    lo, hi = fig.axes[0].get_ylim()
    assert lo < 93.5 < hi
    assert fig.axes[0].get_xlabel().startswith("cost (s")  # not "simulated cost"


@pytest.mark.parametrize("low, high, marked", [
    (0.55, 0.70, False),  # the interval reaches the published 0.594-0.596: no mark
    (0.65, 0.70, True),   # the whole interval is above it
    (np.nan, np.nan, True),  # no interval: the gap alone decides
])
def test_a_gap_is_marked_only_outside_the_bootstrap_interval(low, high, marked):
    est = types.SimpleNamespace(ci_low=low, ci_high=high)
    assert _significant("snip", "cifar10", "spearman", est, 0.08) is marked
    assert _significant("snip", "cifar10", "spearman", est, 0.04) is False


def test_correlate_warns_on_a_small_sample(data_root, tmp_path, tss_table):
    rng = np.random.default_rng(0)
    rows = tss_table.iloc[np.sort(rng.choice(len(tss_table), 40, replace=False))]
    path = tmp_path / "s.parquet"
    pd.DataFrame({"arch": rows["arch"], "proxy": "flops", "value": rng.normal(size=40),
                  "dataset": "cifar10", "origin": "computed"}).to_parquet(path)
    from zcnas.experiments.correlation import CorrelateRequest, run_correlate

    req = CorrelateRequest(tables=(str(path),), out=str(tmp_path / "c"), data=data_root,
                           bootstrap=0, plots=False)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        run_correlate(req)
    assert any("only 40 architectures" in str(w.message) for w in got)


def test_proxies_list_fits_100_columns():
    out = CliRunner().invoke(main, ["proxies", "list"], env={"COLUMNS": "100"})
    assert out.exit_code == 0, out.output
    assert max(len(line) for line in out.output.splitlines()) <= 100


def test_correlate_help_names_the_files_it_writes():
    out = CliRunner().invoke(main, ["correlate", "-h"])
    for name in ("correlations.parquet", ".csv", ".md", "heatmap", "scatter.png"):
        assert name in out.output
