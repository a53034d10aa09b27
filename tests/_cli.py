"""Assertions shared by the CLI tests."""


def one_line_error(result, fragment):
    """A user error: exit code 2 and exactly one line, ``zcnas: error: ...fragment...``."""
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("zcnas: error: ") and fragment in lines[0], lines[0]
