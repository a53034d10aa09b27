"""NATS-Bench lookup: the official archive (via ``nats_bench``) and the compact CSV table.

One interface, :class:`Benchmark`, two backends, :class:`NatsArchive` and :class:`CompactTable`;
:func:`open_benchmark` picks the best data available. No torch here (searchers use this); the
``nats_bench`` package is imported only when an archive record is first read.

    bench = open_benchmark("nats-tss")              # root arg, then $ZCNAS_DATA, $TORCH_HOME
    bench.accuracy(11, "cifar10")                   # 200-epoch test accuracy, mean over seeds
    bench.accuracy(11, "cifar10", split="valid")    # cifar10-valid x-valid (archive only)
    index, arch, value = bench.optimum("cifar100")

See :mod:`zcnas.lookup.base` for the split / schedule (``hp``) / seed conventions.
"""

from zcnas.lookup.archive import ARCHIVE_DIRS, NatsArchive, load_meta_archs, record_indices
from zcnas.lookup.base import (
    FULL_EPOCHS,
    SCHEDULES,
    SPLITS,
    Accuracy,
    Benchmark,
    CostInfo,
    Optimum,
    canonical_split,
)
from zcnas.lookup.locate import KINDS, Located, load_order, locate, open_benchmark
from zcnas.lookup.table import TRAIN_TIME_FIT, TRAIN_TIME_REL_TOLERANCE, CompactTable

__all__ = [
    "ARCHIVE_DIRS",
    "FULL_EPOCHS",
    "KINDS",
    "SCHEDULES",
    "SPLITS",
    "TRAIN_TIME_FIT",
    "TRAIN_TIME_REL_TOLERANCE",
    "Accuracy",
    "Benchmark",
    "CompactTable",
    "CostInfo",
    "Located",
    "NatsArchive",
    "Optimum",
    "canonical_split",
    "load_meta_archs",
    "load_order",
    "locate",
    "open_benchmark",
    "record_indices",
]
