"""The exported lookup (``zcnas data export``): every number the archive backend answers, from
one Parquet file, through the same interface; found by every command; searched on its
validation split."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.lookup._util import SAMPLE
from zcnas.errors import UserError
from zcnas.lookup import open_benchmark
from zcnas.lookup.export import ExportedLookup, export_lookup

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
SPLITS = ("valid", "test", "valtest")


@pytest.fixture(scope="module", params=["tss", "sss"])
def pair(request, tss_archive, sss_archive, tmp_path_factory):
    archive = tss_archive if request.param == "tss" else sss_archive
    path = export_lookup(archive, tmp_path_factory.mktemp("export") / "lookup.parquet")
    return archive, ExportedLookup(path)


def _same(a, b):
    if isinstance(a, Exception) or isinstance(b, Exception):
        return type(a) is type(b) or (isinstance(a, UserError) and isinstance(b, UserError))
    return a == b


def _ask(fn, *args, value=True, **kwargs):
    """``fn(*args, **kwargs)`` (its ``.value`` when ``value``), or the UserError it raised."""
    try:
        out = fn(*args, **kwargs)
    except UserError as err:
        return err
    return out.value if value else out


def test_every_number_matches_the_archive(pair):
    archive, export = pair
    assert export.space == archive.space and export.datasets == archive.datasets
    checked = 0
    for i in SAMPLE:
        for ds in DATASETS:
            for split in SPLITS:
                for hp in archive.schedules:
                    a = _ask(archive.accuracy, i, ds, epochs=hp, split=split)
                    b = _ask(export.accuracy, i, ds, epochs=hp, split=split)
                    assert _same(a, b), (i, ds, split, hp, a, b)
                    if split != "valtest":
                        ca = _ask(archive.cost, i, ds, epochs=hp, split=split, value=False)
                        cb = _ask(export.cost, i, ds, epochs=hp, split=split, value=False)
                        if not isinstance(ca, Exception):
                            assert (ca.params_m, ca.flops_m, ca.train_seconds_per_epoch,
                                    ca.eval_seconds, ca.dataset, ca.epochs) == (
                                cb.params_m, cb.flops_m, cb.train_seconds_per_epoch,
                                cb.eval_seconds, cb.dataset, cb.epochs)
                    for e in range(1, hp + 1):
                        a = _ask(archive.accuracy_at_epoch, i, ds, e, hp=hp, split=split)
                        b = _ask(export.accuracy_at_epoch, i, ds, e, hp=hp, split=split)
                        assert _same(a, b), (i, ds, split, hp, e, a, b)
                        checked += not isinstance(a, Exception)
    assert checked > 100  # learning curves included


def test_the_export_is_found_and_searched_on_its_validation_split(tss_archive, tmp_path):
    from zcnas.search import SearchConfig, build

    root = tmp_path / "data"
    export_lookup(tss_archive, root / "nats-tss" / "lookup.parquet")
    t = time.perf_counter()
    bench = open_benchmark("nats-tss", root=root)
    assert time.perf_counter() - t < 1.0 and bench.kind == "export"
    assert bench.has_split("cifar10", "valid")
    ladder = build(SearchConfig(method="mfnas"), bench).ladder
    assert [s.evaluator.name for s in ladder.stages][1:] == [
        f"lookup:{e}ep/200:valid" for e in (12, 25, 50, 100, 200)]
    with pytest.raises(UserError, match="seed means only"):
        bench.accuracy(SAMPLE[0], "cifar10", seed=777)
    with pytest.raises(UserError, match="no record"):
        bench.accuracy(5, "cifar10")


def test_a_damaged_or_foreign_file_is_one_line(tmp_path):
    bad = tmp_path / "lookup.parquet"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(UserError, match="cannot read exported lookup"):
        ExportedLookup(bad)
    import pandas as pd

    pd.DataFrame({"a": [1]}).to_parquet(bad)
    with pytest.raises(UserError, match="not a zcnas lookup export"):
        ExportedLookup(bad)


def test_a_complete_export_knows_the_optimum(small_complete_archive, tmp_path):
    from zcnas.lookup import NatsArchive

    archive = NatsArchive(small_complete_archive)
    export = ExportedLookup(export_lookup(archive, tmp_path / "l.parquet"))
    for ds in DATASETS:
        assert tuple(export.optimum(ds, epochs=200)) == tuple(archive.optimum(ds, epochs=200))



def test_the_file_is_the_same_for_any_number_of_workers(tss_archive, tmp_path):
    import pyarrow.parquet as pq

    one = pq.read_table(export_lookup(tss_archive, tmp_path / "one.parquet"))
    two = pq.read_table(export_lookup(tss_archive, tmp_path / "two.parquet", workers=2))
    assert one.equals(two) and one.schema.metadata == two.schema.metadata


def test_a_format_1_file_is_still_read(pair, tmp_path):
    """Files written before the wide format (one long row per number) give the same numbers."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    archive, exported = pair
    wide = pq.read_table(exported.path)
    rows = {k: [] for k in ("index", "run", "split", "hp", "epoch", "metric", "value")}
    index = wide.column("index").to_pylist()
    for name in wide.column_names[1:]:
        run, split, hp, epoch, metric = name.split("|")
        for i, v in zip(index, wide.column(name).to_pylist(), strict=True):
            if v == v:  # NaN: not recorded
                for k, x in zip(rows, (i, run, split, int(hp), int(epoch), metric, v),
                                strict=True):
                    rows[k].append(x)
    meta = json.loads(wide.schema.metadata[b"zcnas"])
    meta["format"] = "zcnas-nats-lookup-1"
    long = pa.table({"index": pa.array(rows["index"], pa.int32()),
                     "run": pa.array(rows["run"]).dictionary_encode(),
                     "split": pa.array(rows["split"]).dictionary_encode(),
                     "hp": pa.array(rows["hp"], pa.int16()),
                     "epoch": pa.array(rows["epoch"], pa.int16()),
                     "metric": pa.array(rows["metric"]).dictionary_encode(),
                     "value": pa.array(rows["value"], pa.float64())})
    pq.write_table(long.replace_schema_metadata({"zcnas": json.dumps(meta)}),
                   tmp_path / "v1.parquet")
    old = ExportedLookup(tmp_path / "v1.parquet")
    assert old._values.keys() == exported._values.keys()
    for key, values in exported._values.items():
        np.testing.assert_array_equal(old._values[key], values, err_msg=str(key))
