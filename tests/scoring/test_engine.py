"""The scoring engine: isomorph dedup, shared passes, store reuse, inputs, determinism."""

import math
import struct
import zlib

import pandas as pd
import pytest

from zcnas.errors import UserError
from zcnas.proxy import Proxy, ProxyError, ProxyInfo
from zcnas.registry import create_scorers
from zcnas.runtime import ScoreStore
from zcnas.scoring import InputBank, ScoringContext
from zcnas.scoring.engine import make_items, rows_to_frame, score_archs, select_archs, summarize
from zcnas.spaces import get_space
from zcnas_proxies.cost import Flops, Params
from zcnas_proxies.naswot import Naswot
from zcnas_proxies.stable import Stable, StableMean
from zcnas_proxies.synflow import Synflow

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
# isomorphic pair: swapping 0->2 and 1->2 when 0->1 is a skip connection
ISO_1 = "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|"
ISO_2 = "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|"
ZERO = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
# isomorphic cells that differ on a dead edge: node 1 feeds only none edges, so its op is dead
DEAD_CONV = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
DEAD_POOL = "|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


def bits(v: float) -> bytes:
    return struct.pack("<d", v)


class Counting(Proxy):
    """Counts how often it is scored (in-process runs only)."""

    info = ProxyInfo(name="counting", version="1", reference="test", code="test",
                     needs_labels=False, needs_images=False, input="none", bn="n/a",
                     init="n/a", batch_size=1)
    calls = 0

    def score(self, ctx) -> float:
        type(self).calls += 1
        return float(len(ctx.arch_str))


class Named(Counting):
    """A value that names the arch it was computed on (its CRC-32)."""

    info = ProxyInfo(name="named", version="1", reference="test", code="test",
                     needs_labels=False, needs_images=False, input="none", bn="n/a",
                     init="n/a", batch_size=1)

    def score(self, ctx) -> float:
        type(self).calls += 1
        return float(zlib.crc32(ctx.arch_str.encode()))


def crc(arch: str) -> float:
    return float(zlib.crc32(arch.encode()))


# the class of ISO_1 / ISO_2 as NATS-Bench numbers it: its first member is REP (index 981)
REP = "|none~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_3x3~0|none~1|skip_connect~2|"


def test_a_class_is_represented_by_its_first_member_in_index_order():
    sp = get_space("nats-tss")
    order = sp.index_order()
    assert {sp.representative(a) for a in (ISO_1, ISO_2, REP)} == {REP}
    members = [a for a in order.archs if sp.canonical_key(a) == sp.canonical_key(ISO_1)]
    assert members[0] == REP and order.index(REP) == 981 and len(members) > 2
    assert sp.representative(A) == A  # a class of one
    # the all-none cell computes zero, as do over a thousand cells: the first of them is #10
    assert order.index(sp.representative(ZERO)) == 10
    sss = get_space("nats-sss")  # every genotype its own class: the key itself
    assert sss.representative("8:16:24:32:40") == "8:16:24:32:40"


def test_isomorphic_archs_are_scored_once_on_their_representative():
    """A class-wide score is computed once per class, on its representative (here not one of
    the items: both members get it as an isomorph's); the per-arch Params on every arch."""
    items = make_items([ISO_1, ISO_2, A], "nats-tss")
    assert items[0].canonical == items[1].canonical
    Named.calls = 0
    rows = score_archs(items, [Named(), Params()], progress=False)
    assert Named.calls == 2
    by = {(r.arch, r.proxy): r for r in rows}
    assert by[(ISO_1, "named")].value == by[(ISO_2, "named")].value == crc(REP)
    assert by[(ISO_1, "named")].origin == by[(ISO_2, "named")].origin == "isomorph"
    assert (by[(A, "named")].value, by[(A, "named")].origin) == (crc(A), "computed")
    assert by[(ISO_2, "params")].origin == "computed"
    assert [r.arch for r in rows[::2]] == [ISO_1, ISO_2, A]  # input order kept
    assert [line[:4] for line in summarize(rows)] == [("named", 3, 2, 0), ("params", 3, 3, 0)]
    rows = score_archs(make_items([ISO_2, REP], "nats-tss"), [Named()], progress=False)
    assert [(r.value, r.origin) for r in rows] == [(crc(REP), "isomorph"), (crc(REP), "computed")]


