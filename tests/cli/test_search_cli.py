"""`zcnas search`: outputs, the resumable protocol, proxies-only runs, one-line errors."""

import json

import pandas as pd
import pytest

from tests._cli import one_line_error


@pytest.fixture
def run(run_isolated):
    return run_isolated


def test_search_with_the_table_writes_runs_summary_and_anytime_curves(run, data_root, tmp_path):
    out = tmp_path / "res"
    args = ["search", "--data", data_root, "--method", "rea,random", "--dataset",
            "cifar10,cifar100", "--seeds", 2, "--budget", 8000, "--out", out, "--no-progress"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    assert "Selection used test-split lookups" in r.output
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 8 and set(runs.method) == {"rea", "random"}
    assert (runs.cost_s <= 8000).all() and runs.reported_test_acc.between(60, 95).all()
    assert runs.selection_used_test_split.all()
    summ = pd.read_csv(out / "summary.csv")
    assert set(summ.columns) >= {"method", "dataset", "mean", "std", "cost_mean_s", "wall_mean_s"}
    md = (out / "summary.md").read_text()
    assert "FreeREA / MF-NAS" in md and "94.36" in md and "test-split" in md
    curves = pd.read_parquet(out / "anytime.parquet")
    assert set(curves.columns) == {"method", "dataset", "seed", "cost_s", "acc"}
    assert (out / "anytime.png").stat().st_size > 10_000
    assert len(list((out / "runs").glob("*.json"))) == 8
    # a re-run reuses the finished runs, with identical results
    again = run(*args)
    assert again.exit_code == 0, again.output
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet").drop(columns="wall_s"),
                                  runs.drop(columns="wall_s"))


def test_search_in_parallel_matches_serial(run, data_root, tmp_path):
    common = ["search", "--data", data_root, "--method", "ls", "--seeds", 3, "--budget", 5000,
              "--no-progress", "--no-plots"]
    a = run(*common, "--out", tmp_path / "a", "--workers", 1)
    b = run(*common, "--out", tmp_path / "b", "--workers", 2)
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    ra = pd.read_parquet(tmp_path / "a" / "runs.parquet")
    rb = pd.read_parquet(tmp_path / "b" / "runs.parquet")
    assert ra["index"].tolist() == rb["index"].tolist()


def test_search_without_any_data_runs_on_data_free_proxies(run, tmp_path):
    r = run("search", "--budget", 3, "--no-progress")
    assert r.exit_code == 0, r.output
    assert "searching on proxies alone" in r.output
    first = r.output.splitlines()[0]
    assert len(first) < 120 and "root=" not in r.output  # short, CLI wording
    assert "ensemble:data_free" in r.output and "chose #" in r.output  # the index, no data
    assert "az_expressivity" in r.output and "params" in r.output
    assert "not accuracies" in r.output and "zcnas arch" in r.output  # what next


def test_explicit_fitness_needing_images_without_data_is_one_line(run):
    one_line_error(run("search", "--fitness", "naswot", "--budget", 3, "--no-progress"),
                   "need")


@pytest.mark.parametrize("args, fragment", [
    (["--method", "bogus"], "unknown search method 'bogus'"),
    (["--budget", "lots"], "--budget 'lots'"),
    (["--budget", "-5"], "must be a positive, finite number"),
    (["--dataset", "mnist"], "mnist"),
    (["--seeds", "0"], "Invalid value for '--seeds'"),
    (["--select", "best"], "unknown selection rule"),
    (["--fitness", "nosuchproxy"], "nosuchproxy"),
    (["--split", "train"], "split"),
])
def test_bad_input_is_one_line(run, data_root, args, fragment):
    one_line_error(run("search", "--data", data_root, "--no-progress", *args), fragment)


def test_a_checkpoint_of_another_configuration_is_refused(run, data_root, tmp_path):
    out = tmp_path / "o"
    assert run("search", "--data", data_root, "--method", "rea", "--budget", 3000,
               "--out", out, "--no-progress").exit_code == 0
    ck = out / "runs" / "rea-cifar10-seed0.json"
    state = json.loads(ck.read_text())
    state["config"]["budget"] = 1.0
    ck.write_text(json.dumps(state))
    one_line_error(run("search", "--data", data_root, "--method", "rea", "--budget", 3000,
                       "--out", out, "--no-progress"), "another search configuration")


def test_the_search_bar_advances_by_budget_seconds(run_isolated):
    """Inside one run the bar counts seconds of the budget (3 s here), not runs (0/1 -> 1/1)."""
    r = run_isolated("search", "--budget", 3, "--fitness", "synflow", "--no-store")
    assert r.exit_code == 0, r.output
    bars = [x for x in r.output.replace("\r", "\n").splitlines() if x.startswith("searching:")]
    assert bars and "3/3 [" in bars[-1] and "s/s" in bars[-1] and "1/1 runs" in bars[-1]
