"""The search-space contract: genotypes, their string forms and evolution operators.

A :class:`SearchSpace` is a small object (pure Python, no torch) that every part of zcnas
talks to: the searchers (sample, mutate, crossover, neighbours), the scoring engine and the
store (canonical keys, so isomorphic genotypes are scored once), the CLI (parse, format,
benchmark indices) and the size constraints (cost counts). It also *names* the builder of its
torch models, ``"module:function"``, imported only when a network is built::

    def build(genotype, num_classes, **options) -> torch.nn.Module

Options a builder may accept (a builder takes the ones it names in its signature; the others
are not passed): ``affine`` and ``track`` (BN of the searchable part), ``prune`` (leave out
parts that cannot change the output, with the same module names, so the pruned network loads
the naive one's ``state_dict``) and ``relu_probes`` (keep every ReLU of the naive network
running on its naive input in a pruned build). A naive network may offer
``prune_(relu_probes=...)``, pruning itself in place into what the pruned build would be with
its weights; the scoring context then uses it instead of a second build. The network returns
logits. Proxies that read intermediate features use its body: ``stem``, ``cells`` (blocks
run in order) and ``lastact`` as NATS-Bench's networks have, or an ``nn.Sequential`` (see
:func:`zcnas.models.body`).

Spaces are plugins: the built-in ``nats-tss`` and ``nats-sss`` register through the
``zcnas.spaces`` entry-point group exactly as a third-party package registers its own::

    [project.entry-points."zcnas.spaces"]
    my-space = "my_package.space:SPACE"        # a SearchSpace instance named "my-space"
"""

from __future__ import annotations

import abc
import importlib
import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from zcnas.errors import ArchError, UserError


@dataclass(frozen=True, slots=True)
class Costs:
    """Size of a network: trainable parameters and multiply-adds per image."""

    params: int
    flops: int

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def flops_m(self) -> float:
        return self.flops / 1e6


class ArchOrder:
    """A benchmark's index <-> arch string mapping, from its official list of arch strings.

    The list is validated (every entry parses, no duplicates) and stored in the format the
    space writes, so lookups by any equivalent spelling work.
    """

    def __init__(self, archs: Sequence[str], space: SearchSpace | str = "nats-tss") -> None:
        from zcnas.spaces import get_space

        self.search_space = get_space(space)
        self.space = self.search_space.name
        sp = self.search_space
        self._archs = [sp.format_arch(sp.parse_arch(a)) for a in archs]
        self._index = {a: i for i, a in enumerate(self._archs)}
        if len(self._index) != len(self._archs):
            raise ArchError("the arch list has duplicate entries; it is not a benchmark order")

    def __len__(self) -> int:
        return len(self._archs)

    def arch(self, index: int) -> str:
        if not 0 <= index < len(self._archs):
            raise ArchError(f"index {index} out of range 0..{len(self._archs) - 1}")
        return self._archs[index]

    def index(self, arch) -> int:
        sp = self.search_space
        text = sp.format_arch(sp.as_genotype(arch))
        try:
            return self._index[text]
        except KeyError:
            raise ArchError(f"{text} is not in the benchmark list") from None

    @property
    def archs(self) -> list[str]:
        return list(self._archs)