def test_a_class_score_does_not_depend_on_what_was_scored_before(tmp_path):
    """Scoring ISO_2 first and then ISO_1, or ISO_1 alone, gives the same table; a record an
    older zcnas computed on another member of the class is recomputed on the representative."""
    from zcnas.runtime.store import ScoreRecord

    with ScoreStore(tmp_path / "a.sqlite") as a, ScoreStore(tmp_path / "b.sqlite") as b:
        score_archs(make_items([ISO_2], "nats-tss"), [Named()], store=a, progress=False)
        first = score_archs(make_items([ISO_1], "nats-tss"), [Named()], store=a,
                            progress=False)
        alone = score_archs(make_items([ISO_1], "nats-tss"), [Named()], store=b,
                            progress=False)
        assert first[0].value == alone[0].value == crc(REP) and first[0].origin == "store"
        [rec] = b.records()
        assert rec.arch == REP
        key = rec.key
        b.put_many([ScoreRecord(key, crc(ISO_2), 1.0, ISO_2, 0.0)])  # an older zcnas's record
        Named.calls = 0
        again = score_archs(make_items([ISO_1], "nats-tss"), [Named()], store=b,
                            progress=False)
        assert Named.calls == 1 and (again[0].value, again[0].origin) == (crc(REP), "isomorph")
        assert b.get_many([key])[key].arch == REP


def test_per_arch_proxies_score_every_member_of_a_class(tmp_path):
    """FLOPs (like MeCo, Zen, VKDNW: a network built naive) depend on the dead edges too, so
    every member is scored itself and gets the NATS-Bench value of its own cell."""
    items = make_items([DEAD_CONV, DEAD_POOL, A], "nats-tss")
    assert items[0].canonical == items[1].canonical
    assert Flops.info.per_arch and not Counting.info.per_arch
    own = {a: ScoringContext(a).costs().flops_m for a in (DEAD_CONV, DEAD_POOL)}
    assert own[DEAD_CONV] > own[DEAD_POOL]  # the dead 3x3 conv counts in the official FLOPs
    with ScoreStore(tmp_path / "s.sqlite") as store:
        Counting.calls = 0
        score_archs(items[:1], [Counting(), Flops()], store=store, progress=False)
        rows = score_archs(items, [Counting(), Flops()], store=store, progress=False)
        assert Counting.calls == 2  # the class once (from the store the second time), and A
    by = {(r.arch, r.proxy): r for r in rows}
    assert [by[(a, "flops")].value for a in own] == list(own.values())
    assert by[(DEAD_CONV, "flops")].origin == "store"
    assert by[(DEAD_POOL, "flops")].origin == "computed"  # not copied from its isomorph
    assert by[(DEAD_POOL, "counting")].value == by[(DEAD_CONV, "counting")].value
    assert {by[(a, "counting")].origin for a in own} == {"store"}


def test_a_per_arch_score_stored_under_the_class_key_is_reused_for_its_own_arch(tmp_path):
    """Stores written before per-arch scoring keyed every score by the class; such a record
    is still this architecture's score when the record names this architecture."""
    from zcnas.runtime.store import ScoreKey, ScoreRecord
    from zcnas.scoring.engine import proxy_config

    items = make_items([DEAD_CONV, DEAD_POOL], "nats-tss")
    flops = Flops()
    old = ScoreKey("nats-tss", items[0].canonical, "flops", flops.info.version, "cifar10",
                   proxy_config(flops, None), 0, "cpu")
    with ScoreStore(tmp_path / "s.sqlite") as store:
        store.put_many([ScoreRecord(old, 123.0, 0.5, DEAD_CONV, 0.0)])
        rows = score_archs(items, [flops], store=store, progress=False)
    by = {r.arch: r for r in rows}
    assert (by[DEAD_CONV].value, by[DEAD_CONV].origin) == (123.0, "store")
    assert by[DEAD_POOL].origin == "computed"  # the record names the other member
    assert by[DEAD_POOL].value == ScoringContext(DEAD_POOL).costs().flops_m


def test_shared_pass_scores_equal_scores_alone(data_root):
    bank = InputBank("cifar10", seed=0, root=data_root)
    small = dict(batch_size=16)
    together = [Naswot(**small), Stable(**small), StableMean(**small)]
    ctx = ScoringContext(A, inputs=bank, requests=[r for p in together for r in p.requests()])
    shared = [p.score(ctx) for p in together]
    alone = []
    for p in together:
        c = ScoringContext(A, inputs=bank, requests=p.requests())
        alone.append(p.score(c))
    assert [bits(v) for v in shared] == [bits(v) for v in alone]
    # and the three proxies really read one pass
    assert len(ctx.pass_seconds) == 1


