"""Readers of the official formats, on tiny fixtures written in those formats."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from zcnas.data import load_arrays
from zcnas.data.formats import images_to_rows, rows_to_images
from zcnas.errors import CorruptDataError, DataNotFoundError, UnknownNameError

from ._writers import (
    official_rows,
    write_cifar10,
    write_cifar100,
    write_imagenet16,
    write_pickle,
    write_subset_npz,
)


def assert_one_line_naming(error: BaseException, path: Path) -> None:
    message = str(error)
    assert "\n" not in message
    assert str(path) in message


# --- CIFAR-10 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["cifar-10-batches-py", "cifar10/cifar-10-batches-py", "cifar.python/cifar-10-batches-py"],
)
def test_cifar10_official_batches(tmp_path, where):
    expected = write_cifar10(tmp_path / where, n=6)
    for split, n in (("train", 30), ("test", 6)):
        arrays = load_arrays("cifar10", split, root=tmp_path)
        x, y = expected[split]
        assert arrays.x.shape == (n, 32, 32, 3) and arrays.x.dtype == np.uint8
        assert arrays.y.dtype == np.int64
        np.testing.assert_array_equal(arrays.x, x)
        np.testing.assert_array_equal(arrays.y, y)
        assert arrays.source == str((tmp_path / where).resolve())
        assert (arrays.dataset, arrays.split, len(arrays)) == ("cifar10", split, n)


@pytest.mark.parametrize("style", ["py2", "py3"])
def test_cifar10_python2_and_python3_pickles(tmp_path, style):
    expected = write_cifar10(tmp_path / "cifar-10-batches-py", n=3, style=style)
    raw = (tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol 2, like the official files
    assert (b"U\x06labels" in raw) == (style == "py2")  # a Python 2 str key
    arrays = load_arrays("cifar10", "test", root=tmp_path)
    np.testing.assert_array_equal(arrays.x, expected["test"][0])
    np.testing.assert_array_equal(arrays.y, expected["test"][1])


def test_cifar10_pixel_layout_is_channel_major(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, n=1)
    row = np.zeros((1, 3072), np.uint8)
    row[0, 0] = 200  # red, top-left
    row[0, 1024 + 31] = 150  # green, top row, last column
    row[0, 2048 + 32] = 100  # blue, second row, first column
    write_pickle(folder / "test_batch", {b"labels": [3], b"data": row, b"batch_label": b"t"})
    x = load_arrays("cifar10", "test", root=tmp_path).x[0]
    assert x[0, 0, 0] == 200 and x[0, 31, 1] == 150 and x[1, 0, 2] == 100
    assert int(x.astype(int).sum()) == 450


def test_official_batches_win_over_the_subset_in_the_same_root(tmp_path):
    write_subset_npz(tmp_path / "cifar10" / "cifar10-subset.npz")
    assert load_arrays("cifar10", root=tmp_path).source.endswith("cifar10-subset.npz")
    write_cifar10(tmp_path / "cifar-10-batches-py", n=2)
    from zcnas.data import clear_cache

    clear_cache()
    arrays = load_arrays("cifar10", root=tmp_path)
    assert arrays.source.endswith("cifar-10-batches-py") and len(arrays) == 10


def test_loaded_arrays_are_read_only_and_cached(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py", n=2)
    a = load_arrays("cifar10", root=tmp_path)
    b = load_arrays("cifar10", root=tmp_path)
    assert a.x is b.x
    with pytest.raises(ValueError):
        a.x[0, 0, 0, 0] = 1


def test_cache_notices_a_rewritten_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, n=2, seed=0)
    before = load_arrays("cifar10", "test", root=tmp_path).x.copy()
    expected = write_cifar10(folder, n=2, seed=1)
    os.utime(folder / "test_batch", ns=(10**18, 10**18))
    after = load_arrays("cifar10", "test", root=tmp_path).x
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, expected["test"][0])


# --- CIFAR-100 ------------------------------------------------------------------------------


def test_cifar100_fine_labels(tmp_path):
    expected = write_cifar100(tmp_path / "cifar-100-python", n=9)
    for split in ("train", "test"):
        arrays = load_arrays("cifar100", split, root=tmp_path)
        np.testing.assert_array_equal(arrays.x, expected[split][0])
        np.testing.assert_array_equal(arrays.y, expected[split][1])
        assert arrays.y.min() == 0 and arrays.y.max() == 99


def test_cifar100_without_fine_labels_is_corrupt(tmp_path):
    folder = tmp_path / "cifar-100-python"
    write_cifar100(folder)
    # a CIFAR-10 batch put where CIFAR-100's train file belongs
    write_pickle(folder / "train", {b"labels": [1], b"data": np.zeros((1, 3072), np.uint8)})
    with pytest.raises(CorruptDataError, match="fine_labels") as info:
        load_arrays("cifar100", "train", root=tmp_path)
    assert_one_line_naming(info.value, (folder / "train").resolve())


# --- ImageNet16-120 -------------------------------------------------------------------------


@pytest.mark.parametrize("bytes_keys", [False, True])
def test_imagenet16_keeps_120_classes_and_shifts_labels(tmp_path, bytes_keys):
    expected = write_imagenet16(tmp_path / "ImageNet16", bytes_keys=bytes_keys)
    train = load_arrays("ImageNet16-120", "train", root=tmp_path)
    # each file holds labels 1, 2, 60, 119, 120, 121, 500, 1000: five of eight are kept
    assert train.x.shape == (50, 16, 16, 3) and train.x.dtype == np.uint8
    np.testing.assert_array_equal(train.x, expected["train"][0])
    np.testing.assert_array_equal(train.y, expected["train"][1])
    assert sorted(set(train.y.tolist())) == [0, 1, 59, 118, 119]
    test = load_arrays("ImageNet16-120", "test", root=tmp_path)
    assert len(test) == 5
    np.testing.assert_array_equal(test.y, expected["test"][1])


def test_imagenet16_zero_based_labels_are_corrupt(tmp_path):
    folder = tmp_path / "ImageNet16"
    write_imagenet16(folder)
    data = official_rows(np.zeros((2, 16, 16, 3), np.uint8))
    write_pickle(folder / "val_data", {"data": data, "labels": [0, 5]})
    with pytest.raises(CorruptDataError, match="1-based") as info:
        load_arrays("ImageNet16-120", "test", root=tmp_path)
    assert_one_line_naming(info.value, (folder / "val_data").resolve())


def test_imagenet16_cifar_sized_rows_are_corrupt(tmp_path):
    folder = tmp_path / "ImageNet16"
    write_imagenet16(folder)
    write_pickle(folder / "val_data", {"data": np.zeros((2, 3072), np.uint8), "labels": [1, 2]})
    with pytest.raises(CorruptDataError, match="768"):
        load_arrays("ImageNet16-120", "test", root=tmp_path)


# --- corrupt and incomplete files -----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"this is not a pickle",
        b"",
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})[:-40],
    ],
    ids=["garbage", "empty", "truncated"],
)
def test_unreadable_batch_is_corrupt_data_naming_the_file(tmp_path, content):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, n=2)
    (folder / "data_batch_3").write_bytes(content)
    with pytest.raises(CorruptDataError) as info:
        load_arrays("cifar10", "train", root=tmp_path)
    assert_one_line_naming(info.value, (folder / "data_batch_3").resolve())


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({b"data": np.zeros((2, 3072), np.uint8)}, "lacks the key"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, "3072"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"0\.\.9"),
        ([1, 2, 3], "not a dict"),
    ],
    ids=["no-labels", "wrong-width", "wrong-dtype", "short-labels", "label-range", "list"],
)
def test_wrong_content_is_corrupt_data(tmp_path, entry, match):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, n=2)
    write_pickle(folder / "test_batch", entry)
    with pytest.raises(CorruptDataError, match=match) as info:
        load_arrays("cifar10", "test", root=tmp_path)
    assert_one_line_naming(info.value, (folder / "test_batch").resolve())


class _Payload:
    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (str(self.target),))


def test_pickles_cannot_run_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, n=2)
    marker = tmp_path / "pwned"
    write_pickle(folder / "test_batch", {b"data": _Payload(marker), b"labels": []})
    with pytest.raises(CorruptDataError, match="refusing to load"):
        load_arrays("cifar10", "test", root=tmp_path)
    assert not marker.exists()


def test_incomplete_folder_names_the_missing_file(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, n=2)
    (folder / "data_batch_5").unlink()
    with pytest.raises(DataNotFoundError) as info:
        load_arrays("cifar10", "train", root=tmp_path)
    assert_one_line_naming(info.value, (folder / "data_batch_5").resolve())


# --- the .npz subset format -----------------------------------------------------------------


def test_subset_npz(tmp_path):
    expected = write_subset_npz(tmp_path / "cifar10-subset.npz", n_train=20, n_test=10)
    for split in ("train", "test"):
        arrays = load_arrays("cifar10", split, root=tmp_path)
        np.testing.assert_array_equal(arrays.x, expected[f"x_{split}"])
        assert arrays.y.dtype == np.int64
        np.testing.assert_array_equal(arrays.y, expected[f"y_{split}"])


def test_corrupt_npz_is_corrupt_data(tmp_path):
    path = tmp_path / "cifar10" / "cifar10-subset.npz"
    path.parent.mkdir()
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CorruptDataError) as info:
        load_arrays("cifar10", root=tmp_path)
    assert_one_line_naming(info.value, path.resolve())


def test_npy_or_truncated_npz_is_corrupt_data(tmp_path):
    path = tmp_path / "cifar10-subset.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(CorruptDataError, match="single array"):
        load_arrays("cifar10", root=tmp_path)
    write_subset_npz(path)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(CorruptDataError) as info:
        load_arrays("cifar10", root=tmp_path)
    assert_one_line_naming(info.value, path.resolve())


def test_npz_without_the_split_is_corrupt_data(tmp_path):
    path = tmp_path / "cifar10-subset.npz"
    np.savez(path, x_train=np.zeros((2, 32, 32, 3), np.uint8), y_train=np.zeros(2, np.uint8))
    assert len(load_arrays("cifar10", "train", root=tmp_path)) == 2
    with pytest.raises(CorruptDataError, match="x_test"):
        load_arrays("cifar10", "test", root=tmp_path)


def test_unknown_split(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py", n=1)
    with pytest.raises(UnknownNameError, match="valid splits: train, test"):
        load_arrays("cifar10", "valid", root=tmp_path)


# --- the row layout, as a property ----------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from([16, 32]).flatmap(
        lambda r: arrays(np.uint8, st.tuples(st.integers(1, 3), st.just(r), st.just(r), st.just(3)))
    )
)
def test_row_layout_round_trips(images):
    rows = official_rows(images)
    np.testing.assert_array_equal(images_to_rows(images), rows)
    np.testing.assert_array_equal(rows_to_images(rows, images.shape[1]), images)
