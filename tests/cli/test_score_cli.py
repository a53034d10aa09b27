"""`zcnas score`: outputs, store reuse, and one-line errors for bad input."""

import pandas as pd
import pytest

from tests._cli import one_line_error

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"


@pytest.fixture
def run(run_isolated):
    return run_isolated




def test_score_writes_parquet_and_csv_and_reuses_the_store(run, tmp_path):
    archs = tmp_path / "archs.txt"
    archs.write_text(f"{ARCH}\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n")
    out = tmp_path / "out" / "scores"
    first = run("score", "--archs", archs, "--proxies", "synflow,flops", "--workers", 1,
                "--out", out, "--no-progress")
    assert first.exit_code == 0, first.output
    df = pd.read_parquet(out.with_suffix(".parquet"))
    assert list(df.columns) == ["arch", "index", "canonical", "proxy", "value", "seconds",
                                "device", "version", "dataset", "seed", "origin", "higher_is_better"]
    # the all-none cell's class is scored on its representative (NATS-Bench's cell #10)
    assert len(df) == 4 and df.origin.tolist() == ["computed"] * 2 + ["isomorph", "computed"]
    csv = pd.read_csv(out.with_suffix(".csv"))
    assert csv.value.tolist()[:2] == pytest.approx(df.value.tolist()[:2])
    assert df.loc[(df.proxy == "synflow")].value.tolist()[1] == float("-inf")  # kept, not dropped
    second = run("score", "--archs", archs, "--proxies", "synflow,flops", "--workers", 1,
                 "--out", out, "--no-progress")
    assert second.exit_code == 0, second.output
    assert set(pd.read_parquet(out.with_suffix(".parquet")).origin) == {"store"}
    assert (tmp_path / "cache" / "scores.sqlite").exists()


def test_proxy_needing_images_without_data(run, tmp_path):
    one_line_error(run("score", "--archs", 3, "--proxies", "synflow,naswot", "--data", tmp_path,
                       "--out", tmp_path / "x"), "naswot needs real cifar10 images")


def test_unknown_proxy(run, tmp_path):
    one_line_error(run("score", "--archs", 3, "--proxies", "nasowt", "--out", tmp_path / "x"),
                   "did you mean 'naswot'")


def test_bad_proxy_parameter(run, tmp_path):
    one_line_error(run("score", "--archs", 3, "--proxies", "synflow(batchsize=2)",
                       "--out", tmp_path / "x"), "no parameter 'batchsize'")


def test_malformed_arch_in_file(run, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("|nor_conv_3x3~0|+|bogus~0|none~1|\n")
    one_line_error(run("score", "--archs", f, "--proxies", "flops", "--out", tmp_path / "x"),
                   "malformed arch")


def test_foreign_store_is_refused_not_overwritten(run, tmp_path):
    store = tmp_path / "notastore.sqlite"
    store.write_bytes(b"this is not a database" * 100)
    before = store.read_bytes()
    one_line_error(run("score", "--archs", 2, "--proxies", "flops", "--store", store,
                       "--out", tmp_path / "x"), str(store))
    assert store.read_bytes() == before
