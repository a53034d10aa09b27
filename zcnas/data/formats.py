"""Readers for the official on-disk formats (pure numpy, no torch).

- CIFAR-10 / CIFAR-100 python batches (``cifar-10-batches-py``: ``data_batch_1..5``,
  ``test_batch``; ``cifar-100-python``: ``train``, ``test``): protocol-2 pickles of dicts with
  byte-string keys. ``data`` is (N, 3072) uint8, one image per row, channel-major (1024 red, then
  1024 green, then 1024 blue values, each plane row-major); labels are ``labels`` (CIFAR-10) or
  ``fine_labels`` (CIFAR-100), 0-based.
- Downsampled ImageNet 16x16, NATS-Bench's ``ImageNet16`` folder (``train_data_batch_1..10``,
  ``val_data``): pickles with ``data`` (N, 768) uint8 in the same channel-major layout and
  ``labels`` in 1..1000 (1-based). ImageNet16-120 keeps the images labelled 1..120 and shifts the
  labels to 0..119, as xautodl's ``ImageNet16(root, train, transform, use_num_of_class_only=120)``.
- The ``.npz`` subset archive: ``x_train``/``x_test`` (N, 32, 32, 3) uint8 and
  ``y_train``/``y_test``.

Pickles are read with a restricted unpickler that rebuilds only numpy arrays, numpy scalars and
plain containers, so a data file cannot run code. Keys may be bytes (``encoding='bytes'``, as the
official CIFAR files give) or str. Every reader returns ``(x, y)``: images (N, H, W, 3) uint8 and
labels (N,) int64. A missing file raises DataNotFoundError; a file whose content is not what its
format says raises CorruptDataError naming the file.
"""

from __future__ import annotations

import codecs
import pickle
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zcnas.errors import CorruptDataError, DataNotFoundError, UnknownNameError, one_line

SPLITS = ("train", "test")

