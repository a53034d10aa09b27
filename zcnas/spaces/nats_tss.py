"""NATS-Bench topology space (tss): the NAS-Bench-201 cell, 15,625 genotypes.

A cell is a DAG of four nodes; node 0 is the cell input, node 3 its output, and every pair
``i < j`` is joined by one edge carrying one of five ops. The genotype is the op on each of the
six edges, in the benchmark's edge order::

    (0->1), (0->2), (1->2), (0->3), (1->3), (2->3)

and its string form is ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` (node 1's inputs, then node 2's,
then node 3's). ``none`` is the zero op; a node is the sum of its incoming edges.

This module is pure Python (no torch) so that searchers can use it.
"""

from __future__ import annotations

import functools
import itertools
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from zcnas.errors import ArchError
from zcnas.spaces.base import ArchOrder, Costs, ModuleSpace

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_NODES = 4
NUM_EDGES = len(EDGES)
SIZE = len(OPS) ** NUM_EDGES  # 15,625
ARCH_FORMAT = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
#: Cells that stress a proxy: no path to the output, nothing but skips or pooling.
DEGENERATE_CELLS: MappingProxyType[str, str] = MappingProxyType({
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
})
_OP_INDEX = {op: i for i, op in enumerate(OPS)}
_EDGE_INDEX = {e: i for i, e in enumerate(EDGES)}


@dataclass(frozen=True, slots=True, order=True)
class Cell:
    """A topology-space genotype: the op name on each edge, in :data:`EDGES` order."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple):  # hashable, whatever sequence was given
            object.__setattr__(self, "ops", tuple(self.ops))
        if len(self.ops) != NUM_EDGES:
            raise ArchError(f"a cell has {NUM_EDGES} edges, got {len(self.ops)} ops")
        for op in self.ops:
            if op not in _OP_INDEX:
                raise ArchError(f"unknown op {op!r}; valid ops: {', '.join(OPS)}")

    def op(self, src: int, dst: int) -> str:
        """The op on edge ``src -> dst``."""
        return self.ops[_EDGE_INDEX[(src, dst)]]

    def inputs(self, node: int) -> list[tuple[str, int]]:
        """``(op, source)`` pairs flowing into ``node``, sources in increasing order."""
        return [(self.op(src, node), src) for src in range(node)]

    def __str__(self) -> str:
        return format_arch(self)


def parse_arch(text: str) -> Cell:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` into a :class:`Cell`.

    Inputs of a node may be listed in any order, but each earlier node must appear exactly once.
    Raises :class:`ArchError` with a message naming what is wrong and the expected format.
    """
    if not isinstance(text, str):
        raise ArchError(f"an arch string is a str, got {type(text).__name__}")
    return _parse_arch(text)


@functools.lru_cache(maxsize=1 << 16)
def _parse_arch(text: str) -> Cell:
    # cached: a search parses the same few thousand strings again and again (a raise is not
    # cached, and a Cell is immutable, so sharing one is safe)
    s = text.strip()

    def bad(why: str) -> ArchError:
        return ArchError(f"malformed arch string {text!r}: {why}; expected {ARCH_FORMAT}")

    groups = s.split("+")
    if len(groups) != NUM_NODES - 1:
        raise bad(f"{len(groups)} node group(s) separated by '+', expected {NUM_NODES - 1}")
    ops: dict[tuple[int, int], str] = {}
    for node, group in enumerate(groups, start=1):
        if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
            raise bad(f"node {node} group {group!r} must start and end with '|'")
        entries = group[1:-1].split("|")
        if len(entries) != node:
            raise bad(f"node {node} has {len(entries)} input edge(s), expected {node}")
        for entry in entries:
            op, sep, src_text = entry.partition("~")
            if not sep or not op or not src_text:
                raise bad(f"edge {entry!r} is not of the form op~input")
            if op not in _OP_INDEX:
                raise ArchError(
                    f"malformed arch string {text!r}: unknown op {op!r}; "
                    f"valid ops: {', '.join(OPS)}"
                )
            if not (src_text.isascii() and src_text.isdigit()):
                raise bad(f"edge {entry!r} has a non-integer input {src_text!r}")
            src = int(src_text)
            if src >= node:
                raise bad(f"node {node} takes input from node {src}; inputs must be 0..{node - 1}")
            if (src, node) in ops:
                raise bad(f"node {node} lists input {src} twice")
            ops[(src, node)] = op
    return Cell(tuple(ops[e] for e in EDGES))


