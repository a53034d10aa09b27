"""`zcnas train` and `zcnas supernet train|score|prune`: outputs, resume, one-line errors."""

import json

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
    "nor_conv_3x3~2|"
ZERO = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
SMALL = ("--limit", 96, "--valid", 32)


def test_train_writes_history_and_resumes(run_isolated, data_root, tmp_path):
    ck, out = tmp_path / "t.pt", tmp_path / "t.json"
    r = run_isolated("train", 11, "--epochs", 1, "--data", data_root, *SMALL,
                     "--batch-size", 32, "--checkpoint", ck, "--out", out)
    assert r.exit_code == 0, r.output
    assert "held-out accuracy" in r.output and "s/epoch" in r.output
    res = json.loads(out.read_text())
    assert res["epochs"] == 1 and len(res["history"]) == 1 and res["seconds_per_epoch"] > 0
    again = run_isolated("train", 11, "--epochs", 1, "--data", data_root, *SMALL,
                         "--batch-size", 32, "--checkpoint", ck)
    assert "resumed from epoch 1" in again.output
    assert json.loads(out.read_text())["valid_acc"] == res["valid_acc"]


def test_train_errors_are_one_line(run_isolated, data_root, tmp_path):
    r = run_isolated("train", A, "--data", data_root, *SMALL, "--checkpoint",
                     tmp_path / "none.pt", "--resume")
    assert r.exit_code == 2 and "no checkpoint at" in r.output
    lines = r.output.strip().splitlines()  # refused before the "training ..." header
    assert len(lines) == 1 and lines[0].startswith("zcnas: error: --resume: no checkpoint")
    r = run_isolated("train", A, "--data", data_root, *SMALL, "--resume")
    assert r.exit_code == 2 and "--resume needs --checkpoint" in r.output
    for valid in ("nan", "1.0", "0", "-3", "x"):
        r = run_isolated("train", A, "--data", data_root, *SMALL, "--valid", valid)
        assert r.exit_code == 2 and "--valid" in r.output, (valid, r.output)
    r = run_isolated("supernet", "train", "--epochs", 0, "--out", tmp_path / "sn0.pt",
                     "--data", data_root, *SMALL)
    assert r.exit_code == 2 and not (tmp_path / "sn0.pt").exists()
    r = run_isolated("train", "|nor_conv_3x3~0|", "--data", data_root)
    assert r.exit_code == 2 and "malformed arch string" in r.output


def test_supernet_train_score_prune(run_isolated, data_root, tmp_path):
    sn, pruned = tmp_path / "sn.pt", tmp_path / "p.pt"
    r = run_isolated("supernet", "train", "--epochs", 1, "--out", sn, "--data", data_root,
                     *SMALL)
    assert r.exit_code == 0, r.output
    assert "supernet at epoch 1" in r.output and sn.is_file()
    r = run_isolated("supernet", "score", A, 11, "--supernet", sn, "--data", data_root)
    assert r.exit_code == 0, r.output
    assert A in r.output and "held-out acc" in r.output
    r = run_isolated("supernet", "prune", A, "--supernet", sn, "--out", pruned, "--data",
                     data_root)
    assert r.exit_code == 0 and "1 cells remain" in r.output
    r = run_isolated("supernet", "score", ZERO, "--supernet", pruned, "--data", data_root)
    assert r.exit_code == 2 and "pruned from the supernet" in r.output
    r = run_isolated("supernet", "score", A, "--supernet", tmp_path / "x.pt", "--data",
                     data_root)
    assert r.exit_code == 2 and "no supernet checkpoint" in r.output


def test_oneshot_from_the_command_line_without_a_lookup(run_isolated, data_root):
    r = run_isolated("search", "--method", "oneshot", "--lookup", "none", "--data", data_root,
                     "--budget", 15, "--population", 8, "--warmup-epochs", 0.1,
                     "--train-epochs", 1, "--image-limit", 120, "--fitness", "synflow",
                     "--no-store", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "stage 1: weight-sharing supernet" in r.output
    assert "cells at synflow" in r.output and "s of compute" in r.output


def test_oneshot_settings_are_checked_before_any_run(run_isolated, data_root):
    for flag, value, msg in (("--population", 2, "at least 4"),
                             ("--warmup-epochs", -1, ">= 0"),
                             ("--train-epochs", 0, "epochs must be >= 1")):
        r = run_isolated("search", "--method", "oneshot", "--lookup", "none", "--data",
                         data_root, "--fitness", "synflow", flag, value)
        assert r.exit_code == 2 and msg in r.output, r.output
