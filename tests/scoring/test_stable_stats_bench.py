"""benchmarks.stable_stats: both ways on the same gradients, and the report says whether their
scores are bitwise equal (a way that differs is counted out)."""

from benchmarks import stable_stats as bench


def test_report_times_both_ways_and_counts_equal_scores(tmp_path, data_root):
    out = tmp_path / "r.txt"
    report = bench.main(["--archs", "2", "--rounds", "1", "--batch-sizes", "8",
                         "--data", str(data_root), "--out", str(out)])
    rows = [line.split() for line in report.splitlines() if line.startswith("2 x 8")]
    assert rows[0][3:5] == ["per", "layer"] and float(rows[0][5]) > 0
    assert rows[1][3:6] == ["side", "by", "side"] and float(rows[1][6]) > 0
    assert rows[1][7].endswith("x") and rows[1][8] == "2/2"
    assert out.read_text().strip() == report


def test_a_way_that_differs_is_counted_out(monkeypatch, data_root):
    import zcnas_proxies.stable as stable

    real = stable.stable_score
    monkeypatch.setattr(stable, "stable_score", lambda g, r, c: real(g, r, c) + 1.0)
    report = bench.main(["--archs", "2", "--rounds", "1", "--batch-sizes", "8",
                         "--data", str(data_root)])
    assert report.splitlines()[-1].split()[-1] == "0/2"
