"""NatsArchive: the official NATS-Bench fast-mode archive, on the real sample archives."""

from __future__ import annotations

import bz2
import pickle

import pytest

from zcnas.errors import ArchError, CorruptDataError, DataNotFoundError, UserError
from zcnas.lookup import Benchmark, NatsArchive, load_meta_archs
from zcnas.spaces import nats_sss

from ._util import SAMPLE, one_line

# --- topology space -------------------------------------------------------------------------------


def test_identity(tss_archive, tss_archive_dir):
    assert isinstance(tss_archive, Benchmark)
    assert tss_archive.space == "nats-tss" and len(tss_archive) == 15625
    assert str(tss_archive_dir) in tss_archive.source and "sample" in tss_archive.source
    assert not tss_archive.is_complete
    assert tss_archive.available_indices == frozenset(SAMPLE)
    assert "cifar10-valid" in tss_archive.datasets
    assert tss_archive.order.archs == tss_archive.meta_archs


def test_index_11_cifar10(tss_archive):
    acc = tss_archive.accuracy(11, "cifar10")
    assert acc.value == pytest.approx(91.5833, abs=1e-4)
    assert (acc.split, acc.dataset, acc.eval_set, acc.epochs) == (
        "test",
        "cifar10",
        "ori-test",
        200,
    )
    assert acc.seeds == (777, 888, 999)


def test_default_schedule_is_200_and_hp12_differs(tss_archive):
    a200 = tss_archive.accuracy(11, "cifar10")
    a12 = tss_archive.accuracy(11, "cifar10", epochs=12)
    assert a200.epochs == 200 and a12.epochs == 12
    assert a12.value == pytest.approx(74.0) and a12.value != a200.value
    assert a12.seeds == (111,)  # hp='12' cifar10 has one seed
    assert tss_archive.accuracy(11, "cifar10", epochs="12") == a12
    with pytest.raises(UserError):
        tss_archive.accuracy(11, "cifar10", epochs=90)


def test_cifar10_validation_is_cifar10_valid_x_valid(tss_archive):
    test = tss_archive.accuracy(11, "cifar10", split="test")
    valid = tss_archive.accuracy(11, "cifar10", split="valid")
    assert valid.value != test.value
    assert valid.value == pytest.approx(87.94, abs=1e-4)
    assert (valid.split, valid.dataset, valid.eval_set) == ("valid", "cifar10-valid", "x-valid")
    assert (test.split, test.dataset, test.eval_set) == ("test", "cifar10", "ori-test")
    assert tss_archive.accuracy(11, "cifar10-valid", split="valid") == valid
    c10v_test = tss_archive.accuracy(11, "cifar10-valid", split="test")
    assert (c10v_test.dataset, c10v_test.eval_set) == ("cifar10-valid", "ori-test")
    assert c10v_test.value == pytest.approx(87.65, abs=1e-4)


@pytest.mark.parametrize("dataset", ["cifar100", "ImageNet16-120"])
def test_cifar100_imagenet_splits(tss_archive, dataset):
    valid = tss_archive.accuracy(11, dataset, split="valid")
    test = tss_archive.accuracy(11, dataset, split="test")
    valtest = tss_archive.accuracy(11, dataset, split="valtest")
    assert (valid.eval_set, test.eval_set, valtest.eval_set) == ("x-valid", "x-test", "ori-test")
    assert len({valid.value, test.value, valtest.value}) == 3
    # ori-test is the union of the two halves
    assert valtest.value == pytest.approx((valid.value + test.value) / 2, abs=1e-3)


def test_intermediate_validation_on_cifar100_is_refused(tss_archive):
    with pytest.raises(UserError) as e:
        tss_archive.accuracy_at_epoch(11, "cifar100", 24, hp=200, split="valid")
    msg = one_line(e)
    assert "ori-test" in msg and "valtest" in msg
    # what nats_bench would have substituted, available only when asked for by name
    vt = tss_archive.accuracy_at_epoch(11, "cifar100", 24, hp=200, split="valtest")
    assert (vt.split, vt.eval_set, vt.epoch) == ("valtest", "ori-test", 24)
    with pytest.raises(UserError):
        tss_archive.accuracy_at_epoch(11, "ImageNet16-120", 100, hp=200, split="valid")
    with pytest.raises(UserError):
        tss_archive.accuracy_at_epoch(11, "cifar100", 24, hp=200, split="test")


