"""The zero-cost proxy contract: what a proxy declares and how it is called.

A proxy is a class with a :class:`ProxyInfo` (its recipe, stated honestly) and a ``score``
method that turns one architecture's :class:`~zcnas.scoring.ScoringContext` into one float.
Built-ins live in the top-level ``proxies/`` folder (import name ``zcnas_proxies``) and are
registered through the ``zcnas.proxies`` entry-point group, exactly like a third-party proxy::

    # pyproject.toml of your package
    [project.entry-points."zcnas.proxies"]
    my_proxy = "my_package.module:MyProxy"

Scores are raw floats: NaN and infinities are kept (never dropped) and rank last everywhere
(:func:`rank_order`). This module imports no torch.
"""

from __future__ import annotations

import abc
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from zcnas.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from zcnas.scoring.context import ScoringContext

BN_MODES = ("train", "eval", "none", "n/a")
INITS = ("default", "kaiming_normal_fan_in", "kaiming_normal_fan_out", "normal", "n/a")
INPUTS = ("real", "gaussian", "ones", "none")
TRANSFORMS = ("none", "log", "neg", "log_neg")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ProxyError(UserError):
    """A proxy cannot run as asked (bad parameter, missing images, wrong space)."""


@dataclass(frozen=True)
class ProxyInfo:
    """What a proxy computes and from what; checked by :mod:`zcnas.testing`.

    ``needs_images``: the recipe needs real images (the proxy fails without a dataset);
    ``input``: what the network is fed (``real`` images, ``gaussian`` noise, all-``ones``,
    or ``none`` for analytic proxies); ``bn``: BN in ``train`` mode (batch statistics), in
    ``eval`` mode (the fresh running statistics: mean 0, variance 1) or removed (``none``);
    ``transform``: applied to the raw quantity before it is reported (``log`` for synflow);
    ``batch_size`` x ``n_batches``: the default batch configuration;
    ``reference``/``code``: the paper and official code whose recipe this follows;
    ``spaces``: the search spaces the recipe is defined for (None: any space whose models
    follow :mod:`zcnas.spaces.base`); ``deviations``: every known difference from that recipe;
    ``per_arch``: the value depends on more than the function the cell computes (the dead
    edges of the official network: analytic counts, a network built naive), so every
    architecture is scored itself instead of once per isomorphism class.
    """

    name: str
    version: str
    reference: str
    code: str
    needs_labels: bool
    needs_images: bool
    input: str
    higher_is_better: bool = True
    transform: str = "none"
    bn: str = "train"
    init: str = "default"
    batch_size: int = 64
    n_batches: int = 1
    spaces: tuple[str, ...] | None = None
    deviations: str = ""
    per_arch: bool = False

    def __post_init__(self) -> None:
        problems = []
        if not _NAME.match(self.name):
            problems.append(f"name {self.name!r} must match {_NAME.pattern}")
        for attr, allowed in (("bn", BN_MODES), ("init", INITS), ("input", INPUTS),
                              ("transform", TRANSFORMS)):
            if getattr(self, attr) not in allowed:
                problems.append(f"{attr}={getattr(self, attr)!r} not in {allowed}")
        if self.batch_size < 1 or self.n_batches < 1:
            problems.append("batch_size and n_batches must be >= 1")
        if self.needs_images and self.input != "real":
            problems.append("needs_images=True requires input='real'")
        if not self.version:
            problems.append("version must not be empty")
        if self.spaces is not None and (not isinstance(self.spaces, tuple) or not self.spaces
                                        or not all(isinstance(x, str) for x in self.spaces)):
            problems.append(f"spaces={self.spaces!r} must be None (any) or a non-empty tuple "
                            "of space names")
        if problems:
            raise ValueError(f"invalid ProxyInfo for {self.name!r}: " + "; ".join(problems))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def supports(self, space: str) -> bool:
        """Whether the recipe is defined for the search space named ``space``."""
        return self.spaces is None or space in self.spaces


@dataclass(frozen=True)
class PassRequest:
    """A shared computation a proxy will read from the context (see ``zcnas.scoring.passes``).

    Requests with the same ``kind`` and ``spec`` are merged before scoring: one pass runs
    ``max(n_batches)`` batches and collects the union of ``collect``; every proxy reads it.
    """

    kind: str
    spec: Any
    n_batches: int = 1
    collect: frozenset[str] = field(default_factory=frozenset)


