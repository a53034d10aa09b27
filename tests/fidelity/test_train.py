"""Stand-alone training: the NATS recipe, augmentation, exact resume, one-line errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zcnas.data.training import TrainingData, augment, holdout_split
from zcnas.errors import CheckpointError, UserError
from zcnas.fidelity.train import Recipe, TrainEvaluator, load_checkpoint, train_arch

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|" \
       "nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def data(data_root) -> TrainingData:
    return TrainingData.load("cifar10", data_root, valid=32, limit=96)


def test_recipe_is_nats_benchs():
    r = Recipe()
    assert (r.lr, r.momentum, r.nesterov, r.weight_decay, r.batch_size, r.epochs) == (
        0.1, 0.9, True, 5e-4, 256, 200)
    assert r.lr_at(0) == 0.1 and r.lr_at(200) == pytest.approx(0.0)
    assert r.lr_at(100) == pytest.approx(0.05)
    assert Recipe(epochs=12).lr_at(3) == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    opt = r.optimizer([torch.nn.Parameter(torch.zeros(1))])
    assert opt.defaults["nesterov"] and opt.defaults["weight_decay"] == 5e-4


def test_holdout_split_is_disjoint_seeded_and_complete():
    tr, va = holdout_split(100, 10, seed=3)
    assert len(va) == 10 and len(set(tr) | set(va)) == 100 and not set(tr) & set(va)
    assert np.array_equal(va, holdout_split(100, 10, seed=3)[1])
    with pytest.raises(UserError):
        holdout_split(10, 10)


def test_augment_crops_from_the_zero_padded_image_and_flips():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 255, size=(64, 8, 8, 3), dtype=np.uint8)
    assert np.array_equal(augment(x, rng, 0, flip=False), x)
    y = augment(x, rng, 2, flip=True)
    assert y.shape == x.shape and y.dtype == np.uint8
    padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
    for i in range(len(x)):  # every output is a crop of its padded input, maybe mirrored
        crops = [padded[i, a:a + 8, b:b + 8] for a in range(5) for b in range(5)]
        assert any(np.array_equal(y[i], c) or np.array_equal(y[i], c[:, ::-1]) for c in crops)
    flipped = sum(np.array_equal(y[i], padded[i, 2:10, 2:10][:, ::-1]) for i in range(64))
    assert 0 < flipped < 20  # the centre crop, mirrored: about 1/25 * 1/2 of the images


def test_training_learns(data):
    small = Recipe(epochs=8, batch_size=32, lr=0.05)
    res = train_arch(ARCH, data=data, recipe=small, seed=0)
    assert len(res.history) == 8 and res.seconds > 0 and res.seconds_per_epoch > 0
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"] - 0.2
    assert 0 <= res.valid_acc <= 100


def test_interrupted_training_resumes_to_the_same_weights(data, tmp_path):
    r = Recipe(epochs=3, batch_size=32)
    straight = train_arch(ARCH, data=data, recipe=r, seed=1, checkpoint=tmp_path / "a.pt")
    # killed after its first epoch was checkpointed
    ck = tmp_path / "b.pt"

    def kill(row):
        if row["epoch"] == 1:
            raise _Killed

    with pytest.raises(_Killed):
        train_arch(ARCH, data=data, recipe=r, seed=1, checkpoint=ck, progress=kill)
    assert load_checkpoint(ck)["epoch"] == 1
    resumed = train_arch(ARCH, data=data, recipe=r, seed=1, checkpoint=ck, resume=True)
    assert resumed.resumed_from == 1
    assert resumed.valid_acc == straight.valid_acc
    assert [h["train_loss"] for h in resumed.history] == [
        h["train_loss"] for h in straight.history]
    a, b = load_checkpoint(tmp_path / "a.pt"), load_checkpoint(ck)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    # a finished checkpoint is read back, not retrained, at the cost it took
    again = train_arch(ARCH, data=data, recipe=r, seed=1, checkpoint=ck)
    assert again.resumed_from == 3 and again.seconds == resumed.seconds


class _Killed(Exception):
    pass


def test_checkpoint_errors(data, tmp_path):
    r = Recipe(epochs=1, batch_size=32)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train_arch(ARCH, data=data, recipe=r, checkpoint=tmp_path / "missing.pt", resume=True)
    ck = tmp_path / "c.pt"
    train_arch(ARCH, data=data, recipe=r, checkpoint=ck, max_steps=1)
    other = TrainingData.load("cifar10", data.source.rsplit("/cifar10", 1)[0], valid=32,
                              limit=80)
    with pytest.raises(CheckpointError, match="images"):
        train_arch(ARCH, data=other, recipe=r, checkpoint=ck, max_steps=1)
    state = load_checkpoint(ck)
    state["dataset"] = "cifar100"
    torch.save(state, ck)
    with pytest.raises(CheckpointError, match="dataset"):
        train_arch(ARCH, data=data, recipe=r, checkpoint=ck, max_steps=1)
    ck.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        train_arch(ARCH, data=data, recipe=r, checkpoint=ck)


def test_train_evaluator_charges_measured_seconds_and_reuses_checkpoints(data, tmp_path):
    ev = TrainEvaluator(1, dataset="cifar10", data=data, checkpoint_dir=tmp_path,
                        batch_size=32, max_steps=2)
    assert ev.name == "train@1"
    (e,) = ev.evaluate([ARCH])
    assert e.cost > 0 and 0 <= e.value <= 100 and e.meta["seconds_per_epoch"] > 0
    (again,) = TrainEvaluator(1, dataset="cifar10", data=data, checkpoint_dir=tmp_path,
                              batch_size=32, max_steps=2).evaluate([ARCH])
    assert (again.value, again.cost) == (e.value, e.cost)
    with pytest.raises(UserError, match="not cifar100"):
        TrainEvaluator(1, dataset="cifar100", data=data)


def test_a_time_limit_kills_training(data, tmp_path):
    ev = TrainEvaluator(50, dataset="cifar10", data=data, batch_size=32, checkpoint_dir=tmp_path)
    ev.time_limit = 0.05
    out = ev.evaluate([ARCH, ARCH.replace("skip_connect", "none")])
    assert len(out) == 1 and out[0].meta == {"killed": 1.0} and out[0].cost < 5


def test_checkpoint_files_are_per_training_not_per_class(data, tmp_path):
    ev = TrainEvaluator(1, dataset="cifar10", data=data, checkpoint_dir=tmp_path)
    iso = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    twin = "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"  # dead 0->1
    from zcnas.spaces import nats_tss

    assert nats_tss.canonical_key(iso) == nats_tss.canonical_key(twin)
    assert ev._path(iso) != ev._path(twin)
