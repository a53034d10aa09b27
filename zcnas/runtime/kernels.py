"""Small C kernels for the CPU, compiled on first use and loaded with ctypes.

torch's CPU batch norm in train mode (float32, one thread) is slow for NB201's shapes: on the
2-core EPYC its forward takes about five times a copy of its input channels-last and fifteen
times NCHW, where one read for the statistics and a read and a write for the output would do
(its per-row loops over 16-64 channels are short; its NCHW statistics are not vectorised).
Batch norm is 10-14% of a scoring pass (``results/benchmarks/scoring-floor-cpu.txt``). The
kernels here (``benchmarks/batchnorm.py`` times them against torch's, side by side):

- ``bn_forward``: each channel's mean and biased variance in one read, about the channel's
  first value (a shift, so a large mean does not cancel the variance away), summed in float32
  over 64 rows (channels-last) or 16 lanes of a plane (NCHW) and across them in
  float64; then ``y = x * alpha + beta`` per channel (torch's form, ``alpha = invstd * w``,
  ``beta = b - mean * alpha``);
- ``bn_backward`` (channels-last): ``sum(g)`` and ``sum(g (x - mean))`` per channel in one
  read of ``g`` and ``x``, then ``gx = (g - sum(g)/M - (x - mean) k) invstd w`` with
  ``k = sum(g (x - mean)) invstd^2 / M`` (torch's formula). NCHW keeps torch's backward,
  which is fast there.

Their statistics are more accurate than torch's float32 ones (about 1e-7 against 1e-5
relative to a float64 computation, on 128 x 16 x 32 x 32 with mean 5 and std 3), so their
values differ from torch's by torch's rounding.

The source is compiled with the C compiler (``$CC``, else ``cc``) into
``$ZCNAS_CACHE/kernels`` (default ``$XDG_CACHE_HOME/zcnas/kernels`` or
``~/.cache/zcnas/kernels``), once per source, compiler and flags (about half a second); on
x86-64 with GCC each kernel has an AVX2 and a baseline clone, picked at load time for the CPU
it runs on. Without a compiler, where the build fails, or with ``ZCNAS_KERNELS=0``,
:func:`library` returns None and callers keep torch's kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from importlib import resources
from pathlib import Path

FLAGS = ("-O3", "-std=c11", "-fPIC", "-shared", "-ffp-contract=off", "-Wno-psabi")

_P, _I = ctypes.c_void_p, ctypes.c_int64
_SIGNATURES = {
    "bn_forward": (ctypes.c_int, [_P, _P, _I, _I, _I, ctypes.c_int, ctypes.c_double, _P, _P,
                                  _P, _P, _P]),
    "bn_backward": (ctypes.c_int, [_P, _P, _P, _I, _I, _P, _P, _P, _P, _P]),
}

_LOCK = threading.Lock()
_LIBRARY: ctypes.CDLL | None = None
_TRIED = False
#: why :func:`library` returned None (empty while it has not, or when it loaded)
reason = ""


def enabled() -> bool:
    """Whether the kernels may be used at all (``ZCNAS_KERNELS`` is not ``0``)."""
    return os.environ.get("ZCNAS_KERNELS", "1").strip() not in ("0", "false", "no", "off")


def cache_dir() -> Path:
    root = os.environ.get("ZCNAS_CACHE")
    if root:
        return Path(root) / "kernels"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "zcnas" / "kernels"


def library() -> ctypes.CDLL | None:
    """The compiled kernels (built on the first call, then from the cache), or None where
    they cannot be had (:data:`reason` says why). Thread-safe; one build per process."""
    global _LIBRARY, _TRIED, reason
    if not enabled():
        reason = "ZCNAS_KERNELS=0"
        return None
    if _TRIED:
        return _LIBRARY
    with _LOCK:
        if not _TRIED:
            try:
                _LIBRARY = _load(_build())
                reason = ""
            except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
                _LIBRARY, reason = None, f"{type(exc).__name__}: {exc}"
            _TRIED = True
    return _LIBRARY


def _compiler() -> str:
    cc = os.environ.get("CC", "cc")
    path = shutil.which(cc)
    if path is None:
        raise RuntimeError(f"no C compiler ({cc!r} not found)")
    return path


def _build() -> Path:
    cc = _compiler()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60,
                             check=False).stdout
    source = resources.files("zcnas.runtime").joinpath("kernels.c").read_text()
    key = hashlib.sha256("\0".join([source, cc, version, *FLAGS]).encode()).hexdigest()[:16]
    target = cache_dir() / f"zcnas-kernels-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "kernels.c"
        src.write_text(source)
        out = Path(tmp) / target.name
        done = subprocess.run([cc, *FLAGS, "-o", str(out), str(src), "-lm"],
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(cc).name} failed: {done.stderr.strip()[-300:]}")
        os.replace(out, target)  # atomic: a concurrent build leaves one whole file
    return target


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib
