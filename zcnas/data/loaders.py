"""Find a dataset under the data roots and load one split as uint8 arrays.

Data roots, in order: the ``root`` argument, else ``$ZCNAS_DATA`` then ``$TORCH_HOME`` (see
:mod:`zcnas.paths`). Relative to each root these places are tried, in this order:

- cifar10: ``cifar-10-batches-py``, ``cifar10/cifar-10-batches-py``,
  ``cifar.python/cifar-10-batches-py`` (the official batches), then ``cifar10/cifar10-subset.npz``,
  ``cifar10-subset.npz`` (the 5,506-image subset)
- cifar100: ``cifar-100-python``, ``cifar100/cifar-100-python``, ``cifar.python/cifar-100-python``
- ImageNet16-120: ``ImageNet16``, ``ImageNet16-120/ImageNet16``, ``cifar.python/ImageNet16``

(``cifar.python/`` is where NATS-Bench's own scripts keep these folders under ``$TORCH_HOME``.)
:attr:`ImageArrays.source` records the folder or file actually read. Nothing is ever downloaded
here; see :func:`zcnas.data.download.download`.

Loaded splits are cached per (dataset, split, resolved path, file sizes and mtimes) in a small
LRU cache so that repeated :func:`fixed_batches` calls do not re-read the files; the cached arrays
are read-only. :func:`clear_cache` empties it.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from zcnas.data import formats
from zcnas.datasets import DatasetSpec, get_dataset
from zcnas.errors import CorruptDataError, DataNotFoundError, UnknownNameError
from zcnas.paths import find_data

log = logging.getLogger(__name__)

# Per dataset: candidate paths relative to a data root, in order of preference. Roots keep their
# precedence: the subset in $ZCNAS_DATA wins over official batches under $TORCH_HOME, so the root
# a user points at is the one read.
CANDIDATES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "cifar10": (
            "cifar-10-batches-py",
            "cifar10/cifar-10-batches-py",
            "cifar.python/cifar-10-batches-py",
            "cifar10/cifar10-subset.npz",
            "cifar10-subset.npz",
        ),
        "cifar100": (
            "cifar-100-python",
            "cifar100/cifar-100-python",
            "cifar.python/cifar-100-python",
        ),
        "ImageNet16-120": ("ImageNet16", "ImageNet16-120/ImageNet16", "cifar.python/ImageNet16"),
    }
)

_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "ImageNet16-120": "ImageNet16-120"}
_DOWNLOADABLE = ("cifar10", "cifar100")


@dataclass(frozen=True, eq=False)
class ImageArrays:
    """One split of a dataset: images (N, H, W, 3) uint8 and labels (N,) int64, read-only.

    ``source`` is the folder or file the arrays were read from.
    """

    x: np.ndarray
    y: np.ndarray
    source: str
    dataset: str
    split: str

    def __len__(self) -> int:
        return len(self.y)


def locate(dataset: str | DatasetSpec, root: str | os.PathLike | None = None) -> Path:
    """The folder (or subset archive) that :func:`load_arrays` would read for ``dataset``.

    Raises :class:`DataNotFoundError` with one line naming every place searched and the fix.
    """
    spec = get_dataset(dataset)
    if spec.name not in CANDIDATES:
        raise UnknownNameError(
            f"no loader for dataset {spec.name!r}; loaders exist for {', '.join(CANDIDATES)}"
        )
    try:
        return find_data(list(CANDIDATES[spec.name]), root, what=f"{_TITLES[spec.name]} data")
    except DataNotFoundError as e:
        if spec.name not in _DOWNLOADABLE:
            raise
        hint = f"; or fetch it with: zcnas data download {spec.name}"
        raise DataNotFoundError(f"{e}{hint}") from None


def _split_files(spec: DatasetSpec, path: Path, split: str) -> tuple[Path, ...]:
    if path.suffix == ".npz":
        return (path,)
    table = {
        "cifar10": formats.CIFAR10_FILES,
        "cifar100": formats.CIFAR100_FILES,
        "ImageNet16-120": formats.IMAGENET16_FILES,
    }[spec.name]
    return tuple(path / name for name in table[split])


def _stamp(files: tuple[Path, ...]) -> tuple[tuple[str, int, int], ...]:
    """What invalidates a cached split: each file's name, size and modification time."""
    out = []
    for f in files:
        try:
            st = f.stat()
            out.append((f.name, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((f.name, -1, -1))
    return tuple(out)


@functools.lru_cache(maxsize=4)
def _read_split(
    spec: DatasetSpec, split: str, path: Path, stamp: tuple[tuple[str, int, int], ...]
) -> tuple[np.ndarray, np.ndarray]:
    del stamp  # part of the cache key only
    if path.suffix == ".npz":
        x, y = formats.read_npz_subset(path, split, spec.num_classes)
        if x.shape[1] != spec.resolution:
            raise CorruptDataError(
                f"{path}: images are {x.shape[1]}x{x.shape[2]}, {spec.name} needs "
                f"{spec.resolution}x{spec.resolution}"
            )
    elif spec.name == "cifar10":
        x, y = formats.read_cifar10(path, split)
    elif spec.name == "cifar100":
        x, y = formats.read_cifar100(path, split)
    else:
        x, y = formats.read_imagenet16(path, split, spec.num_classes)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def load_arrays(
    dataset: str | DatasetSpec, split: str = "train", root: str | os.PathLike | None = None
) -> ImageArrays:
    """Load one split (``'train'`` or ``'test'``) of a dataset from the first place it is found.

    Raises :class:`DataNotFoundError` (nothing found, or an incomplete folder) or
    :class:`CorruptDataError` (a file that cannot be read or has the wrong content), each with
    one line naming the path.
    """
    spec = get_dataset(dataset)
    formats.check_split(split)
    path = locate(spec, root).resolve()
    files = _split_files(spec, path, split)
    x, y = _read_split(spec, split, path, _stamp(files))
    log.info("%s %s: %d images from %s", spec.name, split, len(y), path)
    return ImageArrays(x=x, y=y, source=str(path), dataset=spec.name, split=split)


def clear_cache() -> None:
    """Forget the splits loaded so far in this process."""
    _read_split.cache_clear()
