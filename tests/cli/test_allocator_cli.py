"""The zcnas command keeps the memory its passes free; a caller's process running the CLI's
function (a test's CliRunner, a script) is left as it was."""

import sys

import pytest
from click.testing import CliRunner

from zcnas.cli import main
from zcnas.runtime import allocator


@pytest.fixture
def tuned(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "tune_allocator", lambda: calls.append(1) or True)
    return calls


def test_the_command_line_tunes_the_allocator(monkeypatch, tuned):
    monkeypatch.setattr(sys, "argv", ["zcnas", "--version"])
    with pytest.raises(SystemExit) as end:
        main()
    assert end.value.code == 0
    assert tuned == [1]


def test_a_callers_process_is_left_alone(tuned):
    assert CliRunner().invoke(main, ["--version"]).exit_code == 0
    assert tuned == []
