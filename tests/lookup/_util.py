"""Helpers shared by the lookup tests."""

SAMPLE = (0, 11, 284)  # the architectures with full records in the sample archives


def one_line(exc) -> str:
    """The message of a ``pytest.raises`` result, asserted to be one non-empty line."""
    msg = str(exc.value)
    assert msg and "\n" not in msg, msg
    return msg
