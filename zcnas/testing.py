"""Conformance checks for zero-cost proxies: run them on your proxy before you publish it.

The kit the built-ins are tested with (in the spirit of Optuna's
``optuna.testing.pytest_samplers`` and scikit-learn's ``parametrize_with_checks``). One test per
check under pytest::

    from zcnas.testing import parametrize_proxy_checks

    @parametrize_proxy_checks([MyProxy, MyProxy(alpha=0.5)], data_root=os.environ.get("ZCNAS_DATA"))
    def test_my_proxy_conforms(check):
        check()

or ``@pytest.mark.parametrize("name, check", proxy_checks(MyProxy))``. Without pytest::

    results = check_proxy(MyProxy)              # one CheckResult per check
    assert_proxy_conforms(MyProxy(alpha=0.5))   # AssertionError listing every failed check

``proxy`` is a :class:`~zcnas.proxy.Proxy` subclass (checked with its defaults) or an instance
(checked with its parameters). To stay fast the kit scores a copy with ``batch_size`` capped at
8 (``batch_size=None`` keeps the proxy's own) on a few architectures (``archs``; by default two
fixed cells and two seeded random ones), on ``device`` (the CPU by default). A check passes
(possibly with a note such as ``n/a: draws no batches``), fails with a
one-line reason, or is skipped: a proxy that declares ``needs_images=True`` is only scored when
``data_root`` (the folder holding the datasets, as for ``ZCNAS_DATA``) is given.

The checks (:data:`CHECKS`), grouped:

- metadata: ``metadata``, ``constructor``, ``config_roundtrip``, ``spec_roundtrip``,
  ``requests``;
- determinism: ``returns_float``, ``determinism``, ``global_state``;
- no mutation: ``batches_unchanged``, ``shared_passes_unchanged``, ``sharing``,
  ``fresh_networks``;
- ``degenerate_cells`` (topology space);
- honest metadata: ``honest_bn``, ``honest_init``, ``honest_input``, ``honest_batch_size``,
  ``honest_images``, ``honest_labels``, ``input_independent``;
- ``nan_policy``.

Determinism and every "same score" comparison are bitwise on the CPU (``struct.pack('<d')``, so
NaN equals NaN); on other devices they allow a relative difference of 1e-5.
Building blocks useful in a proxy's own tests are public: :class:`RecordingContext` (a
:class:`~zcnas.scoring.ScoringContext` that records every network, batch and ones request),
:class:`StandInImages` (an input bank with seeded random "real" images) and
:class:`RelabelledInputs` (the same images with every label changed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import inspect
import io
import math
import pickle
import random
import struct
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from zcnas.data.batches import Batch, normalize
from zcnas.data.specs import get_dataset
from zcnas.datasets import canonical_dataset
from zcnas.proxy import (
    INITS,
    PassRequest,
    Proxy,
    ProxyError,
    ProxyInfo,
    goodness,
    is_valid,
    parse_spec,
    rank_order,
)
from zcnas.scoring.context import InputBank, ScoringContext
from zcnas.spaces import canonical_space, get_space

__all__ = [
    "CHECKS",
    "DEGENERATE_CELLS",
    "BatchCall",
    "CheckResult",
    "CheckSkipped",
    "NetworkCall",
    "ProxyCheck",
    "RecordingContext",
    "RelabelledInputs",
    "StandInImages",
    "assert_proxy_conforms",
    "check_proxy",
    "default_archs",
    "fingerprint",
    "fingerprint_difference",
    "observed_init",
    "parametrize_proxy_checks",
    "proxy_checks",
]

CHECKS: dict[str, str] = {
    "metadata": "info is a valid ProxyInfo of its own, with reference and code; the "
                "entry-point name equals info.name",
    "constructor": "Proxy() works with the declared default batch_size/n_batches; an unknown "
                   "keyword is rejected",
    "config_roundtrip": "type(p)(**p.config()) has the same config; config holds batch_size, "
                        "n_batches and every param as plain values",
    "spec_roundtrip": "parse_spec(p.spec()) names the proxy and rebuilds the same config",
    "requests": "requests() returns hashable PassRequests of known kinds, the same each call",
    "returns_float": "score() returns a Python float",
    "determinism": "two fresh contexts give bitwise-identical scores (NaN == NaN)",
    "global_state": "scoring leaves global RNGs, torch flags and stdout/stderr untouched",
    "batches_unchanged": "the shared input batches are not modified",
    "shared_passes_unchanged": "shared-pass results and co-scored proxies (stable, naswot) "
                               "are unchanged by scoring; scoring twice gives the same value",
    "sharing": "the score is the same alone and with its passes shared with other proxies",
    "fresh_networks": "changes to a network from ctx.network do not leak into later ones; "
                      "the context's attributes are unchanged",
    "degenerate_cells": "none/skip/pool-only cells return a float (NaN/inf allowed) without "
                        "raising",
    "honest_bn": "bn='none' builds every network without BN; bn='train' runs BN in train mode",
    "honest_init": "every network's weights match the declared init when first used",
    "honest_input": "input='none' uses no network or batches; 'ones' draws no batches; "
                    "'gaussian' no real images; 'real' draws real images",
    "honest_batch_size": "batches asked are <= batch_size x n_batches, the largest equal to them",
    "honest_images": "needs_images=False runs without a dataset and never asks for real "
                     "images; needs_images=True asks for them",
    "honest_labels": "needs_labels=False: replacing every label leaves the score unchanged",
    "input_independent": "input gaussian/ones/none: same score with or without real images",
    "nan_policy": "zcnas.proxy.goodness ranks the proxy's degenerate outputs last",
}

NEEDS_IMAGES = "needs real images; pass data_root"
DEFAULT_BATCH_SIZE = 8
N_RANDOM_ARCHS = 2
_FIXED_ARCHS = {
    "nats-tss": (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
        "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|"
        "nor_conv_3x3~2|",
    ),
    "nats-sss": ("8:16:24:32:40", "64:32:64:16:48"),
}
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
DEGENERATE_CELLS: dict[str, str] = {
    "all none": ALL_NONE,
    "output disconnected":
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|",
    "only a direct skip": "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|",
    "only skip connections":
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|"
        "skip_connect~2|",
    "pooling only":
        "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|"
        "avg_pool_3x3~2|",
}
_BOGUS_PARAM = "no_such_parameter_xyz"
_PLAIN = (bool, int, float, str, type(None))


def default_archs(space: str = "nats-tss") -> list[str]:
    """The kit's architectures: two fixed ones and two drawn with ``default_rng(0)``."""
    space = canonical_space(space)
    mod = get_space(space)
    out = list(_FIXED_ARCHS[space])
    rng = np.random.default_rng(0)
    while len(out) < len(_FIXED_ARCHS[space]) + N_RANDOM_ARCHS:
        arch = str(mod.sample(rng))
        if arch not in out:
            out.append(arch)
    return out