class SearchSpace(abc.ABC):
    """One search space. Subclasses set the class attributes and implement the abstract
    methods; the defaults of the others suit a space whose genotypes are all distinct
    functions and which no benchmark indexes.

    Attributes: ``name`` (the registered name), ``aliases`` (other names a user may type),
    ``arch_format`` (the string form, for messages), ``size`` (number of genotypes, or None
    when not finite or unknown), ``model`` (``"module:function"`` of the model builder, or
    the callable itself), ``indexed`` (a benchmark numbers the genotypes: an index may be
    given instead of an arch string), ``description`` (one line for listings), ``examples``
    and ``degenerate`` (genotypes the conformance kit scores proxies on).
    """

    name: str = ""
    aliases: tuple[str, ...] = ()
    arch_format: str = ""
    size: int | None = None
    model: str | Callable[..., Any] = ""
    indexed: bool = False
    description: str = ""
    #: A few typical genotypes (arch strings) the conformance kit scores proxies on.
    examples: tuple[str, ...] = ()
    #: Genotypes that stress a proxy (no path to the output, zero output...): label -> arch.
    degenerate: Mapping[str, str] = MappingProxyType({})

    # --- genotypes ---------------------------------------------------------------------------

    @abc.abstractmethod
    def parse_arch(self, text: str) -> Any:
        """Parse an arch string into a genotype; :class:`ArchError` naming what is wrong."""

    @abc.abstractmethod
    def format_arch(self, genotype: Any) -> str:
        """The string form of a genotype (``parse_arch(format_arch(g)) == g``)."""

    def validate(self, genotype: Any) -> Any:
        """A genotype of this space built from ``genotype`` (anything but a string), or
        :class:`ArchError`. Default: round-trip through the string form."""
        try:
            return self.parse_arch(self.format_arch(genotype))
        except ArchError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure is a foreign object
            raise ArchError(f"{genotype!r} is not a genotype of {self.name}") from err

    def as_genotype(self, arch: Any) -> Any:
        """An arch string or a genotype -> the genotype."""
        return self.parse_arch(arch) if isinstance(arch, str) else self.validate(arch)

    def canonical_key(self, arch: Any) -> str:
        """A string shared exactly by genotypes that compute the same function (isomorphs are
        scored once). Default: every genotype is its own class."""
        return self.format_arch(self.as_genotype(arch))

    def representative(self, arch: Any) -> str | None:
        """The arch string of the member of ``arch``'s class (equal :meth:`canonical_key`) that
        the class's shared scores are computed on: the same member whichever one is asked for
        and whatever was scored before, so that a score table does not depend on the order in
        which it was filled (isomorphs build different networks, so they draw different random
        weights). Default: the key itself when it is the arch string of a member; otherwise
        the class's first member in the benchmark's index order (:meth:`index_order`, else
        :meth:`all_archs`), the space enumerated once, the first time it is asked; None when
        the space cannot be enumerated (a class's scores are then computed on the first
        member met)."""
        key = self.canonical_key(arch)
        try:
            named = self.parse_arch(key)
            if self.canonical_key(named) == key:  # the key names a member of its class
                return self.format_arch(named)
        except Exception:  # noqa: BLE001 - the key is not an arch string: look the class up
            pass
        if "_representatives" not in self.__dict__:
            first: dict[str, str] | None = None
            if self.size is not None and self.size <= 100_000:
                try:
                    order = self.index_order()
                    archs = order.archs if order is not None else self.all_archs()
                    first = {}
                    for a in archs:
                        first.setdefault(self.canonical_key(a), self.format_arch(
                            self.as_genotype(a)))
                except Exception:  # noqa: BLE001 - not enumerable: first member met
                    first = None
            self.__dict__["_representatives"] = first
        reps = self.__dict__["_representatives"]
        return None if reps is None else reps.get(key)

    def distinct_keys(self) -> frozenset[str] | None:
        """Every class of the space (its distinct :meth:`canonical_key`), or None when they
        are not listed (no finite ``size``, over 100,000 genotypes, or enumerating fails).
        Enumerated once, the first time it is asked (a searcher asks when its random draws
        start failing, to stop drawing in an exhausted space)."""
        if "_distinct_keys" not in self.__dict__:
            keys = None
            if self.size is not None and self.size <= 100_000:
                try:
                    keys = frozenset(self.canonical_key(a) for a in self.all_archs())
                except Exception:  # noqa: BLE001 - not enumerable: the searcher just draws on
                    keys = None
            self.__dict__["_distinct_keys"] = keys
        return self.__dict__["_distinct_keys"]

    # --- evolution operators (they take and return genotypes) -----------------------------

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Any:
        """A uniformly random genotype, drawn from ``rng`` only."""

    def sample_archs(self, rng: np.random.Generator, n: int) -> list[str]:
        """The arch strings of ``n`` calls of :meth:`sample`, drawing from ``rng`` exactly what
        those calls draw. A space may override it with a faster batch that keeps this
        contract: a searcher rewinds ``rng`` and redraws a prefix of the batch."""
        return [self.format_arch(self.sample(rng)) for _ in range(n)]

    @abc.abstractmethod
    def mutate(self, arch: Any, rng: np.random.Generator) -> Any:
        """A genotype that differs from ``arch`` by one elementary change."""

    @abc.abstractmethod
    def crossover(self, a: Any, b: Any, rng: np.random.Generator) -> Any:
        """A child of two parents."""

    @abc.abstractmethod
    def neighbours(self, arch: Any) -> list[Any]:
        """Every genotype one elementary change away, in a fixed order."""

    # --- enumeration and benchmark order -----------------------------------------------------

    def all_archs(self) -> Iterator[Any]:
        """Every genotype, lazily, in the space's own order (the benchmark's when it computes
        it). Default: not enumerable."""
        raise UserError(f"the {self.name} space cannot be enumerated; give a number of "
                        "architectures or a file of arch strings")

    def index_order(self) -> ArchOrder | None:
        """The benchmark's index order when the space can compute it without data (None when
        it comes from a benchmark file, or when no benchmark numbers this space)."""
        return None

    # --- sizes and descriptions --------------------------------------------------------------

    def costs(self, arch: Any, dataset: str) -> Costs | None:
        """Analytic parameter and FLOP counts of the network for ``dataset``, or None when
        only building the network tells (the scoring context then counts on the model)."""
        return None

    def describe(self, arch: Any) -> list[tuple[str, str]]:
        """Extra ``(label, text)`` lines for ``zcnas arch`` (e.g. live edges)."""
        return []

    # --- the model builder -------------------------------------------------------------------

    def model_builder(self) -> Callable[..., Any]:
        """The builder ``(genotype, num_classes, **options) -> nn.Module``, imported now."""
        model = inspect.getattr_static(self, "model")  # a function set on the class: unbound
        if isinstance(model, staticmethod):
            model = model.__func__
        if callable(model):
            return model
        module, sep, attr = str(model).partition(":")
        if not sep:
            raise UserError(f"search space {self.name!r} names no model builder "
                            f"(model={self.model!r}; expected 'module:function')")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise UserError(f"the model builder {self.model} of search space {self.name!r} "
                            f"cannot be imported: {err}") from None

    def __repr__(self) -> str:
        return f"<search space {self.name}>"