def test_learning_curve_points_that_exist(tss_archive):
    last = tss_archive.accuracy_at_epoch(11, "cifar100", 200, hp=200, split="valid")
    assert last.value == tss_archive.accuracy(11, "cifar100", split="valid").value
    assert last.epoch == 200
    c10 = tss_archive.accuracy_at_epoch(11, "cifar10", 24, hp=200, split="valid")
    assert (c10.dataset, c10.eval_set, c10.epoch, c10.epochs) == (
        "cifar10-valid",
        "x-valid",
        24,
        200,
    )
    early = tss_archive.accuracy_at_epoch(11, "cifar100", 6, hp=12, split="valid")
    assert early.eval_set == "x-valid" and early.epochs == 12
    with pytest.raises(UserError):  # cifar10-valid's ori-test exists only at the last epoch
        tss_archive.accuracy_at_epoch(11, "cifar10-valid", 24, hp=200, split="test")
    for bad in (0, 201, 2.5):
        with pytest.raises(UserError):
            tss_archive.accuracy_at_epoch(11, "cifar10", bad, hp=200, split="valid")


def test_seed_selection(tss_archive):
    one = tss_archive.accuracy(11, "cifar10", seed=888)
    assert one.seeds == (888,)
    per_seed = [tss_archive.accuracy(11, "cifar10", seed=s).value for s in (777, 888, 999)]
    assert sum(per_seed) / 3 == pytest.approx(tss_archive.accuracy(11, "cifar10").value)
    with pytest.raises(UserError) as e:
        tss_archive.accuracy(11, "cifar10", seed=3)
    assert "777, 888, 999" in one_line(e)


def test_cost_index_11(tss_archive):
    c = tss_archive.cost(11, "cifar10")
    assert c.params_m == pytest.approx(0.802426, abs=1e-9)
    assert c.flops_m == pytest.approx(113.95137, abs=1e-9)
    assert c.train_seconds_per_epoch == pytest.approx(24.92, abs=0.01)
    assert c.eval_seconds == pytest.approx(1.6605, abs=1e-3)
    assert not c.estimated and (c.dataset, c.epochs) == ("cifar10", 200)
    v = tss_archive.cost(11, "cifar10", split="valid")
    assert v.dataset == "cifar10-valid"
    assert v.train_seconds_per_epoch == pytest.approx(12.46, abs=0.01)
    assert v.eval_seconds == pytest.approx(4.1513, abs=1e-3)


def test_missing_record_is_one_line(tss_archive):
    with pytest.raises(DataNotFoundError) as e:
        tss_archive.accuracy(5, "cifar10")
    msg = one_line(e)
    assert "#5" in msg and "sample" in msg
    with pytest.raises(DataNotFoundError):
        tss_archive.cost(5, "cifar10")
    with pytest.raises(DataNotFoundError) as e:
        tss_archive.optimum("cifar10")
    assert "3 of 15625" in one_line(e)
    with pytest.raises(ArchError):
        tss_archive.accuracy(15625, "cifar10")


def test_arch_strings_work(tss_archive):
    arch = tss_archive.arch(284)
    assert tss_archive.index(arch) == 284
    assert tss_archive.accuracy(arch, "cifar10") == tss_archive.accuracy(284, "cifar10")


def test_space_mismatch(tss_archive_dir):
    with pytest.raises(UserError) as e:
        NatsArchive(tss_archive_dir, "nats-sss")
    assert "nats-tss" in one_line(e)


def test_file_instead_of_folder(tss_archive_dir):
    with pytest.raises(UserError) as e:
        NatsArchive(tss_archive_dir / "meta.pickle.pbz2")
    assert "folder" in one_line(e)


def test_bounded_record_memory(tss_archive_dir):
    arc = NatsArchive(tss_archive_dir, max_records=1)
    first = [arc.accuracy(i, "cifar100", split="valid").value for i in SAMPLE]
    assert len(arc._api().arch2infos_dict) == 1
    again = [arc.accuracy(i, "cifar100", split="valid").value for i in reversed(SAMPLE)]
    assert first == again[::-1]


