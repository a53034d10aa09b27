"""The one interface every NATS-Bench lookup backend offers, and the records it returns.

Conventions (the traps of the official API, decided once here):

* ``epochs`` names the training *schedule* (NATS-Bench's ``hp``): 200 or 12 in the topology
  space, 90, 12 or 1 in the size space. ``None`` means the full schedule (200 tss, 90 sss), which
  is the ground truth. It is always passed explicitly to ``nats_bench`` (whose default ``hp='12'``
  is a classic mistake).
* ``seed=None`` means the mean over the benchmark's seeds (``is_random=False``); an int selects one
  recorded seed. Nothing is ever drawn at random.
* ``split`` is ``"test"`` or ``"valid"``. ``"valid"`` on CIFAR-10 is NATS-Bench's
  ``cifar10-valid`` run (trained on 25k images, scored on the other 25k, ``x-valid``); on
  CIFAR-100 / ImageNet16-120 it is ``x-valid``. ``"test"`` is ``ori-test`` of the ``cifar10`` run
  (trained on all 50k) and ``x-test`` of CIFAR-100 / ImageNet16-120. The official archive also
  answers ``"valtest"`` (``ori-test`` = x-valid ∪ x-test of CIFAR-100 / ImageNet16-120) when asked
  by that name, and never in place of ``"valid"``.
* A request a backend cannot answer raises a one-line :class:`~zcnas.errors.UserError`; there is
  no silent fallback to another split, schedule or dataset. Every answer names where it came from.
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Iterator
from dataclasses import KW_ONLY, dataclass

from zcnas.datasets import canonical_dataset
from zcnas.errors import ArchError, UnknownNameError, UserError
from zcnas.spaces import ArchOrder

SPLITS: tuple[str, ...] = ("test", "valid", "valtest")
_SPLIT_ALIASES = {"test": "test", "valid": "valid", "validation": "valid", "valtest": "valtest"}

#: Training schedules (``hp``) each space's benchmark has, and the full (ground-truth) one.
SCHEDULES: dict[str, tuple[int, ...]] = {"nats-tss": (200, 12), "nats-sss": (90, 12, 1)}
FULL_EPOCHS: dict[str, int] = {"nats-tss": 200, "nats-sss": 90}


@dataclass(frozen=True, slots=True)
class Accuracy:
    """One accuracy (%) and where it came from.

    ``dataset`` is the NATS-Bench training run the number belongs to (``cifar10-valid`` for a
    CIFAR-10 validation accuracy), ``split`` the user-level split actually answered (``test``,
    ``valid`` or ``valtest``), ``epochs`` the schedule (``hp``), ``seeds`` the seeds averaged
    (one seed when a seed was asked for; ``()`` when the source stores seed means only),
    ``eval_set`` NATS-Bench's own name of the evaluation set (``ori-test``, ``x-valid``,
    ``x-test``) and ``epoch`` the number of completed epochs for a learning-curve point
    (``None`` for the end of the schedule).
    """

    value: float
    split: str
    dataset: str
    epochs: int
    source: str
    seeds: tuple[int, ...]
    _: KW_ONLY
    eval_set: str | None = None
    epoch: int | None = None


@dataclass(frozen=True, slots=True)
class CostInfo:
    """Model size and training cost of one architecture on one dataset.

    ``params_m`` / ``flops_m`` are millions (NATS-Bench convention), ``train_seconds_per_epoch``
    the benchmark's recorded (or, when ``estimated``, a fitted) time of one training epoch, and
    ``eval_seconds`` the time of one pass over the evaluation split (``None`` when unknown).
    ``dataset`` is the training run the numbers describe (``cifar10-valid`` when the CIFAR-10
    validation split was asked for) and ``epochs`` the schedule.
    """

    params_m: float
    flops_m: float
    train_seconds_per_epoch: float
    eval_seconds: float | None
    source: str
    estimated: bool
    _: KW_ONLY
    dataset: str | None = None
    epochs: int | None = None

    @property
    def train_seconds(self) -> float | None:
        """Training time of the whole schedule (``epochs`` x seconds per epoch)."""
        return None if self.epochs is None else self.epochs * self.train_seconds_per_epoch


@dataclass(frozen=True, slots=True)
class Optimum:
    """The best architecture of a benchmark for one (dataset, split, schedule).

    Ties go to the lowest index; ``ties`` lists every index that reaches ``value`` (exact float
    equality, in increasing order). Unpacks as ``index, arch, value = bench.optimum(...)``.
    """

    index: int
    arch: str
    value: float
    ties: tuple[int, ...]
    dataset: str
    split: str
    epochs: int

    def __iter__(self) -> Iterator:
        return iter((self.index, self.arch, self.value))


def canonical_split(split: str) -> str:
    try:
        return _SPLIT_ALIASES[str(split).lower()]
    except KeyError:
        raise UnknownNameError(
            f"unknown split {split!r}; valid splits: test, valid (valtest only by that name)"
        ) from None


class Benchmark(abc.ABC):
    """A NATS-Bench lookup: index <-> arch, accuracies, costs and optima.

    ``arch_or_index`` arguments accept a benchmark index (int, or a string of digits), an arch
    string or a genotype of the space. See the module docstring for the split / schedule / seed
    conventions.
    """

    #: ``"nats-tss"`` or ``"nats-sss"``.
    space: str
    #: A human string naming the file (or folder) read and what kind of source it is.
    source: str
    #: The backend: ``"archive"`` (official archive) or ``"table"`` (compact table).
    kind: str
    #: The splits this backend answers (see the module docstring).
    splits: tuple[str, ...] = ("test",)

    @property
    @abc.abstractmethod
    def order(self) -> ArchOrder:
        """The benchmark's index <-> arch string mapping."""

    @property
    @abc.abstractmethod
    def datasets(self) -> tuple[str, ...]:
        """The datasets this backend has accuracies for."""

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @property
    def schedules(self) -> tuple[int, ...]:
        """The training schedules (``epochs`` values) this backend answers."""
        return SCHEDULES[self.space]

    @property
    def fingerprint(self) -> str:
        """What identifies this lookup's numbers: a digest of the files read (a search
        checkpoint made with another lookup is never reused)."""
        import hashlib

        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            digest = hashlib.sha256(self.kind.encode())
            for path in self.fingerprint_files():
                with open(path, "rb") as fh:
                    for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        digest.update(chunk)
            cached = self.__dict__["_fingerprint"] = f"{self.kind}:{digest.hexdigest()[:16]}"
        return cached

    def fingerprint_files(self) -> list:
        """The files :attr:`fingerprint` digests."""
        return []

    def has_split(self, dataset: str, split: str) -> bool:
        """Whether accuracies on ``split`` (at the end of a schedule) exist for ``dataset``."""
        return canonical_split(split) in self.splits and canonical_dataset(dataset) in self.datasets

    def has_curve_point(self, dataset: str, epoch: int, *, hp: int, split: str) -> bool:
        """Whether the learning curve of schedule ``hp`` records ``split`` after ``epoch``
        epochs (see :meth:`accuracy_at_epoch`). Backends without curves: False."""
        return False

    def schedule(self, epochs: int | str | None) -> int:
        """``epochs`` as one of this benchmark's schedules (None: the full one); a one-line
        :class:`UserError` for a schedule it lacks."""
        return self._epochs(epochs)

    @property
    def full_epochs(self) -> int:
        """The ground-truth schedule: 200 epochs (tss) or 90 (sss)."""
        return FULL_EPOCHS[self.space]

    def index(self, arch) -> int:
        """The benchmark index of an arch string or genotype."""
        return self.order.index(arch)

    def arch(self, index: int) -> str:
        """The arch string at a benchmark index."""
        return self.order.arch(self._to_index(index))

    @abc.abstractmethod
    def accuracy(
        self,
        arch_or_index,
        dataset: str,
        *,
        epochs: int | None = None,
        split: str = "test",
        seed: int | None = None,
    ) -> Accuracy:
        """Accuracy (%) after the full ``epochs`` schedule on ``split`` (see module docstring)."""

    def accuracies(
        self, indices, dataset: str, *, epochs: int | None = None, split: str = "test"
    ):
        """Accuracies (%) of many benchmark indices as a float64 numpy array (seed means)."""
        import numpy as np

        return np.array([self.accuracy(int(i), dataset, epochs=epochs, split=split).value
                         for i in indices], dtype=np.float64)

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
        """Learning-curve point: accuracy after ``epoch`` completed epochs of schedule ``hp``.

        Only the official archive has learning curves; other backends raise :class:`UserError`.
        """
        raise UserError(
            f"{self.source} has no learning curves; open the official NATS-Bench archive "
            "(kind='archive') for accuracy_at_epoch"
        )

    @abc.abstractmethod
    def cost(
        self, arch_or_index, dataset: str, *, epochs: int | None = None, split: str = "test"
    ) -> CostInfo:
        """Size and training time; ``split="valid"`` on CIFAR-10 describes the cifar10-valid run."""

    @abc.abstractmethod
    def optimum(self, dataset: str, *, epochs: int | None = None, split: str = "test") -> Optimum:
        """The best architecture (lowest index among ties) for ``dataset``/``split``/``epochs``."""

    # --- helpers shared by the backends ---------------------------------------------------------

    def _to_index(self, arch_or_index) -> int:
        x = arch_or_index
        if isinstance(x, bool):
            raise ArchError(f"an architecture is an index, arch string or genotype, got {x!r}")
        if isinstance(x, numbers.Integral) or (isinstance(x, str) and x.strip().isascii()
                                                    and x.strip().isdigit()):
            i = int(x)
            if not 0 <= i < len(self):
                raise ArchError(f"index {i} out of range 0..{len(self) - 1}")
            return i
        return self.index(x)

    def _epochs(self, epochs: int | str | None) -> int:
        if epochs is None:
            return self.full_epochs
        try:
            e = int(epochs)
        except (TypeError, ValueError):
            e = None
        if e not in self.schedules:
            raise UserError(
                f"{self.space} has no {epochs!r}-epoch schedule; valid epochs (hp): "
                f"{', '.join(map(str, self.schedules))}"
            )
        return e

    def _dataset(self, dataset: str) -> str:
        name = canonical_dataset(dataset)
        if name not in self.datasets:
            raise UserError(
                f"{self.source} has no dataset {name!r}; it has {', '.join(self.datasets)}"
            )
        return name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source})"