def test_store_is_read_on_rerun_and_values_are_bitwise_equal(tmp_path):
    items = make_items([A, ISO_1, ZERO], "nats-tss")
    with ScoreStore(tmp_path / "s.sqlite") as store:
        Counting.calls = 0
        first = score_archs(items, [Counting(), Synflow()], store=store, progress=False)
        assert Counting.calls == 3
        second = score_archs(items, [Counting(), Synflow()], store=store, progress=False)
        assert Counting.calls == 3
    assert {r.origin for r in second} == {"store"}
    assert [bits(r.value) for r in first] == [bits(r.value) for r in second]
    zero = [r for r in second if r.arch == ZERO and r.proxy == "synflow"][0]
    assert zero.value == -math.inf  # degenerate scores are stored, not dropped


def test_store_key_separates_configs_and_seeds(tmp_path):
    items = make_items([A], "nats-tss")
    with ScoreStore(tmp_path / "s.sqlite") as store:
        score_archs(items, [Synflow()], store=store, progress=False)
        other_seed = score_archs(items, [Synflow()], store=store, seed=1, progress=False)
        other_cfg = score_archs(items, [Synflow(batch_size=2)], store=store, progress=False)
    assert other_seed[0].origin == "computed" and other_cfg[0].origin == "computed"
    assert other_cfg[0].proxy == "synflow(batch_size=2)"


def test_proxies_needing_images_fail_clearly_without_data(tmp_path):
    items = make_items([A], "nats-tss")
    with pytest.raises(ProxyError) as err:
        score_archs(items, [Synflow(), Naswot()], root=tmp_path, progress=False)
    msg = str(err.value)
    assert "naswot" in msg and "--data" in msg and "synflow" in msg and "\n" not in msg


def test_data_free_proxies_run_without_data(tmp_path, monkeypatch):
    monkeypatch.delenv("ZCNAS_DATA", raising=False)
    monkeypatch.delenv("TORCH_HOME", raising=False)
    rows = score_archs(make_items([A], "nats-tss"), [Synflow(), Params()], root=tmp_path,
                       progress=False)
    assert all(math.isfinite(r.value) for r in rows)


def test_duplicate_proxy_is_an_error():
    with pytest.raises(ProxyError, match="twice"):
        score_archs(make_items([A], "nats-tss"), [Params(), Params()], progress=False)


def test_two_workers_give_bitwise_the_same_scores():
    items = make_items([A, ISO_1, ZERO], "nats-tss")
    one = score_archs(items, [Synflow()], workers=1, progress=False)
    two = score_archs(items, [Synflow()], workers=2, progress=False)
    assert [bits(r.value) for r in one] == [bits(r.value) for r in two]


def test_select_archs_samples_are_nested_and_seeded():
    a = select_archs("20", "nats-sss", seed=3)
    b = select_archs("30", "nats-sss", seed=3)
    assert {i.arch for i in a} <= {i.arch for i in b}
    assert a == select_archs("20", "nats-sss", seed=3)
    assert all(i.index is not None for i in a)


def test_select_archs_from_file(tmp_path):
    f = tmp_path / "archs.txt"
    f.write_text(f"# two archs\n{A}\n\n{ISO_1}  # comment\n")
    items = select_archs(str(f), "nats-tss", root=tmp_path)
    assert [i.arch for i in items] == [A, ISO_1]
    bad = tmp_path / "bad.txt"
    bad.write_text("|nor_conv_3x3~0|+|oops|\n")
    with pytest.raises(UserError):
        select_archs(str(bad), "nats-tss", root=tmp_path)
    with pytest.raises(UserError, match="not 'all'"):
        select_archs(str(tmp_path / "missing.txt"), "nats-tss")


def test_select_all_uses_benchmark_order(data_root):
    items = select_archs("all", "nats-tss", root=data_root)
    assert len(items) == 15625 and items[11].index == 11
    assert items[11].arch == A
    assert len({i.canonical for i in items}) == 6466


