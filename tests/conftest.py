"""Shared fixtures: the reference data folder (``ZCNAS_DATA``), skipped cleanly when absent."""

from __future__ import annotations

import os
import shutil
import subprocess
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


def _writable(target: Path) -> bool:
    """Whether this process can really write ``target`` (a file, or a folder's entries)."""
    try:
        if target.is_dir():
            probe = target / ".write-probe"
            probe.touch()
            probe.unlink()
        else:
            with open(target, "ab"):
                pass
        return True
    except OSError:
        return False


@pytest.fixture
def unwritable():
    """``make(path)`` takes write permission away from a file or folder: ``chmod`` first, and
    where that does not stop this process (root), the immutable attribute. Skips only when
    the OS still lets the write through. Everything is restored afterwards."""
    done = []

    def make(target: Path) -> Path:
        mode = target.stat().st_mode
        done.append(("chmod", target, mode))
        target.chmod(0o555 if target.is_dir() else 0o444)
        if _writable(target) and shutil.which("chattr"):
            proc = subprocess.run(["chattr", "+i", str(target)], capture_output=True)
            if proc.returncode == 0:
                done.append(("chattr", target, None))
        if _writable(target):
            pytest.skip(f"this process can still write {target} (root without chattr +i)")
        return target

    yield make
    for what, target, mode in reversed(done):
        if what == "chattr":
            subprocess.run(["chattr", "-i", str(target)], check=True)
        else:
            target.chmod(mode)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line for the tests skipped because the reference data is absent (instead of one
    SKIPPED line each)."""
    skipped = terminalreporter.stats.get("skipped", [])
    need = sum(1 for rep in skipped if "ZCNAS_DATA" in str(getattr(rep, "longrepr", "")))
    if need:
        terminalreporter.write_line(
            f"{need} tests need the reference data: set ZCNAS_DATA to its folder "
            "(CI: ZCNAS_DATA=../shared/data) to run them")
