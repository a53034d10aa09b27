"""NATS-Bench size space (sss): 5 layer widths from {8, 16, ..., 64}, 32,768 genotypes.

The cell topology is fixed (the best cell of the topology space, :data:`SSS_CELL`); a genotype
is the number of channels of the stem/first cell, the first reduction, the second cell, the
second reduction and the last cell, written ``"8:16:24:32:64"``.

The benchmark's index order is the product order with the last layer varying fastest
(index 0 is ``8:8:8:8:8``, index 1 ``8:8:8:8:16``); :func:`index_of` and :func:`at_index`
compute it, and a test checks it against the official ``meta_archs``.

Pure Python, no torch.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from zcnas.errors import ArchError
from zcnas.spaces.base import ArchOrder, Costs, ModuleSpace

WIDTHS: tuple[int, ...] = (8, 16, 24, 32, 40, 48, 56, 64)
NUM_LAYERS = 5
SIZE = len(WIDTHS) ** NUM_LAYERS  # 32,768
SSS_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
ARCH_FORMAT = "w:w:w:w:w with w in " + "/".join(map(str, WIDTHS))
_WIDTH_INDEX = {w: i for i, w in enumerate(WIDTHS)}


@dataclass(frozen=True, slots=True, order=True)
class Widths:
    """A size-space genotype: five channel counts."""

    channels: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.channels) != NUM_LAYERS:
            raise ArchError(f"a size-space genotype has {NUM_LAYERS} widths, got {self.channels}")
        for c in self.channels:
            if c not in _WIDTH_INDEX:
                raise ArchError(f"width {c} not in {WIDTHS}")

    def __str__(self) -> str:
        return format_arch(self)


def parse_arch(text: str) -> Widths:
    """Parse ``"8:16:24:32:64"``; raises :class:`ArchError` naming the problem."""
    if not isinstance(text, str):
        raise ArchError(f"an arch string is a str, got {type(text).__name__}")
    parts = text.strip().split(":")
    if len(parts) != NUM_LAYERS:
        raise ArchError(
            f"malformed size-space arch {text!r}: {len(parts)} width(s), expected {ARCH_FORMAT}"
        )
    widths = []
    for p in parts:
        if not (p.strip().isascii() and p.strip().isdigit()):
            raise ArchError(f"malformed size-space arch {text!r}: {p!r} is not an integer")
        w = int(p)
        if w not in _WIDTH_INDEX:
            raise ArchError(f"malformed size-space arch {text!r}: width {w} not in {WIDTHS}")
        widths.append(w)
    return Widths(tuple(widths))


def format_arch(g: Widths) -> str:
    return ":".join(str(c) for c in g.channels)


def as_widths(arch: Widths | str | Sequence[int]) -> Widths:
    if isinstance(arch, Widths):
        return arch
    if isinstance(arch, str):
        return parse_arch(arch)
    return Widths(tuple(int(c) for c in arch))


as_genotype = as_widths


def canonical_key(arch: Widths | str) -> str:
    """Every size-space genotype is its own class."""
    return format_arch(as_widths(arch))


def index_of(arch: Widths | str) -> int:
    """The benchmark index of a genotype (product order, last layer fastest)."""
    idx = 0
    for c in as_widths(arch).channels:
        idx = idx * len(WIDTHS) + _WIDTH_INDEX[c]
    return idx


def at_index(index: int) -> Widths:
    if not 0 <= index < SIZE:
        raise ArchError(f"size-space index {index} out of range 0..{SIZE - 1}")
    digits = []
    for _ in range(NUM_LAYERS):
        index, d = divmod(index, len(WIDTHS))
        digits.append(WIDTHS[d])
    return Widths(tuple(reversed(digits)))


def all_archs() -> Iterator[Widths]:
    """All genotypes in benchmark index order."""
    for i in range(SIZE):
        yield at_index(i)


def sample(rng: np.random.Generator) -> Widths:
    return Widths(tuple(WIDTHS[i] for i in rng.integers(len(WIDTHS), size=NUM_LAYERS)))


def mutate(arch: Widths | str, rng: np.random.Generator) -> Widths:
    """Change one uniformly chosen layer to a different, uniformly chosen width."""
    g = as_widths(arch)
    layer = int(rng.integers(NUM_LAYERS))
    choices = [w for w in WIDTHS if w != g.channels[layer]]
    ch = list(g.channels)
    ch[layer] = choices[int(rng.integers(len(choices)))]
    return Widths(tuple(ch))


def crossover(
    a: Widths | str, b: Widths | str, rng: np.random.Generator, *, mode: str = "edge"
) -> Widths:
    """Layer-wise uniform crossover (``mode`` "edge" and "node" both mean per layer here)."""
    if mode not in ("edge", "node", "layer"):
        raise ValueError(f"unknown crossover mode {mode!r}; use 'edge', 'node' or 'layer'")
    ga, gb = as_widths(a), as_widths(b)
    pick = rng.random(NUM_LAYERS) < 0.5
    return Widths(tuple(x if p else y for x, y, p in zip(ga.channels, gb.channels, pick,
                                                          strict=True)))


def neighbours(arch: Widths | str) -> list[Widths]:
    """The 35 genotypes that differ from ``arch`` in exactly one layer."""
    g = as_widths(arch)
    out = []
    for layer in range(NUM_LAYERS):
        for w in WIDTHS:
            if w != g.channels[layer]:
                ch = list(g.channels)
                ch[layer] = w
                out.append(Widths(tuple(ch)))
    return out


# --- the space object (registered as ``nats-sss`` through the zcnas.spaces entry points) ------


class _ComputedOrder(ArchOrder):
    """The size space's index order, computed (product order, last layer fastest)."""

    def __init__(self) -> None:  # no list is built: indices are arithmetic
        self.search_space = SPACE
        self.space = SPACE.name

    def __len__(self) -> int:
        return SIZE

    def arch(self, index: int) -> str:
        return format_arch(at_index(index))

    def index(self, arch) -> int:
        return index_of(as_widths(arch))

    @property
    def archs(self) -> list[str]:
        return [format_arch(g) for g in all_archs()]


class NatsSize(ModuleSpace):
    """The NATS-Bench size space; see the module docstring."""

    name = "nats-sss"
    aliases = ("nats_sss", "sss", "size")
    arch_format = ARCH_FORMAT
    size = SIZE
    model = "zcnas.models.network:build_sss_network"
    indexed = True
    description = "NATS-Bench size space: 5 layer widths in 8..64 around the best tss cell"
    examples = ("8:16:24:32:40", "64:32:64:16:48")
    ops = sys.modules[__name__]

    def index_order(self) -> ArchOrder:
        return _ComputedOrder()

    def costs(self, arch, dataset: str) -> Costs:
        from zcnas.spaces.plan import count_costs, sss_plan

        return count_costs(sss_plan(arch, dataset))


SPACE = NatsSize()
