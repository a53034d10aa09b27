"""Search methods as plugins: one record per method, found through entry points.

A :class:`Method` names everything that makes a search method: the searcher factory (what to
try next), the default ladder factory (how far to push each candidate), optional proposers
(candidates found outside the searcher's own operators, e.g. a supernet's gradient-guided
local search), how many cells it asks per step, whether it needs a lookup or trains, and its
own parameters as a frozen dataclass. Built-ins (``random``, ``rea``, ``ls``, ``mfea``,
``mfnas``, ``oneshot``, ``genas``, ``gevonas``, ``ftga``) register through the
``zcnas.methods`` entry-point group exactly as a third-party method does::

    [project.entry-points."zcnas.methods"]
    my_method = "my_package.search:METHOD"     # a zcnas.search.Method named "my_method"

A third party declaring a built-in's name is listed as a clash and ignored (built-ins win); it
never breaks ``import zcnas.search``.

Factories receive a :class:`BuildContext` (the run's :class:`~zcnas.search.SearchConfig`,
the method's parameters, the lookup or None, the data folder, the score store, a working
folder). Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zcnas.errors import UserError
from zcnas.plugins import Registry

if TYPE_CHECKING:  # pragma: no cover
    from zcnas.search.base import Searcher
    from zcnas.search.driver import SearchConfig
    from zcnas.search.ladder import Ladder
    from zcnas.search.proposer import Proposer
    from zcnas.spaces import SearchSpace


@dataclass(frozen=True)
class NoParams:
    """The parameters of a method that has none."""


@dataclass(frozen=True)
class BuildContext:
    """What a method's factories build from: the run's configuration, the method's own
    parameters, the lookup (None: no lookup), the data folder, the score store (or None), a
    working folder for checkpoints of training fidelities (or None) and the executor that
    scores a population in parallel (None: this process)."""

    config: SearchConfig
    params: Any
    bench: Any = None
    root: Any = None
    store: Any = None
    workdir: Any = None
    executor: Any = None

    @property
    def space(self) -> SearchSpace:
        from zcnas.spaces import get_space

        return get_space(self.config.space)

    @property
    def proxy_dataset(self) -> str:
        """The dataset whose images (and head) the zero-cost fidelity uses."""
        return self.config.proxy_dataset or self.config.dataset

    def selection_split(self) -> str:
        """The split lookups are read from for selection: the config's, or on ``auto``
        validation when the lookup has it for the dataset, else test."""
        if self.config.split != "auto":
            return self.config.split
        has = self.bench is not None and self.bench.has_split(self.config.dataset, "valid")
        return "valid" if has else "test"

    def select(self, default: str) -> str:
        """The final-choice rule: the config's, or the method's default on ``auto``."""
        return default if self.config.select == "auto" else self.config.select


@dataclass(frozen=True)
class Method:
    """A search method: see the module docstring.

    ``searcher(ctx) -> Searcher``; ``ladder(ctx, searcher) -> Ladder`` (the default ladder,
    used unless a ladder is given); ``proposers(ctx, searcher, ladder) -> [Proposer]``;
    ``batch``: cells asked per step (1 for the sequential baselines); ``needs_lookup``: refused
    without a lookup; ``trains``: spends real seconds of this machine (its default budget is
    :data:`TRAINING_BUDGET`, and ``--method all`` leaves it out); ``spaces``: the spaces it is
    defined for (None: any); ``uses_fitness``: its default ladder scores cells with the run's
    zero-cost fitness even when a lookup is open (the images it needs are checked before any
    run); ``params``: a frozen dataclass of its parameters, all with defaults;
    ``quick_params``: ``(name, value)`` pairs it takes instead of the defaults in the quick
    start (no lookup, the default 60 s of proxy compute: a few dozen cells), unless the user
    sets them.
    """

    name: str
    description: str
    searcher: Callable[[BuildContext], Searcher]
    ladder: Callable[[BuildContext, Searcher], Ladder]
    params: type = NoParams
    proposers: Callable[[BuildContext, Searcher, Ladder], list[Proposer]] | None = None
    batch: int = 64
    needs_lookup: bool = False
    trains: bool = False
    spaces: tuple[str, ...] | None = None
    uses_fitness: bool = True
    quick_params: tuple[tuple[str, Any], ...] = ()

    def make_params(self, values: Mapping[str, Any] | None = None) -> Any:
        """The method's parameters with ``values`` over the defaults; one-line errors for an
        unknown name or a value of the wrong kind."""
        values = dict(values or {})
        fields = {f.name: f for f in dataclasses.fields(self.params)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            valid = ", ".join(sorted(fields)) or "none"
            raise UserError(f"search method {self.name!r} has no parameter "
                            f"{', '.join(map(repr, unknown))}; its parameters: {valid}")
        out = {}
        for key, value in values.items():
            default = fields[key].default
            out[key] = _coerce(self.name, key, value, default)
        try:
            return self.params(**out)
        except (TypeError, ValueError) as err:
            raise UserError(f"search method {self.name!r}: {err}") from None

    def supports(self, space: str) -> bool:
        return self.spaces is None or space in self.spaces


def _coerce(method: str, key: str, value: Any, default: Any) -> Any:
    """``value`` as the kind of the parameter's default (int, float, bool, str; None defaults
    take an int or float)."""
    def bad(kind: str) -> UserError:
        return UserError(f"search method {method!r}: {key}={value!r} is not {kind}")

    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int) or default is None:
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise bad("a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        if isinstance(default, int) or float(value).is_integer():
            if not (math.isfinite(value) and float(value).is_integer()):
                raise bad("an integer")
            return int(value)
        return float(value)
    if isinstance(default, float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise bad("a number") from None
        if not math.isfinite(value):
            raise bad("a finite number")
        return value
    return value


def validate_method(name: str, obj: Any) -> None:
    if not isinstance(obj, Method):
        raise TypeError(f"{obj!r} is not a zcnas.search.Method record")
    if obj.name != name:
        raise ValueError(f"method record {obj.name!r} is registered as {name!r}")
    if not dataclasses.is_dataclass(obj.params):
        raise TypeError(f"method {name!r}: params must be a dataclass type")
    if obj.batch < 1:
        raise ValueError(f"method {name!r}: batch must be >= 1")


#: Search-method plugins (entry-point group ``zcnas.methods``): name -> :class:`Method`.
METHODS = Registry("zcnas.methods", kind="search method", validate=validate_method,
                   list_command="zcnas methods list")
#: The default budget (seconds of this machine) of a method that trains.
TRAINING_BUDGET = 3600.0
#: The order built-in methods are listed (and run by ``--method all``) in.
BUILTIN_ORDER = ("mfea", "rea", "random", "ls", "mfnas", "oneshot", "genas", "gevonas", "ftga")


def get_method(name: str) -> Method:
    """The method registered as ``name``; one line listing the valid names otherwise."""
    if name not in METHODS:
        raise UserError(f"unknown search method {name!r}; valid: {', '.join(list_methods())}")
    return METHODS.get(name)


def list_methods(*, lookup_only: bool = False) -> list[str]:
    """Names of the installed search methods (built-ins first); ``lookup_only`` leaves out the
    methods that train (what ``--method all`` means)."""
    rank = {n: i for i, n in enumerate(BUILTIN_ORDER)}
    names = sorted(METHODS.names(), key=lambda n: (rank.get(n, len(rank)), n))
    if lookup_only:
        names = [n for n in names if not _trains(n)]
    return names


def _trains(name: str) -> bool:
    try:
        return METHODS.get(name).trains
    except UserError:  # a broken plugin is not part of "all"
        return True
