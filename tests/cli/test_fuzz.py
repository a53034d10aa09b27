"""The command line under generated input: whatever a user types, ``zcnas`` exits with 0 or 2,
never shows a traceback, and says what is wrong in exactly one line."""

from __future__ import annotations

import os
import string

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zcnas.cli import main

SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "conv", ""]
TEXT = st.text(alphabet=string.printable + "²³éß\u00a0\ufeff|~+", max_size=60)


def arch_like():
    edge = st.builds(lambda op, i: f"{op}~{i}", st.sampled_from(OPS),
                     st.sampled_from(["0", "1", "2", "3", "-1", "x", "²"]))
    group = st.lists(edge, min_size=0, max_size=4).map(lambda es: "|" + "|".join(es) + "|")
    return st.one_of(TEXT, st.lists(group, min_size=1, max_size=4).map("+".join),
                     st.sampled_from([CELL, "8:16:24:32:40", "11", "²", "15625", "-3",
                                      "1e3", " ", ""]))


@pytest.fixture
def cli(monkeypatch, tmp_path):
    monkeypatch.delenv("ZCNAS_DATA", raising=False)
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.setenv("ZCNAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)

    def run(*args):
        r = CliRunner().invoke(main, [str(a) for a in args])
        err = r.stderr if hasattr(r, "stderr") else r.output
        assert r.exit_code in (0, 2), (args, r.exit_code, r.output, repr(r.exception))
        assert "Traceback" not in r.output and "Traceback" not in err, (args, r.output)
        if r.exit_code == 2:
            lines = [ln for ln in err.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith("zcnas: error: "), (args, err)
            assert len(lines[0]) < 1000, lines[0][:300]
        return r

    return run


@SETTINGS
@given(arch=arch_like(), space=st.sampled_from(["nats-tss", "sss", "tss", "bogus", ""]))
def test_arch(cli, arch, space):
    cli("arch", arch, "--space", space)


@SETTINGS
@given(content=st.one_of(st.binary(max_size=200),
                         st.lists(arch_like(), max_size=5).map("\n".join).map(str.encode),
                         st.just(CELL.encode("utf-16")),
                         st.just(b"\xef\xbb\xbf" + CELL.encode())),
       suffix=st.sampled_from([".txt", ".csv", ""]))
def test_score_an_arch_file(cli, tmp_path, content, suffix):
    f = tmp_path / f"archs{suffix}"
    f.write_bytes(content)
    r = cli("score", "--archs", f, "--proxies", "params", "--no-store", "--workers", "1",
            "--no-progress", "--out", tmp_path / "out")
    if content == b"\xef\xbb\xbf" + CELL.encode() and suffix != ".csv":
        assert r.exit_code == 0  # a BOM is accepted


@SETTINGS
@given(spec=st.one_of(TEXT, st.sampled_from(
    ["params(batch_size=0)", "stable(n_batches=2.5)", "synflow(x=1)", "ensemble:az(params)",
     "ensemble:az(params,flops", "flops,flops", "params(batch_size=nan)", "ensemble:",
     "grasp(batch_size=1e400)"])))
def test_score_proxy_specs(cli, tmp_path, spec):
    cli("score", "--archs", "2", "--proxies", spec, "--no-store", "--workers", "1",
        "--no-progress", "--out", tmp_path / "out")


NUMBER = st.one_of(st.sampled_from(["-1", "0", "nan", "inf", "-inf", "1e309", "2**63",
                                    "9223372036854775808", "1.5", "", "abc", "²"]),
                   st.integers(-10, 10).map(str))


BUDGET = st.sampled_from(["-1", "0", "nan", "inf", "1e309", "0.01", "abc", "", "²", "nats"])


@SETTINGS
@given(seed=NUMBER, budget=BUDGET, seeds=NUMBER, mp=NUMBER)
def test_search_numbers(cli, seed, budget, seeds, mp):
    cli("search", "--method", "random", "--fitness", "params", "--lookup", "none",
        "--budget", budget, "--seeds", seeds, "--max-params", mp, "--no-store",
        "--no-progress")
    cli("score", "--archs", "1", "--proxies", "params", "--seed", seed, "--no-store",
        "--workers", "1", "--no-progress", "--out", "o")


@SETTINGS
@given(device=st.sampled_from(["cpu", "cuda", "cuda:abc", "tpu", "", "meta", "cuda:99"]),
       workers=st.sampled_from(["1", "0", "-2", "x"]))
def test_devices_and_workers(cli, device, workers):
    cli("score", "--archs", "1", "--proxies", "params", "--device", device, "--workers",
        workers, "--no-store", "--no-progress", "--out", "o")


@SETTINGS
@given(kind=st.sampled_from(["empty", "dir", "fifo", "symlink", "file-parent", "dotted",
                             "ok"]))
def test_output_paths_are_checked_before_any_work(cli, tmp_path, kind):
    base = tmp_path / kind
    base.mkdir(exist_ok=True)
    out = {"empty": "", "dir": base / "t", "fifo": base / "t", "symlink": base / "t",
           "file-parent": base / "file" / "t", "dotted": base / "tss.1000",
           "ok": base / "t"}[kind]
    if kind == "dir":
        (base / "t.parquet").mkdir(exist_ok=True)
    if kind == "fifo" and not (base / "t.csv").exists():
        os.mkfifo(base / "t.csv")
    if kind == "symlink" and not (base / "t.parquet").is_symlink():
        (base / "t.parquet").symlink_to(base / "elsewhere")
    if kind == "file-parent":
        (base / "file").write_text("x")
    r = cli("score", "--archs", "1", "--proxies", "params", "--no-store", "--workers", "1",
            "--no-progress", "--out", out)
    assert r.exit_code == (0 if kind in ("ok", "dotted") else 2)
    if kind == "dotted":
        assert (base / "tss.1000.parquet").is_file()
    if kind == "symlink":
        assert not (base / "elsewhere").exists()  # nothing written through the link


@SETTINGS
@given(bootstrap=NUMBER, archs=st.sampled_from(["all", "5", "x", "-1", "²"]))
def test_correlate_numbers(cli, tmp_path, bootstrap, archs):
    table = tmp_path / "scores.csv"
    if not table.exists():
        table.write_text(f"arch,proxy,value\n{CELL},params,1.0\n")
    cli("correlate", table, "--bootstrap", bootstrap, "--archs", archs, "--out",
        tmp_path / "corr")


def test_a_read_only_folder_is_refused_before_any_work(cli, tmp_path, unwritable):
    ro = tmp_path / "ro"
    ro.mkdir()
    unwritable(ro)
    r = cli("score", "--archs", "1", "--proxies", "params", "--no-store", "--workers", "1",
            "--out", ro / "t")
    assert r.exit_code == 2 and "cannot write to folder" in r.stderr
