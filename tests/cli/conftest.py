"""The CLI runner shared by the command tests: no data or cache from the environment."""

import pytest
from click.testing import CliRunner

from zcnas.cli import main


@pytest.fixture
def run_isolated(monkeypatch, tmp_path):
    """Invoke ``zcnas ARGS...`` with no ZCNAS_DATA / TORCH_HOME and a private score cache."""
    monkeypatch.delenv("TORCH_HOME", raising=False)
    monkeypatch.delenv("ZCNAS_DATA", raising=False)
    monkeypatch.setenv("ZCNAS_CACHE", str(tmp_path / "cache"))

    def _run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    return _run
