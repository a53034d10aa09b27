"""Fixtures for the lookup tests: the reference data (``ZCNAS_DATA``) and fake archives.

Tests that need the real files skip cleanly when ``ZCNAS_DATA`` is unset; the fake archives
are built in ``tmp_path`` from the real sample records (as NATS-Bench's own ``fake_torch_dir``).
"""

from __future__ import annotations

import bz2
import pickle
import shutil
from pathlib import Path

import pytest

TSS_DIR = "NATS-tss-v1_0-3ffb9-simple"
SSS_DIR = "NATS-sss-v1_0-50262-simple"
SAMPLE_INDICES = (0, 11, 284)


@pytest.fixture(scope="session")
def lookup_root(data_root) -> Path:
    return data_root


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


@pytest.fixture(scope="session")
def tss_archive_dir(lookup_root) -> Path:
    return _need(lookup_root / "nats-bench-sample" / TSS_DIR)


@pytest.fixture(scope="session")
def sss_archive_dir(lookup_root) -> Path:
    return _need(lookup_root / "nats-bench-sample" / SSS_DIR)


@pytest.fixture(scope="session")
def table_csv(lookup_root) -> Path:
    return _need(lookup_root / "nats-tss" / "tss_test_accuracy.csv")


@pytest.fixture(scope="session")
def table(table_csv):
    from zcnas.lookup import CompactTable

    return CompactTable(table_csv)


@pytest.fixture(scope="session")
def tss_archive(tss_archive_dir):
    from zcnas.lookup import NatsArchive

    return NatsArchive(tss_archive_dir, "nats-tss")


@pytest.fixture(scope="session")
def sss_archive(sss_archive_dir):
    from zcnas.lookup import NatsArchive

    return NatsArchive(sss_archive_dir, "nats-sss")


@pytest.fixture
def small_complete_archive(tmp_path, tss_archive_dir) -> Path:
    """A 'complete' 3-architecture tss archive: the sample's records 0, 11, 284 as 0, 1, 2."""
    with bz2.open(tss_archive_dir / "meta.pickle.pbz2", "rb") as fh:
        meta = pickle.load(fh)
    out = tmp_path / TSS_DIR
    out.mkdir()
    archs = [meta["meta_archs"][i] for i in SAMPLE_INDICES]
    small = dict(meta, meta_archs=archs, total_archs=len(archs))
    with bz2.open(out / "meta.pickle.pbz2", "wb") as fh:
        pickle.dump(small, fh)
    for new, old in enumerate(SAMPLE_INDICES):
        shutil.copy(tss_archive_dir / f"{old:06d}.pickle.pbz2", out / f"{new:06d}.pickle.pbz2")
    return out
