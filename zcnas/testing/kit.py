"""The conformance kit's machinery: the check registry, the :class:`Kit` that runs checks on
one proxy, and the entry points (:func:`check_proxy`, :func:`proxy_checks`,
:func:`parametrize_proxy_checks`, :func:`assert_proxy_conforms`).

Checks are small functions registered in the order they run (scikit-learn's
``_yield_checks`` shape)::

    @register_check("determinism", group=2, doc="two fresh contexts give the same score")

    def determinism(kit: Kit) -> str | None:
        ...  # raise AssertionError("one-line reason"); return a note or None

The built-in checks live in the ``checks_*`` modules of this package.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from zcnas.datasets import canonical_dataset
from zcnas.errors import one_line
from zcnas.proxy import PassRequest, Proxy, ProxyInfo, with_batch_at_most
from zcnas.scoring.context import InputBank, ScoringContext
from zcnas.spaces import get_space
from zcnas.testing._util import (
    DEFAULT_BATCH_SIZE,
    N_RANDOM_ARCHS,
    NEEDS_IMAGES,
    _first_line,
    _qualname,
    _safe,
    _same_value,
    _spec,
)
from zcnas.testing.recording import RecordingContext, StandInImages


@dataclass(frozen=True)
class Check:
    """One registered check: its name, group (the order checks run in), what it verifies,
    and the function."""

    name: str
    group: int
    doc: str
    fn: Callable[[Kit], str | None]


_REGISTRY: dict[str, Check] = {}
#: name -> what the check verifies, in the order the checks run.
CHECKS: dict[str, str] = {}


def register_check(name: str, *, group: int, doc: str) -> Callable:
    """Register ``fn(kit) -> str | None`` as the check ``name`` (a decorator)."""

    def decorate(fn: Callable[[Kit], str | None]) -> Callable[[Kit], str | None]:
        if name in _REGISTRY:
            raise ValueError(f"check {name!r} is registered twice")
        _REGISTRY[name] = Check(name, group, doc, fn)
        ordered = sorted(_REGISTRY.values(), key=lambda c: c.group)  # stable within a group
        _REGISTRY.clear()
        _REGISTRY.update((c.name, c) for c in ordered)
        CHECKS.clear()
        CHECKS.update((c.name, c.doc) for c in ordered)
        return fn

    return decorate


def default_archs(space: str = "nats-tss") -> list[str]:
    """The kit's architectures: the space's examples and two drawn with ``default_rng(0)``."""
    sp = get_space(space)
    out = list(sp.examples)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        if len(out) >= len(sp.examples) + N_RANDOM_ARCHS:
            break
        arch = sp.format_arch(sp.sample(rng))
        if arch not in out:
            out.append(arch)
    return out


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

    def __init__(self, kit: Kit, name: str) -> None:
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
    kit = Kit(proxy, data_root=data_root, space=space, dataset=dataset, device=device,
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
    kit = Kit(proxy, data_root=data_root, space=space, dataset=dataset, device=device,
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


class Kit:
    """Runs the checks of :data:`CHECKS` on one proxy; caches scores and recordings. A check
    is a function ``check(kit) -> note or None`` registered with :func:`register_check`; it
    uses the helpers here (banks, contexts, cached scores, recordings)."""

    def __init__(self, proxy: Any, *, data_root: Any, space: str, dataset: str, device: Any,
                 archs: Iterable[Any] | None, batch_size: int | None) -> None:
        self.search_space = get_space(space)
        self.space = self.search_space.name
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

    def run(self, name: str) -> str | None:
        check = _REGISTRY.get(name)
        if check is None:
            raise ValueError(f"unknown check {name!r}; valid: {', '.join(CHECKS)}")
        try:
            return check.fn(self)
        except (AssertionError, CheckSkipped):
            raise
        except Exception as err:
            raise AssertionError(f"raised {one_line(err)}") from err

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
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
                raise AssertionError(f"{_qualname(self.cls)}() raised {one_line(err)}") from err

        return self.memo("proxy", build)

    @property
    def fast(self) -> Proxy:
        """The proxy scored by the checks: ``proxy`` with its batch size capped."""

        def build() -> Proxy:
            return self.proxy if self.cap is None else with_batch_at_most(self.proxy, self.cap)

        return self.memo("fast", build)

    def require_scorable(self) -> None:
        """Skip a scoring check that cannot run here."""
        info = self.info
        if not info.supports(self.space):
            raise CheckSkipped(f"proxy declares spaces {info.spaces}, not {self.space}")
        if info.needs_images and self.data_root is None:
            raise CheckSkipped(NEEDS_IMAGES)

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
                f"{_spec(proxy)} raised {one_line(err)} on {ctx.arch_str}") from err

    def plain_score(self, arch: str) -> Any:
        """The score on a fresh context and a fresh main bank (cached)."""

        def compute() -> Any:
            proxy = self.fast
            return self.score(proxy, self.context(arch, self.main_bank(), [proxy]))

        return self.memo(("plain", arch), compute)

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

        return self.memo(("recording", bank), compute)

    @property
    def degenerate(self) -> dict[str, str]:
        """The space's degenerate genotypes (label -> arch), the hardest inputs of a proxy."""
        return dict(self.search_space.degenerate)

    def same(self, a: Any, b: Any) -> bool:
        return _same_value(a, b, exact=self.device.type == "cpu")

    def read_requests(self) -> list[PassRequest]:
        """The passes the proxy reads: declared, plus any read without being declared."""
        reqs = list(self.fast.requests())
        contexts, _error = self.recording()
        for ctx in contexts:
            reqs += [r for r in ctx.pass_calls if r not in reqs]
        return reqs

    def reference_proxies(self, reqs: list[PassRequest]) -> list[Proxy]:
        """Installed proxies that share the engine's ``ce`` pass (stable, naswot), from the
        registry, that read one of ``reqs``' passes; none when they are not installed."""
        from zcnas.registry import create_proxy

        bs = self.fast.batch_size
        try:
            refs = [create_proxy(f"stable(batch_size={bs},n_batches=2)"),
                    create_proxy(f"naswot(batch_size={bs})")]
        except Exception:  # not installed here: check the proxy alone
            return []
        read = {(r.kind, r.spec) for r in reqs}
        return [p for p in refs if any((r.kind, r.spec) in read for r in p.requests())]

    def shared_bank(self) -> InputBank:
        return self.real_bank() if self.info.needs_images else self.image_bank()

    def records(self, bank: str = "main") -> list[RecordingContext]:
        contexts, error = self.recording(bank)
        if error is not None:
            raise AssertionError(_first_line(error)) from error
        return contexts
