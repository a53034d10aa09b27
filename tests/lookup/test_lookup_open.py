"""open_benchmark / load_order: choosing and finding the lookup data."""

from __future__ import annotations

import os
import shutil

import pytest

from zcnas.errors import DataNotFoundError, UnknownNameError, UserError
from zcnas.lookup import CompactTable, NatsArchive, load_meta_archs, load_order, open_benchmark
from zcnas.spaces import nats_sss

from ._util import one_line

TSS_DIR = "NATS-tss-v1_0-3ffb9-simple"


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("ZCNAS_DATA", raising=False)
    monkeypatch.delenv("TORCH_HOME", raising=False)


def test_nothing_anywhere(no_env, tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        open_benchmark()
    assert "ZCNAS_DATA" in one_line(e)
    with pytest.raises(DataNotFoundError) as e:
        open_benchmark(root=tmp_path)
    msg = one_line(e)
    assert "ZCNAS_DATA" in msg and str(tmp_path / TSS_DIR) in msg
    assert str(tmp_path / "nats-tss" / "tss_test_accuracy.csv") in msg
    assert len(load_order("nats-tss", root=tmp_path)) == 15625  # ships with the package


def test_empty_env_root(no_env, monkeypatch, tmp_path):
    monkeypatch.setenv("ZCNAS_DATA", str(tmp_path))
    with pytest.raises(DataNotFoundError) as e:
        open_benchmark("sss", kind="archive")
    assert str(tmp_path) in one_line(e)


def test_bad_kind_and_sss_table(tmp_path):
    with pytest.raises(UnknownNameError):
        open_benchmark(root=tmp_path, kind="csv")
    with pytest.raises(UserError) as e:
        open_benchmark("nats-sss", root=tmp_path, kind="table")
    assert "no compact table" in one_line(e)


def test_auto_prefers_table_over_sample(lookup_root):
    bench = open_benchmark(root=lookup_root)
    assert isinstance(bench, CompactTable)
    assert isinstance(open_benchmark(root=lookup_root, kind="table"), CompactTable)
    arc = open_benchmark(root=lookup_root, kind="archive")
    assert isinstance(arc, NatsArchive) and not arc.is_complete
    sss = open_benchmark("sss", root=lookup_root)
    assert isinstance(sss, NatsArchive) and sss.space == "nats-sss"


def test_env_variable_is_used(no_env, monkeypatch, lookup_root):
    monkeypatch.setenv("ZCNAS_DATA", str(lookup_root))
    assert isinstance(open_benchmark(), CompactTable)
    monkeypatch.delenv("ZCNAS_DATA")
    monkeypatch.setenv("TORCH_HOME", str(lookup_root / "nats-bench-sample"))
    bench = open_benchmark()  # official archives conventionally live in TORCH_HOME
    assert isinstance(bench, NatsArchive)


def test_sample_only_root(tmp_path, tss_archive_dir):
    os.symlink(tss_archive_dir, tmp_path / TSS_DIR)
    bench = open_benchmark(root=tmp_path)
    assert isinstance(bench, NatsArchive) and not bench.is_complete
    with pytest.raises(DataNotFoundError):
        open_benchmark(root=tmp_path, kind="table")


def test_auto_prefers_a_full_archive(tmp_path, tss_archive_dir, table_csv):
    full = tmp_path / TSS_DIR
    full.mkdir()
    shutil.copy(tss_archive_dir / "meta.pickle.pbz2", full)
    record = tss_archive_dir / "000000.pickle.pbz2"
    for i in range(15625):  # every record is arch 0's: enough to be recognised as complete
        os.symlink(record, full / f"{i:06d}.pickle.pbz2")
    (tmp_path / "nats-tss").mkdir()
    os.symlink(table_csv, tmp_path / "nats-tss" / "tss_test_accuracy.csv")
    bench = open_benchmark(root=tmp_path)
    assert isinstance(bench, NatsArchive) and bench.is_complete and "full" in bench.source
    assert isinstance(open_benchmark(root=tmp_path, kind="table"), CompactTable)


def test_load_order(lookup_root, tss_archive_dir, table_csv, tmp_path):
    official = load_meta_archs(tss_archive_dir)
    assert load_order("nats-tss", root=lookup_root).archs == official
    (tmp_path / "nats-tss").mkdir()
    os.symlink(table_csv, tmp_path / "nats-tss" / "tss_test_accuracy.csv")
    assert load_order("tss", root=tmp_path).archs == official


def test_load_order_sss_needs_no_file(no_env):
    order = load_order("nats-sss")
    assert len(order) == nats_sss.SIZE
    assert order.arch(11) == "8:8:8:16:32" and order.index("64:64:64:64:64") == nats_sss.SIZE - 1


def test_archive_kind_names_archive_places_only(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        open_benchmark(root=tmp_path, kind="archive")
    msg = one_line(e)
    assert str(tmp_path / TSS_DIR) in msg and "tss_test_accuracy.csv" not in msg
