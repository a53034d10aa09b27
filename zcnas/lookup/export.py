"""A compact lookup exported from the official NATS-Bench archive: one Parquet file, loaded in
well under a second, read through the same :class:`~zcnas.lookup.Benchmark` interface.

    zcnas data export --archive NATS-tss-v1_0-3ffb9-simple --out nats-tss/lookup.parquet

The official API keeps every record (a few hundred KB each, 15,625 or 32,768 of them) and
answers one query at a time; a search needs a few numbers per cell. The export holds, for
every architecture the archive has a record for:

- the accuracy (mean over the benchmark's seeds) after each schedule (12 and 200 epochs in the
  topology space; 12 and 90 in the size space) on every split the archive records
  (``valid``, ``test``, ``valtest``) of every dataset (CIFAR-10's validation split is NATS-Bench's
  ``cifar10-valid`` run, as in :mod:`zcnas.lookup.base`);
- the learning curves a multi-fidelity ladder reads: every epoch that the archive records on
  each (dataset, split, schedule) of the first record, e.g. the 200-epoch CIFAR-10 validation
  curve;
- per training run and schedule: parameters, FLOPs, training seconds per epoch and the seconds
  of one evaluation pass per split.

File (format 2): one row per exported architecture (``index``, ascending) and one float64
column per number, named ``run|split|hp|epoch|metric`` (``epoch`` 0 is the end of the schedule;
NaN where the record has no such number), with the space, the source and the format in the
Parquet metadata. Opening it reads the columns as they are stored, with no per-row work: the
full topology space (15,625 rows, 936 columns) opens in a fraction of a second. Exactly the
numbers the archive backend gives (a test compares every one). Format 1 (a tidy long table
``index, run, split, hp, epoch, metric, value``, written before) is still read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from zcnas.errors import CorruptDataError, DataNotFoundError, UserError
from zcnas.lookup.base import Accuracy, Benchmark, CostInfo, Optimum, canonical_split
from zcnas.spaces import get_space
from zcnas.spaces.base import ArchOrder

EXPORT_FORMAT = "zcnas-nats-lookup-2"
_LONG_FORMAT = "zcnas-nats-lookup-1"  # still read
_SEP = "|"
EXPORT_FILES = {"nats-tss": "nats-tss/lookup.parquet", "nats-sss": "nats-sss/lookup.parquet"}
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
SPLITS = ("valid", "test", "valtest")
_COST_METRICS = ("params_m", "flops_m", "train_s_per_epoch")


def _runs_and_sets():
    """(dataset, split) -> (NATS run, eval set), for every pair the archive can answer."""
    from zcnas.lookup.archive import _target

    out = {}
    for ds in DATASETS:
        for split in SPLITS:
            try:
                run, eval_set, _ = _target(ds, split)
            except UserError:
                continue
            out[(ds, split)] = (run, eval_set)
    return out


def _export_init(setup: tuple) -> tuple:
    """Worker state: the archive (re-opened lazily in each process) and the export plan."""
    return setup


def _export_record(state: tuple, index: int) -> list[tuple]:
    """Every row of one record: ``(index, run, split, hp, epoch, metric, value)``."""
    archive, pairs, schedules, curves = state
    rows: list[tuple] = []
    costs_done: set[tuple] = set()
    for (ds, split), (run, _eval) in pairs.items():
        for hp in schedules:
            try:
                acc = archive.accuracy(index, ds, epochs=hp, split=split)
            except UserError:
                continue  # not recorded (e.g. hp=1 of some runs)
            rows.append((index, run, split, hp, 0, "accuracy", float(acc.value)))
            for e in curves[(ds, split, hp)]:
                rows.append((index, run, split, hp, e, "accuracy", float(
                    archive.accuracy_at_epoch(index, ds, e, hp=hp, split=split).value)))
            if split in ("valid", "test"):
                c = archive.cost(index, ds, epochs=hp, split=split)
                if c.eval_seconds is not None:
                    rows.append((index, run, split, hp, 0, "eval_s", float(c.eval_seconds)))
                if (run, hp) not in costs_done:
                    costs_done.add((run, hp))
                    rows.extend((index, run, "", hp, 0, metric, float(value))
                                for metric, value in zip(
                                    _COST_METRICS,
                                    (c.params_m, c.flops_m, c.train_seconds_per_epoch),
                                    strict=True))
    return rows


def export_lookup(archive: Any, out: str | os.PathLike,
                  progress: Callable[[int], None] | None = None, *, workers: int = 1) -> Path:
    """Write the compact lookup of ``archive`` (a :class:`~zcnas.lookup.NatsArchive`) to
    ``out``; ``progress(n)`` after each record. The records are read on ``workers`` processes
    (each reads whole records through ``nats_bench``: about 0.3 s per record on one core); the
    file is the same for any number of workers. Returns the path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from zcnas._io import atomic_write
    from zcnas.runtime.executors import open_executor

    indices = sorted(archive.available_indices)
    if not indices:
        raise DataNotFoundError(f"{archive.path} holds no record to export")
    pairs = _runs_and_sets()
    schedules = archive.schedules
    # the curve points every record holds (NATS-Bench records the same ones for all)
    curves = {(ds, split, hp): [e for e in range(1, hp) if archive.has_curve_point(
                  ds, e, hp=hp, split=split)]
              for (ds, split) in pairs for hp in schedules}
    by_index: dict[int, list[tuple]] = {}
    kind = "process" if workers > 1 and len(indices) > 1 else "inprocess"
    with open_executor(kind, workers) as ex:
        for n, (k, rows) in enumerate(ex.map_unordered(
                _export_record, indices, init=_export_init,
                setup=(archive, pairs, schedules, curves)), 1):
            by_index[indices[k]] = rows
            if progress is not None:
                progress(n)
    columns: dict[tuple, np.ndarray] = {}
    for row_no, i in enumerate(indices):
        for _, run, split, hp, epoch, metric, value in by_index[i]:
            key = (run, split, hp, epoch, metric)
            if key not in columns:
                columns[key] = np.full(len(indices), np.nan)
            columns[key][row_no] = value
    table = pa.table({"index": pa.array(indices, pa.int32()),
                      **{_SEP.join(map(str, k)): pa.array(columns[k], pa.float64())
                         for k in sorted(columns)}})
    meta = {"format": EXPORT_FORMAT, "space": archive.space, "source": str(archive.path),
            "records": len(indices), "size": len(archive),
            "complete": bool(archive.is_complete)}
    computed = get_space(archive.space).index_order()
    if computed is None or len(archive.order) != len(computed):
        meta["archs"] = archive.order.archs  # an order of its own: keep it
    table = table.replace_schema_metadata({"zcnas": json.dumps(meta)})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import io

    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return atomic_write(out, buf.getvalue())


