"""The CompactTable training-time constants are regenerable from the sample archive."""

from __future__ import annotations

import pytest

from zcnas.lookup import TRAIN_TIME_FIT, TRAIN_TIME_REL_TOLERANCE
from zcnas.lookup.timefit import fit_train_time, format_constants, main


@pytest.fixture(scope="module")
def fits(tss_archive):
    return fit_train_time(tss_archive)


def test_constants_match_a_refit(fits):
    assert set(fits) == set(TRAIN_TIME_FIT)
    for key, f in fits.items():
        a, b = TRAIN_TIME_FIT[key]
        assert f.a == pytest.approx(a, rel=1e-6, abs=1e-6), key
        assert f.b == pytest.approx(b, rel=1e-6, abs=1e-6), key


def test_residuals_within_stated_tolerance(fits):
    for f in fits.values():
        assert f.indices == (0, 11, 284)
        assert max(abs(r) for r in f.relative_residuals) <= TRAIN_TIME_REL_TOLERANCE
        # least squares with an intercept: residuals sum to zero
        assert sum(f.residuals) == pytest.approx(0.0, abs=1e-9)


def test_printed_block_is_python(fits, tss_archive_dir, capsys):
    block = format_constants(fits)
    parsed = eval("{" + block + "}")  # noqa: S307 - our own generated literal
    assert parsed.keys() == TRAIN_TIME_FIT.keys()
    assert main([str(tss_archive_dir)]) == 0
    out = capsys.readouterr().out
    assert "('cifar10', 200)" in out and "residuals" in out
