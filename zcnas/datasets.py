"""Names and shapes of the benchmark datasets (pure Python, no torch).

``cifar10-valid`` is NATS-Bench's name for CIFAR-10 trained on 25k images and validated on the
other 25k; its images and shape are those of ``cifar10``.
"""

from __future__ import annotations

from dataclasses import dataclass

from zcnas.errors import UnknownNameError


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    name: str
    num_classes: int
    resolution: int


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("cifar10", 10, 32),
        DatasetInfo("cifar10-valid", 10, 32),
        DatasetInfo("cifar100", 100, 32),
        DatasetInfo("ImageNet16-120", 120, 16),
    )
}
_ALIASES = {name.lower(): name for name in DATASETS} | {
    "imagenet16": "ImageNet16-120",
    "imagenet": "ImageNet16-120",
    "in16": "ImageNet16-120",
}


def canonical_dataset(name: str) -> str:
    """The benchmark's spelling of a dataset name (case-insensitive, a few aliases)."""
    try:
        return _ALIASES[str(name).lower()]
    except KeyError:
        raise UnknownNameError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}"
        ) from None


def dataset_info(name: str) -> DatasetInfo:
    return DATASETS[canonical_dataset(name)]