class _Columns(Mapping):
    """Format 2: ``(run, split, hp, epoch, metric) -> values by index`` (NaN where absent), each
    column read from the file the first time it is asked for (a few ms), then kept."""

    def __init__(self, parquet, size: int) -> None:
        self._file, self._size = parquet, size
        self._names = {}
        for name in parquet.schema_arrow.names[1:]:
            run, split, hp, epoch, metric = name.split(_SEP)
            self._names[(run, split, int(hp), int(epoch), metric)] = name
        self.index = parquet.read(columns=["index"]).column(0).to_numpy()
        self._full = (len(self.index) == size
                      and bool(np.array_equal(self.index, np.arange(size))))
        self._cache: dict[tuple, np.ndarray] = {}

    def __getitem__(self, key: tuple) -> np.ndarray:
        if key not in self._cache:
            name = self._names[key]
            try:
                stored = self._file.read(columns=[name]).column(0).to_numpy()
            except Exception as err:  # noqa: BLE001 - a damaged page shows only when read
                raise CorruptDataError(f"cannot read column {name} of exported lookup: "
                                       f"{' '.join(str(err).split())[:160]}") from None
            if self._full:
                self._cache[key] = stored
            else:
                self._cache[key] = np.full(self._size, np.nan)
                self._cache[key][self.index] = stored
        return self._cache[key]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _codes(table, name: str) -> tuple[np.ndarray, list]:
    """Dictionary codes (int64) and the dictionary of a string column."""
    import pyarrow as pa

    col = table.column(name).combine_chunks()
    if not pa.types.is_dictionary(col.type):
        col = col.dictionary_encode()
    return col.indices.to_numpy(zero_copy_only=False).astype(np.int64), col.dictionary.to_pylist()