def format_arch(cell: Cell) -> str:
    """The benchmark's string form of ``cell``."""
    return _format_ops(cell.ops)


@functools.cache  # at most the space's 15,625 cells
def _format_ops(ops: tuple[str, ...]) -> str:
    cell = Cell(ops)
    nodes = []
    for node in range(1, NUM_NODES):
        nodes.append("|" + "|".join(f"{op}~{src}" for op, src in cell.inputs(node)) + "|")
    return "+".join(nodes)


def as_cell(arch: Cell | str | Sequence[str]) -> Cell:
    """Accept a :class:`Cell`, an arch string or a sequence of six op names."""
    if isinstance(arch, Cell):
        return arch
    if isinstance(arch, str):
        return parse_arch(arch)
    return Cell(tuple(arch))


as_genotype = as_cell


def canonical_key(arch: Cell | str) -> str:
    """A canonical string of the cell's computation; isomorphic cells share it.

    This follows NAS-Bench-201's convention (``CellStructure.to_unique_str(consider_zero=True)``),
    which defines the benchmark's 6,466 unique cells: every node is written as the sorted sum of
    its incoming terms, where ``skip_connect`` passes its input's expression through, an op
    applied to an expression ``e`` is ``(e)@op``, and ``none`` (or any op fed by a node that is
    exactly zero) is the zero term ``#``. The key of the cell is the expression of node 3.

    It never merges cells that compute different functions. Being syntactic, it keeps a few
    functionally equal cells apart (``#+0`` is not simplified to ``0``); we keep that on purpose
    so keys and the benchmark's isomorphism classes agree exactly.
    """
    return _canonical_key(as_cell(arch))


@functools.cache  # at most the space's 15,625 cells
def _canonical_key(cell: Cell) -> str:
    expr = {0: "0"}
    for node in range(1, NUM_NODES):
        terms = []
        for op, src in cell.inputs(node):
            if op == "none" or expr[src] == "#":
                terms.append("#")
            elif op == "skip_connect":
                terms.append(expr[src])
            else:
                terms.append(f"({expr[src]})@{op}")
        expr[node] = "+".join(sorted(terms))
    return expr[NUM_NODES - 1]


#: The edges into node k (k = 1, 2, 3), as indices into :data:`EDGES`.
NODE_EDGES = {k: tuple(e for e, (_, dst) in enumerate(EDGES) if dst == k) for k in (1, 2, 3)}


def grown_cell(ops: Sequence[str], stage: int) -> str:
    """The cell of growth ``stage`` (1-3) whose grown edges carry ``ops`` (edges of nodes after
    ``stage`` are ignored): node ``stage`` feeds the output by a skip connection, later nodes
    are cut off. Stage 3 is the whole cell."""
    out = list(ops)
    if stage < 3:
        for e, (src, dst) in enumerate(EDGES):
            if dst > stage:
                out[e] = "skip_connect" if (src, dst) == (stage, 3) else "none"
    return format_arch(Cell(tuple(out)))


def live_edges(arch: Cell | str) -> tuple[bool, ...]:
    """For each edge, whether it can change the cell output.

    An edge is dead when its op is ``none``, when its source node is always zero (no non-zero
    path from the input), or when its target can never reach node 3. Dead edges need not be
    built: dropping them leaves the cell's output unchanged.
    """
    cell = as_cell(arch)
    nonzero = {0}
    for node in range(1, NUM_NODES):
        if any(op != "none" and src in nonzero for op, src in cell.inputs(node)):
            nonzero.add(node)
    reaches_out = {NUM_NODES - 1}
    for node in range(NUM_NODES - 2, -1, -1):
        if any(cell.op(node, dst) != "none" and dst in reaches_out
               for dst in range(node + 1, NUM_NODES)):
            reaches_out.add(node)
    return tuple(
        op != "none" and src in nonzero and dst in reaches_out
        for op, (src, dst) in zip(cell.ops, EDGES, strict=True)
    )


