"""Fixtures for the data tests: the shared reference data (skipped when absent) and a clean cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from zcnas.data import clear_cache

SUBSET = Path("cifar10") / "cifar10-subset.npz"


@pytest.fixture
def shared_root(data_root) -> Path:
    """The folder ``$ZCNAS_DATA`` names, holding the real CIFAR-10 subset."""
    root = data_root
    if not (root / SUBSET).is_file():
        pytest.skip(f"{root / SUBSET} not found")
    return root


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def no_env_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    """No data root from the environment: only explicit ``root`` arguments count."""
    monkeypatch.delenv("ZCNAS_DATA", raising=False)
    monkeypatch.delenv("TORCH_HOME", raising=False)
