"""Normalised tensors for scoring: fixed seeded batches from real data, and synthetic inputs.

- :func:`normalize`: uint8 images (N, H, W, 3) -> float32 (N, 3, H, W), ``(x / 255 - mean) / std``
  with the dataset's NATS-Bench constants.
- :func:`synthetic_batch`: N(0, 1) inputs at the dataset's resolution and uniform labels, drawn
  from a ``torch.Generator`` seeded with ``seed`` (never the global RNG).
- :func:`fixed_batches`: ``n_batches`` batches drawn without replacement from a split with
  ``numpy.random.default_rng(seed)``, no augmentation; the same arguments give bitwise-identical
  tensors on every call. With ``source='synthetic'`` the batches are successive draws of one
  seeded generator, so ``fixed_batches(d, 1, b, s, source='synthetic')[0]`` equals
  ``synthetic_batch(d, b, s)``.

Tensors are made on the CPU and then moved to ``device``, so they do not depend on it.
A training iterator with augmentation (``DatasetSpec.crop_padding``, ``hflip``) belongs beside
:func:`fixed_batches`, with its own seeded generator.
"""

from __future__ import annotations

import operator
import os

import numpy as np
import torch

from zcnas.data.loaders import load_arrays
from zcnas.datasets import DatasetSpec, get_dataset
from zcnas.errors import UnknownNameError, UserError

SOURCES = ("real", "synthetic")
Batch = tuple[torch.Tensor, torch.Tensor]


def _positive(name: str, value: int) -> int:
    try:
        value = operator.index(value)
    except TypeError:
        raise UserError(f"{name} must be a positive integer, got {value!r}") from None
    if isinstance(value, bool) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return value


def _seed(seed: int) -> int:
    try:
        value = operator.index(seed)
    except TypeError:
        raise UserError(f"seed must be an integer in [0, 2**64), got {seed!r}") from None
    if isinstance(seed, bool) or not 0 <= value < 2**64:
        raise UserError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    return value


def normalize(x: np.ndarray, dataset: str | DatasetSpec) -> torch.Tensor:
    """Images (N, H, W, 3) uint8 -> float32 tensor (N, 3, H, W), normalised per channel."""
    spec = get_dataset(dataset)
    x = np.asarray(x)
    r = spec.resolution
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (r, r, 3):
        raise ValueError(
            f"normalize expects uint8 images of shape (N, {r}, {r}, 3) for {spec.name}, "
            f"got {x.dtype} {x.shape}"
        )
    if not x.flags.writeable:  # torch.from_numpy warns on read-only arrays
        x = x.copy()
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    t = t.to(torch.float32, memory_format=torch.contiguous_format).div_(255)
    mean = torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1)
    return t.sub_(mean).div_(std)


def _synthetic(
    spec: DatasetSpec, n_batches: int, batch_size: int, seed: int, device: torch.device | str
) -> list[Batch]:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    out = []
    for _ in range(n_batches):
        x = torch.randn((batch_size, *spec.input_shape), generator=gen, dtype=torch.float32)
        y = torch.randint(0, spec.num_classes, (batch_size,), generator=gen, dtype=torch.int64)
        out.append((x.to(device), y.to(device)))
    return out


def synthetic_batch(
    dataset: str | DatasetSpec,
    batch_size: int,
    seed: int,
    *,
    device: torch.device | str = "cpu",
) -> Batch:
    """One batch of N(0, 1) inputs (B, 3, R, R) float32 and uniform labels (B,) int64."""
    spec = get_dataset(dataset)
    return _synthetic(spec, 1, _positive("batch_size", batch_size), _seed(seed), device)[0]


def fixed_batches(
    dataset: str | DatasetSpec,
    n_batches: int,
    batch_size: int,
    seed: int,
    *,
    split: str = "train",
    root: str | os.PathLike | None = None,
    source: str = "real",
    device: torch.device | str = "cpu",
) -> list[Batch]:
    """``n_batches`` normalised batches ``(x, y)``, identical on every call with these arguments.

    ``source='real'`` draws ``n_batches * batch_size`` distinct images of ``split`` (found under
    ``root``, see :func:`zcnas.data.load_arrays`); ``source='synthetic'`` ignores ``split`` and
    ``root``. Asking for more images than the split holds raises :class:`UserError`.
    """
    spec = get_dataset(dataset)
    n_batches = _positive("n_batches", n_batches)
    batch_size = _positive("batch_size", batch_size)
    seed = _seed(seed)
    if source == "synthetic":
        return _synthetic(spec, n_batches, batch_size, seed, device)
    if source != "real":
        raise UnknownNameError(f"unknown source {source!r}; valid sources: {', '.join(SOURCES)}")
    arrays = load_arrays(spec, split, root)
    needed = n_batches * batch_size
    if needed > len(arrays):
        raise UserError(
            f"{n_batches} batches of {batch_size} need {needed} distinct images but the {split} "
            f"split of {spec.name} ({arrays.source}) has {len(arrays)}; "
            "ask for fewer or smaller batches"
        )
    order = np.random.default_rng(seed).permutation(len(arrays))[:needed]
    out = []
    for i in range(n_batches):
        idx = order[i * batch_size : (i + 1) * batch_size]
        x = normalize(arrays.x[idx], spec)
        y = torch.from_numpy(arrays.y[idx].astype(np.int64))
        out.append((x.to(device), y.to(device)))
    return out
