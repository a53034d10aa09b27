"""Dataset specs: classes, resolution, normalisation constants, training-augmentation settings.

The constants are NATS-Bench's own (xautodl ``get_datasets``), written as ``pixel / 255`` exactly
as there, so that networks see the same inputs as in the benchmark:

- cifar10:  mean (125.3, 123.0, 113.9) / 255, std (63.0, 62.1, 66.7) / 255
- cifar100: mean (129.3, 124.1, 112.4) / 255, std (68.2, 65.4, 70.4) / 255
- ImageNet16-120: mean (122.68, 116.66, 104.01) / 255, std (63.22, 61.26, 65.09) / 255

``crop_padding`` and ``hflip`` describe NATS-Bench's training augmentation (random crop after
zero padding in pixel space, random horizontal flip); nothing here applies it yet.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from zcnas.datasets import canonical_dataset, dataset_info
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


DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        "cifar10": DatasetSpec(
            name="cifar10",
            num_classes=dataset_info("cifar10").num_classes,
            resolution=dataset_info("cifar10").resolution,
            mean=_over_255((125.3, 123.0, 113.9)),
            std=_over_255((63.0, 62.1, 66.7)),
            crop_padding=4,
        ),
        "cifar100": DatasetSpec(
            name="cifar100",
            num_classes=dataset_info("cifar100").num_classes,
            resolution=dataset_info("cifar100").resolution,
            mean=_over_255((129.3, 124.1, 112.4)),
            std=_over_255((68.2, 65.4, 70.4)),
            crop_padding=4,
        ),
        "ImageNet16-120": DatasetSpec(
            name="ImageNet16-120",
            num_classes=dataset_info("ImageNet16-120").num_classes,
            resolution=dataset_info("ImageNet16-120").resolution,
            mean=_over_255((122.68, 116.66, 104.01)),
            std=_over_255((63.22, 61.26, 65.09)),
            crop_padding=2,
        ),
    }
)


def get_dataset(dataset: str | DatasetSpec) -> DatasetSpec:
    """The spec of a dataset by name (a spec is returned unchanged).

    Raises :class:`UnknownNameError` with one line listing the valid names.
    """
    if isinstance(dataset, DatasetSpec):
        return dataset
    spec = None
    if isinstance(dataset, str):
        try:  # accept the case-insensitive aliases of zcnas.datasets
            name = canonical_dataset(dataset)
        except UnknownNameError:
            name = dataset
        # cifar10-valid is a NATS-Bench training run on CIFAR-10 images
        spec = DATASETS.get("cifar10" if name == "cifar10-valid" else name)
    if spec is not None:
        return spec
    valid = ", ".join(DATASETS)
    hint = ""
    if isinstance(dataset, str):
        close = difflib.get_close_matches(dataset, list(DATASETS), n=1, cutoff=0.6)
        if not close:  # case-only typos such as 'imagenet16-120'
            lowered = {name.lower(): name for name in DATASETS}
            close = [lowered[dataset.lower()]] if dataset.lower() in lowered else []
        if close:
            hint = f" (did you mean {close[0]!r}?)"
    raise UnknownNameError(f"unknown dataset {dataset!r}{hint}; valid names: {valid}")
