"""`zcnas correlate` and its library: joins by arch string, metrics per (proxy, dataset,
epochs), ensembles over the sample, outputs, and one-line errors for bad input."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from tests._cli import one_line_error
from zcnas.analysis.correlate import correlate, prepare, read_scores
from zcnas.cli import main
from zcnas.errors import CorruptDataError, DataNotFoundError, UserError


@pytest.fixture(scope="module")
def fake_scores(tss_table, tmp_path_factory):
    """A score table over 300 real archs: flops = the CIFAR-10 200-epoch accuracy (an oracle),
    params = minus it with 10 NaNs, synflow = noise."""
    rng = np.random.default_rng(0)
    rows = tss_table.iloc[np.sort(rng.choice(len(tss_table), 300, replace=False))]
    acc = rows["cifar10_test_200ep"].to_numpy()
    neg = -acc.copy()
    neg[:10] = np.nan
    frames = [pd.DataFrame({"arch": rows["arch"], "proxy": name, "value": vals,
                            "dataset": "cifar10", "origin": "computed"})
              for name, vals in (("flops", acc), ("params", neg),
                                 ("synflow", rng.normal(size=300)))]
    path = tmp_path_factory.mktemp("scores") / "scores.parquet"
    pd.concat(frames).to_parquet(path)
    return path, rows


@pytest.fixture(scope="module")
def bench(data_root):
    from zcnas.lookup import open_benchmark

    return open_benchmark("nats-tss", root=data_root, kind="table")


def test_correlate_measures_against_the_right_column(fake_scores, bench):
    path, rows = fake_scores
    prep = prepare(read_scores([path]), bench,
                   proxies="all,ensemble:mean_rank(flops,synflow)")
    t = correlate(prep, bench, bootstrap=20)
    assert set(t.proxy) == {"flops", "params", "synflow", "ensemble:mean_rank(flops,synflow)"}
    assert set(t.dataset) == {"cifar10", "cifar100", "ImageNet16-120"}
    assert set(t.epochs) == {200, 12}
    cell = t[(t.proxy == "flops") & (t.dataset == "cifar10") & (t.epochs == 200)]
    v = cell.set_index("metric")["value"]
    assert v["spearman"] == pytest.approx(1.0) and v["kendall"] == pytest.approx(1.0)
    assert v["top1%"] == v["top10%"] == v["ndcg@10%"] == pytest.approx(1.0)
    # the 12-epoch column is another ground truth: the oracle of the 200-epoch one is not exact
    rho12 = t[(t.proxy == "flops") & (t.dataset == "cifar10") & (t.epochs == 12)
              & (t.metric == "spearman")]["value"].item()
    assert 0.3 < rho12 < 0.99
    # params is higher-is-better: minus the accuracy ranks perfectly backwards, NaNs kept
    p = t[(t.proxy == "params") & (t.dataset == "cifar10") & (t.epochs == 200)]
    assert (p["n"] == 300).all() and (p["degenerate"] == 10).all()
    assert p.set_index("metric")["value"]["spearman"] < -0.9
    noise = t[(t.proxy == "synflow") & (t.metric == "spearman")]["value"]
    assert noise.abs().max() < 0.2
    assert (t["scores_on"] == "cifar10").all() and (t["sample"] == "all").all()


def test_sample_and_seed(fake_scores, bench):
    path, _ = fake_scores
    scores = read_scores([path])
    a = prepare(scores, bench, archs=100, seed=1)
    b = prepare(scores, bench, archs=100, seed=1)
    c = prepare(scores, bench, archs=100, seed=2)
    assert len(a.population) == 100 and np.array_equal(a.population, b.population)
    assert not np.array_equal(a.population, c.population)
    assert all(len(v) == 100 for _, v, _ in a.scored) and a.sample == "100 (seed 1)"
    with pytest.raises(UserError, match="300"):
        prepare(scores, bench, archs=301)


def test_read_scores_errors(fake_scores, tmp_path):
    path, _ = fake_scores
    with pytest.raises(DataNotFoundError, match="not found"):
        read_scores([tmp_path / "nope.parquet"])
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(CorruptDataError, match="cannot read"):
        read_scores([bad])
    nocol = tmp_path / "nocol.csv"
    pd.DataFrame({"arch": ["x"], "value": [1.0]}).to_csv(nocol, index=False)
    with pytest.raises(CorruptDataError, match="proxy"):
        read_scores([nocol])
    # the same scores twice are fine; different values for one (arch, proxy) are not
    assert len(read_scores([path, path])) == len(read_scores([path]))
    other = pd.read_parquet(path)
    other["value"] = other["value"] + 1.0
    clash = tmp_path / "clash.parquet"
    other.to_parquet(clash)
    with pytest.raises(UserError, match="conflicting"):
        read_scores([path, clash])


def test_ensemble_rows_in_a_score_table_are_recomputed_not_read(fake_scores, bench, tmp_path):
    path, _ = fake_scores
    df = pd.read_parquet(path)
    extra = df[df.proxy == "flops"].assign(proxy="ensemble:mean_rank(flops,synflow)",
                                           value=0.0, origin="ensemble")
    with_rows = tmp_path / "with.parquet"
    pd.concat([df, extra]).to_parquet(with_rows)
    scores = read_scores([with_rows])
    assert "ensemble:mean_rank(flops,synflow)" not in set(scores.proxy)
    prep = prepare(scores, bench, proxies="ensemble:mean_rank(flops,synflow)")
    (name, values, higher), = prep.scored
    assert higher and values.std() > 0


@pytest.fixture
def run(monkeypatch, data_root):
    monkeypatch.setenv("ZCNAS_DATA", str(data_root))

    def _run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    return _run




def test_cli_writes_tables_markdown_and_plots(run, fake_scores, tmp_path):
    path, _ = fake_scores
    out = tmp_path / "corr"
    r = run("correlate", path, "--proxies", "flops,synflow,ensemble:az(flops,synflow)",
            "--bootstrap", 10, "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    for name in ("correlations.parquet", "correlations.csv", "correlations.md",
                 "heatmap-200ep.png", "heatmap-12ep.png", "scatter.png"):
        assert (out / name).stat().st_size > 0, name
    t = pd.read_parquet(out / "correlations.parquet")
    assert len(t) == 3 * 3 * 2 * 6
    md = (out / "correlations.md").read_text()
    assert "| flops |" in md and "0.799 [vkdnw]" in md  # published FLOPs rho beside ours
    assert "did not see their images" in md  # the CIFAR-100 / ImageNet columns are labelled
    assert "Spearman rho" in r.output and "1.000" in r.output


@pytest.mark.parametrize("args,fragment", [
    (["--proxies", "zico"], "no 'zico' scores"),
    (["--proxies", "ensemble:az(flops,zico)"], "needs zico"),
    (["--proxies", "ensemble:az(flops)"], "at least two"),
    (["--datasets", "mnist"], "mnist"),
    (["--epochs", "7"], "7"),
    (["--archs", "5000"], "300"),
])
def test_cli_bad_input_is_one_line(run, fake_scores, tmp_path, args, fragment):
    path, _ = fake_scores
    r = run("correlate", path, *args, "--bootstrap", 0, "--out", tmp_path / "o",
            "--no-plots", "--no-progress")
    one_line_error(r, fragment)


def test_cli_missing_table_is_one_line(run, tmp_path):
    one_line_error(run("correlate", tmp_path / "none.parquet", "--out", tmp_path / "o"),
                   "not found")


def test_a_table_records_orientation_so_the_plugin_need_not_be_installed(fake_scores, bench,
                                                                          tmp_path):
    path, rows = fake_scores
    acc = rows["cifar10_test_200ep"].to_numpy()
    table = pd.DataFrame({"arch": rows["arch"], "proxy": "gone_plugin", "value": -acc,
                          "dataset": "cifar10", "origin": "computed",
                          "higher_is_better": False})
    p = tmp_path / "gone.csv"
    table.to_csv(p, index=False)
    t = correlate(prepare(read_scores([p]), bench), bench, bootstrap=0, datasets=["cifar10"])
    rho = t[(t.epochs == 200) & (t.metric == "spearman")]["value"].item()
    assert rho == pytest.approx(1.0)  # lower is better, as the table says
    old = tmp_path / "old.csv"  # a table from before the column: the plugin must say
    table.drop(columns="higher_is_better").to_csv(old, index=False)
    with pytest.raises(UserError, match="cannot tell whether higher 'gone_plugin'"):
        prepare(read_scores([old]), bench)