class ModuleSpace(SearchSpace):
    """A space whose genotype functions are those of a module (the built-in spaces' style):
    ``parse_arch``, ``format_arch``, ``as_genotype`` (called ``ops.as_genotype``),
    ``canonical_key``, ``sample``, ``mutate``, ``crossover``, ``neighbours``, ``all_archs``
    of ``ops`` are the space's operators."""

    ops: Any = None  # the module; set by the subclass

    def parse_arch(self, text: str) -> Any:
        return self.ops.parse_arch(text)

    def format_arch(self, genotype: Any) -> str:
        return self.ops.format_arch(self.ops.as_genotype(genotype))

    def validate(self, genotype: Any) -> Any:
        try:
            return self.ops.as_genotype(genotype)
        except (TypeError, ValueError) as err:
            raise ArchError(f"{genotype!r} is not a genotype of {self.name}: {err}") from None

    def as_genotype(self, arch: Any) -> Any:
        return self.validate(arch) if not isinstance(arch, str) else self.ops.parse_arch(arch)

    def canonical_key(self, arch: Any) -> str:
        return self.ops.canonical_key(arch)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.ops.sample(rng)

    def sample_archs(self, rng: np.random.Generator, n: int) -> list[str]:
        # the module's batch keeps the contract only for the module's own sample and format
        own = (type(self).sample is ModuleSpace.sample
               and type(self).format_arch is ModuleSpace.format_arch)
        fast = getattr(self.ops, "sample_archs", None) if own else None
        return fast(rng, n) if fast is not None else super().sample_archs(rng, n)

    def mutate(self, arch: Any, rng: np.random.Generator) -> Any:
        return self.ops.mutate(arch, rng)

    def crossover(self, a: Any, b: Any, rng: np.random.Generator, *, mode: str = "edge") -> Any:
        return self.ops.crossover(a, b, rng, mode=mode)

    def neighbours(self, arch: Any) -> list[Any]:
        return self.ops.neighbours(arch)

    def all_archs(self) -> Iterator[Any]:
        return self.ops.all_archs()


def validate_space(name: str, obj: Any) -> None:
    """Raise unless ``obj`` is a usable :class:`SearchSpace` instance registered as ``name``."""
    if not isinstance(obj, SearchSpace):
        raise TypeError(f"{obj!r} is not a zcnas.spaces.SearchSpace instance")
    if obj.name != name:
        raise ValueError(f"search space {obj!r} has name {obj.name!r} but is registered as "
                         f"{name!r}")
    if not obj.arch_format:
        raise ValueError(f"search space {name!r} declares no arch_format")
    if not obj.model:
        raise ValueError(f"search space {name!r} names no model builder")