# --- results -----------------------------------------------------------------------------------


class CheckSkipped(Exception):
    """A check that cannot run here (e.g. it needs real images and no ``data_root`` is given)."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``status`` is ``passed``, ``failed`` or ``skipped``."""

    check: str
    proxy: str
    status: str
    reason: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def skipped(self) -> bool:
        return self.status == "skipped"

    def __str__(self) -> str:
        text = f"{self.proxy} {self.check}: {self.status}"
        return f"{text}: {self.reason}" if self.reason else text


class ProxyCheck:
    """One check bound to one proxy: calling it runs it.

    It raises ``AssertionError`` (with a one-line reason) when the proxy fails it; when it
    cannot run it calls ``pytest.skip`` under pytest, else raises :class:`CheckSkipped`.
    It returns a note (e.g. ``'n/a: ...'``) or ``None`` when it passes.
    """

    def __init__(self, kit: _Kit, name: str) -> None:
        self._kit = kit
        self.name = name
        self.__name__ = name  # pytest uses it in test ids

    @property
    def id(self) -> str:
        return f"{self._kit.label}-{self.name}"

    def __call__(self) -> str | None:
        try:
            return self._kit.run(self.name)
        except CheckSkipped as skip:
            pytest = sys.modules.get("pytest")
            if pytest is not None:
                pytest.skip(f"{self.id}: {skip}")
            raise

    def __repr__(self) -> str:
        return f"<ProxyCheck {self.id}>"


def proxy_checks(
    proxy: type[Proxy] | Proxy, *, data_root: Any = None, space: str = "nats-tss",
    dataset: str = "cifar10", device: str | torch.device = "cpu",
    archs: Iterable[Any] | None = None, batch_size: int | None = DEFAULT_BATCH_SIZE,
) -> list[tuple[str, ProxyCheck]]:
    """``(check_name, check)`` for every check, for ``pytest.mark.parametrize``; options as
    for :func:`check_proxy`.

    The checks of one call share one kit, so scores computed by one check are reused by the
    next. Nothing is computed until a check is called.
    """
    kit = _Kit(proxy, data_root=data_root, space=space, dataset=dataset, device=device,
               archs=archs, batch_size=batch_size)
    return [(name, ProxyCheck(kit, name)) for name in CHECKS]


def parametrize_proxy_checks(proxies: Any, **options: Any) -> Any:
    """A ``pytest.mark.parametrize("check", ...)`` decorator over every check of ``proxies``
    (one proxy or a list), with ids ``<proxy spec>-<check>``; ``options`` as for
    :func:`check_proxy`."""
    import pytest

    if isinstance(proxies, type) or isinstance(proxies, Proxy):
        proxies = [proxies]
    checks = [check for p in proxies for _, check in proxy_checks(p, **options)]
    return pytest.mark.parametrize("check", checks, ids=[c.id for c in checks])


def check_proxy(
    proxy: type[Proxy] | Proxy, *, data_root: Any = None, space: str = "nats-tss",
    dataset: str = "cifar10", device: str | torch.device = "cpu",
    archs: Iterable[Any] | None = None, batch_size: int | None = DEFAULT_BATCH_SIZE,
    checks: Iterable[str] | None = None,
) -> list[CheckResult]:
    """Run every check (or those named in ``checks``) on ``proxy``; never raises for a
    failing proxy. ``data_root``: the datasets folder (checks that score a proxy that needs
    real images are skipped without it); ``archs``: architectures to score (default
    :func:`default_archs`); ``batch_size``: the cap on the batch size scored (None: the
    proxy's own)."""
    kit = _Kit(proxy, data_root=data_root, space=space, dataset=dataset, device=device,
               archs=archs, batch_size=batch_size)
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; valid: {', '.join(CHECKS)}")
    out = []
    for name in names:
        start = time.perf_counter()
        try:
            note = kit.run(name)
            status, reason = "passed", note or ""
        except AssertionError as err:
            status, reason = "failed", _first_line(err) or "assertion failed"
        except CheckSkipped as skip:
            status, reason = "skipped", str(skip)
        out.append(CheckResult(name, kit.label, status, reason, time.perf_counter() - start))
    return out


def assert_proxy_conforms(proxy: type[Proxy] | Proxy, **options: Any) -> list[CheckResult]:
    """:func:`check_proxy`, raising ``AssertionError`` that lists every failed check."""
    results = check_proxy(proxy, **options)
    failed = [r for r in results if r.failed]
    if failed:
        lines = "\n".join(f"  {r.check}: {r.reason}" for r in failed)
        raise AssertionError(f"proxy {results[0].proxy} fails {len(failed)} of {len(results)} "
                             f"conformance checks:\n{lines}")
    return results


# --- building blocks ---------------------------------------------------------------------------


@dataclass
class NetworkCall:
    """One ``ctx.network(...)`` call: every argument (defaults filled in), the network handed
    out, its fingerprint at hand-out (when recording snapshots), the ``training`` flag of
    every BatchNorm forward seen afterwards, and the init scheme its weights matched
    (:func:`observed_init`) when a conv/linear layer first ran (None if none ran)."""

    kwargs: dict[str, Any]
    network: nn.Module
    snapshot: dict[str, Any] | None = None
    bn_training: list[bool] = field(default_factory=list)
    init_at_first_use: str | None = None