def test_frame_columns():
    rows = score_archs(make_items([A], "nats-tss"), [Params()], progress=False)
    df = rows_to_frame(rows)
    assert list(df.columns) == ["arch", "index", "canonical", "proxy", "value", "seconds",
                                "device", "version", "dataset", "seed", "origin", "higher_is_better"]


def test_an_old_table_gets_its_copied_per_arch_rows_rescored():
    """benchmarks.rescore: the rows an older engine copied between isomorphs are
    re-scored for per-arch proxies; every other row stays bit for bit."""
    from benchmarks.rescore import rescore

    items = make_items([DEAD_CONV, DEAD_POOL, A], "nats-tss")
    table = rows_to_frame(score_archs(items, [Flops(), Synflow()], progress=False))
    old = table.copy()  # what the engine wrote before: DEAD_POOL's flops copied
    row = (old["arch"] == DEAD_POOL) & (old["proxy"] == "flops")
    old.loc[row, ["value", "origin"]] = [float(table.loc[(table["arch"] == DEAD_CONV)
                                                         & (table["proxy"] == "flops"),
                                                         "value"].iloc[0]), "isomorph"]
    fixed, done = rescore(old, None, workers=1)
    assert done["rows"] == 1 and done["proxies"] == ["flops"]
    assert (done["outdated"], done["copied"]) == (0, 1)
    # the same table (the re-scored row's seconds are this run's own)
    pd.testing.assert_frame_equal(fixed.drop(columns="seconds"), table.drop(columns="seconds"))
    assert (fixed["seconds"] == table["seconds"])[~row].all()
    with_ensemble = rows_to_frame(score_archs(items, create_scorers("flops,ensemble:az(flops,params)"),
                                              progress=False))
    with pytest.raises(SystemExit, match="ensemble rows"):
        rescore(with_ensemble, None, workers=1)


def test_an_old_table_gets_the_rows_computed_on_another_member_rescored(tmp_path):
    """benchmarks.rescore: a class-wide score an older engine computed on the first member
    it met (ISO_2, copied to ISO_1) is re-scored on the class's representative; a row read
    from a store is checked against the store (only with the store given)."""
    from benchmarks.rescore import rescore
    from zcnas.runtime.store import ScoreRecord

    items = make_items([ISO_2, ISO_1, A], "nats-tss")
    table = rows_to_frame(score_archs(items, [Params(), Synflow()], progress=False))
    old = table.copy()  # as an older engine wrote it: synflow of ISO_2, copied to ISO_1
    rows = (old["proxy"] == "synflow") & old["arch"].isin([ISO_1, ISO_2])
    old.loc[rows, "value"] = old.loc[rows, "value"] + 1.0
    old.loc[rows, "origin"] = ["computed", "isomorph"]  # rows in item order: ISO_2, ISO_1
    fixed, done = rescore(old, None, workers=1)
    assert (done["rows"], done["member"], done["changed"]) == (2, 2, 2)
    pd.testing.assert_frame_equal(fixed.drop(columns="seconds"), table.drop(columns="seconds"))
    assert rescore(fixed, None, workers=1)[1]["rows"] == 0
    with ScoreStore(tmp_path / "s.sqlite") as store:
        score_archs(items, [Synflow()], store=store, progress=False)
        stored = rows_to_frame(score_archs(items, [Synflow()], store=store, progress=False))
        assert set(stored["origin"]) == {"store"}
        assert rescore(stored, None, workers=1)[1]["rows"] == 0  # no store: not checked
        assert rescore(stored, None, workers=1, store=store)[1]["changed"] == 0
        rec = next(r for r in store.records() if r.arch == REP)
        store.put_many([ScoreRecord(rec.key, rec.value + 1.0, 1.0, ISO_2, 0.0)])
        stale = stored.copy()
        stale.loc[stale["arch"].isin([ISO_1, ISO_2]), "value"] = rec.value + 1.0
        fixed, done = rescore(stale, None, workers=1, store=store)
        assert done["changed"] == 2 and store.get_many([rec.key])[rec.key].arch == REP
        pd.testing.assert_frame_equal(fixed.drop(columns=["seconds", "origin"]),
                                      stored.drop(columns=["seconds", "origin"]))


