"""benchmarks.foresight_speed: the live convolutions it groups cells by, and each side's best
of its rounds per cell (the peer's times read from a file, zcnas's timer replaced by a fake)."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from benchmarks import foresight_speed
from benchmarks.scoring_speed import sample_archs


@pytest.mark.parametrize(("arch", "convs"), [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
     "nor_conv_3x3~2|", 6),
    # node 1 reaches the output only through `none`: its convolution is dead
    ("|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|skip_connect~2|", 0),
    # nodes 1 and 2 reach the output only through `none`: all three convolutions are dead
    ("|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|", 0),
    ("|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|+|none~0|nor_conv_3x3~1|nor_conv_1x1~2|", 4),
])
def test_live_convolutions(arch, convs):
    assert foresight_speed.live_convs(arch) == convs


def test_each_side_keeps_its_best_round(data_root, tmp_path, monkeypatch):
    archs = sample_archs(3, 0)
    times = tmp_path / "foresight.csv"
    pd.DataFrame({"arch": archs, "foresight_s": [6.0, 6.0, 6.0]}).to_csv(times, index=False)
    calls: dict[str, int] = {}

    def fake_timer(_bank):
        def run(arch):
            calls[arch] = calls.get(arch, 0) + 1
            total = 5.0 if calls[arch] % 2 else 3.0  # every second round faster
            return {**{p: 0.0 for p in foresight_speed.ZCNAS}, "total": total}
        return run

    monkeypatch.setattr(foresight_speed, "zcnas_timer", fake_timer)
    monkeypatch.setattr(foresight_speed, "freeze_heap", lambda: None)
    out = tmp_path / "out.txt"
    monkeypatch.setattr(sys, "argv", [
        "foresight_speed", "--foresight-times", str(times), "--archs", "3", "--rounds", "2",
        "--data", str(data_root), "--out", str(out)])
    foresight_speed.main()
    df = pd.read_csv(out.with_suffix(".csv"))
    assert list(df["arch"]) == archs
    # archs[0] also ran once as the warm-up, so its two timed rounds are its 2nd and 3rd calls
    assert list(df["zcnas_s"]) == [3.0, 3.0, 3.0]
    assert list(df["foresight_s"]) == [6.0, 6.0, 6.0]
    assert list(df["live_convs"]) == [foresight_speed.live_convs(a) for a in archs]
    report = out.read_text()
    assert "zcnas faster by 2.00x" in report
    assert "best of 2 round(s) per cell (zcnas; foresight's from the file)" in report
    assert "live convolutions" in report


def test_no_rounds_is_refused_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(sys, "argv", ["foresight_speed", "--foresight-times",
                                      str(tmp_path / "t.csv"), "--rounds", "0"])
    with pytest.raises(SystemExit) as exc:
        foresight_speed.main()
    assert exc.value.code == 2
    assert "--rounds must be at least 1, not 0" in capsys.readouterr().err
