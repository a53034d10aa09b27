"""Datasets in their official formats, fixed seeded batches and synthetic inputs.

- :data:`DATASETS` / :func:`get_dataset`: specs of 'cifar10', 'cifar100', 'ImageNet16-120'
  (classes, resolution, NATS-Bench normalisation constants, augmentation settings).
- :func:`load_arrays`: one split as uint8 arrays, found under the data roots (argument, then
  ``$ZCNAS_DATA``, then ``$TORCH_HOME``); :func:`locate` says where.
- :func:`normalize`, :func:`synthetic_batch`, :func:`fixed_batches`: float32 NCHW tensors.
- :func:`zcnas.data.download.download`: explicit download of the official CIFAR archives (never
  implicit). It is not re-exported here, so that ``zcnas.data.download`` stays the module.

Errors a user can cause are :class:`zcnas.errors.UserError` subclasses with one-line messages.
"""

from zcnas.data.batches import fixed_batches, normalize, synthetic_batch
from zcnas.data.loaders import ImageArrays, clear_cache, load_arrays, locate
from zcnas.datasets import DATASETS, DatasetSpec, get_dataset

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "ImageArrays",
    "clear_cache",
    "fixed_batches",
    "get_dataset",
    "load_arrays",
    "locate",
    "normalize",
    "synthetic_batch",
]