def _dense_values(table, size: int) -> dict[tuple, np.ndarray]:
    """Format 1: ``(run, split, hp, epoch, metric) -> values by index`` (NaN where absent), in
    O(rows):
    the key columns are combined into one integer, the keys present are numbered in key order,
    and every value is scattered into one (keys x size) matrix whose rows are the arrays."""
    table = table.unify_dictionaries()
    run, runs = _codes(table, "run")
    split, splits = _codes(table, "split")
    metric, metrics = _codes(table, "metric")
    hp = table.column("hp").to_numpy().astype(np.int64)
    epoch = table.column("epoch").to_numpy().astype(np.int64)
    if len(hp) == 0:
        return {}
    dims = (len(runs), len(splits), int(hp.max()) + 1, int(epoch.max()) + 1, len(metrics))
    key = np.ravel_multi_index((run, split, hp, epoch, metric), dims)
    present = np.zeros(int(np.prod(dims)), dtype=bool)
    present[key] = True
    number = np.cumsum(present) - 1
    values = np.full((int(present.sum()), size), np.nan)
    values[number[key], table.column("index").to_numpy()] = table.column("value").to_numpy()
    out = {}
    for k, flat in enumerate(np.flatnonzero(present)):
        r, sp, h, e, m = np.unravel_index(flat, dims)
        out[(runs[r], splits[sp], int(h), int(e), metrics[m])] = values[k]
    return out


