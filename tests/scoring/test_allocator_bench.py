"""benchmarks.allocator: the two sides alternate in child processes, each cell's best round
counts, and the report says what each side cost."""

import sys

import pytest

from benchmarks import allocator as bench


def _rows(side, archs, seconds):
    return [{"arch": a, "set": name, "seconds": seconds[side], "faults": 10 if side == "tuned"
             else 1000, "system": 0.0} for a in archs for name in bench.SETS]


def test_sides_alternate_and_the_best_round_counts(monkeypatch, capsys):
    order, calls = [], {"glibc defaults": 0, "tuned": 0}
    archs = bench.sample_archs(2, 0)

    def fake(side, args):
        order.append(side)
        calls[side] += 1
        # the first round is slow on both sides: the second must be the one reported
        return _rows(side, archs, {"glibc defaults": 2.0, "tuned": 1.0} if calls[side] > 1
                     else {"glibc defaults": 9.0, "tuned": 9.0})

    monkeypatch.setattr(bench, "run_child", fake)
    monkeypatch.setattr(sys, "argv", ["allocator", "--archs", "2", "--rounds", "2"])
    bench.main()
    out = capsys.readouterr().out
    assert order == ["glibc defaults", "tuned", "tuned", "glibc defaults"]
    for name in bench.SETS:
        line = next(x for x in out.splitlines() if x.startswith(name) and "tuned" in x)
        assert line.split()[-4:] == ["1.000", "10", "0.000", "2.00x"], line


def test_rounds_below_one_are_refused(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["allocator", "--rounds", "0"])
    with pytest.raises(SystemExit) as err:
        bench.main()
    assert err.value.code == 2
    assert "--rounds must be at least 1" in capsys.readouterr().err
