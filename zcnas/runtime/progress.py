"""Progress bars: rate and ETA on a terminal, an update every 30 s otherwise (logs)."""

from __future__ import annotations

import sys


def progress_bar(total: int, progress: bool | None, *, unit: str, desc: str):
    """A tqdm bar on stderr; ``progress`` False disables it, None means on."""
    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    enabled = True if progress is None else progress
    return tqdm(total=total, disable=not enabled, unit=unit, desc=desc,
                mininterval=0.5 if tty else 30.0, dynamic_ncols=True, file=sys.stderr)