class ExportedLookup(Benchmark):
    """The lookup of a file written by :func:`export_lookup` (see the module docstring).

    Every number is a mean over the benchmark's seeds (``seed`` must be None); splits,
    schedules and learning-curve points are those the archive had.
    """

    kind = "export"

    def __init__(self, path: str | os.PathLike) -> None:
        import pyarrow.parquet as pq

        p = Path(path).expanduser()
        if not p.is_file():
            raise DataNotFoundError(f"exported NATS-Bench lookup not found: {p}")
        try:
            parquet = pq.ParquetFile(p)
            meta = json.loads((parquet.schema_arrow.metadata or {}).get(b"zcnas", b"{}"))
        except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
            raise CorruptDataError(f"cannot read exported lookup {p}: "
                                   f"{' '.join(str(err).split())[:160]}") from None
        if meta.get("format") not in (EXPORT_FORMAT, _LONG_FORMAT):
            raise CorruptDataError(f"{p} is not a zcnas lookup export ({EXPORT_FORMAT}); "
                                   "write one with `zcnas data export`")
        self.path = p
        self.space = get_space(meta["space"]).name
        self.complete = bool(meta.get("complete"))
        self._size = int(meta["size"])
        archs = meta.get("archs")
        self._order = (ArchOrder(archs, self.space) if archs is not None
                       else get_space(self.space).index_order())
        self.source = (f"{p} (zcnas export of the NATS-Bench {self.space} archive, "
                       f"{meta['records']:,} records)")
        try:
            if meta["format"] == _LONG_FORMAT:
                table = parquet.read()
                index = table.column("index").to_numpy()
                self._values: Mapping[tuple, np.ndarray] = _dense_values(table, self._size)
            else:
                self._values = _Columns(parquet, self._size)
                index = self._values.index
        except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
            raise CorruptDataError(f"cannot read exported lookup {p}: "
                                   f"{' '.join(str(err).split())[:160]}") from None
        self._has = np.zeros(self._size, dtype=bool)
        self._has[index] = True
        self.splits = tuple(s for s in SPLITS if any(k[1] == s for k in self._values))
        self._datasets = tuple(d for d in ("cifar10", "cifar10-valid", "cifar100",
                                           "ImageNet16-120")
                               if any(k[0] == d for k in self._values))

    @property
    def order(self) -> ArchOrder:
        return self._order

    @property
    def datasets(self) -> tuple[str, ...]:
        return self._datasets

    def __len__(self) -> int:
        return self._size

    def fingerprint_files(self) -> list:
        return [self.path]

    def _run(self, dataset: str, split: str) -> tuple[str, str, str]:
        from zcnas.lookup.archive import _target

        run, eval_set, key = _target(self._dataset(dataset), canonical_split(split))
        return run, eval_set, key

    def _array(self, run: str, split: str, hp: int, epoch: int, metric: str) -> np.ndarray:
        arr = self._values.get((run, split, hp, epoch, metric))
        if arr is None:
            at = "after the last epoch" if epoch == 0 else f"at epoch {epoch}"
            raise UserError(f"{self.source} has no {split} {metric} of {run} {at} of the "
                            f"{hp}-epoch schedule")
        return arr

    def _value(self, arr: np.ndarray, index: int) -> float:
        v = arr[index]
        if not np.isfinite(v):
            if not self._has[index]:
                raise UserError(f"architecture #{index} has no record in {self.source}")
            raise UserError(f"{self.source} has no such value for architecture #{index}")
        return float(v)

    def accuracy(self, arch_or_index, dataset: str, *, epochs: int | None = None,
                 split: str = "test", seed: int | None = None) -> Accuracy:
        if seed is not None:
            raise UserError("an exported lookup keeps seed means only; ask with seed=None or "
                            "open the archive for one seed")
        index = self._to_index(arch_or_index)
        split = canonical_split(split)
        run, eval_set, _ = self._run(dataset, split)
        hp = self._epochs(epochs)
        value = self._value(self._array(run, split, hp, 0, "accuracy"), index)
        return Accuracy(value, split, run, hp, self.source, (), eval_set=eval_set)

    def accuracies(self, indices, dataset: str, *, epochs: int | None = None,
                   split: str = "test"):
        split = canonical_split(split)
        run, _, _ = self._run(dataset, split)
        arr = self._array(run, split, self._epochs(epochs), 0, "accuracy")
        idx = np.asarray(list(indices), dtype=np.int64)
        out = arr[idx]
        if not np.isfinite(out).all():
            raise UserError(f"{self.source} has no {split} accuracy for some of the "
                            "architectures asked for")
        return out.copy()

    def accuracy_at_epoch(self, arch_or_index, dataset: str, epoch: int, *, hp: int,
                          split: str, seed: int | None = None) -> Accuracy:
        if seed is not None:
            raise UserError("an exported lookup keeps seed means only")
        index = self._to_index(arch_or_index)
        split = canonical_split(split)
        run, eval_set, _ = self._run(dataset, split)
        hp = self._epochs(hp)
        if not 1 <= int(epoch) <= hp:
            raise UserError(f"epoch must be an integer in 1..{hp} for hp={hp}, got {epoch!r}")
        e = 0 if int(epoch) == hp else int(epoch)
        value = self._value(self._array(run, split, hp, e, "accuracy"), index)
        return Accuracy(value, split, run, hp, self.source, (), eval_set=eval_set,
                        epoch=int(epoch))

    def has_curve_point(self, dataset: str, epoch: int, *, hp: int, split: str) -> bool:
        try:
            run, _, _ = self._run(dataset, split)
        except UserError:
            return False
        e = 0 if epoch == hp else epoch
        return (run, canonical_split(split), hp, e, "accuracy") in self._values

    def cost(self, arch_or_index, dataset: str, *, epochs: int | None = None,
             split: str = "test") -> CostInfo:
        index = self._to_index(arch_or_index)
        split = canonical_split(split)
        if split == "valtest":
            raise UserError("split='valtest' has no training run of its own; use 'test'")
        run, _, _ = self._run(dataset, split)
        hp = self._epochs(epochs)
        params, flops, train = (self._value(self._array(run, "", hp, 0, m), index)
                                for m in _COST_METRICS)
        ev = self._values.get((run, split, hp, 0, "eval_s"))
        eval_s = None if ev is None or not np.isfinite(ev[index]) else float(ev[index])
        return CostInfo(params, flops, train, eval_s, self.source, False, dataset=run,
                        epochs=hp)

    def optimum(self, dataset: str, *, epochs: int | None = None,
                split: str = "test") -> Optimum:
        split = canonical_split(split)
        run, _, _ = self._run(dataset, split)
        hp = self._epochs(epochs)
        if not self.complete:
            raise DataNotFoundError(f"{self.source} is not complete; the optimum needs every "
                                    "architecture")
        arr = self._array(run, split, hp, 0, "accuracy")
        best = float(np.nanmax(arr))
        ties = tuple(int(i) for i in np.flatnonzero(arr == best))
        return Optimum(ties[0], self.arch(ties[0]), best, ties, run, split, hp)
