"""Archive files are found automatically (``ZCNAS_DATA``, ``TORCH_HOME``): unpickling one must
never run code. The meta file and every record go through a restricted unpickler that rebuilds
only what the NATS-Bench files hold (builtin containers and numbers, ``OrderedDict``, numpy
dtypes and scalars); ``nats_bench`` itself never unpickles anything."""

from __future__ import annotations

import bz2
import collections
import os
import pickle

import numpy as np
import pytest

from zcnas.errors import CorruptDataError
from zcnas.lookup import NatsArchive, load_meta_archs, load_order, open_benchmark
from zcnas.lookup.archive import ARCHIVE_DIRS, load_archive_pickle

from ._util import one_line

TSS = ARCHIVE_DIRS["nats-tss"]
CELLS = [
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|",
]


class Payload:
    """Unpickling this calls ``os.mkdir(marker)``: the proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def write_pbz2(path, obj) -> None:
    with bz2.open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=4)


def archive(root, *, meta=None, records=None):
    """An archive folder ``root/NATS-tss-v1_0-3ffb9-simple`` in the official layout."""
    folder = root / TSS
    folder.mkdir(parents=True)
    write_pbz2(folder / "meta.pickle.pbz2", meta if meta is not None else {"meta_archs": CELLS})
    for index, obj in (records or {}).items():
        write_pbz2(folder / f"{index:06d}.pickle.pbz2", obj)
    return folder


@pytest.fixture
def env(monkeypatch, tmp_path):
    """ZCNAS_DATA at ``tmp_path / 'data'``, as a user would have it."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("ZCNAS_DATA", str(root))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    return root


def test_a_crafted_meta_file_runs_nothing(env, tmp_path):
    marker = tmp_path / "meta-ran"
    archive(env, meta={"meta_archs": CELLS, "extra": Payload(marker)})
    for call in (
        lambda: open_benchmark("nats-tss"),
        lambda: load_meta_archs(env / TSS),
        lambda: NatsArchive(env / TSS),
    ):
        with pytest.raises(CorruptDataError) as info:
            call()
        message = one_line(info)
        assert "meta.pickle.pbz2" in message and "posix.mkdir" in message, message
    # the tss order ships with the package: it never reads the meta file
    assert len(load_order("nats-tss")) == 15625
    assert not marker.exists()


@pytest.mark.parametrize("shape", ["whole", "inside-a-result", "as-a-dict-key"])
def test_a_crafted_record_runs_nothing(env, tmp_path, shape):
    marker = tmp_path / "record-ran"
    bomb = Payload(marker)
    record = {
        "whole": bomb,
        "inside-a-result": {"200": {"arch_index": 1, "all_results": {("cifar10", 777): bomb}}},
        "as-a-dict-key": collections.OrderedDict([("12", {"x": [1.0, {bomb: 2}]})]),
    }[shape]
    archive(env, records={1: record})
    bench = open_benchmark("nats-tss")  # the meta is clean: it opens
    with pytest.raises(CorruptDataError) as info:
        bench.accuracy(1, "cifar10")
    message = one_line(info)
    assert "000001.pickle.pbz2" in message and "posix.mkdir" in message, message
    assert not marker.exists()


def test_a_record_that_names_another_file_loads_nothing(env, tmp_path):
    """``ArchResults.create_from_state_dict`` unpickles a *path* it is given with plain
    ``pickle``: a record whose result is a string must be refused, not followed."""
    marker = tmp_path / "path-ran"
    evil = tmp_path / "evil.pickle.pbz2"
    write_pbz2(evil, Payload(marker))
    archive(env, records={1: {"200": str(evil), "12": str(evil)}})
    bench = open_benchmark("nats-tss")
    with pytest.raises(CorruptDataError) as info:
        bench.accuracy(1, "cifar10")
    assert "000001.pickle.pbz2" in one_line(info)
    assert not marker.exists()


def test_only_the_globals_the_archives_need_are_admitted(tmp_path):
    path = tmp_path / "x.pickle.pbz2"
    admitted = collections.OrderedDict(
        [("a", np.float64(1.5)), ("b", np.dtype("float32")), ("c", {1, 2}), ("d", (None, True))]
    )
    write_pbz2(path, admitted)
    assert load_archive_pickle(path) == admitted
    for refused in (np.zeros(3), collections.Counter(a=1), os.system, print):
        write_pbz2(path, {"x": refused})
        with pytest.raises(CorruptDataError, match="refusing to load"):
            load_archive_pickle(path)


def test_the_sample_records_load_through_the_restricted_unpickler(tss_archive_dir, tmp_path):
    """The real files need OrderedDict, numpy dtype and numpy scalar (numpy 1 module names);
    the same record re-pickled by this numpy (numpy._core names) reads the same."""
    folder = tmp_path / TSS
    folder.mkdir()
    (folder / "meta.pickle.pbz2").symlink_to(tss_archive_dir / "meta.pickle.pbz2")
    real = load_archive_pickle(tss_archive_dir / "000011.pickle.pbz2")
    assert isinstance(real, collections.OrderedDict) and set(real) == {"12", "200"}
    write_pbz2(folder / "000011.pickle.pbz2", real)
    assert b"numpy._core" in bz2.decompress((folder / "000011.pickle.pbz2").read_bytes())
    ours, theirs = NatsArchive(folder), NatsArchive(tss_archive_dir)
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        for epochs in (12, 200):
            assert ours.accuracy(11, dataset, epochs=epochs).value == pytest.approx(
                theirs.accuracy(11, dataset, epochs=epochs).value, abs=0
            )
    assert ours.cost(11, "cifar10").train_seconds_per_epoch == pytest.approx(
        theirs.cost(11, "cifar10").train_seconds_per_epoch, abs=0
    )


def test_nats_bench_never_unpickles(tss_archive_dir, monkeypatch):
    """Every archive read goes through zcnas: nats_bench's own loader is never called."""
    import nats_bench
    import nats_bench.api_size
    import nats_bench.api_topology
    import nats_bench.api_utils

    def refuse(*args, **kwargs):
        raise AssertionError(f"nats_bench.pickle_load called with {args}")

    for module in (nats_bench, nats_bench.api_utils, nats_bench.api_topology, nats_bench.api_size):
        monkeypatch.setattr(module, "pickle_load", refuse)
    bench = NatsArchive(tss_archive_dir)
    assert bench.accuracy(11, "cifar10", epochs=200).value > 80
    assert bench.accuracy(284, "cifar100", epochs=12, split="valid").value > 0
