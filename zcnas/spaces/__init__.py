"""Search spaces: genotypes, their string forms, isomorphism keys and evolution operators.

Pure Python (no torch). Each space module offers the same functions::

    parse_arch(str) -> genotype        format_arch(genotype) -> str
    canonical_key(arch) -> str         sample(rng) / mutate(arch, rng) / crossover(a, b, rng)
    neighbours(arch) -> list           SIZE, ARCH_FORMAT

Index <-> arch mapping follows the benchmark's own order: :class:`ArchOrder` wraps the official
``meta_archs`` list (or the lookup table's ``arch`` column); the size space's order is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from zcnas.errors import ArchError, UnknownNameError
from zcnas.spaces import nats_sss, nats_tss

SPACES: dict[str, ModuleType] = {"nats-tss": nats_tss, "nats-sss": nats_sss}
_ALIASES = {
    "nats-tss": "nats-tss", "nats_tss": "nats-tss", "tss": "nats-tss", "topology": "nats-tss",
    "nb201": "nats-tss", "nas-bench-201": "nats-tss",
    "nats-sss": "nats-sss", "nats_sss": "nats-sss", "sss": "nats-sss", "size": "nats-sss",
}


def canonical_space(name: str) -> str:
    try:
        return _ALIASES[str(name).lower()]
    except KeyError:
        raise UnknownNameError(
            f"unknown search space {name!r}; valid spaces: {', '.join(SPACES)}"
        ) from None


def get_space(name: str) -> ModuleType:
    """The space module for ``name`` (``nats-tss``/``tss``, ``nats-sss``/``sss``)."""
    return SPACES[canonical_space(name)]


class ArchOrder:
    """The benchmark's index <-> arch string mapping, from its official list of arch strings.

    The list is validated (every entry parses, no duplicates) and stored in the format
    :func:`format_arch` produces, so lookups by any equivalent spelling work.
    """

    def __init__(self, archs: Sequence[str], space: str = "nats-tss") -> None:
        self.space = canonical_space(space)
        mod = get_space(self.space)
        self._archs = [mod.format_arch(mod.parse_arch(a)) for a in archs]
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
        mod = get_space(self.space)
        key = arch if not isinstance(arch, str) else mod.parse_arch(arch)
        try:
            return self._index[mod.format_arch(key)]
        except KeyError:
            raise ArchError(f"{mod.format_arch(key)} is not in the benchmark list") from None

    @property
    def archs(self) -> list[str]:
        return list(self._archs)


def resolve_arch(text: str, space: str = "nats-tss", order: ArchOrder | None = None):
    """Parse an arch string or a benchmark index (digits) into ``(genotype, index or None)``."""
    mod = get_space(space)
    s = str(text).strip()
    if s.isdigit() and canonical_space(space) == "nats-tss":
        if order is None:
            raise ArchError(
                f"index {s} needs the benchmark's arch order; pass --data PATH or set ZCNAS_DATA"
            )
        return mod.parse_arch(order.arch(int(s))), int(s)
    if s.isdigit():
        idx = int(s)
        return nats_sss.at_index(idx), idx
    g = mod.parse_arch(s)
    if order is not None:
        return g, order.index(g)
    if mod is nats_sss:
        return g, nats_sss.index_of(g)
    return g, None
