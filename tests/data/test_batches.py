"""Normalisation, synthetic batches and fixed seeded batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zcnas.data import DATASETS, fixed_batches, load_arrays, normalize, synthetic_batch
from zcnas.errors import UnknownNameError, UserError

from ._writers import write_imagenet16


def _unique_images_npz(path, n: int) -> None:
    """A subset archive whose image i has pixel [0, 0] = (i % 256, i // 256, 7)."""
    x = np.zeros((n, 32, 32, 3), np.uint8)
    x[:, 0, 0, 0] = np.arange(n) % 256
    x[:, 0, 0, 1] = np.arange(n) // 256
    x[:, 0, 0, 2] = 7
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        x_train=x,
        y_train=(np.arange(n) % 10).astype(np.uint8),
        x_test=x[:5],
        y_test=np.zeros(5, np.uint8),
    )


def _image_ids(x: torch.Tensor) -> list[int]:
    spec = DATASETS["cifar10"]
    red = (x[:, 0, 0, 0] * spec.std[0] + spec.mean[0]) * 255
    green = (x[:, 1, 0, 0] * spec.std[1] + spec.mean[1]) * 255
    return (red.round() + 256 * green.round()).long().tolist()


# --- normalize ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DATASETS))
def test_normalize_matches_the_formula(name):
    spec = DATASETS[name]
    r = spec.resolution
    x = np.random.default_rng(0).integers(0, 256, size=(4, r, r, 3), dtype=np.uint8)
    t = normalize(x, name)
    assert t.shape == (4, 3, r, r) and t.dtype == torch.float32 and t.is_contiguous()
    want = (x.transpose(0, 3, 1, 2) / 255.0 - np.array(spec.mean)[:, None, None]) / np.array(
        spec.std
    )[:, None, None]
    np.testing.assert_allclose(t.numpy(), want, atol=1e-5)


def test_normalize_keeps_channel_order():
    x = np.zeros((1, 32, 32, 3), np.uint8)
    x[..., 0] = 255  # pure red
    t = normalize(x, "cifar10")
    assert t[0, 0].min() > 1.5 and t[0, 1].max() < -1.5 and t[0, 2].max() < -1.5


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 3, 32, 32), np.uint8),
        np.zeros((2, 32, 32, 3), np.float32),
        np.zeros((2, 16, 16, 3), np.uint8),
        np.zeros((32, 32, 3), np.uint8),
    ],
)
def test_normalize_rejects_other_layouts(bad):
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 3\)"):
        normalize(bad, "cifar10")


def test_normalised_real_subset_is_standardised(shared_root):
    t = normalize(load_arrays("cifar10", root=shared_root).x, "cifar10")
    mean = t.mean(dim=(0, 2, 3))
    std = t.std(dim=(0, 2, 3))
    assert torch.all(mean.abs() < 0.02), mean
    assert torch.all((std - 1).abs() < 0.02), std


# --- synthetic_batch ------------------------------------------------------------------------


