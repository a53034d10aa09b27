"""CompactTable: the 15,625-row test-accuracy CSV."""

from __future__ import annotations

import pytest

from zcnas.errors import ArchError, CorruptDataError, DataNotFoundError, UserError
from zcnas.lookup import (
    TRAIN_TIME_REL_TOLERANCE,
    Benchmark,
    CompactTable,
    load_meta_archs,
)
from zcnas.spaces import nats_tss

from ._util import SAMPLE, one_line


def test_shape_and_identity(table, table_csv):
    assert isinstance(table, Benchmark)
    assert table.space == "nats-tss"
    assert len(table) == 15625
    assert str(table_csv) in table.source and "table" in table.source
    assert table.datasets == ("cifar10", "cifar100", "ImageNet16-120")
    assert table.schedules == (200, 12)


def test_index_11_cifar10(table):
    acc = table.accuracy(11, "cifar10")
    assert acc.value == pytest.approx(91.5833, abs=1e-9)
    assert (acc.split, acc.dataset, acc.epochs, acc.eval_set) == (
        "test",
        "cifar10",
        200,
        "ori-test",
    )
    assert acc.seeds == () and acc.epoch is None
    assert acc.source == table.source


def test_arch_string_genotype_and_index_agree(table):
    arch = table.arch(11)
    assert table.index(arch) == 11
    by_string = table.accuracy(arch, "cifar100")
    assert by_string == table.accuracy(11, "cifar100")
    assert table.accuracy(nats_tss.parse_arch(arch), "cifar100") == by_string
    assert table.accuracy("11", "cifar100") == by_string


@pytest.mark.parametrize(
    ("dataset", "value", "ties"),
    [
        ("cifar10", 94.3733, (6111, 13714)),
        ("cifar100", 73.5133, (9930,)),
        ("ImageNet16-120", 47.3111, (857,)),
    ],
)
def test_optima(table, dataset, value, ties):
    opt = table.optimum(dataset)
    index, arch, best = opt
    assert (index, best, opt.ties) == (ties[0], value, ties)
    assert arch == table.arch(index)
    assert (opt.dataset, opt.split, opt.epochs) == (dataset, "test", 200)


def test_arch_column_is_the_official_order(table, tss_archive_dir):
    assert table.order.archs == load_meta_archs(tss_archive_dir)


def test_schedules_differ_and_default_is_200(table):
    assert table.accuracy(11, "cifar10").epochs == 200
    a12 = table.accuracy(11, "cifar10", epochs=12)
    assert a12.epochs == 12 and a12.value == pytest.approx(74.0)
    assert a12.value != table.accuracy(11, "cifar10", epochs=200).value
    with pytest.raises(UserError) as e:
        table.accuracy(11, "cifar10", epochs=90)
    assert "200, 12" in one_line(e)


def test_validation_split_is_refused(table):
    for call in (
        lambda: table.accuracy(11, "cifar10", split="valid"),
        lambda: table.accuracy(11, "cifar100", split="valid"),
        lambda: table.optimum("cifar10", split="valid"),
        lambda: table.accuracy(11, "cifar100", split="valtest"),
    ):
        with pytest.raises(UserError) as e:
            call()
        msg = one_line(e)
        assert "test accuracies only" in msg and "archive" in msg


def test_other_refusals(table):
    with pytest.raises(UserError) as e:
        table.accuracy(11, "cifar10", seed=777)
    assert "means over seeds" in one_line(e)
    with pytest.raises(UserError) as e:
        table.accuracy(11, "cifar10-valid")
    assert "cifar10-valid" in one_line(e)
    with pytest.raises(UserError) as e:
        table.accuracy_at_epoch(11, "cifar10", 5, hp=200, split="test")
    assert "learning curves" in one_line(e)
    with pytest.raises(ArchError):
        table.accuracy(15625, "cifar10")
    with pytest.raises(ArchError):
        table.accuracy(True, "cifar10")


