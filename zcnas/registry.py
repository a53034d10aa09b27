"""The proxy registry: built-in and third-party zero-cost proxies (entry-point group
``zcnas.proxies``), and spec strings -> proxy or ensemble objects.

The generic machinery (entry points, in-process registration, broken-plugin isolation) is
:class:`zcnas.plugins.Registry`; it is re-exported here. This module imports no torch.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from zcnas.plugins import (
    IN_PROCESS,
    RAISE_ENV,
    Broken,
    Entry,
    PluginConflictError,
    PluginError,
    Registry,
    target_of,
)
from zcnas.proxy import Proxy, ProxyError, ProxyInfo, parse_spec, split_specs

if TYPE_CHECKING:  # pragma: no cover
    from zcnas.ensemble import Ensemble

__all__ = ["IN_PROCESS", "PROXIES", "RAISE_ENV", "Broken", "Entry", "PluginConflictError",
           "PluginError", "Registry", "create_proxies", "create_proxy", "create_scorer",
           "create_scorers", "get_proxy",
           "list_proxies", "validate_proxy"]


# --- proxies ------------------------------------------------------------------------------------


def validate_proxy(name: str, obj: Any) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``obj`` is a usable proxy class named ``name``."""
    if not (isinstance(obj, type) and issubclass(obj, Proxy)):
        raise TypeError(f"{target_of(obj)} is not a subclass of zcnas.proxy.Proxy")
    info = getattr(obj, "info", None)
    if not isinstance(info, ProxyInfo):
        raise TypeError(f"{target_of(obj)} has no ProxyInfo `info` class attribute")
    if info.name != name:
        raise ValueError(f"{target_of(obj)} has info.name {info.name!r} but is registered "
                         f"as {name!r}")
    if inspect.isabstract(obj):
        raise TypeError(f"{target_of(obj)} is abstract (does it implement score?)")


PROXIES = Registry("zcnas.proxies", kind="proxy", validate=validate_proxy,
                   list_command="zcnas proxies list")


def _ensemble(rest: str) -> Ensemble:
    from zcnas.ensemble import parse_ensemble

    return parse_ensemble(rest)


PROXIES.register_prefix("ensemble", _ensemble)


def list_proxies(filter: str | None = None) -> list[str]:
    """Names of every installed proxy (no proxy module is imported)."""
    return PROXIES.names(filter)


def get_proxy(name: str) -> type[Proxy]:
    """The proxy class registered as ``name``."""
    return PROXIES.get(name)


def create_scorer(spec: str) -> Proxy | Ensemble:
    """A proxy or an ensemble from a spec string: ``'stable'``,
    ``'stable(n_batches=4,batch_size=32)'``, or a prefixed one such as
    ``'ensemble:az(naswot,synflow)'`` (see :mod:`zcnas.ensemble`)."""
    head = spec.strip().split("(", 1)[0]
    if ":" in head:
        obj = PROXIES.get(spec.strip())
        return obj() if isinstance(obj, type) else obj
    name, kwargs = parse_spec(spec)
    return get_proxy(name)(**kwargs)


def create_scorers(text: str) -> list[Proxy | Ensemble]:
    """Proxies and ensembles from a comma list, e.g.
    ``'synflow,stable(n_batches=4),ensemble:az_nas'``; no duplicates."""
    out: list[Proxy | Ensemble] = []
    seen: dict[str, str] = {}
    for spec in split_specs(text):
        scorer = create_scorer(spec)
        key = scorer.spec()
        if key in seen:
            raise ProxyError(f"proxy {key!r} is given twice in {text!r} "
                             f"(as {seen[key]!r} and {spec!r})")
        seen[key] = spec
        out.append(scorer)
    return out


def create_proxy(spec: str) -> Proxy:
    """A proxy (one architecture at a time) from a spec string; an ensemble spec is refused
    (use :func:`create_scorer`)."""
    scorer = create_scorer(spec)
    if not isinstance(scorer, Proxy):
        raise ProxyError(f"{spec.strip()!r} ranks a population, it is not a proxy; use "
                         "create_scorer for ensembles")
    return scorer


def create_proxies(text: str) -> list[Proxy]:
    """Proxies from a comma list, e.g. ``'synflow,stable(n_batches=4)'``; no duplicates and
    no ensembles (:func:`create_scorers` takes both)."""
    scorers = create_scorers(text)
    for s in scorers:
        if not isinstance(s, Proxy):
            raise ProxyError(f"{s.spec()!r} ranks a population, it is not a proxy; use "
                             "create_scorers for ensembles")
    return scorers
