"""Errors a user can cause.

Every error a user can fix (a malformed arch string, an unknown dataset, a missing or corrupt
file) is a :class:`UserError`. The CLI prints its message as one line and exits with code 2;
``--debug`` shows the traceback. Library callers catch the specific subclasses.
"""


class UserError(Exception):
    """An error caused by user input; its message names the fix."""

    exit_code = 2


class ArchError(UserError, ValueError):
    """A malformed or unknown architecture string or index."""


class UnknownNameError(UserError, KeyError):
    """An unknown dataset, space, proxy or other registered name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DataNotFoundError(UserError, FileNotFoundError):
    """A data file or folder that is needed is not where we looked."""


class CorruptDataError(UserError):
    """A data file exists but cannot be read or has the wrong content."""


class OutsideSupernetError(ArchError):
    """A genotype that uses an op the (pruned) supernet no longer holds."""


class CheckpointError(UserError):
    """A training checkpoint that is missing, unreadable or made for another run."""


def one_line(err: BaseException, *, with_type: bool = True) -> str:
    """``err`` as one line: its type and its message with every run of whitespace (newlines
    included) collapsed, for messages that quote an underlying error."""
    text = " ".join(str(err).split())
    if not with_type:
        return text or type(err).__name__
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
