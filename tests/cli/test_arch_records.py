"""`zcnas arch INDEX` against an official archive whose record is missing or damaged: a
missing record is `n/a`, a damaged one is an error (one line, exit 2), never `n/a`."""

from __future__ import annotations

import bz2
import pickle
import random

import pytest

from tests._cli import one_line_error
from zcnas.lookup.archive import ARCHIVE_DIRS

TSS = ARCHIVE_DIRS["nats-tss"]


@pytest.fixture
def data(tmp_path, sample_archive):
    """A data folder whose only lookup is a copy of the sample tss archive (records 0, 11,
    284; no compact table), so that `zcnas arch` reads the archive."""
    root = tmp_path / "data"
    folder = root / TSS
    folder.mkdir(parents=True)
    for f in (sample_archive / TSS).iterdir():
        (folder / f.name).symlink_to(f)
    return root


def record_11(root):
    path = root / TSS / "000011.pickle.pbz2"
    real = path.resolve().read_bytes()
    path.unlink()
    return path, real


DAMAGE = {
    "truncated": lambda real: real[: len(real) // 2],
    "random-bytes": lambda real: random.Random(11).randbytes(len(real)),
    "not-bz2": lambda real: b"not a bz2 stream",
    "not-a-record": lambda real: bz2.compress(pickle.dumps(["a", "list"])),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_record_is_an_error_not_na(run_isolated, data, damage):
    path, real = record_11(data)
    path.write_bytes(DAMAGE[damage](real))
    result = run_isolated("arch", "11", "--data", data)
    one_line_error(result, "000011.pickle.pbz2")
    assert "n/a" not in result.output


def test_a_missing_record_is_na(run_isolated, data):
    path, _ = record_11(data)
    result = run_isolated("arch", "11", "--data", data)
    assert result.exit_code == 0, result.output
    assert "n/a" in result.output and "index       11" in result.output


def test_a_present_record_gives_accuracies(run_isolated, data):
    result = run_isolated("arch", "11", "--data", data)
    assert result.exit_code == 0, result.output
    assert "n/a" not in result.output and "sample: records for 3 of 15625" in result.output
