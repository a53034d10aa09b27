"""The official NATS-Bench archive (fast-mode folder), read through ``nats_bench``.

A fast-mode archive is a folder ``NATS-tss-v1_0-3ffb9-simple`` (topology) or
``NATS-sss-v1_0-50262-simple`` (size) holding ``meta.pickle.pbz2`` (every arch string, in index
order) and one ``{index:06d}.pickle.pbz2`` record per architecture. The sample archives hold the
meta of every architecture but records for only a few (0, 11, 284); asking for any other raises a
one-line :class:`DataNotFoundError` instead of ``nats_bench``'s assertion.

What each record has (inspected on the sample archives; it decides what can be answered):

* tss ``hp='200'``: seeds 777/888/999. ``cifar10-valid`` has ``x-valid`` at every epoch and
  ``ori-test`` only at the last; ``cifar10`` has ``ori-test`` at every epoch; ``cifar100`` and
  ``ImageNet16-120`` have ``ori-test`` (= x-valid ∪ x-test) at every epoch but ``x-valid`` and
  ``x-test`` only at the last. ``nats_bench`` then hands back ``valtest`` where a validation
  accuracy was wanted (``simulate_train_eval``); we refuse instead.
* tss ``hp='12'``: every set at every epoch; ``cifar10-valid`` has seeds 111/777, the other
  datasets 111 only.
* sss ``hp='90'``, ``'12'``, ``'01'``: every set at every epoch (``'12'``: three seeds,
  ``'90'``/``'01'``: seed 777 only).

Archives are found automatically (``--data``, ``ZCNAS_DATA``, ``TORCH_HOME``), so their files
are not trusted: the meta file and every record are read here with a restricted unpickler
(:func:`load_archive_pickle`) that rebuilds only what the official files hold (builtin
containers and numbers, ``collections.OrderedDict``, numpy dtypes and scalars) and refuses
any other global, so a crafted file cannot run code. ``nats_bench`` gets the unpickled data
(its API is created from the meta list and each record is handed to it as a dict); it never
opens a file itself.
"""

from __future__ import annotations

import bz2
import collections
import functools
import numbers
import os
import pickle
import re
from pathlib import Path
from typing import Any

from zcnas.errors import CorruptDataError, DataNotFoundError, UserError, one_line
from zcnas.lookup.base import Accuracy, Benchmark, CostInfo, Optimum, canonical_split
from zcnas.spaces import ArchOrder, canonical_space, get_space

#: Folder names of the official fast-mode archives (the sample archives use the same names).
ARCHIVE_DIRS: dict[str, str] = {
    "nats-tss": "NATS-tss-v1_0-3ffb9-simple",
    "nats-sss": "NATS-sss-v1_0-50262-simple",
}
META_FILE = "meta.pickle.pbz2"
_RECORD_RE = re.compile(r"^(\d+)\.pickle\.pbz2$")
_NATS_SPACE = {"nats-tss": "tss", "nats-sss": "sss"}
_ARCHIVE_DATASETS = ("cifar10", "cifar10-valid", "cifar100", "ImageNet16-120")


@functools.cache
def _archive_globals() -> dict[tuple[str, str], Any]:
    """The only globals an archive pickle may name: what the official files use (inspected on
    the sample archives: records name ``collections.OrderedDict``, ``numpy.dtype`` and
    ``numpy.core.multiarray.scalar``; the meta file names none), with numpy 2's module name
    for the scalar so that a file re-pickled by a newer numpy reads too."""
    import numpy as np

    scalar = np.float64(0).__reduce__()[0]  # numpy's scalar reconstructor, whatever its module
    return {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "scalar"): scalar,
        ("numpy._core.multiarray", "scalar"): scalar,
    }


