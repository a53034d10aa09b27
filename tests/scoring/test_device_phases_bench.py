"""benchmarks.device_phases: every phase timed, each proxy's share of the suite's time."""

from benchmarks import device_phases as bench


def test_report_times_every_phase_and_each_proxys_share(tmp_path, data_root):
    out = tmp_path / "r.txt"
    report = bench.main(["--device", "cpu", "--archs", "2", "--warmup", "1", "--suite",
                         "synflow,params", "--data", str(data_root), "--out", str(out)])
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]]
            for line in report.splitlines()
            if len(line.split()) == 3 and line.split()[0] in ("build", "place", "score",
                                                               "synflow", "params")}
    assert set(rows) == {"build", "place", "score", "synflow", "params"}
    assert all(len(v) == 2 and min(v) >= 0 for v in rows.values())
    assert rows["build"][0] > 0 and rows["score"][0] > 0
    # the proxies' shares are parts of the suite's time on the cell
    assert 0 < rows["synflow"][0] + rows["params"][0] <= rows["score"][0]
    assert "2 cells" in report and "after 1 to warm up" in report
    assert out.read_text().strip() == report