# --- enumeration and evolution operators -------------------------------------------------------


def all_archs() -> Iterator[Cell]:
    """All 15,625 cells (:func:`all_cells`)."""
    return all_cells()


def all_cells() -> Iterator[Cell]:
    """All 15,625 cells in a fixed (lexicographic op-index) order, lazily.

    This is *not* the benchmark's index order: use :class:`zcnas.spaces.ArchOrder` for that.
    """
    for ops in itertools.product(OPS, repeat=NUM_EDGES):
        yield Cell(ops)


def sample(rng: np.random.Generator) -> Cell:
    """A uniformly random cell."""
    return Cell(tuple([OPS[i] for i in rng.integers(len(OPS), size=NUM_EDGES).tolist()]))


#: Weight of each edge's op index in :func:`cell_code` (the first edge is the leading digit).
_CODE_WEIGHTS = np.array([len(OPS) ** (NUM_EDGES - 1 - e) for e in range(NUM_EDGES)])


@functools.cache  # at most the space's 15,625 cells, each formatted when first drawn
def _arch_of_code(code: int) -> str:
    return format_arch(cell_of_code(code))


def sample_archs(rng: np.random.Generator, n: int) -> list[str]:
    """The arch strings of ``n`` calls of :func:`sample`, from the same draws of ``rng``
    (numpy fills one ``(n, 6)`` call with the values of ``n`` calls of size 6, in order)."""
    codes = rng.integers(len(OPS), size=(n, NUM_EDGES)) @ _CODE_WEIGHTS
    return [_arch_of_code(c) for c in codes.tolist()]


def mutate(arch: Cell | str, rng: np.random.Generator) -> Cell:
    """Change the op of one uniformly chosen edge to a different, uniformly chosen op."""
    cell = as_cell(arch)
    edge = int(rng.integers(NUM_EDGES))
    choices = [op for op in OPS if op != cell.ops[edge]]
    ops = list(cell.ops)
    ops[edge] = choices[int(rng.integers(len(choices)))]
    return Cell(tuple(ops))


def crossover(
    a: Cell | str, b: Cell | str, rng: np.random.Generator, *, mode: str = "edge"
) -> Cell:
    """Uniform crossover of two parents.

    ``mode="edge"`` takes each edge's op from either parent with probability 1/2;
    ``mode="node"`` takes all incoming edges of each node (1, 2, 3) from one parent.
    """
    ca, cb = as_cell(a), as_cell(b)
    if mode == "edge":
        pick = rng.random(NUM_EDGES) < 0.5
    elif mode == "node":
        from_a = rng.random(NUM_NODES - 1) < 0.5
        pick = np.array([from_a[dst - 1] for _, dst in EDGES])
    else:
        raise ValueError(f"unknown crossover mode {mode!r}; use 'edge' or 'node'")
    return Cell(tuple(x if p else y for x, y, p in zip(ca.ops, cb.ops, pick, strict=True)))


def neighbours(arch: Cell | str) -> list[Cell]:
    """The 24 cells that differ from ``arch`` on exactly one edge (edge order, then op order)."""
    return list(_neighbours(as_cell(arch)))


@functools.cache  # at most the space's 15,625 cells
def _neighbours(cell: Cell) -> tuple[Cell, ...]:
    out = []
    for e in range(NUM_EDGES):
        for op in OPS:
            if op != cell.ops[e]:
                ops = list(cell.ops)
                ops[e] = op
                out.append(Cell(tuple(ops)))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def isomorphism_classes() -> tuple[tuple[Cell, ...], ...]:
    """The 6,466 classes of isomorphic cells (equal :func:`canonical_key`), each a tuple of its
    member cells in :func:`all_cells` order; classes ordered by their first member.

    De-isomorphic sampling draws a class uniformly, then a member: every distinct function is
    equally likely, instead of the 1,000-odd cells that compute zero outweighing the rest.
    """
    groups: dict[str, list[Cell]] = {}
    for cell in all_cells():
        groups.setdefault(canonical_key(cell), []).append(cell)
    return tuple(tuple(members) for members in groups.values())