class Proxy(abc.ABC):
    """Base class of every proxy.

    Subclasses set ``info`` and, for tunable recipes, ``params`` (name -> default). The
    constructor accepts exactly those names (a typo is an error, never ignored) and stores
    them unchanged as attributes. ``batch_size`` and ``n_batches`` may always be overridden.
    """

    info: ClassVar[ProxyInfo]
    params: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        allowed = {"batch_size": self.info.batch_size, "n_batches": self.info.n_batches,
                   **self.params}
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise ProxyError(
                f"proxy {self.info.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"valid: {', '.join(sorted(allowed)) or 'none'}"
            )
        for key, default in allowed.items():
            value = kwargs.get(key, default)
            if key in kwargs and default is not None:
                value = _coerce(self.info.name, key, value, type(default))
            setattr(self, key, value)
        if self.batch_size < 1 or self.n_batches < 1:
            raise ProxyError(f"proxy {self.info.name!r}: batch_size and n_batches must be >= 1")
        self.check()

    def check(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Validate parameters; raise :class:`ProxyError` with one clear line."""

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def higher_is_better(self) -> bool:
        return self.info.higher_is_better

    @property
    def needs_images(self) -> bool:
        return self.info.needs_images

    def config(self) -> dict[str, Any]:
        """Every setting that changes the score (part of the score-store key)."""
        out = {"batch_size": self.batch_size, "n_batches": self.n_batches}
        out.update({k: getattr(self, k) for k in self.params})
        return out

    def spec(self) -> str:
        """The canonical proxy spec string, e.g. ``stable(n_batches=4)``."""
        changed = {k: v for k, v in self.config().items() if v != _default(self, k)}
        if not changed:
            return self.name
        return f"{self.name}(" + ",".join(f"{k}={v}" for k, v in sorted(changed.items())) + ")"

    def requests(self) -> Sequence[PassRequest]:
        """Shared passes this proxy reads; declared so the context can merge them."""
        return ()

    @abc.abstractmethod
    def score(self, ctx: ScoringContext) -> float:
        """The score of ``ctx.arch``; must not modify anything the context hands out."""

    def __repr__(self) -> str:
        return f"<proxy {self.spec()} v{self.info.version}>"


def with_batch_at_most(proxy: Proxy, cap: int) -> Proxy:
    """``proxy`` with its batch size at most ``cap``, every other setting kept; ``proxy``
    itself when its batch is already within ``cap`` or it refuses the smaller batch."""
    if proxy.batch_size <= cap:
        return proxy
    try:
        return type(proxy)(**{**proxy.config(), "batch_size": cap})
    except Exception:  # a third party's check may raise anything: score it as configured
        return proxy


def _coerce(proxy: str, key: str, value: Any, kind: type) -> Any:
    """``value`` as the type of the parameter's default: an int parameter takes an integral
    number only (``2.0`` -> 2; ``2.5``, ``True`` and non-numbers are refused, never
    truncated), a float parameter any finite number, other types only themselves."""
    def bad(what: str) -> ProxyError:
        return ProxyError(f"proxy {proxy!r}: {key}={value!r} is not {what}")

    if kind is bool:
        if not isinstance(value, bool):
            raise bad("a bool (true or false)")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("an integer")
        if isinstance(value, float):
            if not (math.isfinite(value) and value.is_integer()):
                raise bad("an integer")
            value = int(value)
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a float")
        if not math.isfinite(value):
            raise bad("a finite float")
        return float(value)
    if not isinstance(value, kind):
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise bad(f"a {kind.__name__}") from None
    return value


def _default(proxy: Proxy, key: str) -> Any:
    if key == "batch_size":
        return proxy.info.batch_size
    if key == "n_batches":
        return proxy.info.n_batches
    return proxy.params[key]


# --- ranking ------------------------------------------------------------------------------------


def is_valid(value: float) -> bool:
    """A usable score: finite. NaN and +-inf are degenerate and rank last."""
    return value is not None and math.isfinite(value)


def sort_key(value: float, higher_is_better: bool = True) -> tuple[int, float]:
    """Key that sorts best first; non-finite scores go last, in a fixed order."""
    if not is_valid(value):
        return (1, 0.0)
    return (0, -value if higher_is_better else value)


def rank_order(values: Sequence[float], higher_is_better: bool = True) -> list[int]:
    """Indices of ``values`` from best to worst (stable; degenerate scores last)."""
    return sorted(range(len(values)), key=lambda i: sort_key(values[i], higher_is_better))


def goodness(values: Any, higher_is_better: bool = True) -> Any:
    """Scores as a float64 numpy array where larger is better and degenerate is ``-inf``.

    The one conversion every analysis uses, so NaN and infinities rank last the same way
    everywhere (ties among degenerate scores are ties).
    """
    import numpy as np

    arr = np.asarray(values, dtype=np.float64)
    out = arr if higher_is_better else -arr
    return np.where(np.isfinite(out), out, -np.inf)


# --- proxy spec strings -------------------------------------------------------------------------


def split_specs(text: str) -> list[str]:
    """Split ``'synflow,stable(n_batches=4,batch_size=64),naswot'`` at top-level commas."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ProxyError(f"unbalanced ')' in proxy list {text!r}")
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ProxyError(f"unbalanced '(' in proxy list {text!r}")
    out.append("".join(cur).strip())
    if any(not s for s in out):
        raise ProxyError(f"empty proxy name in {text!r}")
    return out


_SPEC = re.compile(r"^([A-Za-z0-9_:.\-]+)\s*(?:\((.*)\))?$")


def parse_spec(text: str) -> tuple[str, dict[str, Any]]:
    """``'stable(n_batches=4)'`` -> ``('stable', {'n_batches': 4})``; values are literals."""
    m = _SPEC.match(text.strip())
    if not m:
        raise ProxyError(f"malformed proxy spec {text!r}; expected NAME or NAME(key=value,...)")
    name, body = m.group(1), m.group(2)
    kwargs: dict[str, Any] = {}
    if body:
        for part in body.split(","):
            key, sep, raw = part.partition("=")
            key, raw = key.strip(), raw.strip()
            if not sep or not key.isidentifier():
                raise ProxyError(f"malformed parameter {part.strip()!r} in proxy spec {text!r}")
            kwargs[key] = literal(raw)
    return name, kwargs


def literal(raw: str) -> Any:
    """A spec value: an int, a float, ``true``/``false``, else the text (quotes stripped)."""
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw.strip("'\"")