class _ArchiveUnpickler(pickle.Unpickler):
    """Rebuilds builtin containers and numbers and the globals of :func:`_archive_globals`;
    any other global (a function, a class) is refused before it is looked up."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _archive_globals()[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def load_archive_pickle(path: str | os.PathLike) -> Any:
    """Unpickle one NATS-Bench archive file (``bz2`` + pickle) without running code.

    Only builtin containers and numbers, ``OrderedDict``, numpy dtypes and numpy scalars are
    rebuilt. A file that is not a bz2 stream, is truncated, or names any other global raises a
    one-line :class:`CorruptDataError` naming the file.
    """
    p = Path(path)
    try:
        with bz2.open(p, "rb") as fh:
            return _ArchiveUnpickler(fh).load()
    except MemoryError:
        raise
    except Exception as e:  # bz2/pickle raise many types on a damaged or crafted file
        raise CorruptDataError(
            f"cannot read NATS-Bench archive file {p} ({one_line(e)}); "
            "re-download or re-extract the archive"
        ) from e


def load_meta_archs(path: str | os.PathLike) -> list[str]:
    """The ``meta_archs`` list (every arch string, in index order) of a NATS-Bench archive.

    ``path`` is the archive folder or its ``meta.pickle.pbz2``. Reads the file with
    :func:`load_archive_pickle` (no ``nats_bench``, no code run); any failure is a one-line
    :class:`CorruptDataError` naming the file.
    """
    p = Path(path).expanduser()
    meta = p / META_FILE if p.is_dir() else p
    if not meta.is_file():
        raise DataNotFoundError(f"NATS-Bench meta file not found: {meta}")
    obj = load_archive_pickle(meta)
    archs = obj.get("meta_archs") if isinstance(obj, dict) else None
    if (
        not isinstance(archs, list | tuple)
        or not archs
        or not all(isinstance(a, str) for a in archs)
    ):
        raise CorruptDataError(
            f"NATS-Bench meta file {meta} has no 'meta_archs' list of arch strings"
        )
    return list(archs)


def record_indices(path: str | os.PathLike) -> frozenset[int]:
    """Indices of the architectures whose record file the archive folder holds."""
    try:
        names = os.listdir(path)
    except OSError as e:
        raise DataNotFoundError(f"cannot list NATS-Bench archive folder {path}: {e}") from e
    return frozenset(int(m.group(1)) for n in names if (m := _RECORD_RE.match(n)))


def _sniff_space(first_arch: str, path: Path) -> str:
    """The space of an archive, from the form of its first arch string."""
    for name in ARCHIVE_DIRS:
        try:
            get_space(name).parse_arch(first_arch)
        except UserError:
            continue
        return name
    raise CorruptDataError(f"{path / META_FILE}: {first_arch[:80]!r} is not an arch of "
                           f"{' or '.join(ARCHIVE_DIRS)}")


def _target(dataset: str, split: str) -> tuple[str, str, str]:
    """(NATS training run, NATS eval set, ``get_more_info`` key prefix) for dataset/split."""
    if dataset in ("cifar10", "cifar10-valid"):
        if split == "valid":
            return "cifar10-valid", "x-valid", "valid"
        if split == "test":
            return dataset, "ori-test", "test"
        raise UserError(
            f"{dataset} has no 'valtest' set (that is CIFAR-100 / ImageNet16-120's ori-test); "
            "ask for split='test' or split='valid'"
        )
    eval_set = {"test": "x-test", "valid": "x-valid", "valtest": "ori-test"}[split]
    return dataset, eval_set, split


class NatsArchive(Benchmark):
    """The official NATS-Bench fast-mode archive (or its sample), via ``nats_bench``.

    ``space`` is inferred from the meta file when not given. ``max_records`` bounds how many
    unpickled records (about 0.3 MB each) the object keeps in memory; older ones are dropped and
    re-read on demand. Records are read lazily; opening the archive reads only the meta file.
    """

    kind = "archive"
    splits = ("test", "valid", "valtest")

    def __init__(
        self,
        path: str | os.PathLike,
        space: str | None = None,
        *,
        max_records: int = 256,
    ) -> None:
        p = Path(path).expanduser()
        if p.is_file():
            raise UserError(
                f"{p} is a file; pass the fast-mode archive folder (e.g. "
                f"{ARCHIVE_DIRS['nats-tss']}) that holds {META_FILE}"
            )
        if not p.is_dir():
            raise DataNotFoundError(f"NATS-Bench archive folder not found: {p}")
        if max_records < 1:
            raise ValueError("max_records must be at least 1")
        archs = load_meta_archs(p)
        found = _sniff_space(archs[0], p)
        if space is not None and canonical_space(space) != found:
            raise UserError(f"{p} holds a {found} archive, not {canonical_space(space)}")
        self.path = p
        self.space = found
        self.max_records = max_records
        self._meta_archs = archs
        self._records = record_indices(p)
        self._api_obj = None
        self._scans: dict[tuple[str, str, int], list[float]] = {}
        kind = (
            "full"
            if self.is_complete
            else f"sample: records for {len(self._records)} of {len(archs)} archs"
        )
        self.source = f"{p} (official NATS-Bench {_NATS_SPACE[found]} archive, fast mode, {kind})"
        computed = get_space(found).index_order()
        if computed is not None and len(archs) == len(computed):  # the benchmark's own list
            if archs != [computed.arch(i) for i in range(len(archs))]:
                raise CorruptDataError(
                    f"{p / META_FILE}: the {found} arch list is not the benchmark's index order"
                )
            self._order = computed
        else:  # a list of its own (a subset): its order
            self._order = ArchOrder(archs, found)

    # --- identity -------------------------------------------------------------------------------

    @property
    def is_complete(self) -> bool:
        """Whether every architecture of the meta list has its record file."""
        return self._records.issuperset(range(len(self._meta_archs)))

    @property
    def available_indices(self) -> frozenset[int]:
        """Indices whose records this archive holds."""
        return self._records

    @property
    def order(self) -> ArchOrder:
        """The archive's ``meta_archs``, or the space's computed order (size space), which the
        meta list is checked against."""
        return self._order

    @property
    def meta_archs(self) -> list[str]:
        """The archive's own arch list, as stored."""
        return list(self._meta_archs)

    @property
    def datasets(self) -> tuple[str, ...]:
        return _ARCHIVE_DATASETS

    def __len__(self) -> int:
        return len(self._meta_archs)

    def __getstate__(self) -> dict:
        # the nats_bench object and its loaded records are re-created on demand after unpickling
        # (process pools): only the paths and the meta list travel
        state = dict(self.__dict__)
        state["_api_obj"] = None
        return state

    # --- nats_bench access ----------------------------------------------------------------------

    def _api(self):
        """The ``nats_bench`` API over the meta list this object read itself.

        Created from a dict, it has no archive folder: it never opens a file (a record it does
        not hold is an error in ``nats_bench``, never a load); :meth:`_load_record` hands it
        each record.
        """
        if self._api_obj is None:
            import nats_bench

            empty = {"meta_archs": list(self._meta_archs), "arch2infos": {},
                     "evaluated_indexes": []}
            try:
                self._api_obj = nats_bench.create(
                    empty, _NATS_SPACE[self.space], fast_mode=True, verbose=False
                )
            except Exception as e:
                raise CorruptDataError(
                    f"nats_bench cannot open {self.path}: {one_line(e)}"
                ) from e
        return self._api_obj

    def _load_record(self, api, index: int) -> None:
        """Read one record with the restricted unpickler and give it to ``api`` as
        ``nats_bench``'s own ``reload`` would (which would unpickle it with plain pickle)."""
        from nats_bench.api_utils import ArchResults

        path = self._record_file(index)
        data = load_archive_pickle(path)
        # every hp entry must be a dict: ArchResults.create_from_state_dict would unpickle a
        # str as a file path with plain pickle
        if not isinstance(data, dict) or not data or not all(
            isinstance(hp, str) and isinstance(results, dict) for hp, results in data.items()
        ):
            raise CorruptDataError(
                f"NATS-Bench record {path} is not a dict of per-schedule result dicts; "
                "re-download or re-extract the archive"
            )
        try:
            by_hp = collections.OrderedDict(
                (hp, ArchResults.create_from_state_dict(results)) for hp, results in data.items()
            )
        except Exception as e:
            raise CorruptDataError(
                f"cannot read NATS-Bench record {path}: {one_line(e)}"
            ) from e
        api.arch2infos_dict[index] = by_hp
        api.evaluated_indexes.add(index)
        api._avaliable_hps.update(by_hp)  # (sic) nats_bench's attribute name

    def _record_file(self, index: int) -> Path:
        padded = self.path / f"{index:06d}.pickle.pbz2"
        return padded if padded.exists() else self.path / f"{index}.pickle.pbz2"

    def _record(self, index: int, hp: str):
        """The ``ArchResults`` of one architecture and schedule, loading it if needed."""
        if index not in self._records:
            raise DataNotFoundError(
                f"{self.path} has no record for architecture #{index} "
                f"({len(self._records)} of {len(self)} records present: a sample archive?); "
                "point ZCNAS_DATA or TORCH_HOME at the full archive, or use the compact table "
                "(kind='table') for test accuracies"
            )
        api = self._api()
        if index not in api.arch2infos_dict:
            self._load_record(api, index)
            self._evict(api, keep=index)
        by_hp = api.arch2infos_dict[index]
        if hp not in by_hp:
            raise UserError(
                f"architecture #{index} in {self.path} has no hp={hp!r} record "
                f"(it has {', '.join(by_hp)})"
            )
        return by_hp[hp]

    def _evict(self, api, *, keep: int) -> None:
        while len(api.arch2infos_dict) > self.max_records:
            old = next(k for k in api.arch2infos_dict if k != keep)
            del api.arch2infos_dict[old]
            api.evaluated_indexes.discard(old)

    def _hp(self, epochs: int) -> str:
        return f"{epochs:02d}"

    def _seeds(self, archres, nats_ds: str, index: int, hp: str) -> tuple[int, ...]:
        try:
            return tuple(int(s) for s in archres.get_dataset_seeds(nats_ds))
        except KeyError:
            raise UserError(
                f"architecture #{index} has no {nats_ds} results at hp={hp!r} in {self.path}"
            ) from None

    def _query(
        self,
        index: int,
        dataset: str,
        split: str,
        epochs: int,
        iepoch: int | None,
        seed: int | None,
    ) -> Accuracy:
        nats_ds, eval_set, key = _target(dataset, split)
        hp = self._hp(epochs)
        archres = self._record(index, hp)
        seeds = self._seeds(archres, nats_ds, index, hp)
        if seed is not None:
            if int(seed) not in seeds:
                raise UserError(
                    f"architecture #{index} has no seed {seed} for {nats_ds} at {epochs} epochs; "
                    f"recorded seeds: {', '.join(map(str, seeds))}"
                )
            seeds = (int(seed),)
        try:
            info = self._api().get_more_info(
                index, nats_ds, iepoch=iepoch, hp=hp, is_random=False if seed is None else int(seed)
            )
        except Exception as e:
            raise CorruptDataError(
                f"nats_bench failed on architecture #{index} ({nats_ds}, hp={hp!r}) in "
                f"{self.path}: {one_line(e)}"
            ) from e
        value = info.get(f"{key}-accuracy")
        if value is None:
            at = "after the last epoch" if iepoch is None else f"at epoch {iepoch + 1}"
            hint = ""
            if split == "valid" and nats_ds in ("cifar100", "ImageNet16-120"):
                hint = (
                    "; at intermediate epochs of the 200-epoch schedule NATS-Bench records only "
                    "ori-test (valid ∪ test), which is not a validation set: use the last epoch, "
                    "epochs=12, or ask for split='valtest' explicitly"
                )
            elif split == "test" and iepoch is not None:
                hint = "; the test set is recorded only after the last epoch of this schedule"
            raise UserError(
                f"NATS-Bench has no {split} accuracy ({eval_set}) for {nats_ds} {at} of the "
                f"{epochs}-epoch schedule{hint}"
            )
        return Accuracy(
            float(value),
            split,
            nats_ds,
            epochs,
            self.source,
            seeds,
            eval_set=eval_set,
            epoch=None if iepoch is None else iepoch + 1,
        )

    # --- the Benchmark interface ----------------------------------------------------------------

    def accuracy(
        self,
        arch_or_index,
        dataset: str,
        *,
        epochs: int | None = None,
        split: str = "test",
        seed: int | None = None,
    ) -> Accuracy:
        """Accuracy after the whole ``epochs`` schedule (``get_more_info``, explicit hp/seeds)."""
        index = self._to_index(arch_or_index)
        return self._query(
            index, self._dataset(dataset), canonical_split(split), self._epochs(epochs), None, seed
        )

    def accuracy_at_epoch(
        self,
        arch_or_index,
        dataset: str,
        epoch: int,
        *,
        hp: int,
        split: str,
        seed: int | None = None,
    ) -> Accuracy:
        """Accuracy after ``epoch`` completed epochs (1..hp) of the ``hp``-epoch schedule.

        ``epoch == hp`` is the end of the schedule. Points that NATS-Bench records only on a
        different set (validation at intermediate epochs of hp=200 on CIFAR-100 /
        ImageNet16-120, test at intermediate epochs of ``cifar10-valid``) raise
        :class:`UserError`; they are never substituted.
        """
        index = self._to_index(arch_or_index)
        epochs = self._epochs(hp)
        if (
            isinstance(epoch, bool)
            or not isinstance(epoch, numbers.Integral)
            or not 1 <= epoch <= epochs
        ):
            raise UserError(
                f"epoch must be an integer in 1..{epochs} for hp={epochs}, got {epoch!r}"
            )
        return self._query(
            index, self._dataset(dataset), canonical_split(split), epochs, int(epoch) - 1, seed
        )

    def fingerprint_files(self) -> list:
        """The meta file, and every record of a sample archive (a full archive's 15,625 are
        counted instead: see :attr:`fingerprint`)."""
        small = len(self._records) <= 1000
        return [self.path / META_FILE] + ([self._record_file(i) for i in sorted(self._records)]
                                          if small else [])

    @property
    def fingerprint(self) -> str:
        return f"{super().fingerprint}:{len(self._records)}"

    def has_split(self, dataset: str, split: str) -> bool:
        if not super().has_split(dataset, split):
            return False
        try:
            _target(self._dataset(dataset), canonical_split(split))
        except UserError:
            return False
        return True

    def has_curve_point(self, dataset: str, epoch: int, *, hp: int, split: str) -> bool:
        """Whether the first architecture this archive holds records ``split`` after ``epoch``
        epochs of schedule ``hp`` (NATS-Bench records the same points for every one)."""
        if not self._records or hp not in self.schedules:
            return False
        try:
            self.accuracy_at_epoch(min(self._records), dataset, epoch, hp=hp, split=split)
        except UserError:
            return False
        return True

    def cost(
        self, arch_or_index, dataset: str, *, epochs: int | None = None, split: str = "test"
    ) -> CostInfo:
        """``get_cost_info``: params/FLOPs (M), ``T-train@epoch`` and the split's eval time.

        ``split="valid"`` on CIFAR-10 gives the ``cifar10-valid`` run (25k training images).
        """
        index = self._to_index(arch_or_index)
        nats_ds, eval_set, _ = _target(self._dataset(dataset), canonical_split(split))
        epochs = self._epochs(epochs)
        hp = self._hp(epochs)
        archres = self._record(index, hp)
        self._seeds(archres, nats_ds, index, hp)
        try:
            info = self._api().get_cost_info(index, nats_ds, hp=hp)
        except Exception as e:
            raise CorruptDataError(
                f"nats_bench get_cost_info failed on architecture #{index} ({nats_ds}, "
                f"hp={hp!r}) in {self.path}: {one_line(e)}"
            ) from e
        train = info.get("T-train@epoch")
        if train is None:
            raise UserError(
                f"architecture #{index} has no training time for {nats_ds} in {self.path}"
            )
        ev = info.get(f"T-{eval_set}@epoch")
        return CostInfo(
            float(info["params"]),
            float(info["flops"]),
            float(train),
            None if ev is None else float(ev),
            self.source,
            False,
            dataset=nats_ds,
            epochs=epochs,
        )

    def optimum(self, dataset: str, *, epochs: int | None = None, split: str = "test") -> Optimum:
        """Scan every record (minutes on the full archive; kept on this object once done)."""
        dataset = self._dataset(dataset)
        split = canonical_split(split)
        epochs = self._epochs(epochs)
        if not self.is_complete:
            raise DataNotFoundError(
                f"{self.path} holds records for only {len(self._records)} of {len(self)} "
                "architectures (a sample archive); the optimum needs the full archive or the "
                "compact table (kind='table')"
            )
        key = (dataset, split, epochs)
        if key not in self._scans:
            self._scans[key] = self._scan(dataset, split, epochs)
        values = self._scans[key]
        best = max(values)
        ties = tuple(i for i, v in enumerate(values) if v == best)
        nats_ds = _target(dataset, split)[0]
        return Optimum(ties[0], self.arch(ties[0]), best, ties, nats_ds, split, epochs)

    def _scan(self, dataset: str, split: str, epochs: int) -> list[float]:
        from tqdm.auto import tqdm

        n = len(self)
        values = []
        for i in tqdm(range(n), desc=f"scan {dataset} {split} {epochs}ep", disable=n < 1000):
            values.append(self._query(i, dataset, split, epochs, None, None).value)
        return values