# --- the benchmark's index order -------------------------------------------------------------

ORDER_FILE = "data/nats-tss-order.u16.zlib"


def cell_code(arch: Cell | str) -> int:
    """The cell's position in :func:`all_cells` order (base-5 digits of the six ops)."""
    code = 0
    for op in as_cell(arch).ops:
        code = code * len(OPS) + _OP_INDEX[op]
    return code


def cell_of_code(code: int) -> Cell:
    ops = []
    for _ in range(NUM_EDGES):
        code, d = divmod(code, len(OPS))
        ops.append(OPS[d])
    return Cell(tuple(reversed(ops)))


def write_order(meta_archs: Sequence[str], path) -> None:
    """Write the benchmark's index order (NATS-Bench's ``meta_archs``, e.g. from
    :func:`zcnas.lookup.load_meta_archs` of the official archive) as the packaged order file:
    the cell code of every index, little-endian uint16, zlib-compressed."""
    import zlib
    from array import array

    codes = array("H", (cell_code(a) for a in meta_archs))
    if sys.byteorder != "little":  # pragma: no cover
        codes.byteswap()
    with open(path, "wb") as fh:
        fh.write(zlib.compress(codes.tobytes(), 9))


class BenchmarkOrder(ArchOrder):
    """NATS-Bench's own numbering of the 15,625 cells (its ``meta_archs`` order, which is not
    :func:`all_cells`'s), shipped with the package as a permutation of cell codes (30 KB) so
    that an index is known without any data file; a test checks it against the official
    archive's meta list and the compact table."""

    def __init__(self) -> None:
        import zlib
        from array import array
        from importlib.resources import files

        raw = zlib.decompress(files("zcnas.spaces").joinpath(ORDER_FILE).read_bytes())
        codes = array("H")
        codes.frombytes(raw)
        if sys.byteorder != "little":  # pragma: no cover
            codes.byteswap()
        if len(codes) != SIZE or len(set(codes)) != SIZE:
            raise ArchError(f"the packaged {ORDER_FILE} is damaged: reinstall zcnas")
        self.search_space = SPACE
        self.space = SPACE.name
        self._codes = codes
        self._index = {c: i for i, c in enumerate(codes)}

    def __len__(self) -> int:
        return SIZE

    def arch(self, index: int) -> str:
        if not 0 <= index < SIZE:
            raise ArchError(f"index {index} out of range 0..{SIZE - 1}")
        return format_arch(cell_of_code(self._codes[index]))

    def index(self, arch) -> int:
        return self._index[cell_code(arch)]

    @property
    def archs(self) -> list[str]:
        return [format_arch(cell_of_code(c)) for c in self._codes]


# --- the space object (registered as ``nats-tss`` through the zcnas.spaces entry points) ------


class NatsTopology(ModuleSpace):
    """The NATS-Bench topology space (NAS-Bench-201 cells); see the module docstring."""

    name = "nats-tss"
    aliases = ("nats_tss", "tss", "topology", "nb201", "nas-bench-201")
    arch_format = ARCH_FORMAT
    size = SIZE
    model = "zcnas.models.network:build_tss_network"
    indexed = True
    description = "NATS-Bench topology space: the NAS-Bench-201 cell, 6 edges x 5 ops"
    examples = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
        "|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|"
        "nor_conv_3x3~2|",
    )
    degenerate = DEGENERATE_CELLS
    ops = sys.modules[__name__]

    @functools.cached_property
    def _order(self) -> BenchmarkOrder:
        return BenchmarkOrder()

    def index_order(self) -> BenchmarkOrder:
        """NATS-Bench's numbering, shipped with the package (:class:`BenchmarkOrder`)."""
        return self._order

    def costs(self, arch, dataset: str) -> Costs:
        from zcnas.spaces.plan import count_costs, tss_plan

        return count_costs(tss_plan(arch, dataset))

    def describe(self, arch) -> list[tuple[str, str]]:
        live = live_edges(arch)
        return [("iso key", canonical_key(arch)), ("live edges", f"{sum(live)} of {len(live)}")]


SPACE = NatsTopology()
