"""Shared fixtures: the reference data folder (``ZCNAS_DATA``), skipped cleanly when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The tests are many small CPU workloads: one intra-op thread each keeps them fast and immune to
# thread oversubscription on a shared machine (set OMP_NUM_THREADS to override).
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def data_root() -> Path:
    value = os.environ.get("ZCNAS_DATA")
    if not value:
        pytest.skip("ZCNAS_DATA is not set to the reference data folder")
    if not Path(value).is_dir():  # set but wrong: fail loudly rather than skip half the suite
        pytest.fail(f"ZCNAS_DATA={value} is not a folder")
    return Path(value).resolve()  # absolute: tests link to it from temporary folders


@pytest.fixture(scope="session")
def tss_table(data_root):
    import pandas as pd

    path = data_root / "nats-tss" / "tss_test_accuracy.csv"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def sample_archive(data_root) -> Path:
    path = data_root / "nats-bench-sample"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    return path
