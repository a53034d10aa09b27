"""Hostile input, one case each: a clear line and exit 2 before any work, never a traceback, no
output lost or overwritten, no checkpoint trusted blindly."""

from __future__ import annotations

import json

import pytest

from tests._cli import one_line_error

CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"


def test_a_store_under_a_file_is_refused_before_scoring(run_isolated, tmp_path):
    (tmp_path / "FILE").write_text("x")
    r = run_isolated("score", "--archs", "2", "--proxies", "params", "--workers", 1,
                     "--store", tmp_path / "FILE" / "x", "--out", tmp_path / "out")
    one_line_error(r, "is a file, not a folder")
    assert not (tmp_path / "out.csv").exists()


def test_data_download_refuses_a_file_as_folder_and_an_empty_url(run_isolated, tmp_path):
    (tmp_path / "FILE").write_text("x")
    one_line_error(run_isolated("data", "download", "cifar10", "--data", tmp_path / "FILE"),
                   "is a file")
    one_line_error(run_isolated("data", "download", "cifar10", "--data", tmp_path / "d",
                                "--url", ""), "--url is empty")


def test_a_missing_data_folder_is_named(run_isolated, tmp_path):
    r = run_isolated("score", "--archs", "2", "--proxies", "naswot", "--data",
                     tmp_path / "nowhere", "--out", tmp_path / "o", "--no-store")
    one_line_error(r, f"the data folder {tmp_path / 'nowhere'} (--data) does not exist")


def test_search_outputs_are_checked_before_any_run(run_isolated, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs").write_text("in the way")
    r = run_isolated("search", "--method", "random", "--fitness", "params", "--lookup", "none",
                     "--budget", "0.01", "--no-store", "--out", out)
    one_line_error(r, "runs is in the way")
    (tmp_path / "afile").write_text("x")
    r = run_isolated("search", "--method", "random", "--fitness", "params", "--lookup", "none",
                     "--budget", "0.01", "--no-store", "--out", tmp_path / "afile")
    one_line_error(r, "is a file")


def test_fitness_unused_by_the_methods_is_a_warning(run_isolated, data_root, tmp_path):
    r = run_isolated("search", "--method", "rea", "--fitness", "synflow", "--data", data_root,
                     "--budget", "2000", "--no-store", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "--fitness is not used by rea" in r.output


@pytest.fixture
def finished(run_isolated, data_root, tmp_path):
    out = tmp_path / "run"
    r = run_isolated("search", "--method", "rea", "--data", data_root, "--budget", "3000",
                     "--no-store", "--no-progress", "--out", out)
    assert r.exit_code == 0, r.output
    return out, out / "runs" / "rea-cifar10-seed0.json"


def test_a_tampered_finished_checkpoint_is_refused(run_isolated, data_root, finished):
    out, ck = finished
    state = json.loads(ck.read_text())
    for key, value, why in (("arch", "garbage", "malformed arch string 'garbage'"),
                            ("reported", 99.9, "reported accuracy 99.9 is not the lookup's"),
                            ("index", 1, "index 1 is not that of")):
        bad = json.loads(json.dumps(state))
        bad["result"][key] = value
        ck.write_text(json.dumps(bad))
        r = run_isolated("search", "--method", "rea", "--data", data_root, "--budget", "3000",
                         "--no-store", "--no-progress", "--out", out)
        one_line_error(r, why)


def test_a_checkpoint_made_with_another_lookup_is_not_reused(run_isolated, data_root,
                                                             finished):
    out, ck = finished
    state = json.loads(ck.read_text())
    assert state["lookup"].startswith("table:")
    state["lookup"] = "table:0123456789abcdef"
    ck.write_text(json.dumps(state))
    r = run_isolated("search", "--method", "rea", "--data", data_root, "--budget", "3000",
                     "--no-store", "--no-progress", "--out", out)
    one_line_error(r, "was made with another lookup")


def test_long_echoed_input_is_cut(run_isolated):
    r = run_isolated("arch", "x" * 5000)
    one_line_error(r, "malformed arch string")
    assert len(r.output) < 400 and "x" * 200 + "..." in r.output


@pytest.mark.parametrize("content, fragment", [
    (CELL.encode("utf-16"), "NUL bytes"),
    (b"\xff\xfe\xfa garbage", "is not UTF-8 text"),
    (f"{CELL}\nnot an arch\n".encode(), "archs.txt:2: malformed arch string"),
])
def test_bad_arch_files_are_one_line_with_the_line(run_isolated, tmp_path, content, fragment):
    f = tmp_path / "archs.txt"
    f.write_bytes(content)
    one_line_error(run_isolated("score", "--archs", f, "--proxies", "params", "--no-store",
                                "--out", tmp_path / "o"), fragment)


def test_a_utf8_bom_is_accepted(run_isolated, tmp_path):
    f = tmp_path / "archs.txt"
    f.write_bytes(b"\xef\xbb\xbf" + CELL.encode() + b"\n")
    r = run_isolated("score", "--archs", f, "--proxies", "params", "--no-store", "--workers", 1,
                     "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