def test_optimum_on_a_complete_archive(small_complete_archive):
    arc = NatsArchive(small_complete_archive)
    assert arc.is_complete and "full" in arc.source
    opt = arc.optimum("cifar10")
    index, arch, value = opt
    assert (index, opt.ties) == (1, (1,))
    assert value == pytest.approx(91.5833, abs=1e-4)
    assert arch == arc.arch(1)
    valid = arc.optimum("cifar10", split="valid")
    assert (valid.dataset, valid.split) == ("cifar10-valid", "valid")
    assert valid.value == max(arc.accuracy(i, "cifar10", split="valid").value for i in range(3))


def test_corrupt_record_is_one_line(small_complete_archive):
    (small_complete_archive / "000002.pickle.pbz2").write_bytes(b"not a bz2 stream")
    arc = NatsArchive(small_complete_archive)
    with pytest.raises(CorruptDataError) as e:
        arc.accuracy(2, "cifar10")
    assert "000002.pickle.pbz2" in one_line(e)


# --- meta file ------------------------------------------------------------------------------------


def test_load_meta_archs(tss_archive_dir):
    archs = load_meta_archs(tss_archive_dir)
    assert len(archs) == 15625
    assert archs[0] == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
        "skip_connect~2|"
    )
    assert load_meta_archs(tss_archive_dir / "meta.pickle.pbz2") == archs


def test_meta_errors(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        load_meta_archs(tmp_path)
    assert "meta.pickle.pbz2" in one_line(e)
    garbage = tmp_path / "garbage.pbz2"
    garbage.write_bytes(bytes(range(256)))
    truncated = tmp_path / "truncated.pbz2"
    truncated.write_bytes(
        bz2.compress(pickle.dumps({"meta_archs": [str(i) for i in range(5000)]}))[:200]
    )
    wrong = tmp_path / "wrong.pbz2"
    wrong.write_bytes(bz2.compress(pickle.dumps({"something": 1})))
    for path in (garbage, truncated, wrong):
        with pytest.raises(CorruptDataError) as e:
            load_meta_archs(path)
        assert str(path) in one_line(e)
    folder = tmp_path / "NATS-tss-v1_0-3ffb9-simple"
    folder.mkdir()
    (folder / "meta.pickle.pbz2").write_bytes(b"junk")
    with pytest.raises(CorruptDataError):
        NatsArchive(folder)


# --- size space -----------------------------------------------------------------------------------


def test_sss_meta_order_is_computed_order(sss_archive_dir):
    archs = load_meta_archs(sss_archive_dir)
    assert len(archs) == nats_sss.SIZE
    assert archs == [nats_sss.format_arch(nats_sss.at_index(i)) for i in range(nats_sss.SIZE)]


def test_sss_archive(sss_archive):
    assert sss_archive.space == "nats-sss" and len(sss_archive) == 32768
    assert sss_archive.full_epochs == 90 and sss_archive.schedules == (90, 12, 1)
    assert sss_archive.arch(11) == "8:8:8:16:32" and sss_archive.index("8:8:8:16:32") == 11
    for i in SAMPLE:
        acc = sss_archive.accuracy(i, "cifar10")
        assert acc.epochs == 90 and acc.seeds == (777,)
        assert 0 < acc.value < 100
        assert sss_archive.accuracy(i, "cifar10", epochs=12).seeds == (777, 888, 999)
        c = sss_archive.cost(i, "cifar100")
        assert c.params_m > 0 and c.train_seconds_per_epoch > 0
    assert sss_archive.accuracy(284, "cifar100", split="valid").value == pytest.approx(
        62.78, abs=1e-4
    )
    assert sss_archive.accuracy(11, "cifar10", epochs=1).value == pytest.approx(47.22, abs=1e-4)
    assert sss_archive.accuracy_at_epoch(284, "cifar100", 30, hp=90, split="valid").epoch == 30
    with pytest.raises(UserError):
        sss_archive.accuracy(11, "cifar10", epochs=200)
    with pytest.raises(DataNotFoundError):
        sss_archive.accuracy(12, "cifar10")


def test_sss_order_property(sss_archive):
    order = sss_archive.order
    assert len(order) == nats_sss.SIZE and order.arch(284) == sss_archive.arch(284)


def test_pickles_without_loaded_records(tss_archive_dir):
    arc = NatsArchive(tss_archive_dir)
    before = arc.accuracy(284, "ImageNet16-120", split="valid")
    clone = pickle.loads(pickle.dumps(arc))
    assert clone._api_obj is None
    assert clone.accuracy(284, "ImageNet16-120", split="valid") == before
