"""Sharded scoring (``zcnas score --shard I/N``) and merging stores (``zcnas store merge``)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests._cli import one_line_error
from zcnas.runtime import ScoreRecord, ScoreStore
from zcnas.runtime.merge import merge_stores


def _score(run_isolated, tmp_path, *extra):
    return run_isolated("score", "--archs", "30", "--proxies", "synflow,params", "--workers", "1",
                        *extra)


def test_shards_cover_every_cell_once_and_merge_to_the_full_store(run_isolated, tmp_path):
    full = _score(run_isolated, tmp_path, "--store", tmp_path / "full.sqlite",
                  "--out", tmp_path / "full")
    assert full.exit_code == 0, full.output
    for i in range(3):
        r = _score(run_isolated, tmp_path, "--shard", f"{i}/3", "--store",
                   tmp_path / f"s{i}.sqlite", "--out", tmp_path / f"s{i}")
        assert r.exit_code == 0, r.output
        assert f"shard {i}/3" in r.output
    parts = [pd.read_csv(tmp_path / f"s{i}.csv") for i in range(3)]
    whole = pd.read_csv(tmp_path / "full.csv")
    assert sorted(pd.concat(parts).arch.unique()) == sorted(whole.arch.unique())
    canon = [set(p.canonical) for p in parts]
    assert not (canon[0] & canon[1]) and not (canon[1] & canon[2])  # classes never split
    r = run_isolated("store", "merge", *[tmp_path / f"s{i}.sqlite" for i in range(3)],
                     "--out", tmp_path / "merged.sqlite")
    assert r.exit_code == 0, r.output
    with ScoreStore(tmp_path / "merged.sqlite", readonly=True) as m, \
            ScoreStore(tmp_path / "full.sqlite", readonly=True) as f:
        got = {r.key: r.value for r in m.records()}
        want = {r.key: r.value for r in f.records()}
    assert got == want
    # merging again adds nothing
    r = run_isolated("store", "merge", tmp_path / "s0.sqlite", "--out", tmp_path / "merged.sqlite")
    assert "wrote 0 new" in r.output


def test_a_conflict_names_both_files_and_writes_nothing(tmp_path):
    def store(path, value):
        with ScoreStore(path) as s:
            from zcnas.runtime import ScoreKey

            key = ScoreKey("nats-tss", "x", "synflow", "1", "cifar10", "{}", 0, "cpu")
            s.put_many([ScoreRecord(key, value, 0.1, "x", 0.0)])

    store(tmp_path / "a.sqlite", 1.0)
    store(tmp_path / "b.sqlite", 2.0)
    store(tmp_path / "c.sqlite", 1.0)
    with pytest.raises(Exception, match=r"a\.sqlite and 2\.0 in .*b\.sqlite"):
        merge_stores([tmp_path / "a.sqlite", tmp_path / "b.sqlite"], tmp_path / "out.sqlite")
    assert not (tmp_path / "out.sqlite").exists()
    r = merge_stores([tmp_path / "a.sqlite", tmp_path / "c.sqlite"], tmp_path / "out.sqlite")
    assert (r.read, r.written, r.total) == (2, 1, 1)


@pytest.mark.parametrize("shard", ["3/3", "a/2", "1", "-1/2", "1/0"])
def test_a_bad_shard_is_one_line(run_isolated, tmp_path, shard):
    r = run_isolated("score", "--archs", "5", "--proxies", "params", "--shard", shard,
                     "--out", tmp_path / "x")
    one_line_error(r, "--shard")


def _two_members():
    """A NATS-tss class with two members: its representative and another one."""
    from zcnas.spaces import get_space

    sp = get_space("nats-tss")
    first: dict = {}
    for a in sp.all_archs():
        arch = sp.format_arch(sp.as_genotype(a))
        key = sp.canonical_key(arch)
        if key in first and first[key] != arch:
            rep = sp.representative(arch)
            other = arch if rep != arch else first[key]
            return key, rep, other
        first.setdefault(key, arch)
    raise AssertionError("no class with two members")


def test_a_record_of_another_member_gives_way_to_the_representatives(run_isolated, tmp_path):
    """An older zcnas computed class-wide scores on the first member a run met: merged with a
    store of the representative's record, the representative's is kept (in the output store
    too), not reported as a conflict; a per-arch conflict stays an error."""
    from zcnas.runtime import ScoreKey

    key, rep, other = _two_members()
    k = ScoreKey("nats-tss", key, "synflow", "1", "cifar10", "{}", 0, "cpu")

    def store(path, arch, value, k=k):
        with ScoreStore(path) as s:
            s.put_many([ScoreRecord(k, value, 0.1, arch, 0.0)])

    store(tmp_path / "old.sqlite", other, 1.0)
    store(tmp_path / "new.sqlite", rep, 2.0)
    for order in (["old", "new"], ["new", "old"]):
        out = tmp_path / f"out-{order[0]}.sqlite"
        r = merge_stores([tmp_path / f"{n}.sqlite" for n in order], out)
        assert (r.written, r.total, r.superseded) == (1, 1, 1)
        with ScoreStore(out, readonly=True) as s:
            assert s.get_many([k])[k].value == 2.0
    # the output store itself holds the other member's record: it is overwritten
    store(tmp_path / "out.sqlite", other, 1.0)
    r = run_isolated("store", "merge", tmp_path / "new.sqlite", "--out", tmp_path / "out.sqlite")
    assert r.exit_code == 0 and "gave way to the representative's" in r.output
    with ScoreStore(tmp_path / "out.sqlite", readonly=True) as s:
        assert s.get_many([k])[k].value == 2.0
    # with equal values the representative's record is kept too (the engine reads only it)
    store(tmp_path / "same.sqlite", other, 2.0)
    r = merge_stores([tmp_path / "same.sqlite", tmp_path / "new.sqlite"], tmp_path / "eq.sqlite")
    assert r.superseded == 0
    with ScoreStore(tmp_path / "eq.sqlite", readonly=True) as s:
        assert s.get_many([k])[k].arch == rep
    # a per-arch key (the arch itself) with two values is still a conflict
    pa = ScoreKey("nats-tss", rep, "flops", "1", "cifar10", "{}", 0, "cpu")
    store(tmp_path / "p1.sqlite", rep, 1.0, pa)
    store(tmp_path / "p2.sqlite", rep, 2.0, pa)
    with pytest.raises(Exception, match="conflicting scores"):
        merge_stores([tmp_path / "p1.sqlite", tmp_path / "p2.sqlite"], tmp_path / "p.sqlite")
