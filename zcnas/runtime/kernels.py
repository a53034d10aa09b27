"""Small C kernels for the CPU, compiled on first use and loaded with ctypes.

torch's CPU batch norm in train mode (float32, one thread) is slow for NB201's shapes: on the
2-core EPYC its forward takes 5-8x a copy of its input channels-last and 14-21x NCHW
(``results/benchmarks/batchnorm-cpu.txt``), where one read for the statistics and a read and a
write for the output would do (its per-row loops over 16-64 channels are short; its NCHW
statistics are not vectorised). Batch norm is about a tenth of a scoring pass (10.0% of the
default suite, 11.4% of ``ensemble:zcnas``, ``results/benchmarks/scoring-floor-cpu.txt``
before these kernels). The kernels (``kernels.c`` beside this file):

- ``bn_forward``: each channel's mean and biased variance in one read, about a shift (the
  channel's mean over its first 64 rows, or its first image's plane), summed in float32 over
  64 rows (channels-last) or 16 lanes of up to 1,024 values of a plane (NCHW) and across them in
  float64; then ``y = x * alpha + beta`` per channel (torch's form, ``alpha = invstd * w``,
  ``beta = b - mean * alpha``);
- ``bn_backward`` (channels-last): ``sum(g)`` and ``sum(g (x - mean))`` per channel in one
  read of ``g`` and ``x``, then ``gx = (g - sum(g)/M - (x - mean) k) invstd w`` with
  ``k = sum(g (x - mean)) invstd^2 / M`` (torch's formula). NCHW keeps torch's backward,
  which is fast there.

Channels-last, their results are about 1e-7 from a float64 computation against torch's 1e-6
to 2e-5 (on 128 x 16 x 32 x 32 with mean 5 and std 3: torch's float32 statistics); NCHW both
are about 1e-7. So scores move by torch's rounding (within the reference test's tolerances).

The source is compiled with the C compiler (``$CC``, else ``cc``) into
``$ZCNAS_CACHE/kernels`` (default ``$XDG_CACHE_HOME/zcnas/kernels`` or
``~/.cache/zcnas/kernels``), once per source, compiler, machine and flags (about half a
second); on x86-64 with GCC each kernel has an AVX2 and a baseline clone, picked at load time
for the CPU it runs on. Without a compiler, where the build fails, or with ``ZCNAS_KERNELS=0``,
:func:`library` returns None (never raises) and callers keep torch's kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
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
_FAILURE = ""
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
    they cannot be had (:data:`reason` says why). Never raises; thread-safe; one build per
    process."""
    global _LIBRARY, _TRIED, _FAILURE, reason
    if not enabled():
        reason = "ZCNAS_KERNELS=0"
        return None
    if not _TRIED:
        with _LOCK:
            if not _TRIED:
                try:
                    _LIBRARY, _FAILURE = _obtain(), ""
                except Exception as exc:  # noqa: BLE001 - any failure means torch's kernels
                    _LIBRARY, _FAILURE = None, f"{type(exc).__name__}: {exc}"
                _TRIED = True
    reason = _FAILURE
    return _LIBRARY


def _obtain() -> ctypes.CDLL:
    """Load the cached build, or build it; a cached file that does not load (truncated, or
    foreign) is built again once."""
    cc = _compiler()
    source, target = _cached(cc)
    if target.exists():
        try:
            return _load(target)
        except (OSError, AttributeError):
            target.unlink(missing_ok=True)
    _build(cc, source, target)
    return _load(target)


def _cached(cc: str) -> tuple[str, Path]:
    """The source and the cache path of its build by ``cc`` (keyed by the source, the
    compiler and its version, the machine and the flags)."""
    version = subprocess.run([cc, "--version"], capture_output=True, timeout=60,
                             check=False).stdout.decode(errors="replace")
    source = resources.files("zcnas.runtime").joinpath("kernels.c").read_text()
    key = hashlib.sha256("\0".join(
        [source, cc, version, platform.machine(), platform.system(), *FLAGS]).encode())
    return source, cache_dir() / f"zcnas-kernels-{key.hexdigest()[:16]}.so"


def _compiler() -> str:
    cc = os.environ.get("CC", "cc")
    path = shutil.which(cc)
    if path is None:
        raise RuntimeError(f"no C compiler ({cc!r} not found; set CC to one)")
    return path


def _build(cc: str, source: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        src = Path(tmp) / "kernels.c"
        src.write_text(source)
        out = Path(tmp) / target.name
        done = subprocess.run([cc, *FLAGS, "-o", str(out), str(src), "-lm"],
                              capture_output=True, timeout=300, check=False)
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()
            raise RuntimeError(f"{Path(cc).name} failed: {err[-300:]}")
        os.replace(out, target)  # atomic: a concurrent build leaves one whole file


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib
