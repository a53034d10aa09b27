"""Finding data under the data roots, and the real CIFAR-10 subset."""

from __future__ import annotations

import numpy as np
import pytest

from zcnas.data import load_arrays, locate
from zcnas.errors import DataNotFoundError

from ._writers import write_cifar10, write_imagenet16


@pytest.mark.parametrize(
    ("dataset", "folder"),
    [
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
        ("ImageNet16-120", "ImageNet16"),
    ],
)
def test_missing_data_is_one_line_naming_folder_and_variable(
    tmp_path, no_env_roots, dataset, folder
):
    with pytest.raises(DataNotFoundError) as info:
        load_arrays(dataset, root=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / folder) in message
    assert "ZCNAS_DATA" in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_cifar10_names_the_subset_too_and_the_download(tmp_path, no_env_roots):
    with pytest.raises(DataNotFoundError) as info:
        load_arrays("cifar10", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "cifar10" / "cifar10-subset.npz") in message
    assert "zcnas data download cifar10" in message


def test_no_root_at_all_says_which_variable_to_set(no_env_roots):
    with pytest.raises(DataNotFoundError) as info:
        locate("ImageNet16-120")
    message = str(info.value)
    assert "\n" not in message and "ZCNAS_DATA" in message


def test_roots_come_from_the_environment_in_order(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    write_imagenet16(second / "cifar.python" / "ImageNet16")
    monkeypatch.setenv("ZCNAS_DATA", str(first))
    monkeypatch.setenv("TORCH_HOME", str(second))
    assert locate("ImageNet16-120") == second / "cifar.python" / "ImageNet16"
    write_cifar10(first / "cifar-10-batches-py", n=1)
    write_cifar10(second / "cifar-10-batches-py", n=2)
    assert len(load_arrays("cifar10")) == 5  # $ZCNAS_DATA wins over $TORCH_HOME
    assert len(load_arrays("cifar10", root=second)) == 10  # an argument wins over both


# --- the real subset (skipped without ZCNAS_DATA) -------------------------------------------


def test_real_subset_shapes_and_labels(shared_root):
    train = load_arrays("cifar10", "train", root=shared_root)
    test = load_arrays("cifar10", "test", root=shared_root)
    assert train.source.endswith("cifar10-subset.npz")
    assert train.x.shape == (4660, 32, 32, 3) and test.x.shape == (846, 32, 32, 3)
    assert train.x.dtype == np.uint8 and train.y.dtype == np.int64
    assert train.y.shape == (4660,) and test.y.shape == (846,)
    assert set(train.y.tolist()) == set(range(10)) and set(test.y.tolist()) <= set(range(10))


def test_real_subset_channel_statistics(shared_root):
    x = load_arrays("cifar10", "train", root=shared_root).x.reshape(-1, 3) / np.float32(255)
    # the README's per-channel values; R, G, B order distinguishes a channel-order mistake
    mean = x.mean(axis=0, dtype=np.float64)
    std = x.std(axis=0, dtype=np.float64)
    np.testing.assert_allclose(mean, [0.4931, 0.4836, 0.4480], atol=5e-4)
    np.testing.assert_allclose(std, [0.2480, 0.2444, 0.2622], atol=5e-4)


def test_real_subset_found_through_zcnas_data(shared_root, monkeypatch):
    monkeypatch.setenv("ZCNAS_DATA", str(shared_root))
    monkeypatch.delenv("TORCH_HOME", raising=False)
    assert len(load_arrays("cifar10", "test")) == 846
