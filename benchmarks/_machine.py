"""What machine a benchmark ran on (for the header of its output), writing that output, and
setting a timing process up as a scoring worker."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def emit(report: str, out: Path | None) -> None:
    """Print ``report`` and, when ``out`` is given, write it there (folders made)."""
    print(report)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report + "\n")


def as_scoring_worker() -> bool:
    """Set this process up as the process pool's scoring workers are
    (:func:`zcnas.scoring.engine.init_scoring`): its heap frozen out of the garbage collector's
    full passes (:func:`zcnas.scoring.engine.freeze_heap`) and the memory its passes free kept
    (:func:`zcnas.runtime.allocator.tune_allocator`), so a timing is not charged for either.
    Returns whether the allocator is tuned."""
    from zcnas.runtime.allocator import tune_allocator
    from zcnas.scoring.engine import freeze_heap

    freeze_heap()
    return tune_allocator()
