"""Refit the training-time estimate that :class:`~zcnas.lookup.table.CompactTable` uses.

The compact table has no training times, so its :meth:`cost` estimates them with a line per
(NATS-Bench training run, schedule)::

    seconds_per_epoch = a + b * flops_m

fitted by least squares to the official archive's ``T-train@epoch`` of the sample archive's
three architectures (0, 11, 284). Regenerate the constants with::

    python -m zcnas.lookup.timefit $ZCNAS_DATA/nats-bench-sample/NATS-tss-v1_0-3ffb9-simple

which prints the block to paste into ``zcnas/lookup/table.py``; a test refits and checks the
constants agree.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from zcnas.lookup.archive import NatsArchive

FIT_INDICES: tuple[int, ...] = (0, 11, 284)
FIT_DATASETS: tuple[str, ...] = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
FIT_SCHEDULES: tuple[int, ...] = (12, 200)


@dataclass(frozen=True, slots=True)
class TimeFit:
    """One fitted line and its residuals (actual - fitted, seconds; and relative to actual)."""

    dataset: str
    epochs: int
    a: float
    b: float
    indices: tuple[int, ...]
    actual: tuple[float, ...]
    residuals: tuple[float, ...]

    @property
    def relative_residuals(self) -> tuple[float, ...]:
        return tuple(r / y for r, y in zip(self.residuals, self.actual, strict=True))


def fit_train_time(
    archive: NatsArchive, indices: tuple[int, ...] = FIT_INDICES
) -> dict[tuple[str, int], TimeFit]:
    """Least-squares fit of ``T-train@epoch`` against FLOPs (M) for every dataset and schedule."""
    fits = {}
    for epochs in FIT_SCHEDULES:
        for ds in FIT_DATASETS:
            costs = [archive.cost(i, ds, epochs=epochs) for i in indices]
            x = np.array([c.flops_m for c in costs])
            y = np.array([c.train_seconds_per_epoch for c in costs])
            design = np.column_stack([np.ones_like(x), x])
            (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
            res = y - design @ np.array([a, b])
            fits[(ds, epochs)] = TimeFit(
                ds,
                epochs,
                float(a),
                float(b),
                tuple(indices),
                tuple(float(v) for v in y),
                tuple(float(r) for r in res),
            )
    return fits


def format_constants(fits: dict[tuple[str, int], TimeFit]) -> str:
    """The ``TRAIN_TIME_FIT`` entries as Python source."""
    lines = []
    for (ds, epochs), f in fits.items():
        lines.append(f"    ({ds!r}, {epochs}): ({f.a!r}, {f.b!r}),")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        path = argv[0]
    else:
        from zcnas.paths import find_data

        name = "NATS-tss-v1_0-3ffb9-simple"
        path = find_data([f"nats-bench-sample/{name}", name], what="NATS-Bench tss sample archive")
    fits = fit_train_time(NatsArchive(os.fspath(path), "nats-tss"))
    print(format_constants(fits))
    for f in fits.values():
        rel = ", ".join(f"{100 * r:+.2f}%" for r in f.relative_residuals)
        print(f"# {f.dataset} {f.epochs}ep residuals (arch {f.indices}): {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