@dataclass
class BatchCall:
    """One ``ctx.batches(batch_size, n, kind)`` call (recorded before it runs), the batches
    handed out (None when it raised) and their copies at hand-out (when recording snapshots)."""

    batch_size: int
    n: int
    kind: str
    batches: list[Batch] | None = None
    snapshot: list[Batch] | None = None


_NETWORK_SIGNATURE = inspect.signature(ScoringContext.network)
CONTEXT_ATTRS = ("arch", "arch_str", "space", "dataset", "num_classes", "resolution", "seed",
                 "device", "inputs")


class RecordingContext(ScoringContext):
    """A :class:`ScoringContext` that records what is asked of it (shared passes included):
    ``network_calls``, ``batch_calls``, ``ones_calls`` (``(batch_size, dtype)``) and
    ``pass_calls`` (the requests passed to ``run_pass``); ``initial`` holds its attributes
    as made. With
    ``snapshot=True`` it also keeps a copy of every network and batch as handed out."""

    def __init__(self, *args: Any, snapshot: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.snapshot = snapshot
        self.network_calls: list[NetworkCall] = []
        self.batch_calls: list[BatchCall] = []
        self.ones_calls: list[tuple[int, torch.dtype]] = []
        self.pass_calls: list[PassRequest] = []
        self.initial = {a: getattr(self, a) for a in CONTEXT_ATTRS}

    def network(self, **kwargs: Any) -> nn.Module:
        bound = _NETWORK_SIGNATURE.bind(self, **kwargs)
        bound.apply_defaults()
        args = {k: v for k, v in bound.arguments.items() if k != "self"}
        net = super().network(**kwargs)
        call = NetworkCall(args, net, fingerprint(net) if self.snapshot else None)
        handles: list[Any] = []

        def first_use(_module: nn.Module, _inputs: Any) -> None:
            if call.init_at_first_use is None:
                call.init_at_first_use = observed_init(net) or "unknown"
            for handle in handles:
                handle.remove()

        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.register_forward_pre_hook(
                    lambda mod, _inputs, _call=call: _call.bn_training.append(mod.training))
            elif isinstance(module, nn.Conv2d | nn.Linear):
                handles.append(module.register_forward_pre_hook(first_use))
        self.network_calls.append(call)
        return net

    def batches(self, batch_size: int, n: int = 1, kind: str = "real") -> list[Batch]:
        call = BatchCall(batch_size, n, kind)
        self.batch_calls.append(call)
        out = super().batches(batch_size, n, kind)
        call.batches = out
        if self.snapshot:
            call.snapshot = [(x.clone(), y.clone()) for x, y in out]
        return out

    def ones(self, batch_size: int = 1, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        self.ones_calls.append((batch_size, dtype))
        return super().ones(batch_size, dtype)

    def run_pass(self, request: PassRequest) -> Any:
        self.pass_calls.append(request)
        return super().run_pass(request)


class StandInImages(InputBank):
    """An input bank that has "real" images: seeded uniformly random pixels, normalised like
    the dataset's. For checks that need images to exist, not to be meaningful."""

    def __init__(self, dataset: str, *, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(dataset, seed=seed, source="synthetic", device=device)
        self.source = "real"
        self._images: dict[int, list[Batch]] = {}

    def batches(self, kind: str, batch_size: int, n: int) -> list[Batch]:
        if kind != "real":
            return super().batches(kind, batch_size, n)
        got = self._images.get(batch_size)
        if got is None or len(got) < n:
            spec = get_dataset(self.dataset)
            rng = np.random.default_rng(self.seed + 7919)
            got = []
            for _ in range(n):  # successive draws: batch i is the same whatever n is
                pixels = rng.integers(0, 256, (batch_size, spec.resolution, spec.resolution, 3),
                                      dtype=np.uint8)
                x = normalize(pixels, spec)
                y = torch.from_numpy(rng.integers(0, spec.num_classes, batch_size))
                if self.device.type == "cpu":
                    x = x.contiguous(memory_format=torch.channels_last)
                got.append((x.to(self.device), y.to(self.device, torch.int64)))
            self._images[batch_size] = got
        return got[:n]


class RelabelledInputs(InputBank):
    """The batches of ``base`` with every label ``y`` replaced by ``(y + 1) % num_classes``
    (the same image tensors; the same label tensors on every call)."""

    def __init__(self, base: InputBank) -> None:
        super().__init__(base.dataset, seed=base.seed, root=base.root, source=base.source,
                         device=base.device)
        self.base = base
        self.num_classes = get_dataset(base.dataset).num_classes
        self._labels: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def batches(self, kind: str, batch_size: int, n: int) -> list[Batch]:
        out = []
        for x, y in self.base.batches(kind, batch_size, n):
            hit = self._labels.get(id(y))
            if hit is None or hit[0] is not y:
                hit = (y, (y + 1) % self.num_classes)
                self._labels[id(y)] = hit  # keeps y alive, so its id stays unique
            out.append((x, hit[1]))
        return out


def observed_init(net: nn.Module) -> str | None:
    """The init scheme of :mod:`zcnas.models.init` that ``net``'s conv/linear weights match
    best: per layer, the root-mean-square weight against each scheme's expected standard
    deviation (PyTorch default 1/sqrt(3 fan_in), Kaiming-normal sqrt(2/fan), N(0, 1)),
    summed as ``|log(rms / expected)|``. Sign changes (synflow's ``abs``) do not change it.
    None when the network has no weights to judge."""
    misfit = {"default": 0.0, "kaiming_normal_fan_in": 0.0, "kaiming_normal_fan_out": 0.0,
              "normal": 0.0}
    used = 0
    with torch.no_grad():
        for module in net.modules():
            if not isinstance(module, nn.Conv2d | nn.Linear) or module.weight.numel() < 64:
                continue
            w = module.weight
            rms = float(w.detach().double().pow(2).mean().sqrt())
            if not rms > 0 or not math.isfinite(rms):
                continue
            receptive = w[0][0].numel() if w.dim() > 2 else 1
            fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
            expected = {"default": 1 / math.sqrt(3 * fan_in),
                        "kaiming_normal_fan_in": math.sqrt(2 / fan_in),
                        "kaiming_normal_fan_out": math.sqrt(2 / fan_out), "normal": 1.0}
            for scheme, std in expected.items():
                misfit[scheme] += abs(math.log(rms / std))
            used += 1
    return min(misfit, key=misfit.__getitem__) if used else None


def fingerprint(obj: Any, path: str = "result") -> dict[str, Any]:
    """A deep copy of every tensor, number and flag in ``obj`` (tensors, modules with their
    parameters, buffers, gradients and mode, dataclasses, dicts, lists), keyed by path."""
    out: dict[str, Any] = {}
    _fingerprint(obj, path, out, set())
    return out


def _fingerprint(obj: Any, path: str, out: dict[str, Any], seen: set[int]) -> None:
    if isinstance(obj, torch.Tensor):
        out[path] = obj.detach().clone()
        return
    if isinstance(obj, _PLAIN):
        out[path] = _bits(obj) if isinstance(obj, float) else obj
        return
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, nn.Module):
        for name, tensor in obj.state_dict(keep_vars=True).items():
            out[f"{path}.{name}"] = tensor.detach().clone()
        for name, param in obj.named_parameters():
            if param.grad is not None:
                out[f"{path}.{name}.grad"] = param.grad.detach().clone()
        out[f"{path}.training"] = tuple(m.training for m in obj.modules())
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _fingerprint(getattr(obj, f.name), f"{path}.{f.name}", out, seen)
    elif isinstance(obj, dict):
        out[f"{path}.keys"] = repr(list(obj))
        for key, value in obj.items():
            _fingerprint(value, f"{path}[{key!r}]", out, seen)
    elif isinstance(obj, list | tuple):
        out[f"{path}.len"] = len(obj)
        for i, value in enumerate(obj):
            _fingerprint(value, f"{path}[{i}]", out, seen)
    elif isinstance(obj, np.ndarray):
        out[path] = obj.copy()
    else:
        out[f"{path}.type"] = type(obj).__qualname__


def fingerprint_difference(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The first path at which two fingerprints differ, or None when they are identical."""
    for key in before.keys() | after.keys():
        if key not in before or key not in after:
            return key
    for key, a in before.items():
        b = after[key]
        if isinstance(a, torch.Tensor):
            if not _tensors_equal(a, b):
                return key
        elif isinstance(a, np.ndarray):
            if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
                return key
        elif a != b:
            return key
    return None


# --- the kit -----------------------------------------------------------------------------------


class _Kit:
    """Runs the checks of :data:`CHECKS` on one proxy; caches scores and recordings."""

    def __init__(self, proxy: Any, *, data_root: Any, space: str, dataset: str, device: Any,
                 archs: Iterable[Any] | None, batch_size: int | None) -> None:
        self.space = canonical_space(space)
        self.dataset = canonical_dataset(dataset)
        self.device = torch.device(device)
        self.data_root = data_root
        self.archs = [str(a) for a in archs] if archs is not None else default_archs(self.space)
        if not self.archs:
            raise ValueError("archs must name at least one architecture")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
        self.cap = batch_size
        if isinstance(proxy, type):
            self.cls, self._given = proxy, None
        else:
            self.cls, self._given = type(proxy), proxy
        self._cache: dict[Any, Any] = {}
        info = getattr(self.cls, "info", None)
        base = getattr(info, "name", None) or getattr(self.cls, "__name__", "proxy")
        self.label = self._given.spec() if self._given is not None and _safe(
            lambda: self._given.spec()) else base

    # --- running ------------------------------------------------------------------------

    def run(self, name: str) -> str | None:
        method = getattr(self, f"_check_{name}", None)
        if method is None:
            raise ValueError(f"unknown check {name!r}; valid: {', '.join(CHECKS)}")
        try:
            return method()
        except (AssertionError, CheckSkipped):
            raise
        except Exception as err:
            raise AssertionError(f"raised {_one_line(err)}") from err

    def _memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = ("ok", compute())
            except (AssertionError, CheckSkipped, Exception) as err:
                self._cache[key] = ("err", err)
        kind, value = self._cache[key]
        if kind == "err":
            raise value
        return value

    @property
    def info(self) -> ProxyInfo:
        info = getattr(self.cls, "info", None)
        if not isinstance(info, ProxyInfo):
            raise AssertionError(f"{_qualname(self.cls)}.info is not a ProxyInfo")
        return info

    @property
    def proxy(self) -> Proxy:
        """The proxy as given (an instance), or the class constructed with its defaults."""
        if self._given is not None:
            return self._given

        def build() -> Proxy:
            try:
                return self.cls()
            except Exception as err:
                raise AssertionError(f"{_qualname(self.cls)}() raised {_one_line(err)}") from err

        return self._memo("proxy", build)

    @property
    def fast(self) -> Proxy:
        """The proxy scored by the checks: ``proxy`` with its batch size capped."""

        def build() -> Proxy:
            proxy = self.proxy
            if self.cap is None or proxy.batch_size <= self.cap:
                return proxy
            try:
                return self.cls(**{**proxy.config(), "batch_size": self.cap})
            except Exception:  # the proxy refuses small batches: score it as configured
                return proxy

        return self._memo("fast", build)

    def _scorable(self) -> None:
        """Skip a scoring check that cannot run here."""
        info = self.info
        if self.space not in info.spaces:
            raise CheckSkipped(f"proxy declares spaces {info.spaces}, not {self.space}")
        if info.needs_images and self.data_root is None:
            raise CheckSkipped(NEEDS_IMAGES)

    # --- banks and contexts -------------------------------------------------------------

    def synthetic_bank(self) -> InputBank:
        return InputBank(self.dataset, seed=0, source="synthetic", device=self.device)

    def real_bank(self) -> InputBank:
        if self.data_root is None:
            raise CheckSkipped(NEEDS_IMAGES)
        return InputBank(self.dataset, seed=0, root=self.data_root, source="real",
                         device=self.device)

    def image_bank(self) -> InputBank:
        """A bank with images: the real dataset when given, else :class:`StandInImages`."""
        if self.data_root is None:
            return StandInImages(self.dataset, seed=0, device=self.device)
        return self.real_bank()

    def main_bank(self) -> InputBank:
        """Real images for a proxy that needs them, else no dataset at all."""
        return self.real_bank() if self.info.needs_images else self.synthetic_bank()

    def context(self, arch: str, bank: InputBank, proxies: Iterable[Proxy] = (),
                extra: Iterable[PassRequest] = (), cls: type = ScoringContext,
                **kwargs: Any) -> ScoringContext:
        requests = [r for p in proxies for r in p.requests()] + list(extra)
        return cls(arch, space=self.space, dataset=self.dataset, inputs=bank, seed=0,
                   device=self.device, requests=requests, **kwargs)

    def score(self, proxy: Proxy, ctx: ScoringContext) -> Any:
        try:
            return proxy.score(ctx)
        except Exception as err:
            raise AssertionError(
                f"{_spec(proxy)} raised {_one_line(err)} on {ctx.arch_str}") from err

    def plain_score(self, arch: str) -> Any:
        """The score on a fresh context and a fresh main bank (cached)."""

        def compute() -> Any:
            proxy = self.fast
            return self.score(proxy, self.context(arch, self.main_bank(), [proxy]))

        return self._memo(("plain", arch), compute)

    def recording(self, bank: str = "main") -> tuple[list[RecordingContext], BaseException | None]:
        """Recording contexts (with snapshots) of the first two archs, scored once; stops at
        the first error, which is returned."""

        def compute() -> tuple[list[RecordingContext], BaseException | None]:
            contexts: list[RecordingContext] = []
            proxy = self.fast
            for arch in self.archs[:2]:
                source = self.main_bank() if bank == "main" else self.image_bank()
                ctx = self.context(arch, source, [proxy], cls=RecordingContext, snapshot=True)
                contexts.append(ctx)
                try:
                    self.score(proxy, ctx)
                except AssertionError as err:
                    return contexts, err
            return contexts, None

        return self._memo(("recording", bank), compute)

    def same(self, a: Any, b: Any) -> bool:
        return _same_value(a, b, exact=self.device.type == "cpu")

    # --- 1. metadata --------------------------------------------------------------------

    def _check_metadata(self) -> str | None:
        cls = self.cls
        if not (isinstance(cls, type) and issubclass(cls, Proxy)):
            raise AssertionError(f"{_qualname(cls)} is not a subclass of zcnas.proxy.Proxy")
        info = self.info
        try:
            ProxyInfo(**info.as_dict())
        except (TypeError, ValueError) as err:
            raise AssertionError(_first_line(err)) from err
        owner = next(b for b in cls.__mro__ if "info" in b.__dict__)
        if owner is not cls:
            raise AssertionError(f"info is inherited from {_qualname(owner)}: declare a ProxyInfo "
                                 "with its own name")
        types = {"name": str, "version": str, "reference": str, "code": str, "input": str,
                 "needs_labels": bool, "needs_images": bool, "higher_is_better": bool,
                 "batch_size": int, "n_batches": int, "deviations": str}
        for attr, kind in types.items():
            value = getattr(info, attr)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise AssertionError(f"info.{attr}={value!r} is not a {kind.__name__}")
        if not info.reference.strip() or not info.code.strip():
            raise AssertionError("info.reference and info.code must name the paper and the "
                                 "official code the recipe follows")
        if not isinstance(info.spaces, tuple) or not info.spaces:
            raise AssertionError(f"info.spaces={info.spaces!r} must be a non-empty tuple")
        for space in info.spaces:
            if space not in ("nats-tss", "nats-sss"):
                raise AssertionError(f"info.spaces names unknown space {space!r}")
        if inspect.isabstract(cls):
            raise AssertionError(f"{_qualname(cls)} is abstract (does it implement score?)")
        if self.proxy.name != info.name:
            raise AssertionError(f"proxy.name is {self.proxy.name!r} but info.name is "
                                 f"{info.name!r}")
        target = f"{cls.__module__}:{cls.__qualname__}"
        for ep in importlib.metadata.entry_points(group="zcnas.proxies"):
            if ep.value.replace(" ", "") == target and ep.name != info.name:
                raise AssertionError(f"registered as entry point {ep.name!r} but info.name is "
                                     f"{info.name!r}")
        return None

    def _check_constructor(self) -> str | None:
        cls, info = self.cls, self.info
        try:
            proxy = cls()
        except Exception as err:
            raise AssertionError(f"{_qualname(cls)}() raised {_one_line(err)}") from err
        for key in ("batch_size", "n_batches"):
            if getattr(proxy, key, None) != getattr(info, key):
                raise AssertionError(f"default {key} is {getattr(proxy, key, None)!r} but "
                                     f"info.{key} is {getattr(info, key)!r}")
        for key, default in cls.params.items():
            if getattr(proxy, key, _MISSING) != default:
                raise AssertionError(f"param {key!r} is stored as "
                                     f"{getattr(proxy, key, _MISSING)!r}, not its default "
                                     f"{default!r}")
        try:
            cls(**{_BOGUS_PARAM: 1})
        except (ProxyError, TypeError, ValueError):
            pass
        else:
            raise AssertionError(f"{_qualname(cls)}({_BOGUS_PARAM}=1) did not raise: unknown "
                                 "keywords must be an error (ProxyError), never ignored")
        for key, value in (("batch_size", 0), ("n_batches", 0)):
            try:
                cls(**{key: value})
            except (ProxyError, TypeError, ValueError):
                continue
            raise AssertionError(f"{_qualname(cls)}({key}={value}) did not raise")
        return None

    def _check_config_roundtrip(self) -> str | None:
        proxy, cls = self.proxy, self.cls
        cfg = proxy.config()
        if not isinstance(cfg, dict):
            raise AssertionError(f"config() returned a {type(cfg).__name__}, not a dict")
        missing = sorted({"batch_size", "n_batches", *cls.params} - set(cfg))
        if missing:
            raise AssertionError(f"config() lacks {', '.join(missing)}")
        odd = {k: v for k, v in cfg.items() if not isinstance(v, _PLAIN)}
        if odd:
            raise AssertionError(f"config() values must be bool/int/float/str/None: {odd!r}")
        try:
            again = cls(**cfg).config()
        except Exception as err:
            raise AssertionError(f"{_qualname(cls)}(**config()) raised {_one_line(err)}") from err
        if _config_key(again) != _config_key(cfg):
            raise AssertionError(f"{_qualname(cls)}(**config()) has config {again!r}, not "
                                 f"{cfg!r}")
        if _config_key(proxy.config()) != _config_key(cfg):
            raise AssertionError("config() changed between two calls")
        return None

    def _check_spec_roundtrip(self) -> str | None:
        proxy, cls, info = self.proxy, self.cls, self.info
        spec = proxy.spec()
        try:
            name, kwargs = parse_spec(spec)
        except ProxyError as err:
            raise AssertionError(f"spec() {spec!r} does not parse: {_first_line(err)}") from err
        if name != info.name:
            raise AssertionError(f"spec() {spec!r} names {name!r}, not {info.name!r}")
        try:
            again = cls(**kwargs)
        except Exception as err:
            raise AssertionError(f"{_qualname(cls)}(**parse_spec({spec!r})) raised "
                                 f"{_one_line(err)}") from err
        if _config_key(again.config()) != _config_key(proxy.config()):
            raise AssertionError(f"spec {spec!r} rebuilds config {again.config()!r}, not "
                                 f"{proxy.config()!r}")
        if again.spec() != spec:
            raise AssertionError(f"spec {spec!r} rebuilds a proxy whose spec is {again.spec()!r}")
        default = cls().spec()
        if default != info.name:
            raise AssertionError(f"the default proxy's spec is {default!r}, not {info.name!r}")
        return None

    def _check_requests(self) -> str | None:
        from zcnas.scoring.passes import CE_COLLECT, PASSES, CESpec

        proxy = self.proxy
        reqs = list(proxy.requests())
        for req in reqs:
            if not isinstance(req, PassRequest):
                raise AssertionError(f"requests() holds a {type(req).__name__}, not a PassRequest")
            try:
                hash(req)
            except TypeError as err:
                raise AssertionError(f"request {req!r} is not hashable: {err}") from err
            if req.kind not in PASSES:
                raise AssertionError(f"request kind {req.kind!r} is not a known pass "
                                     f"({', '.join(PASSES)})")
            if req.n_batches < 1 or not isinstance(req.collect, frozenset):
                raise AssertionError(f"request {req!r} needs n_batches >= 1 and a frozenset "
                                     "collect")
            if req.kind == "ce" and (not isinstance(req.spec, CESpec)
                                     or not req.collect <= CE_COLLECT):
                raise AssertionError(f"ce request {req!r} needs a CESpec and collect within "
                                     f"{sorted(CE_COLLECT)}")
        if list(proxy.requests()) != reqs:
            raise AssertionError("requests() differs between two calls")
        return None if reqs else "n/a: declares no shared passes"

    # --- 2. determinism -----------------------------------------------------------------

    def _check_returns_float(self) -> str | None:
        self._scorable()
        archs = self.archs + ([ALL_NONE] if self.space == "nats-tss" else [])
        for arch in archs:
            value = self.plain_score(arch)
            if type(value) is not float:
                raise AssertionError(f"score() returned {_qualname(type(value))} on {arch}; "
                                     "return a Python float (float(x))")
        return None

    def _check_determinism(self) -> str | None:
        self._scorable()
        proxy = self.fast
        for arch in self.archs:
            first = self.plain_score(arch)  # a fresh context and bank, scored earlier
            second = self.score(proxy, self.context(arch, self.main_bank(), [proxy]))
            if not self.same(first, second):
                raise AssertionError(f"two fresh contexts gave {first!r} and {second!r} on "
                                     f"{arch} (use torch.Generator().manual_seed(ctx.seed), "
                                     "never the global RNG)")
        return None

    def _check_global_state(self) -> str | None:
        self._scorable()
        proxy = self.fast
        ctx = self.context(self.archs[0], self.main_bank(), [proxy])
        callers = _global_state(self.device)
        out, err = io.StringIO(), io.StringIO()
        try:
            _unusual_rng_states()  # so that seeding inside score() shows as a change
            before = _global_state(self.device)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                self.score(proxy, ctx)
            after = _global_state(self.device)
        finally:
            _restore_global_state(callers)  # a failing proxy must not change the caller's
        changed = [k for k in before if k in after and not _state_equal(before[k], after[k])]
        if changed:
            raise AssertionError(f"scoring changed global state: {', '.join(changed)} (own a "
                                 "torch.Generator; set no global flags)")
        for stream, text in (("stdout", out.getvalue()), ("stderr", err.getvalue())):
            if text:
                raise AssertionError(f"scoring wrote to {stream}: {text.strip()[:80]!r}")
        return None

    # --- 3. no mutation -----------------------------------------------------------------

    def _check_batches_unchanged(self) -> str | None:
        self._scorable()
        drawn = 0
        for ctx in self._records():
            for call in ctx.batch_calls:
                if call.batches is None or call.snapshot is None:
                    continue
                again = ctx.inputs.batches(call.kind, call.batch_size, call.n)
                for i, ((x0, y0), (x1, y1), (x2, y2)) in enumerate(
                        zip(call.snapshot, call.batches, again, strict=True)):
                    drawn += 1
                    where = (f"batch {i} of ctx.batches({call.batch_size}, {call.n}, "
                             f"kind={call.kind!r})")
                    if not (_tensors_equal(x0, x1) and _tensors_equal(x0, x2)):
                        raise AssertionError(f"scoring modified the images of {where} in place "
                                             "(clone before changing a shared batch)")
                    if not (_tensors_equal(y0, y1) and _tensors_equal(y0, y2)):
                        raise AssertionError(f"scoring modified the labels of {where} in place")
        return None if drawn else "n/a: draws no batches"

    def _read_requests(self) -> list[PassRequest]:
        """The passes the proxy reads: declared, plus any read without being declared."""
        reqs = list(self.fast.requests())
        contexts, _error = self.recording()
        for ctx in contexts:
            reqs += [r for r in ctx.pass_calls if r not in reqs]
        return reqs

    def _reference_proxies(self, reqs: list[PassRequest]) -> list[Proxy]:
        """Built-in proxies (stable, naswot) that read one of ``reqs``' passes, if any."""
        bs = self.fast.batch_size
        try:
            from zcnas_proxies.naswot import Naswot
            from zcnas_proxies.stable import Stable

            refs = [Stable(batch_size=bs, n_batches=2), Naswot(batch_size=bs)]
        except Exception:  # the built-ins are not importable here: check the proxy alone
            return []
        read = {(r.kind, r.spec) for r in reqs}
        return [p for p in refs if any((r.kind, r.spec) in read for r in p.requests())]

    def _shared_bank(self) -> InputBank:
        return self.real_bank() if self.info.needs_images else self.image_bank()

    def _check_shared_passes_unchanged(self) -> str | None:
        self._scorable()
        proxy = self.fast
        reqs = self._read_requests()
        refs = self._reference_proxies(reqs)
        arch = self.archs[0]
        ctx = self.context(arch, self._shared_bank(), [proxy, *refs], extra=reqs)
        before_refs = [self.score(r, ctx) for r in refs]
        before = [fingerprint(ctx.run_pass(req)) for req in reqs]
        first = self.score(proxy, ctx)
        for req, fp in zip(reqs, before, strict=True):
            where = fingerprint_difference(fp, fingerprint(ctx.run_pass(req)))
            if where is not None:
                raise AssertionError(f"scoring modified the shared {req.kind!r} pass result at "
                                     f"{where} (never change what a pass returns)")
        after_refs = [self.score(r, ctx) for r in refs]
        for ref, b, a in zip(refs, before_refs, after_refs, strict=True):
            if not self.same(a, b):
                raise AssertionError(f"{ref.spec()} scored {b!r} before and {a!r} after this "
                                     f"proxy on the same context ({arch})")
        second = self.score(proxy, ctx)
        if not self.same(first, second):
            raise AssertionError(f"scoring twice on the same context gave {first!r} then "
                                 f"{second!r} ({arch})")
        if not reqs:
            return "n/a: reads no shared pass (scoring twice gave the same value)"
        return None

    def _check_sharing(self) -> str | None:
        self._scorable()
        proxy = self.fast
        reqs = self._read_requests()
        if not reqs:
            return "n/a: reads no shared pass"
        refs = self._reference_proxies(reqs)
        # what any other proxy could add to the same pass: more batches, everything collected
        wider = [dataclasses.replace(r, n_batches=r.n_batches + 1,
                                     collect=r.collect | _all_collect(r.kind)) for r in reqs]
        arch = self.archs[0]
        alone = self.score(proxy, self.context(arch, self._shared_bank(), [proxy]))
        ctx = self.context(arch, self._shared_bank(), [proxy, *refs], extra=wider)
        for ref in refs:
            self.score(ref, ctx)
        shared = self.score(proxy, ctx)
        if not self.same(alone, shared):
            raise AssertionError(f"scored {alone!r} alone but {shared!r} with its passes shared "
                                 f"(merged with wider requests) on {arch}")
        return None

    def _check_fresh_networks(self) -> str | None:
        self._scorable()
        records = self._records()
        for rec in records:
            for a, value in rec.initial.items():
                if getattr(rec, a) != value:
                    raise AssertionError(f"scoring changed ctx.{a} from {value!r} to "
                                         f"{getattr(rec, a)!r}")
        calls = [(rec, c) for rec in records for c in rec.network_calls]
        if not calls:
            return "n/a: builds no network via ctx.network"
        for rec, call in calls:
            again = ScoringContext.network(rec, **call.kwargs)
            if again is call.network:
                raise AssertionError("ctx.network returned the same object twice")
            where = fingerprint_difference(call.snapshot or {}, fingerprint(again))
            if where is not None:
                raise AssertionError(f"a later ctx.network({_kwargs(call.kwargs)}) differs from "
                                     f"the one handed out, at {where}")
        return None

    # --- 4. degenerate cells ------------------------------------------------------------

    def _check_degenerate_cells(self) -> str | None:
        if self.space != "nats-tss":
            return "n/a: degenerate cells exist in the topology space only"
        self._scorable()
        for label, arch in DEGENERATE_CELLS.items():
            try:
                value = self.plain_score(arch)
            except AssertionError as err:
                raise AssertionError(f"{label} cell: {_first_line(err)}") from err
            if type(value) is not float:
                raise AssertionError(f"{label} cell {arch}: score() returned "
                                     f"{_qualname(type(value))}, not a Python float")
        return None

    # --- 5. honest metadata -------------------------------------------------------------

    def _records(self, bank: str = "main") -> list[RecordingContext]:
        contexts, error = self.recording(bank)
        if error is not None:
            raise AssertionError(_first_line(error)) from error
        return contexts

    def _check_honest_bn(self) -> str | None:
        self._scorable()
        info = self.info
        calls = [c for ctx in self._records() for c in ctx.network_calls]
        if not calls:
            return "n/a: builds no network via ctx.network"
        if info.bn == "none":
            bad = [c for c in calls if c.kwargs["bn"]]
            if bad:
                raise AssertionError(f"declares bn='none' but built {len(bad)} of {len(calls)} "
                                     "network(s) with BN (call ctx.network(bn=False))")
        elif info.bn == "train":
            if any(not c.kwargs["bn"] for c in calls):
                raise AssertionError("declares bn='train' but built a network without BN "
                                     "(ctx.network(bn=False))")
            if any(not t for c in calls for t in c.bn_training):
                raise AssertionError("declares bn='train' but a BatchNorm layer ran in eval mode")
        else:
            return "n/a: bn='n/a'"
        return None

    def _check_honest_init(self) -> str | None:
        self._scorable()
        info = self.info
        calls = [c for ctx in self._records() for c in ctx.network_calls]
        if not calls:
            return "n/a: builds no network via ctx.network"
        if info.init == "n/a":
            return "n/a: init='n/a'"
        assert info.init in INITS
        for c in calls:
            # what the weights look like when first used (a proxy may re-draw them itself,
            # e.g. once per repeat); a network never run is judged by its ctx.network init
            seen = c.init_at_first_use or c.kwargs["init"]
            if seen != info.init:
                how = (f"its weights look like init={seen!r} when first used"
                       if c.init_at_first_use else f"it built networks with init={seen!r}")
                raise AssertionError(f"declares init={info.init!r} but {how} "
                                     f"(ctx.network(init={c.kwargs['init']!r}))")
        return None

    def _check_honest_input(self) -> str | None:
        self._scorable()
        info = self.info
        bank = "images" if info.input == "real" and not info.needs_images else "main"
        contexts = self._records(bank)
        nets = [c for ctx in contexts for c in ctx.network_calls]
        batches = [c for ctx in contexts for c in ctx.batch_calls]
        ones = [c for ctx in contexts for c in ctx.ones_calls]
        kinds = sorted({c.kind for c in batches})
        if info.input == "none" and (nets or batches or ones):
            raise AssertionError(f"declares input='none' but built {len(nets)} network(s), drew "
                                 f"{len(batches)} batch request(s) and {len(ones)} ones input(s)")
        if info.input == "ones" and batches:
            raise AssertionError(f"declares input='ones' but drew batches (kind={kinds})")
        if info.input == "gaussian" and "real" in kinds:
            raise AssertionError("declares input='gaussian' but drew real images")
        if info.input == "real" and "real" not in kinds:
            raise AssertionError(f"declares input='real' but never drew real images "
                                 f"(kinds drawn: {kinds or 'none'})")
        return None

    def _check_honest_batch_size(self) -> str | None:
        self._scorable()
        proxy = self.fast
        bs, nb = proxy.batch_size, proxy.n_batches
        contexts = self._records()
        batches = [c for ctx in contexts for c in ctx.batch_calls]
        ones = [c for ctx in contexts for c in ctx.ones_calls]
        if not batches and not ones:
            return "n/a: draws no batches"
        for c in batches:
            if c.batch_size > bs or c.n > nb:
                raise AssertionError(f"asked for {c.n} batch(es) of {c.batch_size} but "
                                     f"batch_size={bs}, n_batches={nb}")
        for size, _dtype in ones:
            if size > bs:
                raise AssertionError(f"asked for a ones input of {size} but batch_size={bs}")
        if batches:
            big = max(c.batch_size for c in batches)
            most = max(c.n for c in batches)
            if big != bs:
                raise AssertionError(f"the largest batch asked is {big} but batch_size={bs}")
            if most != nb:
                raise AssertionError(f"asked for at most {most} batch(es) but n_batches={nb}")
        elif max(size for size, _ in ones) != bs:
            raise AssertionError(f"the largest ones input is {max(s for s, _ in ones)} but "
                                 f"batch_size={bs}")
        return None

    def _check_honest_images(self) -> str | None:
        info = self.info
        if self.space not in info.spaces:
            raise CheckSkipped(f"proxy declares spaces {info.spaces}, not {self.space}")
        if info.needs_images:
            if self.data_root is None:
                raise CheckSkipped(NEEDS_IMAGES)
            contexts = self._records()
            if not any(c.kind == "real" for ctx in contexts for c in ctx.batch_calls):
                raise AssertionError("declares needs_images=True but never asked for real "
                                     "images; declare needs_images=False")
            return None
        contexts, error = self.recording("main")  # a bank without any dataset
        if any(c.kind == "real" for ctx in contexts for c in ctx.batch_calls):
            raise AssertionError("declares needs_images=False but asked for real images "
                                 "(ctx.batches(..., kind='real'))")
        if error is not None:
            raise AssertionError(f"fails without a dataset: {_first_line(error)}") from error
        return None

    def _check_honest_labels(self) -> str | None:
        self._scorable()
        if self.info.needs_labels:
            return "n/a: declares needs_labels=True"
        proxy = self.fast
        for arch in self.archs[:1]:
            plain = self.plain_score(arch)
            relabelled = self.score(
                proxy, self.context(arch, RelabelledInputs(self.main_bank()), [proxy]))
            if not self.same(plain, relabelled):
                raise AssertionError(f"declares needs_labels=False but replacing every label "
                                     f"changed the score from {plain!r} to {relabelled!r} "
                                     f"on {arch}")
        return None

    def _check_input_independent(self) -> str | None:
        self._scorable()
        info = self.info
        if info.input not in ("gaussian", "ones", "none"):
            return f"n/a: input={info.input!r}"
        proxy = self.fast
        for arch in self.archs[:2]:
            without = self.score(proxy, self.context(arch, self.synthetic_bank(), [proxy]))
            with_images = self.score(proxy, self.context(arch, self.image_bank(), [proxy]))
            if not self.same(without, with_images):
                raise AssertionError(f"declares input={info.input!r} but scored {without!r} "
                                     f"without images and {with_images!r} with them on {arch}")
        return None

    # --- 6. NaN policy ------------------------------------------------------------------

    def _check_nan_policy(self) -> str | None:
        self._scorable()
        hib = self.info.higher_is_better
        archs = self.archs + (list(DEGENERATE_CELLS.values()) if self.space == "nats-tss" else [])
        values = []
        for arch in archs:
            value = self.plain_score(arch)
            try:
                values.append(float(value))
            except (TypeError, ValueError) as err:
                raise AssertionError(f"score {value!r} on {arch} is not a number") from err
        values += [math.nan, math.inf, -math.inf]  # every kind of degenerate score
        good = goodness(values, hib)
        for v, g in zip(values, good, strict=True):
            want = (v if hib else -v) if is_valid(v) else -math.inf
            if not (g == want or (math.isnan(want) and math.isnan(g))):
                raise AssertionError(f"goodness maps score {v!r} to {g!r}, not {want!r}")
        order = rank_order(values, hib)
        n_valid = sum(is_valid(v) for v in values)
        if any(not is_valid(values[i]) for i in order[:n_valid]):
            raise AssertionError("rank_order puts a degenerate score before a valid one")
        best_first = [values[i] for i in order[:n_valid]]
        if best_first != sorted(best_first, reverse=hib):
            raise AssertionError("rank_order does not sort valid scores best first")
        return None


# --- helpers -----------------------------------------------------------------------------------

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


def _one_line(err: BaseException) -> str:
    text = _first_line(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


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
