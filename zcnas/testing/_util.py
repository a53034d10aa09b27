"""Helpers shared by the conformance checks (value and tensor comparison, global state)."""

from __future__ import annotations

import math
import pickle
import random
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from zcnas.proxy import Proxy

NEEDS_IMAGES = "needs real images; pass data_root"
DEFAULT_BATCH_SIZE = 8
N_RANDOM_ARCHS = 2
_BOGUS_PARAM = "no_such_parameter_xyz"
_PLAIN = (bool, int, float, str, type(None))
_MISSING = object()


def _all_collect(kind: str) -> frozenset[str]:
    if kind == "ce":
        from zcnas.scoring.passes import CE_COLLECT

        return CE_COLLECT
    return frozenset()


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def _same_value(a: Any, b: Any, *, exact: bool = True) -> bool:
    """Bitwise equal as float64 (NaN == NaN); with ``exact=False`` a 1e-5 relative slack."""
    try:
        fa, fb = float(a), float(b)
    except (TypeError, ValueError, RuntimeError):
        return False
    if _bits(fa) == _bits(fb) or (math.isnan(fa) and math.isnan(fb)):
        return True
    return not exact and math.isclose(fa, fb, rel_tol=1e-5, abs_tol=0.0)


def _tensors_equal(a: Any, b: Any) -> bool:
    if not isinstance(b, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.is_floating_point() or a.is_complex():
        nan_a, nan_b = torch.isnan(a), torch.isnan(b)
        return bool(torch.equal(nan_a, nan_b)) and bool(
            torch.equal(torch.where(nan_a, 0, a), torch.where(nan_b, 0, b)))
    return bool(torch.equal(a, b))


def _global_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch RNG": torch.get_rng_state(),
        "numpy global RNG": pickle.dumps(np.random.get_state()),
        "python random": random.getstate(),
        "default dtype": torch.get_default_dtype(),
        "grad mode": torch.is_grad_enabled(),
        "anomaly detection": torch.is_anomaly_enabled(),
        "deterministic algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn.benchmark": torch.backends.cudnn.benchmark,
        "cudnn.deterministic": torch.backends.cudnn.deterministic,
        "cudnn.enabled": torch.backends.cudnn.enabled,
        "mkldnn.enabled": torch.backends.mkldnn.enabled,
        "float32 matmul precision": torch.get_float32_matmul_precision(),
        "threads": torch.get_num_threads(),
    }
    if device.type == "cuda" and torch.cuda.is_initialized():
        state["cuda RNG"] = torch.cuda.get_rng_state_all()
    return state


def _unusual_rng_states() -> None:
    """Global RNG states that no ``manual_seed(k)`` call leaves: seeded, then advanced."""
    torch.manual_seed(0x5EED_C0DE)
    torch.rand(3)
    np.random.seed(0x5EED_C0DE % 2**32)
    np.random.random_sample(3)
    random.seed(0x5EED_C0DE)
    random.random()


def _restore_global_state(state: dict[str, Any]) -> None:
    """Put back what :func:`_global_state` saw (setters run only for what changed: some,
    like ``use_deterministic_algorithms``, import heavy modules)."""
    torch.set_rng_state(state["torch RNG"])
    np.random.set_state(pickle.loads(state["numpy global RNG"]))
    random.setstate(state["python random"])
    if "cuda RNG" in state:
        torch.cuda.set_rng_state_all(state["cuda RNG"])
    now = _global_state(torch.device("cpu"))
    setters: dict[str, Callable[[Any], Any]] = {
        "default dtype": torch.set_default_dtype,
        "grad mode": torch.set_grad_enabled,
        "anomaly detection": torch.set_anomaly_enabled,
        "deterministic algorithms": torch.use_deterministic_algorithms,
        "cudnn.benchmark": lambda v: setattr(torch.backends.cudnn, "benchmark", v),
        "cudnn.deterministic": lambda v: setattr(torch.backends.cudnn, "deterministic", v),
        "cudnn.enabled": lambda v: setattr(torch.backends.cudnn, "enabled", v),
        "mkldnn.enabled": lambda v: setattr(torch.backends.mkldnn, "enabled", v),
        "float32 matmul precision": torch.set_float32_matmul_precision,
        "threads": torch.set_num_threads,
    }
    for key, setter in setters.items():
        if now[key] != state[key]:
            setter(state[key])


def _state_equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return _tensors_equal(a, b)
    if isinstance(a, list) and a and isinstance(a[0], torch.Tensor):
        return len(a) == len(b) and all(_tensors_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _config_key(cfg: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Comparable form of a config: types matter, NaN equals NaN."""
    return sorted((str(k), type(v).__name__, repr(v)) for k, v in cfg.items())


def _kwargs(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", "")
    name = getattr(obj, "__qualname__", repr(obj))
    return f"{module}.{name}" if module and module != "builtins" else name


def _spec(proxy: Proxy) -> str:
    try:
        return proxy.spec()
    except Exception:
        return type(proxy).__name__


def _safe(fn: Callable[[], Any]) -> bool:
    try:
        fn()
    except Exception:
        return False
    return True