def test_an_old_table_gets_the_rows_of_a_bumped_proxy_version_rescored():
    """benchmarks.rescore: every row of a proxy whose version is no longer the current one is
    re-scored (class-wide: on the member the table's order meets first, copied to the rest)."""
    from benchmarks.rescore import rescore

    items = make_items([DEAD_CONV, DEAD_POOL, A], "nats-tss")
    table = rows_to_frame(score_archs(items, [Params(), Synflow()], progress=False))
    old = table.copy()
    rows = old["proxy"] == "synflow"
    old.loc[rows, "version"] = "0"
    old.loc[rows, "value"] = old.loc[rows, "value"] + 1.0
    fixed, done = rescore(old, None, workers=1)
    assert (done["rows"], done["outdated"], done["copied"]) == (3, 3, 0)
    assert done["proxies"] == ["synflow"]
    pd.testing.assert_frame_equal(fixed.drop(columns="seconds"), table.drop(columns="seconds"))
    assert (fixed["seconds"] == table["seconds"])[~rows].all()
    assert rescore(fixed, None, workers=1)[1]["rows"] == 0


def _in_fresh_interpreter(code: str) -> None:
    import subprocess
    import sys
    import textwrap

    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_freeze_heap_freezes_once_and_never_freezes_garbage():
    """Garbage (a dropped reference cycle) is collected, not frozen; the objects alive are
    frozen; a second call changes nothing."""
    _in_fresh_interpreter("""
        import gc, weakref
        gc.disable()  # no automatic collection may free the cycle first
        from zcnas.scoring.engine import freeze_heap
        class Node: pass
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        freeze_heap()
        frozen = gc.get_freeze_count()
        assert gone() is None, "the garbage cycle was frozen"
        assert frozen > 1000, frozen
        extra = [Node() for _ in range(100)]
        freeze_heap()
        assert gc.get_freeze_count() == frozen, "a second call froze again"
        print("ok")
    """)


def test_an_in_process_run_freezes_only_while_it_runs():
    """Frozen inside the block, unfrozen after (a cycle alive inside is collectable after);
    a heap frozen before is left frozen."""
    _in_fresh_interpreter("""
        import gc, weakref
        gc.disable()
        from zcnas.scoring.engine import heap_frozen
        class Node: pass
        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = weakref.ref(a)
        with heap_frozen():
            assert gc.get_freeze_count() > 1000
            del a, b
        assert gc.get_freeze_count() == 0
        gc.collect()
        assert alive() is None, "a cycle frozen during the run was never freed"
        gc.freeze()
        before = gc.get_freeze_count()
        with heap_frozen():
            pass
        assert gc.get_freeze_count() == before, "the caller's freeze was undone"
        print("ok")
    """)


@pytest.mark.parametrize("own", [True, False])
@pytest.mark.parametrize("keep", [True, False])
def test_only_a_worker_process_of_its_own_freezes_its_heap(monkeypatch, own, keep):
    from zcnas.runtime import allocator
    from zcnas.scoring import engine

    calls = []
    monkeypatch.setattr(engine, "freeze_heap", lambda: calls.append("freeze"))
    monkeypatch.setattr(allocator, "tune_allocator", lambda: calls.append("allocator"))
    state = engine.init_scoring({"threads": 0, "dataset": "cifar10", "seed": 0, "root": None,
                                 "source": "synthetic", "device": "cpu", "own_process": own,
                                 "keep_memory": keep})
    assert calls == ["freeze"] * own + ["allocator"] * keep
    assert state["bank"].source == "synthetic"


@pytest.mark.parametrize(("kind", "keep"), [("InProcess", False), ("ProcessPool", True)])
def test_only_the_process_pools_workers_keep_their_memory(kind, keep):
    from zcnas.runtime import executors

    # Ray's workers are not zcnas's own (the setup follows dedicated_workers)
    assert executors.RayExecutor.dedicated_workers is False
    with getattr(executors, kind)(1) as ex:
        seen = []
        real = ex.map_unordered

        def spy(fn, tasks, *, init=None, setup=None):
            seen.append(setup["keep_memory"])
            return real(fn, tasks, init=init, setup=setup)

        ex.map_unordered = spy
        score_archs(make_items([A], "nats-tss"), [Params()], progress=False, executor=ex)
    assert seen == [keep]


def test_an_in_process_scoring_run_leaves_the_heap_unfrozen():
    import gc

    assert gc.get_freeze_count() == 0  # no earlier test left this process frozen either
    score_archs(make_items([A], "nats-tss"), [Params()], progress=False)
    assert gc.get_freeze_count() == 0
