"""Images for training: a fixed train / held-out split, NATS-Bench augmentation, batches.

- :func:`holdout_split`: a seeded split of a training set into train and held-out indices (the
  held-out images score sub-networks and trained networks; the test split is never used to
  select).
- :func:`augment`: NATS-Bench's training augmentation on uint8 images, vectorised: zero padding
  in pixel space and a random crop back to the original size, then a random horizontal flip.
- :class:`TrainingData`: one dataset's train and held-out arrays with seeded epochs of
  augmented batches and fixed evaluation batches.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from zcnas.data.batches import normalize
from zcnas.data.loaders import load_arrays
from zcnas.datasets import DatasetSpec, get_dataset
from zcnas.errors import UserError


def holdout_split(n: int, n_valid: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, held-out) indices of ``range(n)``, ``n_valid`` held out, seeded."""
    if not 0 < n_valid < n:
        raise UserError(f"cannot hold out {n_valid} of {n} images: need 0 < held-out < {n}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


def augment(x: np.ndarray, rng: np.random.Generator, padding: int, flip: bool = True
            ) -> np.ndarray:
    """Random crop after zero padding by ``padding`` pixels, then a random horizontal flip
    with probability 1/2, per image (uint8 NHWC in, uint8 NHWC out)."""
    n, h, w, _ = x.shape
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    oy = rng.integers(0, 2 * padding + 1, size=n)
    ox = rng.integers(0, 2 * padding + 1, size=n)
    rows = oy[:, None] + np.arange(h)
    cols = ox[:, None] + np.arange(w)
    if flip:
        flipped = rng.random(n) < 0.5
        cols = np.where(flipped[:, None], cols[:, ::-1], cols)
    return x[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


@dataclass(frozen=True, eq=False)
class TrainingData:
    """Train and held-out images of one dataset (uint8 arrays) and how to batch them."""

    spec: DatasetSpec
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    source: str
    limit: int | None = None

    @classmethod
    def load(cls, dataset: str, root: str | os.PathLike | None = None, *,
             valid: int | float = 0.1, limit: int | None = None, split_seed: int = 0
             ) -> TrainingData:
        """The training split of ``dataset`` with ``valid`` images (a count, or a fraction)
        held out by a seeded split; ``limit`` keeps only the first ``limit`` training images
        (before the split; for quick runs and tests)."""
        spec = get_dataset(dataset)
        arr = load_arrays(spec, "train", root)
        x, y = arr.x, arr.y
        if limit is not None:
            if limit < 2:
                raise UserError(f"--limit must be at least 2 images, got {limit}")
            x, y = x[:limit], y[:limit]
        n_valid = int(round(valid * len(y))) if isinstance(valid, float) else int(valid)
        tr, va = holdout_split(len(y), n_valid, split_seed)
        return cls(spec, x[tr], y[tr], x[va], y[va], arr.source, limit)

    @property
    def fingerprint(self) -> str:
        """Identifies the images (dataset, sizes, content digest): a checkpoint made on other
        images is refused."""
        h = hashlib.sha1()
        for a in (self.y_train, self.y_valid, self.x_train[:64], self.x_valid[:64]):
            h.update(np.ascontiguousarray(a).tobytes())
        return f"{self.spec.name}:{len(self.y_train)}+{len(self.y_valid)}:{h.hexdigest()[:12]}"

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, -(-len(self.y_train) // batch_size))

    def epoch(self, rng: np.random.Generator, batch_size: int, *, device: str = "cpu",
              augmented: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled pass over the training images, augmented, as normalised batches."""
        order = rng.permutation(len(self.y_train))
        for i in range(0, len(order), batch_size):
            idx = np.sort(order[i:i + batch_size])
            x = self.x_train[idx]
            if augmented:
                x = augment(x, rng, self.spec.crop_padding, self.spec.hflip)
            yield (normalize(x, self.spec).to(device),
                   torch.from_numpy(self.y_train[idx].astype(np.int64)).to(device))

    def fixed_train_batches(self, n_batches: int, batch_size: int, *, seed: int = 0,
                            device: str = "cpu", labels: bool = False) -> list[Any]:
        """``n_batches`` unaugmented training batches, the same on every call (BN
        recalibration); ``labels``: (images, labels) pairs."""
        order = np.random.default_rng(seed).permutation(len(self.y_train))
        out: list[Any] = []
        for b in range(n_batches):
            idx = np.sort(order[(np.arange(batch_size) + b * batch_size) % len(order)])
            x = normalize(self.x_train[idx], self.spec).to(device)
            out.append((x, torch.from_numpy(self.y_train[idx].astype(np.int64)).to(device))
                       if labels else x)
        return out

    def valid_batches(self, batch_size: int = 256, *, limit: int | None = None,
                      device: str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The held-out images in order (the first ``limit`` of them), as batches."""
        n = len(self.y_valid) if limit is None else min(limit, len(self.y_valid))
        for i in range(0, n, batch_size):
            j = min(n, i + batch_size)
            yield (normalize(self.x_valid[i:j], self.spec).to(device),
                   torch.from_numpy(self.y_valid[i:j].astype(np.int64)).to(device))
