"""`--bootstrap N` is bounded: a huge N is one line naming the maximum, before any work or
allocation (1e9 resamples used to allocate 45 GB); allowed values keep memory at
N x metrics floats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests._cli import one_line_error
from zcnas.analysis.correlate import Prepared, check_bootstrap, correlate
from zcnas.analysis.metrics import MAX_BOOTSTRAP, METRICS, evaluate
from zcnas.errors import UserError


class Bench:
    """A lookup of 40 architectures whose accuracy is their index (no data needed)."""

    datasets = ("cifar10",)
    source = "test"

    def accuracies(self, indices, dataset, *, epochs=None, split="test"):
        return np.asarray(indices, dtype=np.float64)


def prepared(n: int = 40) -> Prepared:
    pop = np.arange(n)
    noise = np.random.default_rng(0).normal(size=n)
    return Prepared([("proxy", pd.Series(pop + 5 * noise, index=pop), True)], pop, "all",
                    "cifar10")


def test_the_maximum_is_generous_and_cheap():
    assert MAX_BOOTSTRAP == 100_000
    assert MAX_BOOTSTRAP * len(METRICS) * 8 < 10 * 2**20  # the draws of one cell: < 10 MB


@pytest.mark.timeout(20)
@pytest.mark.parametrize("n", [10**9, MAX_BOOTSTRAP + 1])
def test_correlate_refuses_more_than_the_maximum_in_one_line(n):
    with pytest.raises(UserError) as info:
        correlate(prepared(), Bench(), epochs=(200,), bootstrap=n, progress=False)
    message = str(info.value)
    assert "\n" not in message and f"{n:,}" in message and "100,000" in message, message
    assert "--bootstrap" in message


@pytest.mark.timeout(20)
def test_evaluate_refuses_before_allocating():
    s = np.arange(30.0)
    with pytest.raises(ValueError, match="100,000"):
        evaluate(s, s, bootstrap=10**9)


@pytest.mark.parametrize("bad", [-1, 2.5, True, "10"])
def test_check_bootstrap_wants_a_count(bad):
    with pytest.raises(UserError) as info:
        check_bootstrap(bad)
    assert "--bootstrap" in str(info.value)


def test_allowed_values_still_give_intervals():
    assert check_bootstrap(0) == 0 and check_bootstrap(MAX_BOOTSTRAP) == MAX_BOOTSTRAP
    assert check_bootstrap(np.int64(50)) == 50
    t = correlate(prepared(), Bench(), epochs=(200,), bootstrap=50, progress=False)
    rho = t[t.metric == "spearman"].iloc[0]
    assert rho.ci_low <= rho.value <= rho.ci_high and rho.ci_low < rho.ci_high


@pytest.mark.timeout(60)
def test_cli_refuses_a_huge_bootstrap_in_one_line(monkeypatch, tmp_path, tss_table, data_root):
    from click.testing import CliRunner

    from zcnas.cli import main

    monkeypatch.setenv("ZCNAS_DATA", str(data_root))
    rows = tss_table.iloc[:20]
    table = tmp_path / "scores.csv"
    pd.DataFrame({"arch": rows["arch"], "proxy": "flops",
                  "value": rows["cifar10_test_200ep"]}).to_csv(table, index=False)
    result = CliRunner().invoke(main, ["correlate", str(table), "--bootstrap", "1000000000",
                                       "--out", str(tmp_path / "o"), "--no-progress"])
    one_line_error(result, "100,000")
    assert not (tmp_path / "o").exists()