def test_synthetic_batch_is_seeded_and_shaped():
    x, y = synthetic_batch("ImageNet16-120", 8, seed=3)
    assert x.shape == (8, 3, 16, 16) and x.dtype == torch.float32
    assert y.shape == (8,) and y.dtype == torch.int64
    assert int(y.min()) >= 0 and int(y.max()) < 120
    x2, y2 = synthetic_batch("ImageNet16-120", 8, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = synthetic_batch("ImageNet16-120", 8, seed=4)
    assert not torch.equal(x, x3)


def test_synthetic_inputs_are_standard_normal_and_labels_uniform():
    x, y = synthetic_batch("cifar100", 512, seed=0)
    assert abs(float(x.mean())) < 0.01 and abs(float(x.std()) - 1) < 0.01
    counts = torch.bincount(y, minlength=100)
    assert counts.min() > 0 and counts.max() < 20  # 512 draws over 100 classes


def test_synthetic_batch_leaves_the_global_rngs_alone():
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    torch.manual_seed(1)
    a = synthetic_batch("cifar10", 4, seed=9)
    torch.manual_seed(2)
    b = synthetic_batch("cifar10", 4, seed=9)
    assert torch.equal(a[0], b[0])
    torch.set_rng_state(torch_state)
    synthetic_batch("cifar10", 4, seed=9)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()


def test_synthetic_fixed_batches_extend_synthetic_batch():
    batches = fixed_batches("cifar10", 3, 4, seed=5, source="synthetic")
    first = synthetic_batch("cifar10", 4, seed=5)
    assert torch.equal(batches[0][0], first[0]) and torch.equal(batches[0][1], first[1])
    assert not torch.equal(batches[0][0], batches[1][0])
    again = fixed_batches("cifar10", 3, 4, seed=5, source="synthetic")
    assert all(
        torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        for a, b in zip(batches, again, strict=True)
    )


# --- fixed_batches on real-format data ------------------------------------------------------


def test_fixed_batches_are_identical_per_seed_and_differ_across_seeds(tmp_path):
    _unique_images_npz(tmp_path / "cifar10-subset.npz", 300)
    a = fixed_batches("cifar10", 3, 16, seed=0, root=tmp_path)
    b = fixed_batches("cifar10", 3, 16, seed=0, root=tmp_path)
    assert len(a) == 3
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert xa.shape == (16, 3, 32, 32) and xa.dtype == torch.float32
        assert ya.shape == (16,) and ya.dtype == torch.int64
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    c = fixed_batches("cifar10", 3, 16, seed=1, root=tmp_path)
    assert not torch.equal(a[0][0], c[0][0])


def test_fixed_batches_draw_without_replacement_and_keep_labels_with_images(tmp_path):
    _unique_images_npz(tmp_path / "cifar10-subset.npz", 300)
    batches = fixed_batches("cifar10", 4, 50, seed=7, root=tmp_path)
    ids = [i for x, _ in batches for i in _image_ids(x)]
    assert len(ids) == 200 and len(set(ids)) == 200 and max(ids) < 300
    for x, y in batches:
        assert [i % 10 for i in _image_ids(x)] == y.tolist()


def test_fixed_batches_use_the_documented_draw(tmp_path):
    _unique_images_npz(tmp_path / "cifar10-subset.npz", 300)
    ((x, _),) = fixed_batches("cifar10", 1, 10, seed=11, root=tmp_path)
    want = np.random.default_rng(11).permutation(300)[:10]
    assert _image_ids(x) == want.tolist()


def test_fixed_batches_real_subset(shared_root):
    a = fixed_batches("cifar10", 2, 64, seed=0, root=shared_root)
    b = fixed_batches("cifar10", 2, 64, seed=0, root=shared_root)
    assert all(
        torch.equal(p[0], q[0]) and torch.equal(p[1], q[1]) for p, q in zip(a, b, strict=True)
    )
    assert not torch.equal(a[0][0], fixed_batches("cifar10", 1, 64, seed=1, root=shared_root)[0][0])


def test_fixed_batches_imagenet16(tmp_path):
    write_imagenet16(tmp_path / "ImageNet16")
    ((x, y),) = fixed_batches("ImageNet16-120", 1, 20, seed=0, root=tmp_path)
    assert x.shape == (20, 3, 16, 16) and int(y.max()) <= 119


def test_fixed_batches_leave_the_global_rngs_alone(tmp_path):
    _unique_images_npz(tmp_path / "cifar10-subset.npz", 50)
    np.random.seed(0)
    a = fixed_batches("cifar10", 1, 10, seed=2, root=tmp_path)
    np_state = np.random.get_state()
    np.random.seed(123)
    b = fixed_batches("cifar10", 1, 10, seed=2, root=tmp_path)
    assert torch.equal(a[0][0], b[0][0])
    np.random.seed(0)
    fixed_batches("cifar10", 1, 10, seed=2, root=tmp_path)
    assert np.random.get_state()[1].tolist() == np_state[1].tolist()


def test_too_many_images_is_a_clear_user_error(tmp_path):
    _unique_images_npz(tmp_path / "cifar10-subset.npz", 50)
    with pytest.raises(UserError) as info:
        fixed_batches("cifar10", 2, 30, seed=0, root=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "60" in message and "50" in message


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"n_batches": 0}, UserError),
        ({"batch_size": -1}, UserError),
        ({"batch_size": 2.5}, UserError),
        ({"seed": -1}, UserError),
        ({"seed": True}, UserError),
        ({"source": "random"}, UnknownNameError),
    ],
)
def test_bad_arguments(kwargs, error):
    args = {"n_batches": 1, "batch_size": 2, "seed": 0, "source": "synthetic"} | kwargs
    with pytest.raises(error):
        fixed_batches("cifar10", **args)


def test_unknown_dataset_in_batches():
    with pytest.raises(UnknownNameError):
        synthetic_batch("svhn", 2, seed=0)
