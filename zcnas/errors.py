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


class DataFolderError(UserError):
    """A data folder the user named (``--data``, ``root=``) that does not exist or is not a
    folder: never taken for "no data found"."""


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


#: Echoed user input longer than this is cut in error messages.
ECHO_LIMIT = 200


def clip_quoted(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` with every quoted passage (``'...'`` or ``"..."``) longer than ``limit``
    characters cut to its first ``limit`` characters and ``...``, so an error that echoes a
    huge input stays readable."""
    import re

    def cut(m: re.Match) -> str:
        q, body = m.group(1), m.group(2)
        return m.group(0) if len(body) <= limit else f"{q}{body[:limit]}...{q}"

    return re.sub(r"(['\"])(.*?)\1", cut, text)