@pytest.mark.parametrize("index", SAMPLE)
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_costs_exact_sizes_and_estimated_time(table, tss_archive, index, dataset):
    for epochs in (200, 12):
        est = table.cost(index, dataset, epochs=epochs)
        real = tss_archive.cost(index, dataset, epochs=epochs)
        assert est.estimated and not real.estimated
        assert est.params_m == pytest.approx(real.params_m, abs=1e-9)
        assert est.flops_m == pytest.approx(real.flops_m, abs=1e-9)
        assert est.eval_seconds is None
        assert (est.dataset, est.epochs) == (dataset, epochs)
        rel = abs(est.train_seconds_per_epoch - real.train_seconds_per_epoch)
        assert rel / real.train_seconds_per_epoch <= TRAIN_TIME_REL_TOLERANCE


def test_cost_of_the_cifar10_validation_run(table, tss_archive):
    est = table.cost(11, "cifar10", split="valid")
    assert est.dataset == "cifar10-valid"
    real = tss_archive.cost(11, "cifar10", split="valid")
    assert est.train_seconds_per_epoch == pytest.approx(real.train_seconds_per_epoch, rel=0.25)
    assert est.train_seconds_per_epoch < table.cost(11, "cifar10").train_seconds_per_epoch
    assert est.train_seconds == pytest.approx(200 * est.train_seconds_per_epoch)


# --- validation on load ---------------------------------------------------------------------------


def _lines(table_csv) -> list[str]:
    return table_csv.read_text().splitlines(keepends=True)


def test_truncated_copy(tmp_path, table_csv):
    bad = tmp_path / "truncated.csv"
    bad.write_text("".join(_lines(table_csv)[:1001]))
    with pytest.raises(CorruptDataError) as e:
        CompactTable(bad)
    msg = one_line(e)
    assert str(bad) in msg and "1000 rows" in msg


def test_truncated_mid_line(tmp_path, table_csv):
    bad = tmp_path / "cut.csv"
    text = table_csv.read_text()
    bad.write_text(text[: len(text) // 2])
    with pytest.raises(CorruptDataError) as e:
        CompactTable(bad)
    assert str(bad) in one_line(e)


def test_garbage_file(tmp_path):
    bad = tmp_path / "garbage.csv"
    bad.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(CorruptDataError) as e:
        CompactTable(bad)
    assert str(bad) in one_line(e)


def test_empty_file(tmp_path):
    bad = tmp_path / "empty.csv"
    bad.write_text("")
    with pytest.raises(CorruptDataError) as e:
        CompactTable(bad)
    assert str(bad) in one_line(e)


def test_missing_column(tmp_path, table_csv):
    bad = tmp_path / "nocol.csv"
    rows = [line.rsplit(",", 1)[0] + "\n" for line in _lines(table_csv)]
    bad.write_text("".join(rows))
    with pytest.raises(CorruptDataError) as e:
        CompactTable(bad)
    assert "ImageNet16-120_test_200ep" in one_line(e)


def test_rows_out_of_order(tmp_path, table_csv):
    lines = _lines(table_csv)
    lines[5], lines[6] = lines[6], lines[5]
    bad = tmp_path / "order.csv"
    bad.write_text("".join(lines))
    with pytest.raises(CorruptDataError) as e:
        CompactTable(bad)
    assert "index" in one_line(e)


def test_bad_arch_string(tmp_path, table_csv):
    lines = _lines(table_csv)
    lines[3] = lines[3].replace("~0|", "~7|", 1)
    bad = tmp_path / "arch.csv"
    bad.write_text("".join(lines))
    with pytest.raises(CorruptDataError) as e:
        CompactTable(bad)
    assert str(bad) in one_line(e)


def test_non_numeric_accuracy(tmp_path, table_csv):
    lines = _lines(table_csv)
    lines[9] = lines[9].rsplit(",", 1)[0] + ",oops\n"
    bad = tmp_path / "acc.csv"
    bad.write_text("".join(lines))
    with pytest.raises(CorruptDataError) as e:
        CompactTable(bad)
    assert str(bad) in one_line(e)


def test_missing_file(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        CompactTable(tmp_path / "nope.csv")
    assert "nope.csv" in one_line(e)


def test_out_of_range_accuracy(tmp_path, table_csv):
    lines = _lines(table_csv)
    lines[1] = lines[1].rsplit(",", 1)[0] + ",185.5\n"
    bad = tmp_path / "range.csv"
    bad.write_text("".join(lines))
    with pytest.raises(CorruptDataError) as e:
        CompactTable(bad)
    msg = one_line(e)
    assert "ImageNet16-120_test_200ep" in msg and "row 0" in msg
