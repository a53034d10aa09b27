import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zcnas.errors import ArchError
from zcnas.spaces import ArchOrder, get_space, nats_tss, resolve_arch
from zcnas.spaces.nats_tss import OPS, Cell, canonical_key, format_arch, parse_arch

ARCH_11 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
cells = st.tuples(*[st.sampled_from(OPS)] * 6).map(Cell)


def test_parse_known_arch_edge_order():
    c = parse_arch(ARCH_11)
    assert c.ops == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "none", "nor_conv_3x3",
                     "avg_pool_3x3")
    assert c.op(1, 2) == "avg_pool_3x3" and c.op(0, 3) == "none"
    assert format_arch(c) == ARCH_11


@given(cells)
def test_format_parse_round_trip(cell):
    s = format_arch(cell)
    assert parse_arch(s) == cell
    assert format_arch(parse_arch(s)) == s


@given(cells, st.randoms())
def test_parse_accepts_any_input_order(cell, rnd):
    groups = []
    for node in range(1, 4):
        entries = [f"{op}~{src}" for op, src in cell.inputs(node)]
        rnd.shuffle(entries)
        groups.append("|" + "|".join(entries) + "|")
    assert parse_arch("+".join(groups)) == cell


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
        ("|none~0|+|none~0|none~1|", "2 node group(s)"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 has 1 input edge(s)"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", "node 3 has 4 input"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must start and end with '|'"),
        ("|none-0|+|none~0|none~1|+|none~0|none~1|none~2|", "not of the form op~input"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "inputs must be 0..0"),
        ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "inputs must be 0..1"),
        ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "lists input 0 twice"),
        ("|none~x|+|none~0|none~1|+|none~0|none~1|none~2|", "non-integer input"),
        ("", "node group"),
    ],
)
def test_malformed_arch_strings(text, fragment):
    with pytest.raises(ArchError) as err:
        parse_arch(text)
    msg = str(err.value)
    assert fragment in msg
    assert "\n" not in msg
    with pytest.raises(ArchError, match=re.escape(fragment)):  # a raise is never cached
        parse_arch(text)


def test_cached_operators_return_fresh_results():
    """parse, format, key and neighbours are cached per cell: the answers stay right and a
    caller that changes a returned list changes nothing for the next caller."""
    cell = parse_arch(ARCH_11)
    assert parse_arch(ARCH_11) == cell and format_arch(cell) == ARCH_11
    with pytest.raises(ArchError, match="is a str"):
        parse_arch(123)
    nb = nats_tss.neighbours(cell)
    nb.clear()
    assert len(nats_tss.neighbours(cell)) == 24
    assert nats_tss.neighbours(ARCH_11) == nats_tss.neighbours(cell)
    reordered = "|nor_conv_3x3~0|+|avg_pool_3x3~1|nor_conv_3x3~0|+" + ARCH_11.split("+")[2]
    assert parse_arch(reordered) == cell  # another string, the same (cached) cell
    assert nats_tss.canonical_key(reordered) == nats_tss.canonical_key(cell)
    listed = Cell(list(cell.ops))  # any sequence of ops: stored as a tuple, so it hashes
    assert listed == cell and format_arch(listed) == ARCH_11


def test_canonical_key_count_without_data():
    keys = {canonical_key(c) for c in nats_tss.all_cells()}
    assert len(keys) == 6466


def test_canonical_key_reproduces_the_benchmark_iso_column(tss_table):
    keys = [canonical_key(a) for a in tss_table["arch"]]
    # The strings themselves agree, which implies the partition agrees.
    mismatch = [(a, k, iso) for a, k, iso in zip(tss_table["arch"], keys, tss_table["iso"],
                                                 strict=True) if k != iso]
    assert not mismatch[:5]
    # And the partition check on its own (independent of the spelling).
    ours = {}
    theirs = {}
    for i, (k, iso) in enumerate(zip(keys, tss_table["iso"], strict=True)):
        ours.setdefault(k, set()).add(i)
        theirs.setdefault(iso, set()).add(i)
    assert sorted(map(sorted, ours.values())) == sorted(map(sorted, theirs.values()))
    assert len(ours) == 6466


@given(cells)
def test_key_invariant_when_node_1_copies_the_input(cell):
    # With 0->1 = skip_connect, node 1 *is* node 0, so the edges 0->j and 1->j are
    # interchangeable: swapping their ops is an isomorphic rewrite.
    c = Cell(("skip_connect",) + cell.ops[1:])
    swapped = Cell(("skip_connect", c.op(1, 2), c.op(0, 2), c.op(1, 3), c.op(0, 3), c.op(2, 3)))
    assert canonical_key(swapped) == canonical_key(c)


