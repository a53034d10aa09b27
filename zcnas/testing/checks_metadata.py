"""Conformance checks, group 1: metadata, constructor, config and spec round trips, requests."""

from __future__ import annotations

import importlib.metadata
import inspect

from zcnas.errors import one_line
from zcnas.proxy import PassRequest, Proxy, ProxyError, ProxyInfo, parse_spec
from zcnas.testing._util import (
    _BOGUS_PARAM,
    _MISSING,
    _PLAIN,
    _config_key,
    _first_line,
    _qualname,
)
from zcnas.testing.kit import Kit, register_check


@register_check("metadata", group=1,
                doc=('info is a valid ProxyInfo of its own, with reference and code; the '
                     'entry-point name equals info.name'))
def metadata(kit: Kit) -> str | None:
    cls = kit.cls
    if not (isinstance(cls, type) and issubclass(cls, Proxy)):
        raise AssertionError(f"{_qualname(cls)} is not a subclass of zcnas.proxy.Proxy")
    info = kit.info
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
    if info.spaces is not None and (not isinstance(info.spaces, tuple) or not info.spaces
                                    or not all(isinstance(x, str) for x in info.spaces)):
        raise AssertionError(f"info.spaces={info.spaces!r} must be None (any space) or a "
                             "non-empty tuple of space names")
    if inspect.isabstract(cls):
        raise AssertionError(f"{_qualname(cls)} is abstract (does it implement score?)")
    if kit.proxy.name != info.name:
        raise AssertionError(f"proxy.name is {kit.proxy.name!r} but info.name is "
                             f"{info.name!r}")
    target = f"{cls.__module__}:{cls.__qualname__}"
    for ep in importlib.metadata.entry_points(group="zcnas.proxies"):
        if ep.value.replace(" ", "") == target and ep.name != info.name:
            raise AssertionError(f"registered as entry point {ep.name!r} but info.name is "
                                 f"{info.name!r}")
    return None


@register_check("constructor", group=1,
                doc=('Proxy() works with the declared default batch_size/n_batches; an '
                     'unknown keyword is rejected'))
def constructor(kit: Kit) -> str | None:
    cls, info = kit.cls, kit.info
    try:
        proxy = cls()
    except Exception as err:
        raise AssertionError(f"{_qualname(cls)}() raised {one_line(err)}") from err
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


@register_check("config_roundtrip", group=1,
                doc=('type(p)(**p.config()) has the same config; config holds batch_size, '
                     'n_batches and every param as plain values'))
def config_roundtrip(kit: Kit) -> str | None:
    proxy, cls = kit.proxy, kit.cls
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
        raise AssertionError(f"{_qualname(cls)}(**config()) raised {one_line(err)}") from err
    if _config_key(again) != _config_key(cfg):
        raise AssertionError(f"{_qualname(cls)}(**config()) has config {again!r}, not "
                             f"{cfg!r}")
    if _config_key(proxy.config()) != _config_key(cfg):
        raise AssertionError("config() changed between two calls")
    return None


@register_check("spec_roundtrip", group=1,
                doc='parse_spec(p.spec()) names the proxy and rebuilds the same config')
def spec_roundtrip(kit: Kit) -> str | None:
    proxy, cls, info = kit.proxy, kit.cls, kit.info
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
                             f"{one_line(err)}") from err
    if _config_key(again.config()) != _config_key(proxy.config()):
        raise AssertionError(f"spec {spec!r} rebuilds config {again.config()!r}, not "
                             f"{proxy.config()!r}")
    if again.spec() != spec:
        raise AssertionError(f"spec {spec!r} rebuilds a proxy whose spec is {again.spec()!r}")
    default = cls().spec()
    if default != info.name:
        raise AssertionError(f"the default proxy's spec is {default!r}, not {info.name!r}")
    return None


@register_check("requests", group=1,
                doc=('requests() returns hashable PassRequests of known kinds, the same each'
                     ' call'))
def requests(kit: Kit) -> str | None:
    from zcnas.scoring.passes import CE_COLLECT, PASSES, CESpec

    proxy = kit.proxy
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
