"""The dataset registry: names, shapes, normalisation and augmentation of every dataset zcnas
knows (pure Python, no torch; the one place a dataset is described).

The constants are NATS-Bench's own (xautodl ``get_datasets``), written as ``pixel / 255``
exactly as there, so that networks see the same inputs as in the benchmark:

- cifar10:  mean (125.3, 123.0, 113.9) / 255, std (63.0, 62.1, 66.7) / 255
- cifar100: mean (129.3, 124.1, 112.4) / 255, std (68.2, 65.4, 70.4) / 255
- ImageNet16-120: mean (122.68, 116.66, 104.01) / 255, std (63.22, 61.26, 65.09) / 255

``crop_padding`` and ``hflip`` describe NATS-Bench's training augmentation (random crop after
zero padding in pixel space, random horizontal flip; :mod:`zcnas.data.training` applies it).

Besides the image datasets, a benchmark may name *training runs* on another dataset's images:
``cifar10-valid`` is NATS-Bench's CIFAR-10 trained on 25k images and validated on the other
25k. :func:`canonical_dataset` knows those names (lookups answer them); :func:`get_dataset`
gives the spec of the images they use.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from zcnas.errors import UnknownNameError


@dataclass(frozen=True)
class DatasetSpec:
    """What a model and a batch need to know about a dataset."""

    name: str
    num_classes: int
    resolution: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop_padding: int
    hflip: bool = True

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The shape of one normalised image, channels first."""
        return (3, self.resolution, self.resolution)


def _over_255(values: tuple[float, float, float]) -> tuple[float, float, float]:
    return (values[0] / 255, values[1] / 255, values[2] / 255)


DATASETS: Mapping[str, DatasetSpec] = MappingProxyType({
    "cifar10": DatasetSpec("cifar10", 10, 32, _over_255((125.3, 123.0, 113.9)),
                           _over_255((63.0, 62.1, 66.7)), crop_padding=4),
    "cifar100": DatasetSpec("cifar100", 100, 32, _over_255((129.3, 124.1, 112.4)),
                            _over_255((68.2, 65.4, 70.4)), crop_padding=4),
    "ImageNet16-120": DatasetSpec("ImageNet16-120", 120, 16, _over_255((122.68, 116.66, 104.01)),
                                  _over_255((63.22, 61.26, 65.09)), crop_padding=2),
})
#: Benchmark training runs on another dataset's images: run name -> image dataset.
RUNS: Mapping[str, str] = MappingProxyType({"cifar10-valid": "cifar10"})
_ALIASES = {name.lower(): name for name in (*DATASETS, *RUNS)} | {
    "imagenet16": "ImageNet16-120",
    "imagenet": "ImageNet16-120",
    "in16": "ImageNet16-120",
}


def _unknown(name: object) -> UnknownNameError:
    known = [*DATASETS, *RUNS]
    hint = ""
    if isinstance(name, str):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    return UnknownNameError(f"unknown dataset {name!r}{hint}; valid datasets: "
                            f"{', '.join(known)}")


def canonical_dataset(name: str) -> str:
    """The benchmark's spelling of a dataset or training-run name (case-insensitive, a few
    aliases); one-line :class:`UnknownNameError` otherwise."""
    try:
        return _ALIASES[str(name).lower()]
    except KeyError:
        raise _unknown(name) from None


def get_dataset(dataset: str | DatasetSpec) -> DatasetSpec:
    """The spec of a dataset by name (a spec is returned unchanged); a training run's name
    gives the spec of the images it trains on."""
    if isinstance(dataset, DatasetSpec):
        return dataset
    name = canonical_dataset(dataset)
    return DATASETS[RUNS.get(name, name)]
