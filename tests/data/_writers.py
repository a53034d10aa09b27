"""Writers of tiny fixtures in the official on-disk formats.

They encode images independently of zcnas (one channel plane after another, each row-major), so
a layout bug in the readers cannot cancel out against the same bug here.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np


def official_rows(images: np.ndarray) -> np.ndarray:
    """(N, R, R, 3) images -> (N, 3*R*R) rows: all red values, then green, then blue."""
    rows = [
        np.concatenate([img[:, :, 0].ravel(), img[:, :, 1].ravel(), img[:, :, 2].ravel()])
        for img in images
    ]
    return np.stack(rows).astype(np.uint8) if rows else np.zeros((0, 3 * 32 * 32), np.uint8)


class _Py2Pickler(pickle._Pickler):
    """Writes protocol 2 the way Python 2's cPickle wrote the official CIFAR files: byte and text
    strings as (SHORT_)BINSTRING, numpy's reconstructor under ``numpy.core.multiarray``."""

    def save_bytes(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    def save_str(self, obj: str) -> None:
        self.save_bytes(obj.encode("latin1"))

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def write_pickle(path: Path, obj: object, style: str = "py2") -> None:
    """Write a protocol-2 pickle, as the official files are: ``style='py2'`` mimics Python 2's
    cPickle byte for byte in kind; ``style='py3'`` is what ``pickle.dump(obj, f, 2)`` writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if style == "py3":
        path.write_bytes(pickle.dumps(obj, protocol=2))
        return
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    data = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    path.write_bytes(data)


def _images(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, r, r, 3), dtype=np.uint8)


def write_cifar10(folder: Path, n: int = 6, seed: int = 0, style: str = "py2") -> dict[str, tuple]:
    """A cifar-10-batches-py folder with ``n`` images per file; returns the expected arrays."""
    rng = np.random.default_rng(seed)
    expected: dict[str, list] = {"train": [[], []], "test": [[], []]}
    files = [(f"data_batch_{i}", "train", f"training batch {i} of 5") for i in range(1, 6)]
    files.append(("test_batch", "test", "testing batch 1 of 1"))
    for name, split, label in files:
        x = _images(rng, n, 32)
        y = rng.integers(0, 10, size=n).tolist()
        write_pickle(
            folder / name,
            {
                b"batch_label": label.encode(),
                b"labels": y,
                b"data": official_rows(x),
                b"filenames": [f"img_{i}.png".encode() for i in range(n)],
            },
            style,
        )
        expected[split][0].append(x)
        expected[split][1].extend(y)
    write_pickle(
        folder / "batches.meta",
        {
            b"num_cases_per_batch": n,
            b"label_names": [c.encode() for c in "airplane automobile bird cat deer".split()]
            + [c.encode() for c in "dog frog horse ship truck".split()],
            b"num_vis": 3072,
        },
    )
    return {s: (np.concatenate(v[0]), np.array(v[1], dtype=np.int64)) for s, v in expected.items()}


def write_cifar100(folder: Path, n: int = 9, seed: int = 0) -> dict[str, tuple]:
    """A cifar-100-python folder (train, test, meta); returns the expected (x, fine labels)."""
    rng = np.random.default_rng(seed)
    expected = {}
    for split in ("train", "test"):
        x = _images(rng, n, 32)
        fine = rng.integers(0, 100, size=n)
        fine[:2] = (0, 99)
        write_pickle(
            folder / split,
            {
                b"filenames": [f"img_{i}.png".encode() for i in range(n)],
                b"batch_label": f"{split}ing batch 1 of 1".encode(),
                b"fine_labels": fine.tolist(),
                b"coarse_labels": (fine // 5).tolist(),
                b"data": official_rows(x),
            },
        )
        expected[split] = (x, fine.astype(np.int64))
    write_pickle(
        folder / "meta",
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
    )
    return expected


# Labels 1..1000 (1-based); those up to 120 are kept by ImageNet16-120.
IMAGENET16_LABELS = np.array([1, 2, 60, 119, 120, 121, 500, 1000])


def write_imagenet16(folder: Path, seed: int = 0, bytes_keys: bool = False) -> dict[str, tuple]:
    """An ImageNet16 folder (train_data_batch_1..10, val_data); returns the expected 120-class
    arrays (labels shifted to 0..119)."""
    rng = np.random.default_rng(seed)

    def key(k: str) -> str | bytes:
        return k.encode() if bytes_keys else k

    files = [(f"train_data_batch_{i}", "train") for i in range(1, 11)] + [("val_data", "test")]
    expected: dict[str, list] = {"train": [[], []], "test": [[], []]}
    for name, split in files:
        labels = rng.permutation(IMAGENET16_LABELS)
        x = _images(rng, len(labels), 16)
        entry = {key("data"): official_rows(x), key("labels"): labels.tolist()}
        if split == "train":
            entry[key("mean")] = rng.random(768)
        write_pickle(folder / name, entry)
        keep = labels <= 120
        expected[split][0].append(x[keep])
        expected[split][1].extend((labels[keep] - 1).tolist())
    return {s: (np.concatenate(v[0]), np.array(v[1], dtype=np.int64)) for s, v in expected.items()}


def write_subset_npz(path: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": _images(rng, n_train, 32),
        "y_train": rng.integers(0, 10, size=n_train).astype(np.uint8),
        "x_test": _images(rng, n_test, 32),
        "y_test": rng.integers(0, 10, size=n_test).astype(np.uint8),
        "classes": np.array([f"c{i}" for i in range(10)]),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def tar_gz_of(folder: Path, arcname: str) -> bytes:
    """A .tar.gz (in memory) holding ``folder`` under the name ``arcname``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return buf.getvalue()
