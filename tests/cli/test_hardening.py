"""Hostile input, one case each: a clear line and exit 2 before any work, never a traceback, no
output lost or overwritten, no checkpoint trusted blindly."""

from __future__ import annotations

import json
import os

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


# --- the cases below were fixed without a test of their own; each now has one -------------------

@pytest.mark.parametrize("args", [
    ("arch", "|none~²|+|none~0|none~1|+|none~0|none~1|none~2|"),
    ("arch", "²:16:24:32:40", "--space", "sss"),
    ("arch", "²"),
])
def test_non_ascii_digits_are_one_line(run_isolated, args):
    """``'²'.isdigit()`` is True but ``int('²')`` fails: it once ended as an internal error."""
    r = run_isolated(*args)
    assert r.exit_code == 2, r.output
    assert len(r.output.strip().splitlines()) == 1 and "internal error" not in r.output


def test_the_lookup_takes_no_non_ascii_index(data_root):
    from zcnas.errors import UserError
    from zcnas.lookup import open_benchmark

    bench = open_benchmark("nats-tss", root=data_root, kind="table")
    with pytest.raises(UserError):
        bench.accuracy("²", "cifar10")


def test_concurrent_writes_of_one_file_never_clash(tmp_path):
    """Two runs writing one checkpoint (`--method rea,rea`, two searches on one --out) once
    shared a fixed NAME.tmp: every write now has its own temporary file."""
    import threading

    import torch

    from zcnas._io import atomic_write
    from zcnas.fidelity.train import save_state

    target, errors = tmp_path / "run.json", []

    def writer(k: int) -> None:
        try:
            for n in range(100):
                atomic_write(target, json.dumps({"writer": k, "n": n, "pad": "x" * 5000}))
                save_state(tmp_path / "ck.pt", {"writer": k, "n": n})
        except Exception as err:  # noqa: BLE001 - any failure fails the test
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert json.loads(target.read_text())["n"] == 99  # a whole file, never a mix
    assert torch.load(tmp_path / "ck.pt")["n"] == 99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt", "run.json"]  # no temp left


def test_an_unreadable_arch_file_is_one_line(run_isolated, tmp_path, monkeypatch):
    from pathlib import Path

    f = tmp_path / "archs.txt"
    f.write_text(CELL + "\n")
    real = Path.read_bytes

    def denied(self):
        if self == f:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", denied)  # tests run as root: chmod would not do
    one_line_error(run_isolated("score", "--archs", f, "--proxies", "params", "--no-store",
                                "--out", tmp_path / "o"), "cannot read")


def test_training_on_a_missing_gpu_is_one_line(run_isolated, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    one_line_error(run_isolated("train", CELL, "--device", "cuda", "--epochs", 1, "--limit",
                                10), "cuda")


def test_a_non_finite_proxy_parameter_is_one_line_with_the_store_on(run_isolated, tmp_path):
    for value in ("nan", "inf", "-inf"):
        r = run_isolated("score", "--archs", "2", "--proxies", f"zen(mixup_gamma={value})",
                         "--store", tmp_path / "s.sqlite", "--workers", 1,
                         "--out", tmp_path / "o")
        one_line_error(r, "finite")
    assert not (tmp_path / "o.parquet").exists()


@pytest.mark.parametrize("option", ["--max-params", "--max-flops"])
@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "x"])
def test_size_constraints_must_be_positive_and_finite(run_isolated, option, value):
    r = run_isolated("search", "--lookup", "none", "--fitness", "params", "--no-store",
                     option, value)
    assert r.exit_code == 2, r.output
    assert option in r.output and len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.parametrize("command", [
    ("train", CELL, "--epochs", "1", "--limit", "10", "--checkpoint"),
    ("train", CELL, "--epochs", "1", "--limit", "10", "--out"),
    ("supernet", "train", "--epochs", "1", "--limit", "10", "--out"),
])
def test_training_outputs_are_checked_before_any_work(run_isolated, tmp_path, command):
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    for bad, why in ((tmp_path / "FILE" / "x", ("is a file",)),
                     (tmp_path / "DIR", ("is a folder", "is a directory"))):
        r = run_isolated(*command, bad)
        one_line_error(r, "")
        assert any(w in r.output for w in why), r.output
        assert "epoch " not in r.output  # refused before the first epoch


def test_correlate_outputs_are_checked_before_any_work(run_isolated, tmp_path, data_root):
    (tmp_path / "FILE").write_text("x")
    table = tmp_path / "t.csv"
    table.write_text(f"arch,proxy,value\n{CELL},params,1.0\n")
    one_line_error(run_isolated("correlate", table, "--data", data_root, "--out",
                                tmp_path / "FILE"), "is a file")


def test_info_reads_each_file_and_reports_damage(run_isolated, data_root, tmp_path):
    """A truncated image file, a random lookup table and a truncated archive record are
    reported as damaged, with why; the healthy copies beside them are not."""
    import shutil
    from pathlib import Path

    src = Path(data_root)
    (tmp_path / "cifar10").mkdir()
    npz = (src / "cifar10" / "cifar10-subset.npz").read_bytes()
    (tmp_path / "cifar10" / "cifar10-subset.npz").write_bytes(npz[: len(npz) // 3])
    (tmp_path / "nats-tss").mkdir()
    (tmp_path / "nats-tss" / "tss_test_accuracy.csv").write_bytes(os.urandom(4096))
    arch = tmp_path / "nats-bench-sample" / "NATS-tss-v1_0-3ffb9-simple"
    shutil.copytree(src / "nats-bench-sample" / "NATS-tss-v1_0-3ffb9-simple", arch)
    rec = arch / "000000.pickle.pbz2"
    rec.chmod(0o644)
    rec.write_bytes(rec.read_bytes()[:500])
    r = run_isolated("info", "--data", tmp_path)
    assert r.exit_code == 0, r.output
    rows = [tuple(line.split()[:3]) for line in r.output.splitlines()
            if line.split()[:1] in (["images"], ["lookup"])]
    assert ("images", "cifar10", "damaged:") in rows
    assert sum(1 for k in rows if k[:2] == ("lookup", "nats-tss") and k[2] == "damaged:") == 2
    assert ("lookup", "nats-sss", "missing") in rows
    healthy = run_isolated("info", "--data", data_root)
    assert "damaged" not in healthy.output
