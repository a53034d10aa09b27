"""A watchdog for the local Ray instance zcnas starts: when the driver dies (however: even
SIGKILL), the processes Ray started for it are killed at once, instead of lingering until Ray
notices the missing driver (its agents can take a minute).

    python -m zcnas.runtime.reaper DRIVER_PID PID [PID ...]

Linux only (it reads ``/proc``); elsewhere Ray's own clean-up is left to do the work.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
    return out


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    driver, pids = int(argv[0]), [int(p) for p in argv[1:]]
    while alive(driver):
        time.sleep(0.25)
    doomed = set(pids)
    for p in pids:
        doomed.update(descendants(p))
    for p in doomed:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
