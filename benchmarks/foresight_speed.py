"""zcnas against SamsungLabs/zero-cost-nas (foresight) on foresight's six proxies.

Run (CPU; the numbers in results/benchmarks/foresight-cpu.txt)::

    git clone https://github.com/SamsungLabs/zero-cost-nas /somewhere/zero-cost-nas
    python -m benchmarks.foresight_speed --foresight /somewhere/zero-cost-nas --archs 30 \
        --data ../shared/data --out results/benchmarks/foresight-cpu.txt

Nothing of the peer is installed: with ``--foresight PATH`` its checkout is put on
``sys.path`` and timed in this process; with ``--foresight-times FILE`` (the ``.csv`` a timed
run writes beside ``--out``) its per-arch seconds are read from that file instead, and the
output says which.

Side by side, one torch thread each, on a seeded sample of distinct topology cells, the same
64 real CIFAR-10 training images and labels for both, interleaved per architecture (the order
of the two alternates from one architecture to the next, and within an architecture from one
round to the next; each side's time of a cell is the best of ``--rounds``, default 2, so a
burst of other work on this shared machine does not land on one side only):

- **foresight**: its NB201 model build (``get_model_from_arch_str``, 10 classes) and
  ``predictive.find_measures`` with grad_norm, snip, grasp, fisher, jacob_cov and synflow;
- **zcnas**: one :class:`ScoringContext` and the same six proxies (``grad_norm``, ``snip``,
  ``grasp``, ``fisher``, ``jacov``, ``synflow``; batch 64, synflow on one all-ones image as
  foresight's), with zcnas's shared passes; per-proxy seconds are reported too.

The ratio depends on the cell: foresight runs a forward and backward per proxy on every edge,
zcnas one shared pass on the live edges (GraSP's double backward the largest part of it), so
the output also groups the cells by their live convolutions.

Both run in this process, whose allocator keeps freed memory as zcnas's CLI and scoring
workers keep it (:mod:`zcnas.runtime.allocator`): foresight gains from that alike (the
header says so; ``benchmarks.allocator`` measures what it is worth to zcnas alone).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks._machine import cpu_name, emit
from benchmarks.scoring_speed import sample_archs
from zcnas.registry import create_scorers
from zcnas.runtime.allocator import tune_allocator
from zcnas.scoring import InputBank, ScoringContext
from zcnas.scoring.engine import freeze_heap
from zcnas.spaces.nats_tss import as_cell, live_edges

ZCNAS = ("grad_norm", "snip", "grasp", "fisher", "jacov", "synflow")
FORESIGHT = ["grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow"]


class _OneBatch:
    """A loader that yields the one fixed batch (foresight reads ``next(iter(loader))``)."""

    def __init__(self, x, y):
        self.batch = (x, y)

    def __iter__(self):
        return iter([self.batch])


def foresight_timer(path: Path, x, y):
    sys.path.insert(0, str(path))
    try:
        from foresight.models.nasbench2 import get_model_from_arch_str
        from foresight.pruners import predictive
    except ImportError as exc:
        raise SystemExit(f"error: no foresight checkout at {path} ({exc})") from None
    import warnings

    loader = _OneBatch(x, y)

    def run(arch: str) -> float:
        start = time.perf_counter()
        net = get_model_from_arch_str(arch, 10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predictive.find_measures(net, loader, ("random", 1, 10), torch.device("cpu"),
                                     measure_names=FORESIGHT)
        return time.perf_counter() - start

    return run


def zcnas_timer(bank):
    proxies = create_scorers(",".join(ZCNAS))

    def run(arch: str) -> dict[str, float]:
        times = {}
        start = time.perf_counter()
        ctx = ScoringContext(arch, inputs=bank, requests=[r for p in proxies for r in p.requests()])
        for p in proxies:
            t = time.perf_counter()
            p.score(ctx)
            times[p.name] = time.perf_counter() - t
        times["total"] = time.perf_counter() - start
        return times

    return run


def live_convs(arch: str) -> int:
    """How many of the cell's live edges (:func:`live_edges`) are convolutions."""
    cell = as_cell(arch)
    return sum(live and op.startswith("nor_conv")
               for op, live in zip(cell.ops, live_edges(cell), strict=True))


CONV_GROUPS = ("0-1", "2", "3 or more")


def conv_group(convs: int) -> str:
    """The report's group of a cell with ``convs`` live convolutions (:data:`CONV_GROUPS`)."""
    return CONV_GROUPS[min(max(convs - 1, 0), 2)]


def _by_convs(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    labels = df["live_convs"].map(conv_group)
    return [(label, df[labels == label]) for label in CONV_GROUPS if (labels == label).any()]


def timing_options(ap: argparse.ArgumentParser, archs: int = 30,
                   rounds_help: str = "times each side runs each cell; its best is kept "
                                      "(default 2)") -> argparse.Namespace:
    """The options of a side-by-side timing over a seeded sample of cells (``--archs``,
    ``--seed``, ``--rounds``, ``--data``, ``--out``) added to ``ap`` and parsed; ``--rounds``
    below 1 is refused in one line. Nothing else: see :func:`parse_timing_options`."""
    ap.add_argument("--archs", type=int, default=archs)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help=rounds_help)
    ap.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error(f"--rounds must be at least 1, not {args.rounds}")
    return args