def test_key_follows_the_benchmark_not_full_graph_isomorphism():
    # Documented convention: a node with two zero inputs is "#+#", not "#", so these two
    # functionally equal cells stay in different classes, exactly as in the benchmark table.
    a = parse_arch("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    b = parse_arch("|none~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    assert canonical_key(a) == "#+#+#+#" and canonical_key(b) == "#+#+#"


@given(cells, st.sampled_from(OPS), st.sampled_from(OPS), st.sampled_from(OPS))
def test_key_invariant_under_rewriting_dead_or_zero_edges(cell, a, b, c):
    # Node 1 fed by `none` is zero: whatever leaves it is zero too.
    zero1 = Cell(("none", cell.ops[1], a, cell.ops[3], b, cell.ops[5]))
    rewritten = Cell(("none", cell.ops[1], c, cell.ops[3], a, cell.ops[5]))
    assert canonical_key(zero1) == canonical_key(rewritten)
    # Node 1 unused (edges 1->2 and 1->3 are none): the op feeding it does not matter.
    unused = Cell((a, cell.ops[1], "none", cell.ops[3], "none", cell.ops[5]))
    assert canonical_key(unused) == canonical_key(Cell((b,) + unused.ops[1:]))


@given(cells)
def test_key_separates_cells_with_different_live_convolutions(cell):
    # Replacing a conv by a different conv on a live edge changes the function, so the key.
    live = nats_tss.live_edges(cell)
    for e, op in enumerate(cell.ops):
        if live[e] and op in ("nor_conv_1x1", "nor_conv_3x3"):
            other = "nor_conv_3x3" if op == "nor_conv_1x1" else "nor_conv_1x1"
            ops = list(cell.ops)
            ops[e] = other
            assert canonical_key(Cell(tuple(ops))) != canonical_key(cell)


def test_live_edges_examples():
    assert nats_tss.live_edges(ARCH_11) == (True, True, True, False, True, True)
    all_none = Cell(("none",) * 6)
    assert nats_tss.live_edges(all_none) == (False,) * 6
    # node 2 is dead (2->3 is none), so 0->2 and 1->2 are dead.
    c = parse_arch("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|")
    assert nats_tss.live_edges(c) == (True, False, False, False, True, False)


def test_sample_mutate_crossover_neighbours():
    rng = np.random.default_rng(0)
    counts = np.zeros((6, 5))
    for _ in range(5000):
        c = nats_tss.sample(rng)
        for e, op in enumerate(c.ops):
            counts[e, OPS.index(op)] += 1
    assert np.all(np.abs(counts / 5000 - 0.2) < 0.03)

    parent = parse_arch(ARCH_11)
    for _ in range(200):
        child = nats_tss.mutate(parent, rng)
        assert sum(x != y for x, y in zip(child.ops, parent.ops, strict=True)) == 1

    nb = nats_tss.neighbours(parent)
    assert len(nb) == 24 == len(set(nb))
    assert all(sum(x != y for x, y in zip(n.ops, parent.ops, strict=True)) == 1 for n in nb)

    a, b = Cell(("none",) * 6), Cell(("nor_conv_3x3",) * 6)
    seen_edge, seen_node = set(), set()
    for _ in range(300):
        ce = nats_tss.crossover(a, b, rng, mode="edge")
        seen_edge.add(ce.ops)
        cn = nats_tss.crossover(a, b, rng, mode="node")
        seen_node.add(cn.ops)
        # node-wise: all edges into a node come from the same parent
        for node in (1, 2, 3):
            assert len({op for op, _ in cn.inputs(node)}) == 1
    assert len(seen_edge) > 30  # up to 64 patterns
    assert len(seen_node) == 8  # exactly 2^3 patterns
    with pytest.raises(ValueError):
        nats_tss.crossover(a, b, rng, mode="bogus")


def test_operators_are_deterministic_given_the_generator():
    def run(seed):
        rng = np.random.default_rng(seed)
        c = nats_tss.sample(rng)
        return [c := nats_tss.mutate(c, rng) for _ in range(10)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_arch_order_uses_benchmark_order(tss_table):
    order = ArchOrder(tss_table["arch"].tolist())
    assert order.arch(11) == ARCH_11
    assert order.index(ARCH_11) == 11
    assert order.arch(0).startswith("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|")
    lexicographic_first = next(nats_tss.all_cells())
    assert order.index(lexicographic_first) != 0
    with pytest.raises(ArchError):
        order.arch(15625)
    g, idx = resolve_arch("11", "tss", order)
    assert idx == 11 and format_arch(g) == ARCH_11
    g, idx = resolve_arch("11", "tss", None)  # the packaged order: no data needed
    assert idx == 11 and format_arch(g) == ARCH_11


def test_get_space_aliases_and_unknown():
    assert get_space("tss") is nats_tss.SPACE and get_space("NATS-TSS") is nats_tss.SPACE
    assert get_space("nats-tss") is get_space(nats_tss.SPACE)
    from zcnas.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="valid spaces"):
        get_space("darts")


def test_spaces_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys, zcnas.spaces, zcnas.spaces.plan; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_the_packaged_benchmark_order_is_the_official_one(sample_archive, tss_table, tmp_path):
    from zcnas.lookup import load_meta_archs

    order = nats_tss.SPACE.index_order()
    meta = load_meta_archs(sample_archive / "NATS-tss-v1_0-3ffb9-simple")
    assert order.archs == [nats_tss.format_arch(nats_tss.parse_arch(a)) for a in meta]
    assert order.archs == list(tss_table["arch"])
    assert order.index(order.arch(9930)) == 9930 and len(order) == 15625
    nats_tss.write_order(meta, tmp_path / "again.zlib")  # the file regenerates from the meta
    from importlib.resources import files

    packaged = files("zcnas.spaces").joinpath(nats_tss.ORDER_FILE).read_bytes()
    assert (tmp_path / "again.zlib").read_bytes() == packaged