CIFAR10_FILES: dict[str, tuple[str, ...]] = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
CIFAR100_FILES: dict[str, tuple[str, ...]] = {"train": ("train",), "test": ("test",)}
IMAGENET16_FILES: dict[str, tuple[str, ...]] = {
    "train": tuple(f"train_data_batch_{i}" for i in range(1, 11)),
    "test": ("val_data",),
}
IMAGENET16_LABELS = 1000  # labels in the files run 1..1000

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_SCALAR = np.float64(0).__reduce__()[0]
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 writes bytes in protocol 2
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and plain containers, nothing else."""

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def load_pickle(path: Path) -> dict[str, object]:
    """Read one pickled batch into a dict with str keys."""
    if not path.is_file():
        raise DataNotFoundError(
            f"{path} not found: the folder {path.parent} is incomplete; "
            "re-download or re-extract it"
        )
    try:
        with path.open("rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except MemoryError:
        raise
    except Exception as e:  # a bad pickle can fail in many ways; all mean the same to the user
        raise CorruptDataError(
            f"{path} is not a readable batch pickle ({one_line(e)}); re-download it"
        ) from e
    if not isinstance(obj, dict):
        raise CorruptDataError(
            f"{path} holds a {type(obj).__name__}, not a dict of arrays; re-download it"
        )
    out: dict[str, object] = {}
    for key, value in obj.items():
        if isinstance(key, bytes):
            key = key.decode("latin1")
        if not isinstance(key, str):
            raise CorruptDataError(f"{path} has a non-string key {key!r}; re-download it")
        out[key] = value
    return out


def rows_to_images(data: np.ndarray, resolution: int) -> np.ndarray:
    """(N, 3*R*R) channel-major rows -> (N, R, R, 3) images, C-contiguous."""
    images = data.reshape(-1, 3, resolution, resolution).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images)


def images_to_rows(images: np.ndarray) -> np.ndarray:
    """(N, R, R, 3) images -> (N, 3*R*R) channel-major rows (the official files' layout)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)


def _batch_arrays(
    path: Path, entry: dict[str, object], label_key: str, resolution: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``data`` and ``label_key`` of one batch; return (rows, labels)."""
    missing = [k for k in ("data", label_key) if k not in entry]
    if missing:
        raise CorruptDataError(
            f"{path} lacks the key(s) {', '.join(missing)} (has {', '.join(sorted(entry))}); "
            "is it the right file?"
        )
    data = entry["data"]
    width = 3 * resolution * resolution
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == width
    ):
        got = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise CorruptDataError(f"{path}: 'data' should be (N, {width}) uint8, got {got}")
    try:
        labels = np.asarray(entry[label_key])
    except Exception as e:
        raise CorruptDataError(f"{path}: '{label_key}' is not a list of integers") from e
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(data):
        raise CorruptDataError(
            f"{path}: '{label_key}' should be {len(data)} integers, got {labels.dtype} "
            f"of shape {labels.shape}"
        )
    return data, labels.astype(np.int64)


def _check_range(path: Path, labels: np.ndarray, low: int, high: int, what: str) -> None:
    if len(labels) and (labels.min() < low or labels.max() > high):
        raise CorruptDataError(
            f"{path}: {what} outside {low}..{high} (found {labels.min()}..{labels.max()})"
        )


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise UnknownNameError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")


def _read_cifar(
    folder: Path, files: Sequence[str], label_key: str, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for name in files:
        path = folder / name
        rows, labels = _batch_arrays(path, load_pickle(path), label_key, 32)
        _check_range(path, labels, 0, num_classes - 1, f"'{label_key}'")
        xs.append(rows_to_images(rows, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def read_cifar10(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a split of the official ``cifar-10-batches-py`` folder."""
    check_split(split)
    return _read_cifar(folder, CIFAR10_FILES[split], "labels", 10)


def read_cifar100(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a split of the official ``cifar-100-python`` folder (fine labels)."""
    check_split(split)
    return _read_cifar(folder, CIFAR100_FILES[split], "fine_labels", 100)


def read_imagenet16(
    folder: Path, split: str, num_classes: int = 120
) -> tuple[np.ndarray, np.ndarray]:
    """Read a split of the ``ImageNet16`` folder, keeping labels 1..num_classes as 0..num_classes-1.

    ``split='test'`` is the whole ``val_data`` file (6,000 images for 120 classes); NATS-Bench's
    halving of it into x-valid and x-test is not applied here.
    """
    check_split(split)
    xs, ys = [], []
    for name in IMAGENET16_FILES[split]:
        path = folder / name
        rows, labels = _batch_arrays(path, load_pickle(path), "labels", 16)
        _check_range(path, labels, 1, IMAGENET16_LABELS, "'labels' (1-based)")
        keep = labels <= num_classes  # filter per file: the full train split is ~1 GB
        xs.append(rows_to_images(rows[keep], 16))
        ys.append(labels[keep] - 1)
    return np.concatenate(xs), np.concatenate(ys)


def read_npz_subset(path: Path, split: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a split of a ``.npz`` subset archive (``x_{split}``, ``y_{split}``)."""
    check_split(split)
    if not path.is_file():
        raise DataNotFoundError(f"{path} not found")
    x_key, y_key = f"x_{split}", f"y_{split}"
    try:
        # our own handle: np.load leaks the one it opens when the file is not a zip
        with path.open("rb") as f:
            archive = np.load(f, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise CorruptDataError(f"{path} holds a single array, not an .npz archive")
            with archive:
                missing = [k for k in (x_key, y_key) if k not in archive.files]
                if missing:
                    raise CorruptDataError(
                        f"{path} lacks the array(s) {', '.join(missing)}; "
                        "is it a zcnas subset archive?"
                    )
                x, y = archive[x_key], archive[y_key]
    except CorruptDataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise CorruptDataError(f"{path} is not a readable .npz archive ({one_line(e)})") from e
    if not (x.dtype == np.uint8 and x.ndim == 4 and x.shape[3] == 3 and x.shape[1] == x.shape[2]):
        raise CorruptDataError(
            f"{path}: {x_key} should be (N, H, W, 3) uint8, got {x.dtype} {x.shape}"
        )
    if y.ndim != 1 or y.dtype.kind not in "iu" or len(y) != len(x):
        raise CorruptDataError(
            f"{path}: {y_key} should be {len(x)} integer labels, got {y.dtype} {y.shape}"
        )
    y = y.astype(np.int64)
    _check_range(path, y, 0, num_classes - 1, y_key)
    return x, y