def parse_timing_options(ap: argparse.ArgumentParser) -> argparse.Namespace:
    """:func:`timing_options`, then one torch thread, and freed memory kept in the process
    as zcnas's command and scoring workers keep it
    (:func:`zcnas.runtime.allocator.tune_allocator`; code compared in the same process runs
    with it too)."""
    args = timing_options(ap)
    torch.set_num_threads(1)
    args.allocator = ("freed memory kept in the process (zcnas.runtime.allocator) for the "
                      "sides timed in this run" if tune_allocator()
                      else "left as it was (not glibc, or the user's own malloc settings)")
    return args


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--foresight", type=Path, help="a checkout of SamsungLabs/zero-cost-nas")
    src.add_argument("--foresight-times", type=Path,
                     help="per-arch foresight seconds (CSV with arch, foresight_s)")
    args = parse_timing_options(ap)

    archs = sample_archs(args.archs, args.seed)
    bank = InputBank("cifar10", seed=0, root=args.data)
    x, y = bank.batches("real", 64, 1)[0]
    ours = zcnas_timer(bank)
    if args.foresight is not None:
        theirs = foresight_timer(args.foresight, x.contiguous(), y)
        theirs(archs[0])  # warm-up (imports, first allocations), not timed
        source = f"timed in this run from the checkout at {args.foresight}"
    else:
        table = pd.read_csv(args.foresight_times).set_index("arch")["foresight_s"]
        missing = [a for a in archs if a not in table.index]
        if missing:
            raise SystemExit(f"error: {args.foresight_times} has no time for {missing[0]}")
        theirs = table.loc.__getitem__
        source = f"read from {args.foresight_times} (not timed in this run)"
    ours(archs[0])
    freeze_heap()  # as a scoring worker does (foresight, in this process, gains alike)

    rows = []
    for i, arch in enumerate(archs):
        f, z = math.inf, None
        for r in range(args.rounds):
            zcnas_first = (i + r) % 2 == 1
            if zcnas_first:
                zr = ours(arch)
            if args.foresight is not None or r == 0:
                f = min(f, float(theirs(arch)))
            if not zcnas_first:
                zr = ours(arch)
            if z is None or zr["total"] < z["total"]:
                z = zr
        rows.append({"arch": arch, "live_convs": live_convs(arch), "foresight_s": f,
                     "zcnas_s": z["total"],
                     **{f"zcnas_{k}_s": v for k, v in z.items() if k != "total"}})
    df = pd.DataFrame(rows)
    f_mean, z_mean = df["foresight_s"].mean(), df["zcnas_s"].mean()
    ratio = df["foresight_s"] / df["zcnas_s"]
    lines = [
        "# foresight's six proxies (grad_norm, snip, grasp, fisher, jacob_cov, synflow), batch 64",
        f"# machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, one thread "
        f"each; {len(archs)} distinct cells (seed {args.seed}), interleaved per cell, best of "
        f"{args.rounds} round(s) per cell"
        + (" and side" if args.foresight is not None else " (zcnas; foresight's from the file)"),
        f"# foresight times: {source}; allocator: {args.allocator}",
        "",
        f"{'':24s}{'s/cell':>9s}",
        f"{'foresight':24s}{f_mean:9.3f}",
        f"{'zcnas':24s}{z_mean:9.3f}",
        *[f"{'  zcnas ' + k:24s}{df[f'zcnas_{k}_s'].mean():9.3f}" for k in ZCNAS],
        "  (a shared pass is timed on the first proxy that reads it: grad_norm's line is the",
        "  one pass grad_norm, snip, fisher, grasp and jacov share, jacov's input Jacobian a",
        "  second backward of its forward)",
        "",
        f"zcnas faster by {f_mean / z_mean:.2f}x (mean seconds); per cell: median "
        f"{np.median(ratio):.2f}x, range {ratio.min():.2f}-{ratio.max():.2f}x",
        "",
        "by the cell's live convolutions (edges that reach the output; foresight builds all):",
        f"{'live convolutions':20s}{'cells':>6s}{'foresight s':>13s}{'zcnas s':>9s}{'ratio':>8s}",
        *[f"{label:20s}{len(g):6d}{g['foresight_s'].mean():13.3f}{g['zcnas_s'].mean():9.3f}"
          f"{g['foresight_s'].mean() / g['zcnas_s'].mean():7.2f}x"
          for label, g in _by_convs(df)],
    ]
    report = "\n".join(lines)
    emit(report, args.out)
    if args.out:
        df.to_csv(args.out.with_suffix(".csv"), index=False)


if __name__ == "__main__":
    main()
