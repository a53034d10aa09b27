"""Where data lives: an explicit argument, then ``ZCNAS_DATA``, then ``TORCH_HOME``.

Data is never looked for inside the installed package and never downloaded implicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

from zcnas.errors import DataFolderError, DataNotFoundError

ENV_DATA = "ZCNAS_DATA"
ENV_TORCH_HOME = "TORCH_HOME"


def data_roots(root: str | os.PathLike | None = None, *, must_exist: bool = True
               ) -> list[Path]:
    """The folders searched for data, in order of precedence.

    ``root`` (an argument, ``--data``) wins, and must be an existing folder (one line naming
    it otherwise, unless ``must_exist=False``: a download may create it); otherwise
    ``$ZCNAS_DATA``, then ``$TORCH_HOME`` (where the official NATS-Bench archives
    conventionally live). Environment folders that do not exist are kept in the list so that
    error messages can name them.
    """
    if root is not None:
        p = Path(root).expanduser()
        if must_exist and not p.is_dir():
            what = "is not a folder" if p.exists() else "does not exist"
            raise DataFolderError(f"the data folder {p} (--data) {what}")
        return [p]
    roots = []
    for var in (ENV_DATA, ENV_TORCH_HOME):
        value = os.environ.get(var)
        if value:
            roots.append(Path(value).expanduser())
    return roots


def find_data(
    candidates: list[str],
    root: str | os.PathLike | None = None,
    *,
    what: str,
) -> Path:
    """Return the first existing ``root/candidate`` over all data roots and candidates.

    Raises :class:`DataNotFoundError` with one line naming every place searched and the
    variable to set.
    """
    roots = data_roots(root)
    for r in roots:
        for cand in candidates:
            p = r / cand
            if p.exists():
                return p
    if not roots:
        raise DataNotFoundError(
            f"{what} not found: no data folder given; pass --data PATH or set {ENV_DATA}"
        )
    searched = ", ".join(str(r / c) for r in roots for c in candidates)
    raise DataNotFoundError(
        f"{what} not found (searched {searched}); pass --data PATH or set {ENV_DATA}"
    )
