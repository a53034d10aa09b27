"""How much memory a scoring process keeps for itself.

torch's CPU tensors come from ``malloc``. glibc serves a request above its mmap threshold
(128 KiB at first, raised to the size of the largest mapping freed so far, at most 32 MiB on
64-bit) with fresh pages from the OS and unmaps them on ``free``, and it trims the heap's top
back to the OS whenever more than its trim threshold lies free there (128 KiB at first, then
twice the raised mmap threshold). A scoring pass frees and re-allocates activations and
gradients of 1-8 MB by the hundred, so the kernel maps and zeroes the same memory over and
over: foresight's six proxies scored by zcnas (batch 64, one thread, the 2-core EPYC; network
builds and synflow included) took 46,604 page faults and 0.178 s of system time per cell,
against 9,078 and 0.046 s with the thresholds fixed as :func:`tune_allocator` fixes them,
1.14x faster (``benchmarks/allocator.py``, both sides in processes of their own,
``results/benchmarks/allocator-cpu.txt``).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

#: glibc's ``mallopt`` parameters (malloc.h): the free memory kept at the top of a heap before
#: ``free`` returns it to the OS, and the request size from which ``malloc`` maps pages of
#: its own instead of carving the heap
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: requests up to 32 MiB (every activation of an NB201 network at batch 128) come from the
#: heap: the ceiling of glibc's own dynamic threshold on 64-bit (a 32-bit glibc refuses it,
#: and then nothing is changed)
MMAP_THRESHOLD = 32 << 20
#: up to 1 GiB of freed memory stays at the top of each heap (arena): a pass's working set is
#: a few hundred MB; with 256 MiB, a check of 8 cells took 48,491 faults per cell again
TRIM_THRESHOLD = 1 << 30
#: a user's own malloc settings (glibc's environment variables and tunables) or another
#: allocator preloaded: then this module leaves the allocator alone
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                  "MALLOC_MMAP_MAX_", "GLIBC_TUNABLES", "LD_PRELOAD")

_TUNED: bool | None = None  # None: not tried yet
_LOCK = threading.Lock()


def tune_allocator() -> bool:
    """Fix glibc's thresholds at :data:`MMAP_THRESHOLD` and :data:`TRIM_THRESHOLD` for the
    rest of the process, once (see the module docstring); returns whether they are. Nothing
    is changed off glibc, where the user set malloc's thresholds or tunables, or preloaded a
    library (another allocator, say). The price: the process keeps up to ``TRIM_THRESHOLD``
    of freed memory per heap instead of returning it at once. The ``zcnas`` command and the
    process pool's workers call it; a program that scores in its own process may call it
    too."""
    global _TUNED
    with _LOCK:
        if _TUNED is None:
            _TUNED = not any(os.environ.get(k) for k in _USER_SETTINGS) and _glibc_mallopt(
                ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)))
        return _TUNED


def _glibc_mallopt(settings: tuple[tuple[int, int], ...]) -> bool:
    """``mallopt(param, value)`` for each setting in order if this process runs on glibc,
    stopping at the first refused; whether every one was taken. The mmap threshold goes
    first: setting either one ends glibc's dynamic threshold, so a refused mmap threshold
    must leave the trim threshold untouched (the defaults then stay whole)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc's own symbol (not musl's, say)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in settings)
